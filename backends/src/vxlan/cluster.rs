//! The multi-host control plane on etcd (`../shared/docs/multihost.md` §6).
//!
//! One agent task per plugin, level-triggered:
//! register (`nodes/<host>` persistent, `alive/<host>` on a lease) → list the
//! prefix → watch from the list's revision + 1 → on any watch failure or
//! compaction, list again. The cache it keeps is what the kernel reconcile
//! reads; nothing is programmed before the first list, and nothing is
//! flushed because etcd is unreachable.
//!
//! This host's own keys (its endpoints and the networks it joined) are kept
//! as *desired* state in memory and written by the agent until etcd has
//! them: so a host that returns, or a plugin that restarts, re-asserts what
//! it owns, and stale keys of its own are deleted. Endpoints of hosts whose
//! `alive/` key has been gone longer than the grace period are removed,
//! guarded by a transaction that re-checks the host is still gone.

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, PutOptions, Txn, TxnOp,
    WatchOptions,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use switchyard_core::mac::MacAddr;
use switchyard_core::{Error, Result};
use tokio::sync::Notify;
use tracing::{debug, info, warn};

#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub endpoints: Vec<String>,
    pub host_id: String,
    /// Ends with '/'.
    pub prefix: String,
    pub lease_ttl: i64,
    pub gc_grace: Duration,
    pub resync: Duration,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct NodeRecord {
    pub vtep: IpAddr,
    pub underlay_mtu: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct NetworkEntry {
    pub vni: u32,
    pub subnets: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EndpointEntry {
    pub host: String,
    pub ip: Option<IpAddr>,
    pub ip6: Option<IpAddr>,
    pub mac: MacAddr,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ClaimEntry {
    pub host: String,
}

/// A remote endpoint as the kernel needs it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RemoteEndpoint {
    pub ips: Vec<IpAddr>,
    pub mac: MacAddr,
    pub vtep: IpAddr,
}

#[derive(Default)]
struct Cache {
    kv: BTreeMap<String, (Vec<u8>, i64)>,
}

pub struct Cluster {
    cfg: ClusterConfig,
    node: NodeRecord,
    client: tokio::sync::OnceCell<Client>,
    cache: RwLock<Cache>,
    synced: AtomicBool,
    /// Keys this host owns and wants in etcd (relative to the prefix).
    desired: Mutex<BTreeMap<String, Vec<u8>>>,
    /// Wakes the agent (desired keys changed).
    kick: Notify,
    /// Wakes the kernel reconcile (the cache changed).
    pub changed: Arc<Notify>,
    dead_since: Mutex<HashMap<String, Instant>>,
    /// This host's endpoints whose address another host holds now (it was
    /// given away while this host was gone): never re-asserted, their links
    /// are kept down.
    quarantined: Mutex<std::collections::BTreeSet<String>>,
    /// The lease behind `alive/<host>`, kept across sessions of this process.
    lease: Mutex<Option<i64>>,
}

fn ser<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

fn etcd_err(cfg: &ClusterConfig, what: &str, e: etcd_client::Error) -> Error {
    Error::Conflict(format!(
        "{what}: etcd at {} did not answer ({e}); multi-host VXLAN needs the cluster store — check [cluster] etcd_endpoints and that etcd runs",
        cfg.endpoints.join(",")
    ))
}

impl Cluster {
    pub fn new(cfg: ClusterConfig, node: NodeRecord) -> Arc<Cluster> {
        Arc::new(Cluster {
            cfg,
            node,
            client: tokio::sync::OnceCell::new(),
            cache: RwLock::new(Cache::default()),
            synced: AtomicBool::new(false),
            desired: Mutex::new(BTreeMap::new()),
            kick: Notify::new(),
            changed: Arc::new(Notify::new()),
            dead_since: Mutex::new(HashMap::new()),
            quarantined: Mutex::new(Default::default()),
            lease: Mutex::new(None),
        })
    }

    pub fn host_id(&self) -> &str {
        &self.cfg.host_id
    }

    pub fn node(&self) -> &NodeRecord {
        &self.node
    }

    pub fn endpoints_config(&self) -> &[String] {
        &self.cfg.endpoints
    }

    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    async fn client(&self) -> Result<Client> {
        self.client
            .get_or_try_init(|| async {
                // connect() is lazy: it does not fail for an unreachable etcd.
                Client::connect(
                    &self.cfg.endpoints,
                    Some(
                        ConnectOptions::new()
                            .with_connect_timeout(Duration::from_secs(2))
                            .with_timeout(Duration::from_secs(5))
                            .with_require_leader(true),
                    ),
                )
                .await
                .map_err(|e| etcd_err(&self.cfg, "connecting", e))
            })
            .await
            .cloned()
    }

    fn key(&self, rel: &str) -> String {
        format!("{}{rel}", self.cfg.prefix)
    }

    // ---- what other parts ask ------------------------------------------------

    /// Makes this host a member of network `vni`, creating the cluster-wide
    /// record if it is new. A VNI already used with other subnets is refused.
    pub async fn join_network(&self, entry: &NetworkEntry) -> Result<()> {
        let mut c = self.client().await?;
        let key = self.key(&format!("networks/{}", entry.vni));
        let txn = Txn::new()
            .when(vec![Compare::create_revision(
                key.clone(),
                CompareOp::Equal,
                0,
            )])
            .and_then(vec![TxnOp::put(key.clone(), ser(entry), None)])
            .or_else(vec![TxnOp::get(key.clone(), None)]);
        let r = c
            .txn(txn)
            .await
            .map_err(|e| etcd_err(&self.cfg, "creating the VXLAN network", e))?;
        if !r.succeeded() {
            for op in r.op_responses() {
                if let etcd_client::TxnOpResponse::Get(g) = op
                    && let Some(kv) = g.kvs().first()
                {
                    let existing: NetworkEntry =
                        serde_json::from_slice(kv.value()).map_err(|e| {
                            Error::Store(format!(
                                "networks/{} in etcd is not understood: {e}",
                                entry.vni
                            ))
                        })?;
                    if existing.subnets != entry.subnets {
                        return Err(Error::conflict(format!(
                            "VNI {} is already used in the cluster by a network with subnet {}; create this network with the same --subnet to join it, or choose another vni",
                            entry.vni,
                            existing.subnets.join(", ")
                        )));
                    }
                }
            }
        }
        self.want(
            format!("members/{}/{}", entry.vni, self.cfg.host_id),
            ser(&ClaimEntry {
                host: self.cfg.host_id.clone(),
            }),
        );
        Ok(())
    }

    /// After a restart: this host is still a member of `vni`.
    pub fn rejoin(&self, vni: u32) {
        self.want(
            format!("members/{vni}/{}", self.cfg.host_id),
            ser(&ClaimEntry {
                host: self.cfg.host_id.clone(),
            }),
        );
    }

    /// Leaves network `vni`; the last host to leave removes the network
    /// record too (so its VNI can be used again), in one transaction that
    /// only succeeds while no member and no endpoint of the VNI is left.
    pub async fn leave_network(&self, vni: u32, subnets: &[String]) {
        let member = format!("members/{vni}/{}", self.cfg.host_id);
        self.unwant(&member);
        let Ok(mut c) = self.client().await else {
            return;
        };
        let _ = c.delete(self.key(&member), None).await;
        let txn = Txn::new()
            .when(vec![
                Compare::version(self.key(&format!("members/{vni}/")), CompareOp::Equal, 0)
                    .with_prefix(),
                Compare::version(self.key(&format!("endpoints/{vni}/")), CompareOp::Equal, 0)
                    .with_prefix(),
            ])
            .and_then(vec![TxnOp::delete(
                self.key(&format!("networks/{vni}")),
                None,
            )]);
        match c.txn(txn).await {
            Ok(r) if r.succeeded() => {
                info!(vni, "last host left: network record removed");
                self.release_shared_claims(&mut c, subnets).await;
            }
            Ok(_) => {}
            Err(e) => {
                warn!(vni, error = %e, "could not leave the network in etcd; its record stays")
            }
        }
    }

    /// Deletes the shared (gateway) address claims in `subnets`, guarded:
    /// only while they are still shared claims.
    async fn release_shared_claims(&self, c: &mut Client, subnets: &[String]) {
        let shared = ser(&ClaimEntry {
            host: String::new(),
        });
        let keys: Vec<String> = {
            let cache = self.cache.read().unwrap();
            let ipam = self.key("ipam/");
            cache
                .kv
                .iter()
                .filter(|(k, (v, _))| {
                    *v == shared
                        && k.strip_prefix(&ipam).is_some_and(|rel| {
                            subnets.iter().any(|s| {
                                rel.split('/').next().is_some_and(|pool| {
                                    pool.ends_with(&format!("_{}", s.replace('/', "_")))
                                })
                            })
                        })
                })
                .map(|(k, _)| k.clone())
                .collect()
        };
        for k in keys {
            let txn = Txn::new()
                .when(vec![Compare::value(
                    k.clone(),
                    CompareOp::Equal,
                    shared.clone(),
                )])
                .and_then(vec![TxnOp::delete(k.clone(), None)]);
            if c.txn(txn).await.is_ok() {
                self.cache.write().unwrap().kv.remove(&k);
                debug!(key = %k, "released the shared gateway claim");
            }
        }
    }

    /// Endpoints of this host in quarantine (`endpoints/<vni>/<id>` keys).
    pub fn quarantined(&self) -> Vec<String> {
        self.quarantined.lock().unwrap().iter().cloned().collect()
    }

    /// Whether the cache knows network `vni` (for VNI allocation).
    pub fn vni_taken(&self, vni: u32) -> bool {
        self.cache
            .read()
            .unwrap()
            .kv
            .contains_key(&self.key(&format!("networks/{vni}")))
    }

    /// Makes this host's endpoint `ep` of network `vni` known cluster-wide
    /// (written by the agent until etcd has it).
    pub fn assert_endpoint(&self, vni: u32, ep: &switchyard_core::model::EndpointRecord) {
        let Some(mac) = ep.mac else { return };
        let entry = EndpointEntry {
            host: self.cfg.host_id.clone(),
            ip: ep.ipv4.map(|a| a.addr()),
            ip6: ep.ipv6.map(|a| a.addr()),
            mac,
        };
        self.want(format!("endpoints/{vni}/{}", ep.id), ser(&entry));
    }

    pub fn withdraw_endpoint(&self, vni: u32, endpoint_id: &str) {
        let key = format!("endpoints/{vni}/{endpoint_id}");
        self.quarantined.lock().unwrap().remove(&key);
        self.unwant(&key);
    }

    /// Claims `ip` in `pool` for this host (create-only), cluster-wide.
    pub async fn claim(&self, pool: &str, ip: IpAddr) -> Result<bool> {
        let mut c = self.client().await?;
        let key = self.key(&format!("ipam/{}/{ip}", pool.replace('/', "_")));
        let txn = Txn::new()
            .when(vec![Compare::create_revision(
                key.clone(),
                CompareOp::Equal,
                0,
            )])
            .and_then(vec![TxnOp::put(
                key.clone(),
                ser(&ClaimEntry {
                    host: self.cfg.host_id.clone(),
                }),
                None,
            )]);
        let r = c
            .txn(txn)
            .await
            .map_err(|e| etcd_err(&self.cfg, "claiming an address", e))?;
        if r.succeeded() {
            self.cache.write().unwrap().kv.insert(
                key,
                (
                    ser(&ClaimEntry {
                        host: self.cfg.host_id.clone(),
                    }),
                    0,
                ),
            );
        }
        Ok(r.succeeded())
    }

    /// Claims `ip` as the gateway of `pool`: shared by every host (each
    /// host's dockerd asks for the same gateway), never collected.
    pub async fn claim_shared(&self, pool: &str, ip: IpAddr) -> Result<bool> {
        let mut c = self.client().await?;
        let key = self.key(&format!("ipam/{}/{ip}", pool.replace('/', "_")));
        let shared = ser(&ClaimEntry {
            host: String::new(),
        });
        let txn = Txn::new()
            .when(vec![Compare::create_revision(
                key.clone(),
                CompareOp::Equal,
                0,
            )])
            .and_then(vec![TxnOp::put(key.clone(), shared.clone(), None)])
            .or_else(vec![TxnOp::get(key.clone(), None)]);
        let r = c
            .txn(txn)
            .await
            .map_err(|e| etcd_err(&self.cfg, "claiming a gateway address", e))?;
        if r.succeeded() {
            return Ok(true);
        }
        Ok(r.op_responses().iter().any(|op| {
            matches!(op, etcd_client::TxnOpResponse::Get(g) if g.kvs().first().is_some_and(|kv| kv.value() == shared.as_slice()))
        }))
    }

    /// Who holds `ip` in `pool`, as far as the cache knows.
    pub fn claimed_by(&self, pool: &str, ip: IpAddr) -> Option<String> {
        let key = self.key(&format!("ipam/{}/{ip}", pool.replace('/', "_")));
        let c = self.cache.read().unwrap();
        c.kv.get(&key)
            .and_then(|(v, _)| serde_json::from_slice::<ClaimEntry>(v).ok())
            .map(|c| c.host)
    }

    /// Releases a claim this host holds (guarded: never another host's).
    pub async fn release(&self, pool: &str, ip: IpAddr) -> Result<()> {
        let mut c = self.client().await?;
        let key = self.key(&format!("ipam/{}/{ip}", pool.replace('/', "_")));
        let mine = ser(&ClaimEntry {
            host: self.cfg.host_id.clone(),
        });
        let txn = Txn::new()
            .when(vec![Compare::value(key.clone(), CompareOp::Equal, mine)])
            .and_then(vec![TxnOp::delete(key.clone(), None)]);
        c.txn(txn)
            .await
            .map_err(|e| etcd_err(&self.cfg, "releasing an address", e))?;
        self.cache.write().unwrap().kv.remove(&key);
        Ok(())
    }

    /// Remote endpoints of network `vni`: every endpoint of another host
    /// whose node record (VTEP) is known.
    pub fn remote_endpoints(&self, vni: u32) -> Vec<RemoteEndpoint> {
        let c = self.cache.read().unwrap();
        let nodes: HashMap<String, NodeRecord> =
            c.kv.range(self.key("nodes/")..)
                .take_while(|(k, _)| k.starts_with(&self.key("nodes/")))
                .filter_map(|(k, (v, _))| {
                    let host = k.strip_prefix(&self.key("nodes/"))?.to_string();
                    Some((host, serde_json::from_slice(v).ok()?))
                })
                .collect();
        let prefix = self.key(&format!("endpoints/{vni}/"));
        let mut out: Vec<RemoteEndpoint> =
            c.kv.range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .filter_map(|(_, (v, _))| serde_json::from_slice::<EndpointEntry>(v).ok())
                .filter(|e| e.host != self.cfg.host_id)
                .filter_map(|e| {
                    let vtep = nodes.get(&e.host)?.vtep;
                    Some(RemoteEndpoint {
                        ips: e.ip.into_iter().chain(e.ip6).collect(),
                        mac: e.mac,
                        vtep,
                    })
                })
                .collect();
        out.sort();
        out
    }

    /// Hosts (other than this one) with endpoints on `vni`, with their VTEPs.
    pub fn peers(&self, vni: u32) -> Vec<(String, IpAddr)> {
        let mut v: Vec<(String, IpAddr)> = Vec::new();
        let c = self.cache.read().unwrap();
        let prefix = self.key(&format!("members/{vni}/"));
        for (k, _) in
            c.kv.range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
        {
            let host = &k[prefix.len()..];
            if host == self.cfg.host_id {
                continue;
            }
            if let Some((n, _)) = c.kv.get(&self.key(&format!("nodes/{host}")))
                && let Ok(n) = serde_json::from_slice::<NodeRecord>(n)
            {
                v.push((host.to_string(), n.vtep));
            }
        }
        v
    }

    fn want(&self, rel: String, value: Vec<u8>) {
        self.desired.lock().unwrap().insert(rel, value);
        self.kick.notify_one();
    }

    fn unwant(&self, rel: &str) {
        self.desired.lock().unwrap().remove(rel);
        self.kick.notify_one();
    }

    // ---- the agent ---------------------------------------------------------------

    /// Runs forever: registration, list/watch, re-assertion, GC.
    pub async fn run(self: Arc<Self>) {
        let mut backoff = Duration::from_millis(200);
        loop {
            match self.session().await {
                Ok(()) => backoff = Duration::from_millis(200),
                Err(e) => {
                    warn!(error = %e, "etcd session ended; retrying (the kernel keeps its last state)");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

    /// One session: registers, lists, then watches until something fails.
    async fn session(&self) -> std::result::Result<(), String> {
        let mut c = self.client().await.map_err(|e| e.to_string())?;
        // Resume the lease of the last session if etcd still has it (an
        // etcd restart resets every lease's TTL; a short outage must not
        // make this host look gone and come back), else grant a new one.
        let last = *self.lease.lock().unwrap();
        let resumable = match last {
            Some(id) => c
                .lease_client()
                .time_to_live(id, None)
                .await
                .map(|r| r.ttl() > 0)
                .unwrap_or(false),
            None => false,
        };
        let lease = match (last, resumable) {
            (Some(id), true) => id,
            _ => c
                .lease_client()
                .grant(self.cfg.lease_ttl, None)
                .await
                .map_err(|e| e.to_string())?
                .id(),
        };
        *self.lease.lock().unwrap() = Some(lease);
        let (mut keeper, mut ka) = c
            .lease_client()
            .keep_alive(lease)
            .await
            .map_err(|e| e.to_string())?;
        c.put(
            self.key(&format!("nodes/{}", self.cfg.host_id)),
            ser(&self.node),
            None,
        )
        .await
        .map_err(|e| e.to_string())?;
        c.put(
            self.key(&format!("alive/{}", self.cfg.host_id)),
            ser(&ClaimEntry {
                host: self.cfg.host_id.clone(),
            }),
            Some(PutOptions::new().with_lease(lease)),
        )
        .await
        .map_err(|e| e.to_string())?;
        info!(host = %self.cfg.host_id, vtep = %self.node.vtep, "registered with etcd");
        let mut rev = self.list(&mut c).await?;
        self.assert_own(&mut c).await?;
        let mut stream = c
            .watch(
                self.cfg.prefix.clone(),
                Some(
                    WatchOptions::new()
                        .with_prefix()
                        .with_prev_key()
                        .with_start_revision(rev + 1),
                ),
            )
            .await
            .map_err(|e| e.to_string())?;
        let ttl = Duration::from_secs(self.cfg.lease_ttl.max(1) as u64);
        let mut keepalive = tokio::time::interval(ttl / 3);
        let mut housekeeping = tokio::time::interval(self.cfg.resync);
        loop {
            tokio::select! {
                // The watch first: it confirms this host's own writes.
                biased;
                m = stream.message() => {
                    let m = m.map_err(|e| e.to_string())?.ok_or("watch stream ended")?;
                    if m.canceled() || m.compact_revision() > 0 {
                        return Err(format!("watch cancelled (compacted at {}); listing again", m.compact_revision()));
                    }
                    let mut cache = self.cache.write().unwrap();
                    let mut touches_own = false;
                    for ev in m.events() {
                        let Some(kv) = ev.kv() else { continue };
                        let key = String::from_utf8_lossy(kv.key()).into_owned();
                        // Only a change to a key this host owns (or should
                        // own) can make it write: e.g. GC removed one.
                        if let Some(rel) = key.strip_prefix(&self.cfg.prefix) {
                            let desired = self.desired.lock().unwrap();
                            touches_own |= match ev.event_type() {
                                EventType::Delete => desired.contains_key(rel),
                                EventType::Put => {
                                    self.is_mine(kv.value())
                                        && desired.get(rel).map(Vec::as_slice) != Some(kv.value())
                                }
                            };
                        }
                        let stale = cache.kv.get(&key).is_some_and(|(_, r)| *r >= kv.mod_revision() && *r != 0);
                        match ev.event_type() {
                            EventType::Put if !stale => { cache.kv.insert(key, (kv.value().to_vec(), kv.mod_revision())); }
                            EventType::Delete if !stale => { cache.kv.remove(&key); }
                            _ => {}
                        }
                        rev = rev.max(kv.mod_revision());
                    }
                    drop(cache);
                    self.changed.notify_one();
                    if touches_own {
                        self.kick.notify_one();
                    }
                }
                _ = keepalive.tick() => {
                    keeper.keep_alive().await.map_err(|e| e.to_string())?;
                    match tokio::time::timeout(ttl, ka.message()).await {
                        Ok(Ok(Some(r))) if r.ttl() > 0 => {}
                        other => return Err(format!("lease keep-alive failed: {other:?}")),
                    }
                }
                _ = self.kick.notified() => self.assert_own(&mut c).await?,
                _ = housekeeping.tick() => {
                    self.assert_own(&mut c).await?;
                    self.collect_garbage(&mut c).await;
                }
            }
        }
    }

    /// Replaces the cache with a fresh list; returns its revision.
    async fn list(&self, c: &mut Client) -> std::result::Result<i64, String> {
        let r = c
            .get(
                self.cfg.prefix.clone(),
                Some(GetOptions::new().with_prefix()),
            )
            .await
            .map_err(|e| e.to_string())?;
        let rev = r.header().map(|h| h.revision()).unwrap_or(0);
        let kv = r
            .kvs()
            .iter()
            .map(|kv| {
                (
                    String::from_utf8_lossy(kv.key()).into_owned(),
                    (kv.value().to_vec(), kv.mod_revision()),
                )
            })
            .collect();
        self.cache.write().unwrap().kv = kv;
        self.synced.store(true, Ordering::Release);
        debug!(revision = rev, "listed the cluster state");
        self.changed.notify_one();
        Ok(rev)
    }

    /// Writes the keys this host owns that etcd lacks (or has differently),
    /// and deletes this host's endpoint and member keys it no longer wants.
    async fn assert_own(&self, c: &mut Client) -> std::result::Result<(), String> {
        let desired = self.desired.lock().unwrap().clone();
        let (missing, extra): (Vec<(String, Vec<u8>)>, Vec<String>) = {
            let cache = self.cache.read().unwrap();
            let missing = desired
                .iter()
                .filter(|(k, v)| {
                    cache
                        .kv
                        .get(&self.key(k))
                        .map(|(cv, _)| cv != *v)
                        .unwrap_or(true)
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let extra = cache
                .kv
                .iter()
                .filter_map(|(k, (v, _))| {
                    let rel = k.strip_prefix(&self.cfg.prefix)?;
                    ((rel.starts_with("endpoints/") || rel.starts_with("members/"))
                        && !desired.contains_key(rel)
                        && self.is_mine(v))
                    .then(|| k.clone())
                })
                .collect();
            (missing, extra)
        };
        for (rel, v) in missing {
            if let Some(holder) = self.address_taken_elsewhere(&rel, &v) {
                if self.quarantined.lock().unwrap().insert(rel.clone()) {
                    warn!(
                        key = %rel,
                        holder = %holder,
                        "endpoint quarantined: its address went to host {holder} while this host was gone; its link stays down — remove and recreate the container"
                    );
                    self.changed.notify_one();
                }
                continue;
            }
            let r = c
                .put(self.key(&rel), v.clone(), None)
                .await
                .map_err(|e| e.to_string())?;
            // Into the cache at once: until the watch echoes the write, a
            // second pass would otherwise write the same key again.
            let rev = r.header().map(|h| h.revision()).unwrap_or(0);
            self.cache
                .write()
                .unwrap()
                .kv
                .insert(self.key(&rel), (v, rev));
            debug!(key = %rel, "asserted");
        }
        for k in extra {
            let mine = self
                .cache
                .read()
                .unwrap()
                .kv
                .get(&k)
                .map(|(v, _)| v.clone());
            if let Some(v) = mine {
                let txn = Txn::new()
                    .when(vec![Compare::value(k.clone(), CompareOp::Equal, v)])
                    .and_then(vec![TxnOp::delete(k.clone(), None)]);
                c.txn(txn).await.map_err(|e| e.to_string())?;
                self.cache.write().unwrap().kv.remove(&k);
                debug!(key = %k, "withdrawn");
            }
        }
        Ok(())
    }

    /// Whether a record names this host as its owner. Records are written
    /// by this code with `host` first, so a prefix test does without parsing.
    fn is_mine(&self, value: &[u8]) -> bool {
        let head = format!(
            "{{\"host\":{}",
            serde_json::Value::String(self.cfg.host_id.clone())
        );
        value.starts_with(head.as_bytes())
    }

    /// The host that now holds the address of endpoint record `rel`/`value`
    /// in the same VNI, if another does.
    fn address_taken_elsewhere(&self, rel: &str, value: &[u8]) -> Option<String> {
        let vni = rel.strip_prefix("endpoints/")?.split('/').next()?;
        let mine: EndpointEntry = serde_json::from_slice(value).ok()?;
        let prefix = self.key(&format!("endpoints/{vni}/"));
        let cache = self.cache.read().unwrap();
        cache
            .kv
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(k, _)| !k.ends_with(rel))
            .filter_map(|(_, (v, _))| serde_json::from_slice::<EndpointEntry>(v).ok())
            .find(|e| {
                e.host != self.cfg.host_id
                    && ((mine.ip.is_some() && e.ip == mine.ip)
                        || (mine.ip6.is_some() && e.ip6 == mine.ip6))
            })
            .map(|e| e.host)
    }

    /// Removes endpoints, members and claims of hosts whose `alive/` key has
    /// been gone for longer than the grace period.
    async fn collect_garbage(&self, c: &mut Client) {
        let alive: Vec<String> = {
            let cache = self.cache.read().unwrap();
            let p = self.key("alive/");
            cache
                .kv
                .keys()
                .filter_map(|k| k.strip_prefix(&p).map(str::to_string))
                .collect()
        };
        let owners: Vec<(String, String, i64)> = {
            let cache = self.cache.read().unwrap();
            cache
                .kv
                .iter()
                .filter_map(|(k, (v, rev))| {
                    let rel = k.strip_prefix(&self.cfg.prefix)?;
                    if !(rel.starts_with("endpoints/")
                        || rel.starts_with("members/")
                        || rel.starts_with("ipam/"))
                    {
                        return None;
                    }
                    let host = serde_json::from_slice::<serde_json::Value>(v)
                        .ok()?
                        .get("host")?
                        .as_str()?
                        .to_string();
                    if host.is_empty() {
                        return None; // shared (a gateway): owned by no host
                    }
                    Some((k.clone(), host, *rev))
                })
                .collect()
        };
        let now = Instant::now();
        let mut dead = self.dead_since.lock().unwrap().clone();
        dead.retain(|h, _| !alive.contains(h));
        for (_, host, _) in &owners {
            if !alive.contains(host) {
                dead.entry(host.clone()).or_insert(now);
            }
        }
        *self.dead_since.lock().unwrap() = dead.clone();
        for (key, host, rev) in owners {
            let Some(since) = dead.get(&host) else {
                continue;
            };
            if now.duration_since(*since) < self.cfg.gc_grace || rev == 0 {
                continue;
            }
            let txn = Txn::new()
                .when(vec![
                    Compare::create_revision(
                        self.key(&format!("alive/{host}")),
                        CompareOp::Equal,
                        0,
                    ),
                    Compare::mod_revision(key.clone(), CompareOp::Equal, rev),
                ])
                .and_then(vec![TxnOp::delete(key.clone(), None)]);
            match c.txn(txn).await {
                Ok(r) if r.succeeded() => {
                    info!(key = %key, host = %host, "removed: its host has been gone longer than the grace period")
                }
                Ok(_) => {}
                Err(e) => warn!(error = %e, "garbage collection failed"),
            }
        }
    }
}
