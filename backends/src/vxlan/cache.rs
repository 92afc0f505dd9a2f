//! The cluster cache: every key under the prefix (relative to it) with its
//! value and mod revision, as the last list and the watch since left it —
//! and what follows from it: the remote endpoints to program, the peers,
//! the VNIs and addresses taken, and what this host's own-key writer must
//! write, quarantine or withdraw. Pure data; the agent fills it.

use super::records::{
    ClaimEntry, EndpointEntry, NodeRecord, Owner, RemoteEndpoint, claim_key, held_by, network_key,
    node_key,
};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

/// One change the watch reports (key relative to the prefix).
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Change {
    Put {
        key: String,
        value: Vec<u8>,
        mod_revision: i64,
    },
    Delete {
        key: String,
        mod_revision: i64,
    },
}

/// What this host's own-key writer does in one pass.
#[derive(Debug, Default, PartialEq)]
pub(super) struct OwnKeyPlan {
    /// Wanted keys etcd lacks, or has with another value.
    pub write: Vec<(String, Vec<u8>)>,
    /// Wanted endpoint keys whose address another host holds now (with
    /// that host): not written; the endpoint is quarantined.
    pub quarantine: Vec<(String, String)>,
    /// This host's endpoint and member keys it no longer wants, with the
    /// value a guarded delete expects.
    pub withdraw: Vec<(String, Vec<u8>)>,
}

pub(super) struct ClusterCache {
    owner: Owner,
    /// Key → (value, mod revision); revision 0 for a write of this host
    /// the watch has not confirmed yet.
    kv: BTreeMap<String, (Vec<u8>, i64)>,
}

impl ClusterCache {
    pub fn new(host: &str) -> ClusterCache {
        ClusterCache {
            owner: Owner::new(host),
            kv: BTreeMap::new(),
        }
    }

    /// Replaces everything with a fresh list.
    pub fn replace(&mut self, kvs: impl IntoIterator<Item = (String, Vec<u8>, i64)>) {
        self.kv = kvs.into_iter().map(|(k, v, r)| (k, (v, r))).collect();
    }

    /// Applies one watch event, unless the cache has the key at a newer
    /// revision already (this host's own write, put in before its echo).
    /// True if the change touches a key this host owns or wants, so the
    /// own-key writer must run: e.g. GC removed one.
    pub fn apply(&mut self, change: Change, desired: &BTreeMap<String, Vec<u8>>) -> bool {
        let (key, rev) = match &change {
            Change::Put {
                key, mod_revision, ..
            }
            | Change::Delete { key, mod_revision } => (key.clone(), *mod_revision),
        };
        let touches_own = match &change {
            Change::Delete { .. } => desired.contains_key(&key),
            Change::Put { value, .. } => self.owner.owns(value) && desired.get(&key) != Some(value),
        };
        let stale = self.kv.get(&key).is_some_and(|(_, r)| *r >= rev && *r != 0);
        if !stale {
            match change {
                Change::Put { value, .. } => {
                    self.kv.insert(key, (value, rev));
                }
                Change::Delete { .. } => {
                    self.kv.remove(&key);
                }
            }
        }
        touches_own
    }

    /// Records a write of this host (revision 0: not confirmed yet).
    pub fn insert(&mut self, key: String, value: Vec<u8>, mod_revision: i64) {
        self.kv.insert(key, (value, mod_revision));
    }

    pub fn remove(&mut self, key: &str) {
        self.kv.remove(key);
    }

    pub fn get(&self, key: &str) -> Option<&(Vec<u8>, i64)> {
        self.kv.get(key)
    }

    /// Every key and entry under `prefix`.
    pub fn under<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a (Vec<u8>, i64))> + 'a {
        self.kv
            .range(prefix.to_string()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
    }

    /// Whether network `vni` exists cluster-wide (for VNI allocation).
    pub fn vni_taken(&self, vni: u32) -> bool {
        self.kv.contains_key(&network_key(vni))
    }

    /// Who holds `ip` in `pool` ("" for a shared gateway).
    pub fn claimed_by(&self, pool: &str, ip: IpAddr) -> Option<String> {
        self.kv
            .get(&claim_key(pool, ip))
            .and_then(|(v, _)| serde_json::from_slice::<ClaimEntry>(v).ok())
            .map(|c| c.host)
    }

    /// The shared (gateway) claims in the pools of `subnets`.
    pub fn shared_claims_in(&self, subnets: &[String]) -> Vec<String> {
        let shared = held_by("");
        self.under("ipam/")
            .filter(|(k, (v, _))| {
                *v == shared
                    && k["ipam/".len()..].split('/').next().is_some_and(|pool| {
                        subnets
                            .iter()
                            .any(|s| pool.ends_with(&format!("_{}", s.replace('/', "_"))))
                    })
            })
            .map(|(k, _)| k.clone())
            .collect()
    }

    fn node(&self, host: &str) -> Option<NodeRecord> {
        let (v, _) = self.kv.get(&node_key(host))?;
        serde_json::from_slice(v).ok()
    }

    /// Remote endpoints of network `vni`: every endpoint of another host
    /// whose node record (VTEP) is known.
    pub fn remote_endpoints(&self, vni: u32) -> Vec<RemoteEndpoint> {
        let nodes: HashMap<String, NodeRecord> = self
            .under("nodes/")
            .filter_map(|(k, (v, _))| {
                Some((
                    k["nodes/".len()..].to_string(),
                    serde_json::from_slice(v).ok()?,
                ))
            })
            .collect();
        let prefix = format!("endpoints/{vni}/");
        let mut out: Vec<RemoteEndpoint> = self
            .under(&prefix)
            .filter_map(|(_, (v, _))| serde_json::from_slice::<EndpointEntry>(v).ok())
            .filter(|e| e.host != self.owner.host())
            .filter_map(|e| {
                let vtep = nodes.get(&e.host)?.vtep;
                Some(RemoteEndpoint {
                    ips: e.ip.into_iter().chain(e.ip6).collect(),
                    mac: e.mac,
                    vtep,
                })
            })
            .collect();
        out.sort();
        out
    }

    /// The VTEPs of the cluster's current hosts: every host that is alive,
    /// or still a member of a network, or still has an endpoint (a host cut
    /// off from etcd keeps forwarding until it is collected) — this one
    /// included.
    pub fn member_vteps(&self) -> std::collections::BTreeSet<IpAddr> {
        let mut hosts: std::collections::BTreeSet<String> = self
            .under("alive/")
            .map(|(k, _)| k["alive/".len()..].to_string())
            .collect();
        hosts.extend(
            self.under("members/")
                .filter_map(|(k, _)| k.rsplit('/').next().map(str::to_string)),
        );
        hosts.extend(
            self.under("endpoints/")
                .filter_map(|(_, (v, _))| serde_json::from_slice::<EndpointEntry>(v).ok())
                .map(|e| e.host),
        );
        hosts
            .iter()
            .filter_map(|h| self.node(h))
            .map(|n| n.vtep)
            .filter(|v| !v.is_unspecified())
            .collect()
    }

    /// Hosts (other than this one) that are members of `vni`, with their
    /// VTEPs.
    pub fn peers(&self, vni: u32) -> Vec<(String, IpAddr)> {
        let prefix = format!("members/{vni}/");
        self.under(&prefix)
            .map(|(k, _)| &k[prefix.len()..])
            .filter(|host| *host != self.owner.host())
            .filter_map(|host| Some((host.to_string(), self.node(host)?.vtep)))
            .collect()
    }

    /// The host that now holds the address of endpoint record `key`/`value`
    /// in the same VNI, if another does.
    pub fn address_taken_elsewhere(&self, key: &str, value: &[u8]) -> Option<String> {
        let vni = key.strip_prefix("endpoints/")?.split('/').next()?;
        let mine: EndpointEntry = serde_json::from_slice(value).ok()?;
        self.under(&format!("endpoints/{vni}/"))
            .filter(|(k, _)| !k.ends_with(key))
            .filter_map(|(_, (v, _))| serde_json::from_slice::<EndpointEntry>(v).ok())
            .find(|e| {
                e.host != self.owner.host()
                    && ((mine.ip.is_some() && e.ip == mine.ip)
                        || (mine.ip6.is_some() && e.ip6 == mine.ip6))
            })
            .map(|e| e.host)
    }

    /// What the own-key writer does to make etcd hold `desired` (this
    /// host's keys): write what is missing or differs — unless another host
    /// holds the endpoint's address now — and withdraw this host's endpoint
    /// and member keys that are no longer wanted.
    pub fn own_key_plan(&self, desired: &BTreeMap<String, Vec<u8>>) -> OwnKeyPlan {
        let mut plan = OwnKeyPlan::default();
        for (k, v) in desired {
            if self.kv.get(k).is_some_and(|(cv, _)| cv == v) {
                continue;
            }
            match self.address_taken_elsewhere(k, v) {
                Some(holder) => plan.quarantine.push((k.clone(), holder)),
                None => plan.write.push((k.clone(), v.clone())),
            }
        }
        plan.withdraw = self
            .kv
            .iter()
            .filter(|(k, (v, _))| {
                (k.starts_with("endpoints/") || k.starts_with("members/"))
                    && !desired.contains_key(*k)
                    && self.owner.owns(v)
            })
            .map(|(k, (v, _))| (k.clone(), v.clone()))
            .collect();
        plan
    }
}
