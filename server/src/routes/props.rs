//! Properties of the edge, over arbitrary input: whatever the bytes, the
//! edge and every request decoder answer (never panic), and what they say
//! has no control characters and a bounded length; whatever the options of
//! a CreateNetwork, parsing them into a spec answers the same way.
//!
//! CI runs a bounded number of cases; a long run:
//!   PROPTEST_CASES=1000000 cargo test -p switchyard --release -- routes::props

use super::edge::{Refused, check_ids, decode, parse};
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use switchyard_core::protocol::{self as p, ipam};
use switchyard_core::spec::{Policy, parse_network};

/// Field names of the protocol, so that generated bodies reach deep into
/// the decoders instead of being refused at the top.
const FIELDS: &[&str] = &[
    "NetworkID",
    "EndpointID",
    "Options",
    "IPv4Data",
    "IPv6Data",
    "AddressSpace",
    "Pool",
    "Gateway",
    "AuxAddresses",
    "Interface",
    "Address",
    "AddressIPv6",
    "MacAddress",
    "SandboxKey",
    "PoolID",
    "SubPool",
    "com.docker.network.generic",
    "com.docker.network.enable_ipv6",
    "com.docker.network.internal",
    "backend",
    "parent",
    "macvlan_mode",
    "ipvlan_mode",
    "ipvlan_flag",
    "com.docker.network.driver.mtu",
    "vni",
    "peers",
];

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-f]{64}",
        "[a-z0-9]{25}",
        ".{0,40}",
        "(macvlan|ipvlan|vxlan|tp0|eth0\\.30|bridge|l3|1500|5001|10\\.0\\.0\\.0/24|fd00::/64|10\\.0\\.0\\.1/24)",
        any::<String>(),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(
                (prop::sample::select(FIELDS).prop_map(String::from), inner),
                0..6
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn printable(what: &str, msg: &str) {
    assert!(
        !msg.chars().any(char::is_control),
        "{what}: control characters in {msg:?}"
    );
    assert!(msg.len() < 4096, "{what}: {} bytes", msg.len());
}

fn each_decoder(body: &Value) {
    fn one<T: serde::de::DeserializeOwned>(m: &str, body: &Value) {
        if let Err(Refused(e)) = decode::<T>(m, body) {
            printable(m, &e);
        }
    }
    one::<p::CreateNetworkRequest>("CreateNetwork", body);
    one::<p::GwAllocCheckRequest>("GwAllocCheck", body);
    one::<p::NetworkRequest>("DeleteNetwork", body);
    one::<p::CreateEndpointRequest>("CreateEndpoint", body);
    one::<p::EndpointRequest>("DeleteEndpoint", body);
    one::<p::JoinRequest>("Join", body);
    one::<p::ExternalConnectivityRequest>("ProgramExternalConnectivity", body);
    one::<p::AllocateNetworkRequest>("AllocateNetwork", body);
    one::<p::DiscoveryRequest>("DiscoverNew", body);
    one::<ipam::RequestPoolRequest>("RequestPool", body);
    one::<ipam::ReleasePoolRequest>("ReleasePool", body);
    one::<ipam::AddressRequest>("RequestAddress", body);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(512)
    ))]

    #[test]
    fn any_bytes_get_an_answer(body in prop::collection::vec(any::<u8>(), 0..256)) {
        match parse("NetworkDriver.Join", &body) {
            Ok(v) => {
                let _ = check_ids("NetworkDriver.Join", &v);
                each_decoder(&v);
            }
            Err(Refused(e)) => printable("parse", &e),
        }
    }

    #[test]
    fn any_json_gets_an_answer(body in json_value()) {
        for m in ["NetworkDriver.CreateNetwork", "NetworkDriver.Join", "IpamDriver.RequestPool"] {
            if let Err(Refused(e)) = check_ids(m, &body) {
                printable(m, &e);
            }
        }
        each_decoder(&body);
    }

    #[test]
    fn any_network_options_get_an_answer(
        generic in prop::collection::btree_map(
            prop_oneof![prop::sample::select(FIELDS).prop_map(String::from), any::<String>()],
            prop_oneof![text().prop_map(Value::String), json_value()],
            0..6,
        ),
        internal in any::<bool>(),
        ipv6 in any::<bool>(),
        pools in prop::collection::vec((text(), text()), 0..3),
    ) {
        let ipam_data: Vec<Value> = pools
            .iter()
            .map(|(pool, gw)| json!({"AddressSpace": "LocalDefault", "Pool": pool, "Gateway": gw}))
            .collect();
        let body = json!({
            "NetworkID": "0".repeat(64),
            "Options": {
                "com.docker.network.generic": generic,
                "com.docker.network.internal": internal,
                "com.docker.network.enable_ipv6": ipv6,
            },
            "IPv4Data": ipam_data,
            "IPv6Data": [],
        });
        if let Ok(req) = decode::<p::CreateNetworkRequest>("CreateNetwork", &body) {
            for policy in [Policy::default(), Policy { default_backend: Some(switchyard_core::spec::BackendKind::Macvlan), ..Policy::default() }] {
                if let Err(e) = parse_network(&req, &policy) {
                    printable("parse_network", &e.to_string());
                }
            }
        }
    }
}
