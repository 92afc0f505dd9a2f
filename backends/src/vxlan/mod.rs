//! VXLAN: one bridge (`sybr<vni>`) and one VXLAN device (`syvx<vni>`) per
//! network on each host; each endpoint a veth pair whose host end sits in
//! the bridge. Learning is off and ARP is answered by proxy from permanent
//! neighbour entries: every remote endpoint is programmed as a neighbour
//! (IP → MAC, the MAC derived from the IP) and a forwarding entry
//! (MAC → the remote host's VTEP), from the etcd control plane
//! (`cluster.rs` and the files it names) by a level-triggered reconcile
//! (`fdb_sync.rs`).
//!
//! Without etcd a network is single-host, or uses `-o peers=` for static
//! head-end replication with kernel learning.
//!
//! The data plane: `backend.rs` (the `Backend` trait, phase by phase),
//! `network.rs` (the network's devices, VNI choice, restore), `endpoint.rs`
//! (the veth pair, the endpoint's cluster record), `names.rs`,
//! `underlay.rs`, `fdb_sync.rs`. The control plane: `cluster.rs` (the
//! handle the data plane asks), `agent.rs` (the etcd session), `cache.rs`
//! (the cluster cache and what follows from it), `gc.rs`, `claims.rs`,
//! `txn.rs` (the guarded transactions, as data).

mod agent;
mod backend;
mod cache;
mod claims;
pub mod cluster;
mod endpoint;
mod fdb_sync;
pub mod firewall;
mod gc;
pub mod identity;
pub mod inspect;
pub mod ipsec;
pub mod ipsec_keys;
mod kernel_tool;
mod names;
mod network;
mod records;
mod settings;
mod txn;
mod underlay;
mod watch_lag;

#[cfg(test)]
mod cluster_tests;
#[cfg(test)]
mod fake_etcd;

pub use cluster::{Cluster, ClusterConfig, NodeRecord};
pub use names::{bridge_name, host_peer_name, vxlan_name};
pub use settings::{ClusterSettings, TlsFiles, VxlanSettings, build, discover_underlay};
pub use underlay::Underlay;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use switchyard_core::model::NetworkRecord;
use switchyard_core::spec::{BackendOptions, NetworkSpec, VxlanOptions};
use switchyard_core::store::Claims;

#[derive(Clone, Debug)]
pub struct VxlanConfig {
    pub port: u16,
    pub vni_min: u32,
    pub vni_max: u32,
    /// VXLAN only from the cluster's VTEPs (`firewall.rs`).
    pub members_only: bool,
    /// The UDP port of encrypted networks' VXLAN devices: IPsec policies
    /// select their traffic by it (`ipsec.rs`).
    pub encrypted_port: u16,
    /// How often the kernel is reconciled to the control plane's view even
    /// without a change.
    pub resync: std::time::Duration,
}

impl Default for VxlanConfig {
    fn default() -> Self {
        VxlanConfig {
            port: 4789,
            vni_min: 10000,
            vni_max: switchyard_core::spec::VNI_MAX,
            members_only: true,
            encrypted_port: 4793,
            resync: std::time::Duration::from_secs(30),
        }
    }
}

#[derive(Clone)]
pub struct Vxlan {
    state: Arc<VxlanState>,
}

/// What the backend, its reconcile loop and `status` share.
struct VxlanState {
    cfg: VxlanConfig,
    underlay: Underlay,
    cluster: Option<Arc<Cluster>>,
    /// The VXLAN networks of this host, by VNI, for the reconcile loop.
    networks: RwLock<BTreeMap<u32, NetworkRecord>>,
    /// Remote endpoints programmed per VNI at the last reconcile.
    programmed: RwLock<BTreeMap<u32, usize>>,
    /// What the kernel holds per VNI as the last pass left it (`fdb_sync.rs`):
    /// a pass after a cluster change diffs against it instead of dumping
    /// the device's tables; the periodic pass reads the kernel again.
    kernel_seen: std::sync::Mutex<BTreeMap<u32, fdb_sync::Programmed>>,
    /// Held by the reconcile pass over one network and by teardown, so a
    /// pass never re-creates the devices of a network being removed.
    kernel: tokio::sync::Mutex<()>,
    /// The VXLAN allow-list in the kernel (`firewall.rs`).
    firewall: std::sync::Mutex<firewall::FirewallState>,
    /// The IPsec states and policies in the kernel (`ipsec.rs`).
    ipsec: std::sync::Mutex<ipsec::IpsecState>,
    /// What the reconcile loop has done, for `/metrics`.
    reconciled: Reconciled,
}

/// Passes of the kernel reconcile loop and the drift they repaired.
#[derive(Default)]
struct Reconciled {
    runs: std::sync::atomic::AtomicU64,
    /// Neighbour and forwarding entries added, replaced or deleted.
    entries: std::sync::atomic::AtomicU64,
    /// Networks whose bridge or VXLAN device was missing and re-created.
    devices: std::sync::atomic::AtomicU64,
}

impl Vxlan {
    pub fn new(cfg: VxlanConfig, underlay: Underlay, cluster: Option<Arc<Cluster>>) -> Vxlan {
        Vxlan {
            state: Arc::new(VxlanState {
                cfg,
                underlay,
                cluster,
                networks: RwLock::new(BTreeMap::new()),
                programmed: RwLock::new(BTreeMap::new()),
                kernel_seen: Default::default(),
                kernel: tokio::sync::Mutex::new(()),
                firewall: Default::default(),
                ipsec: Default::default(),
                reconciled: Default::default(),
            }),
        }
    }

    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.state.cluster.as_ref()
    }

    /// The cluster's address claims, when a cluster is configured.
    pub fn claims(&self) -> Option<Arc<dyn Claims>> {
        self.state.cluster.clone().map(|c| c as Arc<dyn Claims>)
    }

    pub fn underlay(&self) -> &Underlay {
        &self.state.underlay
    }

    /// This host in the cluster, for `switchyard status` (None without etcd).
    pub fn cluster_status(&self) -> Option<ClusterStatus> {
        let c = self.state.cluster.as_ref()?;
        Some(ClusterStatus {
            host_id: c.host_id().to_string(),
            vtep: c.node().vtep.to_string(),
            etcd: c.endpoints_config().join(","),
            registered: c.registered(),
            problem: c.problem(),
            etcd_error: c.last_error(),
        })
    }
}

/// This host in the cluster, as `switchyard status` shows it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct ClusterStatus {
    pub host_id: String,
    pub vtep: String,
    pub etcd: String,
    /// Registered with etcd now (its `alive/` key is this agent's).
    pub registered: bool,
    /// Why this host is not a member of the cluster (another live agent
    /// uses its host id), if it is not.
    pub problem: Option<String>,
    /// Why the last attempt to reach etcd failed (unreachable, TLS,
    /// authentication), while this host is not registered.
    #[serde(default)]
    pub etcd_error: Option<String>,
}

fn options(spec: &NetworkSpec) -> &VxlanOptions {
    match &spec.backend {
        BackendOptions::Vxlan(v) => v,
        other => unreachable!("vxlan backend given a {} network", other.kind()),
    }
}

pub fn vni_of(spec: &NetworkSpec) -> Option<u32> {
    match &spec.backend {
        BackendOptions::Vxlan(v) => v.vni,
        _ => None,
    }
}
