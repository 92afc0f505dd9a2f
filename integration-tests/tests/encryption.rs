//! Encrypted VXLAN networks (`-o encrypted=true`, docs/cluster.md): two
//! namespace hosts, a real etcd and one real plugin each, driven at protocol
//! level as in multihost.rs. The build machines' kernel lacks the AEAD
//! crypto modules, so the test re-runs itself inside the UML kernel of
//! `run-in-kernel.sh` (xfrm, ESP, GCM, tc flower); without it the test
//! fails, it never skips.

use std::time::Duration;
use switchyard_integration_tests::guest::{Guest, in_test_kernel};
use switchyard_integration_tests::multihost::{Cluster, PingLoop, link_mtu};
use switchyard_integration_tests::{Netns, wait_for};

const VNI: u32 = 5001;
const SUBNET: &str = "10.20.0.0/16";
/// `[vxlan] encrypted_port`'s default.
const EPORT: u16 = 4793;
/// `[cluster] key_rotation` in the test, seconds.
const ROTATION: u64 = 3;

fn ok_or_logs<T>(c: &Cluster, r: Result<T, String>, what: &str) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {e}\n{}", c.logs()))
}

/// (src, dst, spi, packets) of every xfrm state in `ns`.
fn states(ns: &Netns) -> Vec<(String, String, String, u64)> {
    let text = ns.ip(&["-s", "xfrm", "state"]);
    let mut out = Vec::new();
    for block in text.split("\nsrc ").map(|b| b.trim_start_matches("src ")) {
        let mut w = block.split_whitespace();
        let (Some(src), Some("dst"), Some(dst)) = (w.next(), w.next(), w.next()) else {
            continue;
        };
        let spi = block
            .split("spi ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or("")
            .to_string();
        // "lifetime current:\n  84(bytes), 1(packets)".
        let packets = block
            .split("lifetime current:")
            .nth(1)
            .and_then(|r| {
                r.split_whitespace()
                    .find_map(|t| t.strip_suffix("(packets)")?.parse().ok())
            })
            .unwrap_or(0);
        out.push((src.to_string(), dst.to_string(), spi, packets));
    }
    out
}

/// Packets through the states from `src` in `ns`.
fn esp_packets(ns: &Netns, src: &str) -> u64 {
    states(ns).iter().filter(|s| s.0 == src).map(|s| s.3).sum()
}

/// The SPI the out policy of `ns` sends with.
fn out_spi(ns: &Netns) -> Option<String> {
    let text = ns.ip(&["xfrm", "policy", "list", "dir", "out"]);
    text.split("spi ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .map(str::to_string)
}

/// Packets the plaintext guard (tc ingress on `uplink`) dropped in `ns`;
/// None if there is no guard.
fn guard_drops(ns: &Netns) -> Option<u64> {
    let (ok, text) = ns.exec(&["tc", "-s", "filter", "show", "dev", "uplink", "ingress"]);
    if !ok || !text.contains("pref 4793") {
        return None;
    }
    // "Sent 84 bytes 1 pkt (dropped 1, ...)" under the gact action.
    text.split("Sent ")
        .nth(1)?
        .split_whitespace()
        .nth(2)?
        .parse()
        .ok()
}

fn rx_packets(ns: &Netns, dev: &str) -> u64 {
    let out = ns.ip(&["-s", "-j", "link", "show", dev]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    v[0]["stats64"]["rx"]["packets"].as_u64().unwrap()
}

fn link_mac(ns: &Netns, dev: &str) -> String {
    let out = ns.ip(&["-j", "link", "show", dev]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v[0]["address"].as_str().unwrap().to_string()
}

/// Sends `n` plaintext VXLAN frames (VNI `vni`, inner frame to `inner_mac`)
/// from `from` (its VTEP `src`, out of `uplink` by a packet socket, so no
/// xfrm policy of the sending host applies) to `dst` on `dst_mac`:EPORT —
/// a peer injecting frames into the encrypted network.
#[allow(clippy::too_many_arguments)]
fn inject_plaintext(
    from: &Netns,
    src_mac: &str,
    src: &str,
    dst_mac: &str,
    dst: &str,
    vni: u32,
    inner_mac: &str,
    n: u32,
) {
    let script = format!(
        r#"
import socket, struct
def mac(m): return bytes.fromhex(m.replace(":", ""))
def ip(a): return socket.inet_aton(a)
inner = mac("{inner_mac}") + mac("02:00:00:00:aa:99") + b"\x08\x00" + bytes(46)
vx = struct.pack("!II", 0x08000000, {vni} << 8) + inner
udp = struct.pack("!HHHH", 40000, {EPORT}, 8 + len(vx), 0) + vx
h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, ip("{src}"), ip("{dst}"))
s = sum(struct.unpack("!10H", h))
s = (s & 0xffff) + (s >> 16); s = (s & 0xffff) + (s >> 16)
h = h[:10] + struct.pack("!H", ~s & 0xffff) + h[12:]
frame = mac("{dst_mac}") + mac("{src_mac}") + b"\x08\x00" + h + udp
p = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
p.bind(("uplink", 0))
for _ in range({n}):
    p.send(frame)
"#
    );
    let (ok, out) = from.exec(&["python3", "-c", &script]);
    assert!(ok, "injecting VXLAN from {}: {out}", from.name());
}

#[test]
fn encrypted_network_carries_esp_refuses_plaintext_and_rotates_keys() {
    if !in_test_kernel(
        "encrypted_network_carries_esp_refuses_plaintext_and_rotates_keys",
        Guest::Links,
    ) {
        return;
    }
    switchyard_integration_tests::prereq::require_command("python3", "python3");
    switchyard_integration_tests::prereq::require_command("tc", "iproute2");
    let mut c = Cluster::without_plugins(2);
    for h in &mut c.hosts {
        h.set_env(
            "SWITCHYARD__CLUSTER__KEY_ROTATION",
            Some(&ROTATION.to_string()),
        );
        h.start_plugin();
    }
    for h in &c.hosts {
        ok_or_logs(&c, h.wait_registered(20.0), "registration");
    }
    let net = c.create_network(VNI, SUBNET, &[("encrypted", "true")]);
    let a = c.attach(0, &net);
    let b = c.attach(1, &net);
    ok_or_logs(&c, c.wait_all_kernels(VNI, 20.0), "kernel");
    ok_or_logs(
        &c,
        c.wait_ping(a, b, 30.0),
        "ping across the encrypted network",
    );

    // One key record for the pair, under the cluster's prefix.
    let recs = c.etcd.get_prefix(&format!("{}ipsec/", c.prefix));
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert!(recs[0].0.ends_with("ipsec/h1/h2"), "{recs:?}");

    // The MTU leaves room for VXLAN (50) and ESP (40): a full-size packet
    // that may not be fragmented crosses.
    let (h1, h2) = (&c.hosts[0], &c.hosts[1]);
    assert_eq!(link_mtu(&c.eps[a].ctr, "eth0"), 1410);
    assert_eq!(h1.mtu("sybr5001"), 1410);
    let (ok, out) = c.eps[a].ctr.exec(&[
        "ping",
        "-c",
        "1",
        "-W",
        "3",
        "-M",
        "do",
        "-s",
        "1382",
        &c.eps[b].ip,
    ]);
    assert!(ok, "a 1410-byte packet does not cross: {out}\n{}", c.logs());

    // ESP on the underlay: h1's outbound states and h2's inbound ones
    // count the pings; the guard saw no plaintext from a member.
    let (sent0, recv0) = (esp_packets(&h1.ns, &h1.vtep), esp_packets(&h2.ns, &h1.vtep));
    for _ in 0..5 {
        assert!(c.ping(a, b), "ping\n{}", c.logs());
    }
    let (sent1, recv1) = (esp_packets(&h1.ns, &h1.vtep), esp_packets(&h2.ns, &h1.vtep));
    assert!(
        sent1 >= sent0 + 5 && recv1 >= recv0 + 5,
        "ESP states did not count the pings: sent {sent0}->{sent1}, received {recv0}->{recv1}\n{:?}\n{}\n{}",
        states(&h1.ns),
        h1.ns.ip(&["xfrm", "policy"]),
        h1.ns.ip(&["-d", "link", "show", "syvx5001"]),
    );
    assert_eq!(
        guard_drops(&h2.ns),
        Some(0),
        "plaintext from a member, or no guard"
    );
    let policies = h1.ns.ip(&["xfrm", "policy"]);
    assert!(
        policies.contains(&format!("dport {EPORT}")) && policies.contains("proto esp spi"),
        "{policies}"
    );

    // A peer injects plaintext VXLAN for the encrypted VNI: dropped, counted,
    // never reaches the network's VXLAN device.
    let rx0 = rx_packets(&h2.ns, "syvx5001");
    inject_plaintext(
        &h1.ns,
        &link_mac(&h1.ns, "uplink"),
        &h1.vtep,
        &link_mac(&h2.ns, "uplink"),
        &h2.vtep,
        VNI,
        &c.eps[b].mac,
        7,
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(guard_drops(&h2.ns), Some(7), "{}", c.logs());
    assert_eq!(
        rx_packets(&h2.ns, "syvx5001"),
        rx0,
        "plaintext reached the VXLAN device"
    );

    // Rotation: a ping every 100 ms across several rotations loses
    // nothing, and the SPI sent with changes.
    let spi0 = out_spi(&h1.ns);
    let secs = (ROTATION * 4) as f64;
    let pings = PingLoop::start(&c.eps[a].ctr, &c.eps[b].ip.clone(), secs);
    let stats = pings.wait();
    let spi1 = out_spi(&h1.ns);
    assert!(stats.sent >= 40, "{stats:?}");
    assert_eq!(
        stats.lost(),
        0,
        "pings lost across key rotations: {stats:?}\n{}",
        c.logs()
    );
    assert!(
        spi0.is_some() && spi0 != spi1,
        "the SPI did not change across rotations: {spi0:?} -> {spi1:?}"
    );
    let recs = c.etcd.get_prefix(&format!("{}ipsec/", c.prefix));
    let gens: serde_json::Value = serde_json::from_str(&recs[0].1).unwrap();
    assert_eq!(gens["keys"].as_array().map(Vec::len), Some(3), "{gens}");

    // Drift repair: states deleted by hand come back at the next periodic
    // reconcile (RESYNC_INTERVAL), and traffic with them.
    let n0 = states(&c.hosts[0].ns).len();
    c.hosts[0].ns.ip(&["xfrm", "state", "deleteall"]);
    let back = wait_for(15.0, || {
        (states(&c.hosts[0].ns).len() == n0 && c.ping(a, b)).then_some(())
    });
    assert!(
        back.is_some(),
        "deleted states were not put back ({} of {n0})\n{}",
        states(&c.hosts[0].ns).len(),
        c.logs()
    );
    let log = c.hosts[0].plugin().log_text();
    assert!(
        log.contains("IPsec states changed behind Switchyard's back")
            || log.contains("IPsec states could not be applied; starting again"),
        "the states came back without the plugin noticing:\n{log}"
    );

    // h2 leaves the network: h1 drops its states and policy towards h2
    // but keeps refusing plaintext while its own encrypted network lives.
    c.detach(b);
    ok_or_logs(&c, c.delete_network_on(1, &net), "DeleteNetwork on h2");
    let h1 = &c.hosts[0];
    let left = wait_for(15.0, || {
        (states(&h1.ns).is_empty() && out_spi(&h1.ns).is_none()).then_some(())
    });
    assert!(
        left.is_some(),
        "h1 kept IPsec towards h2 after it left:\n{}\n{}",
        h1.ns.ip(&["xfrm", "state"]),
        c.logs()
    );
    assert_eq!(guard_drops(&h1.ns), Some(0), "h1's guard went too early");
    let gone = wait_for(10.0, || {
        c.etcd
            .get_prefix(&format!("{}ipsec/", c.prefix))
            .is_empty()
            .then_some(())
    });
    assert!(
        gone.is_some(),
        "the key record of a pair that shares no encrypted network stayed"
    );

    // Removing the last encrypted network removes states, policies and the
    // guard.
    c.detach(a);
    ok_or_logs(&c, c.delete_network_on(0, &net), "DeleteNetwork on h1");
    for h in &c.hosts {
        let gone = wait_for(10.0, || {
            (states(&h.ns).is_empty()
                && h.ns.ip(&["xfrm", "policy"]).trim().is_empty()
                && guard_drops(&h.ns).is_none())
            .then_some(())
        });
        assert!(
            gone.is_some(),
            "{}: left behind:\n{}\n{}\n{}",
            h.id,
            h.ns.ip(&["xfrm", "state"]),
            h.ns.ip(&["xfrm", "policy"]),
            c.logs()
        );
    }
}

/// A kernel that cannot load the ESP and GCM modules: CreateNetwork with
/// `-o encrypted` is refused, naming the modules, and leaves no device, no
/// etcd record, no xfrm state. The guest's module loader is switched off
/// after the lab is up (the guest is a throw-away kernel), then restored:
/// the same request then succeeds.
#[test]
fn encrypted_network_is_refused_on_a_kernel_without_esp_and_leaves_nothing() {
    if !in_test_kernel(
        "encrypted_network_is_refused_on_a_kernel_without_esp_and_leaves_nothing",
        Guest::Links,
    ) {
        return;
    }
    const MODPROBE: &str = "/proc/sys/kernel/modprobe";
    struct Restore(String);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = std::fs::write(MODPROBE, &self.0);
        }
    }
    let c = Cluster::new(1);
    ok_or_logs(&c, c.hosts[0].wait_registered(20.0), "registration");
    let h = &c.hosts[0];
    let loader = Restore(
        std::fs::read_to_string(MODPROBE)
            .unwrap()
            .trim()
            .to_string(),
    );
    std::fs::write(MODPROBE, "/bin/false").unwrap();
    let r = c.create_network_on(0, &VNI.to_string(), SUBNET, &[("encrypted", "")]);
    drop(loader);
    let e = r.expect_err("CreateNetwork -o encrypted succeeded without ESP in the kernel");
    assert!(
        e.contains("cannot do IPsec ESP with rfc4106(gcm(aes))")
            && e.contains("modprobe xfrm_user esp4 esp6 gcm"),
        "{e}"
    );
    assert!(!h.has_link("sybr5001") && !h.has_link("syvx5001"));
    assert!(h.ns.ip(&["xfrm", "state"]).trim().is_empty());
    assert!(
        c.etcd
            .get_prefix(&format!("{}networks/", c.prefix))
            .is_empty(),
        "a network record was written"
    );
    // With the modules loadable, the same request passes.
    let on = c.create_network_on(0, &VNI.to_string(), SUBNET, &[("encrypted", "")]);
    let on = ok_or_logs(&c, on, "CreateNetwork with the modules");
    assert_eq!(h.mtu("sybr5001"), 1410);
    h.ln().delete_network(&on.id).unwrap();
}

/// A host that joins an encrypted network later gets a key record with each
/// member (written by the lower id of each pair) and talks to both over ESP.
#[test]
fn a_host_joining_later_gets_keys_with_every_member() {
    if !in_test_kernel(
        "a_host_joining_later_gets_keys_with_every_member",
        Guest::Links,
    ) {
        return;
    }
    let mut c = Cluster::new(3);
    for h in &c.hosts {
        ok_or_logs(&c, h.wait_registered(20.0), "registration");
    }
    let mut on = Vec::new();
    for i in 0..2 {
        let r = c.create_network_on(i, &VNI.to_string(), SUBNET, &[("encrypted", "true")]);
        on.push(Some(ok_or_logs(&c, r, "CreateNetwork")));
    }
    on.push(None);
    let mut net = switchyard_integration_tests::multihost::Net {
        vni: VNI,
        subnet: SUBNET.into(),
        on,
    };
    let a = c.attach(0, &net);
    let b = c.attach(1, &net);
    ok_or_logs(&c, c.wait_ping(a, b, 30.0), "h1 → h2");
    let r = c.create_network_on(2, &VNI.to_string(), SUBNET, &[("encrypted", "true")]);
    net.on[2] = Some(ok_or_logs(&c, r, "CreateNetwork on h3"));
    let d = c.attach(2, &net);
    ok_or_logs(&c, c.wait_ping(d, a, 30.0), "h3 → h1");
    ok_or_logs(&c, c.wait_ping(d, b, 30.0), "h3 → h2");
    let mut keys: Vec<String> = c
        .etcd
        .get_prefix(&format!("{}ipsec/", c.prefix))
        .into_iter()
        .map(|(k, _)| k.rsplit("ipsec/").next().unwrap().to_string())
        .collect();
    keys.sort();
    assert_eq!(keys, ["h1/h2", "h1/h3", "h2/h3"]);
    let h3 = &c.hosts[2];
    let before: Vec<u64> = ["192.168.88.1", "192.168.88.2"]
        .iter()
        .map(|p| esp_to(&h3.ns, &h3.vtep, p))
        .collect();
    for _ in 0..3 {
        assert!(c.ping(d, a) && c.ping(d, b), "{}", c.logs());
    }
    for (i, p) in ["192.168.88.1", "192.168.88.2"].iter().enumerate() {
        let now = esp_to(&h3.ns, &h3.vtep, p);
        assert!(
            now >= before[i] + 3,
            "h3 → {p}: ESP packets {} -> {now}",
            before[i]
        );
    }

    // A restarted plugin finds the kernel as it left it and keeps it: no
    // state is replaced (their packet counters go on), no ping is lost.
    let spis = |ns: &Netns| {
        let mut v: Vec<String> = states(ns).into_iter().map(|s| s.2).collect();
        v.sort();
        v
    };
    let (spis_before, sent_before) = {
        let h1 = &c.hosts[0].ns;
        (spis(h1), esp_packets(h1, "192.168.88.1"))
    };
    let pings = PingLoop::start(&c.eps[d].ctr, &c.eps[a].ip.clone(), 4.0);
    std::thread::sleep(Duration::from_millis(500));
    c.hosts[0].restart_plugin();
    ok_or_logs(&c, c.hosts[0].wait_registered(20.0), "h1 after its restart");
    let stats = pings.wait();
    assert_eq!(stats.lost(), 0, "pings lost across h1's restart: {stats:?}");
    let h1 = &c.hosts[0].ns;
    assert_eq!(spis(h1), spis_before, "h1's states were replaced");
    assert!(
        esp_packets(h1, "192.168.88.1") > sent_before,
        "h1's ESP counters started again: its states were re-made"
    );
    assert!(
        wait_for(10.0, || c.hosts[0]
            .plugin()
            .log_text()
            .contains("as the last run left them: kept")
            .then_some(()))
        .is_some(),
        "h1's plugin did not say it kept its IPsec states\n{}",
        c.logs()
    );
}

/// Packets through the states from `src` to `dst` in `ns`.
fn esp_to(ns: &Netns, src: &str, dst: &str) -> u64 {
    states(ns)
        .iter()
        .filter(|s| s.0 == src && s.1 == dst)
        .map(|s| s.3)
        .sum()
}
