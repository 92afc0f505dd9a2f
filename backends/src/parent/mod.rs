//! Backends whose endpoints are child links of a parent interface (macvlan,
//! ipvlan). What they share — the parent's checks, making and sharing it,
//! restoring it after a restart, the L2 Join answer — is written once here,
//! as `OnParent<C>`, the `Backend` of every such child kind. A child kind
//! (`Child`) only says what differs: its link, its MAC rule, its answer.
//!
//! `checks.rs` validates, `link.rs` makes/removes/restores parents,
//! `answer.rs` is the L2 Join answer, `settings.rs` the `[parents]` section,
//! `host_access.rs` the host's own link on the parent (`-o host_access`).

mod answer;
mod checks;
pub mod host_access;
mod link;
mod settings;
#[cfg(test)]
mod tests;

pub use answer::{gateways, l2_join_answer};
pub use checks::down_warning;
pub use link::{acquire, in_use, link_name};
pub use settings::ParentsSettings;

use crate::{Backend, Host};
use std::collections::BTreeMap;
use switchyard_core::link::{Link, LinkKind, LinkPlan};
use switchyard_core::mac::MacAddr;
use switchyard_core::mark::Mark;
use switchyard_core::model::{EndpointRecord, GatewayAllocation, JoinAnswer, NetworkRecord};
use switchyard_core::protocol::short_id;
use switchyard_core::spec::{BackendKind, NetworkSpec};
use switchyard_core::{Error, Result};

/// What a kind of child link adds to the shared parent handling: only
/// what differs between macvlan and ipvlan.
#[allow(async_fn_in_trait)]
pub trait Child {
    fn kind(&self) -> BackendKind;

    /// Host checks beyond the parent's (e.g. kernel support for the link type).
    async fn check_host(&self, _host: &Host<'_>) -> Result<()> {
        Ok(())
    }

    /// The endpoint links' type, on `parent`.
    fn link_kind(&self, spec: &NetworkSpec, parent: String) -> LinkKind;

    /// The MAC rule: what an endpoint's link gets, given what the user asked.
    fn mac(
        &self,
        spec: &NetworkSpec,
        endpoint_id: &str,
        requested: Option<MacAddr>,
    ) -> Result<Option<MacAddr>>;

    /// Whether the parent serves a single endpoint (macvlan passthru).
    fn single_endpoint(&self, _spec: &NetworkSpec) -> bool {
        false
    }

    /// Join's answer, given the L2 one (gateways, no docker_gwbridge).
    fn answer(&self, _spec: &NetworkSpec, _ep: &EndpointRecord, l2: JoinAnswer) -> JoinAnswer {
        l2
    }
}

/// The `Backend` of a child kind: parent handling plus the child's rules.
#[derive(Clone, Copy, Debug, Default)]
pub struct OnParent<C>(pub C);

impl<C: Child> Backend for OnParent<C> {
    fn kind(&self) -> BackendKind {
        self.0.kind()
    }

    /// As the engine's built-in macvlan/ipvlan answer (`checks.rs`).
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
        link::acquire(host, net).await?;
        if let Some(plan) = self.host_access_plan(host.instance, net)
            && let Err(e) = host_access::ensure(host, net, &plan).await
        {
            let _ = host
                .links
                .delete_owned(&plan.name, |m| *m == plan.mark)
                .await;
            return Err(e);
        }
        Ok(())
    }

    async fn teardown_network(
        &self,
        host: &Host<'_>,
        net: &NetworkRecord,
        remaining: &[NetworkRecord],
    ) -> Result<()> {
        if let Some(plan) = self.host_access_plan(host.instance, net) {
            host.links
                .delete_owned(&plan.name, |m| *m == plan.mark)
                .await?;
        }
        link::release(host, net, remaining).await
    }

    fn endpoint_mac(
        &self,
        net: &NetworkRecord,
        ep: &EndpointRecord,
        requested: Option<MacAddr>,
    ) -> Result<Option<MacAddr>> {
        self.0.mac(&net.spec, &ep.id, requested)
    }

    /// Refuses the host's own address; lists the network's endpoints only
    /// for a single-endpoint parent.
    fn validate_endpoint(
        &self,
        net: &NetworkRecord,
        ep: &EndpointRecord,
        others: &dyn Fn() -> Vec<EndpointRecord>,
    ) -> Result<()> {
        host_access::check_endpoint(net, ep)?;
        if !self.0.single_endpoint(&net.spec) {
            return Ok(());
        }
        match others().into_iter().find(|o| o.id != ep.id) {
            None => Ok(()),
            Some(o) => {
                let kind = self.0.kind();
                Err(Error::conflict(format!(
                    "{kind}_mode={} gives parent \"{}\" to a single container, and endpoint {} already has it; disconnect that container first, or create the network with {kind}_mode=bridge for several containers",
                    net.spec.backend.mode(),
                    link_name(net).unwrap_or_default(),
                    short_id(&o.id)
                )))
            }
        }
    }

    fn plan_endpoint(&self, instance: &str, net: &NetworkRecord, ep: &EndpointRecord) -> LinkPlan {
        let parent = link_name(net).unwrap_or_default();
        let mark = Mark::endpoint(instance, &net.id, &ep.id);
        let plan = LinkPlan::new(
            ep.link_name.clone(),
            self.0.link_kind(&net.spec, parent),
            mark,
        )
        .mtu(net.spec.mtu);
        match ep.mac {
            Some(mac) => plan.mac(mac),
            None => plan,
        }
    }

    async fn create_endpoint_link(
        &self,
        host: &Host<'_>,
        net: &NetworkRecord,
        ep: &EndpointRecord,
    ) -> Result<Link> {
        // A parent Switchyard owns that vanished is made again here.
        link::acquire(host, net).await?;
        let plan = self.plan_endpoint(host.instance, net, ep);
        let link = host.links.apply(&plan).await?;
        if let Some(access) = self.host_access_plan(host.instance, net) {
            host_access::route_endpoint(host, net, &access, ep).await?;
        }
        Ok(link)
    }

    async fn endpoint_left(
        &self,
        host: &Host<'_>,
        net: &NetworkRecord,
        ep: &EndpointRecord,
    ) -> Result<()> {
        host_access::unroute_endpoint(host, net, ep).await
    }

    fn join_answer(&self, net: &NetworkRecord, ep: &EndpointRecord) -> JoinAnswer {
        self.0.answer(&net.spec, ep, l2_join_answer(net, ep))
    }

    /// The engine whose built-in answers the network follows.
    fn describe(&self, net: &NetworkRecord) -> BTreeMap<String, String> {
        let mut d = BTreeMap::from([("engine".to_string(), net.spec.engine.to_string())]);
        if let Some(h) = host_access::describe(net) {
            d.insert("host_access".to_string(), h);
        }
        if net.spec.ipv6_slaac {
            d.insert("ipv6".to_string(), "slaac".to_string());
        }
        d
    }

    async fn restore(
        &self,
        host: &Host<'_>,
        networks: &[NetworkRecord],
        endpoints: &[EndpointRecord],
        links: &[Link],
    ) -> Vec<String> {
        let mine: Vec<NetworkRecord> = networks
            .iter()
            .filter(|n| n.spec.backend.kind() == self.0.kind())
            .cloned()
            .collect();
        let mut problems = link::restore(host, &mine, links).await;
        for net in &mine {
            if let Some(plan) = self.host_access_plan(host.instance, net) {
                problems.extend(host_access::restore(host, net, &plan, endpoints).await);
            }
        }
        problems
    }
}

impl<C: Child> OnParent<C> {
    /// The host's link on the network's parent, of the network's own
    /// kind; `None` without `-o host_access`.
    fn host_access_plan(&self, instance: &str, net: &NetworkRecord) -> Option<LinkPlan> {
        let parent = link_name(net)?;
        host_access::plan(instance, net, self.0.link_kind(&net.spec, parent))
    }
}

/// A backend section's default parent, for `switchyard check`.
pub fn explain_default(parent: &str) -> String {
    if parent.is_empty() {
        "from -o parent=… (without one, each network gets a private parent)".into()
    } else {
        format!("{parent} unless -o parent=… says otherwise")
    }
}
