//! The keys of encrypted networks: one etcd record per unordered pair of
//! hosts, `ipsec/<lower host id>/<higher host id>`, written only by the
//! lower host (create and rotate by compare-and-swap), read by both. A
//! record holds up to three generations, oldest first; each generation has
//! one SPI and one AES-GCM key (16 bytes key + 4 bytes salt) per direction,
//! so no key is ever used by two senders (GCM nonces must not repeat).
//!
//! Rotation without loss: a new generation is first only *installed* (both
//! hosts add its inbound and outbound states); senders switch to it one
//! rotation later, when both have it; the generation before stays one more
//! rotation for packets in flight. So the generation sent with is always the
//! second newest (`tx`).

use super::cluster::Cluster;
use super::records::ser;
use super::txn::{Guard, Guarded, Write};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use tracing::{info, warn};

/// How many generations a record keeps.
const GENERATIONS: usize = 3;

/// One generation: index 0 is the lower host's sending direction
/// (lower → higher), index 1 the other.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SaKeys {
    pub spi: [u32; 2],
    /// 20 bytes as hex: the AES-128 key, then the 4-byte salt.
    pub key: [String; 2],
}

/// `ipsec/<lo>/<hi>`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PairKeys {
    /// Oldest first.
    pub keys: Vec<SaKeys>,
}

impl SaKeys {
    /// Fresh random SPIs (never below 256, reserved by RFC 4303) and keys.
    pub fn generate() -> std::io::Result<SaKeys> {
        let mut b = [0u8; 48];
        use std::io::Read;
        std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
        let spi = |o: usize| u32::from_be_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]) | 0x100;
        let hex = |s: &[u8]| s.iter().map(|x| format!("{x:02x}")).collect::<String>();
        Ok(SaKeys {
            spi: [spi(0), spi(4)],
            key: [hex(&b[8..28]), hex(&b[28..48])],
        })
    }
}

impl PairKeys {
    /// The generation senders use: the second newest (the newest is only
    /// installed, so the peer has it before anyone sends with it).
    pub fn tx(&self) -> Option<&SaKeys> {
        let n = self.keys.len();
        self.keys.get(n.saturating_sub(2)).or(self.keys.last())
    }

    /// The record after one rotation: `fresh` appended, the oldest beyond
    /// `GENERATIONS` dropped.
    pub fn rotated(&self, fresh: SaKeys) -> PairKeys {
        let mut keys = self.keys.clone();
        keys.push(fresh);
        let drop = keys.len().saturating_sub(GENERATIONS);
        keys.drain(..drop);
        PairKeys { keys }
    }
}

/// The record key of the pair `a`, `b` (either order) and whether `me` is
/// the writer (the lower id).
pub fn pair_key(a: &str, b: &str) -> String {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    format!("ipsec/{lo}/{hi}")
}

impl Cluster {
    /// Encrypted networks of this host change: the agent creates missing
    /// pair records.
    pub fn set_encrypted(&self, vni: u32, on: bool) {
        let mut e = self.encrypted.lock().unwrap();
        let changed = if on { e.insert(vni) } else { e.remove(&vni) };
        drop(e);
        if changed {
            self.kick.notify_one();
        }
    }

    /// Peers sharing an encrypted network with this host: (host id, VTEP).
    pub fn encrypted_peers(&self) -> BTreeSet<(String, std::net::IpAddr)> {
        let vnis: Vec<u32> = self.encrypted.lock().unwrap().iter().copied().collect();
        let cache = self.cache.read().unwrap();
        vnis.into_iter().flat_map(|v| cache.peers(v)).collect()
    }

    /// The keys of the pair (this host, `peer`), if written yet.
    pub fn pair_keys(&self, peer: &str) -> Option<PairKeys> {
        let key = pair_key(&self.cfg.host_id, peer);
        let cache = self.cache.read().unwrap();
        serde_json::from_slice(&cache.get(&key)?.0).ok()
    }

    /// Creates the records this host writes and lacks, with `rotate` adds
    /// a generation to each of them, and deletes those of pairs that no
    /// longer share an encrypted network; compare-and-swap, so a record
    /// changed meanwhile is left for the next pass.
    pub(super) async fn write_pair_keys(&self, c: &mut etcd_client::Client, rotate: bool) {
        if !self.synced() {
            return; // an empty cache would look like no peer at all
        }
        let me = self.cfg.host_id.clone();
        let peers = self.encrypted_peers();
        self.remove_stale_pair_keys(c, &peers).await;
        for (peer, _) in peers {
            if me.as_str() >= peer.as_str() {
                continue; // the lower id writes
            }
            let key = pair_key(&me, &peer);
            let seen = self.cache.read().unwrap().get(&key).cloned();
            let fresh = match SaKeys::generate() {
                Ok(k) => k,
                Err(e) => {
                    warn!(error = %e, "cannot read /dev/urandom for IPsec keys");
                    return;
                }
            };
            let (g, what) = match &seen {
                None => (
                    Guarded::create(key.clone(), ser(&PairKeys { keys: vec![fresh] })),
                    "created",
                ),
                Some((v, rev)) => {
                    let (new, what) = match serde_json::from_slice::<PairKeys>(v) {
                        Ok(old) if rotate => (old.rotated(fresh), "rotated"),
                        Ok(_) => continue,
                        Err(e) => {
                            warn!(key = %key, error = %e, "unreadable IPsec key record: writing a new one");
                            (PairKeys { keys: vec![fresh] }, "replaced")
                        }
                    };
                    (
                        Guarded {
                            when: vec![Guard::ModRevision(key.clone(), *rev)],
                            then: vec![Write::Put(key.clone(), ser(&new))],
                            or_read: None,
                        },
                        what,
                    )
                }
            };
            match self.txn(c, &g).await {
                Ok(o) if o.succeeded => info!(peer = %peer, "IPsec keys {what}"),
                Ok(_) => {}
                Err(e) => warn!(peer = %peer, error = %e, "IPsec keys could not be written"),
            }
        }
    }
}

impl Cluster {
    /// Deletes the records this host writes (`ipsec/<me>/…`) whose pair no
    /// longer shares an encrypted network (`peers`: those that do).
    async fn remove_stale_pair_keys(
        &self,
        c: &mut etcd_client::Client,
        peers: &BTreeSet<(String, std::net::IpAddr)>,
    ) {
        let me = &self.cfg.host_id;
        let wanted: BTreeSet<String> = peers.iter().map(|(p, _)| pair_key(me, p)).collect();
        let mine = format!("ipsec/{me}/");
        let stale: Vec<(String, i64)> = self
            .cache
            .read()
            .unwrap()
            .under(&mine)
            .filter(|(k, _)| !wanted.contains(*k))
            .map(|(k, (_, rev))| (k.clone(), *rev))
            .collect();
        for (key, rev) in stale {
            let g = Guarded {
                when: vec![Guard::ModRevision(key.clone(), rev)],
                then: vec![Write::Delete(key.clone())],
                or_read: None,
            };
            match self.txn(c, &g).await {
                Ok(o) if o.succeeded => {
                    info!(key = %key, "IPsec keys of a pair that shares no encrypted network any more removed")
                }
                Ok(_) => {}
                Err(e) => warn!(key = %key, error = %e, "stale IPsec keys could not be removed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(n: u32) -> SaKeys {
        SaKeys {
            spi: [n, n + 1000],
            key: [format!("{n:040x}"), format!("{:040x}", n + 1000)],
        }
    }

    #[test]
    fn tx_is_the_second_newest_and_three_generations_are_kept() {
        let p = PairKeys { keys: vec![k(1)] };
        assert_eq!(p.tx(), Some(&k(1)), "a new record sends with its only key");
        let p = p.rotated(k(2));
        assert_eq!(p.tx(), Some(&k(1)), "the new key is only installed");
        let p = p.rotated(k(3));
        assert_eq!(p.tx(), Some(&k(2)));
        let p = p.rotated(k(4));
        assert_eq!(p.keys, vec![k(2), k(3), k(4)], "the oldest goes");
        assert_eq!(p.tx(), Some(&k(3)));
        assert_eq!(PairKeys { keys: vec![] }.tx(), None);
    }

    #[test]
    fn one_record_per_unordered_pair() {
        assert_eq!(pair_key("h2", "h1"), "ipsec/h1/h2");
        assert_eq!(pair_key("h1", "h2"), "ipsec/h1/h2");
    }

    #[test]
    fn generated_keys_are_distinct_per_direction() {
        let a = SaKeys::generate().unwrap();
        assert!(a.spi.iter().all(|s| *s >= 0x100));
        assert!(a.key.iter().all(|k| k.len() == 40));
        assert_ne!(a.key[0], a.key[1]);
        assert_ne!(a, SaKeys::generate().unwrap());
    }
}
