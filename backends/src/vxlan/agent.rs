//! The etcd session of the cluster agent: the lease behind `alive/<host>`,
//! registration, list and watch into the cache, and the own-key writer that
//! makes etcd hold what this host owns. The decisions are the cache's
//! (`cache.rs`) and the collector's (`gc.rs`); this file does the I/O.

use super::cache::Change;
use super::cluster::{Cluster, etcd_err};
use super::records::{alive_key, held_by, node_key, ser};
use super::txn::{Guarded, Outcome};
use etcd_client::{
    Client, ConnectOptions, EventType, GetOptions, PutOptions, WatchOptions, WatchResponse,
};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use switchyard_core::Result;
use tracing::{debug, info, warn};

impl Cluster {
    pub(super) async fn client(&self) -> Result<Client> {
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
        let mut c = self.client().await?;
        self.txn(&mut c, g)
            .await
            .map_err(|e| etcd_err(&self.cfg, what, e))
    }

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

    /// The lease of the last session if etcd still has it (an etcd restart
    /// resets every lease's TTL; a short outage must not make this host
    /// look gone and come back), else a new one.
    async fn lease(&self, c: &mut Client) -> std::result::Result<i64, String> {
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
        Ok(lease)
    }

    /// One session: registers, lists, then watches until something fails.
    async fn session(&self) -> std::result::Result<(), String> {
        let mut c = self.client().await.map_err(|e| e.to_string())?;
        let lease = self.lease(&mut c).await?;
        let (mut keeper, mut ka) = c
            .lease_client()
            .keep_alive(lease)
            .await
            .map_err(|e| e.to_string())?;
        let host = &self.cfg.host_id;
        c.put(self.key(&node_key(host)), ser(&self.node), None)
            .await
            .map_err(|e| e.to_string())?;
        let on_lease = PutOptions::new().with_lease(lease);
        c.put(self.key(&alive_key(host)), held_by(host), Some(on_lease))
            .await
            .map_err(|e| e.to_string())?;
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
                    if self.apply_watch(&m) {
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
            .map_err(|e| e.to_string())?;
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
        for (rel, v) in plan.write {
            let r = c
                .put(self.key(&rel), v.clone(), None)
                .await
                .map_err(|e| e.to_string())?;
            // Into the cache at once: until the watch echoes the write, a
            // second pass would otherwise write the same key again.
            let rev = r.header().map(|h| h.revision()).unwrap_or(0);
            self.cache.write().unwrap().insert(rel.clone(), v, rev);
            debug!(key = %rel, "asserted");
        }
        for (rel, v) in plan.withdraw {
            self.txn(c, &Guarded::delete_if(rel.clone(), v))
                .await
                .map_err(|e| e.to_string())?;
            self.cache.write().unwrap().remove(&rel);
            debug!(key = %self.key(&rel), "withdrawn");
        }
        Ok(())
    }
}
