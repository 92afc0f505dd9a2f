//! What the store keeps: networks and endpoints as Switchyard accepted them.

use crate::mac::MacAddr;
use crate::spec::NetworkSpec;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetworkRecord {
    pub id: String,
    pub spec: NetworkSpec,
    /// Seconds since the epoch.
    pub created_at: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndpointRecord {
    pub network_id: String,
    pub id: String,
    pub ipv4: Option<IpNet>,
    pub ipv6: Option<IpNet>,
    /// The MAC the endpoint's link gets; `None` leaves it to the kernel
    /// (macvlan passthru keeps the parent's, ipvlan shares it).
    pub mac: Option<MacAddr>,
    /// The user asked for this MAC (`--mac-address`); otherwise Switchyard chose it.
    pub mac_from_user: bool,
    /// The host-side link name handed to dockerd as `SrcName`.
    pub link_name: String,
    /// The sandbox of the last Join (kept after Leave: status and startup
    /// use it to tell a container's namespace that is gone).
    pub sandbox_key: Option<String>,
    pub created_at: u64,
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The host-side name of an endpoint's link: `sy` + the first 11 characters
/// of its id (13 bytes, within Linux's 15). Derived, so a restarted plugin
/// finds the links of endpoints it created before.
pub fn endpoint_link_name(endpoint_id: &str) -> String {
    let id: String = endpoint_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(11)
        .collect();
    format!("sy{id}")
}

/// Join's answer in Switchyard's terms; `protocol` turns it into the wire's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JoinAnswer {
    /// The host-side link dockerd moves into the container (as `eth<n>`).
    pub link_name: String,
    pub gateway: Option<IpAddr>,
    pub gateway_ipv6: Option<IpAddr>,
    /// Destinations reached directly through the container's interface.
    pub connected_routes: Vec<IpNet>,
    /// Whether dockerd should give the container `docker_gwbridge` as its way out.
    pub gateway_service: bool,
}

/// Whether IPAM reserves a gateway address in a network's subnets, per family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GatewayAllocation {
    pub ipv4: bool,
    pub ipv6: bool,
}
