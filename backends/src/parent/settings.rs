//! `[parents]`: which host interfaces networks may use as parents, and
//! which Docker Engine the macvlan/ipvlan answers follow.

use serde::{Deserialize, Serialize};
use switchyard_core::spec::{EngineSetting, validate_ifname};

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ParentsSettings {
    /// Interfaces networks may use as parents; empty allows any. An entry
    /// ending in `*` matches by prefix.
    pub allow: Vec<String>,
    /// `auto` (read from dockerd's requests), `20.10`, `28` or `29`: whose
    /// built-in macvlan/ipvlan the answers follow (`spec::Engine`).
    pub engine: String,
}

impl Default for ParentsSettings {
    fn default() -> Self {
        ParentsSettings {
            allow: Vec::new(),
            engine: "auto".into(),
        }
    }
}

impl ParentsSettings {
    pub fn engine(&self) -> EngineSetting {
        self.engine.parse().unwrap_or_default()
    }

    pub fn validate(&self) -> Result<(), String> {
        self.engine
            .parse::<EngineSetting>()
            .map_err(|e| format!("[parents] {e}"))?;
        for a in &self.allow {
            let name = a.strip_suffix('*').unwrap_or(a);
            if !(a.ends_with('*') && name.is_empty()) {
                validate_ifname("[parents] allow entry", name).map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }
}
