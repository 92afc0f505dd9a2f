//! IPVLAN, 802.1q sub-interfaces and dummy parents, tested for real in a
//! kernel that has them. The build machines' kernel lacks all three, so each
//! test re-runs itself inside a User-Mode Linux kernel through
//! `../shared/tools/run-in-kernel.sh` (about 3 s to boot). If that tool or
//! kernel is missing, the test fails; it never passes by skipping.

use switchyard_integration_tests::guest::{Guest, in_test_kernel};
use switchyard_integration_tests::router::Router;
use switchyard_integration_tests::{Lab, Netns, random_id, wait_for};

#[test]
fn ipvlan_modes_carry_traffic_between_two_containers() {
    if !in_test_kernel(
        "ipvlan_modes_carry_traffic_between_two_containers",
        Guest::Links,
    ) {
        return;
    }
    for mode in ["l2", "l3", "l3s"] {
        let mut lab = Lab::new();
        let net = lab
            .network(
                &[
                    ("backend", "ipvlan"),
                    ("parent", "tp0"),
                    ("ipvlan_mode", mode),
                ],
                "10.30.0.0/24",
                false,
            )
            .unwrap();
        let (a, b) = (Netns::new("a"), Netns::new("b"));
        let (_, ja) = lab.attach(&net, &a, "10.30.0.2/24");
        lab.attach(&net, &b, "10.30.0.3/24");
        let d = a.ip(&["-d", "link", "show", "eth0"]);
        assert!(
            d.contains(&format!("ipvlan  mode {mode} bridge")),
            "{mode}: {d}"
        );
        assert!(
            a.ping("10.30.0.3") && b.ping("10.30.0.2"),
            "{mode}: containers cannot talk"
        );
        if mode == "l2" {
            assert!(
                ja.get("StaticRoutes").is_none() && ja.get("Gateway").is_none(),
                "{ja}"
            );
        } else {
            // L3: a default route through the container's own interface
            // (the client speaks as Engine 28: a connected 0.0.0.0/0).
            assert_eq!(
                ja["StaticRoutes"],
                serde_json::json!([{"Destination": "0.0.0.0/0", "RouteType": 1}]),
                "{ja}"
            );
            assert_eq!(ja["DisableGatewayService"], true);
            let route = a.ip(&["route", "get", "192.0.2.1"]);
            assert!(route.contains("dev eth0"), "{mode}: {route}");
        }
        lab.ln.delete_network(&net).unwrap();
    }
}

#[test]
fn ipvlan_flags_behave_as_the_kernel_defines_them() {
    if !in_test_kernel(
        "ipvlan_flags_behave_as_the_kernel_defines_them",
        Guest::Links,
    ) {
        return;
    }
    for (flag, talk) in [("bridge", true), ("private", false), ("vepa", false)] {
        let mut lab = Lab::new();
        let net = lab
            .network(
                &[
                    ("backend", "ipvlan"),
                    ("parent", "tp0"),
                    ("ipvlan_flag", flag),
                ],
                "10.31.0.0/24",
                false,
            )
            .unwrap();
        let (a, b) = (Netns::new("a"), Netns::new("b"));
        lab.attach(&net, &a, "10.31.0.2/24");
        lab.attach(&net, &b, "10.31.0.3/24");
        assert!(
            a.ip(&["-d", "link", "show", "eth0"])
                .contains(&format!("mode l2 {flag}"))
        );
        assert_eq!(a.ping("10.31.0.3"), talk, "ipvlan_flag={flag}");
        lab.ln.delete_network(&net).unwrap();
    }
}

#[test]
fn vlan_parents_are_created_shared_and_deleted_with_the_last_network() {
    if !in_test_kernel(
        "vlan_parents_are_created_shared_and_deleted_with_the_last_network",
        Guest::Links,
    ) {
        return;
    }
    let mut lab = Lab::new();
    let n1 = lab
        .network(
            &[("backend", "macvlan"), ("parent", "tp0.30")],
            "10.30.0.0/24",
            false,
        )
        .unwrap();
    let alias = lab.link_alias("tp0.30").expect("tp0.30 created");
    assert_eq!(alias, format!("switchyard@{}:parent", lab.plugin.name));
    assert!(
        lab.host
            .ip(&["-d", "link", "show", "tp0.30"])
            .contains("vlan protocol 802.1Q id 30")
    );
    let n2 = lab
        .network(
            &[
                ("backend", "macvlan"),
                ("parent", "tp0.30"),
                ("macvlan_mode", "private"),
            ],
            "10.31.0.0/24",
            false,
        )
        .unwrap();
    // Both networks work on the shared sub-interface.
    let (a, b) = (Netns::new("a"), Netns::new("b"));
    lab.attach(&n1, &a, "10.30.0.2/24");
    lab.attach(&n1, &b, "10.30.0.3/24");
    assert!(a.ping("10.30.0.3"));
    // macvlan and ipvlan cannot share it; the error says so.
    let e = lab
        .network(
            &[("backend", "ipvlan"), ("parent", "tp0.30")],
            "10.32.0.0/24",
            false,
        )
        .unwrap_err();
    assert!(
        e.contains("cannot put ipvlan and macvlan links on one parent"),
        "{e}"
    );
    drop((a, b));
    lab.ln.delete_network(&n1).unwrap();
    assert!(
        lab.link_alias("tp0.30").is_some(),
        "deleted while network 2 still uses it"
    );
    lab.ln.delete_network(&n2).unwrap();
    assert!(lab.gone("tp0.30"), "tp0.30 left after the last network");

    // A sub-interface the operator made is used, never deleted.
    lab.host.ip(&[
        "link", "add", "link", "tp0", "name", "tp0.40", "type", "vlan", "id", "40",
    ]);
    lab.host.ip(&["link", "set", "tp0.40", "up"]);
    let n3 = lab
        .network(
            &[
                ("backend", "ipvlan"),
                ("parent", "tp0.40"),
                ("ipvlan_mode", "l3"),
            ],
            "10.40.0.0/24",
            false,
        )
        .unwrap();
    let n4 = lab
        .network(
            &[
                ("backend", "ipvlan"),
                ("parent", "tp0.40"),
                ("ipvlan_mode", "l3"),
            ],
            "10.41.0.0/24",
            false,
        )
        .unwrap();
    let e = lab
        .network(
            &[
                ("backend", "ipvlan"),
                ("parent", "tp0.40"),
                ("ipvlan_mode", "l2"),
            ],
            "10.42.0.0/24",
            false,
        )
        .unwrap_err();
    assert!(
        e.contains("ipvlan_mode=l3") && e.contains("share its mode"),
        "{e}"
    );
    lab.ln.delete_network(&n3).unwrap();
    lab.ln.delete_network(&n4).unwrap();
    assert_eq!(
        lab.link_alias("tp0.40").as_deref(),
        Some(""),
        "the operator's tp0.40 must stay, unmarked"
    );
    // A name that exists but is something else is refused.
    lab.host.ip(&[
        "link", "add", "tp0.50", "type", "veth", "peer", "name", "x50",
    ]);
    let e = lab
        .network(
            &[("backend", "macvlan"), ("parent", "tp0.50")],
            "10.50.0.0/24",
            false,
        )
        .unwrap_err();
    assert!(e.contains("exists but is not VLAN 50 on tp0"), "{e}");
}

#[test]
fn isolated_networks_for_both_backends() {
    if !in_test_kernel("isolated_networks_for_both_backends", Guest::Links) {
        return;
    }
    for backend in ["macvlan", "ipvlan"] {
        let mut lab = Lab::new();
        let net = lab
            .network(&[("backend", backend)], "10.60.0.0/24", true)
            .unwrap();
        let parent = switchyard_core::spec::isolated_parent_name(&net);
        let d = lab.host.ip(&["-d", "link", "show", &parent]);
        assert!(
            d.contains("dummy")
                && d.contains(&format!("alias switchyard@{}:{net}", lab.plugin.name)),
            "{backend}: {d}"
        );
        let (a, b) = (Netns::new("a"), Netns::new("b"));
        let (_, j) = lab.attach(&net, &a, "10.60.0.2/24");
        lab.attach(&net, &b, "10.60.0.3/24");
        assert!(
            j.get("Gateway").is_none() && j.get("StaticRoutes").is_none(),
            "internal: no way out: {j}"
        );
        assert!(
            a.ping("10.60.0.3"),
            "{backend}: containers of an isolated network cannot talk"
        );
        drop((a, b));
        lab.ln.delete_network(&net).unwrap();
        assert!(lab.gone(&parent), "{backend}: isolated parent left behind");
    }
}

#[test]
fn plugin_sigkill_between_create_and_delete_keeps_parents_right() {
    if !in_test_kernel(
        "plugin_sigkill_between_create_and_delete_keeps_parents_right",
        Guest::Links,
    ) {
        return;
    }
    let mut lab = Lab::new();
    let n1 = lab
        .network(
            &[("backend", "ipvlan"), ("parent", "tp0.30")],
            "10.30.0.0/24",
            false,
        )
        .unwrap();
    let n2 = lab
        .network(
            &[("backend", "ipvlan"), ("parent", "tp0.30")],
            "10.31.0.0/24",
            false,
        )
        .unwrap();
    let iso = lab
        .network(&[("backend", "macvlan")], "10.60.0.0/24", true)
        .unwrap();
    let iso_parent = switchyard_core::spec::isolated_parent_name(&iso);
    // An orphaned shared parent of this instance, and one whose network is gone.
    let name = lab.plugin.name.clone();
    lab.host.ip(&[
        "link", "add", "link", "tp0", "name", "tp0.77", "type", "vlan", "id", "77",
    ]);
    lab.host.ip(&[
        "link",
        "set",
        "tp0.77",
        "alias",
        &format!("switchyard@{name}:parent"),
    ]);
    lab.host.ip(&["link", "add", "sdorphan", "type", "dummy"]);
    lab.host.ip(&[
        "link",
        "set",
        "sdorphan",
        "alias",
        &format!("switchyard@{name}:{}", random_id()),
    ]);
    // The operator deletes a sub-interface Switchyard made, while the plugin is down.
    lab.plugin.kill();
    lab.host.ip(&["link", "del", "tp0.30"]);
    lab.restart_plugin();
    let links = lab.host.links();
    assert!(
        !links.contains(&"tp0.77".to_string()) && !links.contains(&"sdorphan".to_string()),
        "orphans kept: {links:?}"
    );
    assert!(
        links.contains(&"tp0.30".to_string()),
        "a missing parent of a stored network is re-created at start: {links:?}"
    );
    assert!(links.contains(&iso_parent), "{links:?}");
    // The refcount survived: deleting one network keeps the shared parent.
    lab.ln.delete_network(&n1).unwrap();
    assert!(lab.link_alias("tp0.30").is_some());
    let a = Netns::new("a");
    lab.attach(&n2, &a, "10.31.0.2/24");
    drop(a);
    lab.ln.delete_network(&n2).unwrap();
    lab.ln.delete_network(&iso).unwrap();
    assert!(lab.gone("tp0.30") && lab.gone(&iso_parent));
    assert!(
        wait_for(5.0, || lab.host.marked_links().is_empty().then_some(())).is_some(),
        "{:?}",
        lab.host.marked_links()
    );
}

/// Issue #10: networks without a parent that are not internal (as every
/// engine's built-in accepts them): each gets its own dummy parent and keeps
/// its gateway; ipvlan l2 and l3 live side by side; the parents survive a
/// plugin SIGKILL (a deleted one is re-created at start) and go with their
/// networks.
#[test]
fn parentless_networks_side_by_side_survive_restarts() {
    if !in_test_kernel(
        "parentless_networks_side_by_side_survive_restarts",
        Guest::Links,
    ) {
        return;
    }
    let mut lab = Lab::new();
    let cases: [(&[(&str, &str)], &str); 3] = [
        (&[("backend", "macvlan")], "10.64.1.0/24"),
        (&[("backend", "ipvlan")], "10.64.2.0/24"),
        (
            &[("backend", "ipvlan"), ("ipvlan_mode", "l3")],
            "10.64.3.0/24",
        ),
    ];
    let mut nets = Vec::new();
    for (opts, subnet) in cases {
        let net = random_id();
        let gw = subnet.replace(".0/24", ".1");
        lab.ln
            .create_network(&net, opts, &[(subnet, Some(&gw))], &[], false)
            .unwrap();
        let parent = switchyard_core::spec::isolated_parent_name(&net);
        let d = lab.host.ip(&["-d", "link", "show", &parent]);
        assert!(d.contains("dummy"), "{opts:?}: {d}");
        nets.push((net, parent, subnet, gw));
    }
    lab.plugin.kill();
    lab.host.ip(&["link", "del", &nets[1].1]);
    lab.restart_plugin();
    for (net, parent, subnet, _) in &nets {
        assert!(lab.host.links().contains(parent), "{parent} after restart");
        let (a, b) = (Netns::new("a"), Netns::new("b"));
        let ip = |n: u8| subnet.replace(".0/24", &format!(".{n}/24"));
        let (_, j) = lab.attach(net, &a, &ip(2));
        lab.attach(net, &b, &ip(3));
        // The client speaks as Engine 28, whose built-ins treat a network
        // without a parent as internal: no gateway, no default route
        // (20.10 keeps them: dockerd_dropin.rs).
        assert!(
            j.get("Gateway").is_none() && j.get("StaticRoutes").is_none(),
            "{j}"
        );
        let peer = subnet.replace(".0/24", ".3");
        assert!(a.ping(&peer), "{parent}: containers cannot talk");
        drop((a, b));
    }
    for (net, parent, ..) in &nets {
        lab.ln.delete_network(net).unwrap();
        assert!(lab.gone(parent), "{parent} left behind");
    }
}

/// `-o host_access` on ipvlan L2: the host's link is an ipvlan port sharing
/// the parent's MAC; the host (with its own address on tp0 in the subnet)
/// and the container reach each other, also after the plugin restarted
/// without the link; the link goes with the network.
#[test]
fn ipvlan_l2_host_access() {
    if !in_test_kernel("ipvlan_l2_host_access", Guest::Links) {
        return;
    }
    let mut lab = Lab::new();
    lab.host.ip(&["addr", "add", "10.31.0.10/24", "dev", "tp0"]);
    let net = lab
        .network(
            &[
                ("backend", "ipvlan"),
                ("parent", "tp0"),
                ("host_access", "10.31.0.250"),
            ],
            "10.31.0.0/24",
            false,
        )
        .unwrap();
    let link = lab
        .host
        .links()
        .into_iter()
        .find(|l| l.starts_with("syh"))
        .expect("the host access link");
    let d = lab.host.ip(&["-d", "addr", "show", &link]);
    assert!(d.contains("ipvlan  mode l2 bridge"), "{d}");
    assert!(d.contains("10.31.0.250/32"), "{d}");
    let ctr = Netns::new("ih");
    let (ep, join) = lab.attach(&net, &ctr, "10.31.0.2/24");
    let both_ways = |lab: &Lab, when: &str| {
        assert!(
            lab.host.ping("10.31.0.2"),
            "{when}: host → container over ipvlan l2:\n{}",
            lab.host.ip(&["route"])
        );
        assert!(
            ctr.ping("10.31.0.250"),
            "{when}: container → host over ipvlan l2"
        );
    };
    both_ways(&lab, "after Join");
    lab.plugin.kill();
    lab.host.ip(&["link", "del", &link]);
    lab.restart_plugin();
    both_ways(&lab, "after the plugin restarted without the host link");
    let src = join["InterfaceName"]["SrcName"]
        .as_str()
        .unwrap()
        .to_string();
    lab.detach(&net, &ep, &ctr, &src);
    lab.ln.delete_network(&net).unwrap();
    lab.assert_no_marked_links();
    assert!(lab.gone(&link), "the host link outlived its network");
}

/// `-o ipv6_slaac=true` on ipvlan L2, playing dockerd's part (the
/// endpoint sysctl asked for in CreateEndpoint, `accept_ra=2` set before
/// the link comes up): Debian's radvd on the LAN, and two containers
/// sharing the parent's MAC each take a distinct address from the prefix,
/// the router's default route, and reach the router.
#[test]
fn ipvlan_l2_slaac() {
    if !in_test_kernel("ipvlan_l2_slaac", Guest::Links) {
        return;
    }
    let mut lab = Lab::new();
    let _router = Router::start(&lab.host, "tp1", "fd00:31::/64", "fd00:31::1/64");
    let net = random_id();
    lab.ln
        .create_network(
            &net,
            &[
                ("backend", "ipvlan"),
                ("parent", "tp0"),
                ("ipv6_slaac", "true"),
            ],
            &[("10.32.0.0/24", None)],
            &[("fd00:31::/64", Some("fd00:31::1"))],
            false,
        )
        .unwrap_or_else(|e| panic!("CreateNetwork: {e}"));
    let mut addrs = Vec::new();
    for (i, tag) in ["sa", "sb"].into_iter().enumerate() {
        let ctr = Netns::new(tag);
        let ep = random_id();
        lab.ln
            .call(
                "CreateEndpoint",
                serde_json::json!({"NetworkID": net, "EndpointID": ep,
                    "Interface": {"Address": format!("10.32.0.{}/24", i + 2),
                                  "AddressIPv6": format!("fd00:31::{}/64", i + 2), "MacAddress": ""},
                    "Options": {"com.docker.network.endpoint.sysctls": "net.ipv6.conf.IFNAME.accept_ra=2"}}),
            )
            .unwrap_or_else(|e| panic!("CreateEndpoint: {e}"));
        let join = lab
            .ln
            .join(&net, &ep, ctr.path().to_str().unwrap())
            .unwrap_or_else(|e| panic!("Join: {e}"));
        assert!(
            join.get("GatewayIPv6").is_none(),
            "no static IPv6 gateway beside the router's: {join}"
        );
        let src = join["InterfaceName"]["SrcName"].as_str().unwrap();
        // What dockerd does with the endpoint sysctl, before the link is up.
        lab.host.ip(&["link", "set", src, "netns", ctr.name()]);
        ctr.ip(&["link", "set", src, "name", "eth0"]);
        let (ok, out) = ctr.exec(&["sysctl", "-w", "net.ipv6.conf.eth0.accept_ra=2"]);
        assert!(ok, "{out}");
        ctr.ip(&[
            "addr",
            "add",
            &format!("fd00:31::{}/64", i + 2),
            "dev",
            "eth0",
            "nodad",
        ]);
        ctr.ip(&["link", "set", "eth0", "up"]);
        let learnt = wait_for(30.0, || {
            let a = ctr.ip(&["-6", "addr", "show", "dev", "eth0", "dynamic"]);
            let r = ctr.ip(&["-6", "route", "show", "default"]);
            let addr = a
                .lines()
                .find_map(|l| l.trim().strip_prefix("inet6 fd00:31::"))
                .map(|s| s.split('/').next().unwrap().to_string());
            (addr.is_some() && r.contains("via fe80::")).then(|| (addr.unwrap(), r))
        });
        let (addr, routes) = learnt.unwrap_or_else(|| {
            panic!(
                "{tag}: no SLAAC address or default route within 30 s:\n{}\n{}",
                ctr.ip(&["-6", "addr"]),
                ctr.ip(&["-6", "route"])
            )
        });
        assert_eq!(
            routes.lines().count(),
            1,
            "{tag}: one default route: {routes}"
        );
        let reached = wait_for(10.0, || {
            ctr.exec(&["ping", "-6", "-c", "1", "-W", "2", "fd00:31::1"])
                .0
                .then_some(())
        });
        assert!(reached.is_some(), "{tag}: the router is not reachable");
        addrs.push((addr, ctr));
    }
    assert_ne!(
        addrs[0].0, addrs[1].0,
        "ipvlan links share the parent's MAC, but their SLAAC addresses differ"
    );
}
