//! Unit tests of the control plane's decisions, against `FakeEtcd`: the
//! cache fed by list and watch, what is programmed, the own-key writer's
//! plan and quarantine, dead-host collection, claims and network records.

use super::cache::{Change, ClusterCache};
use super::claims::{claim, release_shared};
use super::cluster::forget_network_if_unused;
use super::fake_etcd::FakeEtcd;
use super::gc::{DeadHosts, Owned};
use super::records::{
    EndpointEntry, NetworkEntry, NodeRecord, RemoteEndpoint, alive_key, claim_key, endpoint_key,
    held_by, member_key, network_key, node_key, ser,
};
use super::txn::Guarded;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};
use switchyard_core::mac::MacAddr;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn endpoint(host: &str, addr: &str) -> Vec<u8> {
    ser(&EndpointEntry {
        host: host.into(),
        ip: Some(ip(addr)),
        ip6: None,
        mac: MacAddr::from_ip(ip(addr)),
    })
}

/// Registers `host` (node record, alive key) as the agent does.
fn register(etcd: &mut FakeEtcd, host: &str, vtep: &str) {
    let node = NodeRecord {
        vtep: ip(vtep),
        underlay_mtu: 1500,
    };
    etcd.put(&node_key(host), ser(&node));
    etcd.put(&alive_key(host), held_by(host));
}

/// A cache of `host` as a fresh list leaves it.
fn listed(etcd: &FakeEtcd, host: &str) -> ClusterCache {
    let mut c = ClusterCache::new(host);
    c.replace(etcd.list().0);
    c
}

#[test]
fn watch_events_after_the_list_update_the_cache() {
    let mut etcd = FakeEtcd::new();
    register(&mut etcd, "h2", "192.0.2.2");
    let mut cache = listed(&etcd, "h1");
    let rev = etcd.revision();
    etcd.put(&endpoint_key(7, "e2"), endpoint("h2", "10.0.0.2"));
    etcd.put(&member_key(7, "h2"), held_by("h2"));
    let none = BTreeMap::new();
    for ch in etcd.watch_from(rev + 1) {
        assert!(!cache.apply(ch, &none), "another host's keys are not ours");
    }
    assert_eq!(
        cache.remote_endpoints(7),
        vec![RemoteEndpoint {
            ips: vec![ip("10.0.0.2")],
            mac: MacAddr::from_ip(ip("10.0.0.2")),
            vtep: ip("192.0.2.2"),
        }]
    );
    assert_eq!(cache.peers(7), vec![("h2".to_string(), ip("192.0.2.2"))]);
    let rev = etcd.revision();
    etcd.delete(&endpoint_key(7, "e2"));
    for ch in etcd.watch_from(rev + 1) {
        cache.apply(ch, &none);
    }
    assert!(cache.remote_endpoints(7).is_empty());
}

#[test]
fn a_replayed_older_event_does_not_undo_a_newer_write() {
    let mut etcd = FakeEtcd::new();
    let key = endpoint_key(7, "e1");
    etcd.put(&key, endpoint("h1", "10.0.0.5"));
    let mut cache = ClusterCache::new("h1");
    let newer = endpoint("h1", "10.0.0.6");
    let rev = etcd.put(&key, newer.clone());
    // The own-key writer puts its write in before the watch echoes it.
    cache.insert(key.clone(), newer.clone(), rev);
    let desired = BTreeMap::from([(key.clone(), newer.clone())]);
    let touched: Vec<bool> = etcd
        .watch_from(0)
        .into_iter()
        .map(|ch| cache.apply(ch, &desired))
        .collect();
    // The old value differs from the wanted one (the writer re-checks);
    // the echo of the write does not.
    assert_eq!(touched, [true, false]);
    assert_eq!(
        cache.get(&key).map(|(v, r)| (v.clone(), *r)),
        Some((newer, rev))
    );
    // An unconfirmed write (revision 0, a claim) is replaced by any event.
    cache.insert("ipam/p/10.0.0.9".into(), held_by("h1"), 0);
    let put = Change::Put {
        key: "ipam/p/10.0.0.9".into(),
        value: held_by("h1"),
        mod_revision: 3,
    };
    cache.apply(put, &desired);
    assert_eq!(cache.get("ipam/p/10.0.0.9").unwrap().1, 3);
}

#[test]
fn changes_to_own_keys_wake_the_writer() {
    let key = endpoint_key(7, "e1");
    let mine = endpoint("h1", "10.0.0.5");
    let desired = BTreeMap::from([(key.clone(), mine.clone())]);
    let mut cache = ClusterCache::new("h1");
    let gc = Change::Delete {
        key: key.clone(),
        mod_revision: 5,
    };
    assert!(cache.apply(gc, &desired), "GC removed a wanted key");
    let stale = Change::Put {
        key: endpoint_key(7, "old"),
        value: endpoint("h1", "10.0.0.8"),
        mod_revision: 6,
    };
    assert!(cache.apply(stale, &desired), "an own key no longer wanted");
    let echo = Change::Put {
        key,
        value: mine,
        mod_revision: 7,
    };
    assert!(!cache.apply(echo, &desired));
}

#[test]
fn remote_endpoints_need_a_node_record_and_leave_out_this_host() {
    let mut etcd = FakeEtcd::new();
    register(&mut etcd, "h1", "192.0.2.1");
    register(&mut etcd, "h2", "192.0.2.2");
    etcd.put(&endpoint_key(7, "a"), endpoint("h1", "10.0.0.1"));
    etcd.put(&endpoint_key(7, "c"), endpoint("h2", "10.0.0.9"));
    etcd.put(&endpoint_key(7, "b"), endpoint("h2", "10.0.0.3"));
    etcd.put(&endpoint_key(7, "d"), endpoint("h3", "10.0.0.4"));
    etcd.put(&endpoint_key(8, "e"), endpoint("h2", "10.0.1.2"));
    etcd.put(&member_key(7, "h1"), held_by("h1"));
    etcd.put(&member_key(7, "h3"), held_by("h3"));
    let cache = listed(&etcd, "h1");
    let r = cache.remote_endpoints(7);
    let ips: Vec<IpAddr> = r.iter().flat_map(|e| e.ips.clone()).collect();
    assert_eq!(
        ips,
        vec![ip("10.0.0.3"), ip("10.0.0.9")],
        "sorted; h3 has no VTEP"
    );
    assert!(r.iter().all(|e| e.vtep == ip("192.0.2.2")));
    assert!(
        cache.peers(7).is_empty(),
        "h3 has no node record, h1 is this host"
    );
}

#[test]
fn own_key_plan_writes_withdraws_and_quarantines() {
    let mut etcd = FakeEtcd::new();
    etcd.put(&endpoint_key(7, "same"), endpoint("h1", "10.0.0.1"));
    etcd.put(&endpoint_key(7, "old"), endpoint("h1", "10.0.0.2"));
    etcd.put(&member_key(8, "h1"), held_by("h1"));
    etcd.put(&claim_key("p", ip("10.0.0.1")), held_by("h1"));
    etcd.put(&endpoint_key(7, "theirs"), endpoint("h2", "10.0.0.3"));
    etcd.put(&endpoint_key(9, "theirs"), endpoint("h2", "10.0.0.4"));
    let cache = listed(&etcd, "h1");
    let desired = BTreeMap::from([
        (endpoint_key(7, "same"), endpoint("h1", "10.0.0.1")),
        (endpoint_key(7, "new"), endpoint("h1", "10.0.0.7")),
        (endpoint_key(7, "lost"), endpoint("h1", "10.0.0.3")),
        (endpoint_key(7, "moved"), endpoint("h1", "10.0.0.4")),
        (member_key(7, "h1"), held_by("h1")),
    ]);
    let plan = cache.own_key_plan(&desired);
    let written: Vec<&str> = plan.write.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        written,
        ["endpoints/7/moved", "endpoints/7/new", "members/7/h1"]
    );
    assert_eq!(
        plan.quarantine,
        vec![(endpoint_key(7, "lost"), "h2".to_string())]
    );
    let withdrawn: Vec<&str> = plan.withdraw.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        withdrawn,
        ["endpoints/7/old", "members/8/h1"],
        "never claims"
    );
    // The withdrawal is guarded by the value: a key changed since is kept.
    let (key, value) = plan.withdraw[0].clone();
    etcd.put(&key, endpoint("h1", "10.0.0.22"));
    assert!(!etcd.txn(&Guarded::delete_if(key.clone(), value)).succeeded);
    assert!(etcd.value(&key).is_some());
}

/// A host h2 with an endpoint, a membership, a claim and a shared gateway;
/// then its lease expires.
fn gone_host() -> FakeEtcd {
    let mut etcd = FakeEtcd::new();
    register(&mut etcd, "h1", "192.0.2.1");
    register(&mut etcd, "h2", "192.0.2.2");
    etcd.put(&endpoint_key(7, "e2"), endpoint("h2", "10.0.0.2"));
    etcd.put(&member_key(7, "h2"), held_by("h2"));
    etcd.txn(&claim("p", ip("10.0.0.2"), "h2"));
    etcd.txn(&claim("p", ip("10.0.0.1"), ""));
    // IPsec keys: h2 writes those it shares with h3, h1 those with h2.
    etcd.put("ipsec/h2/h3", b"{}".to_vec());
    etcd.put("ipsec/h1/h2", b"{}".to_vec());
    etcd.delete(&alive_key("h2"));
    etcd
}

const GRACE: Duration = Duration::from_secs(30);

/// What is due when `cache` is seen at `t0` and again a grace period later.
fn due_after_grace(dead: &mut DeadHosts, cache: &ClusterCache, t0: Instant) -> Vec<Owned> {
    assert!(dead.collectable(cache, t0, GRACE).is_empty(), "just gone");
    let almost = t0 + GRACE - Duration::from_millis(1);
    assert!(dead.collectable(cache, almost, GRACE).is_empty());
    dead.collectable(cache, t0 + GRACE, GRACE)
}

#[test]
fn gc_collects_a_gone_host_after_the_grace_period() {
    let mut etcd = gone_host();
    let cache = listed(&etcd, "h1");
    let due = due_after_grace(&mut DeadHosts::default(), &cache, Instant::now());
    let keys: Vec<&str> = due.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "endpoints/7/e2",
            "ipam/p/10.0.0.2",
            "members/7/h2",
            "ipsec/h2/h3"
        ],
        "the shared gateway stays; nothing of h1 (it removes ipsec/h1/h2 itself)"
    );
    assert!(due.iter().all(|o| o.host == "h2"));
    for o in &due {
        assert!(etcd.txn(&o.collect()).succeeded, "{}", o.key);
    }
    assert!(etcd.value(&endpoint_key(7, "e2")).is_none());
    assert!(etcd.value(&claim_key("p", ip("10.0.0.1"))).is_some());
}

#[test]
fn gc_guards_against_a_host_that_returned_or_a_changed_record() {
    let mut etcd = gone_host();
    let cache = listed(&etcd, "h1");
    let t0 = Instant::now();
    let mut dead = DeadHosts::default();
    let due = due_after_grace(&mut dead, &cache, t0);
    assert_eq!(due.len(), 4);
    // h2 re-asserted one record since the cache saw it, then came back.
    etcd.put(&member_key(7, "h2"), held_by("h2"));
    let member = due.iter().find(|o| o.key == member_key(7, "h2")).unwrap();
    assert!(!etcd.txn(&member.collect()).succeeded, "mod revision moved");
    etcd.put(&alive_key("h2"), held_by("h2"));
    assert!(due.iter().all(|o| !etcd.txn(&o.collect()).succeeded));
    assert!(etcd.value(&endpoint_key(7, "e2")).is_some());
    // Seen alive again, its clock starts over when it goes next.
    let back = listed(&etcd, "h1");
    assert!(dead.collectable(&back, t0 + GRACE * 2, GRACE).is_empty());
    etcd.delete(&alive_key("h2"));
    let gone = listed(&etcd, "h1");
    assert_eq!(due_after_grace(&mut dead, &gone, t0 + GRACE * 3).len(), 4);
}

#[test]
fn gc_waits_for_unconfirmed_records() {
    let etcd = gone_host();
    let mut cache = listed(&etcd, "h1");
    cache.insert(claim_key("p", ip("10.0.0.2")), held_by("h2"), 0);
    let due = due_after_grace(&mut DeadHosts::default(), &cache, Instant::now());
    assert!(due.iter().all(|o| o.key != claim_key("p", ip("10.0.0.2"))));
    assert_eq!(due.len(), 3);
}

#[test]
fn claims_are_create_only_and_released_only_by_their_holder() {
    let mut etcd = FakeEtcd::new();
    let a = ip("10.0.0.5");
    assert!(etcd.txn(&claim("p", a, "h1")).succeeded);
    assert!(!etcd.txn(&claim("p", a, "h2")).succeeded, "held by h1");
    assert!(etcd.txn(&claim("q", a, "h2")).succeeded, "another pool");
    let by_h2 = Guarded::delete_if(claim_key("p", a), held_by("h2"));
    assert!(!etcd.txn(&by_h2).succeeded);
    let by_h1 = Guarded::delete_if(claim_key("p", a), held_by("h1"));
    assert!(etcd.txn(&by_h1).succeeded);
    assert!(etcd.txn(&claim("p", a, "h2")).succeeded, "free again");
    let mut cache = listed(&etcd, "h1");
    assert_eq!(cache.claimed_by("p", a).as_deref(), Some("h2"));
    cache.remove(&claim_key("p", a));
    assert_eq!(cache.claimed_by("p", a), None);
}

#[test]
fn a_gateway_is_one_claim_shared_by_every_host() {
    let mut etcd = FakeEtcd::new();
    let gw = ip("10.0.0.1");
    let first = etcd.txn(&claim("GlobalDefault/10.0.0.0/24", gw, "").or_read_back());
    assert!(first.succeeded);
    let second = etcd.txn(&claim("GlobalDefault/10.0.0.0/24", gw, "").or_read_back());
    assert_eq!((second.succeeded, second.read), (false, Some(held_by(""))));
    assert!(
        !etcd
            .txn(&claim("GlobalDefault/10.0.0.0/24", gw, "h1"))
            .succeeded
    );
    let cache = listed(&etcd, "h1");
    assert_eq!(
        cache.claimed_by("GlobalDefault/10.0.0.0/24", gw).as_deref(),
        Some("")
    );
    let shared = cache.shared_claims_in(&["10.0.0.0/24".into()]);
    assert_eq!(shared, vec![claim_key("GlobalDefault/10.0.0.0/24", gw)]);
    assert!(cache.shared_claims_in(&["10.0.1.0/24".into()]).is_empty());
    // Released only while still shared.
    etcd.put(&shared[0], held_by("h2"));
    assert!(!etcd.txn(&release_shared(&shared[0])).succeeded);
    etcd.put(&shared[0], held_by(""));
    assert!(etcd.txn(&release_shared(&shared[0])).succeeded);
    assert!(etcd.value(&shared[0]).is_none());
}

#[test]
fn a_network_record_is_created_once_and_removed_by_the_last_host() {
    let mut etcd = FakeEtcd::new();
    let entry = NetworkEntry {
        vni: 7,
        subnets: vec!["10.0.0.0/24".into()],
    };
    let create = Guarded::create(network_key(7), ser(&entry)).or_read_back();
    assert!(etcd.txn(&create).succeeded);
    assert!(listed(&etcd, "h1").vni_taken(7));
    assert!(!listed(&etcd, "h1").vni_taken(8));
    let again = etcd.txn(&create);
    assert_eq!((again.succeeded, again.read), (false, Some(ser(&entry))));
    etcd.put(&member_key(7, "h2"), held_by("h2"));
    etcd.put(&endpoint_key(7, "e"), endpoint("h2", "10.0.0.2"));
    etcd.put(&member_key(70, "h1"), held_by("h1"));
    assert!(!etcd.txn(&forget_network_if_unused(7)).succeeded);
    etcd.delete(&member_key(7, "h2"));
    assert!(
        !etcd.txn(&forget_network_if_unused(7)).succeeded,
        "an endpoint"
    );
    etcd.delete(&endpoint_key(7, "e"));
    let rev = etcd.revision();
    assert!(
        etcd.txn(&forget_network_if_unused(7)).succeeded,
        "members/70/ is another VNI"
    );
    assert_eq!(etcd.revision(), rev + 1);
    assert!(!listed(&etcd, "h1").vni_taken(7), "the VNI is free again");
    // Nothing left to delete: still succeeds, no new revision.
    assert!(etcd.txn(&forget_network_if_unused(7)).succeeded);
    assert_eq!(etcd.revision(), rev + 1);
}

#[test]
fn member_vteps_are_live_hosts_and_hosts_still_holding_records() {
    let mut etcd = gone_host();
    register(&mut etcd, "h3", "192.0.2.3");
    // A node record alone (a host long gone, collected) is no member.
    etcd.put(
        &node_key("h4"),
        ser(&NodeRecord {
            vtep: ip("192.0.2.4"),
            underlay_mtu: 1500,
        }),
    );
    let vteps: Vec<IpAddr> = listed(&etcd, "h1").member_vteps().into_iter().collect();
    // h2's lease expired but it still holds an endpoint and a membership:
    // it may still forward, until it is collected.
    assert_eq!(
        vteps,
        [ip("192.0.2.1"), ip("192.0.2.2"), ip("192.0.2.3")],
        "alive hosts and hosts with records"
    );
    etcd.delete(&endpoint_key(7, "e2"));
    etcd.delete(&member_key(7, "h2"));
    let vteps: Vec<IpAddr> = listed(&etcd, "h1").member_vteps().into_iter().collect();
    assert_eq!(vteps, [ip("192.0.2.1"), ip("192.0.2.3")], "h2 collected");
}

#[test]
fn own_keys_are_written_only_while_the_identity_is_on_this_agents_lease() {
    let mut etcd = FakeEtcd::new();
    etcd.put_on_lease(&alive_key("h1"), held_by("h1"), 7);
    let ours = vec![
        (endpoint_key(7, "e1"), endpoint("h1", "10.0.0.1")),
        (member_key(7, "h1"), held_by("h1")),
    ];
    let before = etcd.revision();
    let r = etcd.txn(&Guarded::put_all_while(alive_key("h1"), 7, &ours));
    assert!(r.succeeded);
    assert_eq!(r.revision, before + 1, "one write for the whole batch");
    assert!(etcd.value(&endpoint_key(7, "e1")).is_some());

    // The lease expired and another agent with this identity took the key:
    // the old agent's writes change nothing.
    etcd.put_on_lease(&alive_key("h1"), held_by("h1"), 9);
    let late = vec![(endpoint_key(7, "e9"), endpoint("h1", "10.0.0.9"))];
    let r = etcd.txn(&Guarded::put_all_while(alive_key("h1"), 7, &late));
    assert!(!r.succeeded);
    assert!(etcd.value(&endpoint_key(7, "e9")).is_none());

    // No identity key at all (expired, no one else yet): nothing either.
    etcd.delete(&alive_key("h1"));
    let r = etcd.txn(&Guarded::put_all_while(alive_key("h1"), 7, &late));
    assert!(!r.succeeded);
    assert!(etcd.value(&endpoint_key(7, "e9")).is_none());
}

#[test]
fn a_host_whose_vtep_family_differs_from_the_live_hosts_is_refused() {
    use super::agent::vtep_family_clash;
    use super::records::AliveEntry;
    let alive = |host: &str, vtep: &str| AliveEntry {
        host: host.into(),
        vtep: ip(vtep),
    };
    let v4 = [alive("h1", "192.0.2.1"), alive("h2", "192.0.2.2")];
    assert_eq!(vtep_family_clash("h3", ip("192.0.2.3"), &v4), None);
    assert_eq!(vtep_family_clash("h3", ip("fd00::3"), &[]), None, "first");
    let why = vtep_family_clash("h3", ip("fd00::3"), &v4).unwrap();
    for want in [
        "fd00::3 is IPv6",
        "IPv4 VTEPs (h1 at 192.0.2.1, h2 at 192.0.2.2)",
        "[vxlan] local_ip",
    ] {
        assert!(why.contains(want), "{want} not in: {why}");
    }
    // Its own earlier record (another family before a reconfiguration) is
    // not a clash with itself.
    assert_eq!(
        vtep_family_clash("h1", ip("fd00::1"), &[alive("h1", "192.0.2.1")]),
        None
    );
}
