//! Who asked for an address, as far as dockerd's RequestAddress tells:
//! recorded with the claim, so that the same request retried after a crash
//! (dockerd retries a call whose connection died) gets the same answer, and
//! so that releasing a network's pool collects what a crash left behind.

use serde::{Deserialize, Serialize};

/// The asker within one network's pool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Asker {
    /// `RequestAddressType: com.docker.network.gateway`: one per network.
    Gateway,
    /// `com.docker.network.endpoint.name` (Engine 29): a container is
    /// attached to a network once, so one address per name.
    Endpoint(String),
    /// No name (older engines, aux addresses): cannot be told from another
    /// asker, so never answered from an earlier claim.
    Unnamed,
}

/// The owner of a claim: the PoolID of the network that asked (its
/// RequestPool's tag makes it unique to that network) and who asked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub pool_id: String,
    pub asker: Asker,
}

impl Owner {
    /// Whether a later request of this owner is the same request again.
    pub fn named(&self) -> bool {
        self.asker != Asker::Unnamed
    }

    /// The stored form (the claim's value).
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// `None` for claims stored without an owner (before owners existed).
    pub fn decode(s: &str) -> Option<Owner> {
        serde_json::from_str(s).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_old_claims_have_no_owner() {
        let o = Owner {
            pool_id: "switchyard-local/10.0.0.0/24#0011223344556677".into(),
            asker: Asker::Endpoint("web-1".into()),
        };
        assert_eq!(Owner::decode(&o.encode()), Some(o.clone()));
        assert!(o.named());
        assert_eq!(Owner::decode(""), None);
        let g = Owner {
            asker: Asker::Gateway,
            ..o
        };
        assert_eq!(Owner::decode(&g.encode()), Some(g));
    }
}
