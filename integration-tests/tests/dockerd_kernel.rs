//! Switchyard beside Docker's built-in ipvlan and macvlan on a real dockerd
//! in a kernel that has IPVLAN, 802.1q and dummy links (the build machines'
//! kernel has none of them): each test re-runs itself inside the UML kernel
//! of `../shared/tools/run-in-kernel.sh` (`guest.rs`), where dockerd and the
//! plugin run with real ipvlan links, dummy private parents and VLAN
//! sub-interfaces (issue #10).
//!
//! * Parentless networks: macvlan, ipvlan l2 and l3 side by side, each on
//!   its own dummy parent, containers reaching each other (by address:
//!   Docker's DNS needs NAT chains this kernel build lacks — names are
//!   tested on the host's kernel, `dockerd_dropin.rs`); what a
//!   container sees is what it sees on the built-in driver's parentless
//!   network (addresses, routes, MTU), with and without --gateway (28 and
//!   29 treat a parentless network as internal: no default route; 20.10
//!   keeps its gateways) — but for ipvlan l3 on 20.10, whose connected
//!   default route a remote driver cannot give (README).
//! * 802.1q parents: two networks share a sub-interface Switchyard made,
//!   traffic crosses the VLAN, deleting one keeps it for the other, the last
//!   removes it; an operator's sub-interface is never deleted.
//! * ipvlan l3 on a parent: containers reach each other over real ipvlan
//!   links, with a connected default route on 28 and 29 and the cover
//!   routes on 20.10.
//! * ipvlan l2 on the LAN (issue #11): host access through an ipvlan port
//!   of the host's own, both ways; a container's address and gateway from
//!   the LAN's DHCP server (dnsmasq), released when it goes. (SLAAC on
//!   ipvlan is `kernel_features.rs`'s, at the protocol level.)

use switchyard_core::spec::isolated_parent_name;
use switchyard_integration_tests::container_view::route_lines;
use switchyard_integration_tests::dnsmasq::{Dnsmasq, lan};
use switchyard_integration_tests::dockerd::Engine;
use switchyard_integration_tests::guest::{DockerGuest, Guest, in_test_kernel};
use switchyard_integration_tests::{DockerLab, Lab, engine_matrix, wait_for};

fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// Whether `routes` hold the connected routes that cover every destination
/// where 20.10 refuses a connected default route (backends' ipvlan.rs:
/// 1.0.0.0/8, 2.0.0.0/7 … 128.0.0.0/1), and no default route.
fn covered(routes: &[String]) -> bool {
    (0..8).all(|bits| {
        let net = format!("{}.0.0.0/{}", 1u32 << bits, 8 - bits);
        routes
            .iter()
            .any(|r| r.starts_with(&format!("{net} dev eth0")))
    }) && !routes.iter().any(|r| r.starts_with("default"))
}

fn kernel_parents(engine: Engine) {
    let v = match engine {
        Engine::V20 => "20",
        Engine::V28 => "28",
        Engine::V29 => "29",
    };
    if !in_test_kernel(&format!("kernel_parents::engine_{v}"), Guest::Dockerd) {
        return;
    }
    let _guest = DockerGuest::prepare();
    let lab = DockerLab::new(engine, Lab::config().tag("dk"));
    parentless(&lab);
    vlan_parents(&lab);
    ipvlan_l3(&lab);
    // Last: it moves tp1 into the LAN's namespace.
    ipvlan_lan(&lab);
}

fn parentless(lab: &DockerLab) {
    let engine = lab.engine();
    let cases = [
        ("macvlan", "macvlan", "--subnet 10.81.0.0/24"),
        ("ipvlan l2", "ipvlan", "--subnet 10.82.0.0/24"),
        (
            "ipvlan l3",
            "ipvlan",
            "-o ipvlan_mode=l3 --subnet 10.83.0.0/24",
        ),
    ];
    // Side by side, each on its own dummy parent.
    for (i, (case, backend, args)) in cases.iter().enumerate() {
        let net = format!("pl{i}");
        let id = lab.create(&net, &words(&format!("-o backend={backend} {args}")));
        let parent = isolated_parent_name(id.trim());
        let link = lab.host.ip(&["-d", "link", "show", &parent]);
        assert!(
            link.contains("dummy"),
            "{case}: {parent} is not a dummy link:\n{link}"
        );
        lab.d.run_d(&format!("pl{i}-a"), &net, &[]);
        lab.d.run_d(&format!("pl{i}-b"), &net, &[]);
    }
    for (i, (case, _, _)) in cases.iter().enumerate() {
        let peer = lab.d.ip4(&format!("pl{i}-b"), &format!("pl{i}"));
        let (ok, out) = lab
            .d
            .try_exec(&format!("pl{i}-a"), &["ping", "-c", "1", "-W", "3", &peer]);
        assert!(
            ok,
            "{engine:?} {case}: containers do not reach each other:\n{out}"
        );
    }
    let names: Vec<String> = (0..cases.len())
        .flat_map(|i| [format!("pl{i}-a"), format!("pl{i}-b")])
        .collect();
    let nets: Vec<String> = (0..cases.len()).map(|i| format!("pl{i}")).collect();
    let n: Vec<&str> = names.iter().map(String::as_str).collect();
    let m: Vec<&str> = nets.iter().map(String::as_str).collect();
    lab.teardown(&n, &m);

    // One at a time, beside the built-in driver's own parentless network.
    let with_gateways = [
        (
            "macvlan --gateway",
            "macvlan",
            "--subnet 10.81.0.0/24 --gateway 10.81.0.1",
        ),
        (
            "ipvlan l2 --gateway",
            "ipvlan",
            "--subnet 10.82.0.0/24 --gateway 10.82.0.1",
        ),
    ];
    for (case, backend, args) in cases.into_iter().chain(with_gateways) {
        lab.create("ours", &words(&format!("-o backend={backend} {args}")));
        let ours = lab.view("ours");
        lab.docker(&["network", "rm", "ours"]);
        let mut a = vec!["network", "create", "-d", backend];
        a.extend(words(args));
        a.push("theirs");
        lab.docker(&a);
        let theirs = lab.view("theirs");
        lab.docker(&["network", "rm", "theirs"]);
        if engine == Engine::V20 && case == "ipvlan l3" {
            // 20.10 refuses a remote driver's connected default route:
            // eight connected routes cover every destination instead.
            assert_eq!((&ours.addr, ours.mtu), (&theirs.addr, theirs.mtu), "{case}");
            assert!(
                theirs
                    .routes
                    .iter()
                    .any(|r| r.starts_with("default dev eth0")),
                "{theirs:?}"
            );
            assert!(covered(&ours.routes), "{ours:?}");
        } else {
            assert_eq!(
                ours, theirs,
                "{engine:?} {case}: a Switchyard container (left) differs from a built-in one (right)"
            );
        }
    }
    lab.assert_no_links("the parentless networks were removed");
}

fn vlan_parents(lab: &DockerLab) {
    let engine = lab.engine();
    // The operator's own sub-interface, and the LAN's side of VLAN 30.
    lab.host.ip(&[
        "link", "add", "link", "tp0", "name", "tp0.40", "type", "vlan", "id", "40",
    ]);
    lab.host.ip(&[
        "link", "add", "link", "tp1", "name", "tp1.30", "type", "vlan", "id", "30",
    ]);
    lab.host.ip(&["link", "set", "tp1.30", "up"]);
    lab.host
        .ip(&["addr", "add", "10.84.0.254/24", "dev", "tp1.30"]);
    lab.host
        .ip(&["addr", "add", "10.85.0.254/24", "dev", "tp1.30"]);
    lab.create(
        "v30a",
        &words("-o backend=macvlan -o parent=tp0.30 --subnet 10.84.0.0/24"),
    );
    lab.create(
        "v30b",
        &words("-o backend=macvlan -o parent=tp0.30 --subnet 10.85.0.0/24"),
    );
    lab.create(
        "v40",
        &words("-o backend=macvlan -o parent=tp0.40 --subnet 10.86.0.0/24"),
    );
    let d = lab.host.ip(&["-d", "link", "show", "tp0.30"]);
    assert!(d.contains("vlan protocol 802.1Q id 30"), "{d}");
    lab.d.run_d("va", "v30a", &[]);
    lab.d.run_d("vb", "v30b", &[]);
    for (c, peer) in [("va", "10.84.0.254"), ("vb", "10.85.0.254")] {
        let (ok, out) = lab.d.try_exec(c, &["ping", "-c", "1", "-W", "3", peer]);
        assert!(
            ok,
            "{engine:?}: {c} cannot reach {peer} over VLAN 30:\n{out}"
        );
    }
    lab.docker(&["rm", "-f", "va"]);
    lab.docker(&["network", "rm", "v30a"]);
    assert!(
        lab.host.links().iter().any(|l| l == "tp0.30"),
        "tp0.30 was deleted while v30b still uses it"
    );
    let (ok, out) = lab
        .d
        .try_exec("vb", &["ping", "-c", "1", "-W", "3", "10.85.0.254"]);
    assert!(
        ok,
        "{engine:?}: vb lost VLAN 30 when v30a was removed:\n{out}"
    );
    lab.teardown(&["vb"], &["v30b", "v40"]);
    let links = lab.host.links();
    assert!(
        !links.iter().any(|l| l == "tp0.30"),
        "Switchyard's tp0.30 outlived its last network: {links:?}"
    );
    assert!(
        links.iter().any(|l| l == "tp0.40"),
        "the operator's tp0.40 was deleted: {links:?}"
    );
    lab.host.ip(&["link", "del", "tp0.40"]);
    lab.host.ip(&["link", "del", "tp1.30"]);
}

fn ipvlan_l3(lab: &DockerLab) {
    let engine = lab.engine();
    lab.create(
        "l3",
        &words("-o backend=ipvlan -o parent=tp0 -o ipvlan_mode=l3 --subnet 10.87.0.0/24"),
    );
    lab.d.run_d("la", "l3", &[]);
    lab.d.run_d("lb", "l3", &[]);
    // (busybox's ip has no -d: ask the host's, in the container's netns.)
    let sandbox = lab.docker(&["inspect", "-f", "{{.NetworkSettings.SandboxKey}}", "la"]);
    let (_, d) = switchyard_integration_tests::prereq::try_run(
        "nsenter",
        &[
            &format!("--net={}", sandbox.trim()),
            "ip",
            "-d",
            "link",
            "show",
            "eth0",
        ],
    );
    assert!(d.contains("ipvlan") && d.contains("mode l3"), "{d}");
    let ip = lab.d.ip4("lb", "l3");
    let (ok, out) = lab.d.try_exec("la", &["ping", "-c", "1", "-W", "3", &ip]);
    assert!(
        ok,
        "{engine:?}: ipvlan l3 containers do not reach each other:\n{out}"
    );
    let routes = route_lines(&lab.d.exec("la", &["ip", "route"]));
    if engine == Engine::V20 {
        assert!(covered(&routes), "{routes:?}");
    } else {
        assert!(
            routes.iter().any(|r| r.starts_with("default dev eth0")),
            "{engine:?}: {routes:?}"
        );
    }
    lab.teardown(&["la", "lb"], &["l3"]);
}

fn ipvlan_lan(lab: &DockerLab) {
    let engine = lab.engine();
    lab.create(
        "ha",
        &words("-o backend=ipvlan -o parent=tp0 --subnet 10.88.0.0/24 --aux-address host=10.88.0.250 -o host_access=true"),
    );
    lab.d.run_d("hc", "ha", &[]);
    let ip = lab.d.ip4("hc", "ha");
    assert!(
        lab.host.ping(&ip),
        "{engine:?}: the host cannot reach its ipvlan container {ip}"
    );
    let (ok, out) = lab
        .d
        .try_exec("hc", &["ping", "-c", "1", "-W", "3", "10.88.0.250"]);
    assert!(
        ok,
        "{engine:?}: the ipvlan container cannot reach the host:\n{out}"
    );
    lab.teardown(&["hc"], &["ha"]);

    let lan = lan(&lab.host);
    let server = Dnsmasq::start(&lan, "tp1", &[]);
    lab.create(
        "dh",
        &words("--ipam-driver null -o backend=ipvlan -o parent=tp0 -o ipam=dhcp"),
    );
    lab.d.run_d("dc", "dh", &[]);
    let addr = lab.d.ip4("dc", "dh");
    assert!(
        server.leases().iter().any(|l| l.2 == addr),
        "{engine:?}: {addr} is not a lease of the LAN's server: {:?}",
        server.leases()
    );
    let routes = route_lines(&lab.d.exec("dc", &["ip", "route"]));
    assert!(
        routes
            .iter()
            .any(|r| r.starts_with("default via 192.0.2.1 dev eth0")),
        "{engine:?}: the lease's router is the gateway: {routes:?}"
    );
    let (ok, out) = lab
        .d
        .try_exec("dc", &["ping", "-c", "1", "-W", "3", "192.0.2.1"]);
    assert!(
        ok,
        "{engine:?}: the container cannot reach the LAN's router:\n{out}"
    );
    lab.teardown(&["dc"], &["dh"]);
    let released = wait_for(10.0, || {
        (!server.leases().iter().any(|l| l.2 == addr)).then_some(())
    });
    assert!(
        released.is_some(),
        "{engine:?}: {addr} was not released: {:?}",
        server.leases()
    );
}

engine_matrix!(kernel_parents);
