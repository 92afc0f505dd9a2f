//! Wire types of the libnetwork remote IPAM protocol
//! (`../shared/docs/protocol.md` §3), served on the same socket.

use super::null_as_default;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RequestPoolRequest {
    #[serde(rename = "AddressSpace", default, deserialize_with = "null_as_default")]
    pub address_space: String,
    #[serde(rename = "Pool", default, deserialize_with = "null_as_default")]
    pub pool: String,
    #[serde(rename = "SubPool", default, deserialize_with = "null_as_default")]
    pub sub_pool: String,
    #[serde(rename = "Options", default, deserialize_with = "null_as_default")]
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ReleasePoolRequest {
    #[serde(rename = "PoolID", default)]
    pub pool_id: String,
}

/// RequestAddress and ReleaseAddress.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AddressRequest {
    #[serde(rename = "PoolID", default)]
    pub pool_id: String,
    #[serde(rename = "Address", default, deserialize_with = "null_as_default")]
    pub address: String,
    #[serde(rename = "Options", default, deserialize_with = "null_as_default")]
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IpamCapabilitiesResponse {
    #[serde(rename = "RequiresMACAddress")]
    pub requires_mac_address: bool,
    #[serde(rename = "RequiresRequestReplay")]
    pub requires_request_replay: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AddressSpacesResponse {
    #[serde(rename = "LocalDefaultAddressSpace")]
    pub local: String,
    #[serde(rename = "GlobalDefaultAddressSpace")]
    pub global: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RequestPoolResponse {
    #[serde(rename = "PoolID")]
    pub pool_id: String,
    /// The pool in CIDR notation.
    #[serde(rename = "Pool")]
    pub pool: String,
    #[serde(rename = "Data")]
    pub data: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RequestAddressResponse {
    /// The address with its prefix length (`10.0.0.2/24`).
    #[serde(rename = "Address")]
    pub address: String,
    #[serde(rename = "Data")]
    pub data: BTreeMap<String, String>,
}
