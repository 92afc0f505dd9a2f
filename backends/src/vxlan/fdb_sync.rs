//! The kernel side of the control plane: for every local VXLAN network, make
//! the device's permanent neighbours and forwarding entries equal to the
//! remote endpoints in the cluster cache — after every change and on a
//! timer. Entries that already match are not touched (a restarted plugin
//! causes no netlink churn); nothing runs before the first etcd list.

use super::cluster::RemoteEndpoint;
use super::names::{bridge_name, host_peer_of_endpoint, vxlan_name};
use super::{Vxlan, vni_of};
use crate::Host;
use crate::metrics::Sample;
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Duration;
use switchyard_core::link::{FdbEntry, LinkManager, Neighbour};
use switchyard_core::mac::MacAddr;
use switchyard_core::model::NetworkRecord;
use tracing::{debug, warn};

/// What one pass changes on a VXLAN device.
#[derive(Debug, Default, PartialEq)]
pub(super) struct FdbChanges {
    pub add_neighbours: Vec<Neighbour>,
    pub add_fdb: Vec<FdbEntry>,
    pub del_neighbours: Vec<Neighbour>,
    pub del_fdb: Vec<FdbEntry>,
}

/// A VXLAN device's remote entries (neighbours, forwarding entries).
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Programmed {
    pub neighbours: BTreeSet<Neighbour>,
    pub fdb: BTreeSet<FdbEntry>,
}

impl Programmed {
    /// The entries that make `remote` reachable. Once a pass has applied
    /// its changes the device holds exactly these: a replace keyed by IP
    /// (neighbours) or MAC (forwarding) moves an entry, the rest is deleted.
    pub(super) fn wanted(remote: &[RemoteEndpoint]) -> Programmed {
        Programmed {
            neighbours: remote
                .iter()
                .flat_map(|r| {
                    r.ips.iter().map(|ip| Neighbour {
                        ip: *ip,
                        mac: r.mac,
                    })
                })
                .collect(),
            fdb: remote
                .iter()
                .map(|r| FdbEntry {
                    mac: r.mac,
                    dst: r.vtep,
                })
                .collect(),
        }
    }
}

impl FdbChanges {
    /// From what the device has to the remote endpoints: entries missing
    /// are added (replaced); an entry is deleted only if no wanted entry has
    /// its IP (neighbours) or MAC (forwarding), as a replace moves those.
    pub(super) fn between(
        remote: &[RemoteEndpoint],
        have_n: &BTreeSet<Neighbour>,
        have_f: &BTreeSet<FdbEntry>,
    ) -> FdbChanges {
        let Programmed {
            neighbours: want_n,
            fdb: want_f,
        } = Programmed::wanted(remote);
        FdbChanges {
            add_neighbours: want_n.difference(have_n).copied().collect(),
            add_fdb: want_f.difference(have_f).copied().collect(),
            del_neighbours: have_n
                .difference(&want_n)
                .filter(|n| !want_n.iter().any(|w| w.ip == n.ip))
                .copied()
                .collect(),
            del_fdb: have_f
                .difference(&want_f)
                .filter(|f| !want_f.iter().any(|w| w.mac == f.mac))
                .copied()
                .collect(),
        }
    }

    fn len(&self) -> usize {
        self.add_neighbours.len()
            + self.add_fdb.len()
            + self.del_neighbours.len()
            + self.del_fdb.len()
    }
}

impl Vxlan {
    /// Runs the reconcile loop forever (spawn it).
    pub async fn run_reconciler(self, links: LinkManager, instance: String, period: Duration) {
        let changed = self.state.cluster.as_ref().map(|c| c.changed.clone());
        let mut tick = tokio::time::interval(period);
        loop {
            let periodic = match &changed {
                Some(n) => {
                    tokio::select! {
                        _ = n.notified() => {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            false
                        }
                        _ = tick.tick() => true,
                    }
                }
                None => {
                    tick.tick().await;
                    true
                }
            };
            let host = Host {
                links: &links,
                instance: &instance,
            };
            let nets: Vec<NetworkRecord> = self
                .state
                .networks
                .read()
                .unwrap()
                .values()
                .cloned()
                .collect();
            for net in nets {
                let _kernel = self.state.kernel.lock().await;
                let vni = vni_of(&net.spec);
                if !vni.is_some_and(|v| self.state.networks.read().unwrap().contains_key(&v)) {
                    continue; // removed since the list was taken
                }
                let missing = self.devices_missing(&links, &net).await;
                if let Err(e) = self.ensure_devices(&host, &net).await {
                    warn!(error = %e, "VXLAN devices could not be repaired");
                    continue;
                }
                if missing {
                    self.state
                        .kernel_seen
                        .lock()
                        .unwrap()
                        .remove(&vni.unwrap_or(0));
                    warn!(
                        network = %net.id,
                        "the network's bridge or VXLAN device was missing and was re-created"
                    );
                    self.state
                        .reconciled
                        .devices
                        .fetch_add(1, Ordering::Relaxed);
                }
                if let Err(e) = self.sync_remote(&links, &net, periodic).await {
                    warn!(error = %e, "remote endpoints could not be programmed");
                }
                self.hold_quarantined_down(&links).await;
            }
            self.sync_firewall(periodic).await;
            self.sync_ipsec(periodic).await;
            self.state.reconciled.runs.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whether the bridge or the VXLAN device of `net` is missing (a
    /// lookup that fails counts as present: nothing to say it drifted).
    async fn devices_missing(&self, links: &LinkManager, net: &NetworkRecord) -> bool {
        let Some(vni) = vni_of(&net.spec) else {
            return false;
        };
        for name in [bridge_name(vni), vxlan_name(vni)] {
            if let Ok(None) = links.get(&name).await {
                return true;
            }
        }
        false
    }

    /// The reconcile loop's work and the remote endpoints it programmed,
    /// for `/metrics`.
    pub(super) fn reconcile_metrics(&self) -> Vec<Sample> {
        let r = &self.state.reconciled;
        let mut out = vec![
            Sample::counter(
                "reconcile_runs",
                "Reconcile passes over the kernel (startup: once per start; vxlan: after each cluster change and every resync)",
                r.runs.load(Ordering::Relaxed) as f64,
            )
            .label("loop", "vxlan"),
            Sample::counter(
                "drift_repaired",
                "Kernel objects found different from the state and repaired, by loop and kind",
                r.entries.load(Ordering::Relaxed) as f64,
            )
            .label("loop", "vxlan")
            .label("what", "fdb_neighbour_entries"),
            Sample::counter(
                "drift_repaired",
                "Kernel objects found different from the state and repaired, by loop and kind",
                r.devices.load(Ordering::Relaxed) as f64,
            )
            .label("loop", "vxlan")
            .label("what", "vxlan_devices"),
        ];
        let programmed = self.state.programmed.read().unwrap();
        for (vni, net) in self.state.networks.read().unwrap().iter() {
            out.push(
                Sample::gauge(
                    "vxlan_remote_endpoints",
                    "Remote endpoints programmed into the kernel at the last reconcile, per VXLAN network",
                    programmed.get(vni).copied().unwrap_or(0) as f64,
                )
                .label("network", net.id.chars().take(12).collect::<String>())
                .label("vni", vni.to_string()),
            );
        }
        out
    }

    /// Keeps the links of quarantined endpoints down (their address belongs
    /// to another host now).
    async fn hold_quarantined_down(&self, links: &LinkManager) {
        let Some(c) = &self.state.cluster else { return };
        for key in c.quarantined() {
            let Some(id) = key.rsplit('/').next() else {
                continue;
            };
            let peer = host_peer_of_endpoint(id);
            if let Ok(Some(l)) = links.get(&peer).await
                && l.up
            {
                let _ = links.set_up(&peer, false).await;
            }
        }
    }

    /// Makes the device's remote entries those of the cluster cache. After a
    /// cluster change (`periodic` false) it diffs against what the last
    /// pass left, which saves two table dumps per network per change on
    /// every host; the periodic pass (and any pass after a failure, or
    /// with no earlier pass) reads the kernel, so drift is still repaired.
    async fn sync_remote(
        &self,
        links: &LinkManager,
        net: &NetworkRecord,
        periodic: bool,
    ) -> Result<(), String> {
        let Some(cluster) = &self.state.cluster else {
            return Ok(());
        };
        let Some(vni) = vni_of(&net.spec) else {
            return Ok(());
        };
        if !cluster.synced() {
            return Ok(()); // never program from an unknown state
        }
        let remote = cluster.remote_endpoints(vni);
        let dev = vxlan_name(vni);
        let err = |e: switchyard_core::link::LinkError| e.to_string();
        // Until this pass succeeds, the next one reads the kernel.
        let seen = self.state.kernel_seen.lock().unwrap().remove(&vni);
        let have = match seen {
            Some(p) if !periodic => p,
            _ => self.read_kernel(links, &dev).await?,
        };
        let (have_n, have_f) = (have.neighbours, have.fdb);
        let changes = FdbChanges::between(&remote, &have_n, &have_f);
        for n in &changes.add_neighbours {
            links.neighbour_replace(&dev, *n).await.map_err(err)?;
        }
        for f in &changes.add_fdb {
            links.fdb_replace(&dev, *f).await.map_err(err)?;
        }
        for n in &changes.del_neighbours {
            links.neighbour_del(&dev, *n).await.map_err(err)?;
        }
        for f in &changes.del_fdb {
            links.fdb_del(&dev, *f).await.map_err(err)?;
        }
        self.state
            .reconciled
            .entries
            .fetch_add(changes.len() as u64, Ordering::Relaxed);
        if changes.len() > 0 {
            debug!(
                vni,
                changes = changes.len(),
                remote = remote.len(),
                "programmed remote endpoints"
            );
        }
        self.state
            .programmed
            .write()
            .unwrap()
            .insert(vni, remote.len());
        if self.state.networks.read().unwrap().contains_key(&vni) {
            self.state
                .kernel_seen
                .lock()
                .unwrap()
                .insert(vni, Programmed::wanted(&remote));
        }
        Ok(())
    }

    /// The device's remote entries as the kernel holds them. All-zero
    /// forwarding entries are the static head-end list (-o peers), not
    /// remote endpoints.
    async fn read_kernel(&self, links: &LinkManager, dev: &str) -> Result<Programmed, String> {
        let err = |e: switchyard_core::link::LinkError| e.to_string();
        Ok(Programmed {
            neighbours: links
                .neighbours(dev)
                .await
                .map_err(err)?
                .into_iter()
                .collect(),
            fdb: links
                .fdb(dev)
                .await
                .map_err(err)?
                .into_iter()
                .filter(|f| f.mac != MacAddr([0; 6]))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn remote(addr: &str, vtep: &str) -> RemoteEndpoint {
        RemoteEndpoint {
            ips: vec![ip(addr)],
            mac: MacAddr::from_ip(ip(addr)),
            vtep: ip(vtep),
        }
    }

    #[test]
    fn adds_what_is_missing_and_leaves_what_matches() {
        let r = [
            remote("10.0.0.2", "192.0.2.2"),
            remote("10.0.0.3", "192.0.2.3"),
        ];
        let empty = FdbChanges::between(&r, &BTreeSet::new(), &BTreeSet::new());
        assert_eq!(
            (empty.add_neighbours.len(), empty.add_fdb.len(), empty.len()),
            (2, 2, 4)
        );
        let have_n = empty.add_neighbours.iter().copied().collect();
        let have_f = empty.add_fdb.iter().copied().collect();
        assert_eq!(
            FdbChanges::between(&r, &have_n, &have_f),
            FdbChanges::default()
        );
    }

    #[test]
    fn a_moved_endpoint_is_replaced_not_deleted() {
        let before = [remote("10.0.0.2", "192.0.2.2")];
        let c = FdbChanges::between(&before, &BTreeSet::new(), &BTreeSet::new());
        let have_n: BTreeSet<_> = c.add_neighbours.into_iter().collect();
        let have_f: BTreeSet<_> = c.add_fdb.into_iter().collect();
        // Same IP and MAC, another host: one forwarding replace, no delete.
        let after = [remote("10.0.0.2", "192.0.2.9")];
        let c = FdbChanges::between(&after, &have_n, &have_f);
        assert_eq!(
            c.add_fdb,
            vec![FdbEntry {
                mac: after[0].mac,
                dst: ip("192.0.2.9")
            }]
        );
        assert!(c.add_neighbours.is_empty() && c.del_neighbours.is_empty() && c.del_fdb.is_empty());
        // Gone: both entries deleted.
        let c = FdbChanges::between(&[], &have_n, &have_f);
        assert_eq!(
            (c.del_neighbours.len(), c.del_fdb.len(), c.len()),
            (1, 1, 2)
        );
    }

    /// What a pass after a cluster change assumes the device holds: the
    /// kernel's replace-by-key and the deletions of `between` turn any
    /// earlier content into exactly `wanted`.
    #[test]
    fn applying_the_changes_leaves_exactly_the_wanted_entries() {
        let old = [
            remote("10.0.0.2", "192.0.2.2"),
            remote("10.0.0.3", "192.0.2.3"),
            remote("10.0.0.4", "192.0.2.4"),
        ];
        // .3 moved to another host, .4 left, .5 came; and a stray entry.
        let mut moved = remote("10.0.0.3", "192.0.2.9");
        moved.mac = MacAddr([2, 0, 0, 0, 0, 0x33]);
        let new = [
            remote("10.0.0.2", "192.0.2.2"),
            moved,
            remote("10.0.0.5", "192.0.2.5"),
        ];
        let mut kernel = Programmed::wanted(&old);
        kernel.fdb.insert(FdbEntry {
            mac: MacAddr([2, 0, 0, 0, 0, 0x77]),
            dst: ip("192.0.2.7"),
        });
        let c = FdbChanges::between(&new, &kernel.neighbours, &kernel.fdb);
        // The kernel's semantics: a replace is keyed by IP (neighbours) and
        // by MAC (forwarding entries).
        for n in c.add_neighbours {
            kernel.neighbours.retain(|k| k.ip != n.ip);
            kernel.neighbours.insert(n);
        }
        for f in c.add_fdb {
            kernel.fdb.retain(|k| k.mac != f.mac);
            kernel.fdb.insert(f);
        }
        for n in c.del_neighbours {
            assert!(kernel.neighbours.remove(&n), "deleting {n:?}, not there");
        }
        for f in c.del_fdb {
            assert!(kernel.fdb.remove(&f), "deleting {f:?}, not there");
        }
        assert_eq!(kernel, Programmed::wanted(&new));
    }
}
