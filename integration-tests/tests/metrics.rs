//! `/metrics` and `/healthz` on the opt-in listener: the numbers move with
//! a container's lifecycle, a restart that repairs drift, and (with a real
//! etcd) the VXLAN control plane's session, watch and reconcile loop; the
//! plugin's own socket does not serve them.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use switchyard_integration_tests::multihost::Cluster;
use switchyard_integration_tests::{Lab, Netns, TempDir, wait_for};

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
    try_sample(text, series).unwrap_or(0.0)
}

fn try_sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Scrapes until `series` satisfies `ok` (within `secs`); the last scrape.
fn wait_sample(sock: &str, series: &str, secs: f64, ok: impl Fn(f64) -> bool) -> String {
    let mut last = String::new();
    let met = wait_for(secs, || {
        last = get(sock, "/metrics");
        try_sample(&last, series).filter(|v| ok(*v))
    });
    assert!(
        met.is_some(),
        "{series} not as expected within {secs} s:\n{last}"
    );
    last
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
    // A resync every second: the VXLAN loop's drift is repaired quickly.
    let mut lab = Lab::config()
        .env("SWITCHYARD__METRICS__LISTEN", &listen)
        .env("SWITCHYARD__CLUSTER__RESYNC_INTERVAL", "1")
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
    // DeleteEndpoint handed the link to the background deleter.
    let after = wait_sample(&sock, "switchyard_deferred_deletions_total", 5.0, |v| {
        v >= 1.0
    });
    assert_eq!(
        sample(&after, "switchyard_deferred_deletions_pending"),
        0.0,
        "{after}"
    );
    assert_eq!(
        sample(&after, "switchyard_reconcile_runs_total{loop=\"startup\"}"),
        1.0,
        "{after}"
    );
    assert_eq!(
        sample(
            &after,
            "switchyard_drift_repaired_total{loop=\"startup\",what=\"orphaned_links\"}"
        ),
        0.0
    );

    // Drift: a link this instance marked that the state does not know; the
    // restart's reconciliation removes it and says so.
    lab.host
        .ip(&["link", "add", "syorphan", "link", "tp0", "type", "macvlan"]);
    lab.host.ip(&[
        "link",
        "set",
        "syorphan",
        "alias",
        &format!("switchyard@{}:{net}:deadbeef", lab.plugin.name),
    ]);
    lab.restart_plugin();
    let restarted = wait_sample(
        &sock,
        "switchyard_drift_repaired_total{loop=\"startup\",what=\"orphaned_links\"}",
        5.0,
        |v| v == 1.0,
    );
    assert!(
        restarted.contains("switchyard_startup_removed_links 1"),
        "{restarted}"
    );
    assert!(lab.gone("syorphan"));

    // A single-host VXLAN network: its reconcile loop runs, and re-creates
    // a device deleted by hand.
    let vx = lab
        .network(
            &[("backend", "vxlan"), ("vni", "7301")],
            "10.78.0.0/24",
            false,
        )
        .unwrap();
    let runs = "switchyard_reconcile_runs_total{loop=\"vxlan\"}";
    let first = sample(&wait_sample(&sock, runs, 5.0, |v| v >= 1.0), runs);
    let remote = format!(
        "switchyard_vxlan_remote_endpoints{{network=\"{}\",vni=\"7301\"}}",
        &vx[..12]
    );
    wait_sample(&sock, &remote, 5.0, |v| v == 0.0);
    lab.host.ip(&["link", "del", "syvx7301"]);
    wait_sample(
        &sock,
        "switchyard_drift_repaired_total{loop=\"vxlan\",what=\"vxlan_devices\"}",
        5.0,
        |v| v == 1.0,
    );
    wait_sample(&sock, runs, 5.0, |v| v > first);
    assert!(lab.host.links().contains(&"syvx7301".to_string()));
    lab.ln.delete_network(&vx).unwrap();
    // Not on the plugin's socket.
    let r = lab.plugin.client().call_raw("metrics", b"").unwrap();
    assert_eq!(r.status, 404);
    drop(lab);
}

/// With a real etcd: the session's state follows etcd going away and
/// coming back, the watch's lag is measured, and the remote endpoints
/// programmed and the drift repaired per VXLAN network move.
#[test]
fn vxlan_metrics_follow_the_cluster() {
    const VNI: u32 = 5001;
    let dir = TempDir::new("metrics-vxlan");
    let socks: Vec<String> = (0..2)
        .map(|i| {
            dir.path()
                .join(format!("m{i}.sock"))
                .to_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let mut c = Cluster::without_plugins(2);
    for (h, sock) in c.hosts.iter_mut().zip(&socks) {
        h.set_env("SWITCHYARD__METRICS__LISTEN", Some(&format!("unix:{sock}")));
        h.start_plugin();
    }
    for h in &c.hosts {
        h.wait_registered(10.0)
            .unwrap_or_else(|e| panic!("{e}\n{}", c.logs()));
    }
    let sock = &socks[0];
    let state = |s: &str| format!("switchyard_etcd_session{{state=\"{s}\"}}");
    let m = wait_sample(sock, &state("registered"), 5.0, |v| v == 1.0);
    assert_eq!(sample(&m, &state("fenced")), 0.0, "{m}");
    assert_eq!(sample(&m, &state("connecting")), 0.0, "{m}");
    assert_eq!(sample(&m, "switchyard_etcd_sessions_total"), 1.0, "{m}");
    assert!(sample(&m, "switchyard_etcd_revision") > 0.0, "{m}");

    let net = c.create_network(VNI, "10.20.0.0/16", &[]);
    let e1 = c.attach(0, &net);
    let e2 = c.attach(1, &net);
    c.wait_all_kernels(VNI, 10.0)
        .unwrap_or_else(|e| panic!("{e}\n{}", c.logs()));
    let remote = format!(
        "switchyard_vxlan_remote_endpoints{{network=\"{}\",vni=\"{VNI}\"}}",
        &net.id_on(0)[..12]
    );
    wait_sample(sock, &remote, 5.0, |v| v == 1.0);
    // The watch answered a progress request (keep-alive every TTL/3 = 1 s)
    // and the view caught up with etcd's revision.
    let m = wait_sample(sock, "switchyard_etcd_watch_revisions_behind", 5.0, |v| {
        v == 0.0
    });
    let lag = sample(&m, "switchyard_etcd_watch_lag_seconds");
    assert!(lag < 1.0, "watch lag {lag} s on an idle local etcd:\n{m}");
    let revision = sample(&m, "switchyard_etcd_revision");
    assert!(
        revision >= c.etcd.revision() as f64 - 1.0,
        "view at {revision}, etcd at {}",
        c.etcd.revision()
    );

    // Drift: the FDB entry of host 2's endpoint deleted by hand.
    let drift = "switchyard_drift_repaired_total{loop=\"vxlan\",what=\"fdb_neighbour_entries\"}";
    let before = sample(&get(sock, "/metrics"), drift);
    let mac = &c.eps[e2].mac;
    let (ok, out) = c.hosts[0].ns.exec(&[
        "bridge",
        "fdb",
        "del",
        mac,
        "dev",
        "syvx5001",
        "dst",
        "192.168.88.2",
        "self",
    ]);
    assert!(ok, "{out}");
    wait_sample(sock, drift, 8.0, |v| v > before);
    c.wait_all_kernels(VNI, 5.0)
        .unwrap_or_else(|e| panic!("{e}\n{}", c.logs()));

    // The endpoint on host 2 goes: host 1 programs none.
    c.detach(e2);
    wait_sample(sock, &remote, 8.0, |v| v == 0.0);
    let _ = e1;

    // etcd away: the session is lost; back: a new one registers.
    c.etcd.stop();
    wait_sample(sock, &state("connecting"), 10.0, |v| v == 1.0);
    assert_eq!(sample(&get(sock, "/metrics"), &state("registered")), 0.0);
    c.etcd.start_again();
    let m = wait_sample(sock, &state("registered"), 15.0, |v| v == 1.0);
    assert!(sample(&m, "switchyard_etcd_sessions_total") >= 2.0, "{m}");
}
