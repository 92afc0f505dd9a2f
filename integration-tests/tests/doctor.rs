//! `switchyard doctor` on a host the test made: each finding, and the exit
//! code when something is wrong.

use std::time::Duration;
use switchyard_integration_tests::{Lab, Netns, Plugin};

fn doctor(ns: &Netns, env: &[(&str, &str)]) -> (bool, String) {
    let args = ["doctor", "--docker-socket", "/nonexistent/docker.sock"];
    let out = Plugin::run_once(ns, &args, env, Duration::from_secs(60));
    (out.success, out.text)
}

#[test]
fn doctor_reports_each_finding_with_what_to_do() {
    let lab = Lab::config().veth("tp2", "tp3").start();
    lab.host.ip(&["link", "set", "tp2", "down"]);
    let sock = lab.plugin.socket_path().to_str().unwrap().to_string();
    // A healthy setup: the parent is up, the plugin answers.
    let (ok, text) = doctor(
        &lab.host,
        &[
            ("SWITCHYARD__PLUGIN__SOCKET", &sock),
            ("SWITCHYARD__MACVLAN__PARENT", "tp0"),
        ],
    );
    assert!(ok, "{text}");
    assert!(text.contains("[ok  ] kernel: macvlan links"), "{text}");
    assert!(
        text.contains("[ok  ] [macvlan] parent tp0: up, MTU"),
        "{text}"
    );
    assert!(
        text.contains(&format!("[ok  ] plugin answers on {sock}")),
        "{text}"
    );
    assert!(
        text.contains("dockerd does not answer") && text.contains("--docker-socket"),
        "{text}"
    );

    // A missing parent fails, with what to do; a down one warns.
    let (ok, text) = doctor(
        &lab.host,
        &[
            ("SWITCHYARD__PLUGIN__SOCKET", &sock),
            ("SWITCHYARD__MACVLAN__PARENT", "nope0"),
            ("SWITCHYARD__IPVLAN__PARENT", "tp2"),
        ],
    );
    assert!(!ok, "a missing parent must fail the doctor: {text}");
    assert!(
        text.contains("[FAIL] [macvlan] parent nope0 does not exist")
            && text.contains("see `ip link`"),
        "{text}"
    );
    assert!(
        text.contains("[warn] [ipvlan] parent tp2 exists but is down")
            && text.contains("ip link set tp2 up"),
        "{text}"
    );

    // No plugin on the socket; an etcd that does not answer.
    let (ok, text) = doctor(
        &lab.host,
        &[
            (
                "SWITCHYARD__PLUGIN__SOCKET",
                "/run/docker/plugins/nobody-here.sock",
            ),
            ("SWITCHYARD__CLUSTER__ETCD_ENDPOINTS", "http://127.0.0.1:1"),
        ],
    );
    assert!(!ok, "{text}");
    assert!(text.contains("[warn] no plugin answers"), "{text}");
    assert!(
        text.contains("[FAIL] etcd http://127.0.0.1:1 does not answer")
            && text.contains("[cluster] etcd_endpoints"),
        "{text}"
    );
}

/// libfaketime (Debian's `faketime`): the doctor's own clock moved, the
/// machine's untouched.
const FAKETIME_LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// With a real etcd: the identity is this host's own, another host's agent
/// already holding it is a failure with what to do, and a clock off by 30 s
/// is found (only the doctor's clock is moved, with libfaketime).
#[test]
fn doctor_checks_clock_skew_and_identity_against_etcd() {
    use switchyard_integration_tests::multihost::{Cluster, cluster_env};
    assert!(
        std::path::Path::new(FAKETIME_LIB).exists(),
        "{FAKETIME_LIB} is missing: apt-get install faketime (scripts/test.sh does)"
    );
    let c = Cluster::new(2);
    for h in &c.hosts {
        h.wait_registered(10.0)
            .unwrap_or_else(|e| panic!("{e}\n{}", c.logs()));
    }
    let env_of = |host: usize, host_id: &str| -> Vec<(String, String)> {
        let p = c.hosts[host].plugin();
        let mut env = cluster_env(host_id, &c.prefix);
        env.push((
            "SWITCHYARD__PLUGIN__STATE_DIR".into(),
            p.state_dir.to_str().unwrap().into(),
        ));
        env.push((
            "SWITCHYARD__PLUGIN__SOCKET".into(),
            p.socket.to_str().unwrap().into(),
        ));
        env
    };
    let run = |host: usize, env: &[(String, String)]| {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        doctor(&c.hosts[host].ns, &env)
    };

    // Host 1 as it is: reachable, credentials accepted, its own identity,
    // clocks in step (one machine).
    let (ok, text) = run(0, &env_of(0, "h1"));
    assert!(ok, "{text}");
    for want in [
        "[ok  ] etcd http://192.168.88.254:2379 answers",
        "accepts this host's connection and credentials",
        "[ok  ] host identity \"h1\": unique, held by this host's agent",
        "[ok  ] clock skew: this host's clock is",
    ] {
        assert!(text.contains(want), "no `{want}` in:\n{text}");
    }

    // Host 2 configured with host 1's identity: another live agent (host 1's,
    // another lease and VTEP) holds it.
    let (ok, text) = run(1, &env_of(1, "h1"));
    assert!(!ok, "a shared identity must fail the doctor:\n{text}");
    assert!(
        text.contains("[FAIL] host identity \"h1\" is not unique")
            && text.contains("VTEP 192.168.88.1")
            && text.contains("give each host its own [cluster] host_id"),
        "{text}"
    );

    // Host 1's doctor with its clock 30 s ahead.
    let mut env = env_of(0, "h1");
    env.extend([
        ("LD_PRELOAD".to_string(), FAKETIME_LIB.to_string()),
        ("FAKETIME".to_string(), "+30s".to_string()),
        ("FAKETIME_DONT_FAKE_MONOTONIC".to_string(), "1".to_string()),
    ]);
    let (ok, text) = run(0, &env);
    assert!(ok, "a skew is a warning, not a failure:\n{text}");
    let skew: f64 = text
        .split("[warn] clock skew: this host's clock is ")
        .nth(1)
        .and_then(|rest| rest.split(" s ahead of etcd's").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no skew warning:\n{text}"));
    assert!(
        (28.5..=31.5).contains(&skew) && text.contains("synchronise the clocks"),
        "a clock 30 s ahead measured as {skew} s:\n{text}"
    );
}

/// etcd with TLS and client certificates: the doctor connects as the plugin
/// does (the same CA, certificate and key) and measures the clock skew over
/// TLS too; a wrong CA is a failure that names the setting to look at.
#[test]
fn doctor_checks_etcd_over_tls() {
    use switchyard_integration_tests::multihost::{Cluster, Pki};
    let pki = Pki::generate();
    let good = pki.env(&pki.ca);
    let wrong = pki.env(&pki.other_ca);
    let mut c = Cluster::without_plugins_with(1, Some(pki));
    for (k, v) in &good {
        c.hosts[0].set_env(k, Some(v));
    }
    c.hosts[0].start_plugin();
    c.hosts[0]
        .wait_registered(20.0)
        .unwrap_or_else(|e| panic!("{e}\n{}", c.logs()));
    let p = c.hosts[0].plugin();
    let run = |tls: &[(String, String)]| {
        let mut env: Vec<(&str, &str)> = vec![
            ("SWITCHYARD__CLUSTER__HOST_ID", "h1"),
            ("SWITCHYARD__CLUSTER__PREFIX", c.prefix.as_str()),
            ("SWITCHYARD__VXLAN__UNDERLAY", "uplink"),
            (
                "SWITCHYARD__PLUGIN__STATE_DIR",
                p.state_dir.to_str().unwrap(),
            ),
            ("SWITCHYARD__PLUGIN__SOCKET", p.socket.to_str().unwrap()),
        ];
        env.extend(tls.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        doctor(&c.hosts[0].ns, &env)
    };
    let (ok, text) = run(&good);
    assert!(ok, "{text}");
    assert!(
        text.contains("accepts this host's connection and credentials")
            && text.contains("[ok  ] host identity \"h1\": unique")
            && text.contains("[ok  ] etcd https://192.168.88.254:2379 answers")
            && text.contains("[ok  ] clock skew: this host's clock is"),
        "{text}"
    );
    let (ok, text) = run(&wrong);
    assert!(
        !ok,
        "a CA that did not sign etcd's certificate must fail:\n{text}"
    );
    assert!(
        text.contains("[FAIL] etcd at https://")
            && text.contains(
                "[FAIL] etcd https://192.168.88.254:2379 does not answer: TLS with etcd failed"
            )
            && text.contains("ca_file"),
        "{text}"
    );
}
