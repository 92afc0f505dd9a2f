//! The LinkManager against the real kernel, in a private network namespace
//! each test makes (and deletes, also when it fails). Needs root.

use super::*;
use crate::mark::Mark;
use crate::spec::MacvlanMode;
use std::process::Command;

struct Ns(String);

impl Ns {
    fn new(tag: &str) -> Ns {
        assert!(
            nix_is_root(),
            "LinkManager tests need root (they create network namespaces)"
        );
        let name = format!("sylm{tag}{}", std::process::id());
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(std::process::Stdio::null())
            .status();
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("ip (iproute2) must be installed")
            .success();
        assert!(ok, "ip netns add {name} failed");
        Ns(name)
    }
    /// A namespace with the veth pair tp0/tp1 to hang links off.
    fn with_tp_pair(tag: &str) -> Ns {
        let ns = Ns::new(tag);
        ns.ip(&["link", "add", "tp0", "type", "veth", "peer", "name", "tp1"]);
        ns
    }
    fn path(&self) -> std::path::PathBuf {
        format!("/run/netns/{}", self.0).into()
    }
    fn ip(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .arg("-n")
            .arg(&self.0)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc_geteuid() == 0 }
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn mark(e: &str) -> Mark {
    Mark::endpoint("switchyard", "net1", e)
}

/// Endpoint e1's bridge-mode macvlan `symv0` on `parent`.
fn macvlan_on(parent: &str) -> LinkPlan {
    LinkPlan::new(
        "symv0",
        LinkKind::Macvlan {
            parent: parent.into(),
            mode: MacvlanMode::Bridge,
        },
        mark("e1"),
    )
}

#[test]
fn creates_each_link_kind_this_kernel_offers_with_marks() {
    let ns = Ns::new("kinds");
    rt().block_on(async {
        let lm = LinkManager::in_netns(&ns.path()).unwrap();
        let veth = LinkPlan::new(
            "tp0",
            LinkKind::Veth(PeerPlan::new("tp1", Mark::network("switchyard", "net1")).up()),
            Mark::network("switchyard", "net1"),
        )
        .up();
        let l = lm.apply(&veth).await.unwrap();
        assert!(l.up);
        assert_eq!(l.kind.as_deref(), Some("veth"));
        assert_eq!(l.mark(), Some(Mark::network("switchyard", "net1")));
        assert!(lm.get("tp1").await.unwrap().unwrap().up);

        let br = LinkPlan::new(
            "sybr0",
            LinkKind::Bridge,
            Mark::network("switchyard", "net2"),
        )
        .mtu(Some(1400));
        let b = lm.apply(&br).await.unwrap();
        assert_eq!(
            (b.kind.as_deref(), b.mtu, b.up),
            (Some("bridge"), 1400, false)
        );

        let mac: crate::mac::MacAddr = "02:42:0a:00:00:05".parse().unwrap();
        let mv = LinkPlan::new(
            "symv0",
            LinkKind::Macvlan {
                parent: "tp0".into(),
                mode: MacvlanMode::Private,
            },
            mark("e1"),
        )
        .mtu(Some(1300))
        .mac(mac);
        let m = lm.apply(&mv).await.unwrap();
        assert_eq!(m.kind.as_deref(), Some("macvlan"));
        assert_eq!((m.mtu, m.mac), (1300, Some(mac)));
        assert_eq!(m.parent_index, Some(l.index));
        assert!(
            ns.ip(&["-d", "link", "show", "symv0"])
                .contains("macvlan mode private")
        );
        assert!(
            ns.ip(&["-d", "link", "show", "symv0"])
                .contains("alias switchyard:net1:e1")
        );

        let vx = LinkPlan::new(
            "syvx0",
            LinkKind::Vxlan(VxlanLink {
                vni: 4242,
                port: 4789,
                local: None,
                dev: Some("tp0".into()),
                learning: false,
                proxy: true,
            }),
            Mark::network("switchyard", "net3"),
        )
        .controller("sybr0");
        let x = lm.apply(&vx).await.unwrap();
        assert_eq!(x.controller, Some(b.index));
        let d = ns.ip(&["-d", "link", "show", "syvx0"]);
        assert!(
            d.contains("vxlan id 4242") && d.contains("nolearning") && d.contains("proxy"),
            "{d}"
        );
        // Remote endpoints: permanent neighbours and forwarding entries,
        // replace is idempotent, deletes of missing entries are fine.
        let n = Neighbour {
            ip: "10.20.0.5".parse().unwrap(),
            mac: "02:42:0a:14:00:05".parse().unwrap(),
        };
        let f = FdbEntry {
            mac: n.mac,
            dst: "192.168.88.2".parse().unwrap(),
        };
        lm.set_up("tp0", true).await.unwrap();
        for _ in 0..2 {
            lm.neighbour_replace("syvx0", n).await.unwrap();
            lm.fdb_replace("syvx0", f).await.unwrap();
        }
        assert_eq!(lm.neighbours("syvx0").await.unwrap(), vec![n]);
        assert_eq!(lm.fdb("syvx0").await.unwrap(), vec![f]);
        let zero = FdbEntry {
            mac: crate::mac::MacAddr([0; 6]),
            dst: "192.168.88.3".parse().unwrap(),
        };
        let zero2 = FdbEntry {
            dst: "192.168.88.4".parse().unwrap(),
            ..zero
        };
        lm.fdb_append("syvx0", zero).await.unwrap();
        lm.fdb_append("syvx0", zero2).await.unwrap();
        lm.fdb_append("syvx0", zero2).await.unwrap();
        assert_eq!(
            lm.fdb("syvx0").await.unwrap().len(),
            3,
            "head-end list of two plus one entry"
        );
        lm.neighbour_del("syvx0", n).await.unwrap();
        lm.neighbour_del("syvx0", n).await.unwrap();
        lm.fdb_del("syvx0", f).await.unwrap();
        lm.fdb_del("syvx0", f).await.unwrap();
        assert!(lm.neighbours("syvx0").await.unwrap().is_empty());
        assert_eq!(lm.fdb("syvx0").await.unwrap().len(), 2);

        let names: Vec<String> = lm
            .list()
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.name)
            .collect();
        for n in ["lo", "tp0", "tp1", "sybr0", "symv0", "syvx0"] {
            assert!(names.contains(&n.to_string()), "{n} missing from {names:?}");
        }
    });
}

#[test]
fn apply_is_idempotent_and_refuses_foreign_links() {
    let ns = Ns::with_tp_pair("idem");
    ns.ip(&["link", "add", "symv1", "link", "tp0", "type", "macvlan"]);
    rt().block_on(async {
        let lm = LinkManager::in_netns(&ns.path()).unwrap();
        let plan = macvlan_on("tp0");
        let a = lm.apply(&plan).await.unwrap();
        let b = lm.apply(&plan).await.unwrap();
        assert_eq!(a.index, b.index, "a retried apply reuses the link");
        // Same name, another endpoint's mark: refused, untouched.
        let other = LinkPlan {
            mark: mark("e2"),
            ..plan.clone()
        };
        let e = lm.apply(&other).await.unwrap_err();
        assert_eq!(e.errno, error::EEXIST);
        assert!(
            e.to_string().contains("does not belong to this endpoint"),
            "{e}"
        );
        // An unmarked link of the plan's name (the operator's) is refused too.
        let foreign = LinkPlan {
            name: "symv1".into(),
            ..plan.clone()
        };
        assert!(lm.apply(&foreign).await.is_err());
        assert!(lm.get("symv1").await.unwrap().is_some());
    });
}

#[test]
fn deletes_only_what_carries_the_owners_mark() {
    let ns = Ns::with_tp_pair("del");
    ns.ip(&["link", "add", "opmv", "link", "tp0", "type", "macvlan"]);
    ns.ip(&["link", "add", "opal", "link", "tp0", "type", "macvlan"]);
    ns.ip(&[
        "link",
        "set",
        "opal",
        "alias",
        "switchyard:net1:someone-else",
    ]);
    rt().block_on(async {
        let lm = LinkManager::in_netns(&ns.path()).unwrap();
        let plan = macvlan_on("tp0");
        lm.apply(&plan).await.unwrap();
        let m = mark("e1");
        assert_eq!(
            lm.delete_owned("opmv", |x| *x == m).await.unwrap(),
            Deleted::NotOurs
        );
        assert_eq!(
            lm.delete_owned("opal", |x| *x == m).await.unwrap(),
            Deleted::NotOurs
        );
        assert_eq!(
            lm.delete_owned("symv0", |x| *x == m).await.unwrap(),
            Deleted::Deleted
        );
        assert_eq!(
            lm.delete_owned("symv0", |x| *x == m).await.unwrap(),
            Deleted::Missing
        );
        assert!(lm.get("opmv").await.unwrap().is_some() && lm.get("opal").await.unwrap().is_some());
        // Deferred deletion honours the same rule.
        lm.apply(&plan).await.unwrap();
        lm.delete_later("symv0", m.clone());
        lm.delete_later("opmv", m.clone());
        lm.flush().await;
        assert!(lm.get("symv0").await.unwrap().is_none());
        assert!(lm.get("opmv").await.unwrap().is_some());
    });
}

#[test]
fn mtu_up_rename_addresses_and_netns_moves() {
    let ns = Ns::new("ops");
    let target = Ns::new("opst");
    ns.ip(&["link", "add", "tp0", "type", "veth", "peer", "name", "tp1"]);
    rt().block_on(async {
        let lm = LinkManager::in_netns(&ns.path()).unwrap();
        let plan = macvlan_on("tp0");
        lm.apply(&plan).await.unwrap();
        lm.set_mtu("symv0", 1280).await.unwrap();
        lm.set_up("symv0", true).await.unwrap();
        lm.add_address("symv0", "10.9.0.2/24".parse().unwrap())
            .await
            .unwrap();
        lm.add_address("symv0", "10.9.0.2/24".parse().unwrap())
            .await
            .unwrap(); // idempotent
        lm.add_address("symv0", "fd00:9::2/64".parse().unwrap())
            .await
            .unwrap();
        let addrs = lm.addresses("symv0").await.unwrap();
        assert!(
            addrs.contains(&"10.9.0.2/24".parse().unwrap())
                && addrs.contains(&"fd00:9::2/64".parse().unwrap()),
            "{addrs:?}"
        );
        let l = lm.get("symv0").await.unwrap().unwrap();
        assert_eq!((l.mtu, l.up), (1280, true));
        lm.set_up("symv0", false).await.unwrap();
        lm.rename("symv0", "eth7").await.unwrap();
        assert!(lm.get("symv0").await.unwrap().is_none());
        lm.move_to_netns("eth7", &target.path()).await.unwrap();
        assert!(lm.get("eth7").await.unwrap().is_none());
        let tm = LinkManager::in_netns(&target.path()).unwrap();
        let moved = tm
            .get("eth7")
            .await
            .unwrap()
            .expect("moved link in the target namespace");
        assert_eq!(
            moved.mark(),
            Some(mark("e1")),
            "the mark travels with the link"
        );
    });
}

#[test]
fn errors_say_what_failed_and_why() {
    let ns = Ns::new("err");
    rt().block_on(async {
        let lm = LinkManager::in_netns(&ns.path()).unwrap();
        assert_eq!(lm.get("nope0").await.unwrap(), None);
        let e = lm.set_mtu("nope0", 1400).await.unwrap_err();
        assert!(
            e.is_not_found() && e.to_string().contains("\"nope0\" does not exist"),
            "{e}"
        );
        let plan = macvlan_on("nope0");
        let e = lm.apply(&plan).await.unwrap_err();
        assert!(
            e.to_string().contains("parent \"nope0\" does not exist"),
            "{e}"
        );
        let long = LinkPlan::new("averyveryverylongname", LinkKind::Bridge, mark("e1"));
        let e = lm.apply(&long).await.unwrap_err();
        assert!(
            e.to_string().contains("averyveryverylongname")
                && e.to_string().contains("at most 15 bytes"),
            "{e}"
        );
        assert_eq!(
            lm.delete_owned("nope0", |_| true).await.unwrap(),
            Deleted::Missing
        );
        let e = lm
            .move_to_netns("lo", std::path::Path::new("/run/netns/does-not-exist"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("opening network namespace"), "{e}");
    });
}

mod query;
mod veth;
