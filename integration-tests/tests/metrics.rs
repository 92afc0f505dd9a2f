//! `/metrics` and `/healthz` on the opt-in listener: the numbers move with
//! a container's lifecycle, and the plugin's own socket does not serve them.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use switchyard_integration_tests::{Lab, Netns, TempDir};

fn get(sock: &str, path: &str) -> String {
    let mut s = UnixStream::connect(sock).unwrap_or_else(|e| panic!("connect {sock}: {e}"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// The value of the sample whose line starts with `series` (name and labels).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn metrics_follow_a_lifecycle() {
    let dir = TempDir::new("metrics");
    let sock = dir
        .path()
        .join("metrics.sock")
        .to_str()
        .unwrap()
        .to_string();
    let listen = format!("unix:{sock}");
    let mut lab = Lab::config()
        .env("SWITCHYARD__METRICS__LISTEN", &listen)
        .start();
    let health = get(&sock, "/healthz");
    assert!(
        health.starts_with("HTTP/1.1 200") && health.ends_with("ok\n"),
        "{health}"
    );
    let before = get(&sock, "/metrics");
    assert!(
        before.contains("switchyard_startup_removed_links 0"),
        "{before}"
    );
    assert_eq!(
        sample(&before, "switchyard_networks{backend=\"macvlan\"}"),
        0.0
    );

    let net = lab
        .network(
            &[("backend", "macvlan"), ("parent", "tp0")],
            "10.79.0.0/24",
            false,
        )
        .unwrap();
    let ctr = Netns::new("c");
    let (ep, _) = lab.attach(&net, &ctr, "10.79.0.2/24");
    let _ = lab.ln.call("Join", serde_json::json!({"NetworkID": "bad"}));
    let during = get(&sock, "/metrics");
    let ok = |m: &str| {
        format!("switchyard_plugin_calls_total{{method=\"NetworkDriver.{m}\",outcome=\"ok\"}}")
    };
    assert_eq!(sample(&during, &ok("CreateNetwork")), 1.0, "{during}");
    assert_eq!(sample(&during, &ok("CreateEndpoint")), 1.0);
    assert_eq!(sample(&during, &ok("Join")), 1.0);
    assert_eq!(
        sample(
            &during,
            "switchyard_plugin_calls_total{method=\"NetworkDriver.Join\",outcome=\"refused\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(&during, "switchyard_networks{backend=\"macvlan\"}"),
        1.0
    );
    assert_eq!(
        sample(&during, "switchyard_endpoints{backend=\"macvlan\"}"),
        1.0
    );
    assert!(
        sample(
            &during,
            "switchyard_plugin_call_seconds_count{method=\"NetworkDriver.Join\"}"
        ) >= 2.0,
        "{during}"
    );

    lab.detach(
        &net,
        &ep,
        &ctr,
        &switchyard_core::model::endpoint_link_name(&ep),
    );
    lab.ln.delete_network(&net).unwrap();
    let after = get(&sock, "/metrics");
    assert_eq!(
        sample(&after, "switchyard_networks{backend=\"macvlan\"}"),
        0.0,
        "{after}"
    );
    assert_eq!(sample(&after, &ok("DeleteNetwork")), 1.0);
    // Not on the plugin's socket.
    let r = lab.plugin.client().call_raw("metrics", b"").unwrap();
    assert_eq!(r.status, 404);
    drop(lab);
}
