//! Where a macvlan or ipvlan network's links hang off, and the rules for
//! interface names.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// Where a macvlan or ipvlan network's links hang off.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Parent {
    /// A host interface the operator manages.
    Interface { name: String },
    /// `<base>.<id>`: an 802.1q sub-interface, created by Switchyard when it
    /// is missing and shared by every network that names it.
    Vlan { name: String, base: String, id: u16 },
    /// No parent: a private link Switchyard creates for this network alone.
    /// `name` is chosen when the network is created (from its whole ID) and
    /// kept; records from before it was kept have none and use the older
    /// `sd` + 12 characters of the ID.
    Isolated {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
}

impl Parent {
    /// Reads `-o parent=`: `eth0`, or `eth0.30` for VLAN 30 on eth0.
    pub fn parse(s: &str) -> Result<Parent> {
        validate_ifname("parent", s)?;
        if let Some((base, id)) = s.rsplit_once('.')
            && !base.is_empty()
            && !base.contains('.')
            && !id.is_empty()
            && id.bytes().all(|b| b.is_ascii_digit())
        {
            let n: u32 = id.parse().unwrap_or(u32::MAX);
            if !(1..=4094).contains(&n) {
                return Err(Error::invalid(format!(
                    "parent \"{s}\" names VLAN {id}, which is outside 1–4094; write <interface>.<vlan-id> with an id from 1 to 4094, e.g. eth0.30"
                )));
            }
            return Ok(Parent::Vlan {
                name: s.to_string(),
                base: base.to_string(),
                id: n as u16,
            });
        }
        Ok(Parent::Interface {
            name: s.to_string(),
        })
    }

    /// The name of the link the network's children hang off.
    pub fn link_name(&self, network_id: &str) -> String {
        match self {
            Parent::Interface { name } | Parent::Vlan { name, .. } => name.clone(),
            Parent::Isolated { name: Some(n) } => n.clone(),
            Parent::Isolated { name: None } => legacy_isolated_parent_name(network_id),
        }
    }

    /// The interface the operator must provide (the VLAN's base), if any.
    pub fn host_interface(&self) -> Option<&str> {
        match self {
            Parent::Interface { name } => Some(name),
            Parent::Vlan { base, .. } => Some(base),
            Parent::Isolated { .. } => None,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Parent::Interface { name } => name.clone(),
            Parent::Vlan { name, base, id } => format!("{name} (VLAN {id} on {base})"),
            Parent::Isolated { .. } => "none (isolated)".into(),
        }
    }
}

/// The private parent of a network without one: `sd` + 13 hex digits of a
/// hash of the whole network ID (15 bytes, Linux's limit), so networks
/// whose IDs share a prefix never share a parent. Stable across builds.
pub fn isolated_parent_name(network_id: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in network_id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("sd{:013x}", h >> 12)
}

/// The name records from before names were kept use: `sd` + the first 12
/// characters of the network ID.
fn legacy_isolated_parent_name(network_id: &str) -> String {
    let id: String = network_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(12)
        .collect();
    format!("sd{id}")
}

/// Linux interface names: 1–15 bytes, no '/', ':', whitespace, not "." or "..".
pub fn validate_ifname(what: &str, name: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::invalid(format!(
            "{what} {} is not a valid interface name: {why}",
            crate::quote::quote(name)
        )))
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > 15 {
        return bad("Linux allows at most 15 bytes");
    }
    if name == "." || name == ".." {
        return bad("\".\" and \"..\" are reserved");
    }
    if let Some(c) = name
        .chars()
        .find(|c| *c == '/' || *c == ':' || c.is_whitespace() || c.is_control())
    {
        return bad(&format!("it contains {c:?}, which Linux rejects"));
    }
    Ok(())
}
