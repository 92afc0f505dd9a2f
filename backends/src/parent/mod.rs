//! Backends whose endpoints are child links of a parent interface (macvlan,
//! ipvlan). What they share — the parent's checks, making and sharing it,
//! restoring it after a restart, the L2 Join answer — is written once here,
//! as `OnParent<C>`, the `Backend` of every such child kind. A child kind
//! (`Child`) only says what differs: its link, its MAC rule, its answer.
//!
//! `checks.rs` validates, `link.rs` makes/removes/restores parents,
//! `answer.rs` is the L2 Join answer, `settings.rs` the `[parents]` section.

mod answer;
mod checks;
mod link;
mod settings;

pub use answer::{gateways, l2_join_answer};
pub use link::{acquire, in_use, link_name};
pub use settings::ParentsSettings;

use crate::{Backend, Host};
use switchyard_core::Result;
use switchyard_core::link::{Link, LinkPlan};
use switchyard_core::mac::MacAddr;
use switchyard_core::model::{EndpointRecord, GatewayAllocation, JoinAnswer, NetworkRecord};
use switchyard_core::spec::{BackendKind, NetworkSpec};

/// What a kind of child link adds to the shared parent handling.
#[allow(async_fn_in_trait)]
pub trait Child {
    fn kind(&self) -> BackendKind;

    /// Host checks beyond the parent's (e.g. kernel support for the link type).
    async fn check_host(&self, _host: &Host<'_>) -> Result<()> {
        Ok(())
    }

    fn endpoint_mac(
        &self,
        net: &NetworkRecord,
        ep: &EndpointRecord,
        requested: Option<MacAddr>,
    ) -> Result<Option<MacAddr>>;

    fn validate_endpoint(
        &self,
        _net: &NetworkRecord,
        _ep: &EndpointRecord,
        _others: &dyn Fn() -> Vec<EndpointRecord>,
    ) -> Result<()> {
        Ok(())
    }

    fn plan_endpoint(&self, instance: &str, net: &NetworkRecord, ep: &EndpointRecord) -> LinkPlan;

    fn join_answer(&self, net: &NetworkRecord, ep: &EndpointRecord) -> JoinAnswer {
        l2_join_answer(net, ep)
    }
}

/// The `Backend` of a child kind: parent handling plus the child's rules.
#[derive(Clone, Copy, Debug, Default)]
pub struct OnParent<C>(pub C);

impl<C: Child> Backend for OnParent<C> {
    fn kind(&self) -> BackendKind {
        self.0.kind()
    }

    /// As Docker's built-in macvlan on Engine 28.5 answers (measured,
    /// tests/dockerd_e2e.rs): IPAM reserves the subnet's gateway (the LAN's
    /// router) unless the network is `--internal`, which has none.
    fn gateway_allocation(&self, spec: &NetworkSpec) -> GatewayAllocation {
        checks::gateway_allocation(spec)
    }

    async fn validate_network(
        &self,
        host: &Host<'_>,
        spec: &NetworkSpec,
        others: &[NetworkRecord],
    ) -> Result<()> {
        self.0.check_host(host).await?;
        checks::validate(host, spec, others).await
    }

    async fn setup_network(&self, host: &Host<'_>, net: &NetworkRecord) -> Result<()> {
        link::acquire(host, net).await
    }

    async fn teardown_network(
        &self,
        host: &Host<'_>,
        net: &NetworkRecord,
        remaining: &[NetworkRecord],
    ) -> Result<()> {
        link::release(host, net, remaining).await
    }

    fn endpoint_mac(
        &self,
        net: &NetworkRecord,
        ep: &EndpointRecord,
        requested: Option<MacAddr>,
    ) -> Result<Option<MacAddr>> {
        self.0.endpoint_mac(net, ep, requested)
    }

    fn validate_endpoint(
        &self,
        net: &NetworkRecord,
        ep: &EndpointRecord,
        others: &dyn Fn() -> Vec<EndpointRecord>,
    ) -> Result<()> {
        self.0.validate_endpoint(net, ep, others)
    }

    fn plan_endpoint(&self, instance: &str, net: &NetworkRecord, ep: &EndpointRecord) -> LinkPlan {
        self.0.plan_endpoint(instance, net, ep)
    }

    async fn create_endpoint_link(
        &self,
        host: &Host<'_>,
        net: &NetworkRecord,
        ep: &EndpointRecord,
    ) -> Result<Link> {
        // A parent Switchyard owns that vanished is made again here.
        link::acquire(host, net).await?;
        let plan = self.0.plan_endpoint(host.instance, net, ep);
        Ok(host.links.apply(&plan).await?)
    }

    fn join_answer(&self, net: &NetworkRecord, ep: &EndpointRecord) -> JoinAnswer {
        self.0.join_answer(net, ep)
    }

    async fn restore(
        &self,
        host: &Host<'_>,
        networks: &[NetworkRecord],
        _endpoints: &[EndpointRecord],
        links: &[Link],
    ) -> Vec<String> {
        let mine: Vec<NetworkRecord> = networks
            .iter()
            .filter(|n| n.spec.backend.kind() == self.0.kind())
            .cloned()
            .collect();
        link::restore(host, &mine, links).await
    }
}
