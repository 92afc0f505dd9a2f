//! VXLAN over an IPv6 underlay: the VTEPs are IPv6 addresses (`[vxlan]
//! local_ip`), etcd stays on the IPv4 side of the same underlay. The
//! kernels hold IPv6 FDB destinations, containers on different hosts reach
//! each other, and the MTU accounts for the 70-byte VXLAN-over-IPv6
//! overhead.

use switchyard_integration_tests::multihost::Cluster;

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
