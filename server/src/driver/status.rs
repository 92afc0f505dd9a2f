//! What `switchyard status` shows: networks and endpoints from the state,
//! with what the kernel says about their links.

use super::Driver;
use serde::{Deserialize, Serialize};
use std::fmt::Write;
use std::path::Path;
use switchyard_core::model::{EndpointRecord, NetworkRecord};
use switchyard_core::protocol::short_id;

#[derive(Debug, Serialize, Deserialize)]
pub struct StatusReport {
    pub instance: String,
    pub state_file: String,
    /// The engine dockerd's API says it is ("29"), when it was asked.
    #[serde(default)]
    pub engine: Option<String>,
    /// This host in the VXLAN cluster (host id, VTEP, problem), with etcd.
    #[serde(default)]
    pub cluster: Option<switchyard_backends::ClusterStatus>,
    pub networks: Vec<NetworkStatus>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct NetworkStatus {
    pub id: String,
    pub backend: String,
    pub parent: Option<String>,
    pub mode: Option<String>,
    pub internal: bool,
    pub mtu: Option<u32>,
    pub subnets: Vec<String>,
    pub problem: Option<String>,
    /// Backend-specific facts (VXLAN: VTEP, peers, remote endpoints).
    #[serde(default)]
    pub details: std::collections::BTreeMap<String, String>,
    pub endpoints: Vec<EndpointStatus>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct EndpointStatus {
    pub id: String,
    pub link: String,
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
    pub mac: Option<String>,
    /// `host` (link in this namespace), `container` (joined), `absent`.
    pub where_: String,
}

/// `present`: whether a link exists (None: unknown); `down`: whether it
/// exists and is administratively down.
pub fn network_status(
    net: &NetworkRecord,
    eps: &[EndpointRecord],
    present: &dyn Fn(&str) -> Option<bool>,
    down: &dyn Fn(&str) -> bool,
) -> NetworkStatus {
    let parent_link = net.spec.backend.parent().map(|p| p.link_name(&net.id));
    let parent = net.spec.backend.parent().map(|p| match p {
        switchyard_core::spec::Parent::Isolated { .. } => {
            format!("{} (isolated)", p.link_name(&net.id))
        }
        p => p.describe(),
    });
    let mode = Some(net.spec.backend.mode());
    let access = switchyard_backends::parent::host_access::link_name(&net.id);
    let problem = match parent_link.as_deref().map(|p| (p, present(p))) {
        Some((p, Some(false))) => Some(format!("parent {p} does not exist on this host")),
        Some((p, _)) if down(p) => Some(switchyard_backends::parent::down_warning(p)),
        _ if net.spec.host_access.is_some() && present(&access) == Some(false) => Some(format!(
            "the host access link {access} is missing: the host cannot reach the network's containers until a container joins or switchyard restarts (both make it again)"
        )),
        _ => None,
    };
    NetworkStatus {
        id: net.id.clone(),
        backend: net.spec.backend.kind().to_string(),
        parent,
        mode,
        internal: net.spec.internal,
        mtu: net.spec.mtu,
        subnets: net
            .spec
            .ipv4
            .iter()
            .chain(&net.spec.ipv6)
            .map(|s| match s.gateway {
                Some(g) => format!("{} gw {g}", s.pool),
                None => s.pool.to_string(),
            })
            .collect(),
        problem,
        details: Default::default(),
        endpoints: eps
            .iter()
            .map(|e| EndpointStatus {
                id: e.id.clone(),
                link: e.link_name.clone(),
                ipv4: e.ipv4.map(|a| a.to_string()),
                ipv6: e.ipv6.map(|a| a.to_string()),
                mac: e.mac.map(|m| m.to_string()),
                where_: match (present(&e.link_name), &e.sandbox_key) {
                    (Some(true), _) => "host".into(),
                    (_, Some(sb)) if Path::new(sb).exists() => "container".into(),
                    (None, _) => "unknown".into(),
                    _ => "absent".into(),
                },
            })
            .collect(),
    }
}

impl Driver {
    pub async fn status(&self) -> StatusReport {
        let links: Option<std::collections::HashMap<String, bool>> = self
            .links
            .list()
            .await
            .ok()
            .map(|l| l.into_iter().map(|l| (l.name, l.up)).collect());
        let present = |n: &str| links.as_ref().map(|v| v.contains_key(n));
        let down = |n: &str| links.as_ref().and_then(|v| v.get(n)) == Some(&false);
        StatusReport {
            instance: self.instance.clone(),
            state_file: self.store.path().display().to_string(),
            engine: Some(self.policy.engine_memory.told())
                .filter(|e| *e != switchyard_core::spec::Engine::Unknown)
                .map(|e| e.to_string()),
            cluster: self.backends.cluster_status(),
            networks: self
                .store
                .networks()
                .iter()
                .map(|n| {
                    let mut s = network_status(n, &self.store.endpoints(&n.id), &present, &down);
                    s.details =
                        switchyard_backends::Backend::describe(self.backends.for_network(n), n);
                    for ((_, ep), l) in self
                        .store
                        .leases()
                        .iter()
                        .filter(|((nid, _), _)| nid == &n.id)
                    {
                        s.details.insert(
                            format!("dhcp lease {}", short_id(ep)),
                            format!(
                                "{} gateway {} server {} expires in {} s",
                                l.address,
                                l.gateway
                                    .map(|g| g.to_string())
                                    .unwrap_or_else(|| "none".into()),
                                l.server,
                                l.expires_at().saturating_sub(switchyard_core::model::now())
                            ),
                        );
                    }
                    s
                })
                .collect(),
        }
    }
}

impl Driver {
    /// The background work's samples for `/metrics`: the backends' own
    /// loops, and the link deletions still queued.
    pub fn background_metrics(&self) -> Vec<switchyard_backends::metrics::Sample> {
        use switchyard_backends::metrics::Sample;
        let d = self.links.deferred_deletions();
        let mut out = vec![
            Sample::gauge(
                "deferred_deletions_pending",
                "Endpoint links handed to the background deleter and not deleted yet",
                d.pending as f64,
            ),
            Sample::counter(
                "deferred_deletions",
                "Endpoint links the background deleter has dealt with",
                d.done as f64,
            ),
        ];
        out.extend(self.backends.metrics());
        out
    }
}

impl StatusReport {
    /// A terminal-friendly rendering.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Switchyard instance \"{}\" — state {} — {} network(s)",
            self.instance,
            self.state_file,
            self.networks.len()
        );
        if let Some(e) = &self.engine {
            let _ = writeln!(s, "dockerd: Engine {e} (answered as its built-in drivers)");
        }
        if let Some(c) = &self.cluster {
            let _ = writeln!(
                s,
                "cluster: host id {}  vtep {}  etcd {}  {}",
                c.host_id,
                c.vtep,
                c.etcd,
                if c.registered {
                    "registered"
                } else {
                    "not registered"
                }
            );
            if let Some(p) = &c.problem {
                let _ = writeln!(s, "CLUSTER PROBLEM: {p}");
            } else if let Some(e) = c.etcd_error.as_ref().filter(|_| !c.registered) {
                let _ = writeln!(s, "ETCD PROBLEM: {e}");
            }
        }
        for n in &self.networks {
            let _ = writeln!(s);
            let _ = writeln!(
                s,
                "NETWORK {}  backend={}{}{}{}{}",
                short_id(&n.id),
                n.backend,
                n.parent
                    .as_deref()
                    .map(|p| format!(" parent={p}"))
                    .unwrap_or_default(),
                n.mode
                    .as_deref()
                    .map(|m| format!(" mode={m}"))
                    .unwrap_or_default(),
                n.mtu.map(|m| format!(" mtu={m}")).unwrap_or_default(),
                if n.internal { " internal" } else { "" },
            );
            if !n.subnets.is_empty() {
                let _ = writeln!(s, "  subnets: {}", n.subnets.join(", "));
            }
            if !n.details.is_empty() {
                let d: Vec<String> = n.details.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let _ = writeln!(s, "  {}", d.join("  "));
            }
            if let Some(p) = &n.problem {
                let _ = writeln!(s, "  PROBLEM: {p}");
            }
            if n.endpoints.is_empty() {
                let _ = writeln!(s, "  no endpoints");
                continue;
            }
            let _ = writeln!(
                s,
                "  {:<12}  {:<13}  {:<18}  {:<24}  {:<17}  WHERE",
                "ENDPOINT", "LINK", "IPV4", "IPV6", "MAC"
            );
            for e in &n.endpoints {
                let _ = writeln!(
                    s,
                    "  {:<12}  {:<13}  {:<18}  {:<24}  {:<17}  {}",
                    short_id(&e.id),
                    e.link,
                    e.ipv4.as_deref().unwrap_or("-"),
                    e.ipv6.as_deref().unwrap_or("-"),
                    e.mac.as_deref().unwrap_or("-"),
                    e.where_
                );
            }
        }
        s
    }
}
