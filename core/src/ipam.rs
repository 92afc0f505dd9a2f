//! Address allocation: the pure part (pools, candidates), shared by the
//! local allocator (embedded store) and the cluster-wide one (etcd claims).

use crate::quote::quote;
use crate::{Error, Result};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

pub const LOCAL_SPACE: &str = "switchyard-local";
pub const GLOBAL_SPACE: &str = "switchyard-global";

/// A pool as RequestPool asked for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    pub space: String,
    pub pool: IpNet,
    /// `--ip-range`: addresses are handed out from here only.
    pub range: Option<IpNet>,
    /// Which RequestPool this is: one per network (each RequestPool gets a
    /// fresh tag), so that claims can name the network that asked and a
    /// released pool can collect them. `None` in PoolIDs from before tags.
    #[serde(default)]
    pub tag: Option<String>,
}

impl Pool {
    pub fn parse(space: &str, pool: &str, sub_pool: &str) -> Result<Pool> {
        if pool.is_empty() {
            return Err(Error::invalid(
                "Switchyard's IPAM needs the subnet: add --subnet to docker network create (e.g. --subnet 10.20.0.0/16)",
            ));
        }
        let p: IpNet = pool
            .parse()
            .map_err(|_| Error::invalid(format!("pool {} is not a CIDR subnet", quote(pool))))?;
        let p = p.trunc();
        let range = match sub_pool {
            "" => None,
            s => {
                let r: IpNet = s.parse().map_err(|_| {
                    Error::invalid(format!("--ip-range {} is not a CIDR subnet", quote(s)))
                })?;
                if !p.contains(&r) {
                    return Err(Error::invalid(format!(
                        "--ip-range {r} is not inside --subnet {p}"
                    )));
                }
                Some(r.trunc())
            }
        };
        Ok(Pool {
            space: space.to_string(),
            pool: p,
            range,
            tag: None,
        })
    }

    /// This pool under a fresh tag: RequestPool stores nothing (a request
    /// retried after a crash cannot count twice), and the tag in the PoolID
    /// tells one network's claims from another's on the same subnet.
    pub fn tagged(mut self) -> Pool {
        use std::hash::{BuildHasher, Hasher};
        // RandomState is seeded randomly per process and per instance.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        self.tag = Some(format!("{:016x}", h.finish()));
        self
    }

    /// The id dockerd hands back in later calls.
    pub fn id(&self) -> String {
        let base = match &self.range {
            Some(r) => format!("{}/{}|{}", self.space, self.pool, r),
            None => format!("{}/{}", self.space, self.pool),
        };
        match &self.tag {
            Some(t) => format!("{base}#{t}"),
            None => base,
        }
    }

    pub fn from_id(id: &str) -> Result<Pool> {
        let bad = || {
            Error::invalid(format!(
                "PoolID {} was not made by Switchyard's IPAM",
                quote(id)
            ))
        };
        let (id, tag) = match id.rsplit_once('#') {
            Some((id, t)) if t.len() == 16 && t.bytes().all(|b| b.is_ascii_hexdigit()) => {
                (id, Some(t.to_string()))
            }
            Some(_) => return Err(bad()),
            None => (id, None),
        };
        let (space, rest) = id.split_once('/').ok_or_else(bad)?;
        let (pool, range) = match rest.split_once('|') {
            Some((p, r)) => (p, r),
            None => (rest, ""),
        };
        let mut p = Pool::parse(space, pool, range).map_err(|_| bad())?;
        p.tag = tag;
        Ok(p)
    }

    /// The key claims are filed under (same for every host).
    pub fn claim_key(&self) -> String {
        format!("{}/{}", self.space, self.pool)
    }

    /// Addresses that may be handed out, in order: the range's (or pool's)
    /// host addresses, without IPv4's network and broadcast addresses.
    pub fn candidates(&self) -> impl Iterator<Item = IpAddr> + '_ {
        let net = self.range.unwrap_or(self.pool);
        let pool = self.pool;
        let tiny = pool.prefix_len() >= pool.max_prefix_len() - 1;
        // IPv4's network and broadcast addresses, IPv6's subnet-router anycast.
        net.hosts().filter(move |a| {
            tiny || !(*a == pool.network() || (a.is_ipv4() && *a == pool.broadcast()))
        })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.pool.contains(&ip)
    }

    /// `ip` with the pool's prefix length, as dockerd wants it back.
    pub fn cidr(&self, ip: IpAddr) -> String {
        format!("{ip}/{}", self.pool.prefix_len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_candidates_skip_reserved() {
        let p = Pool::parse(LOCAL_SPACE, "10.20.0.0/16", "10.20.5.0/24").unwrap();
        assert_eq!(p.id(), "switchyard-local/10.20.0.0/16|10.20.5.0/24");
        assert_eq!(Pool::from_id(&p.id()).unwrap(), p);
        let t = p.clone().tagged();
        assert!(
            t.id()
                .starts_with("switchyard-local/10.20.0.0/16|10.20.5.0/24#")
        );
        assert_eq!(Pool::from_id(&t.id()).unwrap(), t);
        assert_ne!(
            t.id(),
            p.clone().tagged().id(),
            "every RequestPool its own tag"
        );
        assert_eq!(
            t.claim_key(),
            p.claim_key(),
            "one subnet, one set of claims"
        );
        assert!(Pool::from_id("switchyard-local/10.0.0.0/24#zz").is_err());
        assert_eq!(p.candidates().next().unwrap().to_string(), "10.20.5.1");
        let q = Pool::parse(LOCAL_SPACE, "10.9.0.0/30", "").unwrap();
        let c: Vec<String> = q.candidates().map(|a| a.to_string()).collect();
        assert_eq!(c, ["10.9.0.1", "10.9.0.2"]);
        assert_eq!(q.cidr("10.9.0.2".parse().unwrap()), "10.9.0.2/30");
        let v6 = Pool::parse(GLOBAL_SPACE, "fd00:20::/64", "").unwrap();
        assert_eq!(v6.candidates().next().unwrap().to_string(), "fd00:20::1");
    }

    #[test]
    fn errors_say_what_to_do() {
        assert!(
            Pool::parse(LOCAL_SPACE, "", "")
                .unwrap_err()
                .to_string()
                .contains("add --subnet")
        );
        assert!(
            Pool::parse(LOCAL_SPACE, "10.0.0.0/24", "10.1.0.0/25")
                .unwrap_err()
                .to_string()
                .contains("not inside")
        );
        assert!(Pool::from_id("nonsense").is_err());
    }
}
