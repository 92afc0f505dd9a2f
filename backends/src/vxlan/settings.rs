//! `[vxlan]` and `[cluster]`: the VXLAN backend's settings, and building
//! the backend from them (the underlay, the etcd control plane).

use super::{Cluster, ClusterConfig, NodeRecord, Underlay, Vxlan, VxlanConfig, identity};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;
use switchyard_core::link::LinkManager;
use switchyard_core::spec::validate_ifname;
use tracing::info;

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct VxlanSettings {
    pub underlay: String,
    pub local_ip: String,
    pub port: u16,
    pub vni_min: u32,
    pub vni_max: u32,
    /// Accept VXLAN (UDP `port`) only from the cluster's VTEPs, with an
    /// nftables table of Switchyard's own (`inet switchyard`).
    pub members_only: bool,
    /// The UDP port of encrypted networks (`-o encrypted`); IPsec policies
    /// select their VXLAN traffic by it.
    pub encrypted_port: u16,
}

impl Default for VxlanSettings {
    fn default() -> Self {
        VxlanSettings {
            underlay: String::new(),
            local_ip: String::new(),
            port: 4789,
            vni_min: 10000,
            vni_max: switchyard_core::spec::VNI_MAX,
            members_only: true,
            encrypted_port: 4793,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSettings {
    pub etcd_endpoints: Vec<String>,
    pub host_id: String,
    pub prefix: String,
    pub lease_ttl: u32,
    pub gc_grace: u32,
    pub resync_interval: u32,
    /// PEM file of the CA that signed etcd's server certificate (https://).
    pub ca_file: String,
    /// PEM files of this host's client certificate and key, for etcd's
    /// `--client-cert-auth`.
    pub cert_file: String,
    pub key_file: String,
    /// etcd user (etcd's `auth enable`) and its password.
    pub username: String,
    pub password: String,
    /// Seconds between rotations of the IPsec keys of encrypted networks.
    pub key_rotation: u32,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            etcd_endpoints: Vec::new(),
            host_id: String::new(),
            prefix: "/switchyard/v1/".into(),
            lease_ttl: 15,
            gc_grace: 300,
            resync_interval: 30,
            ca_file: String::new(),
            cert_file: String::new(),
            key_file: String::new(),
            username: String::new(),
            password: String::new(),
            key_rotation: 3600,
        }
    }
}

/// What a PEM file must hold.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Pem {
    Certificates,
    PrivateKey,
}

/// Reads a PEM file of `kind`; its text. The error names the key and the file.
fn read_pem(key: &str, path: &str, kind: Pem) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("[cluster] {key} \"{path}\" cannot be read: {e}"))?;
    let blocks: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("-----BEGIN "))
        .filter_map(|l| l.strip_suffix("-----"))
        .collect();
    let ok = match kind {
        Pem::Certificates => !blocks.is_empty() && blocks.iter().all(|b| *b == "CERTIFICATE"),
        Pem::PrivateKey => blocks.len() == 1 && blocks[0].ends_with("PRIVATE KEY"),
    };
    if !ok {
        let want = match kind {
            Pem::Certificates => "one or more PEM certificates (-----BEGIN CERTIFICATE-----)",
            Pem::PrivateKey => {
                "one PEM private key (-----BEGIN PRIVATE KEY----- or RSA/EC PRIVATE KEY)"
            }
        };
        return Err(format!(
            "[cluster] {key} \"{path}\" is not {want}{}",
            if blocks.is_empty() {
                String::from(": no PEM block found")
            } else {
                format!(": it holds {}", blocks.join(", "))
            }
        ));
    }
    Ok(text)
}

/// The TLS material for etcd, read from the files `[cluster]` names.
#[derive(Clone, Debug, Default)]
pub struct TlsFiles {
    pub ca: Option<String>,
    /// (certificate, key) PEM.
    pub identity: Option<(String, String)>,
}

impl VxlanSettings {
    pub fn validate(&self) -> Result<(), String> {
        if !self.local_ip.is_empty() && self.local_ip.parse::<std::net::IpAddr>().is_err() {
            return Err(format!(
                "[vxlan] local_ip \"{}\" is not an IP address",
                self.local_ip
            ));
        }
        if !self.underlay.is_empty() {
            validate_ifname("[vxlan] underlay", &self.underlay).map_err(|e| e.to_string())?;
        }
        let max = switchyard_core::spec::VNI_MAX;
        if self.vni_min == 0 || self.vni_min > self.vni_max || self.vni_max > max {
            return Err(format!(
                "[vxlan] vni_min..vni_max must be a range within 1..{max}"
            ));
        }
        if self.encrypted_port == 0 || self.encrypted_port == self.port {
            return Err(format!(
                "[vxlan] encrypted_port must be a UDP port other than [vxlan] port {} (default 4793)",
                self.port
            ));
        }
        if self.port == 0 {
            return Err("[vxlan] port must be a UDP port (1–65535), normally 4789".into());
        }
        Ok(())
    }

    /// One line for `switchyard check`.
    pub fn explain(&self) -> String {
        format!(
            "underlay {}, UDP port {}{}, encrypted networks (-o encrypted) on UDP port {} in IPsec ESP, VNIs {}–{}",
            if self.underlay.is_empty() {
                "discovered at start"
            } else {
                &self.underlay
            },
            self.port,
            if self.members_only {
                " (only from the cluster's VTEPs: nftables table inet switchyard)"
            } else {
                " (from anyone: [vxlan] members_only = false)"
            },
            self.encrypted_port,
            self.vni_min,
            self.vni_max
        )
    }
}

impl ClusterSettings {
    pub fn validate(&self) -> Result<(), String> {
        for e in &self.etcd_endpoints {
            let rest = e
                .strip_prefix("http://")
                .or_else(|| e.strip_prefix("https://"));
            if !rest.is_some_and(|r| r.contains(':') && !r.ends_with(':')) {
                return Err(format!(
                    "[cluster] etcd_endpoints entry \"{e}\" is not an etcd URL; write it as http://HOST:PORT or https://HOST:PORT, e.g. \"http://10.0.0.1:2379\""
                ));
            }
        }
        let https = self
            .etcd_endpoints
            .iter()
            .filter(|e| e.starts_with("https://"))
            .count();
        let tls_files =
            !(self.ca_file.is_empty() && self.cert_file.is_empty() && self.key_file.is_empty());
        if https > 0 && https < self.etcd_endpoints.len() {
            return Err("[cluster] etcd_endpoints mixes http:// and https://; use one scheme for every endpoint".into());
        }
        if tls_files && https == 0 && !self.etcd_endpoints.is_empty() {
            return Err("[cluster] ca_file, cert_file and key_file are used only with https:// etcd_endpoints; write the endpoints as https://HOST:PORT".into());
        }
        if https > 0 && self.ca_file.is_empty() {
            return Err("[cluster] ca_file is required with https:// etcd_endpoints: the PEM file of the CA that signed etcd's server certificate (etcd's --trusted-ca-file)".into());
        }
        if self.cert_file.is_empty() != self.key_file.is_empty() {
            return Err("[cluster] cert_file and key_file go together: the client certificate and its private key (PEM), for etcd's --client-cert-auth".into());
        }
        if self.username.is_empty() != self.password.is_empty() {
            return Err("[cluster] username and password go together (an etcd user, `etcdctl user add`); set both or neither".into());
        }
        if !self.prefix.starts_with('/') || !self.prefix.ends_with('/') {
            return Err(format!(
                "[cluster] prefix \"{}\" must start and end with '/', e.g. \"/switchyard/v1/\"",
                self.prefix
            ));
        }
        if self.lease_ttl < 2 || self.resync_interval == 0 {
            return Err(
                "[cluster] lease_ttl must be at least 2 seconds and resync_interval at least 1"
                    .into(),
            );
        }
        if self.key_rotation == 0 {
            return Err(format!(
                "[cluster] key_rotation {} is not a period; give the seconds between rotations of the IPsec keys of encrypted networks (default 3600)",
                self.key_rotation
            ));
        }
        identity::validate_host_id(&self.host_id)?;
        if self.gc_grace < self.lease_ttl {
            return Err(format!(
                "[cluster] gc_grace ({} s) must be at least lease_ttl ({} s): a host is only gone once its lease has expired",
                self.gc_grace, self.lease_ttl
            ));
        }
        Ok(())
    }

    /// Reads and checks the TLS files (readable, PEM of the right kind).
    pub fn tls_files(&self) -> Result<Option<TlsFiles>, String> {
        if self.ca_file.is_empty() && self.cert_file.is_empty() {
            return Ok(None);
        }
        let ca = Some(&self.ca_file)
            .filter(|f| !f.is_empty())
            .map(|f| read_pem("ca_file", f, Pem::Certificates))
            .transpose()?;
        let identity = if self.cert_file.is_empty() {
            None
        } else {
            Some((
                read_pem("cert_file", &self.cert_file, Pem::Certificates)?,
                read_pem("key_file", &self.key_file, Pem::PrivateKey)?,
            ))
        };
        Ok(Some(TlsFiles { ca, identity }))
    }

    /// One line on how this host authenticates to etcd, for `check`.
    pub fn explain_auth(&self) -> String {
        let mut parts = Vec::new();
        if !self.ca_file.is_empty() {
            parts.push(format!("TLS (CA {})", self.ca_file));
        }
        if !self.cert_file.is_empty() {
            parts.push(format!("client certificate {}", self.cert_file));
        }
        if !self.username.is_empty() {
            parts.push(format!("user {}", self.username));
        }
        if parts.is_empty() {
            "none (plain http, no user)".into()
        } else {
            parts.join(", ")
        }
    }

    /// How this host is named in the cluster, for `switchyard check`
    /// (which never writes the state dir).
    pub fn host_id_explained(&self, state_dir: &Path) -> String {
        if !self.host_id.is_empty() {
            return format!("host {} ([cluster] host_id)", self.host_id);
        }
        match identity::stored(state_dir) {
            Some(id) => format!(
                "host {id} (generated, kept in {})",
                state_dir.join(identity::HOST_ID_FILE).display()
            ),
            None => format!(
                "a host id generated at the first start and kept in {}",
                state_dir.join(identity::HOST_ID_FILE).display()
            ),
        }
    }

    /// One line for `switchyard check`.
    pub fn explain(&self, state_dir: &Path) -> String {
        if self.etcd_endpoints.is_empty() {
            return "none: VXLAN networks are single-host (or -o peers=…)".into();
        }
        format!(
            "etcd {} as {} (prefix {}, lease {} s, GC after {} s)",
            self.etcd_endpoints.join(","),
            self.host_id_explained(state_dir),
            self.prefix,
            self.lease_ttl,
            self.gc_grace
        )
    }
}

impl ClusterSettings {
    /// The agent's settings for the identity `host_id` (the plugin's, and
    /// `doctor`'s look at the cluster).
    pub(super) fn cluster_config(&self, host_id: String, state_dir: &Path) -> ClusterConfig {
        let c = self;
        ClusterConfig {
            endpoints: c.etcd_endpoints.clone(),
            host_id,
            state_dir: Some(state_dir.to_path_buf()),
            // Unreadable files are the cluster's problem (said at every
            // connection attempt, and in status), not the plugin's.
            tls: c.tls_files(),
            user: (!c.username.is_empty()).then(|| (c.username.clone(), c.password.clone())),
            prefix: c.prefix.clone(),
            lease_ttl: c.lease_ttl as i64,
            gc_grace: Duration::from_secs(c.gc_grace as u64),
            resync: Duration::from_secs(c.resync_interval as u64),
            key_rotation: Duration::from_secs(c.key_rotation.max(1) as u64),
        }
    }
}

/// The address in an etcd URL (`http://10.0.0.1:2379` → 10.0.0.1), if it is one.
fn etcd_host_ip(url: &str) -> Option<std::net::IpAddr> {
    let rest = url.split("://").nth(1)?;
    let host = rest.rsplit_once(':').map(|(h, _)| h).unwrap_or(rest);
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// The underlay these settings name (or the route towards etcd); only
/// looks.
pub async fn discover_underlay(
    v: &VxlanSettings,
    c: &ClusterSettings,
    links: &LinkManager,
) -> Result<Underlay, String> {
    Underlay::discover(
        links,
        Some(v.underlay.as_str()).filter(|u| !u.is_empty()),
        v.local_ip.parse().ok(),
        c.etcd_endpoints.iter().find_map(|e| etcd_host_ip(e)),
    )
    .await
}

/// The VXLAN backend for these settings: the underlay (named, or the
/// route towards etcd), and the etcd control plane if one is configured.
/// `state_dir` is `[plugin] state_dir`: where a generated host identity
/// and the etcd lease are kept.
pub async fn build(
    v: &VxlanSettings,
    c: &ClusterSettings,
    state_dir: &Path,
    links: &LinkManager,
) -> Result<Vxlan, String> {
    let underlay = discover_underlay(v, c, links).await?;
    info!(
        underlay = underlay.ifname.as_deref().unwrap_or("-"),
        vtep = %underlay.vtep.map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
        mtu = underlay.mtu,
        "VXLAN underlay"
    );
    let identity = if c.etcd_endpoints.is_empty() {
        None
    } else {
        let id = identity::resolve(&c.host_id, state_dir, identity::machine_id().as_deref())?;
        info!(host_id = %id.host_id, origin = %id.origin, "cluster identity");
        Some(id)
    };
    let cluster = identity.map(|id| {
        Cluster::new(
            c.cluster_config(id.host_id, state_dir),
            NodeRecord {
                vtep: underlay
                    .vtep
                    .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0])),
                underlay_mtu: underlay.mtu,
            },
        )
    });
    Ok(Vxlan::new(
        VxlanConfig {
            port: v.port,
            vni_min: v.vni_min,
            vni_max: v.vni_max,
            members_only: v.members_only,
            encrypted_port: v.encrypted_port,
            resync: Duration::from_secs(c.resync_interval as u64),
        },
        underlay,
        cluster,
    ))
}

impl ClusterSettings {
    /// What `status` shows of this host in the cluster when the plugin is
    /// not running: the host id it would use (configured, or kept in
    /// `state_dir`).
    pub fn offline_status(&self, state_dir: &std::path::Path) -> Option<super::ClusterStatus> {
        if self.etcd_endpoints.is_empty() {
            return None;
        }
        let host_id = Some(self.host_id.clone())
            .filter(|h| !h.is_empty())
            .or_else(|| super::identity::stored(state_dir))
            .unwrap_or_else(|| "(not generated yet)".into());
        Some(super::ClusterStatus {
            host_id,
            vtep: "-".into(),
            etcd: self.etcd_endpoints.join(","),
            registered: false,
            problem: None,
            etcd_error: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encryption_settings_are_checked() {
        assert!(VxlanSettings::default().validate().is_ok());
        assert!(ClusterSettings::default().validate().is_ok());
        let same = VxlanSettings {
            encrypted_port: 4789,
            ..Default::default()
        };
        let e = same.validate().unwrap_err();
        assert!(
            e.contains("encrypted_port must be a UDP port other than [vxlan] port 4789"),
            "{e}"
        );
        let zero = ClusterSettings {
            key_rotation: 0,
            ..Default::default()
        };
        let e = zero.validate().unwrap_err();
        assert!(
            e.contains("[cluster] key_rotation 0 is not a period"),
            "{e}"
        );
        let c = ClusterSettings {
            key_rotation: 7,
            ..Default::default()
        }
        .cluster_config("h".into(), Path::new("/nonexistent"));
        assert_eq!(c.key_rotation, Duration::from_secs(7));
    }
}
