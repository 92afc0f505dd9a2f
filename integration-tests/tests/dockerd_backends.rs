//! The Join answers of the other backends, accepted by real dockerds
//! (Engine 20.10, 28 and 29) and checked inside the containers:
//!
//! * ipvlan l2 (gateway) and l3/l3s (every destination through the
//!   container's own interface: on 28 and 29 a connected default route, as
//!   Engine 29's own ipvlan sets; on 20.10, which rejects a connected
//!   0.0.0.0/0 without a gateway — fixture F17 —, connected routes covering
//!   all routable space, none starting at 0.0.0.0, which 28 drops),
//!   without docker_gwbridge. The host kernel has no IPVLAN, and the
//!   answer's shape does not depend on the link type, so the plugin runs
//!   with `SWITCHYARD_TEST_IPVLAN_AS_MACVLAN=1` (its ipvlan endpoints become
//!   macvlan links); real IPVLAN links are tested in a UML kernel
//!   (`kernel_features.rs`).
//! * VXLAN on one host: containers talk over the network's bridge, the MTU
//!   is the underlay's minus 50, and non-internal networks get their way out
//!   through docker_gwbridge, as Docker's overlay does.

use switchyard_integration_tests::dockerd::Engine;
use switchyard_integration_tests::{DockerLab, Lab, engine_matrix};

/// tp0/tp1, and tp2/tp3: ipvlan links on one parent share its mode, so l3
/// networks use tp2.
fn new_lab(engine: Engine) -> DockerLab {
    let config = Lab::config()
        .tag("db")
        .veth("tp2", "tp3")
        .env("SWITCHYARD_TEST_IPVLAN_AS_MACVLAN", "1");
    DockerLab::new(engine, config)
}

/// `docker` arguments written as one line.
fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

fn ipvlan_answers(engine: Engine) {
    let lab = new_lab(engine);
    // l2: the gateway, as macvlan.
    lab.create(
        "l2",
        &words("-o backend=ipvlan -o parent=tp0 --subnet 10.81.0.0/24 --gateway 10.81.0.1"),
    );
    lab.d.run_d("ctr-a", "l2", &[]);
    let routes = lab.d.exec("ctr-a", &["ip", "route"]);
    assert!(
        routes.contains("default via 10.81.0.1 dev eth0"),
        "{engine:?} l2: {routes}"
    );
    assert_eq!(
        lab.d.container_links("ctr-a"),
        ["lo", "eth0"],
        "{engine:?} l2: no docker_gwbridge"
    );

    for mode in ["l3", "l3s"] {
        let net = format!("n{mode}");
        let opts = format!(
            "-o backend=ipvlan -o parent=tp2 -o ipvlan_mode={mode} --subnet 10.82.0.0/24 --ipv6 --subnet fd00:82::/64"
        );
        lab.create(&net, &words(&opts));
        let (b, c) = (format!("b{mode}"), format!("c{mode}"));
        lab.d.run_d(&b, &net, &[]); // 20.10 would refuse the container start on a bad answer
        lab.d.run_d(&c, &net, &[]);
        let routes = lab.d.exec(&b, &["ip", "route"]);
        let (want4, want6): (&[&str], &[&str]) = if engine == Engine::V20 {
            (
                &[
                    "1.0.0.0/8 dev eth0",
                    "64.0.0.0/2 dev eth0",
                    "128.0.0.0/1 dev eth0",
                ],
                &["2000::/3 dev eth0", "8000::/1 dev eth0"],
            )
        } else {
            (&["default dev eth0"], &["default dev eth0"])
        };
        for r in want4 {
            assert!(
                routes.contains(r),
                "{engine:?} {mode}: {r} missing in {routes}"
            );
        }
        assert!(
            !routes.contains("default via"),
            "{engine:?} {mode}: {routes}"
        );
        let routes6 = lab.d.exec(&b, &["ip", "-6", "route"]);
        for r in want6 {
            assert!(
                routes6.contains(r),
                "{engine:?} {mode}: {r} missing in {routes6}"
            );
        }
        let via = lab.d.exec(&b, &["ip", "route", "get", "192.0.2.1"]);
        assert!(
            via.contains("dev eth0"),
            "{engine:?} {mode}: the way out is the container's own interface: {via}"
        );
        assert_eq!(
            lab.d.container_links(&b),
            ["lo", "eth0"],
            "{engine:?} {mode}: no docker_gwbridge"
        );
        let peer = lab.d.ip4(&c, &net);
        assert!(
            lab.d.ping_from(&b, &peer).0,
            "{engine:?} {mode}: {b} cannot reach {c} at {peer}"
        );
        lab.teardown(&[&b, &c], &[&net]);
    }
    lab.teardown(&["ctr-a"], &["l2"]);
}

fn vxlan_single_host(engine: Engine) {
    let lab = new_lab(engine);
    lab.create(
        "ov",
        &words("-o backend=vxlan -o vni=5001 --subnet 10.90.0.0/24"),
    );
    lab.d.run_d("ctr-x", "ov", &[]);
    lab.d.run_d("ctr-y", "ov", &[]);
    let x = lab.d.ip4("ctr-x", "ov");
    assert!(
        lab.d.ping_from("ctr-y", &x).0,
        "{engine:?}: y cannot reach x over the VXLAN network"
    );
    // No underlay address in this namespace: 1500 − 50.
    let link = lab.d.exec("ctr-x", &["ip", "link", "show", "eth0"]);
    assert!(link.contains("mtu 1450"), "{engine:?}: {link}");
    let big = lab.d.docker(&[
        "exec", "ctr-y", "ping", "-c", "1", "-W", "3", "-s", "1422", &x,
    ]);
    assert!(
        big.0,
        "{engine:?}: a full-size packet (1450) does not pass: {}",
        big.1
    );
    // The way out is docker_gwbridge, as with Docker's overlay.
    assert!(lab.docker(&["network", "ls"]).contains("docker_gwbridge"));
    let routes = lab.d.exec("ctr-x", &["ip", "route"]);
    let default = routes
        .lines()
        .find(|l| l.starts_with("default via"))
        .unwrap_or_else(|| panic!("{engine:?}: no default route: {routes}"));
    assert!(
        !default.contains("eth0"),
        "{engine:?}: default route should leave through docker_gwbridge: {default}"
    );
    let gw = default.split_whitespace().nth(2).unwrap().to_string();
    assert!(
        lab.d.ping_from("ctr-x", &gw).0,
        "{engine:?}: docker_gwbridge's gateway {gw} unreachable"
    );
    // Internal: isolated, no way out.
    lab.create(
        "ovi",
        &words("-o backend=vxlan --internal --subnet 10.91.0.0/24"),
    );
    lab.d.run_d("ctr-z", "ovi", &[]);
    assert_eq!(
        lab.d.container_links("ctr-z"),
        ["lo", "eth0"],
        "{engine:?}: internal network with a second interface"
    );
    assert!(
        !lab.d.exec("ctr-z", &["ip", "route"]).contains("default"),
        "{engine:?}"
    );
    lab.teardown(&["ctr-x", "ctr-y", "ctr-z"], &["ov", "ovi"]);
}

engine_matrix!(ipvlan_answers);
engine_matrix!(vxlan_single_host);
