//! The Join answers of the other backends, accepted by real dockerds
//! (Engine 20.10 and 28) and checked inside the containers:
//!
//! * ipvlan l2 (gateway) and l3/l3s (every destination through the
//!   container's own interface, answered as connected routes covering all
//!   routable space: 20.10 rejects a connected 0.0.0.0/0 without a gateway
//!   — fixture F17 — and 28 drops a 0.0.0.0/1),
//!   without docker_gwbridge. The host kernel has no IPVLAN, and the
//!   answer's shape does not depend on the link type, so the plugin runs
//!   with `SWITCHYARD_TEST_IPVLAN_AS_MACVLAN=1` (its ipvlan endpoints become
//!   macvlan links); real IPVLAN links are tested in a UML kernel
//!   (`kernel_features.rs`).
//! * VXLAN on one host: containers talk over the network's bridge, the MTU
//!   is the underlay's minus 50, and non-internal networks get their way out
//!   through docker_gwbridge, as Docker's overlay does.

use switchyard_integration_tests::dockerd::{Dockerd, Engine, IMAGE};
use switchyard_integration_tests::{Netns, Plugin, wait_for};

struct Lab {
    d: Dockerd,
    plugin: Plugin,
    ns: Netns,
}

impl Lab {
    fn new(engine: Engine) -> Lab {
        let ns = Netns::new("db");
        ns.veth("tp0", "tp1");
        // ipvlan links on one parent share its mode: l3 networks use tp2.
        ns.veth("tp2", "tp3");
        let plugin = Plugin::start_with(&ns, &[("SWITCHYARD_TEST_IPVLAN_AS_MACVLAN", "1")]);
        let d = Dockerd::start(engine, &ns);
        Lab { d, plugin, ns }
    }

    fn docker(&self, args: &[&str]) -> String {
        self.d.docker_out(args)
    }

    fn net(&self, name: &str, args: &[&str]) {
        let mut a = vec!["network", "create", "-d", &self.plugin.name];
        a.extend(args);
        a.push(name);
        self.docker(&a);
    }

    fn run(&self, name: &str, net: &str) {
        self.docker(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            net,
            IMAGE,
            "sleep",
            "600",
        ]);
    }

    fn exec(&self, c: &str, cmd: &[&str]) -> String {
        let mut a = vec!["exec", c];
        a.extend(cmd);
        self.docker(&a)
    }

    fn ip(&self, c: &str, net: &str) -> String {
        self.docker(&[
            "inspect",
            "-f",
            &format!(r#"{{{{(index .NetworkSettings.Networks "{net}").IPAddress}}}}"#),
            c,
        ])
        .trim()
        .to_string()
    }

    fn links(&self, c: &str) -> Vec<String> {
        self.exec(c, &["ip", "-o", "link", "show"])
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .collect()
    }

    fn ping(&self, c: &str, addr: &str) -> bool {
        self.d
            .docker(&["exec", c, "ping", "-c", "1", "-W", "3", addr])
            .0
    }

    fn teardown(&self, containers: &[&str], nets: &[&str]) {
        let mut a = vec!["rm", "-f"];
        a.extend(containers);
        self.docker(&a);
        let mut a = vec!["network", "rm"];
        a.extend(nets);
        self.docker(&a);
        let left = wait_for(5.0, || self.ns.marked_links().is_empty().then_some(()));
        assert!(left.is_some(), "links left: {:?}", self.ns.marked_links());
    }
}

fn ipvlan_answers(engine: Engine) {
    let lab = Lab::new(engine);
    // l2: the gateway, as macvlan.
    lab.net(
        "l2",
        &[
            "-o",
            "backend=ipvlan",
            "-o",
            "parent=tp0",
            "--subnet",
            "10.81.0.0/24",
            "--gateway",
            "10.81.0.1",
        ],
    );
    lab.run("ctr-a", "l2");
    let routes = lab.exec("ctr-a", &["ip", "route"]);
    assert!(
        routes.contains("default via 10.81.0.1 dev eth0"),
        "{engine:?} l2: {routes}"
    );
    assert_eq!(
        lab.links("ctr-a"),
        ["lo", "eth0"],
        "{engine:?} l2: no docker_gwbridge"
    );

    for mode in ["l3", "l3s"] {
        let net = format!("n{mode}");
        lab.net(
            &net,
            &[
                "-o",
                "backend=ipvlan",
                "-o",
                "parent=tp2",
                "-o",
                &format!("ipvlan_mode={mode}"),
                "--subnet",
                "10.82.0.0/24",
                "--ipv6",
                "--subnet",
                "fd00:82::/64",
            ],
        );
        let (b, c) = (format!("b{mode}"), format!("c{mode}"));
        lab.run(&b, &net); // 20.10 would refuse the container start on a bad answer
        lab.run(&c, &net);
        let routes = lab.exec(&b, &["ip", "route"]);
        for r in [
            "1.0.0.0/8 dev eth0",
            "64.0.0.0/2 dev eth0",
            "128.0.0.0/1 dev eth0",
        ] {
            assert!(
                routes.contains(r),
                "{engine:?} {mode}: {r} missing in {routes}"
            );
        }
        assert!(
            !routes.contains("default via"),
            "{engine:?} {mode}: {routes}"
        );
        let routes6 = lab.exec(&b, &["ip", "-6", "route"]);
        for r in ["2000::/3 dev eth0", "8000::/1 dev eth0"] {
            assert!(
                routes6.contains(r),
                "{engine:?} {mode}: {r} missing in {routes6}"
            );
        }
        let via = lab.exec(&b, &["ip", "route", "get", "192.0.2.1"]);
        assert!(
            via.contains("dev eth0"),
            "{engine:?} {mode}: the way out is the container's own interface: {via}"
        );
        assert_eq!(
            lab.links(&b),
            ["lo", "eth0"],
            "{engine:?} {mode}: no docker_gwbridge"
        );
        let peer = lab.ip(&c, &net);
        assert!(
            lab.ping(&b, &peer),
            "{engine:?} {mode}: {b} cannot reach {c} at {peer}"
        );
        lab.teardown(&[&b, &c], &[&net]);
    }
    lab.teardown(&["ctr-a"], &["l2"]);
}

fn vxlan_single_host(engine: Engine) {
    let lab = Lab::new(engine);
    lab.net(
        "ov",
        &[
            "-o",
            "backend=vxlan",
            "-o",
            "vni=5001",
            "--subnet",
            "10.90.0.0/24",
        ],
    );
    lab.run("ctr-x", "ov");
    lab.run("ctr-y", "ov");
    let x = lab.ip("ctr-x", "ov");
    assert!(
        lab.ping("ctr-y", &x),
        "{engine:?}: y cannot reach x over the VXLAN network"
    );
    // No underlay address in this namespace: 1500 − 50.
    let link = lab.exec("ctr-x", &["ip", "link", "show", "eth0"]);
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
    let routes = lab.exec("ctr-x", &["ip", "route"]);
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
        lab.ping("ctr-x", &gw),
        "{engine:?}: docker_gwbridge's gateway {gw} unreachable"
    );
    // Internal: isolated, no way out.
    lab.net(
        "ovi",
        &[
            "-o",
            "backend=vxlan",
            "--internal",
            "--subnet",
            "10.91.0.0/24",
        ],
    );
    lab.run("ctr-z", "ovi");
    assert_eq!(
        lab.links("ctr-z"),
        ["lo", "eth0"],
        "{engine:?}: internal network with a second interface"
    );
    assert!(
        !lab.exec("ctr-z", &["ip", "route"]).contains("default"),
        "{engine:?}"
    );
    lab.teardown(&["ctr-x", "ctr-y", "ctr-z"], &["ov", "ovi"]);
}

#[test]
fn engine_20_ipvlan_answers() {
    ipvlan_answers(Engine::V20);
}

#[test]
fn engine_28_ipvlan_answers() {
    ipvlan_answers(Engine::V28);
}

#[test]
fn engine_20_vxlan_single_host() {
    vxlan_single_host(Engine::V20);
}

#[test]
fn engine_28_vxlan_single_host() {
    vxlan_single_host(Engine::V28);
}
