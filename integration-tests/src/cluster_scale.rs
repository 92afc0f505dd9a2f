//! The cluster scale run shared by `switchyard-bench cluster` (20 hosts ×
//! 50 endpoints) and its CI smoke test (`tests/cluster_scale.rs`, a few
//! hosts × a few endpoints), so that the benchmark's code path is the one
//! CI exercises.
//!
//! On the multi-host lab (`multihost::Cluster`: hosts that are namespaces
//! on one underlay bridge, one plugin each, one real etcd), one VXLAN
//! network on every host, then endpoints made at protocol level
//! (RequestAddress + CreateEndpoint + Join, the link left in the host
//! namespace), one at a time, round-robin over the hosts. Measured:
//!
//! - convergence: from an endpoint's CreateEndpoint request until every
//!   other host's kernel holds both its neighbour and its FDB entry. The
//!   times come from `ip -ts monitor neigh` in every host namespace (that
//!   one monitor reports both tables: neighbours start with the endpoint's
//!   IP, FDB entries with the owner's VTEP), so polling cost does not blur
//!   them;
//! - etcd writes: store revisions per endpoint, and every PUT/DELETE a
//!   watch on the cluster prefix saw, by key kind;
//! - each plugin's memory with every endpoint in place;
//! - dead-host GC: the last host's plugin is SIGKILLed; when its `alive/`
//!   key expired, when its endpoint records were gone from etcd, and when
//!   each other host's kernel had dropped its entries (monitor timestamps,
//!   confirmed by polling the kernels).
//!
//! At the end every surviving kernel is compared entry by entry with the
//! model. Everything is removed on drop, also on panic.

use crate::libnetwork::Libnetwork;
use crate::multihost::{Cluster, KernelView, Monitor};
use crate::{Background, PluginClient, random_id, wait_for};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What to run.
#[derive(Clone, Debug)]
pub struct ScaleConfig {
    pub hosts: usize,
    pub per_host: usize,
    /// Pause after each endpoint (ms) before the next one is made.
    pub pace_ms: u64,
    /// `[cluster]` timers of every plugin (seconds).
    pub lease_ttl: u64,
    pub gc_grace: u64,
    pub resync_interval: u64,
    /// How long every kernel may take to hold everything after the last
    /// endpoint, and the dead host's entries to go (seconds).
    pub settle_secs: f64,
    /// The plugins' log level.
    pub log_level: String,
}

impl ScaleConfig {
    pub fn new(hosts: usize, per_host: usize) -> ScaleConfig {
        ScaleConfig {
            hosts,
            per_host,
            pace_ms: 100,
            // Production's lease; a grace far above late keep-alives on a
            // loaded machine (5 s / 10 s collected live hosts at load 30).
            lease_ttl: 15,
            gc_grace: 30,
            resync_interval: 30,
            settle_secs: 120.0,
            log_level: "info".into(),
        }
    }
}

pub const VNI: u32 = 7020;
pub const SUBNET: &str = "10.70.0.0/16";

/// One endpoint made during the run.
#[derive(Clone, Debug)]
pub struct Made {
    /// Host index.
    pub host: usize,
    pub ip: String,
    pub mac: String,
    /// Wall-clock time (s since the epoch) CreateEndpoint was sent.
    pub created: f64,
    /// CreateEndpoint + Join answered (ms after `created`).
    pub answered_ms: f64,
    /// Until the last other host held both entries (ms after `created`);
    /// None: some host never did within the run.
    pub converged_ms: Option<f64>,
    /// Hosts (ids) that never held both entries.
    pub missing_on: Vec<String>,
}

/// Dead-host collection, seconds after the SIGKILL.
#[derive(Clone, Debug, Default)]
pub struct GcTimes {
    pub host: String,
    pub endpoints: usize,
    /// The dead host's `alive/` key gone from etcd (its lease expired).
    pub alive_gone: Option<f64>,
    /// Its endpoint records gone from etcd.
    pub records_gone: Option<f64>,
    /// Per surviving host: its last deletion of the dead host's entries
    /// (None: not all gone within the run).
    pub kernel_clean: Vec<Option<f64>>,
    /// Every surviving kernel equal to the model without the dead host.
    pub kernels_equal: bool,
}

/// What one run measured.
#[derive(Clone, Debug, Default)]
pub struct ScaleResult {
    pub hosts: usize,
    pub per_host: usize,
    pub made: Vec<Made>,
    /// Seconds from the first CreateEndpoint to the last Join.
    pub create_secs: f64,
    /// Store revisions while the endpoints were made (each write
    /// transaction is one).
    pub revisions: i64,
    /// PUT/DELETE events the prefix watch saw while the endpoints were
    /// made, by the key's first component (`endpoints`, `ipam`, …).
    pub writes_by_kind: BTreeMap<String, usize>,
    /// Every kernel equal to the model after the creation.
    pub kernels_equal: bool,
    /// Per plugin: (VmRSS KiB idle with the network, VmRSS KiB with every
    /// endpoint, VmHWM KiB, remote endpoints it programmed).
    pub memory: Vec<(u64, u64, u64, usize)>,
    pub gc: GcTimes,
    pub lease_ttl: u64,
    pub gc_grace: u64,
    pub resync_interval: u64,
}

fn epoch_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// `[2026-12-03T00:42:02.756354]` (UTC) → seconds since the epoch.
fn parse_ts(s: &str) -> Option<f64> {
    let s = s.strip_prefix('[')?.strip_suffix(']')?;
    let (date, time) = s.split_once('T')?;
    let d: Vec<i64> = date
        .split('-')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let t: Vec<i64> = hms
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    if d.len() != 3 || t.len() != 3 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m, day) = (d[0] - i64::from(d[1] <= 2), d[1], d[2]);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let secs = days * 86400 + t[0] * 3600 + t[1] * 60 + t[2];
    let frac: f64 = format!("0.{frac}").parse().ok()?;
    Some(secs as f64 + frac)
}

/// First addition and last deletion of each (first field, lladdr) entry
/// on a device, from `ip -ts monitor neigh` lines.
#[derive(Default, Debug)]
pub struct Events {
    added: HashMap<(String, String), f64>,
    deleted: HashMap<(String, String), f64>,
}

impl Events {
    pub fn parse(lines: &[String], dev: &str) -> Events {
        let mut e = Events::default();
        let dev = format!(" dev {dev} ");
        for l in lines {
            let Some((ts, rest)) = l.split_once(' ') else {
                continue;
            };
            let Some(t) = parse_ts(ts) else { continue };
            if !rest.contains(&dev) {
                continue;
            }
            let (deleted, rest) = match rest.strip_prefix("Deleted ") {
                Some(r) => (true, r),
                None => (false, rest),
            };
            let w: Vec<&str> = rest.split_whitespace().collect();
            // A neighbour's deletion is reported without its lladdr.
            let mac = w
                .iter()
                .position(|x| *x == "lladdr")
                .and_then(|i| w.get(i + 1))
                .map_or_else(String::new, |m| m.to_lowercase());
            let key = (w[0].to_string(), mac);
            if deleted {
                let d = e.deleted.entry(key).or_insert(t);
                *d = d.max(t);
            } else {
                e.added.entry(key).or_insert(t);
            }
        }
        e
    }

    /// When both the neighbour (ip, mac) and the FDB entry (vtep, mac)
    /// had appeared.
    fn programmed(&self, ip: &str, mac: &str, vtep: &str) -> Option<f64> {
        let n = self.added.get(&(ip.to_string(), mac.to_string()))?;
        let f = self.added.get(&(vtep.to_string(), mac.to_string()))?;
        Some(n.max(*f))
    }

    /// When both had been deleted (the later deletion).
    fn removed(&self, ip: &str, mac: &str, vtep: &str) -> Option<f64> {
        let n = self
            .deleted
            .get(&(ip.to_string(), mac.to_string()))
            .or_else(|| self.deleted.get(&(ip.to_string(), String::new())))?;
        let f = self.deleted.get(&(vtep.to_string(), mac.to_string()))?;
        Some(n.max(*f))
    }
}

/// `etcdctl watch --prefix` in the underlay namespace (etcdctl 3.4 speaks
/// the v3 API by default), its events in the server's log.
struct PrefixWatch(Background);

impl PrefixWatch {
    fn start(c: &Cluster) -> PrefixWatch {
        let w = Background::start(
            &c.ul,
            "etcd-client",
            &[
                "etcdctl",
                "--endpoints",
                c.etcd.url(),
                "watch",
                "--prefix",
                &c.prefix,
            ],
        );
        std::thread::sleep(Duration::from_millis(500));
        PrefixWatch(w)
    }

    /// Stops it; PUT/DELETE events by the key's first component under the
    /// prefix. etcdctl prints each event as its type, the key, the value
    /// (one line: the values are compact JSON; none after a DELETE).
    fn stop(self, prefix: &str) -> BTreeMap<String, usize> {
        let text = self.0.log();
        drop(self);
        let mut by = BTreeMap::new();
        let mut lines = text.lines().peekable();
        while let Some(l) = lines.next() {
            if (l == "PUT" || l == "DELETE")
                && let Some(k) = lines.peek().and_then(|k| k.strip_prefix(prefix))
            {
                let kind = k.split('/').next().unwrap_or("").to_string();
                *by.entry(format!("{kind} {}", l.to_lowercase()))
                    .or_insert(0) += 1;
            }
        }
        by
    }
}

/// (VmRSS, VmHWM) in KiB of a process.
fn memory_kib(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// `remote_endpoints` of the VXLAN network in a plugin's status.
fn status_remote(c: &Cluster, host: usize) -> usize {
    let Ok(r) = c.hosts[host]
        .plugin()
        .client()
        .call_raw("Switchyard.Status", b"")
    else {
        return 0;
    };
    let v = r.json();
    v["networks"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|n| n["details"]["vni"].as_str() == Some(&VNI.to_string()))
        })
        .and_then(|n| n["details"]["remote_endpoints"].as_str())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// RequestAddress + CreateEndpoint + Join on one plugin; the link stays in
/// the host namespace. (ip, mac, CreateEndpoint sent at, answered ms).
fn make_endpoint(
    ipam: &mut PluginClient,
    ln: &mut Libnetwork,
    net_id: &str,
    pool_id: &str,
) -> Result<(String, String, f64, f64), String> {
    let r = ipam
        .call(
            "IpamDriver.RequestAddress",
            &json!({"PoolID": pool_id, "Address": "", "Options": {}}),
        )
        .map_err(|e| format!("RequestAddress transport: {e}"))?;
    let v = r.json();
    let cidr = v["Address"]
        .as_str()
        .ok_or_else(|| format!("RequestAddress answered {}", r.text()))?
        .to_string();
    let ep = random_id();
    let created = epoch_now();
    let t0 = Instant::now();
    let ce = ln
        .create_endpoint(net_id, &ep, &cidr, "", "")
        .map_err(|e| format!("CreateEndpoint {cidr}: {e}"))?;
    let mac = ce["Interface"]["MacAddress"]
        .as_str()
        .ok_or_else(|| format!("CreateEndpoint {cidr} answered {ce}"))?
        .to_lowercase();
    ln.join(net_id, &ep, &format!("/run/netns/scale-none-{}", &ep[..12]))
        .map_err(|e| format!("Join {cidr}: {e}"))?;
    let answered = t0.elapsed().as_secs_f64() * 1000.0;
    let ip = cidr.split('/').next().unwrap().to_string();
    Ok((ip, mac, created, answered))
}

/// What host `me`'s kernel should hold: every endpoint of the other hosts
/// not in `gone`.
fn model(c: &Cluster, made: &[Made], me: usize, gone: Option<usize>) -> KernelView {
    let mut v = KernelView::default();
    for m in made {
        if m.host != me && Some(m.host) != gone {
            v.fdb.insert((m.mac.clone(), c.hosts[m.host].vtep.clone()));
            v.neigh.insert((m.ip.clone(), m.mac.clone()));
        }
    }
    v
}

/// Waits until every host not in `gone` holds its model; the first
/// difference if not within `secs`.
fn kernels_match(c: &Cluster, made: &[Made], gone: Option<usize>, secs: f64) -> Result<(), String> {
    let mut last = String::new();
    let mut done = vec![false; c.hosts.len()];
    wait_for(secs, || {
        for (h, ok) in done.iter_mut().enumerate() {
            if *ok || Some(h) == gone {
                continue;
            }
            let want = model(c, made, h, gone);
            match c.hosts[h].kernel(VNI) {
                Ok(k) if k == want => *ok = true,
                Ok(k) => {
                    last = format!(
                        "{}: kernel has {} FDB / {} neighbour entries, the model {} / {} ({} FDB entries missing, {} extra)",
                        c.hosts[h].id,
                        k.fdb.len(),
                        k.neigh.len(),
                        want.fdb.len(),
                        want.neigh.len(),
                        want.fdb.difference(&k.fdb).count(),
                        k.fdb.difference(&want.fdb).count(),
                    );
                    return None;
                }
                Err(e) => {
                    last = e;
                    return None;
                }
            }
        }
        Some(())
    })
    .ok_or(last)
}

/// The whole run. `progress` gets a line now and then (the bench prints
/// it on stderr). Panics if the lab cannot be built or a call is refused;
/// measurements that did not complete are None/false in the result.
pub fn run(cfg: &ScaleConfig, progress: &mut dyn FnMut(&str)) -> (ScaleResult, Cluster) {
    assert!(cfg.hosts >= 2, "a cluster needs at least 2 hosts");
    crate::prereq::require_command("etcdctl", "etcd-client");
    let mut c = Cluster::without_plugins(cfg.hosts);
    progress(&format!(
        "underlay, etcd and {} host namespaces up",
        cfg.hosts
    ));
    for h in &mut c.hosts {
        for (k, v) in [
            ("SWITCHYARD__CLUSTER__LEASE_TTL", cfg.lease_ttl.to_string()),
            ("SWITCHYARD__CLUSTER__GC_GRACE", cfg.gc_grace.to_string()),
            (
                "SWITCHYARD__CLUSTER__RESYNC_INTERVAL",
                cfg.resync_interval.to_string(),
            ),
            ("SWITCHYARD__LOG__LEVEL", cfg.log_level.clone()),
        ] {
            h.set_env(k, Some(&v));
        }
        h.start_plugin();
    }
    for h in &c.hosts {
        h.wait_registered(60.0)
            .unwrap_or_else(|e| panic!("{e}\n{}", c.logs()));
    }
    progress(&format!("{} plugins registered", cfg.hosts));
    let net = c.create_network(VNI, SUBNET, &[]);
    progress("network created on every host");
    std::thread::sleep(Duration::from_millis(1000));
    let pids: Vec<u32> = c.hosts.iter().map(|h| h.plugin().pid()).collect();
    let idle: Vec<u64> = pids.iter().map(|p| memory_kib(*p).0).collect();

    let monitors: Vec<Monitor> = c
        .hosts
        .iter()
        .map(|h| Monitor::start(&h.ns, &["env", "TZ=UTC", "ip", "-ts", "monitor", "neigh"]))
        .collect();
    let watch = PrefixWatch::start(&c);
    let rev0 = c.etcd.revision();
    let mut clients: Vec<(PluginClient, Libnetwork)> = c
        .hosts
        .iter()
        .map(|h| (h.plugin().client(), h.ln()))
        .collect();
    let mut made = Vec::with_capacity(cfg.hosts * cfg.per_host);
    let t0 = Instant::now();
    for round in 0..cfg.per_host {
        for (h, (ipam, ln)) in clients.iter_mut().enumerate() {
            let (ip, mac, created, answered_ms) =
                make_endpoint(ipam, ln, net.id_on(h), net.pool_on(h))
                    .unwrap_or_else(|e| panic!("on {}: {e}\n{}", c.hosts[h].id, c.logs()));
            made.push(Made {
                host: h,
                ip,
                mac,
                created,
                answered_ms,
                converged_ms: None,
                missing_on: Vec::new(),
            });
            std::thread::sleep(Duration::from_millis(cfg.pace_ms));
        }
        if (round + 1) % 10 == 0 || round + 1 == cfg.per_host {
            progress(&format!(
                "{} endpoints made ({:.1} s)",
                made.len(),
                t0.elapsed().as_secs_f64()
            ));
        }
    }
    let create_secs = t0.elapsed().as_secs_f64();
    let kernels = kernels_match(&c, &made, None, cfg.settle_secs);
    if let Err(e) = &kernels {
        progress(&format!("kernels not complete: {e}"));
    }
    let revisions = c.etcd.revision() - rev0;
    let writes_by_kind = watch.stop(&c.prefix);
    progress(&format!(
        "kernels complete: {}; {revisions} etcd revisions",
        kernels.is_ok()
    ));
    std::thread::sleep(Duration::from_millis(2000));
    let memory: Vec<(u64, u64, u64, usize)> = (0..cfg.hosts)
        .map(|h| {
            let (rss, hwm) = memory_kib(pids[h]);
            (idle[h], rss, hwm, status_remote(&c, h))
        })
        .collect();

    // Dead-host GC: the last host's plugin is SIGKILLed.
    let dead = cfg.hosts - 1;
    let dead_id = c.hosts[dead].id.clone();
    let alive_key = format!("{}alive/{dead_id}", c.prefix);
    let ep_prefix = format!("{}endpoints/{VNI}/", c.prefix);
    let owner = format!("\"host\":\"{dead_id}\"");
    progress(&format!("SIGKILL the plugin of {dead_id}"));
    let killed = epoch_now();
    let k0 = Instant::now();
    c.hosts[dead].kill_plugin();
    let mut gc = GcTimes {
        host: dead_id.clone(),
        endpoints: cfg.per_host,
        ..GcTimes::default()
    };
    let limit = (cfg.lease_ttl + cfg.gc_grace + cfg.resync_interval) as f64 + cfg.settle_secs;
    let _ = wait_for(limit, || {
        if gc.alive_gone.is_none() && c.etcd.get_prefix(&alive_key).is_empty() {
            gc.alive_gone = Some(k0.elapsed().as_secs_f64());
        }
        if gc.records_gone.is_none()
            && !c
                .etcd
                .get_prefix(&ep_prefix)
                .iter()
                .any(|(_, v)| v.contains(&owner))
        {
            gc.records_gone = Some(k0.elapsed().as_secs_f64());
        }
        // etcdctl is a process per look; a few looks a second are enough.
        std::thread::sleep(Duration::from_millis(100));
        gc.records_gone.map(|_| ())
    });
    let cleaned = kernels_match(&c, &made, Some(dead), cfg.settle_secs);
    gc.kernels_equal = cleaned.is_ok();
    if let Err(e) = &cleaned {
        progress(&format!("kernels not clean of {dead_id}: {e}"));
    }
    std::thread::sleep(Duration::from_millis(500));

    let lines: Vec<Vec<String>> = monitors.into_iter().map(Monitor::stop).collect();
    let dev = format!("syvx{VNI}");
    let events: Vec<Events> = lines.iter().map(|l| Events::parse(l, &dev)).collect();
    for m in &mut made {
        let vtep = &c.hosts[m.host].vtep;
        let mut last: f64 = m.created;
        for (h, ev) in events.iter().enumerate() {
            if h == m.host {
                continue;
            }
            match ev.programmed(&m.ip, &m.mac, vtep) {
                Some(t) => last = last.max(t),
                None => m.missing_on.push(c.hosts[h].id.clone()),
            }
        }
        if m.missing_on.is_empty() {
            m.converged_ms = Some((last - m.created) * 1000.0);
        }
    }
    for (h, ev) in events.iter().enumerate() {
        if h == dead {
            continue;
        }
        let mut last: Option<f64> = Some(killed);
        for m in made.iter().filter(|m| m.host == dead) {
            let t = ev.removed(&m.ip, &m.mac, &c.hosts[dead].vtep);
            last = match (last, t) {
                (Some(a), Some(b)) if b >= killed => Some(a.max(b)),
                _ => None,
            };
        }
        gc.kernel_clean.push(last.map(|t| t - killed));
    }
    let result = ScaleResult {
        hosts: cfg.hosts,
        per_host: cfg.per_host,
        made,
        create_secs,
        revisions,
        writes_by_kind,
        kernels_equal: kernels.is_ok(),
        memory,
        gc,
        lease_ttl: cfg.lease_ttl,
        gc_grace: cfg.gc_grace,
        resync_interval: cfg.resync_interval,
    };
    (result, c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitor_lines_parsed() {
        assert_eq!(parse_ts("[1970-01-02T00:00:01.5]"), Some(86401.5));
        assert_eq!(
            parse_ts("[2026-12-03T00:42:02.756354]").map(|t| t as i64),
            Some(1_796_258_522)
        );
        let lines: Vec<String> = [
            "[1970-01-01T00:00:01.000000] 10.0.0.5 dev syvx1 lladdr 02:42:0A:00:00:05 PERMANENT ",
            "[1970-01-01T00:00:02.000000] 192.168.88.3 dev syvx1 lladdr 02:42:0a:00:00:05 NOARP PERMANENT ",
            "[1970-01-01T00:00:02.500000] 10.0.0.5 dev syvx1 FAILED ",
            "[1970-01-01T00:00:03.000000] Deleted 10.0.0.5 dev syvx1 FAILED ",
            "[1970-01-01T00:00:04.000000] Deleted 192.168.88.3 dev syvx1 lladdr 02:42:0a:00:00:05 NOARP PERMANENT ",
            "[1970-01-01T00:00:05.000000] 10.0.0.6 dev other lladdr 02:42:0a:00:00:06 PERMANENT ",
        ]
        .map(String::from)
        .to_vec();
        let e = Events::parse(&lines, "syvx1");
        let mac = "02:42:0a:00:00:05";
        assert_eq!(e.programmed("10.0.0.5", mac, "192.168.88.3"), Some(2.0));
        assert_eq!(e.removed("10.0.0.5", mac, "192.168.88.3"), Some(4.0));
        assert_eq!(
            e.programmed("10.0.0.6", "02:42:0a:00:00:06", "192.168.88.3"),
            None
        );
    }
}
