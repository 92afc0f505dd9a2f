//! Values dockerd would never send but a client could, refused where they
//! arrive (CreateEndpoint, RequestPool) with the field and the rule instead
//! of failing later (issue #8, reproduction 9).

use serde_json::json;
use switchyard_integration_tests::{Lab, random_id};

#[test]
fn endpoint_addresses_and_macs_are_checked_at_create_endpoint() {
    let mut lab = Lab::new();
    let net = lab
        .network(
            &[("backend", "macvlan"), ("parent", "tp0")],
            "10.66.0.0/24",
            false,
        )
        .unwrap();
    let refused = |lab: &mut Lab, addr: &str, mac: &str| {
        let ep = random_id();
        let e = lab
            .ln
            .create_endpoint(&net, &ep, addr, "", mac)
            .expect_err("refused");
        // Nothing was kept: the endpoint is unknown.
        let info = lab.ln.endpoint_call("EndpointOperInfo", &net, &ep).unwrap();
        assert!(info["Value"]["host_link"].is_null(), "{info}");
        e
    };
    let e = refused(&mut lab, "10.99.0.2/24", "");
    assert!(
        e.contains("Address 10.99.0.2/24 is outside the network's subnets (10.66.0.0/24)"),
        "{e}"
    );
    let e = refused(&mut lab, "10.66.0.2/24", "00:00:00:00:00:00");
    assert!(
        e.contains("MacAddress 00:00:00:00:00:00 is all zeroes"),
        "{e}"
    );
    let e = refused(&mut lab, "10.66.0.2/24", "01:00:5e:00:00:01");
    assert!(e.contains("is a multicast address"), "{e}");
    // The right values are accepted.
    lab.ln
        .create_endpoint(&net, &random_id(), "10.66.0.2/24", "", "02:42:0a:42:00:02")
        .unwrap();
}

#[test]
fn an_address_space_with_a_slash_is_refused_at_request_pool() {
    let lab = Lab::new();
    let r = lab
        .plugin
        .client()
        .call(
            "IpamDriver.RequestPool",
            &json!({"AddressSpace": "a/b", "Pool": "10.67.0.0/24", "SubPool": "", "Options": {}, "V6": false}),
        )
        .unwrap();
    let e = r.json()["Err"].as_str().unwrap_or_default().to_string();
    assert!(e.contains("AddressSpace \"a/b\" contains '/'"), "{e}");
}
