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
    pub vxlan: VxlanSection,
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

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct VxlanSection {
    pub underlay: String,
    pub local_ip: String,
    pub port: u16,
    pub vni_min: u32,
    pub vni_max: u32,
}

impl Default for VxlanSection {
    fn default() -> Self {
        VxlanSection {
            underlay: String::new(),
            local_ip: String::new(),
            port: 4789,
            vni_min: 10000,
            vni_max: switchyard_core::spec::VNI_MAX,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSection {
    pub etcd_endpoints: Vec<String>,
    pub host_id: String,
    pub prefix: String,
    pub lease_ttl: u32,
    pub gc_grace: u32,
    pub resync_interval: u32,
}

impl Default for ClusterSection {
    fn default() -> Self {
        ClusterSection {
            etcd_endpoints: Vec::new(),
            host_id: String::new(),
            prefix: "/switchyard/v1/".into(),
            lease_ttl: 15,
            gc_grace: 300,
            resync_interval: 30,
        }
    }
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
        for e in &self.cluster.etcd_endpoints {
            let rest = e
                .strip_prefix("http://")
                .or_else(|| e.strip_prefix("https://"));
            if !rest.is_some_and(|r| r.contains(':') && !r.ends_with(':')) {
                return Err(format!(
                    "[cluster] etcd_endpoints entry \"{e}\" is not an etcd URL; write it as http://HOST:PORT, e.g. \"http://10.0.0.1:2379\""
                ));
            }
        }
        if !self.cluster.prefix.starts_with('/') || !self.cluster.prefix.ends_with('/') {
            return Err(format!(
                "[cluster] prefix \"{}\" must start and end with '/', e.g. \"/switchyard/v1/\"",
                self.cluster.prefix
            ));
        }
        if self.cluster.lease_ttl < 2 || self.cluster.resync_interval == 0 {
            return Err(
                "[cluster] lease_ttl must be at least 2 seconds and resync_interval at least 1"
                    .into(),
            );
        }
        if self.cluster.gc_grace < self.cluster.lease_ttl {
            return Err(format!(
                "[cluster] gc_grace ({} s) must be at least lease_ttl ({} s): a host is only gone once its lease has expired",
                self.cluster.gc_grace, self.cluster.lease_ttl
            ));
        }
        if !self.vxlan.local_ip.is_empty()
            && self.vxlan.local_ip.parse::<std::net::IpAddr>().is_err()
        {
            return Err(format!(
                "[vxlan] local_ip \"{}\" is not an IP address",
                self.vxlan.local_ip
            ));
        }
        if !self.vxlan.underlay.is_empty() {
            validate_ifname("[vxlan] underlay", &self.vxlan.underlay).map_err(|e| e.to_string())?;
        }
        let max = switchyard_core::spec::VNI_MAX;
        if self.vxlan.vni_min == 0
            || self.vxlan.vni_min > self.vxlan.vni_max
            || self.vxlan.vni_max > max
        {
            return Err(format!(
                "[vxlan] vni_min..vni_max must be a range within 1..{max}"
            ));
        }
        if self.vxlan.port == 0 {
            return Err("[vxlan] port must be a UDP port (1–65535), normally 4789".into());
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

impl Settings {
    /// This host's name in the cluster: `[cluster] host_id`, else
    /// /etc/machine-id, else the hostname.
    pub fn host_id(&self) -> String {
        if !self.cluster.host_id.is_empty() {
            return self.cluster.host_id.clone();
        }
        std::fs::read_to_string("/etc/machine-id")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .or_else(|| {
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .ok()
                    .map(|s| s.trim().to_string())
            })
            .unwrap_or_else(|| "host".into())
    }
}
