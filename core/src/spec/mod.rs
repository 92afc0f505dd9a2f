//! Options → a typed, validated `NetworkSpec`.
//!
//! `kinds.rs` names the backends and modes, `parent.rs` the parents,
//! `parse.rs` turns a request's options into a spec (pure: no kernel),
//! `engine.rs` tells the Docker Engines apart by what they send.

mod dhcp;
mod engine;
pub mod host_access;
mod kinds;
mod parent;
mod parse;
mod policy;
pub mod slaac;
pub mod swarm;
mod vxlan_options;

pub use dhcp::{IPAM_DHCP, OPT_IPAM, dhcp_enabled};
pub use engine::{Engine, EngineMemory, EngineSetting};
pub use kinds::{BackendKind, IpvlanFlag, IpvlanMode, MacvlanMode};
pub use parent::{Parent, isolated_parent_name, validate_ifname};
pub use parse::{RequestOptions, parse_network, parse_options, request_engine};
pub use policy::Policy;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

pub const OPT_BACKEND: &str = "backend";
pub const OPT_PARENT: &str = "parent";
pub const OPT_MACVLAN_MODE: &str = "macvlan_mode";
pub const OPT_IPVLAN_MODE: &str = "ipvlan_mode";
pub const OPT_IPVLAN_FLAG: &str = "ipvlan_flag";
pub const OPT_MTU: &str = "com.docker.network.driver.mtu";
pub const OPT_VNI: &str = "vni";
pub const OPT_VXLANID_LIST: &str = "com.docker.network.driver.overlay.vxlanid_list";
pub const OPT_PEERS: &str = "peers";
/// Docker overlay's option: IPsec ESP between the hosts of the network.
pub const OPT_ENCRYPTED: &str = "encrypted";
pub const OPT_HOST_ACCESS: &str = "host_access";
pub const OPT_IPV6_SLAAC: &str = "ipv6_slaac";
pub const VNI_MAX: u32 = 16_777_215;

/// One subnet of a network as IPAM gave it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet {
    pub pool: IpNet,
    pub gateway: Option<IpAddr>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MacvlanOptions {
    pub parent: Parent,
    pub mode: MacvlanMode,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpvlanOptions {
    pub parent: Parent,
    pub mode: IpvlanMode,
    pub flag: IpvlanFlag,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VxlanOptions {
    /// `None` until CreateNetwork allocates one from the configured range.
    pub vni: Option<u32>,
    /// Static VTEPs (`-o peers=`): head-end replication with kernel learning,
    /// for small setups without etcd.
    pub peers: Vec<IpAddr>,
    /// `-o encrypted`: VXLAN between the cluster's hosts in IPsec ESP.
    #[serde(default)]
    pub encrypted: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "backend", rename_all = "lowercase")]
pub enum BackendOptions {
    Macvlan(MacvlanOptions),
    Ipvlan(IpvlanOptions),
    Vxlan(VxlanOptions),
}

impl BackendOptions {
    pub fn kind(&self) -> BackendKind {
        match self {
            BackendOptions::Macvlan(_) => BackendKind::Macvlan,
            BackendOptions::Ipvlan(_) => BackendKind::Ipvlan,
            BackendOptions::Vxlan(_) => BackendKind::Vxlan,
        }
    }

    /// The parent the network's links hang off, if the backend has one.
    pub fn parent(&self) -> Option<&Parent> {
        match self {
            BackendOptions::Macvlan(m) => Some(&m.parent),
            BackendOptions::Ipvlan(i) => Some(&i.parent),
            BackendOptions::Vxlan(_) => None,
        }
    }

    pub fn parent_mut(&mut self) -> Option<&mut Parent> {
        match self {
            BackendOptions::Macvlan(m) => Some(&mut m.parent),
            BackendOptions::Ipvlan(i) => Some(&mut i.parent),
            BackendOptions::Vxlan(_) => None,
        }
    }

    /// The mode as `status` shows it.
    pub fn mode(&self) -> String {
        match self {
            BackendOptions::Macvlan(m) => m.mode.to_string(),
            BackendOptions::Ipvlan(i) => format!("{} {}", i.mode, i.flag),
            BackendOptions::Vxlan(v) => match v.vni {
                Some(n) => format!("vni {n}"),
                None => "vni (to allocate)".into(),
            },
        }
    }
}

/// A network as Switchyard understands it, independent of the wire format.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSpec {
    pub backend: BackendOptions,
    pub internal: bool,
    pub ipv4: Vec<Subnet>,
    pub ipv6: Vec<Subnet>,
    /// `com.docker.network.driver.mtu`; `None` means "the parent's".
    pub mtu: Option<u32>,
    /// The generic options exactly as the user gave them, for `status`.
    pub options: BTreeMap<String, String>,
    /// The engine the network was created on (`engine.rs`): the answers
    /// that differ between engines follow it.
    #[serde(default)]
    pub engine: Engine,
    /// `-o host_access`: the host's own link on the parent (`host_access.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_access: Option<host_access::HostAccess>,
    /// `-o ipv6_slaac=true`: IPv6 from router advertisements (`slaac.rs`).
    #[serde(default)]
    pub ipv6_slaac: bool,
}

impl NetworkSpec {
    /// Whether Join answers as for an internal network (no gateway, no
    /// default route): `--internal`, or a network without a parent on
    /// Engine 28 or 29, whose built-in macvlan/ipvlan treat it as internal
    /// ("With no parent interface, the network is internal": moby's
    /// `parseNetworkOptions`, also read by their GwAllocCheck). 20.10's
    /// built-ins keep a parentless network's gateways.
    pub fn answers_internal(&self) -> bool {
        let parentless = matches!(self.backend.parent(), Some(Parent::Isolated { .. }));
        self.internal || (parentless && matches!(self.engine, Engine::V28 | Engine::V29))
    }
}

#[cfg(test)]
mod tests;
