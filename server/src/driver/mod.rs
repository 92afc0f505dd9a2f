//! The Driver: the protocol-neutral state machine of networks and endpoints.
//!
//! It validates options into a `NetworkSpec`, picks the backend, persists
//! every accepted object before answering, serialises the work on each
//! network, and rolls back what a failed step created. Split by protocol
//! phase like libnetwork's drivers: `network.rs` (GwAllocCheck, Create/
//! DeleteNetwork), `endpoint.rs` (Create/DeleteEndpoint, OperInfo),
//! `join.rs` (Join/Leave), `startup.rs` (restore and clean up before
//! serving), `ipam.rs` (the IPAM driver), `status.rs`.

mod dhcp;
mod endpoint;
mod ipam;
mod join;
mod locks;
mod network;
mod startup;
mod status;

pub use dhcp::{DhcpSection, DhcpSettings, spawn_renewer};
pub use status::{StatusReport, network_status};

use locks::NetworkLocks;
use std::sync::Arc;
use switchyard_backends::{Backends, Host};
use switchyard_core::link::LinkManager;
use switchyard_core::model::NetworkRecord;
use switchyard_core::protocol::{CapabilitiesResponse, short_id};
use switchyard_core::spec::Policy;
use switchyard_core::store::{Claims, Store};
use switchyard_core::{Error, Result};

pub struct Driver {
    /// The driver name dockerd uses; also written into every link's mark.
    instance: String,
    store: Arc<Store>,
    links: LinkManager,
    policy: Policy,
    locks: NetworkLocks,
    backends: Backends,
    /// Where IPAM claims addresses: the etcd control plane when `[cluster]
    /// etcd_endpoints` is set, else the store.
    claims: Arc<dyn Claims>,
    /// `[dhcp]`: bounds and timers of `ipam=dhcp` networks.
    dhcp: DhcpSettings,
}

impl Driver {
    pub fn new(
        instance: String,
        store: Store,
        links: LinkManager,
        policy: Policy,
        backends: Backends,
    ) -> Driver {
        let store = Arc::new(store);
        let claims = backends.cluster_claims().unwrap_or_else(|| store.clone());
        Driver {
            instance,
            store,
            links,
            policy,
            locks: NetworkLocks::default(),
            backends,
            claims,
            dhcp: DhcpSettings::default(),
        }
    }

    pub fn with_dhcp(mut self, dhcp: DhcpSettings) -> Driver {
        self.dhcp = dhcp;
        self
    }

    fn host(&self) -> Host<'_> {
        Host {
            links: &self.links,
            instance: &self.instance,
        }
    }

    /// Static, so it can never fail (a failed first GetCapabilities poisons
    /// the driver in dockerd until dockerd restarts).
    pub fn capabilities(&self) -> CapabilitiesResponse {
        CapabilitiesResponse {
            scope: "local".into(),
            connectivity_scope: "global".into(),
            gw_alloc_checker: true,
        }
    }

    /// Waits for deferred link deletions (at shutdown, and for tests).
    pub async fn flush(&self) {
        self.links.flush().await;
    }

    fn known_network(&self, id: &str) -> Result<NetworkRecord> {
        self.store.network(id).ok_or_else(|| {
            Error::invalid(format!(
                "network {} is not known to Switchyard instance \"{}\"; it was created by another driver or this instance's state was removed — recreate the network",
                short_id(id),
                self.instance
            ))
        })
    }
}
