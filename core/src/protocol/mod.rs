//! Wire types of the libnetwork remote network driver protocol
//! (`../shared/docs/protocol.md` §2). Field names are exactly the engine's;
//! decoding is lenient (unknown fields ignored, `null` accepted wherever the
//! engine may send it), encoding omits what Docker treats as "not set".

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub mod ipam;

pub type Options = Map<String, Value>;

/// Top-level option keys of CreateNetwork / GwAllocCheck.
pub const OPT_GENERIC: &str = "com.docker.network.generic";
pub const OPT_ENABLE_IPV4: &str = "com.docker.network.enable_ipv4";
pub const OPT_ENABLE_IPV6: &str = "com.docker.network.enable_ipv6";
pub const OPT_INTERNAL: &str = "com.docker.network.internal";

pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct IpamData {
    #[serde(rename = "AddressSpace", default, deserialize_with = "null_as_default")]
    pub address_space: String,
    #[serde(rename = "Pool", default, deserialize_with = "null_as_default")]
    pub pool: String,
    #[serde(rename = "Gateway", default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// `None` when the key is absent (or null): Engine 29 sends `{}` on
    /// every pool given with `--subnet`, 28 and 20.10 leave the key out
    /// unless `--aux-address` was used (`spec::Engine`).
    #[serde(
        rename = "AuxAddresses",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub aux_addresses: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct GwAllocCheckRequest {
    #[serde(rename = "Options", default, deserialize_with = "null_as_default")]
    pub options: Options,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct GwAllocCheckResponse {
    #[serde(rename = "SkipIPv4")]
    pub skip_ipv4: bool,
    #[serde(rename = "SkipIPv6")]
    pub skip_ipv6: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct CreateNetworkRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "Options", default, deserialize_with = "null_as_default")]
    pub options: Options,
    #[serde(rename = "IPv4Data", default, deserialize_with = "null_as_default")]
    pub ipv4_data: Vec<IpamData>,
    #[serde(rename = "IPv6Data", default, deserialize_with = "null_as_default")]
    pub ipv6_data: Vec<IpamData>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct NetworkRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct EndpointRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct EndpointInterface {
    #[serde(rename = "Address", default, deserialize_with = "null_as_default")]
    pub address: String,
    #[serde(rename = "AddressIPv6", default, deserialize_with = "null_as_default")]
    pub address_ipv6: String,
    #[serde(rename = "MacAddress", default, deserialize_with = "null_as_default")]
    pub mac_address: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct CreateEndpointRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(rename = "Interface", default, deserialize_with = "null_as_default")]
    pub interface: EndpointInterface,
    #[serde(rename = "Options", default, deserialize_with = "null_as_default")]
    pub options: Options,
}

/// What the driver adds to the endpoint's interface. Docker accepts a field
/// only where the request left it empty, so only the MAC is ever returned.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CreateEndpointResponse {
    #[serde(rename = "Interface", skip_serializing_if = "Option::is_none")]
    pub interface: Option<InterfaceUpdate>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct InterfaceUpdate {
    /// An IPv4 address with prefix, only for an endpoint dockerd sent
    /// without one (a DHCP network's, with `--ipam-driver null`).
    #[serde(rename = "Address", skip_serializing_if = "String::is_empty", default)]
    pub address: String,
    #[serde(
        rename = "MacAddress",
        skip_serializing_if = "String::is_empty",
        default
    )]
    pub mac_address: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct JoinRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(rename = "SandboxKey", default, deserialize_with = "null_as_default")]
    pub sandbox_key: String,
    #[serde(rename = "Options", default, deserialize_with = "null_as_default")]
    pub options: Options,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct InterfaceName {
    #[serde(rename = "SrcName")]
    pub src_name: String,
    #[serde(rename = "DstPrefix")]
    pub dst_prefix: String,
}

/// `RouteType` 0: via `NextHop`; 1: connected (bound to the interface).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StaticRoute {
    #[serde(rename = "Destination")]
    pub destination: String,
    #[serde(rename = "RouteType")]
    pub route_type: u8,
    #[serde(rename = "NextHop", skip_serializing_if = "Option::is_none", default)]
    pub next_hop: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct JoinResponse {
    #[serde(rename = "InterfaceName", skip_serializing_if = "Option::is_none")]
    pub interface_name: Option<InterfaceName>,
    /// A plain address, never CIDR.
    #[serde(rename = "Gateway", skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(rename = "GatewayIPv6", skip_serializing_if = "Option::is_none")]
    pub gateway_ipv6: Option<String>,
    #[serde(
        rename = "StaticRoutes",
        skip_serializing_if = "Vec::is_empty",
        default
    )]
    pub static_routes: Vec<StaticRoute>,
    #[serde(rename = "DisableGatewayService", default)]
    pub disable_gateway_service: bool,
}

impl From<&crate::model::JoinAnswer> for JoinResponse {
    fn from(a: &crate::model::JoinAnswer) -> JoinResponse {
        JoinResponse {
            interface_name: Some(InterfaceName {
                src_name: a.link_name.clone(),
                dst_prefix: "eth".into(),
            }),
            gateway: a.gateway.map(|g| g.to_string()),
            gateway_ipv6: a.gateway_ipv6.map(|g| g.to_string()),
            static_routes: a
                .connected_routes
                .iter()
                .map(|d| StaticRoute {
                    destination: d.to_string(),
                    route_type: 1,
                    next_hop: None,
                })
                .collect(),
            disable_gateway_service: !a.gateway_service,
        }
    }
}

impl From<crate::model::GatewayAllocation> for GwAllocCheckResponse {
    fn from(g: crate::model::GatewayAllocation) -> GwAllocCheckResponse {
        GwAllocCheckResponse {
            skip_ipv4: !g.ipv4,
            skip_ipv6: !g.ipv6,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ExternalConnectivityRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(rename = "Options", default, deserialize_with = "null_as_default")]
    pub options: Options,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct OperInfoResponse {
    #[serde(rename = "Value")]
    pub value: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct AllocateNetworkRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "Options", default, deserialize_with = "null_as_default")]
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct AllocateNetworkResponse {
    #[serde(rename = "Options")]
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct DiscoveryRequest {
    #[serde(rename = "DiscoveryType", default)]
    pub discovery_type: i64,
    #[serde(rename = "DiscoveryData", default)]
    pub discovery_data: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CapabilitiesResponse {
    #[serde(rename = "Scope")]
    pub scope: String,
    #[serde(rename = "ConnectivityScope")]
    pub connectivity_scope: String,
    #[serde(rename = "GwAllocChecker")]
    pub gw_alloc_checker: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ActivateResponse {
    #[serde(rename = "Implements")]
    pub implements: Vec<String>,
}

/// The answer of a call that returns nothing: `{}`.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Empty {}

/// A protocol error body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorResponse {
    #[serde(rename = "Err")]
    pub err: String,
}

/// Short ids for log lines and status output, as `docker` prints them.
pub fn short_id(id: &str) -> &str {
    // On a character boundary: an ID that never passed the edge's check
    // (a log line about a refused request) may hold multi-byte characters.
    let end = id
        .char_indices()
        .nth(12)
        .map(|(i, _)| i)
        .unwrap_or(id.len());
    &id[..end]
}

#[cfg(test)]
mod tests;
