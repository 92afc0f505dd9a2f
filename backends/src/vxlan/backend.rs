//! The `Backend` trait for VXLAN, phase by phase: the network (validate,
//! resolve a VNI, set up, tear down, describe), then the endpoint (MAC,
//! veth pair, cluster record, Join's answer). Helpers: `network.rs`,
//! `endpoint.rs`.

use super::cluster::NetworkEntry;
use super::endpoint::veth_plan;
use super::names::{bridge_name, endpoint_mac, host_peer_name, vxlan_name};
use super::network::{lowest_free_vni, pools};
use super::{Vxlan, options, vni_of};
use crate::Host;
use std::collections::BTreeMap;
use std::net::IpAddr;
use switchyard_core::link::{Link, LinkError, LinkManager, LinkPlan};
use switchyard_core::mac::MacAddr;
use switchyard_core::mark::Mark;
use switchyard_core::model::{EndpointRecord, GatewayAllocation, JoinAnswer, NetworkRecord};
use switchyard_core::protocol::short_id;
use switchyard_core::spec::{BackendKind, BackendOptions, NetworkSpec, OPT_MTU};
use switchyard_core::{Error, Result};
use tracing::info;

impl crate::Backend for Vxlan {
    fn kind(&self) -> BackendKind {
        BackendKind::Vxlan
    }

    /// No gateway address is used (docker_gwbridge is the way out).
    fn gateway_allocation(&self, _spec: &NetworkSpec) -> GatewayAllocation {
        GatewayAllocation {
            ipv4: false,
            ipv6: false,
        }
    }

    async fn validate_network(
        &self,
        _host: &Host<'_>,
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
        let encrypted = options(spec).encrypted;
        if let Some(mtu) = spec.mtu
            && u.ifname.is_some()
            && mtu > self.max_mtu(spec)
        {
            return Err(Error::invalid(format!(
                "{OPT_MTU} {mtu} does not fit: the underlay {} has MTU {} and VXLAN adds {} bytes{}, so use at most {}",
                u.ifname.as_deref().unwrap_or(""),
                u.mtu,
                u.overhead(),
                if encrypted {
                    format!(" and IPsec ESP {}", super::ipsec::ESP_OVERHEAD)
                } else {
                    String::new()
                },
                self.max_mtu(spec)
            )));
        }
        if encrypted {
            if self.state.cluster.is_none() {
                return Err(Error::invalid(
                    "-o encrypted needs the etcd cluster: the IPsec keys are distributed through it; set [cluster] etcd_endpoints, or leave out -o encrypted",
                ));
            }
            if !options(spec).peers.is_empty() {
                return Err(Error::invalid(
                    "-o encrypted works with the etcd cluster, not with static -o peers; leave out one of them",
                ));
            }
            super::ipsec::preflight().await.map_err(Error::invalid)?;
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
        _host: &Host<'_>,
        mut spec: NetworkSpec,
        others: &[NetworkRecord],
    ) -> Result<NetworkSpec> {
        let subnets = pools(&spec);
        let BackendOptions::Vxlan(o) = &mut spec.backend else {
            return Ok(spec);
        };
        if o.vni.is_some() {
            return Ok(spec);
        }
        let cfg = &self.state.cfg;
        let here = |v: u32| others.iter().any(|n| vni_of(&n.spec) == Some(v));
        let Some(c) = self.state.cluster.as_ref() else {
            o.vni = Some(lowest_free_vni(cfg.vni_min, cfg.vni_max, here)?);
            return Ok(spec);
        };
        // Cluster-wide: the lowest VNI no host is known to use, taken by
        // creating its network record (compare-and-swap); one another host
        // took first is skipped.
        let mut lost = std::collections::BTreeSet::new();
        for _ in 0..64 {
            let v = lowest_free_vni(cfg.vni_min, cfg.vni_max, |v| {
                here(v) || c.vni_taken(v) || lost.contains(&v)
            })?;
            let entry = NetworkEntry {
                vni: v,
                subnets: subnets.clone(),
            };
            if c.reserve_vni(&entry).await? {
                o.vni = Some(v);
                return Ok(spec);
            }
            lost.insert(v);
        }
        Err(Error::conflict(format!(
            "no free VNI found in the cluster after 64 attempts (other hosts took each first); create the network with -o vni=… from [vxlan] vni_min..vni_max ({}–{})",
            cfg.vni_min, cfg.vni_max
        )))
    }

    /// The kernel reconcile loop's and the etcd agent's samples.
    fn metrics(&self) -> Vec<crate::metrics::Sample> {
        let mut out = self.reconcile_metrics();
        if let Some(c) = self.cluster() {
            out.extend(c.session_metrics());
        }
        out
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
        d.insert("firewall".into(), self.describe_firewall());
        if options(&net.spec).encrypted {
            d.insert("encryption".into(), self.describe_ipsec());
        }
        let programmed = self.state.programmed.read().unwrap().get(&vni).copied();
        d.insert(
            "remote_endpoints".into(),
            programmed.unwrap_or(0).to_string(),
        );
        d
    }

    async fn setup_network(&self, host: &Host<'_>, net: &NetworkRecord) -> Result<()> {
        let vni = vni_of(&net.spec).ok_or_else(|| Error::invalid("VXLAN network without a VNI"))?;
        if let Some(c) = &self.state.cluster {
            let subnets = pools(&net.spec);
            c.join_network(&NetworkEntry { vni, subnets }).await?;
            if options(&net.spec).encrypted {
                c.set_encrypted(vni, true);
            }
        }
        self.ensure_devices(host, net).await?;
        self.state
            .networks
            .write()
            .unwrap()
            .insert(vni, net.clone());
        if let Some(c) = &self.state.cluster {
            c.changed.notify_one();
        }
        self.sync_firewall(false).await;
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
        host: &Host<'_>,
        net: &NetworkRecord,
        _remaining: &[NetworkRecord],
    ) -> Result<()> {
        let Some(vni) = vni_of(&net.spec) else {
            return Ok(());
        };
        let _kernel = self.state.kernel.lock().await;
        self.state.networks.write().unwrap().remove(&vni);
        self.state.programmed.write().unwrap().remove(&vni);
        // The devices go: a network made again with this VNI starts empty.
        self.state.kernel_seen.lock().unwrap().remove(&vni);
        let mark = Mark::network(host.instance, &net.id);
        for name in [vxlan_name(vni), bridge_name(vni)] {
            host.links
                .delete_owned(&name, |m| *m == mark)
                .await
                .map_err(|e: LinkError| Error::from(e))?;
        }
        if let Some(c) = &self.state.cluster {
            c.set_encrypted(vni, false);
            c.leave_network(vni, &pools(&net.spec)).await;
        }
        drop(_kernel);
        self.sync_firewall(false).await;
        self.sync_ipsec(false).await;
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

    fn plan_endpoint(&self, instance: &str, net: &NetworkRecord, ep: &EndpointRecord) -> LinkPlan {
        let vni = vni_of(&net.spec).unwrap_or(0);
        let mark = Mark::endpoint(instance, &net.id, &ep.id);
        veth_plan(ep, mark, self.mtu(&net.spec), &bridge_name(vni))
    }

    /// No gateway: as Docker's overlay, non-internal networks reach the
    /// outside through docker_gwbridge, which dockerd adds because no
    /// gateway is given here.
    fn join_answer(&self, _net: &NetworkRecord, ep: &EndpointRecord) -> JoinAnswer {
        JoinAnswer {
            link_name: ep.link_name.clone(),
            gateway_service: true,
            ..JoinAnswer::default()
        }
    }

    /// The veth pair, its host end in the bridge, and the endpoint's record
    /// in the cluster.
    async fn create_endpoint_link(
        &self,
        host: &Host<'_>,
        net: &NetworkRecord,
        ep: &EndpointRecord,
    ) -> Result<Link> {
        // The bridge must be there (drift repair also does this).
        self.ensure_devices(host, net).await?;
        let link = host
            .links
            .apply(&self.plan_endpoint(host.instance, net, ep))
            .await?;
        if let (Some(c), Some(vni)) = (&self.state.cluster, vni_of(&net.spec)) {
            c.assert_endpoint(vni, ep);
        }
        Ok(link)
    }

    /// The host end never leaves this namespace; deleting it deletes both.
    fn endpoint_host_link(&self, ep: &EndpointRecord) -> String {
        host_peer_name(&ep.link_name)
    }

    fn endpoint_removed(&self, net: &NetworkRecord, ep: &EndpointRecord) {
        self.withdraw_endpoint(net, ep);
    }

    /// Takes up the stored VXLAN networks and endpoints: the kernel sync
    /// and the cluster know them again (the agent re-asserts them).
    async fn restore(
        &self,
        _host: &Host<'_>,
        networks: &[NetworkRecord],
        endpoints: &[EndpointRecord],
        _links: &[Link],
    ) -> Vec<String> {
        Vxlan::restore(self, networks, endpoints);
        Vec::new()
    }

    /// The etcd agent and the kernel sync, beside the socket.
    fn start(&self, links: &LinkManager, instance: &str) {
        if let Some(c) = self.cluster() {
            tokio::spawn(c.clone().run());
        }
        tokio::spawn(self.clone().run_reconciler(
            links.clone(),
            instance.to_string(),
            self.state.cfg.resync,
        ));
    }
}
