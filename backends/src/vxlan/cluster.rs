//! The multi-host control plane on etcd (`../shared/docs/multihost.md` §6):
//! the `Cluster` handle the data plane asks, and what it asks.
//!
//! One agent task per plugin (`agent.rs`), level-triggered: register, list
//! the prefix, watch from the list's revision + 1, list again on any watch
//! failure or compaction. Its cache (`cache.rs`) is what the kernel
//! reconcile reads; nothing is programmed before the first list, and
//! nothing is flushed because etcd is unreachable.
//!
//! This host's own keys (its endpoints and the networks it joined) are kept
//! here as *desired* state and written by the agent until etcd has them: so
//! a host that returns, or a plugin that restarts, re-asserts what it owns,
//! and stale keys of its own are deleted. Records of hosts gone longer than
//! the grace period are collected (`gc.rs`); address claims: `claims.rs`.

use super::cache::ClusterCache;
use super::gc::DeadHosts;
use super::records::{endpoint_key, held_by, member_key, network_key, ser};
use super::txn::{Guard, Guarded, Write};
use crate::metrics::Sample;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use switchyard_core::model::EndpointRecord;
use switchyard_core::{Error, Result};
use tokio::sync::Notify;
use tracing::{info, warn};

pub use super::records::{ClaimEntry, EndpointEntry, NetworkEntry, NodeRecord, RemoteEndpoint};

#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub endpoints: Vec<String>,
    pub host_id: String,
    /// Ends with '/'.
    pub prefix: String,
    pub lease_ttl: i64,
    pub gc_grace: Duration,
    pub resync: Duration,
    /// How often the IPsec keys of encrypted networks are rotated.
    pub key_rotation: Duration,
    /// `[plugin] state_dir`: the lease is kept there across restarts, so a
    /// restarted plugin resumes its own `alive/` key instead of meeting it
    /// as another agent's.
    pub state_dir: Option<std::path::PathBuf>,
    /// TLS material for https:// endpoints, or why the files could not be
    /// used (then every connection attempt fails with it).
    pub tls: std::result::Result<Option<super::settings::TlsFiles>, String>,
    /// etcd user and password.
    pub user: Option<(String, String)>,
}

pub struct Cluster {
    pub(super) cfg: ClusterConfig,
    pub(super) node: NodeRecord,
    pub(super) client: tokio::sync::OnceCell<etcd_client::Client>,
    pub(super) cache: RwLock<ClusterCache>,
    pub(super) synced: AtomicBool,
    /// Keys this host owns and wants in etcd (relative to the prefix).
    pub(super) desired: Mutex<BTreeMap<String, Vec<u8>>>,
    /// Wakes the agent (desired keys changed).
    pub(super) kick: Notify,
    /// This host's encrypted networks (`ipsec_keys.rs`).
    pub(super) encrypted: Mutex<BTreeSet<u32>>,
    /// Wakes the kernel reconcile (the cache changed).
    pub changed: Arc<Notify>,
    pub(super) dead: Mutex<DeadHosts>,
    /// This host's endpoints whose address another host holds now (it was
    /// given away while this host was gone): never re-asserted, their links
    /// are kept down.
    pub(super) quarantined: Mutex<BTreeSet<String>>,
    /// The lease behind `alive/<host>`, kept across sessions of this process.
    pub(super) lease: Mutex<Option<i64>>,
    /// Why this host is not a member of the cluster now (another live agent
    /// holds its identity, or the live hosts' VTEPs are of the other
    /// address family): writes are refused while it is set.
    pub(super) fenced: Mutex<Option<String>>,
    /// Whether this host is registered (its `alive/` key is its own).
    pub(super) registered: AtomicBool,
    /// Why the last etcd session failed, until one registers again.
    pub(super) last_error: Mutex<Option<String>>,
    /// etcd sessions begun (each a connection, registration, list, watch).
    pub(super) sessions: std::sync::atomic::AtomicU64,
    /// How far the cache is behind etcd (`watch_lag.rs`).
    pub(super) watch_lag: Mutex<super::watch_lag::WatchLag>,
}

/// Deletes network `vni`'s record while no member and no endpoint is left.
pub(super) fn forget_network_if_unused(vni: u32) -> Guarded {
    Guarded {
        when: vec![
            Guard::PrefixEmpty(format!("members/{vni}/")),
            Guard::PrefixEmpty(format!("endpoints/{vni}/")),
        ],
        then: vec![Write::Delete(network_key(vni))],
        or_read: None,
    }
}

pub(super) fn etcd_err(cfg: &ClusterConfig, what: &str, e: etcd_client::Error) -> Error {
    Error::Conflict(format!(
        "{what}: etcd at {} did not answer ({}); multi-host VXLAN needs the cluster store — {}",
        cfg.endpoints.join(","),
        describe(&e),
        hint(cfg, &describe(&e))
    ))
}

/// An error with its causes (tonic and rustls keep the reason there).
pub(super) fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// What the operator should look at, given an etcd error's text.
pub(super) fn hint(cfg: &ClusterConfig, text: &str) -> &'static str {
    let t = text.to_lowercase();
    let tls = matches!(cfg.tls, Ok(Some(_)));
    let cert = matches!(&cfg.tls, Ok(Some(t)) if t.identity.is_some());
    // etcd refused this host's certificate (or its absence): a TLS alert,
    // or the connection closed after the handshake (TLS 1.3).
    let refused = t.contains("badcertificate")
        || t.contains("certificaterequired")
        || t.contains("unknownca")
        || t.contains("connection closed")
        || t.contains("canceled")
        || t.contains("reset")
        || t.contains("broken pipe");
    if t.contains("invalid peer certificate") || t.contains("unknownissuer") {
        "etcd's server certificate is not trusted: set [cluster] ca_file to the CA that signed it (etcd's --cert-file), and make sure the certificate names the address in [cluster] etcd_endpoints"
    } else if tls && !cert && refused {
        "etcd refused the TLS connection: if it runs with --client-cert-auth, set [cluster] cert_file and key_file to a client certificate signed by a CA in its --trusted-ca-file"
    } else if tls && refused {
        "etcd refused the TLS connection: check that [cluster] cert_file (with key_file) is signed by a CA in etcd's --trusted-ca-file and is valid for client authentication"
    } else if t.contains("certificate") || t.contains("handshake") {
        "check [cluster] ca_file (the CA that signed etcd's server certificate), cert_file and key_file (a client certificate etcd's --trusted-ca-file accepts)"
    } else if t.contains("authentication")
        || t.contains("password")
        || t.contains("user name")
        || t.contains("permission denied")
        || t.contains("invalid auth token")
    {
        "check [cluster] username and password (an etcd user with read/write on [cluster] prefix)"
    } else {
        "check [cluster] etcd_endpoints and that etcd runs"
    }
}

impl Cluster {
    pub fn new(cfg: ClusterConfig, node: NodeRecord) -> Arc<Cluster> {
        Arc::new(Cluster {
            cache: RwLock::new(ClusterCache::new(&cfg.host_id)),
            cfg,
            node,
            client: tokio::sync::OnceCell::new(),
            synced: AtomicBool::new(false),
            desired: Mutex::new(BTreeMap::new()),
            kick: Notify::new(),
            encrypted: Mutex::new(BTreeSet::new()),
            changed: Arc::new(Notify::new()),
            dead: Mutex::new(DeadHosts::default()),
            quarantined: Mutex::new(BTreeSet::new()),
            lease: Mutex::new(None),
            fenced: Mutex::new(None),
            registered: AtomicBool::new(false),
            last_error: Mutex::new(None),
            sessions: Default::default(),
            watch_lag: Default::default(),
        })
    }

    /// Why this host refuses to join the cluster, if it does.
    pub fn problem(&self) -> Option<String> {
        self.fenced.lock().unwrap().clone()
    }

    /// Why the last etcd session failed (unreachable, TLS, authentication),
    /// while this host is not registered.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().unwrap().clone()
    }

    /// Whether this host is registered with etcd now.
    pub fn registered(&self) -> bool {
        self.registered.load(Ordering::Acquire)
    }

    /// The agent's session for `/metrics`: its state, sessions begun,
    /// and how far behind etcd the cache is.
    pub fn session_metrics(&self) -> Vec<Sample> {
        let state = match (self.registered(), self.problem().is_some()) {
            (true, _) => "registered",
            (false, true) => "fenced",
            (false, false) => "connecting",
        };
        let mut out: Vec<Sample> = ["registered", "fenced", "connecting"]
            .into_iter()
            .map(|s| {
                Sample::gauge(
                    "etcd_session",
                    "This host's etcd session: registered, fenced (another live agent has its host id, or the cluster's VTEPs are of the other address family) or connecting (etcd not reached yet or lost); 1 for the state it is in",
                    f64::from(u8::from(s == state)),
                )
                .label("state", s)
            })
            .collect();
        out.push(Sample::counter(
            "etcd_sessions",
            "etcd sessions begun (a new one after each failure)",
            self.sessions.load(Ordering::Relaxed) as f64,
        ));
        let w = self.watch_lag.lock().unwrap();
        out.push(Sample::gauge(
            "etcd_watch_lag_seconds",
            "Time etcd took to confirm the watch had delivered every change (asked at each keep-alive); grows while unanswered",
            w.lag(std::time::Instant::now()).as_secs_f64(),
        ));
        out.push(Sample::gauge(
            "etcd_watch_revisions_behind",
            "etcd's latest revision seen minus the revision the cluster view holds",
            w.revisions_behind() as f64,
        ));
        out.push(Sample::gauge(
            "etcd_revision",
            "The revision of the cluster view this host holds",
            w.applied_revision as f64,
        ));
        out
    }

    pub fn host_id(&self) -> &str {
        &self.cfg.host_id
    }

    pub fn node(&self) -> &NodeRecord {
        &self.node
    }

    pub fn endpoints_config(&self) -> &[String] {
        &self.cfg.endpoints
    }

    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// The etcd key of `rel`.
    pub(super) fn key(&self, rel: &str) -> String {
        format!("{}{rel}", self.cfg.prefix)
    }

    /// Makes this host a member of network `vni`, creating the cluster-wide
    /// record if it is new. A VNI already used with other subnets is refused.
    pub async fn join_network(&self, entry: &NetworkEntry) -> Result<()> {
        let create = Guarded::create(network_key(entry.vni), ser(entry)).or_read_back();
        let r = self
            .txn_or_err(&create, "creating the VXLAN network")
            .await?;
        if let Some(existing) = r.read {
            let existing: NetworkEntry = serde_json::from_slice(&existing).map_err(|e| {
                Error::Store(format!(
                    "networks/{} in etcd is not understood: {e}",
                    entry.vni
                ))
            })?;
            if existing.subnets != entry.subnets {
                return Err(Error::conflict(format!(
                    "VNI {} is already used in the cluster by a network with subnet {}; create this network with the same --subnet to join it, or choose another vni",
                    entry.vni,
                    existing.subnets.join(", ")
                )));
            }
        }
        self.rejoin(entry.vni);
        Ok(())
    }

    /// Takes VNI `entry.vni` for a new network: creates its record only if
    /// no host has one (compare-and-swap); false if another host was first.
    pub async fn reserve_vni(&self, entry: &NetworkEntry) -> Result<bool> {
        let create = Guarded::create(network_key(entry.vni), ser(entry));
        let r = self.txn_or_err(&create, "allocating a VNI").await?;
        if r.succeeded {
            info!(vni = entry.vni, "VNI allocated cluster-wide");
        }
        Ok(r.succeeded)
    }

    /// After a restart: this host is still a member of `vni`.
    pub fn rejoin(&self, vni: u32) {
        self.want(
            member_key(vni, &self.cfg.host_id),
            held_by(&self.cfg.host_id),
        );
    }

    /// Leaves network `vni`; the last host to leave removes the network
    /// record too (so its VNI can be used again), in one transaction that
    /// only succeeds while no member and no endpoint of the VNI is left.
    pub async fn leave_network(&self, vni: u32, subnets: &[String]) {
        let member = member_key(vni, &self.cfg.host_id);
        self.unwant(&member);
        let Ok(mut c) = self.client().await else {
            return;
        };
        let _ = c.delete(self.key(&member), None).await;
        match self.txn(&mut c, &forget_network_if_unused(vni)).await {
            Ok(r) if r.succeeded => {
                info!(vni, "last host left: network record removed");
                self.release_shared_claims(&mut c, subnets).await;
            }
            Ok(_) => {}
            Err(e) => {
                warn!(vni, error = %e, "could not leave the network in etcd; its record stays")
            }
        }
    }

    /// Endpoints of this host in quarantine (`endpoints/<vni>/<id>` keys).
    pub fn quarantined(&self) -> Vec<String> {
        self.quarantined.lock().unwrap().iter().cloned().collect()
    }

    /// Whether the cache knows network `vni` (for VNI allocation).
    pub fn vni_taken(&self, vni: u32) -> bool {
        self.cache.read().unwrap().vni_taken(vni)
    }

    /// Makes this host's endpoint `ep` of network `vni` known cluster-wide
    /// (written by the agent until etcd has it).
    pub fn assert_endpoint(&self, vni: u32, ep: &EndpointRecord) {
        let Some(mac) = ep.mac else { return };
        let entry = EndpointEntry {
            host: self.cfg.host_id.clone(),
            ip: ep.ipv4.map(|a| a.addr()),
            ip6: ep.ipv6.map(|a| a.addr()),
            mac,
        };
        self.want(endpoint_key(vni, &ep.id), ser(&entry));
    }

    pub fn withdraw_endpoint(&self, vni: u32, endpoint_id: &str) {
        let key = endpoint_key(vni, endpoint_id);
        self.quarantined.lock().unwrap().remove(&key);
        self.unwant(&key);
    }

    /// Remote endpoints of network `vni`: every endpoint of another host
    /// whose node record (VTEP) is known.
    pub fn remote_endpoints(&self, vni: u32) -> Vec<RemoteEndpoint> {
        self.cache.read().unwrap().remote_endpoints(vni)
    }

    /// The VTEPs VXLAN is accepted from (`firewall.rs`).
    pub fn member_vteps(&self) -> std::collections::BTreeSet<IpAddr> {
        self.cache.read().unwrap().member_vteps()
    }

    /// Hosts (other than this one) that are members of `vni`, with their VTEPs.
    pub fn peers(&self, vni: u32) -> Vec<(String, IpAddr)> {
        self.cache.read().unwrap().peers(vni)
    }

    fn want(&self, rel: String, value: Vec<u8>) {
        self.desired.lock().unwrap().insert(rel, value);
        self.kick.notify_one();
    }

    fn unwant(&self, rel: &str) {
        self.desired.lock().unwrap().remove(rel);
        self.kick.notify_one();
    }
}
