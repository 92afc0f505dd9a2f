//! Switchyard's dataplanes. One `Backend` trait, one implementation per
//! kind of network, dispatched through `AnyBackend` (netavark's
//! driver-factory idea: the driver picks the backend by the network's spec).
//!
//! A backend validates a spec against the host, turns networks and endpoints
//! into link plans, and answers Join; the shared `LinkManager` in `Ctx` does
//! every kernel operation.

mod ipvlan;
mod macvlan;
pub mod parent;
pub mod vxlan;

pub use ipvlan::Ipvlan;
pub use macvlan::Macvlan;
pub use vxlan::Vxlan;

use std::collections::BTreeMap;

use enum_dispatch::enum_dispatch;
use switchyard_core::Result;
use switchyard_core::link::{Deleted, Link, LinkManager, LinkPlan};
use switchyard_core::mac::MacAddr;
use switchyard_core::mark::Mark;
use switchyard_core::model::{EndpointRecord, NetworkRecord};
use switchyard_core::protocol::{GwAllocCheckResponse, InterfaceName, JoinResponse};
use switchyard_core::spec::{BackendKind, BackendOptions, NetworkSpec};

/// What a backend may use: the link manager and the instance whose marks it writes.
pub struct Ctx<'a> {
    pub links: &'a LinkManager,
    pub instance: &'a str,
}

impl Ctx<'_> {
    pub fn endpoint_mark(&self, ep: &EndpointRecord) -> Mark {
        self.endpoint_mark_ids(&ep.network_id, &ep.id)
    }

    pub fn endpoint_mark_ids(&self, network_id: &str, endpoint_id: &str) -> Mark {
        Mark::endpoint(self.instance, network_id, endpoint_id)
    }
}

#[enum_dispatch]
#[allow(async_fn_in_trait)]
pub trait Backend {
    fn kind(&self) -> BackendKind;

    /// The answer to `GwAllocCheck` for networks of this backend.
    /// (Defaults here and below are those of backends whose networks sit on
    /// a parent — macvlan, ipvlan; VXLAN overrides them.)
    fn gateway_allocation(&self, internal: bool) -> GwAllocCheckResponse {
        parent::gateway_allocation(internal)
    }

    /// Checks a parsed spec against the host and against the networks
    /// already accepted. Creates nothing.
    async fn validate_network(
        &self,
        ctx: &Ctx<'_>,
        spec: &NetworkSpec,
        others: &[NetworkRecord],
    ) -> Result<()> {
        parent::validate(ctx, spec, others).await
    }

    /// Fills in what the spec leaves to the backend (a VNI to allocate).
    async fn resolve_network(
        &self,
        _ctx: &Ctx<'_>,
        spec: NetworkSpec,
        _others: &[NetworkRecord],
    ) -> Result<NetworkSpec> {
        Ok(spec)
    }

    /// Extra lines for `switchyard status`.
    fn describe(&self, _net: &NetworkRecord) -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    /// Creates what the network itself needs (nothing for macvlan: the
    /// parent belongs to the host).
    async fn setup_network(&self, ctx: &Ctx<'_>, net: &NetworkRecord) -> Result<()> {
        parent::acquire(ctx, net).await
    }

    /// Removes what `setup_network` made, given the networks that remain.
    /// Must succeed on half-gone state.
    async fn teardown_network(
        &self,
        ctx: &Ctx<'_>,
        net: &NetworkRecord,
        remaining: &[NetworkRecord],
    ) -> Result<()> {
        parent::release(ctx, net, remaining).await
    }

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
        net: &NetworkRecord,
        ep: &EndpointRecord,
        others: &dyn Fn() -> Vec<EndpointRecord>,
    ) -> Result<()>;

    /// The host-side link dockerd moves into the container.
    fn endpoint_link(&self, ctx: &Ctx<'_>, net: &NetworkRecord, ep: &EndpointRecord) -> LinkPlan;

    /// Join's answer: interface name, gateways, routes.
    fn join_answer(&self, net: &NetworkRecord, ep: &EndpointRecord) -> JoinResponse;

    async fn create_endpoint_link(
        &self,
        ctx: &Ctx<'_>,
        net: &NetworkRecord,
        ep: &EndpointRecord,
    ) -> Result<Link> {
        // A parent Switchyard owns that vanished is made again here.
        parent::acquire(ctx, net).await?;
        Ok(ctx.links.apply(&self.endpoint_link(ctx, net, ep)).await?)
    }

    /// Deletes the endpoint's link if it is still on the host and still ours.
    async fn delete_endpoint_link(
        &self,
        ctx: &Ctx<'_>,
        _net: &NetworkRecord,
        ep: &EndpointRecord,
    ) -> Result<Deleted> {
        let mark = ctx.endpoint_mark(ep);
        Ok(ctx
            .links
            .delete_owned(&ep.link_name, |m| *m == mark)
            .await?)
    }

    /// As `delete_endpoint_link`, without waiting for the kernel (DeleteEndpoint's path).
    fn delete_endpoint_link_later(&self, ctx: &Ctx<'_>, _net: &NetworkRecord, ep: &EndpointRecord) {
        ctx.links.delete_later(&ep.link_name, ctx.endpoint_mark(ep));
    }
}

#[enum_dispatch(Backend)]
pub enum AnyBackend {
    Macvlan(Macvlan),
    Ipvlan(Ipvlan),
    Vxlan(Vxlan),
}

/// The backends of one plugin instance: the factory the driver picks from
/// by a network's options.
pub struct Backends {
    macvlan: AnyBackend,
    ipvlan: AnyBackend,
    vxlan: AnyBackend,
    vxlan_state: Vxlan,
}

impl Backends {
    pub fn new(vxlan: Vxlan) -> Backends {
        Backends {
            macvlan: Macvlan.into(),
            ipvlan: Ipvlan.into(),
            vxlan: vxlan.clone().into(),
            vxlan_state: vxlan,
        }
    }

    /// The backend serving networks with these options.
    pub fn for_options(&self, options: &BackendOptions) -> &AnyBackend {
        match options {
            BackendOptions::Macvlan(_) => &self.macvlan,
            BackendOptions::Ipvlan(_) => &self.ipvlan,
            BackendOptions::Vxlan(_) => &self.vxlan,
        }
    }

    pub fn for_network(&self, net: &NetworkRecord) -> &AnyBackend {
        self.for_options(&net.spec.backend)
    }

    pub fn vxlan(&self) -> &Vxlan {
        &self.vxlan_state
    }
}

/// Gateways for Join: the first subnet's of each family that the endpoint
/// has an address in, none on internal networks (dockerd does not filter a
/// gateway an internal network returns).
pub fn gateways(net: &NetworkRecord, ep: &EndpointRecord) -> (Option<String>, Option<String>) {
    if net.spec.internal {
        return (None, None);
    }
    let pick = |subnets: &[switchyard_core::spec::Subnet], addr: Option<ipnet::IpNet>| {
        let addr = addr?;
        subnets
            .iter()
            .find(|s| s.pool.contains(&addr.addr()))
            .or(subnets.first())
            .and_then(|s| s.gateway)
            .map(|g| g.to_string())
    };
    (pick(&net.spec.ipv4, ep.ipv4), pick(&net.spec.ipv6, ep.ipv6))
}

/// Join's answer for an L2 endpoint (macvlan, ipvlan l2): the link, the
/// gateways, and never `docker_gwbridge` (as Docker's built-in drivers: the
/// LAN's router is the way out).
pub fn l2_join_answer(net: &NetworkRecord, ep: &EndpointRecord) -> JoinResponse {
    let (gateway, gateway_ipv6) = gateways(net, ep);
    JoinResponse {
        interface_name: Some(InterfaceName {
            src_name: ep.link_name.clone(),
            dst_prefix: "eth".into(),
        }),
        gateway,
        gateway_ipv6,
        static_routes: Vec::new(),
        disable_gateway_service: true,
    }
}
