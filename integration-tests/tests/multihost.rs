//! Multi-host VXLAN with the etcd control plane (docs/multihost.md §8,
//! cases 1–11), on one machine: an underlay namespace with a bridge and a
//! real etcd, three "hosts" (namespaces with an `uplink`) each running the
//! real `switchyard`, and "containers" that are namespaces. The tests play
//! libnetwork and its IPAM client against every host's plugin and check the
//! kernel (FDB, neighbours, links, MTUs), the store and real pings.

use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use switchyard_integration_tests::multihost::{
    Cluster, GC_GRACE, LEASE_TTL, Monitor, Net, OnHost, PingLoop, RESYNC_INTERVAL, link_mtu,
    mac_of, short,
};
use switchyard_integration_tests::{Netns, wait_for};

const VNI: u32 = 5001;
const SUBNET: &str = "10.20.0.0/16";

fn sleep(secs: f64) {
    std::thread::sleep(Duration::from_secs_f64(secs));
}

/// Fails with the plugin logs appended.
fn ok_or_logs<T>(c: &Cluster, r: Result<T, String>, what: &str) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {e}\n{}", c.logs()))
}

/// A cluster of `hosts` hosts with the network VNI/SUBNET on every host, an
/// endpoint attached on each host listed in `on` (in that order), and every
/// kernel converged.
fn converged<const N: usize>(hosts: usize, on: [usize; N]) -> (Cluster, Net, [usize; N]) {
    let mut c = Cluster::new(hosts);
    let net = c.create_network(VNI, SUBNET, &[]);
    let eps = on.map(|h| c.attach(h, &net));
    ok_or_logs(&c, c.wait_all_kernels(VNI, 10.0), "kernel");
    (c, net, eps)
}

/// A MAC no endpoint has (10.20.99.99's in the bogus entries).
const BOGUS_MAC: &str = "02:42:0a:14:63:63";

/// `bridge fdb VERB MAC dev syvx5001 dst DST self permanent`, made by hand.
fn fdb_entry(ns: &Netns, verb: &str, mac: &str, dst: &str) {
    let (ok, out) = ns.exec(&[
        "bridge",
        "fdb",
        verb,
        mac,
        "dev",
        "syvx5001",
        "dst",
        dst,
        "self",
        "permanent",
    ]);
    assert!(ok, "{out}");
}

/// `ip neigh VERB 10.20.99.99 lladdr BOGUS_MAC dev syvx5001 nud permanent`.
fn bogus_neighbour(ns: &Netns, verb: &str) {
    ns.ip(&[
        "neigh",
        verb,
        "10.20.99.99",
        "lladdr",
        BOGUS_MAC,
        "dev",
        "syvx5001",
        "nud",
        "permanent",
    ]);
}

/// `try_attach`, again every 0.3 s for up to `secs` seconds; Err(the last
/// refusal).
fn attach_retrying(
    c: &mut Cluster,
    host: usize,
    net: &Net,
    ip: Option<&str>,
    secs: f64,
) -> Result<usize, String> {
    let mut last = String::new();
    wait_for(secs, || match c.try_attach(host, net, ip) {
        Ok(i) => Some(i),
        Err(e) => {
            last = e;
            sleep(0.3);
            None
        }
    })
    .ok_or(last)
}

/// `ping -c 2` that must NOT get through.
fn assert_no_ping(c: &Cluster, from: usize, to_ip: &str, why: &str) {
    let (ok, out) = c.eps[from]
        .ctr
        .exec(&["ping", "-c", "2", "-W", "1", "-i", "0.2", to_ip]);
    assert!(!ok, "{why}: {} reached {to_ip}:\n{out}", c.eps[from].ip);
}

/// A DF ping with `size` bytes of payload: (success, output).
fn df_ping(c: &Cluster, from: usize, to: usize, size: u32) -> (bool, String) {
    c.eps[from].ctr.exec(&[
        "ping",
        "-c",
        "1",
        "-W",
        "2",
        "-M",
        "do",
        "-s",
        &size.to_string(),
        &c.eps[to].ip,
    ])
}

/// The `vxlan id …` line of `ip -d link show`, padded with spaces so that
/// flags can be matched as words (`proxy`, not `proxy_arp`).
fn vxlan_line(d: &str) -> String {
    let l = d
        .lines()
        .find(|l| l.trim_start().starts_with("vxlan id"))
        .unwrap_or("");
    format!(" {} ", l.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Every value in `v` (recursively) whose key matches `pred`.
fn find_keys<'a>(v: &'a Value, pred: &dyn Fn(&str) -> bool, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if pred(k) {
                    out.push(x);
                }
                find_keys(x, pred, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| find_keys(x, pred, out)),
        _ => {}
    }
}

/// Case 0: The lab itself: etcd inside the underlay answers from every host
/// namespace; the iptables partition cuts exactly one host; stop/start keep
/// the data; compaction works.
#[test]
fn lab_harness_works() {
    let mut c = Cluster::without_plugins(3);
    for i in 0..3 {
        let (ok, out) = c.etcdctl_from_host(i, &["endpoint", "health"]);
        assert!(ok, "etcd not reachable from {}: {out}", c.hosts[i].id);
        for j in 0..3 {
            assert!(
                c.hosts[i].ns.ping(&c.hosts[j].vtep),
                "{} cannot ping {}",
                c.hosts[i].id,
                c.hosts[j].vtep
            );
        }
    }
    c.hosts[0].partition();
    assert!(!c.etcdctl_from_host(0, &["endpoint", "health"]).0);
    assert!(c.etcdctl_from_host(1, &["endpoint", "health"]).0);
    assert!(
        c.hosts[0].ns.ping("192.168.88.2"),
        "partition cut the data plane"
    );
    c.hosts[0].heal();
    assert!(c.etcdctl_from_host(0, &["endpoint", "health"]).0);
    c.hosts[1].partition_reset();
    let (ok, out) = c.etcdctl_from_host(1, &["endpoint", "health"]);
    assert!(!ok, "{out}");
    c.hosts[1].heal_reset();

    let key = format!("{}probe/k", c.prefix);
    c.etcd.put(&key, r#"{"v":"äbc/+=="}"#);
    assert_eq!(
        c.etcd.get_prefix(&c.prefix),
        vec![(key.clone(), r#"{"v":"äbc/+=="}"#.to_string())]
    );
    let rev = c.etcd.compact_head();
    assert!(rev > 1);
    let (ok, out) = c.etcd.ctl(&["get", &key, "--rev", &(rev - 1).to_string()]);
    assert!(!ok && out.contains("compacted"), "{out}");
    c.etcd.stop();
    assert!(!c.etcdctl_from_host(0, &["endpoint", "health"]).0);
    c.etcd.start_again();
    assert_eq!(
        c.etcd.get_prefix(&c.prefix).len(),
        1,
        "data kept over restart"
    );
}

/// Case 1: Three hosts, two containers each: kernel entries equal the model and
/// the store on every host, a full ping mesh, fast convergence, status.
#[test]
fn ping_mesh_three_hosts() {
    let mut c = Cluster::new(3);
    let net = c.create_network(VNI, SUBNET, &[]);
    for h in &c.hosts {
        let d = h.ns.ip(&["-d", "link", "show", "syvx5001"]);
        let vx = vxlan_line(&d);
        for want in [
            "vxlan id 5001 ",
            &format!(" local {} ", h.vtep),
            " dev uplink ",
            " dstport 4789 ",
            " nolearning ",
            " proxy ",
        ] {
            assert!(vx.contains(want), "{}: syvx5001 lacks `{want}`:\n{d}", h.id);
        }
        assert!(
            d.contains("master sybr5001"),
            "{}: not in the bridge:\n{d}",
            h.id
        );
        assert!(h.has_link("sybr5001"), "{}: no sybr5001", h.id);
    }
    for h in 0..3 {
        for _ in 0..2 {
            c.attach(h, &net);
        }
    }
    let ips: BTreeSet<&str> = c.eps.iter().map(|e| e.ip.as_str()).collect();
    assert_eq!(ips.len(), 6, "IPAM handed out duplicates across hosts");
    // Every dockerd asked for the gateway of the same subnet: one answer,
    // never handed to a container.
    let gws: BTreeSet<String> = net
        .on
        .iter()
        .map(|o| o.as_ref().unwrap().gateway.clone().unwrap())
        .collect();
    assert_eq!(gws.len(), 1, "gateways per host: {gws:?}");
    let gw = gws.first().unwrap().split('/').next().unwrap().to_string();
    assert!(
        !ips.contains(gw.as_str()),
        "gateway {gw} given to a container: {ips:?}"
    );
    for e in &c.eps {
        assert_eq!(
            e.mac,
            mac_of(&e.ip),
            "MAC of {} (CreateEndpoint answer)",
            e.ip
        );
        assert!(
            e.cidr.ends_with("/16"),
            "RequestAddress answered {}",
            e.cidr
        );
        let src = e.join["InterfaceName"]["SrcName"].as_str().unwrap();
        assert!(src.starts_with("sy") && src.len() <= 15, "SrcName {src}");
        assert_eq!(e.join["InterfaceName"]["DstPrefix"], "eth", "{}", e.join);
    }
    let t = ok_or_logs(&c, c.wait_all_kernels(VNI, 10.0), "kernel entries");
    eprintln!("kernels converged {t:.2} s after the last attach");
    for i in 0..c.eps.len() {
        for j in 0..c.eps.len() {
            if i != j {
                ok_or_logs(&c, c.wait_ping(i, j, 5.0), "mesh");
            }
        }
    }
    // The store says the same as the kernels.
    assert_eq!(c.keys(&format!("endpoints/{VNI}/")).len(), 6);
    for (h, host) in c.hosts.iter().enumerate() {
        let store = ok_or_logs(&c, c.store_desired(h, VNI), "store");
        assert_eq!(
            store,
            host.kernel(VNI).unwrap(),
            "{}: store vs kernel",
            host.id
        );
        for sub in ["nodes/", "alive/"] {
            assert!(
                c.keys(&format!("{sub}{}", host.id)).len() == 1,
                "no {sub}{} in the store: {:?}",
                host.id,
                c.keys("")
            );
        }
    }
    assert_eq!(
        c.keys(&format!("networks/{VNI}")).len(),
        1,
        "{:?}",
        c.keys("")
    );
    // Convergence of one more endpoint: from Join to the first ping.
    let t0 = Instant::now();
    let n = c.attach(2, &net);
    ok_or_logs(&c, c.wait_ping(0, n, 5.0), "new endpoint");
    let conv = t0.elapsed().as_secs_f64();
    eprintln!("new endpoint reachable from another host after {conv:.2} s");
    assert!(conv < 3.0, "convergence took {conv:.2} s");
    ok_or_logs(&c, c.wait_all_kernels(VNI, 5.0), "kernel after the 7th");
    // status --json: the VTEP, the peers, the number of programmed remotes.
    let st = ok_or_logs(&c, c.hosts[0].status_json(), "status");
    let text = st.to_string();
    for ip in ["192.168.88.1", "192.168.88.2", "192.168.88.3"] {
        assert!(text.contains(ip), "status lacks VTEP {ip}: {st:#}");
    }
    let mut vals = Vec::new();
    find_keys(&st, &|k| k.to_lowercase().contains("remote"), &mut vals);
    assert!(
        vals.iter().any(|v| v.as_u64() == Some(5)
            || v.as_str() == Some("5")
            || v.as_array().map(|a| a.len()) == Some(5)),
        "status shows no count of 5 programmed remote endpoints on h1: {st:#}"
    );
}

/// Case 2: MTU = underlay − 50 on every hop; DF pings at mtu−28 pass end to end,
/// mtu−27 fail locally (no black hole). The mtu option overrides it.
#[test]
fn mtu_end_to_end() {
    let mut c = Cluster::new(2);
    let net = c.create_network(VNI, SUBNET, &[]);
    let net2 = c.create_network(
        5002,
        "10.30.0.0/16",
        &[("com.docker.network.driver.mtu", "1400")],
    );
    let a = c.attach(0, &net);
    let b = c.attach(1, &net);
    let a2 = c.attach(0, &net2);
    let b2 = c.attach(1, &net2);
    for (vni, mtu, x, y) in [(VNI, 1450, a, b), (5002, 1400, a2, b2)] {
        ok_or_logs(&c, c.wait_all_kernels(vni, 10.0), "kernel");
        ok_or_logs(&c, c.wait_ping(x, y, 5.0), "ping");
        for h in &c.hosts {
            assert_eq!(h.mtu("uplink"), 1500);
            for link in [format!("syvx{vni}"), format!("sybr{vni}")] {
                assert_eq!(h.mtu(&link), mtu, "{}: MTU of {link}", h.id);
            }
        }
        for e in [x, y] {
            let ep = &c.eps[e];
            assert_eq!(
                link_mtu(&ep.ctr, "eth0"),
                mtu,
                "container eth0 of {}",
                ep.ip
            );
            let peer = format!("sh{}", &ep.src[2..]);
            assert_eq!(
                c.hosts[ep.host].mtu(&peer),
                mtu,
                "host end {peer} on {}",
                c.hosts[ep.host].id
            );
        }
        for (from, to) in [(x, y), (y, x)] {
            let (ok, out) = df_ping(&c, from, to, mtu - 28);
            assert!(ok, "DF ping of {} bytes (MTU {mtu}) lost:\n{out}", mtu - 28);
            let (ok, out) = df_ping(&c, from, to, mtu - 27);
            assert!(
                !ok,
                "DF ping of {} bytes passed an MTU of {mtu}:\n{out}",
                mtu - 27
            );
            assert!(
                out.contains("too long") || out.contains(&format!("mtu={mtu}")),
                "the oversize DF ping must fail locally (message too long), not vanish:\n{out}"
            );
        }
    }
}

/// Case 3: Two networks with the same subnet and different VNIs do not see each
/// other; each VXLAN device holds only its own network's entries.
#[test]
fn overlapping_subnets_isolated() {
    let mut c = Cluster::new(2);
    let na = c.create_network(5001, SUBNET, &[]);
    let nb = c.create_network(5002, SUBNET, &[]);
    let a1 = c.attach(0, &na);
    let a2 = c.attach(1, &na);
    let b1 = c.attach(0, &nb);
    // The same IP in the other network, if the IPAM keeps pools per network;
    // a pool shared by both networks may refuse it (then any address).
    let a2ip = c.eps[a2].ip.clone();
    let b2 = match c.try_attach(1, &nb, Some(&a2ip)) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("same IP in the second network refused ({e}); using another");
            c.attach(1, &nb)
        }
    };
    ok_or_logs(&c, c.wait_all_kernels(5001, 10.0), "VNI 5001");
    ok_or_logs(&c, c.wait_all_kernels(5002, 10.0), "VNI 5002");
    ok_or_logs(&c, c.wait_ping(a1, a2, 5.0), "in network A");
    ok_or_logs(&c, c.wait_ping(b1, b2, 5.0), "in network B");
    let b2ip = c.eps[b2].ip.clone();
    let b1ip = c.eps[b1].ip.clone();
    let a1ip = c.eps[a1].ip.clone();
    if b2ip != a2ip {
        assert_no_ping(&c, a1, &b2ip, "A must not reach B");
        assert_no_ping(&c, b1, &a2ip, "B must not reach A");
    } else {
        // Same IP on both networks: each reaches its own (MAC in the neighbour
        // table of its own container).
        let n = c.eps[a1].ctr.ip(&["neigh", "show", &a2ip]);
        assert!(n.contains(&c.eps[a2].mac), "A resolved {a2ip} to {n}");
    }
    assert_no_ping(&c, a2, &b1ip, "A must not reach B");
    assert_no_ping(&c, b2, &a1ip, "B must not reach A");
    // Kernel: each device only its own network's remote endpoints.
    let ka = c.hosts[0].kernel(5001).unwrap();
    let kb = c.hosts[0].kernel(5002).unwrap();
    assert!(ka.fdb.iter().all(|(m, _)| *m == c.eps[a2].mac), "{ka:?}");
    assert!(kb.fdb.iter().all(|(m, _)| *m == c.eps[b2].mac), "{kb:?}");
}

/// Case 4: A VNI already used with another subnet is refused (also VNI 0 and
/// above 2^24−1); concurrent creates with different subnets: exactly one wins;
/// an IP another host holds is refused; nothing is created by refusals.
#[test]
fn duplicate_vni_and_ip_refused() {
    let mut c = Cluster::new(3);
    let net = c.create_network(VNI, SUBNET, &[]);
    let links_h2 = c.hosts[1].ns.links();
    let err = c
        .create_network_on(1, "5001", "10.30.0.0/16", &[])
        .expect_err("VNI 5001 with another subnet must be refused");
    assert!(err.contains("VNI 5001"), "error must name the VNI: {err}");
    for vni in ["0", "16777216"] {
        let e = c
            .create_network_on(1, vni, "10.31.0.0/16", &[])
            .expect_err(&format!("VNI {vni} must be refused"));
        eprintln!("VNI {vni}: {e}");
    }
    assert_eq!(
        c.hosts[1].ns.links(),
        links_h2,
        "a refused create left links"
    );
    let nets = c.keys("networks/");
    assert_eq!(nets.len(), 1, "networks in the store: {nets:?}");

    // Concurrent creates of VNI 5002 with three different subnets.
    let results: Vec<Result<OnHost, String>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..3)
            .map(|i| {
                let c = &c;
                s.spawn(move || c.create_network_on(i, "5002", &format!("10.4{i}.0.0/16"), &[]))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winners: Vec<usize> = (0..3).filter(|&i| results[i].is_ok()).collect();
    assert_eq!(
        winners.len(),
        1,
        "concurrent creates of VNI 5002: {results:?}"
    );
    for i in 0..3 {
        assert_eq!(
            c.hosts[i].has_link("syvx5002"),
            winners.contains(&i),
            "{}: syvx5002 present iff its create won ({results:?})",
            c.hosts[i].id
        );
    }
    let kv = c.etcd.get_prefix(&format!("{}networks/5002", c.prefix));
    assert_eq!(kv.len(), 1, "{kv:?}");
    assert!(
        kv[0].1.contains(&format!("10.4{}.0.0/16", winners[0])),
        "the stored network is not the winner's: {kv:?}"
    );

    // Duplicate IP across hosts.
    let e = c.attach(0, &net);
    let ip = c.eps[e].ip.clone();
    let before = c.etcd.get_prefix(&c.prefix);
    let links_h2 = c.hosts[1].ns.links();
    let r = c.hosts[1].ipam(
        "RequestAddress",
        json!({"PoolID": net.pool_on(1), "Address": ip, "Options": {}}),
    );
    assert!(
        r.is_err(),
        "RequestAddress of {ip} (held by h1) on h2 answered {r:?}"
    );
    // Concurrent claims of one free address: exactly one wins.
    let want = "10.20.9.9";
    let rs: Vec<Result<Value, String>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..3)
            .map(|i| {
                let (c, net) = (&c, &net);
                s.spawn(move || {
                    c.hosts[i].ipam(
                        "RequestAddress",
                        json!({"PoolID": net.pool_on(i), "Address": want, "Options": {}}),
                    )
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        rs.iter().filter(|r| r.is_ok()).count(),
        1,
        "concurrent RequestAddress {want}: {rs:?}"
    );
    let winner = rs.iter().position(|r| r.is_ok()).unwrap();
    assert!(
        rs[winner].as_ref().unwrap()["Address"]
            .as_str()
            .unwrap_or("")
            .starts_with("10.20.9.9/"),
        "{rs:?}"
    );
    // The refused requests created nothing: the only new key is the winner's claim.
    let after = c.etcd.get_prefix(&c.prefix);
    let new: Vec<&(String, String)> = after.iter().filter(|kv| !before.contains(kv)).collect();
    assert!(
        new.len() == 1 && new[0].0.contains(want),
        "keys written besides one claim of {want}: {new:?}"
    );
    assert_eq!(c.hosts[1].ns.links(), links_h2);
    assert_eq!(c.keys(&format!("endpoints/{VNI}/")).len(), 1);
}

/// Case 5: A host dies (plugin SIGKILL, uplink down): its alive key goes after the
/// TTL, its endpoints leave the store and the others' FDB/neighbours after
/// the grace, not before; traffic between the survivors never stops.
#[test]
fn dead_host_garbage_collected() {
    let (mut c, _, [e1, e2, e3]) = converged(3, [0, 1, 2]);
    ok_or_logs(&c, c.wait_ping(e1, e2, 5.0), "ping");
    ok_or_logs(&c, c.wait_ping(e1, e3, 5.0), "ping");
    let e3_id = c.eps[e3].id.clone();
    let ping = PingLoop::start(&c.eps[e1].ctr, &c.eps[e2].ip.clone(), 16.0);
    sleep(0.5);
    c.hosts[2].kill_plugin();
    c.hosts[2].ns.ip(&["link", "set", "uplink", "down"]);
    let t0 = Instant::now();
    let alive = wait_for(LEASE_TTL as f64 + 3.0, || {
        c.keys("alive/h3").is_empty().then_some(())
    });
    assert!(
        alive.is_some(),
        "alive/h3 still there {} s after the kill",
        LEASE_TTL + 3
    );
    // Not removed before the grace has passed.
    let early = LEASE_TTL as f64 + GC_GRACE as f64 / 2.0;
    sleep((early - t0.elapsed().as_secs_f64()).max(0.0));
    for h in 0..2 {
        let k = c.hosts[h].kernel(VNI).unwrap();
        assert_eq!(
            k,
            c.desired(h, VNI, &[]),
            "{}: entries of h3 removed before the grace ({:.1} s after the kill)",
            c.hosts[h].id,
            t0.elapsed().as_secs_f64()
        );
    }
    let limit = (LEASE_TTL + GC_GRACE + 2 * RESYNC_INTERVAL + 3) as f64;
    ok_or_logs(
        &c,
        c.wait_kernel(&[0, 1], VNI, &[2], limit),
        "GC of h3's endpoints",
    );
    eprintln!(
        "h3's endpoints gone from peers {:.1} s after the kill",
        t0.elapsed().as_secs_f64()
    );
    let gone = wait_for(3.0, || {
        c.keys(&format!("endpoints/{VNI}/"))
            .iter()
            .all(|k| !k.ends_with(&e3_id))
            .then_some(())
    });
    assert!(
        gone.is_some(),
        "endpoint of h3 still in the store: {:?}",
        c.keys("")
    );
    let st = ping.wait();
    assert_eq!(
        st.lost(),
        0,
        "h1→h2 lost {} of {} pings while h3 died",
        st.lost(),
        st.sent
    );
    assert!(c.ping(e1, e2) && c.ping(e2, e1));
    // h3 comes back: its plugin re-asserts its endpoint (the IP is still
    // free), the peers program it again, traffic flows.
    c.hosts[2].ns.ip(&["link", "set", "uplink", "up"]);
    c.hosts[2].restart_plugin();
    let t1 = Instant::now();
    ok_or_logs(&c, c.wait_all_kernels(VNI, 10.0), "h3 back");
    ok_or_logs(&c, c.wait_ping(e1, e3, 5.0), "h1 → h3 after its return");
    eprintln!(
        "h3 re-asserted and reachable {:.1} s after its return",
        t1.elapsed().as_secs_f64()
    );
    assert!(
        c.keys(&format!("endpoints/{VNI}/"))
            .iter()
            .any(|k| k.ends_with(&e3_id)),
        "h3's endpoint not re-asserted: {:?}",
        c.keys("")
    );
}

/// Case 6: A control-plane-only partition of one host, longer than the lease TTL
/// but shorter than the grace: no ping lost, peers never drop its entries,
/// and it is back in the store afterwards.
#[test]
fn control_plane_partition_shorter_than_grace() {
    let (c, _, [e1, e2]) = converged(2, [0, 1]);
    ok_or_logs(&c, c.wait_ping(e1, e2, 5.0), "ping");
    let want_h2 = c.desired(1, VNI, &[]);
    let ping = PingLoop::start(&c.eps[e1].ctr, &c.eps[e2].ip.clone(), 13.0);
    sleep(0.5);
    c.hosts[0].partition();
    let t0 = Instant::now();
    let part = LEASE_TTL as f64 + 2.0; // 5 s: > TTL, < grace
    let mut bad = Vec::new();
    while t0.elapsed().as_secs_f64() < 12.0 {
        if t0.elapsed().as_secs_f64() >= part && !bad.iter().any(|s: &String| s == "healed") {
            c.hosts[0].heal();
            bad.push("healed".into());
        }
        let k = c.hosts[1].kernel(VNI).unwrap();
        if k != want_h2 {
            bad.push(format!("{:.1}s: h2 {k:?}", t0.elapsed().as_secs_f64()));
        }
        sleep(0.25);
    }
    let st = ping.wait();
    assert_eq!(
        bad,
        vec!["healed".to_string()],
        "h2 dropped h1's entries during a short partition\n{}",
        c.logs()
    );
    assert_eq!(
        st.lost(),
        0,
        "lost {} of {} pings during the partition",
        st.lost(),
        st.sent
    );
    let back = wait_for(5.0, || (!c.keys("alive/h1").is_empty()).then_some(()));
    assert!(
        back.is_some(),
        "alive/h1 not back after healing\n{}",
        c.logs()
    );
    assert_eq!(
        c.keys(&format!("endpoints/{VNI}/")).len(),
        2,
        "{:?}",
        c.keys("")
    );
    ok_or_logs(&c, c.wait_all_kernels(VNI, 5.0), "after healing");
}

/// Case 7: etcd stopped for longer than the lease TTL, then started: a 10 Hz ping
/// loses nothing, kernels stay, leases survive, and an endpoint made after
/// the restart converges.
#[test]
fn etcd_restart_zero_loss() {
    let (mut c, net, [e1, e2]) = converged(3, [0, 1]);
    ok_or_logs(&c, c.wait_ping(e1, e2, 5.0), "ping");
    let before: Vec<_> = (0..3).map(|h| c.hosts[h].kernel(VNI).unwrap()).collect();
    // The lease behind each alive/ key (etcdctl prints it in hex).
    let lease_of = |c: &Cluster, h: &str| -> String {
        let (_, out) = c
            .etcd
            .ctl(&["get", &format!("{}alive/{h}", c.prefix), "-w", "fields"]);
        out.lines()
            .find(|l| l.starts_with("\"Lease\""))
            .unwrap_or_default()
            .to_string()
    };
    let leases: Vec<String> = ["h1", "h2", "h3"].iter().map(|h| lease_of(&c, h)).collect();
    assert!(
        leases.iter().all(|l| !l.is_empty() && !l.ends_with(" 0")),
        "{leases:?}"
    );
    let ping = PingLoop::start(&c.eps[e1].ctr, &c.eps[e2].ip.clone(), 14.0);
    sleep(0.5);
    c.etcd.stop();
    let t0 = Instant::now();
    while t0.elapsed().as_secs_f64() < LEASE_TTL as f64 + 2.0 {
        for (h, b) in before.iter().enumerate() {
            assert_eq!(
                &c.hosts[h].kernel(VNI).unwrap(),
                b,
                "{}: kernel changed while etcd was down\n{}",
                c.hosts[h].id,
                c.logs()
            );
        }
        sleep(0.25);
    }
    c.etcd.start_again();
    let t1 = Instant::now();
    // A new endpoint after the restart (allow the clients to reconnect).
    let e3 = attach_retrying(&mut c, 2, &net, None, 10.0).unwrap_or_else(|last| {
        panic!(
            "no endpoint on h3 10 s after etcd came back: {last}\n{}",
            c.logs()
        )
    });
    eprintln!(
        "new endpoint accepted {:.1} s after etcd restart",
        t1.elapsed().as_secs_f64()
    );
    ok_or_logs(
        &c,
        c.wait_ping(e1, e3, 6.0),
        "new endpoint after etcd restart",
    );
    ok_or_logs(
        &c,
        c.wait_ping(e3, e2, 6.0),
        "new endpoint after etcd restart",
    );
    ok_or_logs(
        &c,
        c.wait_all_kernels(VNI, 5.0),
        "kernel after etcd restart",
    );
    let st = ping.wait();
    assert_eq!(
        st.lost(),
        0,
        "lost {} of {} pings over the etcd restart",
        st.lost(),
        st.sent
    );
    for h in ["h1", "h2", "h3"] {
        assert_eq!(
            c.keys(&format!("alive/{h}")).len(),
            1,
            "alive/{h} after restart"
        );
    }
    assert_eq!(c.keys(&format!("endpoints/{VNI}/")).len(), 3);
    // etcd resets leases' TTLs when it restarts: each host resumed its own.
    let after: Vec<String> = ["h1", "h2", "h3"].iter().map(|h| lease_of(&c, h)).collect();
    assert_eq!(
        leases, after,
        "hosts took new leases instead of resuming theirs"
    );
}

/// Case 8: A host cut off from etcd misses changes that are then compacted away;
/// after healing its kernel matches the store (full resync).
#[test]
fn compaction_while_partitioned() {
    let (mut c, net, [e1, _e2, e2b, e3]) = converged(3, [0, 1, 1, 2]);
    ok_or_logs(&c, c.wait_ping(e3, e1, 5.0), "ping");
    // Reset rather than drop, so h3's watch really breaks and must resume
    // from a compacted revision.
    c.hosts[2].partition_reset();
    let t0 = Instant::now();
    // Long enough for h3's next lease keep-alive to hit the reset, so its
    // connection (and watch) is really gone, but shorter than the TTL.
    sleep(LEASE_TTL as f64 / 2.0);
    let e4 = c.attach(0, &net);
    let e2b_mac = c.eps[e2b].mac.clone();
    c.detach(e2b);
    let e4 = if e4 > e2b { e4 - 1 } else { e4 };
    let e3 = if e3 > e2b { e3 - 1 } else { e3 };
    // The others see the changes; h3 does not (it is cut off).
    ok_or_logs(
        &c,
        c.wait_kernel(&[0, 1], VNI, &[], 5.0),
        "h1/h2 after changes",
    );
    // The partition holds: h3 still has the old state (checked twice).
    let e4_mac = c.eps[e4].mac.clone();
    for _ in 0..2 {
        let stale = c.hosts[2].kernel(VNI).unwrap();
        assert!(
            stale.fdb.iter().any(|(m, _)| *m == e2b_mac)
                && !stale.fdb.iter().any(|(m, _)| *m == e4_mac),
            "h3 saw the changes through the partition (the lab is broken): {stale:?}"
        );
    }
    let rev = c.etcd.compact_head();
    eprintln!(
        "compacted at {rev}, {:.1} s into the partition",
        t0.elapsed().as_secs_f64()
    );
    c.hosts[2].heal_reset();
    let t = ok_or_logs(
        &c,
        c.wait_kernel(&[2], VNI, &[], 10.0),
        "h3 after compaction + heal",
    );
    eprintln!("h3 converged {t:.1} s after healing");
    // Informational: a reconnect may relist at once, or resume the watch and
    // be told it was compacted; both must end in the state checked above.
    let log = c.hosts[2].plugin().log_text();
    eprintln!(
        "h3 log: session ended {} time(s), lists {}, compaction mentioned: {}",
        log.matches("session ended").count(),
        log.matches("listed the cluster state").count(),
        log.to_lowercase().contains("compact")
    );
    let store = ok_or_logs(&c, c.store_desired(2, VNI), "store");
    assert_eq!(
        store,
        c.hosts[2].kernel(VNI).unwrap(),
        "h3: kernel vs store"
    );
    ok_or_logs(
        &c,
        c.wait_ping(e3, e4, 5.0),
        "h3 → endpoint added while partitioned",
    );
    ok_or_logs(&c, c.wait_all_kernels(VNI, 5.0), "all after heal");
}

/// Case 9: Plugin restarts (SIGTERM, then SIGKILL) during a ping loop: no ping
/// lost, no FDB/neighbour netlink event on the VXLAN devices, same dumps.
#[test]
fn plugin_restart_no_churn() {
    let (mut c, net, [e1, e2, _, _]) = converged(2, [0, 1, 0, 1]);
    ok_or_logs(&c, c.wait_ping(e1, e2, 5.0), "ping");
    let lease = |c: &Cluster, h: &str| -> Value {
        let out = c
            .etcd
            .ctl_ok(&["get", &format!("{}alive/{h}", c.prefix), "-w", "json"]);
        serde_json::from_str::<Value>(out.trim()).unwrap()["kvs"][0]["lease"].clone()
    };
    let leases: Vec<Value> = ["h1", "h2"].iter().map(|h| lease(&c, h)).collect();
    let before: Vec<String> = c.hosts.iter().map(|h| h.kernel_text(VNI)).collect();
    let mons: Vec<(Monitor, Monitor)> = c
        .hosts
        .iter()
        .map(|h| {
            (
                Monitor::start(&h.ns, &["ip", "monitor", "neigh"]),
                Monitor::start(&h.ns, &["bridge", "monitor", "fdb"]),
            )
        })
        .collect();
    let ping = PingLoop::start(&c.eps[e1].ctr, &c.eps[e2].ip.clone(), 13.0);
    sleep(0.5);
    assert!(
        c.hosts[1].stop_plugin(),
        "SIGTERM: the plugin did not exit 0"
    );
    c.hosts[1].restart_plugin();
    sleep(2.0 * RESYNC_INTERVAL as f64 + 1.0);
    c.hosts[0].kill_plugin();
    c.hosts[0].restart_plugin();
    sleep(2.0 * RESYNC_INTERVAL as f64 + 1.0);
    let st = ping.wait();
    let after: Vec<String> = c.hosts.iter().map(|h| h.kernel_text(VNI)).collect();
    // Positive control: the monitors do see changes made by hand.
    for h in &c.hosts {
        bogus_neighbour(&h.ns, "replace");
        fdb_entry(&h.ns, "replace", BOGUS_MAC, "192.168.88.99");
    }
    sleep(0.3);
    let mut events = Vec::new();
    for (i, (n, f)) in mons.into_iter().enumerate() {
        let (n, f) = (n.stop(), f.stop());
        assert!(
            n.iter().any(|l| l.contains("10.20.99.99"))
                && f.iter().any(|l| l.contains("02:42:0a:14:63:63")),
            "{}: the monitors missed changes made by hand (neigh {n:?}, fdb {f:?})",
            c.hosts[i].id
        );
        for l in n.into_iter().chain(f) {
            if l.contains(&format!("syvx{VNI}"))
                && !l.contains("master")
                && !l.contains("10.20.99.99")
                && !l.contains("02:42:0a:14:63:63")
            {
                events.push(format!("{}: {l}", c.hosts[i].id));
            }
        }
    }
    assert_eq!(
        st.lost(),
        0,
        "lost {} of {} pings over plugin restarts",
        st.lost(),
        st.sent
    );
    assert!(
        events.is_empty(),
        "netlink churn on restart:\n{}",
        events.join("\n")
    );
    assert_eq!(before, after, "kernel dumps changed over restarts");
    let leases_after: Vec<Value> = ["h1", "h2"].iter().map(|h| lease(&c, h)).collect();
    eprintln!("leases before {leases:?}, after {leases_after:?}");
    // Still serving after the restarts.
    let e5 = c.attach(1, &net);
    ok_or_logs(&c, c.wait_ping(e1, e5, 5.0), "endpoint after restarts");
    ok_or_logs(&c, c.wait_all_kernels(VNI, 5.0), "kernel after restarts");
}

/// Case 10: Drift: FDB entries deleted, a neighbour deleted, a bogus FDB entry
/// and a bogus neighbour added by hand — all repaired within a few seconds.
#[test]
fn drift_repaired() {
    let (c, _, [e1, e2, _]) = converged(3, [0, 1, 2]);
    ok_or_logs(&c, c.wait_ping(e1, e2, 5.0), "ping");
    let h1 = &c.hosts[0];
    let limit = 2.0 * RESYNC_INTERVAL as f64 + 2.0;
    // (a) FDB flushed by hand.
    for (mac, dst) in h1.kernel(VNI).unwrap().fdb {
        let (ok, out) = h1.ns.exec(&[
            "bridge", "fdb", "del", &mac, "dev", "syvx5001", "dst", &dst, "self",
        ]);
        assert!(ok, "{out}");
    }
    let t = ok_or_logs(&c, c.wait_kernel(&[0], VNI, &[], limit), "FDB flushed");
    eprintln!("FDB repaired in {t:.1} s");
    // (b) a neighbour deleted.
    let ip2 = c.eps[e2].ip.clone();
    h1.ns.ip(&["neigh", "del", &ip2, "dev", "syvx5001"]);
    let t = ok_or_logs(
        &c,
        c.wait_kernel(&[0], VNI, &[], limit),
        "neighbour deleted",
    );
    eprintln!("neighbour repaired in {t:.1} s");
    // (c) bogus entries.
    fdb_entry(&h1.ns, "add", BOGUS_MAC, "192.168.88.99");
    bogus_neighbour(&h1.ns, "add");
    // (d) an existing entry pointed at the wrong VTEP.
    let mac2 = c.eps[e2].mac.clone();
    fdb_entry(&h1.ns, "replace", &mac2, "192.168.88.3");
    let t = ok_or_logs(&c, c.wait_kernel(&[0], VNI, &[], limit), "bogus entries");
    eprintln!("bogus entries removed in {t:.1} s");
    ok_or_logs(&c, c.wait_ping(e1, e2, 3.0), "ping after repairs");
}

/// Case 10b: Drift: the VXLAN device deleted by hand is recreated (enslaved to
/// its bridge, same settings) with its entries.
#[test]
fn drift_vxlan_device_recreated() {
    let (c, _, [e1, e2]) = converged(2, [0, 1]);
    ok_or_logs(&c, c.wait_ping(e1, e2, 5.0), "ping");
    c.hosts[0].ns.ip(&["link", "del", "syvx5001"]);
    let limit = 2.0 * RESYNC_INTERVAL as f64 + 3.0;
    ok_or_logs(
        &c,
        c.wait_kernel(&[0], VNI, &[], limit),
        "vxlan device recreated",
    );
    let d = c.hosts[0].ns.ip(&["-d", "link", "show", "syvx5001"]);
    let vx = vxlan_line(&d);
    for want in [
        "vxlan id 5001 ",
        " local 192.168.88.1 ",
        " nolearning ",
        " proxy ",
    ] {
        assert!(vx.contains(want), "recreated syvx5001 lacks `{want}`:\n{d}");
    }
    for want in ["master sybr5001", "mtu 1450"] {
        assert!(d.contains(want), "recreated syvx5001 lacks `{want}`:\n{d}");
    }
    ok_or_logs(&c, c.wait_ping(e1, e2, 5.0), "ping after recreation");
}

/// Case 11: The plugin starts while etcd is down: it serves, and it leaves the
/// kernel alone (stale and foreign entries stay) until etcd is back; then
/// the kernel converges to the store.
#[test]
fn start_while_etcd_down() {
    let (mut c, _, [e1, e2, e2b]) = converged(2, [0, 1, 1]);
    ok_or_logs(&c, c.wait_ping(e1, e2, 5.0), "ping");
    c.hosts[0].kill_plugin();
    // A change h1 misses: e2b goes away (store and h2 only).
    c.detach(e2b);
    ok_or_logs(&c, c.wait_kernel(&[1], VNI, &[], 5.0), "h2");
    c.etcd.stop();
    let h1 = &c.hosts[0];
    fdb_entry(&h1.ns, "add", BOGUS_MAC, "192.168.88.99");
    let before = h1.kernel(VNI).unwrap();
    assert_eq!(before.fdb.len(), 3, "stale e2b + e2 + bogus: {before:?}");
    c.hosts[0].restart_plugin();
    let h1 = &c.hosts[0];
    // It serves.
    let mut cl = h1.plugin().client();
    let act = cl
        .call("Plugin.Activate", &json!({}))
        .expect("Plugin.Activate");
    assert_eq!(act.status, 200, "{}", act.text());
    let imp = act.json()["Implements"].to_string();
    assert!(
        imp.contains("NetworkDriver") && imp.contains("IpamDriver"),
        "{imp}"
    );
    let cap = cl
        .call("NetworkDriver.GetCapabilities", &json!({}))
        .expect("GetCapabilities");
    assert_eq!(cap.status, 200, "{}", cap.text());
    // And keeps its hands off the kernel.
    let t0 = Instant::now();
    while t0.elapsed().as_secs_f64() < 3.0 * RESYNC_INTERVAL as f64 {
        assert_eq!(
            h1.kernel(VNI).unwrap(),
            before,
            "h1's kernel changed while etcd was down ({:.1} s after start)\n{}",
            t0.elapsed().as_secs_f64(),
            c.logs()
        );
        assert!(h1.has_link("syvx5001") && h1.has_link("sybr5001"));
        sleep(0.25);
    }
    assert!(c.ping(e1, e2), "data plane broken while etcd is down");
    c.etcd.start_again();
    let t = ok_or_logs(
        &c,
        c.wait_kernel(&[0], VNI, &[], 15.0),
        "h1 after etcd is back",
    );
    eprintln!("h1 converged {t:.1} s after etcd came back");
    ok_or_logs(&c, c.wait_ping(e1, e2, 3.0), "ping after convergence");
    let ids: Vec<String> = c.keys(&format!("endpoints/{VNI}/"));
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(
        ids.iter().any(|k| k.ends_with(&c.eps[e1].id)),
        "{} missing",
        short(&c.eps[e1].id)
    );
}

/// Case 6b: A control-plane partition longer than TTL + grace: the peers
/// collect the host's endpoints (traffic to it breaks — by design, that is
/// the grace's trade-off), and after healing it re-asserts them and traffic
/// comes back within a few seconds.
#[test]
fn control_plane_partition_longer_than_grace_heals() {
    let (c, _, [e1, e2]) = converged(2, [0, 1]);
    ok_or_logs(&c, c.wait_ping(e1, e2, 5.0), "ping");
    let limit = (LEASE_TTL + GC_GRACE + 2 * RESYNC_INTERVAL + 3) as f64;
    // Runs through the break and the recovery (also a positive control that
    // the ping loop does count losses).
    let ping = PingLoop::start(&c.eps[e2].ctr, &c.eps[e1].ip.clone(), limit + 8.0);
    c.hosts[0].partition();
    ok_or_logs(
        &c,
        c.wait_kernel(&[1], VNI, &[0], limit),
        "h2 collects h1's endpoint",
    );
    // h1 itself keeps what it had (etcd unreachable: nothing is flushed).
    assert_eq!(c.hosts[0].kernel(VNI).unwrap(), c.desired(0, VNI, &[]));
    c.hosts[0].heal();
    let t0 = Instant::now();
    ok_or_logs(&c, c.wait_all_kernels(VNI, 10.0), "after healing");
    ok_or_logs(&c, c.wait_ping(e2, e1, 5.0), "after healing");
    eprintln!(
        "re-asserted and reachable {:.1} s after healing",
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(
        c.keys(&format!("endpoints/{VNI}/")).len(),
        2,
        "{:?}",
        c.keys("")
    );
    let st = ping.interrupt();
    eprintln!(
        "h2 → h1 over a partition longer than the grace: lost {} of {}",
        st.lost(),
        st.sent
    );
    assert!(
        st.lost() > 0,
        "no loss although h1's endpoint was collected: {st:?}"
    );
    assert!(c.ping(e2, e1));
}

/// A network deleted and made again with its VNI on one host gets every
/// remote endpoint at once, not only at the next periodic pass (an hour
/// here): the new devices start empty, whatever the old ones held.
#[test]
fn network_made_again_gets_the_remote_endpoints_at_once() {
    let mut c = Cluster::without_plugins(2);
    c.hosts[0].set_env("SWITCHYARD__CLUSTER__RESYNC_INTERVAL", Some("3600"));
    for h in &mut c.hosts {
        h.start_plugin();
    }
    for h in &c.hosts {
        ok_or_logs(&c, h.wait_registered(15.0), "registration");
    }
    let mut net = c.create_network(VNI, SUBNET, &[]);
    // h2's first, so that its index stays when h1's (the last) goes.
    let e2 = c.attach(1, &net);
    let e1 = c.attach(0, &net);
    ok_or_logs(&c, c.wait_ping(e1, e2, 10.0), "first ping");
    c.detach(e1);
    ok_or_logs(&c, c.delete_network_on(0, &net), "delete on h1");
    let again = c.create_network_on(0, &VNI.to_string(), SUBNET, &[]);
    net.on[0] = Some(ok_or_logs(&c, again, "CreateNetwork again on h1"));
    ok_or_logs(
        &c,
        c.wait_all_kernels(VNI, 10.0),
        "h1's new devices lack h2's endpoint",
    );
    let e3 = c.attach(0, &net);
    ok_or_logs(
        &c,
        c.wait_ping(e3, e2, 10.0),
        "ping after the network came back",
    );
}

/// Network removal on every host: links gone, endpoints and claims gone from
/// the store, and the VNI is free again (another subnet is accepted).
#[test]
fn network_delete_frees_vni() {
    let mut c = Cluster::new(2);
    let net = c.create_network(VNI, SUBNET, &[]);
    let e1 = c.attach(0, &net);
    let e2 = c.attach(1, &net);
    ok_or_logs(&c, c.wait_ping(e1, e2, 5.0), "ping");
    c.detach(1);
    c.detach(0);
    ok_or_logs(&c, c.wait_all_kernels(VNI, 5.0), "no remote entries left");
    // Delete on h1 only: h2 keeps its devices.
    ok_or_logs(&c, c.delete_network_on(0, &net), "delete on h1");
    assert!(!c.hosts[0].has_link("syvx5001") && !c.hosts[0].has_link("sybr5001"));
    assert!(
        c.hosts[0].ns.marked_links().is_empty(),
        "{:?}",
        c.hosts[0].ns.marked_links()
    );
    assert!(
        c.hosts[1].has_link("syvx5001"),
        "h2 lost its device when h1 deleted"
    );
    let refused = c.create_network_on(0, "5001", "10.30.0.0/16", &[]);
    assert!(
        refused.is_err(),
        "VNI 5001 still used by h2, yet another subnet was accepted"
    );
    ok_or_logs(&c, c.delete_network_on(1, &net), "delete on h2");
    let right_after = c.hosts[1].ns.marked_links();
    let gone = wait_for(2.0 * RESYNC_INTERVAL as f64 + 1.0, || {
        c.hosts[1].ns.marked_links().is_empty().then_some(())
    });
    assert!(
        gone.is_some() && right_after.is_empty(),
        "links left on h2 after DeleteNetwork answered: {right_after:?} right after, {:?} {} s later\n{}",
        c.hosts[1].ns.marked_links(),
        2 * RESYNC_INTERVAL + 1,
        c.logs()
    );
    let left: Vec<String> = c
        .keys("")
        .into_iter()
        .filter(|k| k.contains("/endpoints/") || k.contains("10.20."))
        .collect();
    // Endpoint claims, and the gateway claim shared by every host (released
    // by the last host to leave), must be gone.
    assert!(
        left.is_empty(),
        "endpoints/claims left in the store: {left:?}"
    );
    // The VNI is free: its record goes (allow the agents a moment), and
    // another subnet is accepted, on both hosts.
    let freed = wait_for(5.0, || {
        c.keys(&format!("networks/{VNI}")).is_empty().then_some(())
    });
    assert!(
        freed.is_some(),
        "networks/{VNI} still in the store 5 s after every host deleted the network: {:?}",
        c.etcd.get_prefix(&c.prefix)
    );
    let n2 = c.create_network(VNI, "10.30.0.0/16", &[]);
    let a = c.attach(0, &n2);
    let b = c.attach(1, &n2);
    assert!(c.eps[a].ip.starts_with("10.30."), "{}", c.eps[a].ip);
    ok_or_logs(
        &c,
        c.wait_ping(a, b, 5.0),
        "the VNI reused with another subnet",
    );
}

/// The MTU follows the underlay: a 9000-byte uplink gives 8950 on every hop.
#[test]
fn mtu_follows_jumbo_underlay() {
    let mut c = Cluster::without_plugins(2);
    for (i, h) in c.hosts.iter().enumerate() {
        c.ul.ip(&["link", "set", &format!("ulp{}", i + 1), "mtu", "9000"]);
        h.ns.ip(&["link", "set", "uplink", "mtu", "9000"]);
    }
    for h in &mut c.hosts {
        h.start_plugin();
    }
    let net = c.create_network(VNI, SUBNET, &[]);
    let a = c.attach(0, &net);
    let b = c.attach(1, &net);
    ok_or_logs(&c, c.wait_ping(a, b, 5.0), "ping");
    for h in &c.hosts {
        assert_eq!(h.mtu("syvx5001"), 8950, "{}", h.id);
        assert_eq!(h.mtu("sybr5001"), 8950, "{}", h.id);
    }
    assert_eq!(link_mtu(&c.eps[a].ctr, "eth0"), 8950);
    let (ok, out) = df_ping(&c, a, b, 8950 - 28);
    assert!(ok, "DF ping of 8922 bytes lost:\n{out}");
    let (ok, out) = df_ping(&c, a, b, 8950 - 27);
    assert!(!ok, "DF ping of 8923 bytes passed an MTU of 8950:\n{out}");
}

/// Case 5b: A dead host's IP is taken by another host after the grace; when
/// the dead host returns, its stale endpoint must not be re-asserted over
/// the new owner: the store keeps one endpoint for that IP (the new one),
/// and every peer forwards that IP to the new owner's VTEP.
#[test]
fn returning_host_loses_reused_ip() {
    let (mut c, net, [e1, e2, e3]) = converged(3, [0, 1, 2]);
    ok_or_logs(&c, c.wait_ping(e2, e3, 5.0), "ping");
    let ip3 = c.eps[e3].ip.clone();
    let mac3 = c.eps[e3].mac.clone();
    c.hosts[2].kill_plugin();
    c.hosts[2].ns.ip(&["link", "set", "uplink", "down"]);
    let limit = (LEASE_TTL + GC_GRACE + 2 * RESYNC_INTERVAL + 3) as f64;
    ok_or_logs(&c, c.wait_kernel(&[0, 1], VNI, &[2], limit), "GC of h3");
    // The claim went with the endpoint: h1 may take the address now.
    let n = attach_retrying(&mut c, 0, &net, Some(&ip3), 5.0).unwrap_or_else(|last| {
        panic!(
            "{ip3} not free after h3 was collected: {last}\n{}",
            c.logs()
        )
    });
    ok_or_logs(&c, c.wait_ping(e2, n, 5.0), "h2 → the new owner of h3's IP");
    // h3 returns.
    c.hosts[2].ns.ip(&["link", "set", "uplink", "up"]);
    c.hosts[2].restart_plugin();
    sleep(2.0 * RESYNC_INTERVAL as f64 + 2.0);
    eprintln!(
        "after h3's return: h2 kernel {:?}\nclaims {:?}",
        c.hosts[1].kernel_text(VNI),
        c.keys("ipam/")
    );
    let with_ip: Vec<(String, String)> = c
        .etcd
        .get_prefix(&format!("{}endpoints/{VNI}/", c.prefix))
        .into_iter()
        .filter(|(_, v)| v.contains(&format!("\"{ip3}\"")))
        .collect();
    assert_eq!(
        with_ip.len(),
        1,
        "endpoints holding {ip3}: {with_ip:?}\n{}",
        c.logs()
    );
    assert!(
        with_ip[0].1.contains("\"h1\""),
        "{ip3} belongs to h1 now, the store says {with_ip:?}"
    );
    let fdb = c.hosts[1].kernel(VNI).unwrap().fdb;
    assert!(
        fdb.contains(&(mac3.clone(), "192.168.88.1".to_string()))
            && !fdb.contains(&(mac3.clone(), "192.168.88.3".to_string())),
        "h2 must forward {mac3} to h1 only: {fdb:?}"
    );
    // The new owner still answers from h2 (not the returned h3's container).
    assert!(
        c.ping(e2, n),
        "h2 cannot reach {ip3} on h1 after h3 returned"
    );
    let _ = e1;
}

/// Without etcd: `-o peers=` gives head-end replication with kernel
/// learning. Two hosts name each other; their containers (addresses chosen
/// by hand, as local IPAM is per host) reach each other, and the device
/// learns the remote MAC instead of having it programmed.
#[test]
fn static_peers_without_etcd() {
    use switchyard_integration_tests::libnetwork::Libnetwork;
    use switchyard_integration_tests::{Netns, Plugin, random_id};
    let mut c = Cluster::without_plugins(2);
    for h in &mut c.hosts {
        h.plugin = Some(Plugin::start_with(
            &h.ns,
            &[("SWITCHYARD__VXLAN__UNDERLAY", "uplink")],
        ));
    }
    let ctrs = [Netns::new("sp1"), Netns::new("sp2")];
    for (i, h) in c.hosts.iter().enumerate() {
        let peer = format!("192.168.88.{}", 2 - i);
        let mut ln = Libnetwork::new(h.plugin().client());
        let net = random_id();
        ln.create_network(
            &net,
            &[("backend", "vxlan"), ("vni", "7001"), ("peers", &peer)],
            &[("10.70.0.0/24", None)],
            &[],
            false,
        )
        .unwrap_or_else(|e| panic!("{}: {e}", h.id));
        let d = vxlan_line(&h.ns.ip(&["-d", "link", "show", "syvx7001"]));
        assert!(
            !d.contains("nolearning") && !d.contains(" proxy"),
            "static peers use learning, no proxy: {d}"
        );
        let fdb = std::process::Command::new("bridge")
            .args(["-n", h.ns.name(), "fdb", "show", "dev", "syvx7001"])
            .output()
            .unwrap();
        let fdb = String::from_utf8_lossy(&fdb.stdout);
        assert!(
            fdb.contains(&format!("00:00:00:00:00:00 dst {peer} self permanent")),
            "{}: {fdb}",
            h.id
        );
        let ep = random_id();
        let ip = format!("10.70.0.{}", i + 10);
        let r = ln
            .create_endpoint(&net, &ep, &format!("{ip}/24"), "", "")
            .unwrap();
        let mac = r["Interface"]["MacAddress"].as_str().unwrap().to_string();
        let j = ln.join(&net, &ep, "").unwrap();
        let src = j["InterfaceName"]["SrcName"].as_str().unwrap();
        h.ns.hand_over(src, &ctrs[i], "eth0", &[&format!("{ip}/24")]);
        ctrs[i].ip(&["link", "set", "eth0", "address", &mac]);
    }
    let reached = wait_for(5.0, || ctrs[0].ping("10.70.0.11").then_some(()));
    assert!(
        reached.is_some(),
        "10.70.0.10 on h1 cannot reach 10.70.0.11 on h2 over static peers;\n{}",
        c.logs()
    );
    assert!(ctrs[1].ping("10.70.0.10"));
    let learned = std::process::Command::new("bridge")
        .args(["-n", c.hosts[0].ns.name(), "fdb", "show", "dev", "syvx7001"])
        .output()
        .unwrap();
    let learned = String::from_utf8_lossy(&learned.stdout);
    assert!(
        learned.contains("02:42:0a:46:00:0b dst 192.168.88.2"),
        "h1 did not learn h2's container: {learned}"
    );
}

/// Without `[vxlan] underlay`, each host finds its underlay and VTEP by
/// itself (the route towards etcd; see also the LinkManager's route test):
/// another up, addressed interface on the host must not be taken.
#[test]
fn vtep_discovered_from_the_route_to_etcd() {
    use switchyard_integration_tests::Plugin;
    use switchyard_integration_tests::multihost::cluster_env;
    let mut c = Cluster::without_plugins(2);
    let prefix = c.prefix.clone();
    for h in &mut c.hosts {
        // A decoy made before the plugin looks: up, addressed, not the way to etcd.
        h.ns.ip(&["link", "add", "aa0", "type", "veth", "peer", "name", "aa1"]);
        h.ns.ip(&["addr", "add", "10.250.0.1/24", "dev", "aa0"]);
        h.ns.ip(&["link", "set", "aa0", "up"]);
        h.ns.ip(&["link", "set", "aa1", "up"]);
        let env: Vec<(String, String)> = cluster_env(&h.id, &prefix)
            .into_iter()
            .filter(|(k, _)| k != "SWITCHYARD__VXLAN__UNDERLAY")
            .collect();
        let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        h.plugin = Some(Plugin::start_with(&h.ns, &refs));
    }
    let net = c.create_network(VNI, SUBNET, &[]);
    let a = c.attach(0, &net);
    let b = c.attach(1, &net);
    ok_or_logs(&c, c.wait_ping(a, b, 5.0), "ping with discovered VTEPs");
    for h in &c.hosts {
        let d = vxlan_line(&h.ns.ip(&["-d", "link", "show", "syvx5001"]));
        assert!(
            d.contains(&format!("local {} dev uplink", h.vtep)),
            "{}: {d}",
            h.id
        );
    }
}
