//! The embedded store: one redb file under `state_dir`, written through
//! before every answer, plus an in-memory copy that serves every read (so
//! `EndpointOperInfo` and `status` never touch the disk).

use super::{ClaimFuture, Claims, Holder, Owner};
use crate::dhcp::Lease;
use crate::model::{EndpointRecord, NetworkRecord};
use crate::{Error, Result};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

const NETWORKS: TableDefinition<&str, &[u8]> = TableDefinition::new("networks");
/// Keyed `<network-id>/<endpoint-id>`.
const ENDPOINTS: TableDefinition<&str, &[u8]> = TableDefinition::new("endpoints");
/// DHCP leases of endpoints of `ipam=dhcp` networks, keyed as endpoints.
const LEASES: TableDefinition<&str, &[u8]> = TableDefinition::new("dhcp_leases");

/// Local IPAM: `<claim key>|<address>` → its owner (`Owner::encode`; "" in
/// claims from before owners).
const IPAM_ADDRS: TableDefinition<&str, &str> = TableDefinition::new("ipam_addresses");
/// Pool reference counts of earlier versions: a RequestPool retried after a
/// crash counted twice, and nothing read them. Dropped at open.
const OLD_IPAM_POOLS: &str = "ipam_pools";

pub const STATE_FILE: &str = "switchyard.redb";

/// redb's page cache. Every read is served by the in-memory copy, so the
/// cache only holds the pages a commit walks; redb's default (up to 1 GiB)
/// kept every page the load at open read — with 10,000 endpoints, MiBs of
/// resident memory for nothing.
const REDB_CACHE: usize = 2 << 20;

#[derive(Default, Clone)]
struct Cache {
    networks: BTreeMap<String, NetworkRecord>,
    endpoints: BTreeMap<(String, String), EndpointRecord>,
    /// claim key → encoded owner.
    addresses: BTreeMap<String, String>,
    /// encoded named owner → its claim key (a retried request's answer).
    owned: std::collections::HashMap<String, String>,
    leases: BTreeMap<(String, String), Lease>,
}

impl Cache {
    fn add_claim(&mut self, key: &str, owner: &str) {
        if Owner::decode(owner).is_some_and(|o| o.named()) {
            self.owned.insert(owner.to_string(), key.to_string());
        }
        self.addresses.insert(key.to_string(), owner.to_string());
    }

    fn remove_claim(&mut self, key: &str) {
        if let Some(owner) = self.addresses.remove(key)
            && self.owned.get(&owner).is_some_and(|k| k == key)
        {
            self.owned.remove(&owner);
        }
    }
}

pub struct Store {
    db: Database,
    path: PathBuf,
    cache: RwLock<Cache>,
}

fn store_err(path: &Path) -> impl Fn(&dyn std::fmt::Display) -> Error + '_ {
    move |e| Error::Store(format!("{}: {e}", path.display()))
}

impl Store {
    /// Opens (creating if needed) the state under `dir`.
    pub fn open(dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::Store(format!(
                "cannot create state_dir {}: {e}; set [plugin] state_dir to a writable directory",
                dir.display()
            ))
        })?;
        let path = dir.join(STATE_FILE);
        let err = store_err(&path);
        let db = Database::builder()
            .set_cache_size(REDB_CACHE)
            .create(&path)
            .map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => Error::Store(format!(
                "{} is in use by another switchyard process; stop it or give this one another [plugin] state_dir",
                path.display()
            )),
            e => err(&e),
        })?;
        let tx = db.begin_write().map_err(|e| err(&e))?;
        {
            tx.open_table(NETWORKS).map_err(|e| err(&e))?;
            tx.open_table(ENDPOINTS).map_err(|e| err(&e))?;
            tx.open_table(LEASES).map_err(|e| err(&e))?;
            tx.open_table(IPAM_ADDRS).map_err(|e| err(&e))?;
            let old: TableDefinition<&str, u64> = TableDefinition::new(OLD_IPAM_POOLS);
            tx.delete_table(old).map_err(|e| err(&e))?;
        }
        tx.commit().map_err(|e| err(&e))?;
        let cache = Self::load(&db, &path)?;
        drop(err);
        Ok(Store {
            db,
            path,
            cache: RwLock::new(cache),
        })
    }

    fn load(db: &Database, path: &Path) -> Result<Cache> {
        let err = store_err(path);
        let tx = db.begin_read().map_err(|e| err(&e))?;
        let mut cache = Cache::default();
        let nets = tx.open_table(NETWORKS).map_err(|e| err(&e))?;
        for row in nets.iter().map_err(|e| err(&e))? {
            let (k, v) = row.map_err(|e| err(&e))?;
            let rec: NetworkRecord = serde_json::from_slice(v.value())
                .map_err(|e| err(&format!("network {}: {e}", k.value())))?;
            cache.networks.insert(rec.id.clone(), rec);
        }
        let eps = tx.open_table(ENDPOINTS).map_err(|e| err(&e))?;
        for row in eps.iter().map_err(|e| err(&e))? {
            let (k, v) = row.map_err(|e| err(&e))?;
            let rec: EndpointRecord = serde_json::from_slice(v.value())
                .map_err(|e| err(&format!("endpoint {}: {e}", k.value())))?;
            cache
                .endpoints
                .insert((rec.network_id.clone(), rec.id.clone()), rec);
        }
        let leases = tx.open_table(LEASES).map_err(|e| err(&e))?;
        for row in leases.iter().map_err(|e| err(&e))? {
            let (k, v) = row.map_err(|e| err(&e))?;
            let lease: Lease = serde_json::from_slice(v.value())
                .map_err(|e| err(&format!("lease {}: {e}", k.value())))?;
            if let Some((n, e)) = k.value().split_once('/') {
                cache.leases.insert((n.to_string(), e.to_string()), lease);
            }
        }
        let addrs = tx.open_table(IPAM_ADDRS).map_err(|e| err(&e))?;
        for row in addrs.iter().map_err(|e| err(&e))? {
            let (k, v) = row.map_err(|e| err(&e))?;
            cache.add_claim(k.value(), v.value());
        }
        Ok(cache)
    }

    /// Claims `key` (a pool's claim key and an address) locally for
    /// `owner`; false if taken.
    pub fn ipam_claim(&self, key: &str, owner: Option<&Owner>) -> Result<bool> {
        if self.cache.read().unwrap().addresses.contains_key(key) {
            return Ok(false);
        }
        let owner = owner.map(Owner::encode).unwrap_or_default();
        let err = store_err(&self.path);
        self.write("ipam_claim", |tx| {
            let mut t = tx.open_table(IPAM_ADDRS).map_err(|e| err(&e))?;
            t.insert(key, owner.as_str()).map_err(|e| err(&e))?;
            Ok(())
        })?;
        self.cache.write().unwrap().add_claim(key, &owner);
        Ok(true)
    }

    pub fn ipam_claimed(&self, key: &str) -> bool {
        self.cache.read().unwrap().addresses.contains_key(key)
    }

    /// The claim key a named `owner` holds.
    pub fn ipam_held_by(&self, owner: &Owner) -> Option<String> {
        self.cache
            .read()
            .unwrap()
            .owned
            .get(&owner.encode())
            .cloned()
    }

    pub fn ipam_release(&self, key: &str) -> Result<()> {
        let err = store_err(&self.path);
        self.write("ipam_release", |tx| {
            let mut t = tx.open_table(IPAM_ADDRS).map_err(|e| err(&e))?;
            t.remove(key).map_err(|e| err(&e))?;
            Ok(())
        })?;
        self.cache.write().unwrap().remove_claim(key);
        Ok(())
    }

    /// Releases, in one commit, the claims under `prefix` owned by the
    /// network of `pool_id`.
    pub fn ipam_release_pool(&self, prefix: &str, pool_id: &str) -> Result<()> {
        let keys: Vec<String> = self
            .cache
            .read()
            .unwrap()
            .addresses
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(_, o)| Owner::decode(o).is_some_and(|o| o.pool_id == pool_id))
            .map(|(k, _)| k.clone())
            .collect();
        if keys.is_empty() {
            return Ok(());
        }
        let err = store_err(&self.path);
        self.write("ipam_release_pool", |tx| {
            let mut t = tx.open_table(IPAM_ADDRS).map_err(|e| err(&e))?;
            for k in &keys {
                t.remove(k.as_str()).map_err(|e| err(&e))?;
            }
            Ok(())
        })?;
        let mut c = self.cache.write().unwrap();
        for k in &keys {
            c.remove_claim(k);
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One transaction, committed durably. `op` names the commit for the
    /// failpoints `store.<op>.before_commit` / `store.<op>.after_commit`.
    fn write(
        &self,
        _op: &'static str,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<()>,
    ) -> Result<()> {
        let err = store_err(&self.path);
        let tx = self.db.begin_write().map_err(|e| err(&e))?;
        f(&tx)?;
        #[cfg(feature = "test-hooks")]
        crate::failpoint::kill(&format!("store.{_op}.before_commit"));
        tx.commit().map_err(|e| err(&e))?;
        #[cfg(feature = "test-hooks")]
        crate::failpoint::kill(&format!("store.{_op}.after_commit"));
        Ok(())
    }

    /// Writes `rec` as JSON under `key` in `table`.
    fn put_record(
        &self,
        op: &'static str,
        table: TableDefinition<&str, &[u8]>,
        key: &str,
        rec: &impl serde::Serialize,
    ) -> Result<()> {
        let bytes = serde_json::to_vec(rec).map_err(|e| Error::Store(e.to_string()))?;
        let err = store_err(&self.path);
        self.write(op, |tx| {
            let mut t = tx.open_table(table).map_err(|e| err(&e))?;
            t.insert(key, bytes.as_slice()).map_err(|e| err(&e))?;
            Ok(())
        })
    }

    /// Removes `key` from `table`.
    fn delete_record(
        &self,
        op: &'static str,
        table: TableDefinition<&str, &[u8]>,
        key: &str,
    ) -> Result<()> {
        let err = store_err(&self.path);
        self.write(op, |tx| {
            let mut t = tx.open_table(table).map_err(|e| err(&e))?;
            t.remove(key).map_err(|e| err(&e))?;
            Ok(())
        })
    }

    pub fn put_network(&self, net: &NetworkRecord) -> Result<()> {
        self.put_record("put_network", NETWORKS, &net.id, net)?;
        self.cache
            .write()
            .unwrap()
            .networks
            .insert(net.id.clone(), net.clone());
        Ok(())
    }

    /// Removes a network and every endpoint still filed under it.
    pub fn delete_network(&self, id: &str) -> Result<()> {
        let err = store_err(&self.path);
        let eps: Vec<String> = self
            .endpoints(id)
            .into_iter()
            .map(|e| format!("{}/{}", e.network_id, e.id))
            .collect();
        self.write("delete_network", |tx| {
            let mut t = tx.open_table(NETWORKS).map_err(|e| err(&e))?;
            t.remove(id).map_err(|e| err(&e))?;
            let mut t = tx.open_table(ENDPOINTS).map_err(|e| err(&e))?;
            for k in &eps {
                t.remove(k.as_str()).map_err(|e| err(&e))?;
            }
            Ok(())
        })?;
        let mut c = self.cache.write().unwrap();
        c.networks.remove(id);
        c.endpoints.retain(|(n, _), _| n != id);
        Ok(())
    }

    pub fn put_endpoint(&self, ep: &EndpointRecord) -> Result<()> {
        self.put_record(
            "put_endpoint",
            ENDPOINTS,
            &format!("{}/{}", ep.network_id, ep.id),
            ep,
        )?;
        self.cache
            .write()
            .unwrap()
            .endpoints
            .insert((ep.network_id.clone(), ep.id.clone()), ep.clone());
        Ok(())
    }

    pub fn delete_endpoint(&self, network_id: &str, endpoint_id: &str) -> Result<()> {
        self.delete_record(
            "delete_endpoint",
            ENDPOINTS,
            &format!("{network_id}/{endpoint_id}"),
        )?;
        self.cache
            .write()
            .unwrap()
            .endpoints
            .remove(&(network_id.to_string(), endpoint_id.to_string()));
        Ok(())
    }

    pub fn network(&self, id: &str) -> Option<NetworkRecord> {
        self.cache.read().unwrap().networks.get(id).cloned()
    }

    pub fn networks(&self) -> Vec<NetworkRecord> {
        self.cache
            .read()
            .unwrap()
            .networks
            .values()
            .cloned()
            .collect()
    }

    pub fn endpoint(&self, network_id: &str, endpoint_id: &str) -> Option<EndpointRecord> {
        self.cache
            .read()
            .unwrap()
            .endpoints
            .get(&(network_id.to_string(), endpoint_id.to_string()))
            .cloned()
    }

    /// The endpoints of one network.
    pub fn endpoints(&self, network_id: &str) -> Vec<EndpointRecord> {
        self.cache
            .read()
            .unwrap()
            .endpoints
            .range((network_id.to_string(), String::new())..)
            .take_while(|((n, _), _)| n == network_id)
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// Keeps an endpoint's current DHCP lease (after every ACK).
    pub fn put_lease(&self, network_id: &str, endpoint_id: &str, lease: &Lease) -> Result<()> {
        self.put_record(
            "put_lease",
            LEASES,
            &format!("{network_id}/{endpoint_id}"),
            lease,
        )?;
        self.cache.write().unwrap().leases.insert(
            (network_id.to_string(), endpoint_id.to_string()),
            lease.clone(),
        );
        Ok(())
    }

    pub fn delete_lease(&self, network_id: &str, endpoint_id: &str) -> Result<()> {
        self.delete_record(
            "delete_lease",
            LEASES,
            &format!("{network_id}/{endpoint_id}"),
        )?;
        self.cache
            .write()
            .unwrap()
            .leases
            .remove(&(network_id.to_string(), endpoint_id.to_string()));
        Ok(())
    }

    pub fn lease(&self, network_id: &str, endpoint_id: &str) -> Option<Lease> {
        self.cache
            .read()
            .unwrap()
            .leases
            .get(&(network_id.to_string(), endpoint_id.to_string()))
            .cloned()
    }

    /// Every lease as `((network, endpoint), lease)`.
    pub fn leases(&self) -> Vec<((String, String), Lease)> {
        let c = self.cache.read().unwrap();
        c.leases
            .iter()
            .map(|(k, l)| (k.clone(), l.clone()))
            .collect()
    }

    /// Whether a stored endpoint of any network has the address `ip`.
    pub fn endpoint_has_address(&self, ip: IpAddr) -> bool {
        self.cache.read().unwrap().endpoints.values().any(|e| {
            e.ipv4.is_some_and(|a| a.addr() == ip) || e.ipv6.is_some_and(|a| a.addr() == ip)
        })
    }

    pub fn all_endpoints(&self) -> Vec<EndpointRecord> {
        self.cache
            .read()
            .unwrap()
            .endpoints
            .values()
            .cloned()
            .collect()
    }
}

/// This host's claims: the key of an address is `<pool claim key>|<address>`.
fn claim_key(pool: &str, ip: IpAddr) -> String {
    format!("{pool}|{ip}")
}

/// Claims on a single host: the embedded store's IPAM table.
impl Claims for Store {
    fn cluster_wide(&self) -> bool {
        false
    }

    fn claim<'a>(
        &'a self,
        pool: &'a str,
        ip: IpAddr,
        owner: Option<&'a Owner>,
    ) -> ClaimFuture<'a, bool> {
        Box::pin(std::future::ready(
            self.ipam_claim(&claim_key(pool, ip), owner),
        ))
    }

    /// On one host a gateway is held as any address is (the driver claims
    /// it with `claim`, owned as the gateway); this is for the cluster.
    fn claim_shared<'a>(&'a self, pool: &'a str, ip: IpAddr) -> ClaimFuture<'a, bool> {
        self.claim(pool, ip, None)
    }

    fn claimed_by(&self, pool: &str, ip: IpAddr) -> Option<Holder> {
        self.ipam_claimed(&claim_key(pool, ip))
            .then_some(Holder::Local)
    }

    fn release<'a>(&'a self, pool: &'a str, ip: IpAddr) -> ClaimFuture<'a, ()> {
        Box::pin(std::future::ready(self.ipam_release(&claim_key(pool, ip))))
    }

    fn held_by(&self, pool: &str, owner: &Owner) -> Option<IpAddr> {
        let key = self.ipam_held_by(owner)?;
        let ip = key.strip_prefix(pool)?.strip_prefix('|')?;
        ip.parse().ok()
    }

    fn release_pool<'a>(&'a self, pool: &'a str, pool_id: &'a str) -> ClaimFuture<'a, ()> {
        Box::pin(std::future::ready(
            self.ipam_release_pool(&format!("{pool}|"), pool_id),
        ))
    }
}

#[cfg(test)]
mod tests;
