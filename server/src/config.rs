//! The operator's TOML file plus `SWITCHYARD__<SECTION>__<KEY>` overrides.
//! Every key is optional; with no file at all the built-in defaults run.

use config::{Config, Environment, File, FileFormat};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use switchyard_backends::BackendSettings;
use switchyard_core::spec::{BackendKind, Policy};

pub const DEFAULT_CONFIG: &str = "/etc/switchyard/switchyard.toml";

/// The plugin's own sections; each backend's sections (`[macvlan]`,
/// `[vxlan]`, …) belong to the backends and are handed to them whole.
#[derive(Debug, Clone, Deserialize, Serialize, Default, PartialEq)]
#[serde(default)]
pub struct Settings {
    pub plugin: PluginSection,
    pub log: LogSection,
    pub metrics: MetricsSection,
    pub dhcp: crate::driver::DhcpSection,
    #[serde(flatten)]
    pub backends: BackendSettings,
}

const OWN_SECTIONS: [&str; 4] = ["plugin", "log", "metrics", "dhcp"];

/// `[metrics]`: Prometheus metrics, off unless `listen` is set.
#[derive(Debug, Clone, Deserialize, Serialize, Default, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSection {
    /// `HOST:PORT` (e.g. `127.0.0.1:9323`) or `unix:/PATH`; empty: off.
    pub listen: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PluginSection {
    pub socket: PathBuf,
    /// The group that may use the socket besides root (e.g. "docker").
    pub socket_group: String,
    pub state_dir: PathBuf,
    pub default_backend: String,
    /// dockerd's API socket, asked (in the background) which engine it is.
    /// Empty: never asked; the engine is read from its requests.
    pub docker_socket: PathBuf,
}

impl Default for PluginSection {
    fn default() -> Self {
        PluginSection {
            socket: "/run/docker/plugins/switchyard.sock".into(),
            socket_group: String::new(),
            state_dir: "/var/lib/switchyard".into(),
            default_backend: String::new(),
            docker_socket: "/run/docker.sock".into(),
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
                // An empty variable (e.g. a managed plugin's unset setting)
                // means "not set", not "an empty value".
                .ignore_empty(true)
                .list_separator(",")
                .with_list_parse_key("parents.allow")
                .with_list_parse_key("cluster.etcd_endpoints"),
        );
        let invalid = |e: String| format!("invalid configuration ({}): {e}", describe_source(path));
        let c = b.build().map_err(|e| invalid(e.to_string()))?;
        // `flatten` lets serde accept any section; unknown ones are refused here.
        let sections = c
            .clone()
            .try_deserialize::<std::collections::BTreeMap<String, config::Value>>()
            .map_err(|e| invalid(e.to_string()))?;
        let known: Vec<&str> = OWN_SECTIONS
            .iter()
            .chain(BackendSettings::SECTIONS.iter())
            .copied()
            .collect();
        if let Some(unknown) = sections.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(invalid(format!(
                "unknown field `{unknown}`, expected one of {}",
                known
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let s: Settings = c.try_deserialize().map_err(|e| invalid(e.to_string()))?;
        s.validate().map_err(invalid)?;
        Ok(s)
    }

    /// Checks the values that TOML types alone cannot.
    pub fn validate(&self) -> Result<(), String> {
        self.dhcp.validate()?;
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
        let api = &self.plugin.docker_socket;
        if !api.as_os_str().is_empty() && !api.is_absolute() {
            return Err(format!(
                "[plugin] docker_socket {} must be an absolute path (dockerd's API socket, e.g. /run/docker.sock), or empty to never ask dockerd",
                api.display()
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
        let listen = &self.metrics.listen;
        let unix_ok = listen
            .strip_prefix("unix:")
            .is_some_and(|p| p.starts_with('/'));
        if !listen.is_empty() && !unix_ok && listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!(
                "[metrics] listen \"{listen}\" is not an address; write HOST:PORT (e.g. 127.0.0.1:9323), unix:/PATH, or leave it empty for no metrics"
            ));
        }
        if !["text", "json"].contains(&self.log.format.as_str()) {
            return Err(format!(
                "[log] format \"{}\" is not known; use text or json",
                self.log.format
            ));
        }
        self.backends.validate()
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
        self.backends
            .policy(self.plugin.default_backend.parse().ok())
    }
}

#[cfg(test)]
mod tests;
