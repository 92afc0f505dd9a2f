//! Veth pairs planned with their peer (`LinkKind::Veth`), against the
//! kernel: both ends made, marked and configured by one `apply`, retries,
//! and nothing left behind when a step fails.

use super::{Ns, mark, rt};
use crate::link::{LinkKind, LinkManager, LinkPlan, PeerPlan, error};
use crate::mac::MacAddr;

fn pair(name: &str, peer: PeerPlan) -> LinkPlan {
    LinkPlan::new(name, LinkKind::Veth(peer), mark("e1"))
}

async fn bridge(lm: &LinkManager, name: &str) -> u32 {
    let plan = LinkPlan::new(name, LinkKind::Bridge, mark("net")).up();
    lm.apply(&plan).await.unwrap().index
}

#[test]
fn one_apply_makes_marks_and_configures_both_ends_and_retries_repair_the_peer() {
    let ns = Ns::new("veth");
    rt().block_on(async {
        let lm = LinkManager::in_netns(&ns.path()).unwrap();
        let br = bridge(&lm, "sybr0").await;
        let mac: MacAddr = "02:42:0a:00:00:05".parse().unwrap();
        let plan = pair(
            "syab0",
            PeerPlan::new("shab0", mark("e1"))
                .mtu(Some(1400))
                .controller("sybr0")
                .up(),
        )
        .mtu(Some(1400))
        .mac(mac);
        let l = lm.apply(&plan).await.unwrap();
        assert_eq!(l.kind.as_deref(), Some("veth"));
        assert_eq!((l.mtu, l.mac, l.up), (1400, Some(mac), false));
        assert_eq!(l.mark(), Some(mark("e1")));
        let p = lm.get("shab0").await.unwrap().expect("the peer exists");
        assert_eq!(p.mark(), Some(mark("e1")));
        assert_eq!((p.mtu, p.up, p.controller), (1400, true, Some(br)));
        assert_eq!(l.parent_index, Some(p.index), "the two are one pair");
        assert!(
            ns.ip(&["-d", "link", "show", "shab0"])
                .contains("alias switchyard:net1:e1")
        );

        // A retry reuses both ends…
        let again = lm.apply(&plan).await.unwrap();
        assert_eq!(again.index, l.index);
        assert_eq!(lm.get("shab0").await.unwrap().unwrap().index, p.index);
        // …and gives the peer its settings back (the bridge was replaced,
        // the peer went down, or an earlier apply stopped before marking it).
        ns.ip(&["link", "set", "shab0", "nomaster", "down", "mtu", "1300"]);
        ns.ip(&["link", "set", "shab0", "alias", ""]);
        assert_eq!(lm.get("shab0").await.unwrap().unwrap().mark(), None);
        lm.apply(&plan).await.unwrap();
        let p = lm.get("shab0").await.unwrap().unwrap();
        assert_eq!(p.mark(), Some(mark("e1")));
        assert_eq!((p.mtu, p.up, p.controller), (1400, true, Some(br)));

        // The link and the peer may share a bridge (looked up once).
        let both = pair(
            "sycd0",
            PeerPlan::new("shcd0", mark("e1")).controller("sybr0"),
        )
        .controller("sybr0");
        let l = lm.apply(&both).await.unwrap();
        let p = lm.get("shcd0").await.unwrap().unwrap();
        assert_eq!((l.controller, p.controller), (Some(br), Some(br)));
        assert_eq!((p.up, p.mtu), (false, 1500), "the peer plan's defaults");
    });
}

#[test]
fn a_peer_that_is_not_the_plans_is_refused_and_left_alone() {
    let ns = Ns::with_tp_pair("vethf");
    rt().block_on(async {
        let lm = LinkManager::in_netns(&ns.path()).unwrap();
        let plan = pair("syab0", PeerPlan::new("shab0", mark("e1")));
        lm.apply(&plan).await.unwrap();
        // Same link, but a peer name that is another (unmarked) link.
        let other = pair("syab0", PeerPlan::new("tp1", mark("e1")));
        let e = lm.apply(&other).await.unwrap_err();
        assert_eq!(e.errno, error::EEXIST);
        assert!(
            e.to_string()
                .contains("a link named tp1 already exists and does not belong to this endpoint"),
            "{e}"
        );
        assert_eq!(lm.get("tp1").await.unwrap().unwrap().mark(), None);
        // A peer carrying another endpoint's mark is refused too.
        ns.ip(&["link", "set", "shab0", "alias", "switchyard:net1:e2"]);
        let e = lm.apply(&plan).await.unwrap_err();
        assert_eq!(e.errno, error::EEXIST, "{e}");
        let p = lm.get("shab0").await.unwrap().unwrap();
        assert_eq!(p.mark(), Some(mark("e2")));
    });
}

#[test]
fn a_failed_step_leaves_no_link_behind() {
    let ns = Ns::with_tp_pair("vethrb");
    rt().block_on(async {
        let lm = LinkManager::in_netns(&ns.path()).unwrap();
        let gone = |lm: &LinkManager| {
            let lm = lm.clone();
            async move {
                lm.get("syab0").await.unwrap().is_none() && lm.get("shab0").await.unwrap().is_none()
            }
        };
        // The peer's bridge does not exist.
        let plan = pair(
            "syab0",
            PeerPlan::new("shab0", mark("e1")).controller("nobr0").up(),
        );
        let e = lm.apply(&plan).await.unwrap_err();
        assert!(
            e.is_not_found() && e.to_string().contains("bridge \"nobr0\" does not exist"),
            "{e}"
        );
        assert!(gone(&lm).await, "a link was left behind");
        // The peer's "bridge" exists but cannot take ports: the pair was
        // created, enslaving its peer fails, the pair is deleted again.
        let plan = pair(
            "syab0",
            PeerPlan::new("shab0", mark("e1")).controller("tp0").up(),
        );
        let e = lm.apply(&plan).await.unwrap_err();
        assert!(
            e.to_string()
                .contains("configuring veth peer shab0 of syab0"),
            "{e}"
        );
        assert!(gone(&lm).await, "the pair was not rolled back");
        // A peer name the kernel refuses: nothing is created.
        let plan = pair("syab0", PeerPlan::new("averyveryverylongname", mark("e1")));
        let e = lm.apply(&plan).await.unwrap_err();
        assert!(e.to_string().contains("creating veth link syab0"), "{e}");
        assert!(lm.get("syab0").await.unwrap().is_none());
        // The same plan with a usable bridge then succeeds.
        bridge(&lm, "sybr0").await;
        let plan = pair(
            "syab0",
            PeerPlan::new("shab0", mark("e1")).controller("sybr0").up(),
        );
        lm.apply(&plan).await.unwrap();
        assert!(lm.get("shab0").await.unwrap().unwrap().up);
    });
}
