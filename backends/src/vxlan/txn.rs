//! The control plane's guarded writes as data: what must hold, what to
//! write if it does, what to read back if it does not. Built by the
//! decisions (`claims.rs`, `gc.rs`, `cluster.rs`, the own-key writer) with
//! keys relative to the prefix; run on etcd by `Cluster::txn`, and on the
//! fake etcd in the unit tests.

use etcd_client::{Compare, CompareOp, Txn, TxnOp, TxnOpResponse, TxnResponse};

/// One condition of a transaction.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Guard {
    /// The key does not exist (its create revision is 0).
    Absent(String),
    /// The key holds exactly this value.
    ValueIs(String, Vec<u8>),
    /// The key was last modified at this revision.
    ModRevision(String, i64),
    /// No key starts with this prefix.
    PrefixEmpty(String),
    /// The key exists on this etcd lease: this agent still holds what the
    /// key stands for (`alive/<host>`: the host's identity).
    OnLease(String, i64),
}

/// One write of a transaction.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Write {
    Put(String, Vec<u8>),
    Delete(String),
}

/// `if every guard holds { writes } else { read a key }`.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Guarded {
    pub when: Vec<Guard>,
    pub then: Vec<Write>,
    /// Read when a guard fails (who holds what could not be created).
    pub or_read: Option<String>,
}

/// What came of a `Guarded`.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Outcome {
    pub succeeded: bool,
    /// The value of `or_read`, if a guard failed and the key exists.
    pub read: Option<Vec<u8>>,
    /// The store's revision after the transaction.
    pub revision: i64,
}

impl Guarded {
    /// Writes `value` at `key` only if there is no such key yet.
    pub fn create(key: String, value: Vec<u8>) -> Guarded {
        Guarded {
            when: vec![Guard::Absent(key.clone())],
            then: vec![Write::Put(key, value)],
            or_read: None,
        }
    }

    /// Deletes `key` only while it holds `value`.
    pub fn delete_if(key: String, value: Vec<u8>) -> Guarded {
        Guarded {
            when: vec![Guard::ValueIs(key.clone(), value)],
            then: vec![Write::Delete(key)],
            or_read: None,
        }
    }

    /// Puts every `(key, value)` in one transaction, only while `alive`
    /// is on `lease`: an agent that lost its identity (its lease expired
    /// and another agent took the key) writes nothing in its name.
    pub fn put_all_while(alive: String, lease: i64, puts: &[(String, Vec<u8>)]) -> Guarded {
        Guarded {
            when: vec![Guard::OnLease(alive, lease)],
            then: puts
                .iter()
                .map(|(k, v)| Write::Put(k.clone(), v.clone()))
                .collect(),
            or_read: None,
        }
    }

    /// Adds a guard.
    pub fn also_when(mut self, g: Guard) -> Guarded {
        self.when.push(g);
        self
    }

    /// On failure, reads the key the first write names.
    pub fn or_read_back(mut self) -> Guarded {
        self.or_read = self.then.first().map(|w| match w {
            Write::Put(k, _) | Write::Delete(k) => k.clone(),
        });
        self
    }

    /// The etcd transaction, every key under `prefix`.
    pub fn to_etcd(&self, prefix: &str) -> Txn {
        let key = |k: &str| format!("{prefix}{k}");
        let when: Vec<Compare> = self
            .when
            .iter()
            .map(|g| match g {
                Guard::Absent(k) => Compare::create_revision(key(k), CompareOp::Equal, 0),
                Guard::ValueIs(k, v) => Compare::value(key(k), CompareOp::Equal, v.clone()),
                Guard::ModRevision(k, r) => Compare::mod_revision(key(k), CompareOp::Equal, *r),
                Guard::PrefixEmpty(p) => {
                    Compare::version(key(p), CompareOp::Equal, 0).with_prefix()
                }
                Guard::OnLease(k, lease) => Compare::lease(key(k), CompareOp::Equal, *lease),
            })
            .collect();
        let then: Vec<TxnOp> = self
            .then
            .iter()
            .map(|w| match w {
                Write::Put(k, v) => TxnOp::put(key(k), v.clone(), None),
                Write::Delete(k) => TxnOp::delete(key(k), None),
            })
            .collect();
        let txn = Txn::new().when(when).and_then(then);
        match &self.or_read {
            Some(k) => txn.or_else(vec![TxnOp::get(key(k), None)]),
            None => txn,
        }
    }
}

impl From<&TxnResponse> for Outcome {
    fn from(r: &TxnResponse) -> Outcome {
        let read = r.op_responses().iter().find_map(|op| match op {
            TxnOpResponse::Get(g) => g.kvs().first().map(|kv| kv.value().to_vec()),
            _ => None,
        });
        Outcome {
            succeeded: r.succeeded(),
            read: if r.succeeded() { None } else { read },
            revision: r.header().map(|h| h.revision()).unwrap_or(0),
        }
    }
}
