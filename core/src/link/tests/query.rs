//! Lookups against the kernel: which link kinds it has, routes.

use super::{Ns, mark, rt};
use crate::link::{LinkKind, LinkManager, LinkPlan};
use crate::spec::{IpvlanFlag, IpvlanMode};

/// Kinds this host kernel may lack (IPVLAN, 802.1q, dummy) must fail with a
/// message naming the missing kernel feature, not a bare errno.
#[test]
fn missing_kernel_link_types_are_named() {
    let ns = Ns::with_tp_pair("kern");
    rt().block_on(async {
        let lm = LinkManager::in_netns(&ns.path()).unwrap();
        assert!(lm.supports("macvlan").await.unwrap() && lm.supports("vxlan").await.unwrap());
        assert!(
            lm.get("syprobe0").await.unwrap().is_none(),
            "a probe left a link"
        );
        for kind in [
            LinkKind::Ipvlan {
                parent: "tp0".into(),
                mode: IpvlanMode::L2,
                flag: IpvlanFlag::Bridge,
            },
            LinkKind::Vlan {
                parent: "tp0".into(),
                id: 30,
            },
            LinkKind::Dummy,
        ] {
            let what = kind.kernel_kind();
            match lm.apply(&LinkPlan::new("sytest0", kind, mark("e1"))).await {
                Ok(_) => {
                    // This kernel has it: it must then be a marked link of that kind.
                    let l = lm.get("sytest0").await.unwrap().unwrap();
                    assert_eq!(l.kind.as_deref(), Some(what));
                    lm.delete_owned("sytest0", |_| true).await.unwrap();
                }
                Err(e) => {
                    let s = e.to_string();
                    assert!(s.contains(&format!("creating {what} link sytest0")), "{s}");
                    assert!(
                        s.contains("this host's kernel has no") && s.contains("modprobe"),
                        "{s}"
                    );
                    if what != "dummy" {
                        assert!(
                            !lm.supports(what).await.unwrap(),
                            "{what}: supports() disagrees"
                        );
                    }
                }
            }
        }
    });
}

#[test]
fn route_lookup_names_the_outgoing_link_and_source() {
    let ns = Ns::with_tp_pair("route");
    ns.ip(&["addr", "add", "10.9.0.1/24", "dev", "tp0"]);
    ns.ip(&["link", "set", "tp0", "up"]);
    ns.ip(&["link", "set", "tp1", "up"]);
    rt().block_on(async {
        let lm = LinkManager::in_netns(&ns.path()).unwrap();
        let tp0 = lm.get("tp0").await.unwrap().unwrap();
        assert_eq!(
            lm.route_to("10.9.0.5".parse().unwrap()).await.unwrap(),
            Some((tp0.index, Some("10.9.0.1".parse().unwrap())))
        );
        // No default route in this namespace: no answer, not an error.
        assert_eq!(
            lm.route_to("192.0.2.1".parse().unwrap()).await.unwrap(),
            None
        );
    });
}
