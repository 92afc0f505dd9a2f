//! DHCP addressing for `-o ipam=dhcp` networks (the client is
//! core/src/dhcp): a lease obtained at CreateEndpoint on the endpoint's own
//! link, renewed in the background from wherever the link lives (the
//! container's namespace after Join), released at DeleteEndpoint, and kept
//! in the store so a restarted plugin keeps the address and renews it.

use super::Driver;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use switchyard_backends::{AnyBackend, Backend};
use switchyard_core::dhcp::exchange::{self, Extended};
use switchyard_core::dhcp::socket::{self, PacketSocket};
use switchyard_core::dhcp::{Identity, Lease, Phase};
use switchyard_core::mac::MacAddr;
use switchyard_core::model::{EndpointRecord, NetworkRecord, now};
use switchyard_core::protocol::short_id;
use switchyard_core::quote::quote;
use switchyard_core::{Error, Result};
use tracing::{info, warn};

/// `[dhcp]` in the TOML file.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DhcpSection {
    /// How long CreateEndpoint waits for a lease before it fails.
    pub timeout_secs: u64,
    /// Renew this many seconds after each ACK instead of at T1 (whichever
    /// is sooner); 0 = at T1, as RFC 2131 says.
    pub renew_every_secs: u64,
}

impl Default for DhcpSection {
    fn default() -> Self {
        DhcpSection {
            timeout_secs: 10,
            renew_every_secs: 0,
        }
    }
}

impl DhcpSection {
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !(1..=120).contains(&self.timeout_secs) {
            return Err(format!(
                "[dhcp] timeout_secs = {} is out of range; use 1 to 120 seconds (default 10)",
                self.timeout_secs
            ));
        }
        Ok(())
    }
}

/// Where the endpoint's link is: in a container's namespace (found there by
/// its address) or still on the host (by its name).
enum Place {
    Sandbox(PathBuf),
    Host(String),
}

fn open_at(place: &Place, lease: &Lease) -> std::io::Result<PacketSocket> {
    match place {
        Place::Host(name) => PacketSocket::open(socket::ifindex_by_name(name)?),
        Place::Sandbox(_) => PacketSocket::open(socket::ifindex_by_address(lease.address.addr())?),
    }
}

/// Runs `f` with a packet socket on the endpoint's link, on a thread of its
/// own (inside the container's namespace when the link is there). A link
/// not found in the sandbox is looked for on the host: after Leave dockerd
/// has moved it back while the sandbox may still exist.
async fn with_socket<T: Send + 'static>(
    place: Place,
    host_link: String,
    lease: Lease,
    f: impl Fn(&PacketSocket, &Lease) -> std::io::Result<T> + Send + Sync + 'static,
) -> std::io::Result<T> {
    let f = Arc::new(f);
    tokio::task::spawn_blocking(move || {
        if let Place::Sandbox(ns) = &place {
            let (l, g) = (lease.clone(), f.clone());
            let p = Place::Sandbox(ns.clone());
            match socket::in_netns(ns, move || g(&open_at(&p, &l)?, &l)) {
                Ok(v) => return Ok(v),
                // Not found there (moved back after Leave), or the sandbox
                // cannot be entered: try the host, else report the first.
                Err(e) => {
                    return open_at(&Place::Host(host_link), &lease)
                        .and_then(|s| f(&s, &lease))
                        .map_err(|_| e);
                }
            }
        }
        f(&open_at(&Place::Host(host_link), &lease)?, &lease)
    })
    .await
    .map_err(|e| std::io::Error::other(format!("the DHCP task failed: {e}")))?
}

fn place_of(ep: &EndpointRecord, backend: &AnyBackend) -> Place {
    match &ep.sandbox_key {
        Some(sb) if Path::new(sb).exists() => Place::Sandbox(PathBuf::from(sb)),
        _ => Place::Host(backend.endpoint_host_link(ep)),
    }
}

impl Driver {
    /// Obtains the endpoint's lease on its own link, created here (early;
    /// Join finds it) and brought up just for the exchange. On failure the
    /// link is removed again: nothing is left behind.
    pub(super) async fn dhcp_acquire(
        &self,
        net: &NetworkRecord,
        ep: &EndpointRecord,
    ) -> Result<Lease> {
        let backend = self.backends.for_network(net);
        let host = self.host();
        let link = backend.create_endpoint_link(&host, net, ep).await?;
        let name = backend.endpoint_host_link(ep);
        let parent = net
            .spec
            .backend
            .parent()
            .map(|p| p.link_name(&net.id))
            .unwrap_or_default();
        let result = async {
            self.links.set_up(&name, true).await?;
            // chaddr is what the LAN sees (an ipvlan child's is the parent's).
            let hardware = link.mac.or(ep.mac).ok_or_else(|| {
                Error::Internal(format!("link {name} has no MAC address; report this as a bug"))
            })?;
            let id = Identity::new(hardware, ep.mac.unwrap_or_else(|| MacAddr::from_endpoint_id(&ep.id)));
            let timeout = self.dhcp.timeout();
            let n = name.clone();
            let got = tokio::task::spawn_blocking(move || {
                let s = PacketSocket::open(socket::ifindex_by_name(&n)?)?;
                exchange::acquire(&s, &id, timeout)
            })
            .await
            .map_err(|e| Error::Internal(format!("the DHCP task failed: {e}")))?
            .map_err(|e| Error::Internal(format!("DHCP on link {name} (parent {parent}): {e}")))?;
            let _ = self.links.set_up(&name, false).await;
            got.ok_or_else(|| {
                Error::invalid(format!(
                    "no DHCP server answered on parent {} within {} s (MAC {hardware}); check that a DHCP server serves the LAN of {}, that the parent is connected to it, and that it has free addresses — or raise [dhcp] timeout_secs",
                    quote(&parent),
                    timeout.as_secs(),
                    quote(&parent),
                ))
            })
        }
        .await;
        if result.is_err() {
            let _ = backend.delete_endpoint_link(&host, net, ep).await;
        }
        let lease = result?;
        info!(
            network = short_id(&net.id),
            endpoint = short_id(&ep.id),
            address = %lease.address,
            server = %lease.server,
            lease_secs = lease.lease_secs,
            "DHCP lease obtained"
        );
        Ok(lease)
    }

    /// Releases the endpoint's lease (best effort: the server also lets it
    /// expire) and forgets it. The link is back on the host here, down.
    pub(super) async fn dhcp_release(&self, net: &NetworkRecord, ep: &EndpointRecord) {
        let Some(lease) = self.store.lease(&net.id, &ep.id) else {
            return;
        };
        let backend = self.backends.for_network(net);
        let place = place_of(ep, backend);
        let host_link = backend.endpoint_host_link(ep);
        // Back on the host the link is down; a frame needs it up.
        let _ = self.links.set_up(&host_link, true).await;
        let mut sent = with_socket(place, host_link, lease.clone(), |s, l| {
            exchange::release(s, l)
        })
        .await;
        if sent.is_err()
            && let Some(parent) = net.spec.backend.parent().map(|p| p.link_name(&net.id))
        {
            // The link is gone (dockerd removed the container's namespace
            // with it): the parent carries the frame with the lease's MAC.
            sent = with_socket(Place::Host(parent.clone()), parent, lease, |s, l| {
                exchange::release(s, l)
            })
            .await;
        }
        if let Err(e) = sent {
            warn!(endpoint = short_id(&ep.id), error = %e, "DHCP release not sent; the lease will expire at the server");
        }
        if let Err(e) = self.store.delete_lease(&net.id, &ep.id) {
            warn!(endpoint = short_id(&ep.id), error = %e, "forgetting the DHCP lease");
        }
    }

    /// Join's gateway for a DHCP endpoint: the lease's router.
    pub(super) fn dhcp_gateway(
        &self,
        net: &NetworkRecord,
        ep: &EndpointRecord,
    ) -> Option<std::net::IpAddr> {
        self.store
            .lease(&net.id, &ep.id)
            .and_then(|l| l.gateway)
            .map(std::net::IpAddr::V4)
    }

    /// A lease whose endpoint is not stored (the process died between
    /// keeping the lease and keeping the endpoint, whose link startup then
    /// removed): released through the parent and forgotten.
    async fn drop_stray_lease(&self, nid: &str, eid: &str, lease: Lease) {
        let _guard = self.locks.lock(nid).await;
        if self.store.endpoint(nid, eid).is_some() {
            return; // CreateEndpoint finished meanwhile
        }
        if let Some(parent) = self
            .store
            .network(nid)
            .and_then(|n| n.spec.backend.parent().map(|p| p.link_name(&n.id)))
        {
            let _ = with_socket(Place::Host(parent.clone()), parent, lease, |s, l| {
                exchange::release(s, l)
            })
            .await;
        }
        match self.store.delete_lease(nid, eid) {
            Ok(()) => info!(
                endpoint = short_id(eid),
                "released the DHCP lease of an endpoint that was never stored"
            ),
            Err(e) => warn!(endpoint = short_id(eid), error = %e, "forgetting a stray DHCP lease"),
        }
    }

    /// One pass over the stored leases: extends those that are due.
    /// `retry_at` holds, per endpoint, when a failed attempt may be repeated.
    async fn renew_due(&self, retry_at: &mut HashMap<(String, String), u64>) {
        let t = now();
        let leases = self.store.leases();
        retry_at.retain(|k, _| leases.iter().any(|(l, _)| l == k));
        for ((nid, eid), lease) in leases {
            let key = (nid.clone(), eid.clone());
            let due = lease.renew_at(self.dhcp.renew_every());
            if t < due || retry_at.get(&key).is_some_and(|r| t < *r) {
                continue;
            }
            let (Some(net), Some(ep)) = (self.store.network(&nid), self.store.endpoint(&nid, &eid))
            else {
                self.drop_stray_lease(&nid, &eid, lease).await;
                continue;
            };
            let phase = lease.phase(t);
            let rebind = matches!(phase, Phase::Rebinding | Phase::Expired);
            let backend = self.backends.for_network(&net);
            let place = place_of(&ep, backend);
            let timeout = Duration::from_secs(3);
            let outcome = with_socket(
                place,
                backend.endpoint_host_link(&ep),
                lease.clone(),
                move |s, l| exchange::extend(s, l, rebind, timeout),
            )
            .await;
            match outcome {
                Ok(Extended::Ack(new)) => {
                    let _guard = self.locks.lock(&nid).await;
                    if self.store.endpoint(&nid, &eid).is_none() {
                        continue; // deleted meanwhile
                    }
                    if new.address != lease.address {
                        warn!(endpoint = short_id(&eid), old = %lease.address, new = %new.address, "the DHCP server changed the address at renewal; the container keeps the old one until it restarts");
                    }
                    if let Err(e) = self.store.put_lease(&nid, &eid, &new) {
                        warn!(endpoint = short_id(&eid), error = %e, "keeping the renewed lease");
                    }
                    retry_at.remove(&key);
                    info!(endpoint = short_id(&eid), address = %new.address, rebind, "DHCP lease extended");
                }
                other => {
                    // Try again in half the time left (RFC 2131 §4.4.5), at
                    // least every few seconds and at most every minute.
                    let left = lease.expires_at().saturating_sub(t);
                    let pause = (left / 2)
                        .clamp(3, 60)
                        .min(self.dhcp.renew_every().unwrap_or(60).max(3));
                    retry_at.insert(key, t + pause);
                    match other {
                        Ok(Extended::Nak(why)) => {
                            warn!(endpoint = short_id(&eid), address = %lease.address, reason = %why, "the DHCP server refused to extend the lease")
                        }
                        Ok(_) => {
                            warn!(endpoint = short_id(&eid), address = %lease.address, ?phase, rebind, "no DHCP server answered the renewal; retrying")
                        }
                        Err(e) => {
                            warn!(endpoint = short_id(&eid), error = %e, "DHCP renewal not sent; retrying")
                        }
                    }
                }
            }
        }
    }
}

/// The driver's DHCP settings.
#[derive(Clone, Debug, Default)]
pub struct DhcpSettings(pub DhcpSection);

impl DhcpSettings {
    fn timeout(&self) -> Duration {
        Duration::from_secs(self.0.timeout_secs.max(1))
    }

    fn renew_every(&self) -> Option<u64> {
        Some(self.0.renew_every_secs).filter(|s| *s > 0)
    }
}

/// Keeps every stored lease alive for as long as its endpoint exists (also
/// the leases of endpoints created before a restart).
pub fn spawn_renewer(driver: Arc<Driver>) {
    tokio::spawn(async move {
        let mut retry_at = HashMap::new();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            driver.renew_due(&mut retry_at).await;
        }
    });
}

/// The endpoint's address for CreateEndpoint's answer.
pub fn lease_address(lease: &Lease) -> IpNet {
    IpNet::V4(lease.address)
}
