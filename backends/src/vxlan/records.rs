//! The cluster's records in etcd: their keys (relative to the configured
//! prefix) and their JSON values. Records a host owns are written with
//! `host` first, so ownership is told by a prefix test (`Owner`).

use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use switchyard_core::mac::MacAddr;

/// `nodes/<host>`: a host and its VTEP (persistent).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct NodeRecord {
    pub vtep: IpAddr,
    pub underlay_mtu: u32,
}

/// `networks/<vni>`: a VXLAN network cluster-wide.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct NetworkEntry {
    pub vni: u32,
    pub subnets: Vec<String>,
}

/// `endpoints/<vni>/<endpoint id>`: an endpoint and its host.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EndpointEntry {
    pub host: String,
    pub ip: Option<IpAddr>,
    pub ip6: Option<IpAddr>,
    pub mac: MacAddr,
}

/// `members/<vni>/<host>`, `alive/<host>`, `ipam/<pool>/<ip>`: held by a
/// host; an empty host is a claim shared by all (a gateway).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ClaimEntry {
    pub host: String,
}

/// `alive/<host>` (on the host's lease): who holds the identity now. The
/// `host` field first, as in every record a host owns.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AliveEntry {
    pub host: String,
    pub vtep: IpAddr,
}

/// A remote endpoint as the kernel needs it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RemoteEndpoint {
    pub ips: Vec<IpAddr>,
    pub mac: MacAddr,
    pub vtep: IpAddr,
}

pub(super) fn ser<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// The record of a claim held by `host` ("" for a shared one).
pub(super) fn held_by(host: &str) -> Vec<u8> {
    ser(&ClaimEntry {
        host: host.to_string(),
    })
}

pub(super) fn node_key(host: &str) -> String {
    format!("nodes/{host}")
}

pub(super) fn alive_key(host: &str) -> String {
    format!("alive/{host}")
}

pub(super) fn network_key(vni: u32) -> String {
    format!("networks/{vni}")
}

pub(super) fn member_key(vni: u32, host: &str) -> String {
    format!("members/{vni}/{host}")
}

pub(super) fn endpoint_key(vni: u32, endpoint_id: &str) -> String {
    format!("endpoints/{vni}/{endpoint_id}")
}

/// The claim of `ip` in the pool whose claim key is `pool`.
pub(super) fn claim_key(pool: &str, ip: IpAddr) -> String {
    format!("ipam/{}/{ip}", pool.replace('/', "_"))
}

/// Tells this host's records from others'.
#[derive(Clone, Debug)]
pub(super) struct Owner {
    host: String,
    head: String,
}

impl Owner {
    pub fn new(host: &str) -> Owner {
        Owner {
            host: host.to_string(),
            head: format!("{{\"host\":{}", serde_json::Value::String(host.to_string())),
        }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// Whether a record names this host as its owner. Records are written
    /// by this code with `host` first, so a prefix test does without parsing.
    pub fn owns(&self, value: &[u8]) -> bool {
        value.starts_with(self.head.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_is_told_by_the_leading_host_field() {
        let me = Owner::new("h1");
        assert!(me.owns(&held_by("h1")));
        assert!(!me.owns(&held_by("h10")), "a prefix of another name");
        assert!(!me.owns(&held_by("")));
        let ep = ser(&EndpointEntry {
            host: "h1".into(),
            ip: Some("10.0.0.2".parse().unwrap()),
            ip6: None,
            mac: MacAddr::from_ip("10.0.0.2".parse().unwrap()),
        });
        assert!(me.owns(&ep));
        assert!(Owner::new("a\"b").owns(&held_by("a\"b")), "escaped names");
    }

    #[test]
    fn keys() {
        let ip: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(
            claim_key("GlobalDefault/10.0.0.0/24", ip),
            "ipam/GlobalDefault_10.0.0.0_24/10.0.0.2"
        );
        assert_eq!(endpoint_key(5, "e"), "endpoints/5/e");
        assert_eq!(member_key(5, "h"), "members/5/h");
        assert_eq!(
            (network_key(5), node_key("h"), alive_key("h")),
            ("networks/5".into(), "nodes/h".into(), "alive/h".into())
        );
    }
}
