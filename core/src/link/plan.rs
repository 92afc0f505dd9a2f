//! Links described as values. Backends produce `LinkPlan`s; the
//! `LinkManager` applies them. A plan — a veth pair's peer included — is
//! built and inspected without a kernel or a netlink socket, which is how
//! backends are unit-tested.

use crate::mac::MacAddr;
use crate::mark::Mark;
use crate::spec::{IpvlanFlag, IpvlanMode, MacvlanMode};
use std::net::IpAddr;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkKind {
    Macvlan {
        parent: String,
        mode: MacvlanMode,
    },
    Ipvlan {
        parent: String,
        mode: IpvlanMode,
        flag: IpvlanFlag,
    },
    Vlan {
        parent: String,
        id: u16,
    },
    /// A veth pair whose peer `apply` creates, marks and configures too.
    Veth(PeerPlan),
    Bridge,
    Dummy,
    Vxlan(VxlanLink),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VxlanLink {
    pub vni: u32,
    pub port: u16,
    pub local: Option<IpAddr>,
    /// The underlay interface.
    pub dev: Option<String>,
    pub learning: bool,
    /// Answer ARP/ND from the neighbour table instead of flooding.
    pub proxy: bool,
}

impl LinkKind {
    /// The kernel's name for the type, as `ip -d link` shows it.
    pub fn kernel_kind(&self) -> &'static str {
        match self {
            LinkKind::Macvlan { .. } => "macvlan",
            LinkKind::Ipvlan { .. } => "ipvlan",
            LinkKind::Vlan { .. } => "vlan",
            LinkKind::Veth(_) => "veth",
            LinkKind::Bridge => "bridge",
            LinkKind::Dummy => "dummy",
            LinkKind::Vxlan(_) => "vxlan",
        }
    }

    pub fn parent(&self) -> Option<&str> {
        match self {
            LinkKind::Macvlan { parent, .. }
            | LinkKind::Ipvlan { parent, .. }
            | LinkKind::Vlan { parent, .. } => Some(parent),
            LinkKind::Vxlan(v) => v.dev.as_deref(),
            _ => None,
        }
    }

    /// The planned far end of a veth pair.
    pub fn peer(&self) -> Option<&PeerPlan> {
        match self {
            LinkKind::Veth(p) => Some(p),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkPlan {
    pub name: String,
    pub kind: LinkKind,
    /// `None` keeps the kernel's default (a child inherits its parent's MTU).
    pub mtu: Option<u32>,
    pub mac: Option<MacAddr>,
    pub mark: Mark,
    pub up: bool,
    /// Bridge to enslave the link to.
    pub controller: Option<String>,
}

/// The far end of a veth pair (`LinkKind::Veth`), made with the pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerPlan {
    pub name: String,
    /// `None` keeps the kernel's default (1500), whatever the other end has.
    pub mtu: Option<u32>,
    pub mac: Option<MacAddr>,
    pub mark: Mark,
    pub up: bool,
    /// Bridge to enslave the peer to.
    pub controller: Option<String>,
}

/// The setters a link and a veth peer share.
macro_rules! settings {
    ($plan:ty) => {
        impl $plan {
            pub fn mtu(mut self, mtu: Option<u32>) -> Self {
                self.mtu = mtu;
                self
            }

            pub fn mac(mut self, mac: MacAddr) -> Self {
                self.mac = Some(mac);
                self
            }

            pub fn up(mut self) -> Self {
                self.up = true;
                self
            }

            pub fn controller(mut self, bridge: impl Into<String>) -> Self {
                self.controller = Some(bridge.into());
                self
            }
        }
    };
}

settings!(LinkPlan);
settings!(PeerPlan);

impl LinkPlan {
    pub fn new(name: impl Into<String>, kind: LinkKind, mark: Mark) -> Self {
        LinkPlan {
            name: name.into(),
            kind,
            mtu: None,
            mac: None,
            mark,
            up: false,
            controller: None,
        }
    }

    /// What this plan creates, for error messages.
    pub fn describe(&self) -> String {
        let what = format!("{} link {}", self.kind.kernel_kind(), self.name);
        match (self.kind.parent(), self.kind.peer()) {
            (Some(p), _) => format!("{what} on {p}"),
            (None, Some(peer)) => format!("{what} (peer {})", peer.name),
            (None, None) => what,
        }
    }

    /// Who owns the plan's links, for error messages.
    pub(super) fn owner(&self) -> &'static str {
        if self.mark.endpoint_id.is_some() {
            "endpoint"
        } else {
            "network"
        }
    }
}

impl PeerPlan {
    /// A peer that is down, unenslaved, with the kernel's MTU and a random MAC.
    pub fn new(name: impl Into<String>, mark: Mark) -> Self {
        PeerPlan {
            name: name.into(),
            mtu: None,
            mac: None,
            mark,
            up: false,
            controller: None,
        }
    }
}

#[cfg(test)]
mod tests {
    //! Plans are values: nothing here opens a socket or needs root.

    use super::*;

    fn mark() -> Mark {
        Mark::endpoint("switchyard", "net1", "ep1")
    }

    fn pair() -> LinkPlan {
        LinkPlan::new(
            "syab",
            LinkKind::Veth(
                PeerPlan::new("shab", mark())
                    .mtu(Some(1450))
                    .controller("sybr42")
                    .up(),
            ),
            mark(),
        )
        .mtu(Some(1450))
    }

    #[test]
    fn a_plan_starts_down_and_plain_and_the_setters_fill_it_in() {
        let mac: MacAddr = "02:42:0a:00:00:05".parse().unwrap();
        let plan = LinkPlan::new("sybr0", LinkKind::Bridge, mark());
        assert_eq!(
            (plan.mtu, plan.mac, plan.up, plan.controller.as_deref()),
            (None, None, false, None)
        );
        let plan = plan.mtu(Some(1400)).mac(mac).controller("sybr1").up();
        assert_eq!(
            (plan.mtu, plan.mac, plan.up, plan.controller.as_deref()),
            (Some(1400), Some(mac), true, Some("sybr1"))
        );
        assert_eq!(plan.mark, mark());
    }

    #[test]
    fn a_veth_pair_describes_its_peer_fully() {
        let plan = pair();
        let peer = plan.kind.peer().expect("a veth pair has a peer plan");
        assert_eq!(peer.name, "shab");
        assert_eq!(peer.mark, mark());
        assert_eq!(peer.mtu, Some(1450));
        assert_eq!(peer.mac, None);
        assert!(peer.up);
        assert_eq!(peer.controller.as_deref(), Some("sybr42"));
        // The peer's settings are its own, not the link's.
        assert!(!plan.up && plan.controller.is_none());
        let bare = PeerPlan::new("shcd", mark());
        assert_eq!(
            (bare.mtu, bare.mac, bare.up, bare.controller.as_deref()),
            (None, None, false, None)
        );
        let mac: MacAddr = "02:42:0a:00:00:07".parse().unwrap();
        assert_eq!(bare.mac(mac).mac, Some(mac));
    }

    #[test]
    fn kernel_kinds_and_parents() {
        let vx = LinkKind::Vxlan(VxlanLink {
            vni: 42,
            port: 4789,
            local: None,
            dev: Some("eth1".into()),
            learning: false,
            proxy: true,
        });
        let cases = [
            (
                LinkKind::Macvlan {
                    parent: "eth1".into(),
                    mode: MacvlanMode::Bridge,
                },
                "macvlan",
                Some("eth1"),
            ),
            (
                LinkKind::Ipvlan {
                    parent: "eth1".into(),
                    mode: IpvlanMode::L2,
                    flag: IpvlanFlag::Bridge,
                },
                "ipvlan",
                Some("eth1"),
            ),
            (
                LinkKind::Vlan {
                    parent: "eth1".into(),
                    id: 30,
                },
                "vlan",
                Some("eth1"),
            ),
            (pair().kind, "veth", None),
            (LinkKind::Bridge, "bridge", None),
            (LinkKind::Dummy, "dummy", None),
            (vx, "vxlan", Some("eth1")),
        ];
        for (kind, kernel, parent) in cases {
            assert_eq!(kind.kernel_kind(), kernel, "{kind:?}");
            assert_eq!(kind.parent(), parent, "{kind:?}");
            assert_eq!(
                kind.peer().is_some(),
                matches!(kind, LinkKind::Veth(_)),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn describe_names_the_link_its_parent_or_its_peer() {
        let mv = LinkPlan::new(
            "symv0",
            LinkKind::Macvlan {
                parent: "eth1".into(),
                mode: MacvlanMode::Bridge,
            },
            mark(),
        );
        assert_eq!(mv.describe(), "macvlan link symv0 on eth1");
        assert_eq!(pair().describe(), "veth link syab (peer shab)");
        let br = LinkPlan::new("sybr0", LinkKind::Bridge, Mark::network("switchyard", "n"));
        assert_eq!(br.describe(), "bridge link sybr0");
        assert_eq!((mv.owner(), br.owner()), ("endpoint", "network"));
    }
}
