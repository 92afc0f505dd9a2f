//! Links described as values. Backends produce `LinkPlan`s; the
//! `LinkManager` applies them. A plan can be built and inspected without a
//! kernel, which is how backends are unit-tested.

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
    Veth {
        peer: String,
    },
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
            LinkKind::Veth { .. } => "veth",
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

    /// What this plan creates, for error messages.
    pub fn describe(&self) -> String {
        match self.kind.parent() {
            Some(p) => format!("{} link {} on {p}", self.kind.kernel_kind(), self.name),
            None => format!("{} link {}", self.kind.kernel_kind(), self.name),
        }
    }
}
