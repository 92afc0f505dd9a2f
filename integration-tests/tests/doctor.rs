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
