//! The requests of one container's lifecycle, byte for byte as dockerd 20.10
//! encodes them (field order of its Go structs, Go's encoder's trailing
//! newline; see ../shared/fixtures/dockerd-20.10/calls.jsonl).

use std::time::{Duration, Instant, SystemTime};
use switchyard_integration_tests::{PluginClient, random_id};

/// The calls dockerd makes for `docker run --rm` on one network, in order.
pub const LIFECYCLE: [&str; 8] = [
    "NetworkDriver.CreateEndpoint",
    "NetworkDriver.Join",
    "NetworkDriver.ProgramExternalConnectivity",
    "NetworkDriver.EndpointOperInfo",
    "NetworkDriver.EndpointOperInfo",
    "NetworkDriver.RevokeExternalConnectivity",
    "NetworkDriver.Leave",
    "NetworkDriver.DeleteEndpoint",
];

pub const LABELS: [&str; 8] = [
    "CreateEndpoint",
    "Join",
    "ProgramExternalConnectivity",
    "EndpointOperInfo #1",
    "EndpointOperInfo #2",
    "RevokeExternalConnectivity",
    "Leave",
    "DeleteEndpoint",
];

const EMPTY_OPTIONS: &str =
    r#"{"com.docker.network.endpoint.exposedports":[],"com.docker.network.portmap":[]}"#;

/// `docker network create -d NAME --subnet POOL -o backend=macvlan -o parent=P`.
pub fn create_network(net: &str, parent: &str, pool: &str, gateway: &str) -> Vec<u8> {
    format!(
        r#"{{"NetworkID":"{net}","Options":{{"com.docker.network.enable_ipv6":false,"com.docker.network.generic":{{"backend":"macvlan","parent":"{parent}"}}}},"IPv4Data":[{{"AddressSpace":"LocalDefault","Gateway":"{gateway}","Pool":"{pool}"}}],"IPv6Data":[]}}"#
    )
    .into_bytes()
    .into_iter()
    .chain(*b"\n")
    .collect()
}

pub fn network_only(net: &str) -> Vec<u8> {
    format!("{{\"NetworkID\":\"{net}\"}}\n").into_bytes()
}

/// A container endpoint as dockerd describes it.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub id: String,
    pub addr: String,
    pub sandbox: String,
}

/// Pool of the bench networks: the benchmarking range (RFC 2544), never routed.
pub const POOL: &str = "198.18.0.0/15";
pub const GATEWAY: &str = "198.18.0.1/15";

impl Endpoint {
    pub fn new(i: usize) -> Endpoint {
        let host = (i % 130_000) + 2;
        Endpoint {
            id: random_id(),
            addr: format!(
                "198.{}.{}.{}/15",
                18 + host / 65536,
                (host / 256) % 256,
                host % 256
            ),
            sandbox: format!("/var/run/docker/netns/{}", &random_id()[..12]),
        }
    }

    pub fn link(&self) -> String {
        switchyard_core::model::endpoint_link_name(&self.id)
    }

    /// The body of call `i` of `LIFECYCLE`.
    pub fn body(&self, net: &str, i: usize) -> Vec<u8> {
        let (ep, s) = (
            &self.id,
            match i {
                0 => format!(
                    r#","Interface":{{"Address":"{}","AddressIPv6":"","MacAddress":""}},"Options":{EMPTY_OPTIONS}}}"#,
                    self.addr
                ),
                1 => format!(
                    r#","SandboxKey":"{}","Options":{EMPTY_OPTIONS}}}"#,
                    self.sandbox
                ),
                2 => format!(r#","Options":{EMPTY_OPTIONS}}}"#),
                _ => "}".to_string(),
            },
        );
        format!("{{\"NetworkID\":\"{net}\",\"EndpointID\":\"{ep}\"{s}\n").into_bytes()
    }
}

/// One call; panics on a transport error or an error answer.
pub fn call(client: &mut PluginClient, method: &str, body: &[u8]) -> (Duration, serde_json::Value) {
    let t = Instant::now();
    let r = client
        .call_raw(method, body)
        .unwrap_or_else(|e| panic!("{method}: transport error: {e}"));
    let d = t.elapsed();
    let v = r.json();
    if r.status != 200 || v.get("Err").is_some() {
        panic!("{method} failed: HTTP {}: {}", r.status, r.text());
    }
    (d, v)
}

/// Client-side timings of one container's eight calls.
#[derive(Clone, Debug)]
pub struct Lifecycle {
    pub calls: [Duration; 8],
    pub total: Duration,
    pub link: String,
    /// When DeleteEndpoint's answer arrived.
    pub deleted_at: SystemTime,
    pub deleted_instant: Instant,
}

/// Runs calls `range` of the lifecycle for `ep`; returns their durations.
pub fn run_calls(
    client: &mut PluginClient,
    net: &str,
    ep: &Endpoint,
    range: std::ops::Range<usize>,
) -> Vec<Duration> {
    let mut out = Vec::new();
    for i in range {
        let (d, v) = call(client, LIFECYCLE[i], &ep.body(net, i));
        if i == 1 {
            let src = v["InterfaceName"]["SrcName"].as_str().unwrap_or("");
            assert_eq!(src, ep.link(), "Join's SrcName: {v}");
        }
        out.push(d);
    }
    out
}

pub fn lifecycle(client: &mut PluginClient, net: &str, ep: &Endpoint) -> Lifecycle {
    let t0 = Instant::now();
    let d = run_calls(client, net, ep, 0..8);
    let deleted_instant = Instant::now();
    let deleted_at = SystemTime::now();
    Lifecycle {
        calls: d.try_into().unwrap(),
        total: deleted_instant - t0,
        link: ep.link(),
        deleted_at,
        deleted_instant,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_json_with_a_newline() {
        let ep = Endpoint::new(7);
        assert_eq!(ep.addr, "198.18.0.9/15");
        for i in 0..8 {
            let b = ep.body("n", i);
            assert_eq!(b.last(), Some(&b'\n'));
            let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
            assert_eq!(v["EndpointID"], ep.id.as_str());
        }
        let j: serde_json::Value = serde_json::from_slice(&ep.body("n", 1)).unwrap();
        assert_eq!(j["SandboxKey"], ep.sandbox.as_str());
        let n: serde_json::Value =
            serde_json::from_slice(&create_network("n", "p0", POOL, GATEWAY)).unwrap();
        assert_eq!(n["Options"]["com.docker.network.generic"]["parent"], "p0");
    }
}
