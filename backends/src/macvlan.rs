//! MACVLAN: each endpoint is a macvlan link on the network's parent,
//! created at Join (as Docker's built-in driver does) and deleted at
//! DeleteEndpoint. The parent belongs to the host and is never touched.

use crate::parent::Child;
use serde::{Deserialize, Serialize};
use switchyard_core::Result;
use switchyard_core::link::LinkKind;
use switchyard_core::mac::MacAddr;
use switchyard_core::spec::{
    BackendKind, BackendOptions, MacvlanMode, MacvlanOptions, NetworkSpec, Parent,
};

#[derive(Clone, Copy, Debug, Default)]
pub struct Macvlan;

/// `[macvlan]`: defaults for networks that leave them out.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MacvlanSettings {
    pub parent: String,
    pub mode: String,
}

impl Default for MacvlanSettings {
    fn default() -> Self {
        MacvlanSettings {
            parent: String::new(),
            mode: "bridge".into(),
        }
    }
}

impl MacvlanSettings {
    /// One line for `switchyard check`.
    pub fn explain(&self) -> String {
        format!(
            "parent {}, mode {}",
            crate::parent::explain_default(&self.parent),
            self.mode
        )
    }

    pub fn validate(&self) -> std::result::Result<(), String> {
        self.mode
            .parse::<MacvlanMode>()
            .map_err(|e| format!("[macvlan] mode: {e}"))?;
        if !self.parent.is_empty() {
            Parent::parse(&self.parent).map_err(|e| format!("[macvlan] {e}"))?;
        }
        Ok(())
    }
}

fn options(spec: &NetworkSpec) -> &MacvlanOptions {
    match &spec.backend {
        BackendOptions::Macvlan(m) => m,
        other => unreachable!("macvlan backend given a {} network", other.kind()),
    }
}

impl Child for Macvlan {
    fn kind(&self) -> BackendKind {
        BackendKind::Macvlan
    }

    fn link_kind(&self, spec: &NetworkSpec, parent: String) -> LinkKind {
        LinkKind::Macvlan {
            parent,
            mode: options(spec).mode,
        }
    }

    fn mac(
        &self,
        spec: &NetworkSpec,
        endpoint_id: &str,
        requested: Option<MacAddr>,
    ) -> Result<Option<MacAddr>> {
        Ok(match (requested, options(spec).mode) {
            (Some(m), _) => Some(m),
            // A passthru link's MAC is its parent's; setting one would
            // rewrite the parent's address.
            (None, MacvlanMode::Passthru) => None,
            (None, _) => Some(MacAddr::from_endpoint_id(endpoint_id)),
        })
    }

    fn single_endpoint(&self, spec: &NetworkSpec) -> bool {
        options(spec).mode == MacvlanMode::Passthru
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Backend;
    use crate::parent::OnParent;
    use switchyard_core::link::LinkKind;
    use switchyard_core::mark::Mark;
    use switchyard_core::model::endpoint_link_name;
    use switchyard_core::model::{EndpointRecord, NetworkRecord};
    use switchyard_core::protocol::JoinResponse;
    use switchyard_core::spec::Subnet;

    fn net(mode: MacvlanMode, internal: bool) -> NetworkRecord {
        NetworkRecord {
            id: "n".repeat(64),
            spec: NetworkSpec {
                backend: BackendOptions::Macvlan(MacvlanOptions {
                    parent: Parent::Interface { name: "tp0".into() },
                    mode,
                }),
                internal,
                ipv4: vec![Subnet {
                    pool: "10.77.0.0/24".parse().unwrap(),
                    gateway: Some("10.77.0.1".parse().unwrap()),
                }],
                ipv6: vec![Subnet {
                    pool: "fd00:77::/64".parse().unwrap(),
                    gateway: Some("fd00:77::1".parse().unwrap()),
                }],
                mtu: Some(1400),
                options: Default::default(),
                engine: Default::default(),
                host_access: None,
                ipv6_slaac: false,
            },
            created_at: 0,
        }
    }

    fn ep(id: &str, v6: bool) -> EndpointRecord {
        EndpointRecord {
            network_id: "n".repeat(64),
            id: id.into(),
            ipv4: Some("10.77.0.5/24".parse().unwrap()),
            ipv6: v6.then(|| "fd00:77::5/64".parse().unwrap()),
            mac: Some(MacAddr::from_endpoint_id(id)),
            mac_from_user: false,
            link_name: endpoint_link_name(id),
            sandbox_key: None,
            created_at: 0,
        }
    }

    #[test]
    fn plans_a_marked_macvlan_on_the_parent() {
        let n = net(MacvlanMode::Vepa, false);
        let e = ep("abcdef0123456789", false);
        let plan = OnParent(Macvlan).plan_endpoint("switchyard", &n, &e);
        assert_eq!(plan.name, "syabcdef01234");
        assert_eq!(
            plan.kind,
            LinkKind::Macvlan {
                parent: "tp0".into(),
                mode: MacvlanMode::Vepa
            }
        );
        assert_eq!(plan.mtu, Some(1400));
        assert_eq!(plan.mac, e.mac);
        assert_eq!(plan.mark, Mark::endpoint("switchyard", &n.id, &e.id));
        assert!(
            !plan.up,
            "libnetwork brings the link up inside the container"
        );
    }

    #[test]
    fn join_answer_gateways_follow_families_and_internal() {
        let a = OnParent(Macvlan).join_answer(&net(MacvlanMode::Bridge, false), &ep("e1", true));
        assert_eq!(a.gateway, Some("10.77.0.1".parse().unwrap()));
        assert_eq!(a.gateway_ipv6, Some("fd00:77::1".parse().unwrap()));
        assert!(!a.gateway_service);
        let wire = JoinResponse::from(&a);
        assert!(wire.disable_gateway_service);
        assert_eq!(wire.interface_name.unwrap().dst_prefix, "eth");
        let v4only =
            OnParent(Macvlan).join_answer(&net(MacvlanMode::Bridge, false), &ep("e1", false));
        assert_eq!(v4only.gateway_ipv6, None);
        let internal =
            OnParent(Macvlan).join_answer(&net(MacvlanMode::Bridge, true), &ep("e1", true));
        assert_eq!((&internal.gateway, &internal.gateway_ipv6), (&None, &None));
        let json = serde_json::to_value(JoinResponse::from(&internal)).unwrap();
        assert!(json.get("Gateway").is_none(), "{json}");
    }

    #[test]
    fn passthru_takes_one_endpoint_and_keeps_the_parent_mac() {
        let n = net(MacvlanMode::Passthru, false);
        assert_eq!(
            OnParent(Macvlan)
                .endpoint_mac(&n, &ep("e1", false), None)
                .unwrap(),
            None
        );
        let first = ep("e1", false);
        OnParent(Macvlan)
            .validate_endpoint(&n, &first, &Vec::new)
            .unwrap();
        let err = OnParent(Macvlan)
            .validate_endpoint(&n, &ep("e2", false), &|| vec![first.clone()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("passthru") && err.contains("macvlan_mode=bridge"),
            "{err}"
        );
        // A retried CreateEndpoint for the same endpoint is not a second one.
        OnParent(Macvlan)
            .validate_endpoint(&n, &first, &|| vec![first.clone()])
            .unwrap();
        let b = net(MacvlanMode::Bridge, false);
        assert!(
            OnParent(Macvlan)
                .endpoint_mac(&b, &ep("e1", false), None)
                .unwrap()
                .is_some()
        );
    }
}
