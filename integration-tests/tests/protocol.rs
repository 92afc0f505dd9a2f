//! The real `switchyard` binary, driven over its socket the way libnetwork
//! drives it, with real links in namespaces the tests make: a "host"
//! namespace holding the plugin and a veth parent (tp0, whose peer tp1 plays
//! the LAN), and one namespace per "container".

use serde_json::{Value, json};
use std::time::Duration;
use switchyard_integration_tests::libnetwork::{Answer, Libnetwork};
use switchyard_integration_tests::{Lab, Netns, random_id, wait_for};

const SUBNET: &str = "10.77.0.0/24";

/// CreateNetwork: macvlan in `mode` on tp0, SUBNET with gateway .1.
fn network(lab: &mut Lab, mode: &str) -> String {
    let id = random_id();
    create_macvlan(lab, &id, mode).unwrap_or_else(|e| panic!("CreateNetwork {mode}: {e}"));
    id
}

/// The CreateNetwork request `network` sends, for network `id`.
fn create_macvlan(lab: &mut Lab, id: &str, mode: &str) -> Answer {
    lab.ln.create_network(
        id,
        &[
            ("backend", "macvlan"),
            ("parent", "tp0"),
            ("macvlan_mode", mode),
        ],
        &[(SUBNET, Some("10.77.0.1"))],
        &[],
        false,
    )
}

/// The plugin's `Switchyard.Status` answer.
fn status(lab: &mut Lab) -> Value {
    lab.ln
        .client
        .call_raw("Switchyard.Status", b"")
        .unwrap()
        .json()
}

#[test]
fn two_containers_ping_over_macvlan_and_teardown_leaves_nothing() {
    let mut lab = Lab::new();
    let net = network(&mut lab, "bridge");
    let (a, b) = (Netns::new("ca"), Netns::new("cb"));
    let (ea, ja) = lab.attach(&net, &a, "10.77.0.2/24");
    let (eb, jb) = lab.attach(&net, &b, "10.77.0.3/24");
    assert_eq!(ja["Gateway"], json!("10.77.0.1"));
    assert_eq!(ja["InterfaceName"]["DstPrefix"], json!("eth"));
    assert_eq!(ja["DisableGatewayService"], json!(true));
    assert!(
        a.ping("10.77.0.3"),
        "a cannot reach b over macvlan bridge mode"
    );
    assert!(b.ping("10.77.0.2"));
    // The link inside the container is a macvlan on tp0 with the MAC
    // CreateEndpoint reported, still carrying its mark.
    let d = a.ip(&["-d", "link", "show", "eth0"]);
    assert!(d.contains("macvlan mode bridge"), "{d}");
    assert!(
        d.contains(&format!("alias switchyard@{}:{net}:{ea}", lab.plugin.name)),
        "{d}"
    );
    let info = lab.ln.endpoint_call("EndpointOperInfo", &net, &ea).unwrap();
    assert_eq!(info["Value"]["backend"], json!("macvlan"));
    assert!(
        d.contains(info["Value"]["mac_address"].as_str().unwrap()),
        "{d}"
    );

    let sa = ja["InterfaceName"]["SrcName"].as_str().unwrap().to_string();
    let sb = jb["InterfaceName"]["SrcName"].as_str().unwrap().to_string();
    lab.detach(&net, &ea, &a, &sa);
    lab.detach(&net, &eb, &b, &sb);
    lab.ln.delete_network(&net).unwrap();
    lab.assert_no_marked_links();
    assert!(
        lab.host.links().contains(&"tp0".to_string()),
        "the parent is the host's and stays"
    );
}

#[test]
fn mtu_mac_ipv6_and_internal_answers() {
    let mut lab = Lab::new();
    lab.host.ip(&["link", "set", "tp0", "mtu", "1450"]);
    // MTU from the option.
    let net = random_id();
    lab.ln
        .create_network(
            &net,
            &[
                ("backend", "macvlan"),
                ("parent", "tp0"),
                ("com.docker.network.driver.mtu", "1400"),
            ],
            &[(SUBNET, Some("10.77.0.1"))],
            &[("fd00:77::/64", Some("fd00:77::1"))],
            false,
        )
        .unwrap();
    let ep = random_id();
    let r = lab
        .ln
        .create_endpoint(
            &net,
            &ep,
            "10.77.0.2/24",
            "fd00:77::2/64",
            "02:42:aa:bb:cc:dd",
        )
        .unwrap();
    assert_eq!(r, json!({}), "a MAC the user chose is not returned");
    let j = lab
        .ln
        .join(&net, &ep, "/var/run/docker/netns/notyet")
        .unwrap();
    assert_eq!(
        (j["Gateway"].as_str(), j["GatewayIPv6"].as_str()),
        (Some("10.77.0.1"), Some("fd00:77::1"))
    );
    let src = j["InterfaceName"]["SrcName"].as_str().unwrap();
    let d = lab.host.ip(&["-d", "link", "show", src]);
    assert!(
        d.contains("mtu 1400") && d.contains("02:42:aa:bb:cc:dd"),
        "{d}"
    );
    // Without the option: the parent's MTU.
    let net2 = network(&mut lab, "bridge");
    let ep2 = random_id();
    let r = lab
        .ln
        .create_endpoint(&net2, &ep2, "10.77.0.9/24", "", "")
        .unwrap();
    let mac = r["Interface"]["MacAddress"]
        .as_str()
        .expect("Switchyard reports the MAC it chose")
        .to_string();
    let j = lab.ln.join(&net2, &ep2, "").unwrap();
    assert!(j.get("GatewayIPv6").is_none(), "{j}");
    let d = lab.host.ip(&[
        "-d",
        "link",
        "show",
        j["InterfaceName"]["SrcName"].as_str().unwrap(),
    ]);
    assert!(d.contains("mtu 1450") && d.contains(&mac), "{d}");
    // Internal: no gateways at all.
    let net3 = random_id();
    lab.ln
        .create_network(
            &net3,
            &[("backend", "macvlan"), ("parent", "tp0")],
            &[("10.78.0.0/24", Some("10.78.0.1"))],
            &[],
            true,
        )
        .unwrap();
    let ep3 = random_id();
    lab.ln
        .create_endpoint(&net3, &ep3, "10.78.0.2/24", "", "")
        .unwrap();
    let j = lab.ln.join(&net3, &ep3, "").unwrap();
    assert!(
        j.get("Gateway").is_none() && j.get("GatewayIPv6").is_none(),
        "{j}"
    );
    // An MTU above the parent's is refused at create, naming the limit.
    let e = lab
        .network(
            &[
                ("backend", "macvlan"),
                ("parent", "tp0"),
                ("com.docker.network.driver.mtu", "9000"),
            ],
            SUBNET,
            false,
        )
        .unwrap_err();
    assert!(
        e.contains("larger than the MTU of parent tp0 (1450)"),
        "{e}"
    );
    for n in [&net, &net2, &net3] {
        lab.ln.delete_network(n).unwrap();
    }
    lab.assert_no_marked_links();
}

/// Puts tp1 (the "LAN" side of the parent) into a bridge with hairpin on:
/// a switch that reflects VEPA traffic back, as a VEPA-capable switch does.
fn hairpin_switch(host: &Netns) {
    host.ip(&["link", "add", "lan0", "type", "bridge"]);
    host.ip(&["link", "set", "tp1", "master", "lan0"]);
    host.ip(&["link", "set", "lan0", "up"]);
    host.ip(&[
        "link",
        "set",
        "dev",
        "tp1",
        "type",
        "bridge_slave",
        "hairpin",
        "on",
    ]);
}

#[test]
fn macvlan_modes_behave_as_the_kernel_defines_them() {
    // bridge: containers on one parent reach each other directly.
    // vepa: only through the switch (not with a plain peer; yes with hairpin).
    // private: never, not even with hairpin.
    for (mode, plain, hairpin) in [
        ("bridge", true, true),
        ("vepa", false, true),
        ("private", false, false),
    ] {
        let mut lab = Lab::new();
        let net = network(&mut lab, mode);
        let (a, b) = (Netns::new("ma"), Netns::new("mb"));
        lab.attach(&net, &a, "10.77.0.2/24");
        lab.attach(&net, &b, "10.77.0.3/24");
        assert!(
            a.ip(&["-d", "link", "show", "eth0"])
                .contains(&format!("macvlan mode {mode}"))
        );
        // Where traffic must pass, a few seconds for ARP to settle (a
        // just-failed neighbour entry, a port just added to the switch);
        // where it must not, one try is the answer.
        let reaches = |want: bool| {
            if want {
                wait_for(5.0, || a.ping("10.77.0.3").then_some(())).is_some()
            } else {
                a.ping("10.77.0.3")
            }
        };
        assert_eq!(reaches(plain), plain, "{mode} without a hairpin switch");
        hairpin_switch(&lab.host);
        assert_eq!(reaches(hairpin), hairpin, "{mode} behind a hairpin switch");
    }
}

#[test]
fn passthru_serves_one_container_and_says_so_to_the_second() {
    let mut lab = Lab::new();
    lab.host
        .ip(&["addr", "add", "10.77.0.254/24", "dev", "tp1"]);
    let net = network(&mut lab, "passthru");
    let a = Netns::new("pa");
    let (ea, _) = lab.attach(&net, &a, "10.77.0.2/24");
    assert!(
        a.ping("10.77.0.254"),
        "the passthru container reaches the LAN side"
    );
    let e = lab
        .ln
        .create_endpoint(&net, &random_id(), "10.77.0.3/24", "", "")
        .unwrap_err();
    assert!(
        e.contains("passthru") && e.contains("macvlan_mode=bridge"),
        "{e}"
    );
    // A second network on a passthru parent is refused too.
    let e = lab
        .network(
            &[("backend", "macvlan"), ("parent", "tp0")],
            "10.79.0.0/24",
            false,
        )
        .unwrap_err();
    assert!(
        e.contains("parent \"tp0\" is already used") && e.contains("passthru"),
        "{e}"
    );
    let _ = ea;
}

#[test]
fn calls_are_idempotent_and_teardown_tolerates_the_unknown() {
    let mut lab = Lab::new();
    let net = network(&mut lab, "bridge");
    // CreateNetwork again with the same request: same answer.
    create_macvlan(&mut lab, &net, "bridge").unwrap();
    let ep = random_id();
    let first = lab
        .ln
        .create_endpoint(&net, &ep, "10.77.0.2/24", "", "")
        .unwrap();
    assert_eq!(
        lab.ln
            .create_endpoint(&net, &ep, "10.77.0.2/24", "", "")
            .unwrap(),
        first
    );
    let j1 = lab.ln.join(&net, &ep, "").unwrap();
    let j2 = lab.ln.join(&net, &ep, "").unwrap();
    assert_eq!(j1, j2);
    assert_eq!(
        lab.host.marked_links().len(),
        1,
        "a retried Join creates no second link"
    );
    // Teardown of unknown things succeeds.
    let unknown = random_id();
    for m in ["Leave", "DeleteEndpoint", "RevokeExternalConnectivity"] {
        lab.ln.endpoint_call(m, &unknown, &unknown).unwrap();
        lab.ln.endpoint_call(m, &net, &unknown).unwrap();
    }
    lab.ln.delete_network(&unknown).unwrap();
    assert_eq!(
        lab.ln
            .endpoint_call("EndpointOperInfo", &unknown, &unknown)
            .unwrap(),
        json!({"Value": {}})
    );
    // Join and CreateEndpoint on unknown objects fail clearly.
    let e = lab.ln.join(&net, &unknown, "").unwrap_err();
    assert!(
        e.contains("is not known") && e.contains("CreateEndpoint before Join"),
        "{e}"
    );
    let e = lab
        .ln
        .create_endpoint(&unknown, &ep, "10.0.0.2/24", "", "")
        .unwrap_err();
    assert!(e.contains("is not known to Switchyard"), "{e}");
    // Deleting the network with an endpoint still in it removes its link too.
    lab.ln.delete_network(&net).unwrap();
    lab.ln.delete_network(&net).unwrap();
    lab.assert_no_marked_links();
}

#[test]
fn bad_options_create_nothing() {
    let mut lab = Lab::new();
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("backend", "nope")], "backend \"nope\" is not known"),
        (
            &[
                ("backend", "macvlan"),
                ("parent", "tp0"),
                ("macvlan_mode", "x"),
            ],
            "macvlan_mode \"x\" is not valid",
        ),
        (
            &[("backend", "macvlan"), ("parent", "tp0"), ("foo", "bar")],
            "option \"foo\" is not known",
        ),
        (
            &[("backend", "macvlan"), ("parent", "eth9")],
            "parent \"eth9\" does not exist on this host",
        ),
        (
            &[("backend", "vxlan"), ("vni", "0")],
            "vni 0 is out of range",
        ),
        (
            &[("backend", "vxlan"), ("vni", "16777216")],
            "vni 16777216 is out of range",
        ),
        (
            &[("backend", "vxlan"), ("peers", "10.0.0.1,host2")],
            "peers: \"host2\" is not an IP address",
        ),
        (
            &[
                ("backend", "ipvlan"),
                ("parent", "tp0"),
                ("ipvlan_mode", "l4"),
            ],
            "ipvlan_mode \"l4\" is not valid",
        ),
        (
            &[
                ("backend", "ipvlan"),
                ("parent", "tp0"),
                ("ipvlan_flag", "x"),
            ],
            "ipvlan_flag \"x\" is not valid",
        ),
        (
            &[("backend", "macvlan"), ("parent", "tp0.5000")],
            "VLAN 5000, which is outside 1–4094",
        ),
        (
            &[("backend", "macvlan"), ("parent", "averyveryverylongname")],
            "at most 15 bytes",
        ),
        (
            &[("backend", "macvlan"), ("parent", "tp 0")],
            "which Linux rejects",
        ),
    ];
    for (opts, want) in cases {
        let before = lab.host.links();
        let e = lab.network(opts, SUBNET, false).unwrap_err();
        assert!(e.contains(want), "{opts:?}: {e}");
        // Engine 28 asks GwAllocCheck first: the same error, before IPAM runs.
        let mut generic = serde_json::Map::new();
        for (k, v) in *opts {
            generic.insert(k.to_string(), json!(v));
        }
        let e = lab
            .ln
            .call("GwAllocCheck", json!({"Options": {"com.docker.network.enable_ipv4": true, "com.docker.network.generic": generic}}))
            .unwrap_err();
        assert!(e.contains(want), "GwAllocCheck {opts:?}: {e}");
        assert_eq!(lab.host.links(), before, "a refused network created links");
    }
    let status = status(&mut lab);
    assert_eq!(
        status["networks"],
        json!([]),
        "a refused network was stored"
    );
    // A parent that is down is accepted, as Engine 29's built-in drivers
    // accept it, with a warning in status until it is up.
    lab.host.ip(&["link", "set", "tp0", "down"]);
    lab.network(&[("backend", "macvlan"), ("parent", "tp0")], SUBNET, false)
        .unwrap();
    let st = crate::status(&mut lab);
    let problem = st["networks"][0]["problem"].as_str().unwrap_or_default();
    assert!(
        problem.contains("parent \"tp0\" is down") && problem.contains("ip link set tp0 up"),
        "{st}"
    );
    lab.host.ip(&["link", "set", "tp0", "up"]);
    let st = crate::status(&mut lab);
    assert!(st["networks"][0]["problem"].is_null(), "{st}");
}

#[test]
fn plugin_sigkill_and_restart_midway() {
    let mut lab = Lab::new();
    let net = network(&mut lab, "bridge");
    let (a, b) = (Netns::new("ka"), Netns::new("kb"));
    let (ea, ja) = lab.attach(&net, &a, "10.77.0.2/24");
    // Created and joined, link still on the host (20.10 moves it later).
    let ec = random_id();
    lab.ln
        .create_endpoint(&net, &ec, "10.77.0.4/24", "", "")
        .unwrap();
    let jc = lab.ln.join(&net, &ec, "").unwrap();
    let sc = jc["InterfaceName"]["SrcName"].as_str().unwrap().to_string();
    // Created, not joined yet.
    let eb = random_id();
    lab.ln
        .create_endpoint(&net, &eb, "10.77.0.3/24", "", "")
        .unwrap();
    // An orphan this instance left (endpoint unknown to the state), another
    // instance's link, and an operator's link: only the orphan may go.
    let name = lab.plugin.name.clone();
    lab.host
        .ip(&["link", "add", "syorphan", "link", "tp0", "type", "macvlan"]);
    lab.host.ip(&[
        "link",
        "set",
        "syorphan",
        "alias",
        &format!("switchyard@{name}:{net}:deadbeef"),
    ]);
    lab.host
        .ip(&["link", "add", "syother", "link", "tp0", "type", "macvlan"]);
    lab.host.ip(&[
        "link",
        "set",
        "syother",
        "alias",
        &format!("switchyard@another:{net}:deadbeef"),
    ]);
    lab.host
        .ip(&["link", "add", "operator0", "link", "tp0", "type", "macvlan"]);

    lab.restart_plugin(); // SIGKILL, then start again on the same state
    let links = lab.host.links();
    assert!(
        !links.contains(&"syorphan".to_string()),
        "orphan not removed: {links:?}"
    );
    for keep in ["syother", "operator0", sc.as_str(), "tp0"] {
        assert!(
            links.contains(&keep.to_string()),
            "{keep} must survive startup: {links:?}"
        );
    }
    // Work goes on: join b, a and b talk, everything tears down.
    let jb = lab.ln.join(&net, &eb, b.path().to_str().unwrap()).unwrap();
    let sb = jb["InterfaceName"]["SrcName"].as_str().unwrap().to_string();
    lab.host.hand_over(&sb, &b, "eth0", &["10.77.0.3/24"]);
    assert!(
        b.ping("10.77.0.2"),
        "a (joined before the crash) and b (after) cannot talk"
    );
    let sa = ja["InterfaceName"]["SrcName"].as_str().unwrap().to_string();
    // Graceful stop and start between teardown calls, for good measure.
    assert!(lab.plugin.stop(), "SIGTERM did not end switchyard cleanly");
    assert!(
        !lab.plugin.socket_path().exists(),
        "socket left after SIGTERM"
    );
    lab.restart_plugin();
    lab.detach(&net, &ea, &a, &sa);
    lab.detach(&net, &eb, &b, &sb);
    lab.ln.endpoint_call("DeleteEndpoint", &net, &ec).unwrap();
    lab.ln.delete_network(&net).unwrap();
    let left = wait_for(5.0, || {
        let m = lab.host.marked_links();
        (m == vec!["syother".to_string()]).then_some(())
    });
    assert!(
        left.is_some(),
        "expected only the other instance's link, got {:?}",
        lab.host.marked_links()
    );
    assert!(lab.host.links().contains(&"operator0".to_string()));
}

#[test]
fn serves_concurrent_lifecycles() {
    let lab = Lab::new();
    let net = random_id();
    Libnetwork::new(lab.plugin.client())
        .create_network(
            &net,
            &[("backend", "macvlan"), ("parent", "tp0")],
            &[("10.80.0.0/16", Some("10.80.0.1"))],
            &[],
            false,
        )
        .unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let client = lab.plugin.client();
            let net = net.clone();
            std::thread::spawn(move || {
                let mut ln = Libnetwork::new(client);
                for i in 0..10 {
                    let ep = random_id();
                    ln.create_endpoint(&net, &ep, &format!("10.80.{t}.{}/16", i + 2), "", "")
                        .unwrap();
                    ln.join(&net, &ep, "").unwrap();
                    ln.call(
                        "ProgramExternalConnectivity",
                        json!({"NetworkID": net, "EndpointID": ep, "Options": {}}),
                    )
                    .unwrap();
                    ln.endpoint_call("EndpointOperInfo", &net, &ep).unwrap();
                    ln.endpoint_call("RevokeExternalConnectivity", &net, &ep)
                        .unwrap();
                    ln.endpoint_call("Leave", &net, &ep).unwrap();
                    ln.endpoint_call("DeleteEndpoint", &net, &ep).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a lifecycle thread failed");
    }
    let mut ln = Libnetwork::new(lab.plugin.client());
    ln.delete_network(&net).unwrap();
    lab.assert_no_marked_links();
}

#[test]
fn http_surface_is_lenient_where_dockerd_needs_it() {
    let lab = Lab::new();
    let mut c = lab.plugin.client();
    let r = c.call_raw("NetworkDriver.GetCapabilities", b"").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        r.content_type.as_deref(),
        Some("application/vnd.docker.plugins.v1.2+json")
    );
    assert_eq!(
        r.json(),
        json!({"Scope": "local", "ConnectivityScope": "global", "GwAllocChecker": true})
    );
    assert_eq!(
        c.call_raw("Plugin.Activate", b"\n").unwrap().json(),
        json!({"Implements": ["NetworkDriver", "IpamDriver"]})
    );
    // Unknown fields are ignored; a trailing newline is fine.
    let body = format!(
        "{{\"NetworkID\":\"{}\",\"EndpointID\":\"{}\",\"Future\":[1,2]}}\n",
        random_id(),
        random_id()
    );
    let r = c.call_raw("NetworkDriver.Leave", body.as_bytes()).unwrap();
    assert_eq!((r.status, r.json()), (200, json!({})));
    let r = c.call_raw("NetworkDriver.NoSuchMethod", b"{}").unwrap();
    assert_eq!(r.status, 404);
    assert!(
        r.json()["Err"]
            .as_str()
            .unwrap()
            .contains("not implemented")
    );
    let r = c
        .call_raw("NetworkDriver.CreateNetwork", b"{\"NetworkID\":")
        .unwrap();
    assert_eq!(r.status, 400);
    assert!(
        r.json()["Err"].as_str().unwrap().contains("not valid JSON"),
        "{}",
        r.text()
    );
    let r = c
        .call_raw("NetworkDriver.CreateNetwork", b"{\"NetworkID\": 5}")
        .unwrap();
    assert_eq!(r.status, 400);
    assert!(
        r.json()["Err"]
            .as_str()
            .unwrap()
            .contains("does not match the protocol"),
        "{}",
        r.text()
    );
    // A retried request whose body was lost arrives empty: 400, not a crash.
    let r = c.call_raw("NetworkDriver.Join", b"").unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    let big = vec![b' '; 2 << 20];
    assert_eq!(c.call_raw("NetworkDriver.Join", &big).unwrap().status, 413);
    // GET is not a plugin method.
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(lab.plugin.socket_path()).unwrap();
    s.write_all(
        b"GET /NetworkDriver.GetCapabilities HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 405"), "{out}");
}

/// Every request the captured dockerds sent is understood: no answer is a
/// decoding error (400), whatever the business answer.
#[test]
fn replays_every_recorded_dockerd_request() {
    let lab = Lab::new();
    let mut c = lab.plugin.client();
    let shared = switchyard_integration_tests::shared_dir();
    let mut n = 0;
    for engine in ["dockerd-20.10", "dockerd-28", "dockerd-29"] {
        let text =
            std::fs::read_to_string(shared.join("fixtures").join(engine).join("calls.jsonl"))
                .unwrap();
        let before = n;
        for line in text.lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            let (Some(path), Some(body)) = (v["path"].as_str(), v["body_raw"].as_str()) else {
                continue;
            };
            let r = c
                .call_raw(path.trim_start_matches('/'), body.as_bytes())
                .unwrap();
            assert_ne!(r.status, 400, "{engine} {path} {body}: {}", r.text());
            if r.status != 200 {
                assert!(
                    r.json()["Err"].is_string(),
                    "{path}: error without Err: {}",
                    r.text()
                );
            }
            n += 1;
        }
        assert!(
            n - before > 300,
            "only {} {engine} requests replayed",
            n - before
        );
    }
    assert!(n > 400, "only {n} requests replayed");
    std::thread::sleep(Duration::from_millis(10));
}

#[test]
fn status_and_check_commands() {
    let mut lab = Lab::new();
    let net = network(&mut lab, "vepa");
    let ep = random_id();
    lab.ln
        .create_endpoint(&net, &ep, "10.77.0.2/24", "", "")
        .unwrap();
    let bin = switchyard_integration_tests::plugin::binary();
    let status = |lab: &Lab| {
        let out = std::process::Command::new(&bin)
            .arg("status")
            .env("SWITCHYARD__PLUGIN__SOCKET", lab.plugin.socket_path())
            .env("SWITCHYARD__PLUGIN__STATE_DIR", &lab.plugin.state_dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let live = status(&lab);
    assert!(
        live.contains(&net[..12]) && live.contains(&ep[..12]),
        "{live}"
    );
    assert!(
        live.contains("parent=tp0 mode=vepa") && live.contains("10.77.0.2/24"),
        "{live}"
    );
    lab.plugin.stop();
    let offline = status(&lab);
    assert!(
        offline.contains(&ep[..12]),
        "status from the state file: {offline}"
    );
    // Offline, in the plugin's namespace: a parent that is down is said.
    lab.host.ip(&["link", "set", "tp0", "down"]);
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", lab.host.name()])
        .arg(&bin)
        .arg("status")
        .env("SWITCHYARD__PLUGIN__SOCKET", lab.plugin.socket_path())
        .env("SWITCHYARD__PLUGIN__STATE_DIR", &lab.plugin.state_dir)
        .output()
        .unwrap();
    lab.host.ip(&["link", "set", "tp0", "up"]);
    let offline = String::from_utf8_lossy(&out.stdout);
    assert!(
        offline.contains("PROBLEM: parent \"tp0\" is down")
            && offline.contains("ip link set tp0 up"),
        "offline status must report the down parent: {offline}"
    );

    let cfg = switchyard_integration_tests::workspace_root().join("configs/switchyard.toml");
    let out = std::process::Command::new(&bin)
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("configuration OK"),
        "check {}: {}{}",
        cfg.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let bad = lab.plugin.state_dir.join("bad.toml");
    std::fs::write(&bad, "[macvlan]\nmode = \"loud\"\n").unwrap();
    let out = std::process::Command::new(&bin)
        .args(["check", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("macvlan_mode \"loud\" is not valid") && err.contains("bad.toml"),
        "{err}"
    );
}

/// On this host's kernel (no IPVLAN, no 802.1q): such requests fail with an
/// error naming the missing kernel feature, and create nothing. On a kernel
/// that has them they must simply work.
#[test]
fn missing_kernel_features_are_named() {
    let mut lab = Lab::new();
    let has = |args: &[&str]| {
        let probe = Netns::new("probe");
        probe.veth("p0", "p1");
        let mut a = vec!["-n", probe.name(), "link", "add"];
        a.extend_from_slice(args);
        std::process::Command::new("ip")
            .args(&a)
            .output()
            .unwrap()
            .status
            .success()
    };
    let ipvlan = has(&["iv0", "link", "p0", "type", "ipvlan"]);
    let vlan = has(&["link", "p0", "name", "p0.5", "type", "vlan", "id", "5"]);
    let before = lab.host.links();
    let r = lab.network(&[("backend", "ipvlan"), ("parent", "tp0")], SUBNET, false);
    match (ipvlan, r) {
        (false, Err(e)) => assert!(
            e.contains("kernel has no IPVLAN support") && e.contains("modprobe ipvlan"),
            "{e}"
        ),
        (true, Ok(_)) => {}
        (k, r) => panic!("kernel ipvlan={k}, CreateNetwork answered {r:?}"),
    }
    let r = lab.network(
        &[("backend", "macvlan"), ("parent", "tp0.30")],
        SUBNET,
        false,
    );
    match (vlan, r) {
        (false, Err(e)) => assert!(
            e.contains("kernel has no 802.1q VLAN support") && e.contains("8021q"),
            "{e}"
        ),
        (true, Ok(_)) => {}
        (k, r) => panic!("kernel vlan={k}, CreateNetwork answered {r:?}"),
    }
    if !ipvlan && !vlan {
        assert_eq!(lab.host.links(), before, "a refused network created links");
    }
}

#[test]
fn isolated_macvlan_network_on_a_private_parent() {
    let mut lab = Lab::new();
    // Internal or not (as Docker's built-in drivers on every engine): a
    // private parent of the network's own. The client speaks as Engine 28,
    // whose built-ins answer a network without a parent as internal: no
    // gateway either way (20.10 keeps it: dockerd_dropin.rs).
    for internal in [true, false] {
        let net = random_id();
        lab.ln
            .create_network(
                &net,
                &[("backend", "macvlan")],
                &[(SUBNET, Some("10.77.0.1"))],
                &[],
                internal,
            )
            .unwrap();
        let parent = switchyard_core::spec::isolated_parent_name(&net);
        assert!(
            lab.host.marked_links().contains(&parent),
            "isolated parent {parent} missing: {:?}",
            lab.host.links()
        );
        let (a, b) = (Netns::new("ia"), Netns::new("ib"));
        let (_, ja) = lab.attach(&net, &a, "10.77.0.2/24");
        lab.attach(&net, &b, "10.77.0.3/24");
        assert_eq!(ja["Gateway"].as_str(), None, "internal={internal}: {ja}");
        assert!(
            a.ping("10.77.0.3"),
            "containers of an isolated network reach each other"
        );
        assert!(
            a.ip(&["-d", "link", "show", "eth0"]).contains("@if"),
            "eth0 hangs off the private parent"
        );
        drop((a, b));
        lab.ln.delete_network(&net).unwrap();
        lab.assert_no_marked_links();
    }
}

#[test]
fn allow_list_and_cluster_scope_errors_create_nothing() {
    let mut lab = Lab::config()
        .tag("al")
        .veth("tp2", "tp3")
        .env("SWITCHYARD__PARENTS__ALLOW", "tp0")
        .start();
    let (host, ln) = (&lab.host, &mut lab.ln);
    let before = host.links();
    let e = ln
        .create_network(
            &random_id(),
            &[("backend", "macvlan"), ("parent", "tp2")],
            &[(SUBNET, None)],
            &[],
            false,
        )
        .unwrap_err();
    assert!(
        e.contains("parent \"tp2\" is not allowed") && e.contains("allowed parents: tp0"),
        "{e}"
    );
    // A VLAN of an allowed interface is allowed (and fails here only for the kernel).
    ln.create_network(
        &random_id(),
        &[("backend", "macvlan"), ("parent", "tp0")],
        &[(SUBNET, None)],
        &[],
        false,
    )
    .unwrap();
    // Cluster-wide addresses need etcd, which this instance has not.
    let r = ln
        .client
        .call(
            "IpamDriver.RequestPool",
            &json!({"AddressSpace": "switchyard-global", "Pool": "10.20.0.0/16", "SubPool": "", "Options": {}, "V6": false}),
        )
        .unwrap();
    assert_eq!(r.status, 500);
    let body = r.json();
    let msg = body["Error"].as_str().unwrap_or_default();
    assert!(
        msg.contains("needs etcd") && msg.contains("[cluster] etcd_endpoints"),
        "{body}"
    );
    assert_eq!(body["Err"], body["Error"], "IPAM errors carry both fields");
    assert_eq!(host.links(), before, "a refused request created links");
}

#[test]
fn local_ipam_hands_out_unique_addresses_and_takes_them_back() {
    let lab = Lab::new();
    let mut c = lab.plugin.client();
    let pool = c
        .call("IpamDriver.RequestPool", &json!({"AddressSpace": "", "Pool": "10.30.0.0/30", "SubPool": "", "Options": null, "V6": false}))
        .unwrap()
        .json();
    let id = pool["PoolID"].as_str().unwrap().to_string();
    let mut req = |addr: &str| {
        c.call(
            "IpamDriver.RequestAddress",
            &json!({"PoolID": id, "Address": addr, "Options": {}}),
        )
        .unwrap()
        .json()
    };
    assert_eq!(req("")["Address"], "10.30.0.1/30");
    assert_eq!(req("")["Address"], "10.30.0.2/30");
    let full = req("");
    assert!(
        full["Error"]
            .as_str()
            .unwrap()
            .contains("no free address left"),
        "{full}"
    );
    let taken = req("10.30.0.1");
    assert!(
        taken["Error"].as_str().unwrap().contains("already in use"),
        "{taken}"
    );
    let mut c = lab.plugin.client();
    c.call(
        "IpamDriver.ReleaseAddress",
        &json!({"PoolID": id, "Address": "10.30.0.1"}),
    )
    .unwrap();
    let again = c
        .call(
            "IpamDriver.RequestAddress",
            &json!({"PoolID": id, "Address": "", "Options": {}}),
        )
        .unwrap()
        .json();
    assert_eq!(
        again["Address"], "10.30.0.1/30",
        "a released address is handed out again"
    );
    assert_eq!(
        c.call("IpamDriver.ReleasePool", &json!({"PoolID": id}))
            .unwrap()
            .status,
        200
    );
}

#[test]
fn a_vanished_parent_is_reported_not_fatal() {
    let mut lab = Lab::new();
    let net = network(&mut lab, "bridge");
    lab.host.ip(&["link", "del", "tp0"]);
    let status = status(&mut lab);
    let problem = status["networks"][0]["problem"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(problem.contains("parent tp0 does not exist"), "{status}");
    let ep = random_id();
    lab.ln
        .create_endpoint(&net, &ep, "10.77.0.3/24", "", "")
        .unwrap();
    let e = lab.ln.join(&net, &ep, "").unwrap_err();
    assert!(e.contains("parent \"tp0\" does not exist"), "{e}");
    // Restarted, the plugin reports it at start and keeps serving.
    lab.plugin.restart();
    assert!(
        lab.plugin
            .log_text()
            .contains("parent \"tp0\" no longer exists"),
        "{}",
        lab.plugin.log_text()
    );
    lab.ln = Libnetwork::new(lab.plugin.client());
    lab.ln.delete_network(&net).unwrap();
}
