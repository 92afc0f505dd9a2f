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
    Isolated,
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
            Parent::Isolated => isolated_parent_name(network_id),
        }
    }

    /// The interface the operator must provide (the VLAN's base), if any.
    pub fn host_interface(&self) -> Option<&str> {
        match self {
            Parent::Interface { name } => Some(name),
            Parent::Vlan { base, .. } => Some(base),
            Parent::Isolated => None,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Parent::Interface { name } => name.clone(),
            Parent::Vlan { name, base, id } => format!("{name} (VLAN {id} on {base})"),
            Parent::Isolated => "none (isolated)".into(),
        }
    }
}

/// `sd` + the first 12 characters of the network id: the private parent of
/// an isolated network (Docker's built-in drivers use `dm-`/`di-`).
pub fn isolated_parent_name(network_id: &str) -> String {
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
