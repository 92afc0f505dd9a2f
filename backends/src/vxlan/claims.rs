//! Cluster-wide address claims (`ipam/<pool>/<ip>` in etcd): the IPAM
//! driver's `Claims` when a cluster is configured. A claim is created only
//! if no host holds the address; a gateway is one claim shared by every
//! host (its record names no host) and is never collected; a host releases
//! only what it holds.

use super::cluster::Cluster;
use super::records::{claim_key, held_by};
use super::txn::Guarded;
use std::net::IpAddr;
use switchyard_core::store::{ClaimFuture, Claims, Holder, Owner};
use tracing::debug;

/// Claims `ip` of `pool` for `host` ("" for every host), if no one holds it.
pub(super) fn claim(pool: &str, ip: IpAddr, host: &str) -> Guarded {
    Guarded::create(claim_key(pool, ip), held_by(host))
}

/// Deletes `key` while it is still a shared claim.
pub(super) fn release_shared(key: &str) -> Guarded {
    Guarded::delete_if(key.to_string(), held_by(""))
}

impl Claims for Cluster {
    fn cluster_wide(&self) -> bool {
        true
    }

    /// Cluster claims name the host, not the asker (`_owner` is not kept).
    fn claim<'a>(
        &'a self,
        pool: &'a str,
        ip: IpAddr,
        _owner: Option<&'a Owner>,
    ) -> ClaimFuture<'a, bool> {
        Box::pin(async move {
            let host = self.host_id();
            let r = self
                .txn_or_err(&claim(pool, ip, host), "claiming an address")
                .await?;
            if r.succeeded {
                let mut cache = self.cache.write().unwrap();
                cache.insert(claim_key(pool, ip), held_by(host), 0);
            }
            Ok(r.succeeded)
        })
    }

    fn claim_shared<'a>(&'a self, pool: &'a str, ip: IpAddr) -> ClaimFuture<'a, bool> {
        Box::pin(async move {
            let txn = claim(pool, ip, "").or_read_back();
            let r = self.txn_or_err(&txn, "claiming a gateway address").await?;
            Ok(r.succeeded || r.read == Some(held_by("")))
        })
    }

    fn claimed_by(&self, pool: &str, ip: IpAddr) -> Option<Holder> {
        let host = self.cache.read().unwrap().claimed_by(pool, ip)?;
        Some(if host.is_empty() {
            Holder::Gateway
        } else {
            Holder::Host(host)
        })
    }

    fn release<'a>(&'a self, pool: &'a str, ip: IpAddr) -> ClaimFuture<'a, ()> {
        Box::pin(async move {
            let key = claim_key(pool, ip);
            let mine = Guarded::delete_if(key.clone(), held_by(self.host_id()));
            self.txn_or_err(&mine, "releasing an address").await?;
            self.cache.write().unwrap().remove(&key);
            Ok(())
        })
    }
}

impl Cluster {
    /// Deletes the shared (gateway) address claims in `subnets`, guarded:
    /// only while they are still shared claims.
    pub(super) async fn release_shared_claims(
        &self,
        c: &mut etcd_client::Client,
        subnets: &[String],
    ) {
        let keys = self.cache.read().unwrap().shared_claims_in(subnets);
        for k in keys {
            if self.txn(c, &release_shared(&k)).await.is_ok() {
                self.cache.write().unwrap().remove(&k);
                debug!(key = %self.key(&k), "released the shared gateway claim");
            }
        }
    }
}
