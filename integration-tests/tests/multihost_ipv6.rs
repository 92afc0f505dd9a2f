//! VXLAN over an IPv6 underlay: the VTEPs are IPv6 addresses (`[vxlan]
//! local_ip`), etcd stays on the IPv4 side of the same underlay. The
//! kernels hold IPv6 FDB destinations, containers on different hosts reach
//! each other, and the MTU accounts for the 70-byte VXLAN-over-IPv6
//! overhead.

use switchyard_integration_tests::multihost::{Cluster, LEASE_TTL, Net};

#[test]
fn vxlan_over_ipv6_underlay() {
    let mut c = Cluster::without_plugins(3);
    for (i, h) in c.hosts.iter_mut().enumerate() {
        let v6 = format!("fd00:88::{}", i + 1);
        h.ns.ip(&["addr", "add", &format!("{v6}/64"), "dev", "uplink", "nodad"]);
        h.vtep = v6.clone();
        h.set_env("SWITCHYARD__VXLAN__LOCAL_IP", Some(&v6));
    }
    for h in &c.hosts {
        for o in &c.hosts {
            assert!(
                h.ns.exec(&["ping", "-6", "-c", "1", "-W", "2", &o.vtep]).0,
                "{} cannot reach {} on the IPv6 underlay",
                h.id,
                o.vtep
            );
        }
    }
    for h in &mut c.hosts {
        h.start_plugin();
    }
    for h in &c.hosts {
        h.wait_registered(20.0)
            .unwrap_or_else(|e| panic!("{e}\n{}", c.logs()));
        let st = h.cluster_status().unwrap();
        assert_eq!(st["vtep"].as_str(), Some(h.vtep.as_str()), "{st}");
    }
    let net = c.create_network(6001, "10.61.0.0/24", &[]);
    let eps: Vec<usize> = (0..3).map(|h| c.attach(h, &net)).collect();
    if let Err(e) = c.wait_all_kernels(6001, 20.0) {
        panic!("{e}\n{}", c.logs());
    }
    // The FDB destinations are the IPv6 VTEPs.
    let k = c.hosts[0].kernel(6001).unwrap();
    let dsts: Vec<&str> = k.fdb.iter().map(|(_, d)| d.as_str()).collect();
    assert_eq!(dsts, ["fd00:88::2", "fd00:88::3"], "{k:?}");
    for &a in &eps {
        for &b in &eps {
            if a != b
                && let Err(e) = c.wait_ping(a, b, 10.0)
            {
                panic!("{e}\n{}", c.logs());
            }
        }
    }
    // 1500 − 70 (outer IPv6 40 + UDP 8 + VXLAN 8 + inner Ethernet 14).
    assert_eq!(c.hosts[0].mtu("syvx6001"), 1430);
}

/// A host whose VTEP is IPv6 in a cluster of IPv4 VTEPs cannot reach them
/// (a VXLAN device sends over one family): it refuses to join, says why
/// and what to change, keeps its local networks, and joins once the other
/// family's hosts are gone.
#[test]
fn a_host_of_the_other_vtep_family_is_refused() {
    let mut c = Cluster::without_plugins(3);
    let v6 = "fd00:88::3";
    c.hosts[2]
        .ns
        .ip(&["addr", "add", &format!("{v6}/64"), "dev", "uplink", "nodad"]);
    c.hosts[2].set_env("SWITCHYARD__VXLAN__LOCAL_IP", Some(v6));
    c.hosts[0].start_plugin();
    c.hosts[1].start_plugin();
    for h in 0..2 {
        c.hosts[h]
            .wait_registered(15.0)
            .unwrap_or_else(|e| panic!("{e}\n{}", c.logs()));
    }
    c.hosts[2].start_plugin();
    let problem = c.hosts[2]
        .wait_problem(15.0)
        .unwrap_or_else(|| panic!("the IPv6 host never said why it stays out\n{}", c.logs()));
    for want in [
        format!("VTEP {v6} is IPv6"),
        "IPv4 VTEPs".into(),
        format!("{} at {}", c.hosts[0].id, c.hosts[0].vtep),
        format!("{} at {}", c.hosts[1].id, c.hosts[1].vtep),
        "[vxlan] local_ip".into(),
    ] {
        assert!(problem.contains(&want), "{want} not in: {problem}");
    }
    let st = c.hosts[2].cluster_status().unwrap();
    assert_eq!(st["registered"], serde_json::Value::Bool(false), "{st:#}");
    for kind in ["nodes", "alive"] {
        let keys = c
            .etcd
            .get_prefix(&format!("{}{kind}/{}", c.prefix, c.hosts[2].id));
        assert!(keys.is_empty(), "the refused host wrote {kind}: {keys:?}");
    }
    let e = c
        .create_network_on(2, "6101", "10.62.0.0/24", &[])
        .expect_err("a VXLAN network on the refused host");
    assert!(e.contains("IPv4 VTEPs"), "{e}");
    // The IPv4 hosts are untouched.
    let net = Net {
        vni: 6102,
        subnet: "10.63.0.0/24".into(),
        on: vec![
            Some(c.create_network_on(0, "6102", "10.63.0.0/24", &[]).unwrap()),
            Some(c.create_network_on(1, "6102", "10.63.0.0/24", &[]).unwrap()),
            None,
        ],
    };
    let a = c.attach(0, &net);
    let b = c.attach(1, &net);
    c.wait_ping(a, b, 10.0)
        .unwrap_or_else(|e| panic!("{e}\n{}", c.logs()));

    // The IPv4 hosts go away: their leases expire, the IPv6 host joins.
    c.hosts[0].kill_plugin();
    c.hosts[1].kill_plugin();
    c.hosts[2]
        .wait_registered(3.0 * LEASE_TTL as f64 + 10.0)
        .unwrap_or_else(|e| panic!("{e}\n{}", c.logs()));
    assert!(c.hosts[2].cluster_status().unwrap()["problem"].is_null());
}
