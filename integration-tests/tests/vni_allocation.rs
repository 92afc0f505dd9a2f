//! Cluster-wide VNI allocation, seen from two plugins on a real etcd:
//! networks created without `-o vni` on both hosts at the same moment get
//! distinct VNIs (compare-and-swap on `networks/<vni>`), each host's
//! network keeps the VNI its record in etcd names, and the same network
//! joined from the other host (`-o vni=` the allocated one, same subnet) is
//! one network with one VNI, reachable across the hosts.

use serde_json::Value;
use std::collections::BTreeMap;
use switchyard_integration_tests::multihost::{Cluster, Net, OnHost};

/// VNI of each VXLAN network (by Docker network ID) in a plugin's status.
fn vnis(c: &Cluster, host: usize) -> BTreeMap<String, u32> {
    let r = c.hosts[host]
        .plugin()
        .client()
        .call_raw("Switchyard.Status", b"")
        .expect("Switchyard.Status");
    let v: Value = r.json();
    v["networks"]
        .as_array()
        .expect("networks")
        .iter()
        .filter_map(|n| {
            let vni = n["details"]["vni"].as_str()?.parse().ok()?;
            Some((n["id"].as_str()?.to_string(), vni))
        })
        .collect()
}

#[test]
fn concurrent_allocation_on_two_hosts() {
    let mut c = Cluster::new(2);
    for h in &c.hosts {
        h.wait_registered(15.0)
            .unwrap_or_else(|e| panic!("{e}\n{}", c.logs()));
    }
    // Four networks per host, all eight requests at once.
    let made: Vec<(usize, OnHost, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .flat_map(|h| (0..4).map(move |i| (h, i)))
            .map(|(h, i)| {
                let c = &c;
                s.spawn(move || {
                    let subnet = format!("10.{}.{i}.0/24", 80 + h);
                    let on = c
                        .create_network_on(h, "", &subnet, &[])
                        .unwrap_or_else(|e| panic!("h{} {subnet}: {e}\n{}", h + 1, c.logs()));
                    (h, on, subnet)
                })
            })
            .collect();
        handles.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let records: BTreeMap<u32, String> = c
        .etcd
        .get_prefix(&format!("{}networks/", c.prefix))
        .into_iter()
        .map(|(k, v)| (k.rsplit('/').next().unwrap().parse().unwrap(), v))
        .collect();
    assert_eq!(records.len(), 8, "one record per network: {records:?}");
    let mut seen = BTreeMap::new();
    for (h, on, subnet) in &made {
        let vni = *vnis(&c, *h)
            .get(&on.id)
            .unwrap_or_else(|| panic!("h{}: network {subnet} not in status", h + 1));
        assert!(
            records[&vni].contains(subnet.as_str()),
            "h{}: {subnet} has VNI {vni}, whose record is {}",
            h + 1,
            records[&vni]
        );
        assert!(
            seen.insert(vni, subnet.clone()).is_none(),
            "VNI {vni} given twice: {seen:?}"
        );
    }

    // h1's first network joined from h2: the same VNI and subnet is one
    // network; with another subnet it is refused.
    let (_, on1, subnet1) = made.iter().find(|m| m.0 == 0).unwrap().clone();
    let vni = vnis(&c, 0)[&on1.id];
    let other = c.create_network_on(1, &vni.to_string(), "10.99.0.0/24", &[]);
    let e = other.expect_err("a VNI of another subnet must be refused");
    assert!(e.contains(&format!("VNI {vni}")), "{e}");
    let on2 = c
        .create_network_on(1, &vni.to_string(), &subnet1, &[])
        .unwrap_or_else(|e| panic!("joining VNI {vni} from h2: {e}\n{}", c.logs()));
    assert_eq!(vnis(&c, 1)[&on2.id], vni);
    let records_after = c.etcd.get_prefix(&format!("{}networks/", c.prefix));
    assert_eq!(
        records_after.len(),
        8,
        "joining made a record: {records_after:?}"
    );
    let net = Net {
        vni,
        subnet: subnet1,
        on: vec![Some(on1), Some(on2)],
    };
    let a = c.attach(0, &net);
    let b = c.attach(1, &net);
    if let Err(e) = c.wait_ping(a, b, 15.0) {
        panic!("{e}\n{}", c.logs());
    }
}
