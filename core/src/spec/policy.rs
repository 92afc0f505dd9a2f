//! What the operator's config contributes to parsing a network's options.

use super::*;

/// What the operator's config contributes to option parsing.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// Used when a network names no `backend`.
    pub default_backend: Option<BackendKind>,
    /// Used when a macvlan network names no `parent`.
    pub macvlan_parent: Option<String>,
    /// Used when a macvlan network names no `macvlan_mode`.
    pub macvlan_mode: MacvlanMode,
    /// Used when an ipvlan network names no `parent`.
    pub ipvlan_parent: Option<String>,
    pub ipvlan_mode: IpvlanMode,
    pub ipvlan_flag: IpvlanFlag,
    /// Interfaces networks may use as parents; empty allows any. An entry
    /// ending in `*` matches by prefix.
    pub allowed_parents: Vec<String>,
    /// `[parents] engine`: the engine to answer as, or `auto`.
    pub engine: EngineSetting,
    /// What the requests taught about the engine in this lifetime.
    pub engine_memory: EngineMemory,
}

impl Policy {
    /// The engine to answer a network as. `evidence` is what its own
    /// request showed (`Unknown`: Engine 28 or later, without 29's mark);
    /// `stored` is (created_at, engine) of the networks in the store.
    /// A configured engine wins; else what dockerd's API said of itself,
    /// when the request agrees on whether it is 20.10 (if not, the API
    /// answered for another dockerd, and the request is believed); else the request's decisive evidence; else
    /// the latest decisive evidence learnt (this lifetime, then the store);
    /// else 28, whose answer never gives a container the subnet's first
    /// address (which on a LAN is usually the router's).
    pub fn engine(&self, evidence: Engine, stored: &[(u64, Engine)]) -> Engine {
        if let EngineSetting::Fixed(e) = self.engine {
            return e;
        }
        let told = self.engine_memory.told();
        if told != Engine::Unknown && (told == Engine::V20) == (evidence == Engine::V20) {
            return told;
        }
        let decisive = |e: Engine| matches!(e, Engine::V20 | Engine::V29);
        let learnt = Some(evidence)
            .filter(|e| decisive(*e))
            .or(Some(self.engine_memory.get()).filter(|e| decisive(*e)))
            .or(stored
                .iter()
                .filter(|(_, e)| decisive(*e))
                .max_by_key(|(t, _)| *t)
                .map(|(_, e)| *e));
        match (evidence, learnt) {
            // This request came from 20.10 itself.
            (Engine::V20, _) => Engine::V20,
            // A later request (GwAllocCheck, enable_ipv4) means 28 or newer,
            // so 20.10 evidence from before means an upgrade: 28 or 29.
            (_, Some(Engine::V29)) => Engine::V29,
            _ => Engine::V28,
        }
    }

    pub fn parent_allowed(&self, parent: &str) -> bool {
        self.allowed_parents.is_empty()
            || self
                .allowed_parents
                .iter()
                .any(|p| match p.strip_suffix('*') {
                    Some(prefix) => parent.starts_with(prefix),
                    None => p == parent,
                })
    }
}
