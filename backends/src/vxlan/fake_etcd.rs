//! An in-memory etcd for the unit tests, with etcd's semantics where the
//! control plane relies on them: one revision counter bumped once per
//! write (a transaction's writes share one), per-key create and mod
//! revisions, guards evaluated as etcd does (a missing key has create and
//! mod revision 0, no value, version 0), and a history a watch replays.

use super::cache::Change;
use super::txn::{Guard, Guarded, Outcome, Write};
use std::collections::BTreeMap;

struct Rec {
    value: Vec<u8>,
    mod_revision: i64,
    /// The lease the key is attached to (0: none), as etcd keeps it.
    lease: i64,
}

pub(super) struct FakeEtcd {
    revision: i64,
    kv: BTreeMap<String, Rec>,
    history: Vec<Change>,
}

impl FakeEtcd {
    pub fn new() -> FakeEtcd {
        FakeEtcd {
            revision: 1,
            kv: BTreeMap::new(),
            history: Vec::new(),
        }
    }

    pub fn revision(&self) -> i64 {
        self.revision
    }

    pub fn value(&self, key: &str) -> Option<&[u8]> {
        self.kv.get(key).map(|r| r.value.as_slice())
    }

    /// A plain put; returns the revision it made.
    pub fn put(&mut self, key: &str, value: Vec<u8>) -> i64 {
        self.put_on_lease(key, value, 0)
    }

    /// A put attached to `lease` (0: none).
    pub fn put_on_lease(&mut self, key: &str, value: Vec<u8>, lease: i64) -> i64 {
        self.revision += 1;
        self.write(&Write::Put(key.into(), value));
        if let Some(r) = self.kv.get_mut(key) {
            r.lease = lease;
        }
        self.revision
    }

    /// A plain delete (a lease expiring); no revision if nothing is deleted.
    pub fn delete(&mut self, key: &str) -> bool {
        if !self.kv.contains_key(key) {
            return false;
        }
        self.revision += 1;
        self.write(&Write::Delete(key.into()))
    }

    fn write(&mut self, w: &Write) -> bool {
        let mod_revision = self.revision;
        match w {
            Write::Put(k, v) => {
                let value = v.clone();
                self.kv.insert(
                    k.clone(),
                    Rec {
                        value,
                        mod_revision,
                        lease: 0,
                    },
                );
                self.history.push(Change::Put {
                    key: k.clone(),
                    value: v.clone(),
                    mod_revision,
                });
                true
            }
            Write::Delete(k) => {
                let gone = self.kv.remove(k).is_some();
                if gone {
                    let key = k.clone();
                    self.history.push(Change::Delete { key, mod_revision });
                }
                gone
            }
        }
    }

    fn holds(&self, g: &Guard) -> bool {
        match g {
            Guard::Absent(k) => !self.kv.contains_key(k),
            Guard::ValueIs(k, v) => self.kv.get(k).is_some_and(|r| r.value == *v),
            Guard::ModRevision(k, rev) => self.kv.get(k).map_or(0, |r| r.mod_revision) == *rev,
            Guard::PrefixEmpty(p) => !self.kv.keys().any(|k| k.starts_with(p.as_str())),
            // A missing key's lease compares as 0, as in etcd.
            Guard::OnLease(k, lease) => self.kv.get(k).map_or(0, |r| r.lease) == *lease,
        }
    }

    /// Runs a transaction atomically: its writes at one new revision (none
    /// if nothing changes).
    pub fn txn(&mut self, g: &Guarded) -> Outcome {
        if !g.when.iter().all(|w| self.holds(w)) {
            let read = g
                .or_read
                .as_ref()
                .and_then(|k| self.value(k))
                .map(<[u8]>::to_vec);
            return Outcome {
                succeeded: false,
                read,
                revision: self.revision,
            };
        }
        self.revision += 1;
        let changed = g.then.iter().fold(false, |c, w| self.write(w) | c);
        if !changed {
            self.revision -= 1;
        }
        Outcome {
            succeeded: true,
            read: None,
            revision: self.revision,
        }
    }

    /// Everything, as a list answers: (key, value, mod revision), revision.
    pub fn list(&self) -> (Vec<(String, Vec<u8>, i64)>, i64) {
        let kvs = self
            .kv
            .iter()
            .map(|(k, r)| (k.clone(), r.value.clone(), r.mod_revision))
            .collect();
        (kvs, self.revision)
    }

    /// The changes a watch from revision `from` reports.
    pub fn watch_from(&self, from: i64) -> Vec<Change> {
        self.history
            .iter()
            .filter(|c| match c {
                Change::Put { mod_revision, .. } | Change::Delete { mod_revision, .. } => {
                    *mod_revision >= from
                }
            })
            .cloned()
            .collect()
    }
}
