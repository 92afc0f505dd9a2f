//! Network phase: the per-network devices (and their drift repair), the
//! choice of a free VNI, and what a restarted plugin knows again.

use super::names::{bridge_name, vxlan_name};
use super::{Underlay, Vxlan, options, vni_of};
use crate::Host;
use switchyard_core::link::error::EEXIST;
use switchyard_core::link::{FdbEntry, LinkKind, LinkPlan, VxlanLink};
use switchyard_core::mac::MacAddr;
use switchyard_core::mark::Mark;
use switchyard_core::model::{EndpointRecord, NetworkRecord};
use switchyard_core::spec::NetworkSpec;
use switchyard_core::{Error, Result};

impl Vxlan {
    /// The MTU of every link of the network: the user's, else what the
    /// underlay leaves (less ESP's overhead for an encrypted network).
    pub(super) fn mtu(&self, spec: &NetworkSpec) -> u32 {
        spec.mtu.unwrap_or_else(|| self.max_mtu(spec))
    }

    /// The largest MTU the network's links can have.
    pub(super) fn max_mtu(&self, spec: &NetworkSpec) -> u32 {
        let plain = self.state.underlay.default_mtu();
        if options(spec).encrypted {
            plain.saturating_sub(super::ipsec::ESP_OVERHEAD)
        } else {
            plain
        }
    }

    /// The UDP port of the network's VXLAN device.
    pub(super) fn port(&self, spec: &NetworkSpec) -> u16 {
        if options(spec).encrypted {
            self.state.cfg.encrypted_port
        } else {
            self.state.cfg.port
        }
    }

    /// Creates what is missing of the network's bridge and VXLAN device (and
    /// static peers); leaves what exists. Also the reconcile's drift repair.
    pub(super) async fn ensure_devices(&self, host: &Host<'_>, net: &NetworkRecord) -> Result<()> {
        let Some(vni) = vni_of(&net.spec) else {
            return Ok(());
        };
        let mtu = self.mtu(&net.spec);
        let o = options(&net.spec);
        let port = self.port(&net.spec);
        host.links
            .apply(&bridge_plan(host.instance, net, vni, mtu))
            .await?;
        let learning = !o.peers.is_empty();
        let plan = vxlan_plan(
            host.instance,
            net,
            vni,
            mtu,
            port,
            &self.state.underlay,
            learning,
        );
        match host.links.apply(&plan).await {
            Ok(_) => {}
            Err(e)
                if e.errno == EEXIST
                    && e.action.starts_with("creating")
                    && e.detail.contains("File exists") =>
            {
                return Err(Error::conflict(format!(
                    "another VXLAN device on this host already uses VNI {vni} on UDP port {port}; choose another vni (or remove that device)"
                )));
            }
            Err(e) => return Err(e.into()),
        }
        for peer in &o.peers {
            host.links
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

    /// Registers the VXLAN networks and endpoints found in the local state
    /// at startup, so the loop and the cluster know them again.
    pub fn restore(&self, networks: &[NetworkRecord], endpoints: &[EndpointRecord]) {
        for n in networks {
            if let Some(vni) = vni_of(&n.spec) {
                self.state.networks.write().unwrap().insert(vni, n.clone());
                if let Some(c) = &self.state.cluster {
                    // Membership is re-asserted by the agent.
                    c.rejoin(vni);
                    if options(&n.spec).encrypted {
                        c.set_encrypted(vni, true);
                    }
                    for ep in endpoints.iter().filter(|e| e.network_id == n.id) {
                        c.assert_endpoint(vni, ep);
                    }
                }
            }
        }
    }
}

/// The network's subnets as the cluster records them.
pub(super) fn pools(spec: &NetworkSpec) -> Vec<String> {
    spec.ipv4
        .iter()
        .chain(&spec.ipv6)
        .map(|s| s.pool.to_string())
        .collect()
}

/// The lowest VNI of `min..=max` that `used` does not name.
pub(super) fn lowest_free_vni(min: u32, max: u32, used: impl Fn(u32) -> bool) -> Result<u32> {
    (min..=max).find(|v| !used(*v)).ok_or_else(|| {
        Error::conflict(format!(
            "no free VNI left in {min}–{max}; widen [vxlan] vni_min/vni_max"
        ))
    })
}

pub(super) fn bridge_plan(instance: &str, net: &NetworkRecord, vni: u32, mtu: u32) -> LinkPlan {
    LinkPlan::new(
        bridge_name(vni),
        LinkKind::Bridge,
        Mark::network(instance, &net.id),
    )
    .mtu(Some(mtu))
    .up()
}

/// The network's VXLAN device. With static peers (`learning`) the kernel
/// learns remote MACs; without, ARP is answered by proxy from the entries
/// the reconcile programs.
pub(super) fn vxlan_plan(
    instance: &str,
    net: &NetworkRecord,
    vni: u32,
    mtu: u32,
    port: u16,
    underlay: &Underlay,
    learning: bool,
) -> LinkPlan {
    LinkPlan::new(
        vxlan_name(vni),
        LinkKind::Vxlan(VxlanLink {
            vni,
            port,
            local: underlay.vtep,
            dev: underlay.ifname.clone(),
            learning,
            proxy: !learning,
        }),
        Mark::network(instance, &net.id),
    )
    .mtu(Some(mtu))
    .controller(bridge_name(vni))
    .up()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use switchyard_core::spec::{BackendOptions, Subnet, VxlanOptions};

    /// A VXLAN network record with one IPv4 subnet.
    pub(crate) fn vxlan_net(id: &str, vni: Option<u32>, subnet: &str) -> NetworkRecord {
        let spec = NetworkSpec {
            backend: BackendOptions::Vxlan(VxlanOptions {
                vni,
                peers: vec![],
                encrypted: false,
            }),
            internal: false,
            ipv4: vec![Subnet {
                pool: subnet.parse().unwrap(),
                gateway: None,
            }],
            ipv6: vec![],
            mtu: None,
            options: Default::default(),
            engine: Default::default(),
            host_access: None,
            ipv6_slaac: false,
        };
        NetworkRecord {
            id: id.into(),
            spec,
            created_at: 1,
        }
    }

    #[test]
    fn lowest_free_vni_skips_used_ones() {
        assert_eq!(lowest_free_vni(10, 20, |v| v < 13).unwrap(), 13);
        assert_eq!(lowest_free_vni(10, 10, |_| false).unwrap(), 10);
        let e = lowest_free_vni(10, 12, |_| true).unwrap_err().to_string();
        assert!(e.contains("no free VNI left in 10–12"), "{e}");
    }

    #[test]
    fn device_plans() {
        let net = vxlan_net("n1", Some(5001), "10.9.0.0/24");
        assert_eq!(pools(&net.spec), vec!["10.9.0.0/24".to_string()]);
        let br = bridge_plan("sy", &net, 5001, 1450);
        assert_eq!(
            (br.name.as_str(), br.mtu, br.up),
            ("sybr5001", Some(1450), true)
        );
        assert_eq!(br.mark, Mark::network("sy", "n1"));
        let u = Underlay {
            ifname: Some("eth1".into()),
            vtep: Some("192.0.2.7".parse().unwrap()),
            mtu: 1500,
        };
        let vx = vxlan_plan("sy", &net, 5001, 1450, 4789, &u, false);
        assert_eq!(vx.name, "syvx5001");
        assert_eq!(vx.controller.as_deref(), Some("sybr5001"));
        assert_eq!(
            vx.kind,
            LinkKind::Vxlan(VxlanLink {
                vni: 5001,
                port: 4789,
                local: u.vtep,
                dev: Some("eth1".into()),
                learning: false,
                proxy: true,
            })
        );
        let LinkKind::Vxlan(l) = vxlan_plan("sy", &net, 5001, 1450, 4789, &u, true).kind else {
            panic!("not a VXLAN plan");
        };
        assert!(l.learning && !l.proxy, "static peers learn");
    }
}
