//! Every request body real dockerds sent (the captures in
//! `../shared/fixtures/*/calls.jsonl`) decodes into these types, and the
//! answers have the shapes the fixtures require.

use super::*;
use serde_json::json;
use std::path::PathBuf;

fn fixtures() -> Vec<(String, serde_json::Value)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures");
    let mut out = Vec::new();
    for engine in ["dockerd-20.10", "dockerd-28"] {
        let path = root.join(engine).join("calls.jsonl");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (../shared must sit beside the repository)",
                path.display()
            )
        });
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).expect("fixture line is JSON");
            out.push((engine.to_string(), v));
        }
    }
    out
}

fn method_and_body(v: &serde_json::Value) -> Option<(String, String)> {
    let path = v.get("path").and_then(|p| p.as_str())?;
    let body = v.get("body_raw").and_then(|b| b.as_str()).unwrap_or("");
    Some((path.trim_start_matches('/').to_string(), body.to_string()))
}

#[test]
fn every_recorded_request_decodes() {
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for (engine, v) in fixtures() {
        let Some((method, body)) = method_and_body(&v) else {
            continue;
        };
        let raw = if body.trim().is_empty() {
            "null"
        } else {
            body.as_str()
        };
        let value: serde_json::Value = serde_json::from_str(raw)
            .unwrap_or_else(|e| panic!("{engine} {method}: body is not JSON: {e}: {body}"));
        let r: Result<(), serde_json::Error> = match method.as_str() {
            "NetworkDriver.CreateNetwork" => {
                serde_json::from_value::<CreateNetworkRequest>(value).map(|_| ())
            }
            "NetworkDriver.GwAllocCheck" => {
                serde_json::from_value::<GwAllocCheckRequest>(value).map(|_| ())
            }
            "NetworkDriver.DeleteNetwork" | "NetworkDriver.FreeNetwork" => {
                serde_json::from_value::<NetworkRequest>(value).map(|_| ())
            }
            "NetworkDriver.CreateEndpoint" => {
                serde_json::from_value::<CreateEndpointRequest>(value).map(|_| ())
            }
            "NetworkDriver.Join" => serde_json::from_value::<JoinRequest>(value).map(|_| ()),
            "NetworkDriver.Leave"
            | "NetworkDriver.DeleteEndpoint"
            | "NetworkDriver.EndpointOperInfo" => {
                serde_json::from_value::<EndpointRequest>(value).map(|_| ())
            }
            "NetworkDriver.ProgramExternalConnectivity"
            | "NetworkDriver.RevokeExternalConnectivity" => {
                serde_json::from_value::<ExternalConnectivityRequest>(value).map(|_| ())
            }
            "NetworkDriver.AllocateNetwork" => {
                serde_json::from_value::<AllocateNetworkRequest>(value).map(|_| ())
            }
            "NetworkDriver.DiscoverNew" | "NetworkDriver.DiscoverDelete" => {
                serde_json::from_value::<DiscoveryRequest>(value).map(|_| ())
            }
            _ => Ok(()),
        };
        r.unwrap_or_else(|e| panic!("{engine} {method} does not decode: {e}\n{body}"));
        *seen.entry(method).or_default() += 1;
    }
    for m in [
        "NetworkDriver.CreateNetwork",
        "NetworkDriver.CreateEndpoint",
        "NetworkDriver.Join",
        "NetworkDriver.GwAllocCheck",
        "NetworkDriver.DeleteEndpoint",
    ] {
        assert!(
            seen.get(m).copied().unwrap_or(0) > 0,
            "fixtures have no {m}: {seen:?}"
        );
    }
}

#[test]
fn requests_carry_what_the_driver_needs() {
    let r: CreateEndpointRequest = serde_json::from_str(
        r#"{"NetworkID":"ee5c","EndpointID":"af36","Interface":{"Address":"172.18.0.2/16","AddressIPv6":"","MacAddress":"02:42:aa:bb:cc:dd"},"Options":{"com.docker.network.endpoint.macaddress":"AkKqu8zd"}}
"#,
    )
    .unwrap();
    assert_eq!(r.interface.mac_address, "02:42:aa:bb:cc:dd");
    let n: CreateNetworkRequest = serde_json::from_str(
        r#"{"NetworkID":"5b22","Options":{"com.docker.network.enable_ipv6":false,"com.docker.network.generic":{"com.docker.network.driver.mtu":"1400"}},"IPv4Data":[{"AddressSpace":"LocalDefault","AuxAddresses":{"host1":"10.80.0.5/16"},"Gateway":"10.80.0.254/16","Pool":"10.80.0.0/16"}],"IPv6Data":null}"#,
    )
    .unwrap();
    assert_eq!(n.ipv4_data[0].gateway.as_deref(), Some("10.80.0.254/16"));
    assert!(n.ipv6_data.is_empty());
    let e: CreateEndpointRequest = serde_json::from_str(
        r#"{"NetworkID":"a","EndpointID":"b","Interface":null,"Options":null}"#,
    )
    .unwrap();
    assert_eq!(e.interface, EndpointInterface::default());
}

#[test]
fn answers_have_the_shapes_dockerd_requires() {
    // Join: Gateway without prefix length; no Gateway key at all when unset.
    let j = JoinResponse {
        interface_name: Some(InterfaceName {
            src_name: "sy0123".into(),
            dst_prefix: "eth".into(),
        }),
        gateway: Some("10.77.0.1".into()),
        gateway_ipv6: None,
        static_routes: vec![],
        disable_gateway_service: true,
    };
    assert_eq!(
        serde_json::to_value(&j).unwrap(),
        json!({"InterfaceName":{"SrcName":"sy0123","DstPrefix":"eth"},"Gateway":"10.77.0.1","DisableGatewayService":true})
    );
    let internal = JoinResponse { gateway: None, ..j };
    assert!(
        serde_json::to_value(&internal)
            .unwrap()
            .get("Gateway")
            .is_none()
    );
    assert_eq!(
        serde_json::to_value(OperInfoResponse::default()).unwrap(),
        json!({"Value":{}})
    );
    assert_eq!(
        serde_json::to_value(CreateEndpointResponse::default()).unwrap(),
        json!({})
    );
    assert_eq!(
        serde_json::to_value(GwAllocCheckResponse {
            skip_ipv4: true,
            skip_ipv6: true
        })
        .unwrap(),
        json!({"SkipIPv4":true,"SkipIPv6":true})
    );
    let caps = CapabilitiesResponse {
        scope: "local".into(),
        connectivity_scope: "global".into(),
        gw_alloc_checker: true,
    };
    assert_eq!(
        serde_json::to_value(caps).unwrap(),
        json!({"Scope":"local","ConnectivityScope":"global","GwAllocChecker":true})
    );
    let route = StaticRoute {
        destination: "0.0.0.0/0".into(),
        route_type: 1,
        next_hop: None,
    };
    assert_eq!(
        serde_json::to_value(route).unwrap(),
        json!({"Destination":"0.0.0.0/0","RouteType":1})
    );
}
