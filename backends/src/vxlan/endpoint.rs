//! Endpoint phase: the veth pair, the MAC, the cluster record, Join's answer.

use super::dataplane::{bridge_name, host_peer_name};
use super::{Vxlan, vni_of};
use crate::Host as Ctx;
use switchyard_core::Result;
use switchyard_core::link::{Link, LinkKind, LinkPlan};
use switchyard_core::mac::MacAddr;
use switchyard_core::mark::Mark;
use switchyard_core::model::JoinAnswer;
use switchyard_core::model::{EndpointRecord, NetworkRecord};

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
        instance: &str,
        net: &NetworkRecord,
        ep: &EndpointRecord,
    ) -> LinkPlan {
        let mut plan = LinkPlan::new(
            ep.link_name.clone(),
            LinkKind::Veth {
                peer: host_peer_name(&ep.link_name),
            },
            Mark::endpoint(instance, &net.id, &ep.id),
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
        let plan = self.veth_plan(ctx.instance, net, ep);
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

    /// No gateway: as Docker's overlay, non-internal networks reach the
    /// outside through docker_gwbridge, which dockerd adds because no
    /// gateway is given here.
    pub(super) fn answer(&self, ep: &EndpointRecord) -> JoinAnswer {
        JoinAnswer {
            link_name: ep.link_name.clone(),
            gateway_service: true,
            ..JoinAnswer::default()
        }
    }
}
