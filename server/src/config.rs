//! The operator's TOML file plus `SWITCHYARD__<SECTION>__<KEY>` overrides.
//! Every key is optional; with no file at all the built-in defaults run.

use config::{Config, Environment, File, FileFormat};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use switchyard_core::spec::{
    BackendKind, IpvlanFlag, IpvlanMode, MacvlanMode, Parent, Policy, validate_ifname,
};

pub const DEFAULT_CONFIG: &str = "/etc/switchyard/switchyard.toml";

#[derive(Debug, Clone, Deserialize, Serialize, Default, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub plugin: PluginSection,
    pub log: LogSection,
    pub macvlan: MacvlanSection,
    pub ipvlan: IpvlanSection,
    pub parents: ParentsSection,
    pub cluster: ClusterSection,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PluginSection {
    pub socket: PathBuf,
    pub state_dir: PathBuf,
    pub default_backend: String,
}

impl Default for PluginSection {
    fn default() -> Self {
        PluginSection {
            socket: "/run/docker/plugins/switchyard.sock".into(),
            state_dir: "/var/lib/switchyard".into(),
            default_backend: String::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogSection {
    pub level: String,
    pub format: String,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            level: "info".into(),
            format: "text".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MacvlanSection {
    pub parent: String,
    pub mode: String,
}

impl Default for MacvlanSection {
    fn default() -> Self {
        MacvlanSection {
            parent: String::new(),
            mode: "bridge".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IpvlanSection {
    pub parent: String,
    pub mode: String,
    pub flag: String,
}

impl Default for IpvlanSection {
    fn default() -> Self {
        IpvlanSection {
            parent: String::new(),
            mode: "l2".into(),
            flag: "bridge".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, Default, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ParentsSection {
    pub allow: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSection {
    pub etcd_endpoints: Vec<String>,
}

/// Where the settings came from, for messages.
pub fn describe_source(path: Option<&Path>) -> String {
    match path {
        Some(p) => format!(
            "config file {} and SWITCHYARD__* environment variables",
            p.display()
        ),
        None => "built-in defaults and SWITCHYARD__* environment variables".into(),
    }
}

/// The config file to read: the one named, else the default path if it exists.
pub fn resolve_path(arg: Option<&Path>) -> Option<PathBuf> {
    match arg {
        Some(p) => Some(p.to_owned()),
        None => Path::new(DEFAULT_CONFIG)
            .exists()
            .then(|| PathBuf::from(DEFAULT_CONFIG)),
    }
}

impl Settings {
    pub fn load(path: Option<&Path>) -> Result<Settings, String> {
        let mut b = Config::builder();
        if let Some(p) = path {
            if !p.exists() {
                return Err(format!(
                    "config file {} does not exist; create it (configs/switchyard.toml is the documented default) or leave out --config to run on built-in defaults",
                    p.display()
                ));
            }
            b = b.add_source(File::new(&p.to_string_lossy(), FileFormat::Toml).required(true));
        }
        b = b.add_source(
            Environment::with_prefix("SWITCHYARD")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("parents.allow")
                .with_list_parse_key("cluster.etcd_endpoints"),
        );
        let s: Settings = b
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| format!("invalid configuration ({}): {e}", describe_source(path)))?;
        s.validate()
            .map_err(|e| format!("invalid configuration ({}): {e}", describe_source(path)))?;
        Ok(s)
    }

    /// Checks the values that TOML types alone cannot.
    pub fn validate(&self) -> Result<(), String> {
        let sock = &self.plugin.socket;
        if !sock.is_absolute() {
            return Err(format!(
                "[plugin] socket {} must be an absolute path",
                sock.display()
            ));
        }
        if sock.extension().and_then(|e| e.to_str()) != Some("sock")
            || self.driver_name().is_empty()
        {
            return Err(format!(
                "[plugin] socket {} must end in .sock: dockerd finds plugins by that name (e.g. /run/docker/plugins/switchyard.sock)",
                sock.display()
            ));
        }
        if !self.plugin.state_dir.is_absolute() {
            return Err(format!(
                "[plugin] state_dir {} must be an absolute path",
                self.plugin.state_dir.display()
            ));
        }
        if !self.plugin.default_backend.is_empty() {
            self.plugin
                .default_backend
                .parse::<BackendKind>()
                .map_err(|e| format!("[plugin] default_backend: {e}"))?;
        }
        if !["trace", "debug", "info", "warn", "error"].contains(&self.log.level.as_str()) {
            return Err(format!(
                "[log] level \"{}\" is not known; use one of: error, warn, info, debug, trace",
                self.log.level
            ));
        }
        if !["text", "json"].contains(&self.log.format.as_str()) {
            return Err(format!(
                "[log] format \"{}\" is not known; use text or json",
                self.log.format
            ));
        }
        self.macvlan
            .mode
            .parse::<MacvlanMode>()
            .map_err(|e| format!("[macvlan] mode: {e}"))?;
        self.ipvlan
            .mode
            .parse::<IpvlanMode>()
            .map_err(|e| format!("[ipvlan] mode: {e}"))?;
        self.ipvlan
            .flag
            .parse::<IpvlanFlag>()
            .map_err(|e| format!("[ipvlan] flag: {e}"))?;
        for (section, parent) in [
            ("macvlan", &self.macvlan.parent),
            ("ipvlan", &self.ipvlan.parent),
        ] {
            if parent.is_empty() {
                continue;
            }
            Parent::parse(parent).map_err(|e| format!("[{section}] {e}"))?;
            if !self.policy().parent_allowed(parent) {
                return Err(format!(
                    "[{section}] parent \"{parent}\" is not in [parents] allow ({}); add it there or choose an allowed parent",
                    self.parents.allow.join(", ")
                ));
            }
        }
        for a in &self.parents.allow {
            let name = a.strip_suffix('*').unwrap_or(a);
            if !(a.ends_with('*') && name.is_empty()) {
                validate_ifname("[parents] allow entry", name).map_err(|e| e.to_string())?;
            }
        }
        if !self.cluster.etcd_endpoints.is_empty() {
            return Err(
                "[cluster] etcd_endpoints is set, but multi-host VXLAN is not available in this version of Switchyard; leave it empty (etcd_endpoints = [])"
                    .into(),
            );
        }
        Ok(())
    }

    /// The name dockerd knows this instance by: the socket file's name without `.sock`.
    pub fn driver_name(&self) -> String {
        self.plugin
            .socket
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    pub fn policy(&self) -> Policy {
        Policy {
            default_backend: self.plugin.default_backend.parse().ok(),
            macvlan_parent: Some(self.macvlan.parent.clone()).filter(|p| !p.is_empty()),
            macvlan_mode: self.macvlan.mode.parse().unwrap_or_default(),
            ipvlan_parent: Some(self.ipvlan.parent.clone()).filter(|p| !p.is_empty()),
            ipvlan_mode: self.ipvlan.mode.parse().unwrap_or_default(),
            ipvlan_flag: self.ipvlan.flag.parse().unwrap_or_default(),
            allowed_parents: self.parents.allow.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
