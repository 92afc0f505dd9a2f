//! `-o host_access`: the host reaches its own macvlan containers and they
//! reach it, through Switchyard's host link on the parent. The real
//! `switchyard` in a "host" namespace whose parent tp0 also carries the
//! host's own LAN address (the case that needs per-container routes: the
//! parent's connected route covers the subnet), containers in namespaces.

use serde_json::{Value, json};
use switchyard_integration_tests::{Lab, Netns, random_id, wait_for};

const SUBNET: &str = "10.78.0.0/24";
const SUBNET6: &str = "fd00:78::/64";
const HOST: &str = "10.78.0.250";
const HOST6: &str = "fd00:78::250";

fn status(lab: &mut Lab) -> Value {
    lab.ln
        .client
        .call_raw("Switchyard.Status", b"")
        .unwrap()
        .json()
}

/// The host link's name, as `switchyard status` shows it for `net`.
fn host_link(lab: &mut Lab, net: &str) -> String {
    let s = status(lab);
    let n = s["networks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == json!(net))
        .unwrap_or_else(|| panic!("network {net} not in status: {s}"));
    let d = n["details"]["host_access"]
        .as_str()
        .unwrap_or_else(|| panic!("status shows no host_access for {net}: {n}"));
    d.split('(').next().unwrap().to_string()
}

fn ping6(ns: &Netns, addr: &str) -> bool {
    wait_for(5.0, || {
        ns.exec(&["ping", "-6", "-c", "2", "-i", "0.2", "-W", "1", addr])
            .0
            .then_some(())
    })
    .is_some()
}

/// Pings both ways, both families, with what the host namespace shows on failure.
fn assert_both_ways(lab: &Lab, ctr: &Netns, when: &str) {
    let why = || {
        format!(
            "{}\n{}\n{}",
            lab.host.ip(&["-d", "addr"]),
            lab.host.ip(&["route"]),
            lab.host.ip(&["-6", "route"])
        )
    };
    assert!(
        lab.host.ping("10.78.0.2"),
        "{when}: the host cannot reach its container:\n{}",
        why()
    );
    assert!(
        ctr.ping(HOST),
        "{when}: the container cannot reach the host at {HOST}:\n{}",
        why()
    );
    assert!(
        ping6(&lab.host, "fd00:78::2"),
        "{when}: the host cannot reach its container over IPv6:\n{}",
        why()
    );
    assert!(
        ping6(ctr, HOST6),
        "{when}: the container cannot reach the host at {HOST6}:\n{}",
        why()
    );
}

#[test]
fn host_and_macvlan_container_reach_each_other_across_restarts() {
    let mut lab = Lab::new();
    // The host is on the LAN itself: its parent has an address (and the
    // connected route) in the network's subnet.
    lab.host.ip(&["addr", "add", "10.78.0.10/24", "dev", "tp0"]);
    let net = random_id();
    lab.ln
        .create_network(
            &net,
            &[
                ("backend", "macvlan"),
                ("parent", "tp0"),
                ("host_access", &format!("{HOST},{HOST6}")),
            ],
            &[(SUBNET, Some("10.78.0.1"))],
            &[(SUBNET6, Some("fd00:78::1"))],
            false,
        )
        .unwrap_or_else(|e| panic!("CreateNetwork: {e}"));
    let link = host_link(&mut lab, &net);
    let d = lab.host.ip(&["-d", "addr", "show", &link]);
    assert!(d.contains("macvlan mode bridge"), "{d}");
    assert!(d.contains(&format!("{HOST}/32")), "{d}");
    assert!(d.contains(&format!("{HOST6}/128")), "{d}");
    assert!(
        lab.link_alias(&link)
            .is_some_and(|a| a.ends_with(&format!(":{net}"))),
        "the host link carries the network's mark: {d}"
    );
    // The control: a network on the same parent without host access.
    let plain = random_id();
    lab.ln
        .create_network(
            &plain,
            &[("backend", "macvlan"), ("parent", "tp0")],
            &[("10.79.0.0/24", None)],
            &[],
            false,
        )
        .unwrap();
    lab.host.ip(&["addr", "add", "10.79.0.10/24", "dev", "tp0"]);
    let other = Netns::new("hc");
    let (oep, ojoin) = lab.attach(&plain, &other, "10.79.0.2/24");
    assert!(
        !lab.host.ping("10.79.0.2"),
        "without host_access the kernel keeps the host from its macvlan container"
    );
    let osrc = ojoin["InterfaceName"]["SrcName"]
        .as_str()
        .unwrap()
        .to_string();
    lab.detach(&plain, &oep, &other, &osrc);
    lab.ln.delete_network(&plain).unwrap();

    let ctr = Netns::new("ha");
    let (ep, join) = lab.attach_dual(&net, &ctr, "10.78.0.2/24", "fd00:78::2/64");
    let src = join["InterfaceName"]["SrcName"]
        .as_str()
        .unwrap()
        .to_string();
    let routes = lab.host.ip(&["route", "show", "dev", &link]);
    assert!(
        routes.contains(&format!("10.78.0.2 proto static scope link src {HOST}")),
        "{routes}"
    );
    assert_both_ways(&lab, &ctr, "after Join");

    // A restart finds everything in place and leaves it so.
    lab.restart_plugin();
    assert_both_ways(&lab, &ctr, "after a plugin restart");

    // A host link lost under a running plugin is a PROBLEM in status.
    lab.host.ip(&["link", "del", &link]);
    let s = status(&mut lab).to_string();
    assert!(
        s.contains(&format!("the host access link {link} is missing")),
        "{s}"
    );
    // Lost while the plugin was down: made again at start, with the
    // joined container's routes.
    lab.plugin.kill();
    lab.restart_plugin();
    assert_eq!(host_link(&mut lab, &net), link);
    assert_both_ways(
        &lab,
        &ctr,
        "after the host link was lost and the plugin restarted",
    );

    // Leave takes the container's routes away; the network keeps the link.
    lab.ln
        .endpoint_call("Leave", &net, &ep)
        .unwrap_or_else(|e| panic!("Leave: {e}"));
    let routes = lab.host.ip(&["route", "show", "dev", &link]);
    assert!(!routes.contains("10.78.0.2"), "{routes}");
    lab.ln.endpoint_call("Leave", &net, &ep).unwrap();
    ctr.ip(&["link", "set", "eth0", "down"]);
    ctr.ip(&["link", "set", "eth0", "name", &src]);
    ctr.ip(&["link", "set", &src, "netns", lab.host.name()]);
    lab.ln.endpoint_call("DeleteEndpoint", &net, &ep).unwrap();
    lab.ln.delete_network(&net).unwrap();
    lab.assert_no_marked_links();
    assert!(lab.gone(&link), "the host link outlived its network");
    let addrs = lab.host.ip(&["addr", "show", "tp0"]);
    assert!(
        addrs.contains("10.78.0.10/24"),
        "the parent is the host's: {addrs}"
    );
}

#[test]
fn host_access_on_a_private_parent_and_from_the_aux_address() {
    let mut lab = Lab::new();
    let net = random_id();
    // --aux-address host=… reserves the address in Docker's IPAM;
    // libnetwork sends it as IP/prefix.
    let answer = lab.ln.call(
        "CreateNetwork",
        json!({"NetworkID": net,
               "Options": {"com.docker.network.enable_ipv4": true,
                           "com.docker.network.generic": {"backend": "macvlan", "host_access": "true"}},
               "IPv4Data": [{"AddressSpace": "LocalDefault", "Pool": SUBNET,
                             "AuxAddresses": {"host": format!("{HOST}/24")}}],
               "IPv6Data": []}),
    );
    answer.unwrap_or_else(|e| panic!("CreateNetwork: {e}"));
    let link = host_link(&mut lab, &net);
    let ctr = Netns::new("hp");
    let (ep, join) = lab.attach(&net, &ctr, "10.78.0.2/24");
    assert!(
        lab.host.ping("10.78.0.2"),
        "host → container on a private parent"
    );
    assert!(ctr.ping(HOST), "container → host on a private parent");
    let src = join["InterfaceName"]["SrcName"]
        .as_str()
        .unwrap()
        .to_string();
    lab.detach(&net, &ep, &ctr, &src);
    lab.ln.delete_network(&net).unwrap();
    lab.assert_no_marked_links();
    assert!(lab.gone(&link));
}

/// `-o` options, and an IPv4 pool with its gateway.
type Opts<'a> = &'a [(&'a str, &'a str)];
type Pool<'a> = (&'a str, Option<&'a str>);

#[test]
fn host_access_is_refused_where_it_cannot_work() {
    let mut lab = Lab::new();
    let cases: &[(Opts, Option<Pool>, &str)] = &[
        (
            &[
                ("backend", "macvlan"),
                ("parent", "tp0"),
                ("macvlan_mode", "passthru"),
                ("host_access", HOST),
            ],
            None,
            "needs macvlan_mode=bridge: macvlan_mode=passthru",
        ),
        (
            &[
                ("backend", "macvlan"),
                ("parent", "tp0"),
                ("macvlan_mode", "private"),
                ("host_access", HOST),
            ],
            None,
            "needs macvlan_mode=bridge: macvlan_mode=private",
        ),
        (
            &[
                ("backend", "macvlan"),
                ("parent", "tp0"),
                ("macvlan_mode", "vepa"),
                ("host_access", HOST),
            ],
            None,
            "hairpin",
        ),
        (
            &[
                ("backend", "ipvlan"),
                ("parent", "tp0"),
                ("ipvlan_mode", "l3"),
                ("host_access", HOST),
            ],
            None,
            "host_access is for ipvlan_mode=l2",
        ),
        (
            &[
                ("backend", "ipvlan"),
                ("parent", "tp0"),
                ("ipvlan_flag", "private"),
                ("host_access", HOST),
            ],
            None,
            "ipvlan_flag=private",
        ),
        (
            &[
                ("backend", "macvlan"),
                ("parent", "tp0"),
                ("host_access", "10.99.0.5"),
            ],
            None,
            "10.99.0.5 is outside the network's IPv4 subnets (10.78.0.0/24)",
        ),
        (
            &[
                ("backend", "macvlan"),
                ("parent", "tp0"),
                ("host_access", "10.78.0.1"),
            ],
            Some((SUBNET, Some("10.78.0.1"))),
            "is the network's gateway",
        ),
        (
            &[
                ("backend", "macvlan"),
                ("parent", "tp0"),
                ("host_access", "myhost"),
            ],
            None,
            "host_access \"myhost\" is not an IP address",
        ),
        (
            &[
                ("backend", "macvlan"),
                ("parent", "tp0"),
                ("host_access", "true"),
            ],
            None,
            "--aux-address host=",
        ),
        (
            &[("backend", "vxlan"), ("vni", "42"), ("host_access", HOST)],
            None,
            "option \"host_access\" belongs to backend",
        ),
    ];
    for (opts, subnet, want) in cases {
        let (pool, gw) = subnet.unwrap_or((SUBNET, None));
        let err = lab
            .ln
            .create_network(&random_id(), opts, &[(pool, gw)], &[], false)
            .expect_err(&format!("{opts:?} must be refused"));
        assert!(err.contains(want), "{opts:?}: {err}");
    }
    // A container may not take the host's address.
    let net = random_id();
    lab.ln
        .create_network(
            &net,
            &[
                ("backend", "macvlan"),
                ("parent", "tp0"),
                ("host_access", HOST),
            ],
            &[(SUBNET, None)],
            &[],
            false,
        )
        .unwrap();
    let err = lab
        .ln
        .create_endpoint(&net, &random_id(), &format!("{HOST}/24"), "", "")
        .expect_err("an endpoint on the host's address must be refused");
    assert!(
        err.contains("is the host's") && err.contains("--aux-address host="),
        "{err}"
    );
    lab.ln.delete_network(&net).unwrap();
    lab.assert_no_marked_links();
    let stray: Vec<String> = lab
        .host
        .links()
        .into_iter()
        .filter(|l| l.starts_with("sy"))
        .collect();
    assert!(stray.is_empty(), "refused networks left links: {stray:?}");
}
