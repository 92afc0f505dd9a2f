//! `-o ipam=dhcp` at the protocol level, with the real binary and a real
//! dnsmasq on the parent's LAN: the endpoint's address and gateway come
//! from the server, renewals reach it (also after a plugin restart, from
//! the container's namespace), reservations by MAC hold, DeleteEndpoint
//! releases the lease, and no server means a clear error within the bound.

use serde_json::json;
use std::time::{Duration, Instant};
use switchyard_integration_tests::dnsmasq::Dnsmasq;
use switchyard_integration_tests::{Lab, Netns, random_id, wait_for};

/// The lab's LAN (tp1) in a namespace of its own, where dnsmasq serves it.
fn lan(lab: &Lab) -> Netns {
    switchyard_integration_tests::dnsmasq::lan(&lab.host)
}

/// CreateNetwork as dockerd sends it for `--ipam-driver null`.
fn dhcp_network(lab: &mut Lab, opts: &[(&str, &str)]) -> Result<String, String> {
    let id = random_id();
    let generic: serde_json::Map<String, serde_json::Value> = opts
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    lab.ln
        .call(
            "CreateNetwork",
            json!({"NetworkID": id,
                   "Options": {"com.docker.network.enable_ipv4": true, "com.docker.network.enable_ipv6": false,
                               "com.docker.network.generic": generic},
                   "IPv4Data": [{"AddressSpace": "null", "Pool": "0.0.0.0/0"}], "IPv6Data": []}),
        )
        .map(|_| id)
}

fn macvlan_dhcp() -> Vec<(&'static str, &'static str)> {
    vec![("backend", "macvlan"), ("parent", "tp0"), ("ipam", "dhcp")]
}

#[test]
fn lease_gateway_renewal_restart_and_release() {
    let mut lab = Lab::config()
        .tag("dh")
        .env("SWITCHYARD__DHCP__RENEW_EVERY_SECS", "3")
        .start();
    let lan = lan(&lab);
    let server = Dnsmasq::start(&lan, "tp1", &[]);
    let net = dhcp_network(&mut lab, &macvlan_dhcp()).unwrap();
    let ep = random_id();
    let created = lab.ln.create_endpoint(&net, &ep, "", "", "").unwrap();
    let cidr = created["Interface"]["Address"]
        .as_str()
        .unwrap()
        .to_string();
    let mac = created["Interface"]["MacAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let addr = cidr.split('/').next().unwrap().to_string();
    assert!(
        cidr.starts_with("192.0.2.") && cidr.ends_with("/24"),
        "{created}"
    );
    let leases = server.leases();
    assert!(
        leases.iter().any(|l| l.1 == mac && l.2 == addr),
        "dnsmasq holds no lease for {mac} {addr}: {leases:?}"
    );

    let ctr = Netns::new("dc");
    let join = lab
        .ln
        .join(&net, &ep, ctr.path().to_str().unwrap())
        .unwrap();
    assert_eq!(join["Gateway"], json!("192.0.2.1"), "{join}");
    let src = join["InterfaceName"]["SrcName"]
        .as_str()
        .unwrap()
        .to_string();
    lab.host.hand_over(&src, &ctr, "eth0", &[&cidr]);
    assert!(
        ctr.ping("192.0.2.1"),
        "the container reaches the LAN's router"
    );

    // Renewals (every 3 s here) reach the server from the container.
    let first = server.expiry(&addr).unwrap();
    let renewed = wait_for(15.0, || server.expiry(&addr).filter(|e| *e > first));
    assert!(
        renewed.is_some(),
        "no renewal reached dnsmasq: {}",
        server.log()
    );

    // A restarted plugin keeps the address and renews it again.
    lab.restart_plugin();
    let again = lab.ln.create_endpoint(&net, &ep, "", "", "").unwrap();
    assert_eq!(
        again["Interface"]["Address"],
        json!(cidr),
        "a retried CreateEndpoint answers the same"
    );
    let sock = lab.plugin.socket_path().to_str().unwrap().to_string();
    let status = switchyard_integration_tests::plugin::Plugin::run_once(
        &lab.host,
        &["status"],
        &[("SWITCHYARD__PLUGIN__SOCKET", &sock)],
        Duration::from_secs(10),
    );
    assert!(
        status.text.contains("dhcp lease") && status.text.contains(&cidr),
        "switchyard status shows the lease: {}",
        status.text
    );
    let before = server.expiry(&addr).unwrap();
    let renewed = wait_for(15.0, || server.expiry(&addr).filter(|e| *e > before));
    assert!(
        renewed.is_some(),
        "no renewal after the restart: {}",
        server.log()
    );
    // dnsmasq writes its lease file before its ACK reaches the plugin, so
    // the plugin's own record of the renewal may follow a moment later.
    assert!(
        wait_for(5.0, || lab
            .plugin
            .log_text()
            .contains("DHCP lease extended")
            .then_some(()))
        .is_some(),
        "the plugin did not log the renewal dnsmasq saw"
    );

    // DeleteEndpoint releases the lease at the server.
    lab.detach(&net, &ep, &ctr, &src);
    assert!(
        wait_for(5.0, || server.expiry(&addr).is_none().then_some(())).is_some(),
        "the lease of {addr} is still in dnsmasq's file: {:?}",
        server.leases()
    );
    lab.ln.delete_network(&net).unwrap();
    lab.assert_no_marked_links();
}

#[test]
fn server_away_and_back_rebinding_keeps_the_lease() {
    let mut lab = Lab::config()
        .tag("dr")
        .env("SWITCHYARD__DHCP__RENEW_EVERY_SECS", "2")
        .start();
    let lan = lan(&lab);
    let mut server = Dnsmasq::start(&lan, "tp1", &[]);
    let net = dhcp_network(&mut lab, &macvlan_dhcp()).unwrap();
    let ctr = Netns::new("dc");
    let ep = random_id();
    let created = lab.ln.create_endpoint(&net, &ep, "", "", "").unwrap();
    let cidr = created["Interface"]["Address"]
        .as_str()
        .unwrap()
        .to_string();
    let addr = cidr.split('/').next().unwrap().to_string();
    let join = lab
        .ln
        .join(&net, &ep, ctr.path().to_str().unwrap())
        .unwrap();
    let src = join["InterfaceName"]["SrcName"]
        .as_str()
        .unwrap()
        .to_string();
    lab.host.hand_over(&src, &ctr, "eth0", &[&cidr]);
    server.stop();
    let noticed = wait_for(15.0, || {
        lab.plugin
            .log_text()
            .contains("no DHCP server answered the renewal")
            .then_some(())
    });
    assert!(noticed.is_some(), "the renewer noticed the server was gone");
    let before = server.expiry(&addr).unwrap();
    server.resume(&lan);
    let renewed = wait_for(30.0, || server.expiry(&addr).filter(|e| *e > before));
    assert!(
        renewed.is_some(),
        "no renewal once the server was back: {}",
        server.log()
    );
    lab.detach(&net, &ep, &ctr, &src);
    lab.ln.delete_network(&net).unwrap();
    lab.assert_no_marked_links();
}

#[test]
fn a_reservation_by_mac_is_honoured() {
    let mut lab = Lab::config().tag("dv").start();
    let lan = lan(&lab);
    let _server = Dnsmasq::start(&lan, "tp1", &["--dhcp-host=02:42:c0:00:02:63,192.0.2.99"]);
    let net = dhcp_network(&mut lab, &macvlan_dhcp()).unwrap();
    let ep = random_id();
    let created = lab
        .ln
        .create_endpoint(&net, &ep, "", "", "02:42:c0:00:02:63")
        .unwrap();
    assert_eq!(
        created["Interface"]["Address"],
        json!("192.0.2.99/24"),
        "{created}"
    );
    lab.ln.endpoint_call("DeleteEndpoint", &net, &ep).unwrap();
    lab.ln.delete_network(&net).unwrap();
    lab.assert_no_marked_links();
}

#[test]
fn ipvlan_l2_gets_a_lease_of_its_own() {
    // IPVLAN needs the test kernel (the build machines' has none).
    if !switchyard_integration_tests::guest::in_test_kernel(
        "ipvlan_l2_gets_a_lease_of_its_own",
        switchyard_integration_tests::guest::Guest::Links,
    ) {
        return;
    }
    let mut lab = Lab::config().tag("di").start();
    let lan = lan(&lab);
    let server = Dnsmasq::start(&lan, "tp1", &[]);
    let net = dhcp_network(
        &mut lab,
        &[("backend", "ipvlan"), ("parent", "tp0"), ("ipam", "dhcp")],
    )
    .unwrap();
    let (a, b) = (random_id(), random_id());
    let ca = lab.ln.create_endpoint(&net, &a, "", "", "").unwrap();
    let cb = lab.ln.create_endpoint(&net, &b, "", "", "").unwrap();
    let (aa, ab) = (&ca["Interface"]["Address"], &cb["Interface"]["Address"]);
    assert!(aa.as_str().unwrap().starts_with("192.0.2."), "{ca}");
    assert_ne!(
        aa, ab,
        "two ipvlan endpoints (same MAC) have distinct client ids"
    );
    assert_eq!(server.leases().len(), 2, "{:?}", server.leases());
    for ep in [&a, &b] {
        lab.ln.endpoint_call("DeleteEndpoint", &net, ep).unwrap();
    }
    assert!(wait_for(5.0, || server.leases().is_empty().then_some(())).is_some());
    lab.ln.delete_network(&net).unwrap();
    lab.assert_no_marked_links();
}

#[test]
fn no_server_fails_within_the_bound_and_leaves_nothing() {
    let mut lab = Lab::config()
        .tag("dn")
        .env("SWITCHYARD__DHCP__TIMEOUT_SECS", "3")
        .start();
    let _lan = lan(&lab); // a LAN without a DHCP server
    let net = dhcp_network(&mut lab, &macvlan_dhcp()).unwrap();
    let ep = random_id();
    let t = Instant::now();
    let err = lab.ln.create_endpoint(&net, &ep, "", "", "").unwrap_err();
    assert!(
        t.elapsed() < Duration::from_secs(6),
        "took {:?}",
        t.elapsed()
    );
    assert!(
        err.contains("no DHCP server answered on parent \"tp0\" within 3 s"),
        "{err}"
    );
    lab.assert_no_marked_links();
    // Not half-created: a later Join knows no such endpoint.
    assert!(lab.ln.join(&net, &ep, "/run/netns/none").is_err());
    lab.ln.delete_network(&net).unwrap();
}

#[test]
fn dhcp_is_refused_where_it_cannot_work() {
    let mut lab = Lab::config().tag("dx").start();
    let e = lab
        .network(
            &[("backend", "macvlan"), ("parent", "tp0"), ("ipam", "dhcp")],
            "10.9.0.0/24",
            false,
        )
        .unwrap_err();
    assert!(e.contains("--ipam-driver null"), "{e}");
    let e = dhcp_network(
        &mut lab,
        &[
            ("backend", "ipvlan"),
            ("parent", "tp0"),
            ("ipvlan_mode", "l3"),
            ("ipam", "dhcp"),
        ],
    )
    .unwrap_err();
    assert!(e.contains("ipvlan_mode=l2"), "{e}");
    let e = dhcp_network(
        &mut lab,
        &[("backend", "vxlan"), ("vni", "77"), ("ipam", "dhcp")],
    )
    .unwrap_err();
    assert!(e.contains("ipam"), "{e}");
    let e = dhcp_network(
        &mut lab,
        &[("backend", "macvlan"), ("parent", "tp0"), ("ipam", "dhcpp")],
    )
    .unwrap_err();
    assert!(
        e.contains("ipam=\"dhcpp\"") && e.contains("ipam=dhcp"),
        "{e}"
    );
    lab.assert_no_marked_links();
}
