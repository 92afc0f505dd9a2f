//! The ownership mark every link Switchyard creates carries in its interface
//! alias: `switchyard:<network-id>[:<endpoint-id>]`. Startup reconciliation
//! and every delete check it, so links Switchyard did not make are never
//! touched.
//!
//! A parent Switchyard made for several networks to share (an 802.1q
//! sub-interface) is marked `switchyard:parent`: it belongs to no single
//! network (network ids are 25 or 64 characters, never "parent").
//!
//! A second instance on the same host (another socket, hence another driver
//! name) writes `switchyard@<driver>:…`, so two instances never take each
//! other's links for orphans.

use std::fmt;

pub const DEFAULT_INSTANCE: &str = "switchyard";
const SHARED_PARENT: &str = "parent";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    pub instance: String,
    pub network_id: String,
    pub endpoint_id: Option<String>,
}

impl Mark {
    pub fn network(instance: &str, network_id: &str) -> Mark {
        Mark {
            instance: instance.to_string(),
            network_id: network_id.to_string(),
            endpoint_id: None,
        }
    }

    pub fn endpoint(instance: &str, network_id: &str, endpoint_id: &str) -> Mark {
        Mark {
            instance: instance.to_string(),
            network_id: network_id.to_string(),
            endpoint_id: Some(endpoint_id.to_string()),
        }
    }

    /// A parent shared by the networks that name it.
    pub fn shared_parent(instance: &str) -> Mark {
        Self::network(instance, SHARED_PARENT)
    }

    pub fn is_shared_parent(&self) -> bool {
        self.network_id == SHARED_PARENT && self.endpoint_id.is_none()
    }

    /// Reads an interface alias; `None` for anything not written by Switchyard.
    pub fn parse(alias: &str) -> Option<Mark> {
        let (head, rest) = alias.split_once(':')?;
        let instance = if head == "switchyard" {
            DEFAULT_INSTANCE.to_string()
        } else {
            head.strip_prefix("switchyard@")?.to_string()
        };
        let mut parts = rest.split(':');
        let network_id = parts.next().filter(|s| !s.is_empty())?.to_string();
        let endpoint_id = match parts.next() {
            Some(e) if !e.is_empty() => Some(e.to_string()),
            Some(_) => return None,
            None => None,
        };
        if parts.next().is_some() || instance.is_empty() {
            return None;
        }
        Some(Mark {
            instance,
            network_id,
            endpoint_id,
        })
    }
}

impl fmt::Display for Mark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.instance == DEFAULT_INSTANCE {
            write!(f, "switchyard:{}", self.network_id)?;
        } else {
            write!(f, "switchyard@{}:{}", self.instance, self.network_id)?;
        }
        if let Some(e) = &self.endpoint_id {
            write!(f, ":{e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for m in [
            Mark::network("switchyard", "n1"),
            Mark::endpoint("switchyard", "n1", "e1"),
            Mark::endpoint("sy2", "n1", "e1"),
            Mark::shared_parent("switchyard"),
        ] {
            assert_eq!(Mark::parse(&m.to_string()), Some(m));
        }
        assert_eq!(
            Mark::endpoint("switchyard", "n", "e").to_string(),
            "switchyard:n:e"
        );
        assert_eq!(Mark::network("b", "n").to_string(), "switchyard@b:n");
        assert_eq!(
            Mark::shared_parent("switchyard").to_string(),
            "switchyard:parent"
        );
        assert!(Mark::parse("switchyard:parent").unwrap().is_shared_parent());
        assert!(
            !Mark::parse("switchyard:parent:e")
                .unwrap()
                .is_shared_parent()
        );
    }

    #[test]
    fn foreign_aliases_are_not_marks() {
        for a in [
            "",
            "uplink to rack 3",
            "switchyard",
            "switchyard:",
            "switchyard::e",
            "switchyard:n:e:x",
            "switchyardx:n",
            "switchyard@:n",
        ] {
            assert_eq!(Mark::parse(a), None, "{a}");
        }
    }
}
