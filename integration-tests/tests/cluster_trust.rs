//! A multi-host overlay you can trust (issue #9): host identity. The lab of
//! `multihost.rs`: hosts are namespaces of one machine, so every plugin
//! reads the same /etc/machine-id — exactly cloned VMs.

use serde_json::Value;
use switchyard_integration_tests::multihost::{Cluster, LEASE_TTL, Net, Pki};
use switchyard_integration_tests::{random_id, wait_for};

const VNI: u32 = 5101;
const SUBNET: &str = "10.21.0.0/16";
const HOST_ID: &str = "SWITCHYARD__CLUSTER__HOST_ID";

fn ok_or_logs<T>(c: &Cluster, r: Result<T, String>, what: &str) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {e}\n{}", c.logs()))
}

/// The network on the hosts listed (the others never create it).
fn network_on(c: &Cluster, hosts: &[usize]) -> Net {
    let mut on = vec![None; c.hosts.len()];
    for &h in hosts {
        let r = c
            .create_network_on(h, &VNI.to_string(), SUBNET, &[])
            .unwrap_or_else(|e| panic!("CreateNetwork on {}: {e}\n{}", c.hosts[h].id, c.logs()));
        on[h] = Some(r);
    }
    Net {
        vni: VNI,
        subnet: SUBNET.into(),
        on,
    }
}

/// Two hosts with one machine-id and no `[cluster] host_id`: each gets an
/// identity of its own (generated, kept in its state dir, stable across a
/// restart), and their endpoints reach each other.
#[test]
fn cloned_machines_without_host_id_are_two_hosts() {
    let mut c = Cluster::without_plugins(2);
    for h in &mut c.hosts {
        h.set_env(HOST_ID, None);
        h.start_plugin();
    }
    let mut ids = Vec::new();
    for h in 0..2 {
        let id = ok_or_logs(&c, c.hosts[h].wait_registered(15.0), "registration");
        ids.push(id);
    }
    assert_ne!(ids[0], ids[1], "two hosts, one identity");
    let machine_id = std::fs::read_to_string("/etc/machine-id").unwrap_or_default();
    for id in &ids {
        assert!(
            machine_id.trim().is_empty() || !id.contains(machine_id.trim()),
            "the identity {id} is the machine-id"
        );
    }
    for (h, id) in c.hosts.iter_mut().zip(&ids) {
        let kept = h.plugin().state_dir.join("cluster-host-id.json");
        let text =
            std::fs::read_to_string(&kept).unwrap_or_else(|e| panic!("{}: {e}", kept.display()));
        assert!(text.contains(id.as_str()), "{}: {text}", kept.display());
        // The harness names hosts by their cluster id from now on.
        h.id = id.clone();
    }
    for id in &ids {
        assert_eq!(
            c.keys(&format!("nodes/{id}")).len(),
            1,
            "no nodes/{id}: {:?}",
            c.keys("")
        );
    }
    let net = network_on(&c, &[0, 1]);
    let a = c.attach(0, &net);
    let b = c.attach(1, &net);
    ok_or_logs(&c, c.wait_all_kernels(VNI, 10.0), "kernel");
    ok_or_logs(&c, c.wait_ping(a, b, 5.0), "h1 → h2");
    ok_or_logs(&c, c.wait_ping(b, a, 5.0), "h2 → h1");
    // `switchyard status` (text) shows the host id.
    let text = status_text(&c, 0);
    assert!(text.contains(&format!("host id {}", ids[0])), "{text}");

    // Stable across a restart (SIGKILL, at once: the old lease still
    // lives, and is this host's own — resumed, not a duplicate).
    c.hosts[0].restart_plugin();
    let again = ok_or_logs(&c, c.hosts[0].wait_registered(10.0), "re-registration");
    assert_eq!(again, ids[0], "the identity changed across a restart");
    let st = c.hosts[0].cluster_status().unwrap();
    assert!(st["problem"].is_null(), "{st:#}");
    let n = c.attach(1, &net);
    ok_or_logs(&c, c.wait_ping(a, n, 10.0), "after the restart");
    assert!(
        !c.hosts[0]
            .plugin()
            .log_text()
            .contains("in use by another live agent"),
        "the restarted plugin took itself for a duplicate:\n{}",
        c.logs()
    );
}

/// `switchyard status` of one host, as text.
fn status_text(c: &Cluster, host: usize) -> String {
    let h = &c.hosts[host];
    let p = h.plugin();
    let out = std::process::Command::new(switchyard_integration_tests::plugin::binary())
        .arg("status")
        .env("SWITCHYARD__PLUGIN__SOCKET", &p.socket)
        .env("SWITCHYARD__PLUGIN__STATE_DIR", &p.state_dir)
        .env_remove("SWITCHYARD_CONFIG")
        .output()
        .expect("switchyard status");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Two agents forced onto one host id (h2 configured as h1): the second
/// refuses to join, says why (log and status, naming `[cluster] host_id`
/// and both VTEPs), writes nothing to etcd and keeps serving; the first
/// keeps working. When the first is gone (its lease expired), the second
/// joins.
#[test]
fn duplicate_host_id_is_fenced() {
    let mut c = Cluster::without_plugins(3);
    c.hosts[1].set_env(HOST_ID, Some("h1"));
    c.hosts[0].start_plugin();
    c.hosts[2].start_plugin();
    for h in [0, 2] {
        ok_or_logs(&c, c.hosts[h].wait_registered(15.0), "registration");
    }
    let net = network_on(&c, &[0, 2]);
    let a = c.attach(0, &net);
    let b = c.attach(2, &net);
    ok_or_logs(&c, c.wait_ping(a, b, 10.0), "before the duplicate");
    let node_before = c.etcd.get_prefix(&format!("{}nodes/h1", c.prefix));

    c.hosts[1].start_plugin();
    let problem = wait_for(15.0, || {
        c.hosts[1]
            .cluster_status()
            .ok()
            .and_then(|s| s["problem"].as_str().map(str::to_string))
    })
    .unwrap_or_else(|| panic!("h2 never reported the duplicate\n{}", c.logs()));
    for want in [
        "[cluster] host_id",
        "\"h1\"",
        "192.168.88.1",
        "192.168.88.2",
    ] {
        assert!(
            problem.contains(want),
            "status problem lacks {want}: {problem}"
        );
    }
    let st = c.hosts[1].cluster_status().unwrap();
    assert_eq!(st["registered"], Value::Bool(false), "{st:#}");
    assert_eq!(st["host_id"], "h1");
    let log = c.hosts[1].plugin().log_text();
    assert!(
        log.contains("[cluster] host_id") && log.contains("192.168.88.1"),
        "h2's log does not say why:\n{log}"
    );
    // Nothing of h2 reached etcd: h1's records are h1's.
    assert_eq!(
        c.etcd.get_prefix(&format!("{}nodes/h1", c.prefix)),
        node_before
    );
    let alive = c.etcd.get_prefix(&format!("{}alive/h1", c.prefix));
    assert!(
        alive.len() == 1 && alive[0].1.contains("192.168.88.1"),
        "alive/h1: {alive:?}"
    );
    // The first keeps working: a new endpoint on h1 reaches h3 and back.
    let a2 = c.attach(0, &net);
    ok_or_logs(
        &c,
        c.wait_ping(a2, b, 10.0),
        "h1 → h3 with the duplicate up",
    );
    ok_or_logs(&c, c.wait_ping(b, a, 5.0), "h3 → h1 with the duplicate up");
    // The second refuses cluster work with the reason, and serves the rest.
    let e = c
        .create_network_on(1, &VNI.to_string(), SUBNET, &[])
        .expect_err("a VXLAN network on a fenced host");
    assert!(e.contains("[cluster] host_id"), "{e}");
    let mut ln = c.hosts[1].ln();
    let local = random_id();
    ln.create_network(
        &local,
        &[("backend", "macvlan")],
        &[("10.99.0.0/24", Some("10.99.0.1"))],
        &[],
        true,
    )
    .unwrap_or_else(|e| panic!("a local network on the fenced host: {e}\n{}", c.logs()));
    ln.create_endpoint(&local, &random_id(), "10.99.0.2/24", "", "")
        .unwrap_or_else(|e| panic!("an endpoint on the fenced host: {e}\n{}", c.logs()));

    // h1 goes away for good: its lease expires, h2 may be h1 now.
    c.hosts[0].kill_plugin();
    let id = ok_or_logs(
        &c,
        c.hosts[1].wait_registered(LEASE_TTL as f64 * 4.0 + 10.0),
        "h2 joining after h1 is gone",
    );
    assert_eq!(id, "h1");
    let st = c.hosts[1].cluster_status().unwrap();
    assert!(st["problem"].is_null(), "{st:#}");
    let alive = c.etcd.get_prefix(&format!("{}alive/h1", c.prefix));
    assert!(
        alive.len() == 1 && alive[0].1.contains("192.168.88.2"),
        "alive/h1 after the takeover: {alive:?}"
    );
}

/// A local network (macvlan on an isolated parent) and an endpoint on
/// `host`: the plugin serves whatever the cluster's state.
fn local_network_serves(c: &Cluster, host: usize) {
    let mut ln = c.hosts[host].ln();
    let local = random_id();
    ln.create_network(
        &local,
        &[("backend", "macvlan")],
        &[("10.98.0.0/24", Some("10.98.0.1"))],
        &[],
        true,
    )
    .unwrap_or_else(|e| panic!("a local network on {}: {e}\n{}", c.hosts[host].id, c.logs()));
    ln.create_endpoint(&local, &random_id(), "10.98.0.2/24", "", "")
        .unwrap_or_else(|e| panic!("an endpoint on {}: {e}\n{}", c.hosts[host].id, c.logs()));
}

/// `switchyard check` with these `SWITCHYARD__…` variables: (success, output).
fn check(env: &[(String, String)]) -> (bool, String) {
    let out = std::process::Command::new(switchyard_integration_tests::plugin::binary())
        .arg("check")
        .env_remove("SWITCHYARD_CONFIG")
        .env(
            "SWITCHYARD__PLUGIN__STATE_DIR",
            std::env::temp_dir().join("sy-trust-check"),
        )
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .expect("switchyard check");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// etcd with TLS and `--client-cert-auth` (certificates made by the test):
/// plugins with the CA and a client certificate register, the overlay
/// works; `switchyard check` accepts the files.
#[test]
fn etcd_with_tls_and_client_certificates() {
    let pki = Pki::generate();
    let env = pki.env(&pki.ca);
    let (ok, out) = check(&env);
    assert!(ok, "check refused good TLS files: {out}");
    assert!(out.contains("client certificate"), "{out}");
    let mut c = Cluster::without_plugins_with(2, Some(pki));
    for h in &mut c.hosts {
        h.start_plugin();
    }
    for h in 0..2 {
        ok_or_logs(
            &c,
            c.hosts[h].wait_registered(20.0),
            "registration over TLS",
        );
    }
    let net = network_on(&c, &[0, 1]);
    let a = c.attach(0, &net);
    let b = c.attach(1, &net);
    ok_or_logs(&c, c.wait_ping(a, b, 10.0), "h1 → h2");
    ok_or_logs(&c, c.wait_ping(b, a, 5.0), "h2 → h1");
    assert_eq!(c.keys(&format!("endpoints/{VNI}/")).len(), 2);
}

/// A plugin that trusts the wrong CA (or presents no client certificate)
/// never registers, says why (status and log name [cluster] ca_file), and
/// keeps serving local networks; a VXLAN network is refused with the
/// reason. The other host, rightly configured, is unaffected.
#[test]
fn etcd_tls_wrong_ca_is_a_clear_error() {
    let pki = Pki::generate();
    let wrong = pki.env(&pki.other_ca);
    let no_cert: Vec<(String, String)> = pki
        .env(&pki.ca)
        .into_iter()
        .filter(|(k, _)| !k.ends_with("CERT_FILE") && !k.ends_with("KEY_FILE"))
        .collect();
    let mut c = Cluster::without_plugins_with(3, Some(pki));
    for (k, v) in wrong {
        c.hosts[1].set_env(&k, Some(&v));
    }
    for k in [
        "SWITCHYARD__CLUSTER__CERT_FILE",
        "SWITCHYARD__CLUSTER__KEY_FILE",
    ] {
        c.hosts[2].set_env(k, None);
    }
    for (k, v) in no_cert {
        c.hosts[2].set_env(&k, Some(&v));
    }
    for h in &mut c.hosts {
        h.start_plugin();
    }
    ok_or_logs(&c, c.hosts[0].wait_registered(20.0), "h1 (right CA)");
    for (h, why) in [(1, "wrong CA"), (2, "no client certificate")] {
        let err = wait_for(20.0, || {
            c.hosts[h]
                .cluster_status()
                .ok()
                .and_then(|s| s["etcd_error"].as_str().map(str::to_string))
        })
        .unwrap_or_else(|| panic!("{why}: no etcd_error in status\n{}", c.logs()));
        eprintln!("{why}: {err}");
        let want = if h == 1 {
            "[cluster] ca_file"
        } else {
            "[cluster] cert_file and key_file"
        };
        assert!(err.contains(want), "{why}: {err}");
        let st = c.hosts[h].cluster_status().unwrap();
        assert_eq!(st["registered"], Value::Bool(false), "{why}: {st:#}");
        local_network_serves(&c, h);
        let e = c
            .create_network_on(h, &VNI.to_string(), SUBNET, &[])
            .expect_err("a VXLAN network without etcd");
        assert!(e.contains("etcd"), "{why}: {e}");
    }
    let wrong_ca = c.hosts[1].plugin().log_text();
    assert!(
        wrong_ca.contains("[cluster] ca_file") && wrong_ca.to_lowercase().contains("certificate"),
        "h2's log does not say the CA is wrong:\n{wrong_ca}"
    );
    // The rightly configured host is unaffected.
    let net = network_on(&c, &[0]);
    c.attach(0, &net);
    assert!(c.hosts[0].cluster_status().unwrap()["etcd_error"].is_null());
}

/// `switchyard check` reads the TLS files: missing, not PEM, a certificate
/// given as the key, half a pair, TLS files with http://.
#[test]
fn check_validates_etcd_tls_files() {
    let pki = Pki::generate();
    let good = pki.env(&pki.ca);
    let with = |k: &str, v: &str| -> Vec<(String, String)> {
        let mut e: Vec<(String, String)> = good.iter().filter(|(ek, _)| ek != k).cloned().collect();
        if !v.is_empty() {
            e.push((k.to_string(), v.to_string()));
        }
        e
    };
    let junk = pki.dir().join("junk.pem");
    std::fs::write(&junk, "hello\n").unwrap();
    let cert = pki.client_cert.display().to_string();
    for (env, want) in [
        (
            with("SWITCHYARD__CLUSTER__CA_FILE", "/nonexistent/ca.pem"),
            "[cluster] ca_file \"/nonexistent/ca.pem\" cannot be read",
        ),
        (
            with("SWITCHYARD__CLUSTER__CA_FILE", &junk.display().to_string()),
            "no PEM block found",
        ),
        (
            with("SWITCHYARD__CLUSTER__KEY_FILE", &cert),
            "[cluster] key_file",
        ),
        (
            with("SWITCHYARD__CLUSTER__KEY_FILE", ""),
            "cert_file and key_file go together",
        ),
        (
            with(
                "SWITCHYARD__CLUSTER__ETCD_ENDPOINTS",
                "http://192.168.88.254:2379",
            ),
            "only with https://",
        ),
        (
            with("SWITCHYARD__CLUSTER__USERNAME", "switchyard"),
            "username and password go together",
        ),
    ] {
        let (ok, out) = check(&env);
        assert!(!ok, "check accepted {env:?}: {out}");
        assert!(out.contains(want), "check said, for {want}: {out}");
    }
}
