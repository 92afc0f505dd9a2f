//! VXLAN: one bridge (`sybr<vni>`) and one VXLAN device (`syvx<vni>`) per
//! network on each host; each endpoint a veth pair whose host end sits in
//! the bridge. Learning is off and ARP is answered by proxy from permanent
//! neighbour entries: every remote endpoint is programmed as a neighbour
//! (IP → MAC, the MAC derived from the IP) and a forwarding entry
//! (MAC → the remote host's VTEP), from the etcd control plane
//! (`cluster.rs`) by a level-triggered reconcile (`reconcile.rs`).
//!
//! Without etcd a network is single-host, or uses `-o peers=` for static
//! head-end replication with kernel learning.
//!
//! Split as libnetwork's drivers are: `network.rs` (validate, setup,
//! teardown), `endpoint.rs` (links and join), `dataplane.rs` (names, plans,
//! the underlay), `cluster.rs`, `reconcile.rs`.

pub mod cluster;
mod dataplane;
mod endpoint;
mod network;
mod reconcile;
mod settings;

pub use cluster::{Cluster, ClusterConfig, NodeRecord};
pub use dataplane::{Underlay, bridge_name, host_peer_name, vxlan_name};
pub use settings::{ClusterSettings, VxlanSettings, build};

use crate::Host;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use switchyard_core::Result;
use switchyard_core::link::{Link, LinkManager, LinkPlan};
use switchyard_core::mac::MacAddr;
use switchyard_core::model::{EndpointRecord, GatewayAllocation, JoinAnswer, NetworkRecord};
use switchyard_core::spec::{BackendOptions, NetworkSpec, VxlanOptions};

#[derive(Clone, Debug)]
pub struct VxlanConfig {
    pub port: u16,
    pub vni_min: u32,
    pub vni_max: u32,
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
            resync: std::time::Duration::from_secs(30),
        }
    }
}

#[derive(Clone)]
pub struct Vxlan {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: VxlanConfig,
    underlay: Underlay,
    cluster: Option<Arc<Cluster>>,
    /// The VXLAN networks of this host, by VNI, for the reconcile loop.
    networks: RwLock<BTreeMap<u32, NetworkRecord>>,
    /// Remote endpoints programmed per VNI at the last reconcile.
    programmed: RwLock<BTreeMap<u32, usize>>,
    /// Held by the reconcile pass over one network and by teardown, so a
    /// pass never re-creates the devices of a network being removed.
    kernel: tokio::sync::Mutex<()>,
}

impl Vxlan {
    pub fn new(cfg: VxlanConfig, underlay: Underlay, cluster: Option<Arc<Cluster>>) -> Vxlan {
        Vxlan {
            inner: Arc::new(Inner {
                cfg,
                underlay,
                cluster,
                networks: RwLock::new(BTreeMap::new()),
                programmed: RwLock::new(BTreeMap::new()),
                kernel: tokio::sync::Mutex::new(()),
            }),
        }
    }

    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.inner.cluster.as_ref()
    }

    pub fn underlay(&self) -> &Underlay {
        &self.inner.underlay
    }

    /// What `status` shows for one VXLAN network.
    pub fn describe(&self, net: &NetworkRecord) -> BTreeMap<String, String> {
        let mut d = BTreeMap::new();
        let Some(vni) = vni_of(&net.spec) else {
            return d;
        };
        d.insert("vni".into(), vni.to_string());
        d.insert(
            "local_vtep".into(),
            self.inner
                .underlay
                .vtep
                .map(|v| v.to_string())
                .unwrap_or_else(|| "none (single host)".into()),
        );
        let peers: Vec<String> = match (&self.inner.cluster, options(&net.spec)) {
            (Some(c), _) => c
                .peers(vni)
                .into_iter()
                .map(|(h, ip)| format!("{h}={ip}"))
                .collect(),
            (None, o) => o.peers.iter().map(IpAddr::to_string).collect(),
        };
        d.insert(
            "peers".into(),
            if peers.is_empty() {
                "-".into()
            } else {
                peers.join(",")
            },
        );
        let n = self
            .inner
            .programmed
            .read()
            .unwrap()
            .get(&vni)
            .copied()
            .unwrap_or(0);
        d.insert("remote_endpoints".into(), n.to_string());
        d
    }
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

impl crate::Backend for Vxlan {
    fn kind(&self) -> switchyard_core::spec::BackendKind {
        switchyard_core::spec::BackendKind::Vxlan
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
        self.validate(spec, others).await
    }

    async fn resolve_network(
        &self,
        _host: &Host<'_>,
        spec: NetworkSpec,
        others: &[NetworkRecord],
    ) -> Result<NetworkSpec> {
        self.resolve(spec, others)
    }

    fn describe(&self, net: &NetworkRecord) -> BTreeMap<String, String> {
        Vxlan::describe(self, net)
    }

    async fn setup_network(&self, host: &Host<'_>, net: &NetworkRecord) -> Result<()> {
        self.setup(host, net).await
    }

    async fn teardown_network(
        &self,
        host: &Host<'_>,
        net: &NetworkRecord,
        _remaining: &[NetworkRecord],
    ) -> Result<()> {
        self.teardown(host, net).await
    }

    fn endpoint_mac(
        &self,
        _net: &NetworkRecord,
        ep: &EndpointRecord,
        requested: Option<MacAddr>,
    ) -> Result<Option<MacAddr>> {
        Ok(Some(requested.unwrap_or_else(|| {
            Vxlan::mac(ep.ipv4.map(|a| a.addr()), ep.ipv6.map(|a| a.addr()), &ep.id)
        })))
    }

    fn plan_endpoint(&self, instance: &str, net: &NetworkRecord, ep: &EndpointRecord) -> LinkPlan {
        self.veth_plan(instance, net, ep)
    }

    fn join_answer(&self, _net: &NetworkRecord, ep: &EndpointRecord) -> JoinAnswer {
        self.answer(ep)
    }

    async fn create_endpoint_link(
        &self,
        host: &Host<'_>,
        net: &NetworkRecord,
        ep: &EndpointRecord,
    ) -> Result<Link> {
        self.create_link(host, net, ep).await
    }

    /// The host end never leaves this namespace; deleting it deletes both.
    fn endpoint_host_link(&self, ep: &EndpointRecord) -> String {
        host_peer_name(&ep.link_name)
    }

    fn endpoint_removed(&self, net: &NetworkRecord, ep: &EndpointRecord) {
        if let (Some(c), Some(vni)) = (&self.inner.cluster, vni_of(&net.spec)) {
            c.withdraw_endpoint(vni, &ep.id);
        }
    }

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

    fn start(&self, links: &LinkManager, instance: &str) {
        if let Some(c) = self.cluster() {
            tokio::spawn(c.clone().run());
        }
        tokio::spawn(self.clone().run_reconciler(
            links.clone(),
            instance.to_string(),
            self.inner.cfg.resync,
        ));
    }
}
