//! GwAllocCheck, CreateNetwork, DeleteNetwork.

use super::Driver;
use switchyard_backends::Backend;
use switchyard_core::dhcp::socket::dhcp_privileges;
use switchyard_core::failpoint;
use switchyard_core::link::Deleted;
use switchyard_core::model::{NetworkRecord, now};
use switchyard_core::protocol::{
    CreateNetworkRequest, GwAllocCheckRequest, GwAllocCheckResponse, short_id,
};
use switchyard_core::spec::{
    Engine, NetworkSpec, Parent, RequestOptions, dhcp_enabled, parse_network, parse_options,
};
use switchyard_core::{Error, Result};
use tracing::{info, warn};

impl Driver {
    /// Engine 28 asks before IPAM runs: bad options fail here already, and
    /// the answer tells IPAM whether to reserve gateways.
    pub async fn gw_alloc_check(&self, req: GwAllocCheckRequest) -> Result<GwAllocCheckResponse> {
        let opts = RequestOptions::new(&req.options)?;
        let (backend_opts, mtu) = parse_options(&opts, &self.policy)?;
        let backend = self.backends.for_options(&backend_opts);
        // The host checks too, so a missing parent fails before IPAM runs;
        // CreateNetwork checks again with the subnets.
        // The request alone cannot tell 28 from 29 (spec::Engine).
        let engine = self.policy.engine(Engine::Unknown, &self.stored_engines());
        let spec = NetworkSpec {
            backend: backend_opts,
            internal: opts.internal,
            ipv4: Vec::new(),
            ipv6: Vec::new(),
            mtu,
            options: opts.generic,
            engine,
            host_access: None,
            ipv6_slaac: false,
        };
        backend
            .validate_network(&self.host(), &spec, &self.store.networks())
            .await?;
        Ok(backend.gateway_allocation(&spec).into())
    }

    pub async fn create_network(&self, req: CreateNetworkRequest) -> Result<()> {
        let mut spec = parse_network(&req, &self.policy)?;
        if dhcp_enabled(&spec)
            && let Err(e) = dhcp_privileges()
        {
            return Err(Error::invalid(format!(
                "ipam=dhcp needs packet sockets and containers' network namespaces (CAP_NET_RAW, CAP_SYS_ADMIN), which this Switchyard may not use ({e}); the managed plugin has no DHCP networks: run Switchyard from the Debian package or as root, or create the network with --subnet instead"
            )));
        }
        let evidence = spec.engine;
        spec.engine = self.policy.engine(evidence, &self.stored_engines());
        self.policy.engine_memory.learn(evidence);
        let _all = self.locks.all_networks.lock().await;
        let _net = self.locks.lock(&req.network_id).await;
        if let Some(existing) = self.store.network(&req.network_id) {
            // A retry is the same network whatever was learnt since.
            spec.engine = existing.spec.engine;
            // A network recorded before private parents' names were kept
            // keeps the parent it has.
            if let (Some(Parent::Isolated { name: None }), Some(Parent::Isolated { name })) =
                (existing.spec.backend.parent(), spec.backend.parent_mut())
            {
                *name = None;
            }
            if existing.spec == spec {
                return Ok(()); // a retry, or swarm re-creating the network
            }
            if !self.store.endpoints(&req.network_id).is_empty() {
                return Err(Error::conflict(format!(
                    "network {} already exists with other options and has endpoints; remove its containers first",
                    short_id(&req.network_id)
                )));
            }
        }
        let backend = self.backends.for_options(&spec.backend);
        let others: Vec<NetworkRecord> = self
            .store
            .networks()
            .into_iter()
            .filter(|n| n.id != req.network_id)
            .collect();
        let host = self.host();
        backend.validate_network(&host, &spec, &others).await?;
        let spec = backend.resolve_network(&host, spec, &others).await?;
        failpoint::kill("network.create.validated");
        let rec = NetworkRecord {
            id: req.network_id.clone(),
            spec,
            created_at: now(),
        };
        backend.setup_network(&host, &rec).await?;
        failpoint::kill("network.create.setup");
        if let Err(e) = self.store.put_network(&rec) {
            if let Err(t) = backend.teardown_network(&host, &rec, &others).await {
                warn!(network = short_id(&rec.id), error = %t, "rollback of network setup failed");
            }
            return Err(e);
        }
        info!(
            network = short_id(&rec.id),
            backend = %rec.spec.backend.kind(),
            engine = %rec.spec.engine,
            parent = %rec.spec.backend.parent().map(|p| p.describe()).unwrap_or_default(),
            "network created"
        );
        Ok(())
    }

    /// (created_at, engine) of the stored networks, for `Policy::engine`.
    fn stored_engines(&self) -> Vec<(u64, Engine)> {
        self.store
            .networks()
            .iter()
            .map(|n| (n.created_at, n.spec.engine))
            .collect()
    }

    /// Never fails for unknown or half-gone networks: dockerd does not retry
    /// teardown, so whatever is left is cleaned here or at the next start.
    pub async fn delete_network(&self, network_id: &str) -> Result<()> {
        let _all = self.locks.all_networks.lock().await;
        let guard = self.locks.lock(network_id).await;
        let host = self.host();
        let net = self.store.network(network_id);
        if let Some(net) = &net {
            let backend = self.backends.for_network(net);
            for ep in self.store.endpoints(network_id) {
                match backend.delete_endpoint_link(&host, net, &ep).await {
                    Ok(Deleted::Deleted) => {
                        info!(network = short_id(network_id), endpoint = short_id(&ep.id), link = %ep.link_name, "deleted leftover endpoint link")
                    }
                    Ok(_) => {}
                    Err(e) => {
                        warn!(link = %ep.link_name, error = %e, "could not delete leftover endpoint link")
                    }
                }
            }
        }
        // Links marked for this network that the store no longer lists.
        self.delete_marked_links(|m| m.network_id == network_id)
            .await;
        failpoint::kill("network.delete.endpoints_removed");
        if let Some(net) = &net {
            // Forget the network first: the parent's users are the stored
            // networks, and this one no longer is one.
            self.store.delete_network(network_id)?;
            failpoint::kill("network.delete.forgotten");
            let remaining = self.store.networks();
            self.backends
                .for_network(net)
                .teardown_network(&host, net, &remaining)
                .await?;
            info!(network = short_id(network_id), "network deleted");
        }
        drop(guard);
        self.locks.forget(network_id);
        Ok(())
    }
}
