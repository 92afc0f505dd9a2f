//! Dead-host collection: the endpoints, memberships, address claims and
//! IPsec pair keys of hosts whose `alive/` key has been gone longer than the grace period are
//! deleted — each by a transaction that re-checks the host is still gone
//! and the record unchanged since the cache saw it.

use super::cache::ClusterCache;
use super::cluster::Cluster;
use super::records::alive_key;
use super::txn::{Guard, Guarded, Write};
use etcd_client::Client;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// A record some host owns, as the cache has it.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Owned {
    pub key: String,
    pub host: String,
    pub mod_revision: i64,
}

impl Owned {
    /// Deletes the record while its host stays gone and the record is as
    /// the cache saw it.
    pub fn collect(&self) -> Guarded {
        Guarded {
            when: vec![
                Guard::Absent(alive_key(&self.host)),
                Guard::ModRevision(self.key.clone(), self.mod_revision),
            ],
            then: vec![Write::Delete(self.key.clone())],
            or_read: None,
        }
    }
}

/// When each host was first seen gone (its `alive/` key missing).
#[derive(Default)]
pub(super) struct DeadHosts {
    since: HashMap<String, Instant>,
}

impl DeadHosts {
    /// Notes which owners are gone at `now` (and which came back), and
    /// returns the records of hosts gone for at least `grace`. A record the
    /// watch has not confirmed (revision 0) waits.
    pub fn collectable(
        &mut self,
        cache: &ClusterCache,
        now: Instant,
        grace: Duration,
    ) -> Vec<Owned> {
        let alive: Vec<&str> = cache
            .under("alive/")
            .map(|(k, _)| &k["alive/".len()..])
            .collect();
        let owned = owned_records(cache);
        self.since.retain(|h, _| !alive.contains(&h.as_str()));
        for o in &owned {
            if !alive.contains(&o.host.as_str()) {
                self.since.entry(o.host.clone()).or_insert(now);
            }
        }
        owned
            .into_iter()
            .filter(|o| {
                self.since
                    .get(&o.host)
                    .is_some_and(|since| now.duration_since(*since) >= grace)
                    && o.mod_revision != 0
            })
            .collect()
    }
}

/// The endpoints, memberships, claims and IPsec pair keys the cache holds
/// with their owner; shared claims (a gateway: owned by no host) are left
/// out. A pair's keys (`ipsec/<lower>/<higher>`) belong to their writer,
/// the lower host: the higher one removes those of a pair it leaves only
/// while the writer lives, so a writer gone for good leaves them here.
fn owned_records(cache: &ClusterCache) -> Vec<Owned> {
    let by_value = ["endpoints/", "ipam/", "members/"]
        .into_iter()
        .flat_map(|p| cache.under(p))
        .filter_map(|(k, (v, rev))| {
            let host = serde_json::from_slice::<serde_json::Value>(v)
                .ok()?
                .get("host")?
                .as_str()?
                .to_string();
            Some((k, host, *rev))
        });
    let pair_keys = cache.under("ipsec/").filter_map(|(k, (_, rev))| {
        let writer = k["ipsec/".len()..].split('/').next()?.to_string();
        Some((k, writer, *rev))
    });
    by_value
        .chain(pair_keys)
        .filter(|(_, host, _)| !host.is_empty())
        .map(|(k, host, mod_revision)| Owned {
            key: k.clone(),
            host,
            mod_revision,
        })
        .collect()
}

impl Cluster {
    /// Removes endpoints, members, claims and pair keys of hosts whose `alive/` key has
    /// been gone for longer than the grace period.
    pub(super) async fn collect_garbage(&self, c: &mut Client) {
        let due = {
            let cache = self.cache.read().unwrap();
            self.dead
                .lock()
                .unwrap()
                .collectable(&cache, Instant::now(), self.cfg.gc_grace)
        };
        for o in due {
            match self.txn(c, &o.collect()).await {
                Ok(r) if r.succeeded => {
                    let key = self.key(&o.key);
                    info!(key = %key, host = %o.host, "removed: its host has been gone longer than the grace period")
                }
                Ok(_) => {}
                Err(e) => warn!(error = %e, "garbage collection failed"),
            }
        }
    }
}
