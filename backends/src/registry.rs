//! The factory: every backend, built from its own section of the config,
//! and picked by a network's options (netavark's driver factory).

use crate::parent::{OnParent, ParentsSettings};
use crate::vxlan::{ClusterSettings, VxlanSettings};
use crate::{Backend, Host, Ipvlan, IpvlanSettings, Macvlan, MacvlanSettings, Vxlan};
use enum_dispatch::enum_dispatch;
use serde::{Deserialize, Serialize};
// The trait's signatures, which `enum_dispatch` repeats for `AnyBackend`.
use std::collections::BTreeMap;
use switchyard_core::Result;
use switchyard_core::link::{Deleted, Link, LinkManager, LinkPlan};
use switchyard_core::mac::MacAddr;
use switchyard_core::model::{EndpointRecord, GatewayAllocation, JoinAnswer, NetworkRecord};
use switchyard_core::spec::{BackendKind, BackendOptions, NetworkSpec, Policy};

#[enum_dispatch(Backend)]
pub enum AnyBackend {
    Macvlan(OnParent<Macvlan>),
    Ipvlan(OnParent<Ipvlan>),
    Vxlan(Vxlan),
}

/// The backends' sections of the config file, each owned by its backend.
#[derive(Debug, Clone, Deserialize, Serialize, Default, PartialEq)]
#[serde(default)]
pub struct BackendSettings {
    pub macvlan: MacvlanSettings,
    pub ipvlan: IpvlanSettings,
    pub vxlan: VxlanSettings,
    pub parents: ParentsSettings,
    pub cluster: ClusterSettings,
}

impl BackendSettings {
    /// The top-level sections these settings read.
    pub const SECTIONS: [&str; 5] = ["macvlan", "ipvlan", "vxlan", "parents", "cluster"];

    /// Checks the values that TOML types alone cannot.
    pub fn validate(&self) -> std::result::Result<(), String> {
        self.macvlan.validate()?;
        self.ipvlan.validate()?;
        self.parents.validate()?;
        let policy = self.policy(None);
        for (section, parent) in [
            ("macvlan", &self.macvlan.parent),
            ("ipvlan", &self.ipvlan.parent),
        ] {
            if !parent.is_empty() && !policy.parent_allowed(parent) {
                return Err(format!(
                    "[{section}] parent \"{parent}\" is not in [parents] allow ({}); add it there or choose an allowed parent",
                    self.parents.allow.join(", ")
                ));
            }
        }
        self.cluster.validate()?;
        self.vxlan.validate()
    }

    /// What the config contributes to parsing a network's options.
    pub fn policy(&self, default_backend: Option<BackendKind>) -> Policy {
        Policy {
            default_backend,
            macvlan_parent: Some(self.macvlan.parent.clone()).filter(|p| !p.is_empty()),
            macvlan_mode: self.macvlan.mode.parse().unwrap_or_default(),
            ipvlan_parent: Some(self.ipvlan.parent.clone()).filter(|p| !p.is_empty()),
            ipvlan_mode: self.ipvlan.mode.parse().unwrap_or_default(),
            ipvlan_flag: self.ipvlan.flag.parse().unwrap_or_default(),
            allowed_parents: self.parents.allow.clone(),
            engine: self.parents.engine(),
            engine_memory: Default::default(),
        }
    }
}

/// The backends of one plugin instance.
pub struct Backends {
    macvlan: AnyBackend,
    ipvlan: AnyBackend,
    vxlan: AnyBackend,
}

impl Backends {
    /// Builds every backend from its section (VXLAN discovers its underlay
    /// here; nothing is created on the host).
    ///
    /// `state_dir` is `[plugin] state_dir` (VXLAN keeps the host's
    /// cluster identity and etcd lease there).
    pub async fn build(
        settings: &BackendSettings,
        state_dir: &std::path::Path,
        links: &LinkManager,
    ) -> std::result::Result<Backends, String> {
        Ok(Backends {
            macvlan: OnParent(Macvlan).into(),
            ipvlan: OnParent(Ipvlan).into(),
            vxlan: crate::vxlan::build(&settings.vxlan, &settings.cluster, state_dir, links)
                .await?
                .into(),
        })
    }

    /// The backend serving networks with these options.
    pub fn for_options(&self, options: &BackendOptions) -> &AnyBackend {
        match options {
            BackendOptions::Macvlan(_) => &self.macvlan,
            BackendOptions::Ipvlan(_) => &self.ipvlan,
            BackendOptions::Vxlan(_) => &self.vxlan,
        }
    }

    pub fn for_network(&self, net: &NetworkRecord) -> &AnyBackend {
        self.for_options(&net.spec.backend)
    }

    /// Cluster-wide IP claims (etcd), when `[cluster]` configures them;
    /// otherwise the driver keeps claims in its embedded store.
    pub fn cluster_claims(&self) -> Option<std::sync::Arc<dyn switchyard_core::store::Claims>> {
        match &self.vxlan {
            AnyBackend::Vxlan(v) => v.claims(),
            _ => None,
        }
    }

    /// This host in the VXLAN cluster, when `[cluster]` configures one.
    pub fn cluster_status(&self) -> Option<crate::ClusterStatus> {
        match &self.vxlan {
            AnyBackend::Vxlan(v) => v.cluster_status(),
            _ => None,
        }
    }

    /// Every backend's samples for `/metrics`.
    pub fn metrics(&self) -> Vec<crate::metrics::Sample> {
        self.all()
            .into_iter()
            .flat_map(crate::Backend::metrics)
            .collect()
    }

    pub fn all(&self) -> [&AnyBackend; 3] {
        [&self.macvlan, &self.ipvlan, &self.vxlan]
    }
}
