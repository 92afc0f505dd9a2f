//! What `switchyard doctor` asks the cluster, through the client the agent
//! uses (same TLS and authentication): whether etcd answers and accepts
//! this host's credentials, and who holds this host's identity. It only
//! reads: no lease, no key, no identity file is written.

use super::cluster::{Cluster, describe, hint};
use super::identity;
use super::records::{AliveEntry, NodeRecord, alive_key};
use super::settings::ClusterSettings;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

/// Who holds `alive/<host id>` in etcd, as seen from this host.
#[derive(Debug, Clone, PartialEq)]
pub enum IdentityHolder {
    /// No identity configured or kept in the state dir yet: the plugin
    /// makes one at its first start.
    NoIdentityYet,
    /// No live agent holds it (the plugin here is not registered).
    Free { host_id: String },
    /// This host's own agent: the lease kept in the state dir, this VTEP.
    Ours { host_id: String, lease: i64 },
    /// Another live agent: what is wrong and what to do (the agent's own
    /// fencing message).
    Other { host_id: String, problem: String },
}

/// What doctor learnt from etcd.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterInspection {
    /// etcd's version (it answered).
    pub version: String,
    pub identity: IdentityHolder,
}

/// Asks etcd as the plugin on this host would. `vtep` is this host's VTEP
/// (None: not known); errors say what is wrong and what to look at.
pub async fn inspect(
    settings: &ClusterSettings,
    state_dir: &Path,
    vtep: Option<IpAddr>,
) -> Result<ClusterInspection, String> {
    let host_id = if settings.host_id.is_empty() {
        identity::stored(state_dir)
    } else {
        Some(settings.host_id.clone())
    };
    let cluster = Cluster::new(
        settings.cluster_config(host_id.clone().unwrap_or_default(), state_dir),
        NodeRecord {
            vtep: vtep.unwrap_or(IpAddr::from([0, 0, 0, 0])),
            underlay_mtu: 0,
        },
    );
    let cfg = &cluster.cfg;
    let failed = |what: &str, e: String| {
        format!(
            "etcd at {} {what}: {e} — {}",
            cfg.endpoints.join(","),
            hint(cfg, &e)
        )
    };
    let ask = async {
        let mut c = cluster
            .client()
            .await
            .map_err(|e| failed("cannot be reached", e.to_string()))?;
        let version = c
            .status()
            .await
            .map_err(|e| failed("does not answer", describe(&e)))?
            .version()
            .to_string();
        let Some(host_id) = host_id.clone() else {
            return Ok(ClusterInspection {
                version,
                identity: IdentityHolder::NoIdentityYet,
            });
        };
        // A read the plugin's user must be allowed (authentication and
        // permissions are checked here, not by status).
        let r = c
            .get(cluster.key(&alive_key(&host_id)), None)
            .await
            .map_err(|e| failed("refused a read under [cluster] prefix", describe(&e)))?;
        let identity = match r.kvs().first() {
            None => IdentityHolder::Free { host_id },
            Some(kv) => {
                let their_vtep = serde_json::from_slice::<AliveEntry>(kv.value())
                    .ok()
                    .map(|a| a.vtep);
                let same_vtep = vtep.is_none() || their_vtep == vtep;
                if Some(kv.lease()) == cluster.saved_lease() && same_vtep {
                    IdentityHolder::Ours {
                        host_id,
                        lease: kv.lease(),
                    }
                } else {
                    let shown = their_vtep.map_or_else(
                        || "unknown (an older version)".to_string(),
                        |v| v.to_string(),
                    );
                    IdentityHolder::Other {
                        problem: cluster.identity_taken(&shown, kv.lease()),
                        host_id,
                    }
                }
            }
        };
        Ok(ClusterInspection { version, identity })
    };
    tokio::time::timeout(Duration::from_secs(10), ask)
        .await
        .map_err(|_| failed("did not answer within 10 s", "timed out".into()))?
}
