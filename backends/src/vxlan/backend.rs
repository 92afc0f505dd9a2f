//! The `Backend` trait for VXLAN, phase by phase: the network (validate,
//! resolve a VNI, set up, tear down, describe), then the endpoint (MAC,
//! veth pair, cluster record, Join's answer). Helpers: `network.rs`,
//! `endpoint.rs`.

use super::cluster::NetworkEntry;
use super::endpoint::veth_plan;
use super::names::{bridge_name, endpoint_mac, host_peer_name, vxlan_name};
use super::network::{lowest_free_vni, pools};
use super::{Vxlan, options, vni_of};
use crate::Ctx;
use std::collections::BTreeMap;
use std::net::IpAddr;
use switchyard_core::link::{Deleted, Link, LinkError, LinkPlan};
use switchyard_core::mac::MacAddr;
use switchyard_core::mark::Mark;
use switchyard_core::model::{EndpointRecord, NetworkRecord};
use switchyard_core::protocol::{GwAllocCheckResponse, InterfaceName, JoinResponse, short_id};
use switchyard_core::spec::{BackendKind, BackendOptions, NetworkSpec, OPT_MTU};
use switchyard_core::{Error, Result};
use tracing::info;

impl crate::Backend for Vxlan {
    fn kind(&self) -> BackendKind {
        BackendKind::Vxlan
    }

    /// No gateway address is used (docker_gwbridge is the way out).
    fn gateway_allocation(&self, _internal: bool) -> GwAllocCheckResponse {
        GwAllocCheckResponse {
            skip_ipv4: true,
            skip_ipv6: true,
        }
    }

    async fn validate_network(
        &self,
        _ctx: &Ctx<'_>,
        spec: &NetworkSpec,
        others: &[NetworkRecord],
    ) -> Result<()> {
        let u = &self.state.underlay;
        if let Some(vni) = vni_of(spec)
            && let Some(other) = others.iter().find(|o| vni_of(&o.spec) == Some(vni))
        {
            return Err(Error::conflict(format!(
                "VNI {vni} is already used by Switchyard network {} on this host; choose another vni",
                short_id(&other.id)
            )));
        }
        if spec.ipv4.len() > 1 {
            return Err(Error::invalid(
                "a VXLAN network has one IPv4 subnet; give a single --subnet (create one network per subnet)",
            ));
        }
        if let Some(mtu) = spec.mtu
            && u.ifname.is_some()
            && mtu > u.default_mtu()
        {
            return Err(Error::invalid(format!(
                "{OPT_MTU} {mtu} does not fit: the underlay {} has MTU {} and VXLAN adds {} bytes, so use at most {}",
                u.ifname.as_deref().unwrap_or(""),
                u.mtu,
                u.overhead(),
                u.default_mtu()
            )));
        }
        let multi = self.state.cluster.is_some() || !options(spec).peers.is_empty();
        if multi && u.vtep.is_none() {
            return Err(Error::invalid(
                "this host has no VTEP address for multi-host VXLAN; set [vxlan] underlay (the interface that reaches the other hosts) or [vxlan] local_ip in the config",
            ));
        }
        Ok(())
    }

    /// Fills in a VNI when the user gave none: the lowest free one in the
    /// configured range, free here and (with etcd) in the cluster.
    async fn resolve_network(
        &self,
        _ctx: &Ctx<'_>,
        mut spec: NetworkSpec,
        others: &[NetworkRecord],
    ) -> Result<NetworkSpec> {
        let BackendOptions::Vxlan(o) = &mut spec.backend else {
            return Ok(spec);
        };
        if o.vni.is_none() {
            let cfg = &self.state.cfg;
            let cluster = self.state.cluster.as_ref();
            o.vni = Some(lowest_free_vni(cfg.vni_min, cfg.vni_max, |v| {
                others.iter().any(|n| vni_of(&n.spec) == Some(v))
                    || cluster.is_some_and(|c| c.vni_taken(v))
            })?);
        }
        Ok(spec)
    }

    /// What `status` shows for one VXLAN network.
    fn describe(&self, net: &NetworkRecord) -> BTreeMap<String, String> {
        let mut d = BTreeMap::new();
        let Some(vni) = vni_of(&net.spec) else {
            return d;
        };
        d.insert("vni".into(), vni.to_string());
        let vtep = self.state.underlay.vtep;
        d.insert(
            "local_vtep".into(),
            vtep.map_or_else(|| "none (single host)".into(), |v| v.to_string()),
        );
        let peers: Vec<String> = match &self.state.cluster {
            Some(c) => c
                .peers(vni)
                .into_iter()
                .map(|(h, ip)| format!("{h}={ip}"))
                .collect(),
            None => options(&net.spec)
                .peers
                .iter()
                .map(IpAddr::to_string)
                .collect(),
        };
        let peers = if peers.is_empty() {
            "-".into()
        } else {
            peers.join(",")
        };
        d.insert("peers".into(), peers);
        let programmed = self.state.programmed.read().unwrap().get(&vni).copied();
        d.insert(
            "remote_endpoints".into(),
            programmed.unwrap_or(0).to_string(),
        );
        d
    }

    async fn setup_network(&self, ctx: &Ctx<'_>, net: &NetworkRecord) -> Result<()> {
        let vni = vni_of(&net.spec).ok_or_else(|| Error::invalid("VXLAN network without a VNI"))?;
        if let Some(c) = &self.state.cluster {
            let subnets = pools(&net.spec);
            c.join_network(&NetworkEntry { vni, subnets }).await?;
        }
        self.ensure_devices(ctx, net).await?;
        self.state
            .networks
            .write()
            .unwrap()
            .insert(vni, net.clone());
        if let Some(c) = &self.state.cluster {
            c.changed.notify_one();
        }
        info!(
            network = short_id(&net.id),
            vni,
            mtu = self.mtu(&net.spec),
            "VXLAN network ready"
        );
        Ok(())
    }

    async fn teardown_network(
        &self,
        ctx: &Ctx<'_>,
        net: &NetworkRecord,
        _remaining: &[NetworkRecord],
    ) -> Result<()> {
        let Some(vni) = vni_of(&net.spec) else {
            return Ok(());
        };
        let _kernel = self.state.kernel.lock().await;
        self.state.networks.write().unwrap().remove(&vni);
        self.state.programmed.write().unwrap().remove(&vni);
        let mark = Mark::network(ctx.instance, &net.id);
        for name in [vxlan_name(vni), bridge_name(vni)] {
            ctx.links
                .delete_owned(&name, |m| *m == mark)
                .await
                .map_err(|e: LinkError| Error::from(e))?;
        }
        if let Some(c) = &self.state.cluster {
            c.leave_network(vni, &pools(&net.spec)).await;
        }
        Ok(())
    }

    fn endpoint_mac(
        &self,
        _net: &NetworkRecord,
        ep: &EndpointRecord,
        requested: Option<MacAddr>,
    ) -> Result<Option<MacAddr>> {
        let ipv4 = ep.ipv4.map(|a| a.addr());
        let ipv6 = ep.ipv6.map(|a| a.addr());
        Ok(Some(
            requested.unwrap_or_else(|| endpoint_mac(ipv4, ipv6, &ep.id)),
        ))
    }

    fn validate_endpoint(
        &self,
        _net: &NetworkRecord,
        _ep: &EndpointRecord,
        _others: &dyn Fn() -> Vec<EndpointRecord>,
    ) -> Result<()> {
        Ok(())
    }

    fn endpoint_link(&self, ctx: &Ctx<'_>, net: &NetworkRecord, ep: &EndpointRecord) -> LinkPlan {
        veth_plan(ep, ctx.endpoint_mark(ep), self.mtu(&net.spec))
    }

    /// No gateway: as Docker's overlay, non-internal networks reach the
    /// outside through docker_gwbridge, which dockerd adds because no
    /// gateway is given here.
    fn join_answer(&self, _net: &NetworkRecord, ep: &EndpointRecord) -> JoinResponse {
        JoinResponse {
            interface_name: Some(InterfaceName {
                src_name: ep.link_name.clone(),
                dst_prefix: "eth".into(),
            }),
            ..JoinResponse::default()
        }
    }

    /// The veth pair, its host end in the bridge, and the endpoint's record
    /// in the cluster.
    async fn create_endpoint_link(
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
        let link = ctx.links.apply(&veth_plan(ep, mark.clone(), mtu)).await?;
        ctx.links.set_mark(&peer, &mark).await?;
        ctx.links.set_mtu(&peer, mtu).await?;
        ctx.links.set_controller(&peer, &bridge_name(vni)).await?;
        ctx.links.set_up(&peer, true).await?;
        if let Some(c) = &self.state.cluster {
            c.assert_endpoint(vni, ep);
        }
        Ok(link)
    }

    async fn delete_endpoint_link(
        &self,
        ctx: &Ctx<'_>,
        net: &NetworkRecord,
        ep: &EndpointRecord,
    ) -> Result<Deleted> {
        self.withdraw_endpoint(net, ep);
        let mark = ctx.endpoint_mark(ep);
        // The host end never leaves this namespace; deleting it deletes both.
        Ok(ctx
            .links
            .delete_owned(&host_peer_name(&ep.link_name), |m| *m == mark)
            .await?)
    }

    fn delete_endpoint_link_later(&self, ctx: &Ctx<'_>, net: &NetworkRecord, ep: &EndpointRecord) {
        self.withdraw_endpoint(net, ep);
        ctx.links
            .delete_later(&host_peer_name(&ep.link_name), ctx.endpoint_mark(ep));
    }
}
