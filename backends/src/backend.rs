//! The one trait every dataplane implements, phase by phase as libnetwork's
//! drivers are split: network, endpoint, join, and the host's lifecycle
//! (restore at start, background work). Backends speak Switchyard's model
//! (`JoinAnswer`, `GatewayAllocation`); the server turns that into the wire's.

use std::collections::BTreeMap;

use enum_dispatch::enum_dispatch;
use switchyard_core::Result;
use switchyard_core::link::{Deleted, Link, LinkManager, LinkPlan};
use switchyard_core::mac::MacAddr;
use switchyard_core::mark::Mark;
use switchyard_core::model::{EndpointRecord, GatewayAllocation, JoinAnswer, NetworkRecord};
use switchyard_core::spec::{BackendKind, NetworkSpec};

/// What a backend may use on the host: the link manager, and the instance
/// whose ownership marks it writes.
pub struct Host<'a> {
    pub links: &'a LinkManager,
    pub instance: &'a str,
}

impl Host<'_> {
    pub fn endpoint_mark(&self, ep: &EndpointRecord) -> Mark {
        Mark::endpoint(self.instance, &ep.network_id, &ep.id)
    }
}

#[enum_dispatch]
#[allow(async_fn_in_trait)]
pub trait Backend {
    fn kind(&self) -> BackendKind;

    // --- Network phase -------------------------------------------------------

    /// Whether IPAM reserves gateway addresses (the `GwAllocCheck` answer).
    fn gateway_allocation(&self, spec: &NetworkSpec) -> GatewayAllocation;

    /// Checks a parsed spec against the host and the networks already
    /// accepted. Creates nothing.
    async fn validate_network(
        &self,
        host: &Host<'_>,
        spec: &NetworkSpec,
        others: &[NetworkRecord],
    ) -> Result<()>;

    /// Fills in what the spec leaves to the backend (a VNI to allocate).
    async fn resolve_network(
        &self,
        _host: &Host<'_>,
        spec: NetworkSpec,
        _others: &[NetworkRecord],
    ) -> Result<NetworkSpec> {
        Ok(spec)
    }

    /// Creates what the network itself needs on this host.
    async fn setup_network(&self, host: &Host<'_>, net: &NetworkRecord) -> Result<()>;

    /// Removes what `setup_network` made, given the networks that remain.
    /// Must succeed on half-gone state.
    async fn teardown_network(
        &self,
        host: &Host<'_>,
        net: &NetworkRecord,
        remaining: &[NetworkRecord],
    ) -> Result<()>;

    // --- Endpoint phase ------------------------------------------------------

    /// The MAC an endpoint's link gets (`ep.mac` is not set yet), given
    /// what the user asked for.
    fn endpoint_mac(
        &self,
        net: &NetworkRecord,
        ep: &EndpointRecord,
        requested: Option<MacAddr>,
    ) -> Result<Option<MacAddr>>;

    /// Checks a new endpoint against the network's other endpoints (listed
    /// only if the backend asks: most never need them).
    fn validate_endpoint(
        &self,
        _net: &NetworkRecord,
        _ep: &EndpointRecord,
        _others: &dyn Fn() -> Vec<EndpointRecord>,
    ) -> Result<()> {
        Ok(())
    }

    /// The host-side link dockerd moves into the container, as a value.
    fn plan_endpoint(&self, instance: &str, net: &NetworkRecord, ep: &EndpointRecord) -> LinkPlan;

    // --- Join phase ----------------------------------------------------------

    /// Creates the endpoint's link (at Join, as Docker's built-in drivers do).
    async fn create_endpoint_link(
        &self,
        host: &Host<'_>,
        net: &NetworkRecord,
        ep: &EndpointRecord,
    ) -> Result<Link>;

    /// Join's answer: interface, gateways, routes.
    fn join_answer(&self, net: &NetworkRecord, ep: &EndpointRecord) -> JoinAnswer;

    /// After Leave: undoes what Join set up on the host beyond the link
    /// (e.g. host access routes). Must accept an endpoint never joined.
    async fn endpoint_left(
        &self,
        _host: &Host<'_>,
        _net: &NetworkRecord,
        _ep: &EndpointRecord,
    ) -> Result<()> {
        Ok(())
    }

    /// The name of the endpoint link that stays on the host and carries the
    /// endpoint's mark (deleting it removes the endpoint from the kernel).
    fn endpoint_host_link(&self, ep: &EndpointRecord) -> String {
        ep.link_name.clone()
    }

    /// Forgets the endpoint beyond its link (e.g. its cluster record).
    fn endpoint_removed(&self, _net: &NetworkRecord, _ep: &EndpointRecord) {}

    /// Deletes the endpoint's link if it is still on the host and still ours.
    async fn delete_endpoint_link(
        &self,
        host: &Host<'_>,
        net: &NetworkRecord,
        ep: &EndpointRecord,
    ) -> Result<Deleted> {
        self.endpoint_removed(net, ep);
        let mark = host.endpoint_mark(ep);
        Ok(host
            .links
            .delete_owned(&self.endpoint_host_link(ep), |m| *m == mark)
            .await?)
    }

    /// As `delete_endpoint_link`, without waiting for the kernel (DeleteEndpoint's path).
    fn delete_endpoint_link_later(
        &self,
        host: &Host<'_>,
        net: &NetworkRecord,
        ep: &EndpointRecord,
    ) {
        self.endpoint_removed(net, ep);
        host.links
            .delete_later(&self.endpoint_host_link(ep), host.endpoint_mark(ep));
    }

    // --- The host's lifecycle ------------------------------------------------

    /// After a restart, before serving: takes up the stored networks and
    /// endpoints of this backend (the `links` present now), repairs what it
    /// owns, and returns the problems it leaves to the operator.
    async fn restore(
        &self,
        _host: &Host<'_>,
        _networks: &[NetworkRecord],
        _endpoints: &[EndpointRecord],
        _links: &[Link],
    ) -> Vec<String> {
        Vec::new()
    }

    /// Starts the backend's background work (control plane, kernel sync),
    /// once, after `restore`.
    fn start(&self, _links: &LinkManager, _instance: &str) {}

    /// Extra lines for `switchyard status`.
    fn describe(&self, _net: &NetworkRecord) -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    /// The backend's own samples for `/metrics` (its background work).
    fn metrics(&self) -> Vec<crate::metrics::Sample> {
        Vec::new()
    }
}
