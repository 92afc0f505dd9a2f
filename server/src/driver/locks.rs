//! Per-network serialisation: calls on one network run one at a time,
//! calls on different networks run in parallel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

#[derive(Default)]
pub struct NetworkLocks {
    per_network: Mutex<HashMap<String, Arc<AsyncMutex<()>>>>,
    /// Held by network create/delete: they look across networks (shared parents).
    pub all_networks: AsyncMutex<()>,
}

impl NetworkLocks {
    pub async fn lock(&self, network_id: &str) -> OwnedMutexGuard<()> {
        let m = self
            .per_network
            .lock()
            .unwrap()
            .entry(network_id.to_string())
            .or_default()
            .clone();
        m.lock_owned().await
    }

    pub fn forget(&self, network_id: &str) {
        self.per_network.lock().unwrap().remove(network_id);
    }
}
