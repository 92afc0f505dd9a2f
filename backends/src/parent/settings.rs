//! `[parents]`: which host interfaces networks may use as parents.

use serde::{Deserialize, Serialize};
use switchyard_core::spec::validate_ifname;

#[derive(Debug, Clone, Deserialize, Serialize, Default, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ParentsSettings {
    /// Interfaces networks may use as parents; empty allows any. An entry
    /// ending in `*` matches by prefix.
    pub allow: Vec<String>,
}

impl ParentsSettings {
    pub fn validate(&self) -> Result<(), String> {
        for a in &self.allow {
            let name = a.strip_suffix('*').unwrap_or(a);
            if !(a.ends_with('*') && name.is_empty()) {
                validate_ifname("[parents] allow entry", name).map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }
}
