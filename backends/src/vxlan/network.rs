//! Network phase: validation, VNI allocation, the per-network devices.

use super::cluster::NetworkEntry;
use super::dataplane::{bridge_plan, vxlan_name, vxlan_plan};
use super::{Vxlan, options, vni_of};
use crate::Host as Ctx;
use switchyard_core::link::error::EEXIST;
use switchyard_core::link::{FdbEntry, LinkError};
use switchyard_core::mac::MacAddr;
use switchyard_core::model::NetworkRecord;
use switchyard_core::protocol::short_id;
use switchyard_core::spec::{BackendOptions, NetworkSpec, OPT_MTU};
use switchyard_core::{Error, Result};
use tracing::info;

impl Vxlan {
    pub(super) fn mtu(&self, spec: &NetworkSpec) -> u32 {
        spec.mtu
            .unwrap_or_else(|| self.inner.underlay.default_mtu())
    }

    pub(super) async fn validate(
        &self,
        spec: &NetworkSpec,
        others: &[NetworkRecord],
    ) -> Result<()> {
        let u = &self.inner.underlay;
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
        let multi = self.inner.cluster.is_some() || !options(spec).peers.is_empty();
        if multi && u.vtep.is_none() {
            return Err(Error::invalid(
                "this host has no VTEP address for multi-host VXLAN; set [vxlan] underlay (the interface that reaches the other hosts) or [vxlan] local_ip in the config",
            ));
        }
        Ok(())
    }

    /// Fills in a VNI when the user gave none: the lowest free one in the
    /// configured range, free here and (with etcd) in the cluster.
    pub(super) fn resolve(
        &self,
        mut spec: NetworkSpec,
        others: &[NetworkRecord],
    ) -> Result<NetworkSpec> {
        let BackendOptions::Vxlan(o) = &mut spec.backend else {
            return Ok(spec);
        };
        if o.vni.is_some() {
            return Ok(spec);
        }
        let used = |v: u32| {
            others.iter().any(|n| vni_of(&n.spec) == Some(v))
                || self.inner.cluster.as_ref().is_some_and(|c| c.vni_taken(v))
        };
        let cfg = &self.inner.cfg;
        o.vni = Some(
            (cfg.vni_min..=cfg.vni_max)
                .find(|v| !used(*v))
                .ok_or_else(|| {
                    Error::conflict(format!(
                        "no free VNI left in {}–{}; widen [vxlan] vni_min/vni_max",
                        cfg.vni_min, cfg.vni_max
                    ))
                })?,
        );
        Ok(spec)
    }

    pub(super) async fn setup(&self, ctx: &Ctx<'_>, net: &NetworkRecord) -> Result<()> {
        let vni = vni_of(&net.spec).ok_or_else(|| Error::invalid("VXLAN network without a VNI"))?;
        if let Some(c) = &self.inner.cluster {
            c.join_network(&NetworkEntry {
                vni,
                subnets: net
                    .spec
                    .ipv4
                    .iter()
                    .chain(&net.spec.ipv6)
                    .map(|s| s.pool.to_string())
                    .collect(),
            })
            .await?;
        }
        self.ensure_devices(ctx, net).await?;
        self.inner
            .networks
            .write()
            .unwrap()
            .insert(vni, net.clone());
        if let Some(c) = &self.inner.cluster {
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

    /// Creates what is missing of the network's bridge and VXLAN device (and
    /// static peers); leaves what exists. Also the reconcile's drift repair.
    pub(super) async fn ensure_devices(&self, ctx: &Ctx<'_>, net: &NetworkRecord) -> Result<()> {
        let Some(vni) = vni_of(&net.spec) else {
            return Ok(());
        };
        let mtu = self.mtu(&net.spec);
        let o = options(&net.spec);
        ctx.links
            .apply(&bridge_plan(ctx.instance, net, vni, mtu))
            .await?;
        let plan = vxlan_plan(
            ctx.instance,
            net,
            vni,
            mtu,
            self.inner.cfg.port,
            &self.inner.underlay,
            !o.peers.is_empty(),
        );
        match ctx.links.apply(&plan).await {
            Ok(_) => {}
            Err(e)
                if e.errno == EEXIST
                    && e.action.starts_with("creating")
                    && e.detail.contains("File exists") =>
            {
                return Err(Error::conflict(format!(
                    "another VXLAN device on this host already uses VNI {vni} on UDP port {}; choose another vni (or remove that device)",
                    self.inner.cfg.port
                )));
            }
            Err(e) => return Err(e.into()),
        }
        for peer in &o.peers {
            ctx.links
                .fdb_append(
                    &vxlan_name(vni),
                    FdbEntry {
                        mac: MacAddr([0; 6]),
                        dst: *peer,
                    },
                )
                .await?;
        }
        Ok(())
    }

    pub(super) async fn teardown(&self, ctx: &Ctx<'_>, net: &NetworkRecord) -> Result<()> {
        let Some(vni) = vni_of(&net.spec) else {
            return Ok(());
        };
        let _kernel = self.inner.kernel.lock().await;
        self.inner.networks.write().unwrap().remove(&vni);
        self.inner.programmed.write().unwrap().remove(&vni);
        let mark = switchyard_core::mark::Mark::network(ctx.instance, &net.id);
        for name in [vxlan_name(vni), super::bridge_name(vni)] {
            ctx.links
                .delete_owned(&name, |m| *m == mark)
                .await
                .map_err(|e: LinkError| Error::from(e))?;
        }
        if let Some(c) = &self.inner.cluster {
            let subnets: Vec<String> = net
                .spec
                .ipv4
                .iter()
                .chain(&net.spec.ipv6)
                .map(|s| s.pool.to_string())
                .collect();
            c.leave_network(vni, &subnets).await;
        }
        Ok(())
    }
}
