//! The etcd session of the cluster agent: the lease behind `alive/<host>`,
//! registration, list and watch into the cache, and the own-key writer that
//! makes etcd hold what this host owns. The decisions are the cache's
//! (`cache.rs`) and the collector's (`gc.rs`); this file does the I/O.

use super::cache::Change;
use super::cluster::{Cluster, describe, etcd_err, hint};
use super::records::{AliveEntry, alive_key, node_key, ser};
use super::txn::{Guard, Guarded, Outcome};
use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, Identity,
    PutOptions, TlsOptions, Txn, TxnOp, TxnOpResponse, WatchOptions, WatchResponse,
};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use switchyard_core::Result;
use tracing::{debug, error, info, warn};

/// The file in the state dir that keeps this host's etcd lease
/// (`<host id> <lease id>`).
const LEASE_FILE: &str = "cluster-lease";

/// Own keys written per etcd transaction (etcd's default limit is 128
/// operations per transaction).
const OWN_WRITES_PER_TXN: usize = 100;

impl Cluster {
    pub(super) async fn client(&self) -> Result<Client> {
        self.client
            .get_or_try_init(|| async {
                // connect() is lazy: it does not fail for an unreachable
                // etcd (with a user it authenticates, so it does).
                let mut o = ConnectOptions::new()
                    .with_connect_timeout(Duration::from_secs(2))
                    .with_timeout(Duration::from_secs(5))
                    .with_require_leader(true);
                match &self.cfg.tls {
                    Ok(None) => {}
                    Ok(Some(t)) => {
                        let mut tls = TlsOptions::new();
                        if let Some(ca) = &t.ca {
                            tls = tls.ca_certificate(Certificate::from_pem(ca));
                        }
                        if let Some((cert, key)) = &t.identity {
                            tls = tls.identity(Identity::from_pem(cert, key));
                        }
                        o = o.with_tls(tls);
                    }
                    Err(e) => {
                        return Err(switchyard_core::Error::Conflict(format!(
                            "connecting to etcd: {e}"
                        )));
                    }
                }
                if let Some((user, password)) = &self.cfg.user {
                    o = o.with_user(user, password).with_auto_token_refresh(true);
                }
                Client::connect(&self.cfg.endpoints, Some(o))
                    .await
                    .map_err(|e| etcd_err(&self.cfg, "connecting", e))
            })
            .await
            .cloned()
    }

    /// Runs a guarded write on etcd.
    pub(super) async fn txn(
        &self,
        c: &mut Client,
        g: &Guarded,
    ) -> std::result::Result<Outcome, etcd_client::Error> {
        let r = c.txn(g.to_etcd(&self.cfg.prefix)).await?;
        Ok(Outcome::from(&r))
    }

    /// Runs a guarded write for a request; an unreachable etcd is an error
    /// that says `what` failed.
    pub(super) async fn txn_or_err(&self, g: &Guarded, what: &str) -> Result<Outcome> {
        if let Some(why) = self.problem() {
            return Err(switchyard_core::Error::Conflict(format!(
                "{what}: this host is not a member of the cluster: {why}"
            )));
        }
        let mut c = self.client().await?;
        self.txn(&mut c, g)
            .await
            .map_err(|e| etcd_err(&self.cfg, what, e))
    }

    /// Runs forever: registration, list/watch, re-assertion, GC.
    pub async fn run(self: Arc<Self>) {
        let mut backoff = Duration::from_millis(200);
        loop {
            let r = self.session().await;
            self.registered.store(false, Ordering::Release);
            if let Err(e) = &r
                && self.problem().is_none()
            {
                *self.last_error.lock().unwrap() = Some(format!("{e} — {}", hint(&self.cfg, e)));
            }
            match r {
                Ok(()) => backoff = Duration::from_millis(200),
                Err(e) if self.problem().is_some() => {
                    debug!(error = %e, "still fenced");
                    // What keeps this host out (another agent's lease, the
                    // other family's hosts) is gone within a lease's TTL
                    // once they are; look again then.
                    let ttl = Duration::from_secs(self.cfg.lease_ttl.max(1) as u64);
                    tokio::time::sleep(ttl).await;
                }
                Err(e) => {
                    warn!(error = %e, hint = hint(&self.cfg, &e), "etcd session ended; retrying (the kernel keeps its last state)");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

    /// The lease of the last session if etcd still has it (an etcd restart
    /// resets every lease's TTL; a short outage must not make this host
    /// look gone and come back), else a new one.
    async fn lease(&self, c: &mut Client) -> std::result::Result<i64, String> {
        let last = *self.lease.lock().unwrap();
        let last = last.or_else(|| self.saved_lease());
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
                .map_err(|e| describe(&e))?
                .id(),
        };
        *self.lease.lock().unwrap() = Some(lease);
        if last != Some(lease) {
            self.save_lease(lease);
        }
        Ok(lease)
    }

    fn lease_file(&self) -> Option<std::path::PathBuf> {
        self.cfg.state_dir.as_ref().map(|d| d.join(LEASE_FILE))
    }

    /// The lease the last run of the plugin kept in the state dir, if it
    /// was this identity's.
    pub(super) fn saved_lease(&self) -> Option<i64> {
        let text = std::fs::read_to_string(self.lease_file()?).ok()?;
        let (host, id) = text.trim().split_once(' ')?;
        (host == self.cfg.host_id).then(|| id.parse().ok())?
    }

    fn save_lease(&self, lease: i64) {
        let Some(path) = self.lease_file() else {
            return;
        };
        let tmp = path.with_extension("tmp");
        let text = format!("{} {lease}\n", self.cfg.host_id);
        if let Err(e) = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &path)) {
            warn!(path = %path.display(), error = %e, "cannot keep the etcd lease in the state dir; after a restart this host waits for its old lease to expire before joining");
        }
    }

    /// Claims `alive/<host>` for this agent's lease, and writes its node
    /// record, only if no other live agent holds the key: a live key on
    /// another lease is another agent with this host's identity (a cloned
    /// machine, or a copied state dir). Then this agent refuses to join,
    /// writes nothing and says why (`problem`), until the other is gone.
    async fn register(&self, c: &mut Client, lease: i64) -> std::result::Result<(), String> {
        let host = &self.cfg.host_id;
        let alive = self.key(&alive_key(host));
        let mine = ser(&AliveEntry {
            host: host.clone(),
            vtep: self.node.vtep,
        });
        let live = c
            .get(self.key("alive/"), Some(GetOptions::new().with_prefix()))
            .await
            .map_err(|e| describe(&e))?;
        let live: Vec<AliveEntry> = live
            .kvs()
            .iter()
            .filter_map(|kv| serde_json::from_slice(kv.value()).ok())
            .collect();
        if let Some(why) = vtep_family_clash(host, self.node.vtep, &live) {
            return Err(self.refuse(why));
        }
        let on_lease = PutOptions::new().with_lease(lease);
        let puts = vec![
            TxnOp::put(alive.clone(), mine, Some(on_lease)),
            TxnOp::put(self.key(&node_key(host)), ser(&self.node), None),
        ];
        let r = c
            .txn(
                Txn::new()
                    .when(vec![Compare::lease(alive.clone(), CompareOp::Equal, lease)])
                    .and_then(puts.clone())
                    .or_else(vec![TxnOp::get(alive.clone(), None)]),
            )
            .await
            .map_err(|e| describe(&e))?;
        let held = if r.succeeded() {
            None
        } else {
            // Not on our lease: free (a missing key's lease compares as 0)?
            let free = c
                .txn(
                    Txn::new()
                        .when(vec![Compare::create_revision(
                            alive.clone(),
                            CompareOp::Equal,
                            0,
                        )])
                        .and_then(puts)
                        .or_else(vec![TxnOp::get(alive.clone(), None)]),
                )
                .await
                .map_err(|e| describe(&e))?;
            if free.succeeded() {
                None
            } else {
                free.op_responses().into_iter().find_map(|op| match op {
                    TxnOpResponse::Get(g) => {
                        g.kvs().first().map(|kv| (kv.value().to_vec(), kv.lease()))
                    }
                    _ => None,
                })
            }
        };
        let Some((value, other_lease)) = held else {
            if let Some(was) = self.fenced.lock().unwrap().take() {
                info!(host = %host, was = %was, "what kept this host out of the cluster is gone: joining the cluster");
            }
            return Ok(());
        };
        let other_vtep = serde_json::from_slice::<AliveEntry>(&value)
            .map(|a| a.vtep.to_string())
            .unwrap_or_else(|_| "unknown (an older version)".into());
        Err(self.refuse(self.identity_taken(&other_vtep, other_lease)))
    }

    /// Keeps this host out of the cluster for `why` (logged once per
    /// reason): cluster writes are refused, local networks keep serving,
    /// and the agent looks again after a lease's time.
    fn refuse(&self, why: String) -> String {
        let mut fenced = self.fenced.lock().unwrap();
        if fenced.as_deref() != Some(why.as_str()) {
            error!("{why}");
        }
        *fenced = Some(why.clone());
        why
    }

    /// What is wrong when another live agent (at `other_vtep`, on
    /// `other_lease`) holds this host's identity, and what to do.
    pub(super) fn identity_taken(&self, other_vtep: &str, other_lease: i64) -> String {
        format!(
            "[cluster] host_id \"{}\" is in use by another live agent (VTEP {other_vtep}, etcd lease {other_lease:x}); this agent (VTEP {}) refuses to join the cluster while it lives, and its local networks keep serving. Two hosts share one identity (a cloned machine or a copied state dir?): give each host its own [cluster] host_id, or on the clone delete {} and restart",
            self.cfg.host_id,
            self.node.vtep,
            self.cfg
                .state_dir
                .as_ref()
                .map(|d| d.join(super::identity::HOST_ID_FILE).display().to_string())
                .unwrap_or_else(|| super::identity::HOST_ID_FILE.into()),
        )
    }

    /// Why the own-key writer stopped: `alive/<host>` is no longer on this
    /// agent's lease (it expired while etcd could not be reached, and
    /// perhaps another agent with this identity holds it now). The session
    /// ends; the next one registers again, or is fenced.
    fn identity_lost(&self) -> String {
        format!(
            "alive/{} is no longer on this agent's etcd lease (the lease expired, or another agent with [cluster] host_id \"{}\" holds it): nothing written; registering again",
            self.cfg.host_id, self.cfg.host_id
        )
    }

    /// One session: registers, lists, then watches until something fails.
    async fn session(&self) -> std::result::Result<(), String> {
        self.sessions.fetch_add(1, Ordering::Relaxed);
        self.watch_lag.lock().unwrap().restart();
        let mut c = self.client().await.map_err(|e| describe(&e))?;
        let lease = self.lease(&mut c).await?;
        let (mut keeper, mut ka) = c
            .lease_client()
            .keep_alive(lease)
            .await
            .map_err(|e| describe(&e))?;
        self.register(&mut c, lease).await?;
        self.registered.store(true, Ordering::Release);
        *self.last_error.lock().unwrap() = None;
        info!(host = %self.cfg.host_id, vtep = %self.node.vtep, "registered with etcd");
        let rev = self.list(&mut c).await?;
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
            .map_err(|e| describe(&e))?;
        let ttl = Duration::from_secs(self.cfg.lease_ttl.max(1) as u64);
        let mut keepalive = tokio::time::interval(ttl / 3);
        let mut housekeeping = tokio::time::interval(self.cfg.resync);
        let mut rotation = tokio::time::interval(self.cfg.key_rotation);
        rotation.tick().await;
        loop {
            tokio::select! {
                // The watch first: it confirms this host's own writes.
                biased;
                m = stream.message() => {
                    let m = m.map_err(|e| describe(&e))?.ok_or("watch stream ended")?;
                    if m.canceled() || m.compact_revision() > 0 {
                        return Err(format!("watch cancelled (compacted at {}); listing again", m.compact_revision()));
                    }
                    self.note_progress(&m);
                    if self.apply_watch(&m) {
                        self.kick.notify_one();
                    }
                    self.write_pair_keys(&mut c, false).await;
                }
                _ = keepalive.tick() => {
                    keeper.keep_alive().await.map_err(|e| describe(&e))?;
                    match tokio::time::timeout(ttl, ka.message()).await {
                        Ok(Ok(Some(r))) if r.ttl() > 0 => {
                            if let Some(h) = r.header() {
                                self.watch_lag.lock().unwrap().seen(h.revision());
                            }
                        }
                        other => return Err(format!("lease keep-alive failed: {other:?}")),
                    }
                    // etcd answers once the watch has sent everything up
                    // to now: the time that takes is the watch's lag.
                    match stream.request_progress().await {
                        Ok(()) => self.watch_lag.lock().unwrap().asked(std::time::Instant::now()),
                        Err(e) => debug!(error = %describe(&e), "watch progress request not sent"),
                    }
                }
                _ = self.kick.notified() => {
                    self.assert_own(&mut c).await?;
                    self.write_pair_keys(&mut c, false).await;
                }
                _ = rotation.tick() => self.write_pair_keys(&mut c, true).await,
                _ = housekeeping.tick() => {
                    self.assert_own(&mut c).await?;
                    self.collect_garbage(&mut c).await;
                }
            }
        }
    }

    /// What a watch response says about the cache's lag: events carry
    /// their revisions; a response without events, not the watch's
    /// creation, is the progress notification asked for at keep-alive.
    fn note_progress(&self, m: &WatchResponse) {
        let header = m.header().map(|h| h.revision()).unwrap_or(0);
        let progress = m.events().is_empty() && !m.created() && !m.canceled();
        let newest = m
            .events()
            .iter()
            .filter_map(|e| e.kv().map(|kv| kv.mod_revision()))
            .max()
            .unwrap_or(if progress { header } else { 0 });
        let mut w = self.watch_lag.lock().unwrap();
        w.seen(header);
        w.delivered(std::time::Instant::now(), newest, progress);
    }

    /// Applies a watch response to the cache and wakes the kernel
    /// reconcile; true if a key this host owns (or should own) changed.
    fn apply_watch(&self, m: &WatchResponse) -> bool {
        let mut touches_own = false;
        {
            let desired = self.desired.lock().unwrap();
            let mut cache = self.cache.write().unwrap();
            for ev in m.events() {
                let Some(kv) = ev.kv() else { continue };
                let Some(key) = kv.key().strip_prefix(self.cfg.prefix.as_bytes()) else {
                    continue;
                };
                let key = String::from_utf8_lossy(key).into_owned();
                let mod_revision = kv.mod_revision();
                let change = match ev.event_type() {
                    EventType::Put => Change::Put {
                        key,
                        value: kv.value().to_vec(),
                        mod_revision,
                    },
                    EventType::Delete => Change::Delete { key, mod_revision },
                };
                touches_own |= cache.apply(change, &desired);
            }
        }
        self.changed.notify_one();
        touches_own
    }

    /// Replaces the cache with a fresh list; returns its revision.
    async fn list(&self, c: &mut Client) -> std::result::Result<i64, String> {
        let r = c
            .get(
                self.cfg.prefix.clone(),
                Some(GetOptions::new().with_prefix()),
            )
            .await
            .map_err(|e| describe(&e))?;
        let rev = r.header().map(|h| h.revision()).unwrap_or(0);
        let prefix = self.cfg.prefix.as_bytes();
        let kvs = r.kvs().iter().filter_map(|kv| {
            let key = kv.key().strip_prefix(prefix)?;
            Some((
                String::from_utf8_lossy(key).into_owned(),
                kv.value().to_vec(),
                kv.mod_revision(),
            ))
        });
        self.cache.write().unwrap().replace(kvs);
        self.watch_lag
            .lock()
            .unwrap()
            .delivered(std::time::Instant::now(), rev, false);
        self.synced.store(true, Ordering::Release);
        debug!(revision = rev, "listed the cluster state");
        self.changed.notify_one();
        Ok(rev)
    }

    /// Writes the keys this host owns that etcd lacks (or has differently),
    /// quarantines endpoints whose address another host holds now, and
    /// deletes this host's endpoint and member keys it no longer wants.
    async fn assert_own(&self, c: &mut Client) -> std::result::Result<(), String> {
        let desired = self.desired.lock().unwrap().clone();
        let plan = self.cache.read().unwrap().own_key_plan(&desired);
        for (rel, holder) in plan.quarantine {
            if self.quarantined.lock().unwrap().insert(rel.clone()) {
                warn!(
                    key = %rel,
                    holder = %holder,
                    "endpoint quarantined: its address went to host {holder} while this host was gone; its link stays down — remove and recreate the container"
                );
                self.changed.notify_one();
            }
        }
        let lease = self
            .lease
            .lock()
            .unwrap()
            .ok_or("no etcd lease yet: registering again")?;
        let alive = alive_key(&self.cfg.host_id);
        // One transaction per batch (etcd allows 128 operations by
        // default): one etcd write for all that changed at once.
        for batch in plan.write.chunks(OWN_WRITES_PER_TXN) {
            let r = self
                .txn(c, &Guarded::put_all_while(alive.clone(), lease, batch))
                .await
                .map_err(|e| describe(&e))?;
            if !r.succeeded {
                return Err(self.identity_lost());
            }
            // Into the cache at once: until the watch echoes the write, a
            // second pass would otherwise write the same key again.
            let rev = r.revision;
            let mut cache = self.cache.write().unwrap();
            for (rel, v) in batch {
                cache.insert(rel.clone(), v.clone(), rev);
                debug!(key = %rel, "asserted");
            }
        }
        for (rel, v) in plan.withdraw {
            let mine =
                Guarded::delete_if(rel.clone(), v).also_when(Guard::OnLease(alive.clone(), lease));
            self.txn(c, &mine).await.map_err(|e| describe(&e))?;
            self.cache.write().unwrap().remove(&rel);
            debug!(key = %self.key(&rel), "withdrawn");
        }
        Ok(())
    }
}

/// Why a host whose VTEP is `own` may not join a cluster whose live hosts
/// are `live`: a VXLAN device sends over one address family, so a host
/// with an IPv6 VTEP cannot reach one with an IPv4 VTEP, or back. The
/// hosts already there win; the newcomer is told what to change.
pub(super) fn vtep_family_clash(host: &str, own: IpAddr, live: &[AliveEntry]) -> Option<String> {
    let family = |a: &IpAddr| if a.is_ipv6() { "IPv6" } else { "IPv4" };
    let others: Vec<String> = live
        .iter()
        .filter(|a| a.host != host && a.vtep.is_ipv6() != own.is_ipv6())
        .map(|a| format!("{} at {}", a.host, a.vtep))
        .collect();
    if others.is_empty() {
        return None;
    }
    let theirs = if own.is_ipv6() { "IPv4" } else { "IPv6" };
    Some(format!(
        "this host's VTEP {own} is {}, but the cluster's live hosts use {theirs} VTEPs ({}): a VXLAN device sends over one address family, so they could not reach each other. This host refuses to join the cluster while they live, and its local networks keep serving. Set [vxlan] local_ip to this host's {theirs} address on the underlay (or move every host to one family)",
        family(&own),
        others.join(", ")
    ))
}
