//! IPVLAN: each endpoint is an ipvlan link on the network's parent, sharing
//! the parent's MAC. Modes and flags as Docker's built-in ipvlan driver.
//!
//! In l2 the container's way out is the subnet's gateway, as with macvlan.
//! In l3/l3s the parent routes for the container, so everything leaves
//! through the container's own interface; the answer depends on what the
//! engine takes (measured, tests/dockerd_backends.rs):
//!
//! * Engines 28 and 29: a connected default route (0.0.0.0/0, ::/0), as
//!   Engine 29's own ipvlan driver sets. On 29 this also matters for DNS:
//!   dockerd forwards a container's queries to a resolver on the host's
//!   loopback (systemd-resolved's 127.0.0.53) only for an endpoint with a
//!   gateway or a 0/0 route.
//! * Engine 20.10 refuses a connected 0.0.0.0/0 ("failed to set gateway:
//!   file exists"), so there the answer is connected routes covering every
//!   routable destination (`V4_DEFAULT_COVER`; 28 drops a route starting
//!   at 0.0.0.0 that is not /0, such as 0.0.0.0/1). Records stored before
//!   engines were told apart get the cover too: it works on every engine.
//!
//! `DisableGatewayService` keeps dockerd from adding docker_gwbridge, which
//! connected routes would not prevent on their own.

use crate::Host;
use crate::parent::Child;
use serde::{Deserialize, Serialize};
use switchyard_core::link::LinkKind;
use switchyard_core::mac::MacAddr;
use switchyard_core::model::{EndpointRecord, JoinAnswer};
use switchyard_core::spec::{
    BackendKind, BackendOptions, IpvlanFlag, IpvlanMode, IpvlanOptions, NetworkSpec, Parent,
};
use switchyard_core::{Error, Result};

#[derive(Clone, Copy, Debug, Default)]
pub struct Ipvlan;

/// `[ipvlan]`: defaults for networks that leave them out.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IpvlanSettings {
    pub parent: String,
    pub mode: String,
    pub flag: String,
}

impl Default for IpvlanSettings {
    fn default() -> Self {
        IpvlanSettings {
            parent: String::new(),
            mode: "l2".into(),
            flag: "bridge".into(),
        }
    }
}

impl IpvlanSettings {
    /// One line for `switchyard check`.
    pub fn explain(&self) -> String {
        format!(
            "parent {}, mode {}, flag {}",
            crate::parent::explain_default(&self.parent),
            self.mode,
            self.flag
        )
    }

    pub fn validate(&self) -> std::result::Result<(), String> {
        self.mode
            .parse::<IpvlanMode>()
            .map_err(|e| format!("[ipvlan] mode: {e}"))?;
        self.flag
            .parse::<IpvlanFlag>()
            .map_err(|e| format!("[ipvlan] flag: {e}"))?;
        if !self.parent.is_empty() {
            Parent::parse(&self.parent).map_err(|e| format!("[ipvlan] {e}"))?;
        }
        Ok(())
    }
}

/// Test builds only (cargo feature `test-hooks`, never in a release):
/// `SWITCHYARD_TEST_IPVLAN_AS_MACVLAN=1` makes ipvlan endpoints macvlan
/// links, so that the Join answers of every ipvlan mode can be checked
/// against a real dockerd on a kernel without IPVLAN (the answer's shape
/// does not depend on the link type).
#[cfg(feature = "test-hooks")]
fn emulated_with_macvlan() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("SWITCHYARD_TEST_IPVLAN_AS_MACVLAN").is_ok_and(|v| v == "1"))
}

#[cfg(not(feature = "test-hooks"))]
fn emulated_with_macvlan() -> bool {
    false
}

fn options(spec: &NetworkSpec) -> &IpvlanOptions {
    match &spec.backend {
        BackendOptions::Ipvlan(i) => i,
        other => unreachable!("ipvlan backend given a {} network", other.kind()),
    }
}

/// Connected routes that together cover every routable destination: all of
/// IPv4 but 0.0.0.0/8 ("this network", never a destination), all of IPv6
/// but ::/8 (unspecified, loopback, IPv4-mapped). No route may start at the
/// unspecified address: Engine 20.10 rejects a connected 0.0.0.0/0 without
/// a gateway, and Engine 28 silently drops a 0.0.0.0/1 (both measured).
pub const V4_DEFAULT_COVER: [&str; 8] = [
    "1.0.0.0/8",
    "2.0.0.0/7",
    "4.0.0.0/6",
    "8.0.0.0/5",
    "16.0.0.0/4",
    "32.0.0.0/3",
    "64.0.0.0/2",
    "128.0.0.0/1",
];
pub const V6_DEFAULT_COVER: [&str; 8] = [
    "100::/8", "200::/7", "400::/6", "800::/5", "1000::/4", "2000::/3", "4000::/2", "8000::/1",
];
/// The connected default routes Engines 28 and 29 take.
pub const V4_DEFAULT: [&str; 1] = ["0.0.0.0/0"];
pub const V6_DEFAULT: [&str; 1] = ["::/0"];

impl Child for Ipvlan {
    fn kind(&self) -> BackendKind {
        BackendKind::Ipvlan
    }

    async fn check_host(&self, host: &Host<'_>) -> Result<()> {
        if !emulated_with_macvlan() && !host.links.supports("ipvlan").await? {
            return Err(host
                .links
                .unsupported("ipvlan", "creating an ipvlan network")
                .into());
        }
        Ok(())
    }

    fn link_kind(&self, spec: &NetworkSpec, parent: String) -> LinkKind {
        let o = options(spec);
        if emulated_with_macvlan() {
            return LinkKind::Macvlan {
                parent,
                mode: switchyard_core::spec::MacvlanMode::Bridge,
            };
        }
        LinkKind::Ipvlan {
            parent,
            mode: o.mode,
            flag: o.flag,
        }
    }

    fn mac(
        &self,
        _spec: &NetworkSpec,
        _endpoint_id: &str,
        requested: Option<MacAddr>,
    ) -> Result<Option<MacAddr>> {
        match requested {
            Some(m) => Err(Error::invalid(format!(
                "ipvlan links share their parent's MAC address, so --mac-address {m} cannot be honoured; drop --mac-address, or use a network with -o backend=macvlan"
            ))),
            None => Ok(None),
        }
    }

    /// l3/l3s: no gateway; a connected default route where the engine
    /// takes one, else the cover routes, connected.
    fn answer(&self, spec: &NetworkSpec, ep: &EndpointRecord, l2: JoinAnswer) -> JoinAnswer {
        let mut answer = l2;
        if options(spec).mode == IpvlanMode::L2 {
            return answer;
        }
        answer.gateway = None;
        answer.gateway_ipv6 = None;
        if !spec.answers_internal() {
            let (v4, v6): (&[&str], &[&str]) = if spec.engine.takes_connected_default() {
                (&V4_DEFAULT, &V6_DEFAULT)
            } else {
                (&V4_DEFAULT_COVER, &V6_DEFAULT_COVER)
            };
            let routes = ep
                .ipv4
                .map(|_| v4)
                .into_iter()
                .chain(ep.ipv6.map(|_| v6))
                .flatten();
            answer.connected_routes = routes
                .map(|d| d.parse().expect("the routes are CIDR constants"))
                .collect();
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Backend;
    use crate::parent::OnParent;
    use switchyard_core::model::NetworkRecord;
    use switchyard_core::model::endpoint_link_name;
    use switchyard_core::protocol::JoinResponse;
    use switchyard_core::spec::{Engine, Subnet};

    fn net(mode: IpvlanMode, internal: bool) -> NetworkRecord {
        NetworkRecord {
            id: "n".repeat(64),
            spec: NetworkSpec {
                backend: BackendOptions::Ipvlan(IpvlanOptions {
                    parent: Parent::Vlan {
                        name: "tp0.30".into(),
                        base: "tp0".into(),
                        id: 30,
                    },
                    mode,
                    flag: IpvlanFlag::Private,
                }),
                internal,
                ipv4: vec![Subnet {
                    pool: "10.30.0.0/24".parse().unwrap(),
                    gateway: Some("10.30.0.1".parse().unwrap()),
                }],
                ipv6: vec![Subnet {
                    pool: "fd00:30::/64".parse().unwrap(),
                    gateway: None,
                }],
                mtu: None,
                options: Default::default(),
                engine: Default::default(),
                host_access: None,
                ipv6_slaac: false,
            },
            created_at: 0,
        }
    }

    fn ep(v6: bool) -> EndpointRecord {
        EndpointRecord {
            network_id: "n".repeat(64),
            id: "e1".into(),
            ipv4: Some("10.30.0.5/24".parse().unwrap()),
            ipv6: v6.then(|| "fd00:30::5/64".parse().unwrap()),
            mac: None,
            mac_from_user: false,
            link_name: endpoint_link_name("e1"),
            sandbox_key: None,
            created_at: 0,
        }
    }

    #[test]
    fn l2_answers_with_the_gateway() {
        let a = JoinResponse::from(
            &OnParent(Ipvlan).join_answer(&net(IpvlanMode::L2, false), &ep(false)),
        );
        assert_eq!(a.gateway.as_deref(), Some("10.30.0.1"));
        assert!(a.static_routes.is_empty() && a.disable_gateway_service);
    }

    #[test]
    fn l3_answers_with_a_connected_cover_of_all_destinations_on_20_10_and_old_records() {
        for (engine, mode) in [Engine::V20, Engine::Unknown]
            .into_iter()
            .flat_map(|e| [(e, IpvlanMode::L3), (e, IpvlanMode::L3s)])
        {
            let mut n = net(mode, false);
            n.spec.engine = engine;
            let a = JoinResponse::from(&OnParent(Ipvlan).join_answer(&n, &ep(true)));
            assert_eq!(a.gateway, None);
            let dests: Vec<&str> = a
                .static_routes
                .iter()
                .map(|r| r.destination.as_str())
                .collect();
            let want: Vec<&str> = V4_DEFAULT_COVER
                .iter()
                .chain(&V6_DEFAULT_COVER)
                .copied()
                .collect();
            assert_eq!(dests, want);
            assert!(
                dests
                    .iter()
                    .all(|d| !d.starts_with("0.0.0.0") && !d.starts_with("::/"))
            );
            assert!(
                a.static_routes
                    .iter()
                    .all(|r| r.route_type == 1 && r.next_hop.is_none())
            );
            assert!(a.disable_gateway_service);
        }
        let v4 = JoinResponse::from(
            &OnParent(Ipvlan).join_answer(&net(IpvlanMode::L3, false), &ep(false)),
        );
        assert_eq!(v4.static_routes.len(), 8);
        let internal = JoinResponse::from(
            &OnParent(Ipvlan).join_answer(&net(IpvlanMode::L3, true), &ep(true)),
        );
        assert!(internal.static_routes.is_empty() && internal.gateway.is_none());
    }

    #[test]
    fn l3_answers_with_a_connected_default_route_on_28_and_29() {
        for engine in [Engine::V28, Engine::V29] {
            for mode in [IpvlanMode::L3, IpvlanMode::L3s] {
                let mut n = net(mode, false);
                n.spec.engine = engine;
                let a = JoinResponse::from(&OnParent(Ipvlan).join_answer(&n, &ep(true)));
                assert_eq!(a.gateway, None);
                let dests: Vec<&str> = a
                    .static_routes
                    .iter()
                    .map(|r| r.destination.as_str())
                    .collect();
                assert_eq!(dests, ["0.0.0.0/0", "::/0"]);
                assert!(
                    a.static_routes
                        .iter()
                        .all(|r| r.route_type == 1 && r.next_hop.is_none())
                );
                assert!(a.disable_gateway_service);
                let v4 = JoinResponse::from(&OnParent(Ipvlan).join_answer(&n, &ep(false)));
                assert_eq!(v4.static_routes.len(), 1);
                n.spec.internal = true;
                let internal = JoinResponse::from(&OnParent(Ipvlan).join_answer(&n, &ep(true)));
                assert!(internal.static_routes.is_empty());
            }
        }
    }

    #[test]
    fn a_user_mac_is_refused_with_the_reason() {
        let e = OnParent(Ipvlan)
            .endpoint_mac(
                &net(IpvlanMode::L2, false),
                &ep(false),
                Some("02:42:aa:bb:cc:dd".parse().unwrap()),
            )
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("share their parent's MAC") && e.contains("backend=macvlan"),
            "{e}"
        );
        assert_eq!(
            OnParent(Ipvlan)
                .endpoint_mac(&net(IpvlanMode::L2, false), &ep(false), None)
                .unwrap(),
            None
        );
    }

    #[test]
    fn plans_an_ipvlan_on_the_effective_parent() {
        let plan =
            OnParent(Ipvlan).plan_endpoint("switchyard", &net(IpvlanMode::L3s, false), &ep(false));
        assert_eq!(
            plan.kind,
            LinkKind::Ipvlan {
                parent: "tp0.30".into(),
                mode: IpvlanMode::L3s,
                flag: IpvlanFlag::Private
            }
        );
        assert_eq!(plan.mac, None);
    }
}
