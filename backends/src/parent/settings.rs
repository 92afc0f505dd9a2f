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
    /// built-in macvlan/ipvlan the answers follow (`spec::Engine`). A number
    /// is taken too (`engine = 29`, `SWITCHYARD__PARENTS__ENGINE=29`).
    #[serde(deserialize_with = "string_or_number")]
    pub engine: String,
}

fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Value {
        S(String),
        I(i64),
        F(f64),
    }
    Ok(match Value::deserialize(d)? {
        Value::S(s) => s,
        Value::I(i) => i.to_string(),
        Value::F(f) => f.to_string(),
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_core::spec::{Engine, EngineSetting};

    #[test]
    fn the_engine_may_be_a_string_or_a_number() {
        for (json, want) in [
            (r#"{"engine": "auto"}"#, EngineSetting::Auto),
            (r#"{"engine": "29"}"#, EngineSetting::Fixed(Engine::V29)),
            (r#"{"engine": 29}"#, EngineSetting::Fixed(Engine::V29)),
            (r#"{"engine": 20.10}"#, EngineSetting::Fixed(Engine::V20)),
            ("{}", EngineSetting::Auto),
        ] {
            let s: ParentsSettings = serde_json::from_str(json).unwrap();
            s.validate().unwrap();
            assert_eq!(s.engine(), want, "{json}");
        }
        let bad: ParentsSettings = serde_json::from_str(r#"{"engine": "27"}"#).unwrap();
        assert!(bad.validate().unwrap_err().contains("20.10, 28 or 29"));
    }
}
