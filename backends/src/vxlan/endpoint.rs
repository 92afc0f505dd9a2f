//! Endpoint phase: the veth pair, the MAC, the cluster record, Join's answer.

use super::dataplane::{bridge_name, host_peer_name};
use super::{Vxlan, vni_of};
use crate::Ctx;
use switchyard_core::Result;
use switchyard_core::link::{Deleted, Link, LinkKind, LinkPlan};
use switchyard_core::mac::MacAddr;
use switchyard_core::model::{EndpointRecord, NetworkRecord};
use switchyard_core::protocol::{InterfaceName, JoinResponse};

impl Vxlan {
    pub(super) fn mac(
        ep_ipv4: Option<std::net::IpAddr>,
        ep_ipv6: Option<std::net::IpAddr>,
        endpoint_id: &str,
    ) -> MacAddr {
        ep_ipv4
            .or(ep_ipv6)
            .map(MacAddr::from_ip)
            .unwrap_or_else(|| MacAddr::from_endpoint_id(endpoint_id))
    }

    /// The endpoint's veth pair: `sy…` goes to the container, its peer
    /// `sh…` stays in the bridge.
    pub(super) fn veth_plan(
        &self,
        ctx: &Ctx<'_>,
        net: &NetworkRecord,
        ep: &EndpointRecord,
    ) -> LinkPlan {
        let mut plan = LinkPlan::new(
            ep.link_name.clone(),
            LinkKind::Veth {
                peer: host_peer_name(&ep.link_name),
            },
            ctx.endpoint_mark(ep),
        )
        .mtu(Some(self.mtu(&net.spec)));
        if let Some(mac) = ep.mac {
            plan = plan.mac(mac);
        }
        plan
    }

    pub(super) async fn create_link(
        &self,
        ctx: &Ctx<'_>,
        net: &NetworkRecord,
        ep: &EndpointRecord,
    ) -> Result<Link> {
        let vni = vni_of(&net.spec).unwrap_or(0);
        // The bridge must be there (drift repair also does this).
        self.ensure_devices(ctx, net).await?;
        let mtu = self.mtu(&net.spec);
        let peer = host_peer_name(&ep.link_name);
        let mark = ctx.endpoint_mark(ep);
        let plan = self.veth_plan(ctx, net, ep);
        let link = ctx.links.apply(&plan).await?;
        ctx.links.set_mark(&peer, &mark).await?;
        ctx.links.set_mtu(&peer, mtu).await?;
        ctx.links.set_controller(&peer, &bridge_name(vni)).await?;
        ctx.links.set_up(&peer, true).await?;
        if let Some(c) = &self.inner.cluster {
            c.assert_endpoint(vni, ep);
        }
        Ok(link)
    }

    pub(super) async fn delete_link(
        &self,
        ctx: &Ctx<'_>,
        net: &NetworkRecord,
        ep: &EndpointRecord,
    ) -> Result<Deleted> {
        self.withdraw(net, ep);
        let mark = ctx.endpoint_mark(ep);
        // The host end never leaves this namespace; deleting it deletes both.
        Ok(ctx
            .links
            .delete_owned(&host_peer_name(&ep.link_name), |m| *m == mark)
            .await?)
    }

    pub(super) fn delete_link_later(
        &self,
        ctx: &Ctx<'_>,
        net: &NetworkRecord,
        ep: &EndpointRecord,
    ) {
        self.withdraw(net, ep);
        ctx.links
            .delete_later(&host_peer_name(&ep.link_name), ctx.endpoint_mark(ep));
    }

    fn withdraw(&self, net: &NetworkRecord, ep: &EndpointRecord) {
        if let (Some(c), Some(vni)) = (&self.inner.cluster, vni_of(&net.spec)) {
            c.withdraw_endpoint(vni, &ep.id);
        }
    }

    /// No gateway: as Docker's overlay, non-internal networks reach the
    /// outside through docker_gwbridge, which dockerd adds because no
    /// gateway is given here.
    pub(super) fn answer(&self, ep: &EndpointRecord) -> JoinResponse {
        JoinResponse {
            interface_name: Some(InterfaceName {
                src_name: ep.link_name.clone(),
                dst_prefix: "eth".into(),
            }),
            ..JoinResponse::default()
        }
    }
}
