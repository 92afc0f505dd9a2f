//! Switchyard as a drop-in for Docker's built-in macvlan and ipvlan, on
//! real dockerds (Engine 20.10, 28 and 29): what the built-ins accept is
//! accepted, and answered as that engine's built-in answers (issue #10).
//!
//! * Networks without a parent, internal or not: a private parent per
//!   network (a veth pair here: the host kernel has no dummy links),
//!   macvlan and ipvlan l2 and l3 side by side, removed with the network.
//! * A parent that is down: the network and its containers are accepted,
//!   `switchyard status` warns, traffic flows once the link is up.
//! * Gateway allocation: an ipvlan l3 /31 network gets both its addresses
//!   on 28 and 29 (their built-ins reserve no gateway for l3).
//! * ipvlan l3 routes: a connected default route on 28 and 29, the cover
//!   routes on 20.10 (`dockerd_backends.rs` checks them in detail).
//! * DNS through a resolver on the host's loopback (as systemd-resolved's
//!   127.0.0.53): containers resolve external names as on the built-in's
//!   networks, and on ipvlan l3 networks on 28 and 29.
//!
//! The host kernel has no IPVLAN: the plugin runs with
//! `SWITCHYARD_TEST_IPVLAN_AS_MACVLAN=1` (its ipvlan endpoints become
//! macvlan links; the answers do not depend on the link type). Built-in
//! parity is `dockerd_e2e.rs`'s `parity`.

use serde_json::Value;
use switchyard_integration_tests::dockerd::Engine;
use switchyard_integration_tests::{Background, DockerLab, Lab, TempDir, engine_matrix, wait_for};

fn new_lab(engine: Engine) -> DockerLab {
    let config = Lab::config()
        .tag("dd")
        .env("SWITCHYARD_TEST_IPVLAN_AS_MACVLAN", "1");
    DockerLab::new(engine, config)
}

fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

fn status(lab: &mut DockerLab) -> Value {
    lab.ln
        .client
        .call_raw("Switchyard.Status", b"")
        .unwrap()
        .json()
}

/// The network's private parent (named from a hash of its whole id).
fn private_parent(id: &str) -> String {
    switchyard_core::spec::isolated_parent_name(id.trim())
}

fn parentless(engine: Engine) {
    let lab = new_lab(engine);
    // 20.10's built-ins keep a parentless network's gateways; 28's and
    // 29's treat it as internal: no default route, even with --gateway
    // (NetworkSpec::answers_internal; dockerd_kernel.rs compares with the
    // built-ins themselves).
    let v20 = engine == Engine::V20;
    let nets = [
        (
            "pm",
            "-o backend=macvlan --subnet 10.61.1.0/24 --gateway 10.61.1.1",
            v20.then_some("default via 10.61.1.1 dev eth0"),
        ),
        (
            "pl2",
            "-o backend=ipvlan --subnet 10.61.2.0/24 --gateway 10.61.2.1",
            v20.then_some("default via 10.61.2.1 dev eth0"),
        ),
        (
            "pl3",
            "-o backend=ipvlan -o ipvlan_mode=l3 --subnet 10.61.3.0/24",
            v20.then_some("128.0.0.0/1 dev eth0"),
        ),
    ];
    let mut parents = Vec::new();
    for (name, opts, _) in nets {
        let id = lab.create(name, &words(opts));
        let parent = private_parent(&id);
        assert!(
            lab.host.marked_links().contains(&parent),
            "{engine:?} {name}: its private parent {parent} is missing: {:?}",
            lab.host.links()
        );
        parents.push(parent);
    }
    // An internal one beside them, as before.
    let id = lab.create(
        "pi",
        &words("-o backend=macvlan --internal --subnet 10.61.4.0/24"),
    );
    parents.push(private_parent(&id));
    for (name, _, route) in nets {
        let (a, b) = (format!("{name}-a"), format!("{name}-b"));
        lab.d.run_d(&a, name, &[]);
        lab.d.run_d(&b, name, &[]);
        let routes = lab.d.exec(&a, &["ip", "route"]);
        match route {
            Some(route) => assert!(
                routes.contains(route),
                "{engine:?} {name}: {route:?} missing in\n{routes}"
            ),
            None => assert!(
                !routes.contains("default") && !routes.contains("0.0.0/"),
                "{engine:?} {name}: a parentless network answers as internal:\n{routes}"
            ),
        }
        assert_eq!(
            lab.d.container_links(&a),
            ["lo", "eth0"],
            "{engine:?} {name}"
        );
        let peer = lab.d.ip4(&b, name);
        lab.d
            .assert_ping(&a, &peer, &format!("{engine:?} {name}: a to b"));
        // By name, through Docker's DNS.
        lab.d
            .assert_ping(&a, &b, &format!("{engine:?} {name}: a to b by name"));
    }
    // Removing one network removes its parent and no other.
    lab.docker(&["rm", "-f", "pm-a", "pm-b"]);
    lab.docker(&["network", "rm", "pm"]);
    let gone = wait_for(10.0, || lab.gone(&parents[0]).then_some(()));
    assert!(
        gone.is_some(),
        "{engine:?}: {} outlived its network",
        parents[0]
    );
    for p in &parents[1..] {
        assert!(lab.host.links().contains(p), "{engine:?}: {p} went with pm");
    }
    lab.teardown(&["pl2-a", "pl2-b", "pl3-a", "pl3-b"], &["pl2", "pl3", "pi"]);
}

fn down_parent(engine: Engine) {
    let mut lab = new_lab(engine);
    lab.host.ip(&["link", "set", "tp0", "down"]);
    lab.create(
        "dn",
        &words("-o backend=macvlan -o parent=tp0 --subnet 10.62.0.0/24 --gateway 10.62.0.1"),
    );
    let st = status(&mut lab);
    let problem = st["networks"][0]["problem"].as_str().unwrap_or_default();
    assert!(
        problem.contains("parent \"tp0\" is down") && problem.contains("ip link set tp0 up"),
        "{engine:?}: status does not warn of the down parent: {st}"
    );
    lab.d.run_d("dn-a", "dn", &[]);
    assert!(
        lab.plugin.log_text().contains("parent \\\"tp0\\\" is down")
            || lab.plugin.log_text().contains("parent \"tp0\" is down"),
        "{engine:?}: the plugin's log does not warn of the down parent"
    );
    lab.host.ip(&["link", "set", "tp0", "up"]);
    lab.lan_peer("10.62.0.1/24");
    let reached = wait_for(10.0, || {
        lab.d.ping_from("dn-a", "10.62.0.1").0.then_some(())
    });
    assert!(
        reached.is_some(),
        "{engine:?}: no traffic once the parent is up"
    );
    assert!(status(&mut lab)["networks"][0]["problem"].is_null());
    lab.teardown(&["dn-a"], &["dn"]);
}

/// 28 and 29 only: 20.10 sends no GwAllocCheck and reserves a gateway in
/// every pool, with its built-in drivers too.
fn l3_slash31(engine: Engine) {
    let lab = new_lab(engine);
    lab.create(
        "n31",
        &words("-o backend=ipvlan -o parent=tp0 -o ipvlan_mode=l3 --subnet 10.63.0.0/31"),
    );
    lab.d.run_d("s31-a", "n31", &[]);
    lab.d.run_d("s31-b", "n31", &[]);
    let mut got = vec![lab.d.ip4("s31-a", "n31"), lab.d.ip4("s31-b", "n31")];
    got.sort();
    assert_eq!(got, ["10.63.0.0", "10.63.0.1"], "{engine:?}");
    let routes = lab.d.exec("s31-a", &["ip", "route"]);
    assert!(routes.contains("default dev eth0"), "{engine:?}: {routes}");
    lab.teardown(&["s31-a", "s31-b"], &["n31"]);
}

/// What a container on a fresh macvlan network without --gateway gets:
/// its address, and whether it has a default route.
fn first_container(lab: &DockerLab, net: &str, subnet: &str) -> (String, bool) {
    lab.create(
        net,
        &words(&format!(
            "-o backend=macvlan -o parent=tp0 --subnet {subnet}"
        )),
    );
    let (ok, out) = lab
        .d
        .run_rm(net, &["sh", "-c", "ip -o -4 addr show eth0; ip route"]);
    assert!(ok, "docker run on {net}:\n{out}");
    let addr = out
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    lab.docker(&["network", "rm", net]);
    (addr, out.contains("default via"))
}

/// How the engine is recognised (spec::Engine), seen from the containers:
/// 20.10 and 28 reserve the gateway (.1; the container gets .2 and a
/// default route); 29 reserves nothing without --gateway (the container
/// gets .1 and no default route), as their built-ins do.
///
/// * Asked through dockerd's API (`[plugin] docker_socket`, the default):
///   right from the first network on every engine.
/// * Not asked (no API at that path): on 29 the first network's
///   GwAllocCheck is answered as 28 (nothing told 29 apart yet), its
///   CreateNetwork shows 29's mark, and from the second network on the
///   answer is 29's.
/// * `[parents] engine = "29"`: 29's answer from the first network.
fn engine_recognition(engine: Engine) {
    let reserved = ("10.66.1.2/24".to_string(), true);
    let as_29 = ("10.66.1.1/24".to_string(), false);
    let native = if engine == Engine::V29 {
        as_29.clone()
    } else {
        reserved.clone()
    };
    {
        let mut lab = new_lab(engine);
        let label = engine.label();
        let told = wait_for(20.0, || {
            let s = status(&mut lab);
            (s["engine"] == label).then_some(())
        });
        assert!(
            told.is_some(),
            "{engine:?}: the plugin did not learn the engine from dockerd's API: {}",
            status(&mut lab)
        );
        assert_eq!(
            first_container(&lab, "g1", "10.66.1.0/24"),
            native,
            "{engine:?} first network, engine asked"
        );
        assert_eq!(
            first_container(&lab, "g2", "10.66.1.0/24"),
            native,
            "{engine:?} second network, engine asked"
        );
    }
    if engine != Engine::V29 {
        return;
    }
    let unasked = Lab::config().tag("dd").env(
        "SWITCHYARD__PLUGIN__DOCKER_SOCKET",
        "/nonexistent/docker.sock",
    );
    let mut lab = DockerLab::new(engine, unasked);
    assert_eq!(
        first_container(&lab, "g1", "10.66.1.0/24"),
        reserved,
        "29, engine not asked: the first network is answered as 28"
    );
    assert_eq!(
        first_container(&lab, "g2", "10.66.1.0/24"),
        as_29,
        "29, engine not asked: the first CreateNetwork showed 29's mark"
    );
    assert_eq!(status(&mut lab)["engine"], Value::Null);
    drop(lab);
    let config = Lab::config()
        .tag("dd")
        .env(
            "SWITCHYARD__PLUGIN__DOCKER_SOCKET",
            "/nonexistent/docker.sock",
        )
        .env("SWITCHYARD__PARENTS__ENGINE", "29");
    let lab = DockerLab::new(engine, config);
    assert_eq!(
        first_container(&lab, "g3", "10.66.1.0/24"),
        as_29,
        "[parents] engine = \"29\": the first network answered as 29"
    );
}

/// An external name resolved in a container on `net` (busybox nslookup
/// through Docker's embedded resolver): the address, or None.
fn resolves(lab: &DockerLab, net: &str) -> Option<String> {
    let (_, out) = lab.d.run_rm(
        net,
        &["sh", "-c", "cat /etc/resolv.conf; nslookup ext.example"],
    );
    eprintln!("DBG {net}: {out}");
    answer(&out)
}

/// The IPv4 address in busybox nslookup's answer section ("Address: A" or
/// "Address 1: A", after "Name: ext.example"). Its exit status is ignored:
/// the AAAA query gets no answer.
fn answer(out: &str) -> Option<String> {
    out.lines()
        .skip_while(|l| !l.contains("ext.example"))
        .filter(|l| l.starts_with("Address"))
        .filter_map(|l| l.split_whitespace().last())
        .find(|a| a.parse::<std::net::Ipv4Addr>().is_ok())
        .map(str::to_string)
}

/// The host's resolv.conf names only a resolver on the host's loopback
/// (127.0.0.53, as systemd-resolved's; `--dns` would not do: Docker
/// reaches an override from the container's namespace): Docker's embedded resolver forwards from the
/// host's namespace, on 28 and 29 only for endpoints that have a gateway or
/// a default route. A Switchyard macvlan network resolves
/// exactly when the built-in macvlan does, with and without --gateway,
/// except on 29 without --gateway (README: "Compared with Docker's built-in
/// drivers"); an ipvlan l3 network (a connected default route on 28 and 29)
/// resolves.
fn host_loopback_dns(engine: Engine) {
    let config = Lab::config()
        .tag("dd")
        .env("SWITCHYARD_TEST_IPVLAN_AS_MACVLAN", "1");
    let etc = TempDir::new("resolv");
    let resolv = etc.path().join("resolv.conf");
    std::fs::write(&resolv, "nameserver 127.0.0.53\n").unwrap();
    let lab = DockerLab::with_resolv_conf(engine, config, Some(&resolv));
    let mut dns = Background::start(
        &lab.host,
        "dnsmasq",
        &[
            "dnsmasq",
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--listen-address=127.0.0.53",
            "--address=/ext.example/192.0.2.10",
            "--log-queries",
            "--log-facility=-",
        ],
    );
    let host = lab.host.name().to_string();
    dns.wait_ready(10.0, || {
        let (_, out) = switchyard_integration_tests::prereq::try_run(
            "ip",
            &[
                "netns",
                "exec",
                &host,
                "busybox",
                "nslookup",
                "ext.example",
                "127.0.0.53",
            ],
        );
        answer(&out).as_deref() == Some("192.0.2.10")
    });
    let want = Some("192.0.2.10".to_string());
    for (case, args) in [
        (
            "with --gateway",
            "--subnet 10.67.0.0/24 --gateway 10.67.0.1",
        ),
        ("without --gateway", "--subnet 10.67.0.0/24"),
    ] {
        lab.create(
            "dns-sy",
            &words(&format!("-o backend=macvlan -o parent=tp0 {args}")),
        );
        let ours = resolves(&lab, "dns-sy");
        lab.docker(&["network", "rm", "dns-sy"]);
        let mut a = vec!["network", "create", "-d", "macvlan", "-o", "parent=tp0"];
        a.extend(words(args));
        a.push("dns-b");
        lab.docker(&a);
        let builtin = resolves(&lab, "dns-b");
        lab.docker(&["network", "rm", "dns-b"]);
        if engine == Engine::V29 && case == "without --gateway" {
            // The documented difference: 29's built-in marks the endpoint
            // as if it had a gateway (ForceGw4, for built-in drivers only),
            // which lets Docker's resolver reach the host's loopback; a
            // remote driver could do so only with a connected default
            // route, which would change the container's routes.
            assert_eq!(builtin, want, "{engine:?} {case}, built-in:\n{}", dns.log());
            assert_eq!(ours, None, "{engine:?} {case}, Switchyard");
        } else {
            assert_eq!(
                ours,
                builtin,
                "{engine:?} {case}: Switchyard (left) and the built-in macvlan (right) resolve differently\n{}",
                dns.log()
            );
        }
        if case == "with --gateway" && engine != Engine::V20 {
            assert_eq!(ours, want, "{engine:?} {case}:\n{}", dns.log());
        }
    }
    if engine != Engine::V20 {
        lab.create(
            "dns-l3",
            &words("-o backend=ipvlan -o parent=tp0 -o ipvlan_mode=l3 --subnet 10.68.0.0/24"),
        );
        assert_eq!(
            resolves(&lab, "dns-l3"),
            want,
            "{engine:?} ipvlan l3:\n{}",
            dns.log()
        );
        lab.docker(&["network", "rm", "dns-l3"]);
    }
    lab.assert_no_links("the DNS networks were removed");
}

engine_matrix!(parentless);
engine_matrix!(down_parent);
engine_matrix!(l3_slash31: 28, 29);
engine_matrix!(engine_recognition);
engine_matrix!(host_loopback_dns);
