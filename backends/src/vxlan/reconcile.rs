//! The kernel side of the control plane: for every local VXLAN network, make
//! the device's permanent neighbours and forwarding entries equal to the
//! remote endpoints in the cluster cache — after every change and on a
//! timer. Entries that already match are not touched (a restarted plugin
//! causes no netlink churn); nothing runs before the first etcd list.

use super::Vxlan;
use super::dataplane::vxlan_name;
use crate::Host as Ctx;
use std::collections::BTreeSet;
use std::time::Duration;
use switchyard_core::link::{FdbEntry, LinkManager, Neighbour};
use switchyard_core::mac::MacAddr;
use switchyard_core::model::NetworkRecord;
use tracing::{debug, warn};

impl Vxlan {
    /// Registers the VXLAN networks and endpoints found in the local state
    /// at startup, so the loop and the cluster know them again.
    pub fn restore(
        &self,
        networks: &[NetworkRecord],
        endpoints: &[switchyard_core::model::EndpointRecord],
    ) {
        for n in networks {
            if let Some(vni) = super::vni_of(&n.spec) {
                self.inner.networks.write().unwrap().insert(vni, n.clone());
                if let Some(c) = &self.inner.cluster {
                    // Membership is re-asserted by the agent.
                    c.rejoin(vni);
                    for ep in endpoints.iter().filter(|e| e.network_id == n.id) {
                        c.assert_endpoint(vni, ep);
                    }
                }
            }
        }
    }

    /// Runs the reconcile loop forever (spawn it).
    pub async fn run_reconciler(self, links: LinkManager, instance: String, period: Duration) {
        let changed = self.inner.cluster.as_ref().map(|c| c.changed.clone());
        let mut tick = tokio::time::interval(period);
        loop {
            match &changed {
                Some(n) => {
                    tokio::select! {
                        _ = n.notified() => tokio::time::sleep(Duration::from_millis(20)).await,
                        _ = tick.tick() => {}
                    }
                }
                None => {
                    tick.tick().await;
                }
            }
            let ctx = Ctx {
                links: &links,
                instance: &instance,
            };
            let nets: Vec<NetworkRecord> = self
                .inner
                .networks
                .read()
                .unwrap()
                .values()
                .cloned()
                .collect();
            for net in nets {
                let _kernel = self.inner.kernel.lock().await;
                let vni = super::vni_of(&net.spec);
                if !vni.is_some_and(|v| self.inner.networks.read().unwrap().contains_key(&v)) {
                    continue; // removed since the list was taken
                }
                if let Err(e) = self.ensure_devices(&ctx, &net).await {
                    warn!(error = %e, "VXLAN devices could not be repaired");
                    continue;
                }
                if let Err(e) = self.sync_remote(&links, &net).await {
                    warn!(error = %e, "remote endpoints could not be programmed");
                }
                self.hold_quarantined_down(&links).await;
            }
        }
    }

    /// Keeps the links of quarantined endpoints down (their address belongs
    /// to another host now).
    async fn hold_quarantined_down(&self, links: &LinkManager) {
        let Some(c) = &self.inner.cluster else { return };
        for key in c.quarantined() {
            let Some(id) = key.rsplit('/').next() else {
                continue;
            };
            let peer =
                super::dataplane::host_peer_name(&switchyard_core::model::endpoint_link_name(id));
            if let Ok(Some(l)) = links.get(&peer).await
                && l.up
            {
                let _ = links.set_up(&peer, false).await;
            }
        }
    }

    async fn sync_remote(&self, links: &LinkManager, net: &NetworkRecord) -> Result<(), String> {
        let Some(cluster) = &self.inner.cluster else {
            return Ok(());
        };
        let Some(vni) = super::vni_of(&net.spec) else {
            return Ok(());
        };
        if !cluster.synced() {
            return Ok(()); // never program from an unknown state
        }
        let remote = cluster.remote_endpoints(vni);
        let want_n: BTreeSet<Neighbour> = remote
            .iter()
            .flat_map(|r| {
                r.ips.iter().map(|ip| Neighbour {
                    ip: *ip,
                    mac: r.mac,
                })
            })
            .collect();
        let want_f: BTreeSet<FdbEntry> = remote
            .iter()
            .map(|r| FdbEntry {
                mac: r.mac,
                dst: r.vtep,
            })
            .collect();
        let dev = vxlan_name(vni);
        let have_n: BTreeSet<Neighbour> = links
            .neighbours(&dev)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .collect();
        // All-zero entries are the static head-end list (-o peers), not ours here.
        let have_f: BTreeSet<FdbEntry> = links
            .fdb(&dev)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|f| f.mac != MacAddr([0; 6]))
            .collect();
        let mut changes = 0;
        for n in want_n.difference(&have_n) {
            links
                .neighbour_replace(&dev, *n)
                .await
                .map_err(|e| e.to_string())?;
            changes += 1;
        }
        for f in want_f.difference(&have_f) {
            links
                .fdb_replace(&dev, *f)
                .await
                .map_err(|e| e.to_string())?;
            changes += 1;
        }
        for n in have_n.difference(&want_n) {
            if !want_n.iter().any(|w| w.ip == n.ip) {
                links
                    .neighbour_del(&dev, *n)
                    .await
                    .map_err(|e| e.to_string())?;
                changes += 1;
            }
        }
        for f in have_f.difference(&want_f) {
            if !want_f.iter().any(|w| w.mac == f.mac) {
                links.fdb_del(&dev, *f).await.map_err(|e| e.to_string())?;
                changes += 1;
            }
        }
        if changes > 0 {
            debug!(
                vni,
                changes,
                remote = remote.len(),
                "programmed remote endpoints"
            );
        }
        self.inner
            .programmed
            .write()
            .unwrap()
            .insert(vni, remote.len());
        Ok(())
    }
}
