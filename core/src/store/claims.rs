//! Address claims: who holds which address of an IPAM pool.
//!
//! One trait, two implementations: the embedded store (unique on this host)
//! and the cluster's claims in etcd (unique across every host; in
//! `switchyard-backends`' VXLAN backend). The IPAM driver holds one
//! `Arc<dyn Claims>` and never asks which it is.

use super::Owner;
use crate::Result;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

/// A claim operation in flight (boxed, so `Claims` can be a trait object).
pub type ClaimFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// Who holds a claimed address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Holder {
    /// A named host of the cluster (possibly this one).
    Host(String),
    /// Every host: a network's gateway, shared cluster-wide.
    Gateway,
    /// This host's embedded store, which records no owner.
    Local,
}

/// Address claims of IPAM pools. `pool` is the pool's claim key
/// (`ipam::Pool::claim_key`); each implementation forms its own keys.
pub trait Claims: Send + Sync {
    /// Whether a claim is unique across the cluster (not only this host);
    /// then gateways are claimed shared (`claim_shared`).
    fn cluster_wide(&self) -> bool;

    /// Claims `ip` in `pool` for this host, recording `owner` where the
    /// implementation keeps owners; false if it is held already.
    fn claim<'a>(
        &'a self,
        pool: &'a str,
        ip: IpAddr,
        owner: Option<&'a Owner>,
    ) -> ClaimFuture<'a, bool>;

    /// Claims `ip` as the gateway of `pool`, shared by every host (each
    /// host's dockerd asks for the same gateway); false if it is held
    /// otherwise.
    fn claim_shared<'a>(&'a self, pool: &'a str, ip: IpAddr) -> ClaimFuture<'a, bool>;

    /// Who holds `ip` in `pool`, as far as this host knows (no I/O).
    fn claimed_by(&self, pool: &str, ip: IpAddr) -> Option<Holder>;

    /// Releases a claim this host holds; never another host's.
    fn release<'a>(&'a self, pool: &'a str, ip: IpAddr) -> ClaimFuture<'a, ()>;

    /// The address a named `owner` already holds in `pool` (no I/O): the
    /// answer to its request, retried. `None` where owners are not kept.
    fn held_by(&self, _pool: &str, _owner: &Owner) -> Option<IpAddr> {
        None
    }

    /// Releases every claim in `pool` owned by the network of `pool_id`
    /// (dockerd releases a pool after its endpoints and gateway: what is
    /// left is what a crash left). No-op where owners are not kept.
    fn release_pool<'a>(&'a self, _pool: &'a str, _pool_id: &'a str) -> ClaimFuture<'a, ()> {
        Box::pin(std::future::ready(Ok(())))
    }
}
