//! `-o ipv6_slaac=true`: containers on a macvlan / ipvlan L2 network take
//! their IPv6 addresses and default route from the LAN's router
//! advertisements, as the LAN's other machines do.
//!
//! Docker turns router advertisements off in containers, and only dockerd
//! can turn them on again — a driver's link is configured by dockerd after
//! Join, inside the container. Engine 27 and later apply per-endpoint
//! sysctls (`com.docker.network.endpoint.sysctls`, a driver option of
//! `docker run --network` / `docker network connect`), so the endpoint must
//! carry `net.ipv6.conf.IFNAME.accept_ra=2`; Switchyard checks it is there
//! at CreateEndpoint and says how to add it. 20.10 has no such setting, so
//! the option is refused there.
//!
//! Switchyard never answers a static IPv6 gateway on such a network: the
//! default route is the router's, learnt from its advertisements, so there
//! is no second default route to race with it (moby PR #50929).

use super::{BackendOptions, Engine, IpvlanMode, OPT_IPV6_SLAAC};
use crate::quote::quote;
use crate::{Error, Result};
use serde_json::Value;
use std::collections::BTreeMap;

/// The endpoint option dockerd applies sysctls from (Engine 27 and later).
pub const OPT_ENDPOINT_SYSCTLS: &str = "com.docker.network.endpoint.sysctls";

/// The sysctl an endpoint needs, with dockerd's interface placeholder.
pub const ACCEPT_RA: &str = "net.ipv6.conf.IFNAME.accept_ra";

/// Whether `-o ipv6_slaac` asks for SLAAC (`true`/`false`).
pub fn parse(generic: &BTreeMap<String, String>) -> Result<bool> {
    match generic.get(OPT_IPV6_SLAAC).map(|v| v.trim()) {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(Error::invalid(format!(
            "{OPT_IPV6_SLAAC} {} is not true or false; use -o {OPT_IPV6_SLAAC}=true to take IPv6 addresses from router advertisements",
            quote(v)
        ))),
    }
}

/// The backends and modes whose links sit on the LAN and hear its router.
pub fn check_mode(backend: &BackendOptions) -> Result<()> {
    match backend {
        BackendOptions::Macvlan(_) => Ok(()),
        BackendOptions::Ipvlan(i) if i.mode == IpvlanMode::L2 => Ok(()),
        BackendOptions::Ipvlan(i) => Err(Error::invalid(format!(
            "{OPT_IPV6_SLAAC} needs ipvlan_mode=l2: in ipvlan_mode={} the containers are routed by the host and never hear the LAN's router advertisements; use ipvlan_mode=l2, or give the network an IPv6 subnet instead",
            i.mode
        ))),
        BackendOptions::Vxlan(_) => Err(Error::invalid(format!(
            "{OPT_IPV6_SLAAC} is an option of the macvlan and ipvlan backends"
        ))),
    }
}

/// SLAAC needs the network to carry IPv6 (`--ipv6`: dockerd disables
/// IPv6 in containers otherwise) and an engine that applies endpoint
/// sysctls.
pub fn check_network(engine: Engine, ipv6_enabled: bool) -> Result<()> {
    if engine == Engine::V20 {
        return Err(Error::invalid(format!(
            "{OPT_IPV6_SLAAC} needs Docker Engine 27 or later, and this network is being created by Docker Engine 20.10: it cannot let a container accept router advertisements (no per-endpoint sysctls). Upgrade Docker, or give the network a static IPv6 subnet (--ipv6 --subnet <prefix>/64 --gateway <router>) and leave {OPT_IPV6_SLAAC} out"
        )));
    }
    if !ipv6_enabled {
        return Err(Error::invalid(format!(
            "{OPT_IPV6_SLAAC} needs an IPv6 network: dockerd disables IPv6 in containers of networks without it; add --ipv6 --subnet <the LAN's /64 prefix> to docker network create"
        )));
    }
    Ok(())
}

/// At CreateEndpoint: the endpoint must ask dockerd to accept router
/// advertisements (`accept_ra` 1 or 2 for its interface).
pub fn check_endpoint(options: &serde_json::Map<String, Value>, network: &str) -> Result<()> {
    let sysctls = options
        .get(OPT_ENDPOINT_SYSCTLS)
        .and_then(Value::as_str)
        .unwrap_or("");
    let accepts = sysctls.split(',').any(|s| {
        // The docker CLI lowercases `--network …,driver-opt=` values.
        s.split_once('=').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case(ACCEPT_RA) && matches!(v.trim(), "1" | "2")
        })
    });
    if accepts {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "network {network} takes IPv6 from router advertisements ({OPT_IPV6_SLAAC}=true), and Docker turns them off in containers unless the endpoint asks; run the container with --network name=<network>,driver-opt={OPT_ENDPOINT_SYSCTLS}={ACCEPT_RA}=2 (docker network connect: --driver-opt {OPT_ENDPOINT_SYSCTLS}={ACCEPT_RA}=2)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{IpvlanFlag, IpvlanOptions, MacvlanMode, MacvlanOptions, Parent};
    use serde_json::json;

    #[test]
    fn the_option_is_a_boolean() {
        let g = |v: &str| BTreeMap::from([(OPT_IPV6_SLAAC.to_string(), v.to_string())]);
        assert!(parse(&g("true")).unwrap());
        assert!(!parse(&g("FALSE")).unwrap());
        assert!(!parse(&BTreeMap::new()).unwrap());
        let e = parse(&g("yes")).unwrap_err().to_string();
        assert!(e.contains("\"yes\" is not true or false"), "{e}");
    }

    #[test]
    fn lan_modes_new_engines_and_ipv6_networks_only() {
        let parent = Parent::Interface {
            name: "eth0".into(),
        };
        let mv = BackendOptions::Macvlan(MacvlanOptions {
            parent: parent.clone(),
            mode: MacvlanMode::Bridge,
        });
        assert!(check_mode(&mv).is_ok());
        let l3 = BackendOptions::Ipvlan(IpvlanOptions {
            parent,
            mode: IpvlanMode::L3,
            flag: IpvlanFlag::Bridge,
        });
        assert!(
            check_mode(&l3)
                .unwrap_err()
                .to_string()
                .contains("ipvlan_mode=l2")
        );
        let e = check_network(Engine::V20, true).unwrap_err().to_string();
        assert!(
            e.contains("Docker Engine 20.10") && e.contains("Upgrade Docker"),
            "{e}"
        );
        let e = check_network(Engine::V29, false).unwrap_err().to_string();
        assert!(e.contains("--ipv6"), "{e}");
        assert!(check_network(Engine::Unknown, true).is_ok());
    }

    #[test]
    fn the_endpoint_must_ask_for_router_advertisements() {
        let opts = |v: &str| {
            json!({ OPT_ENDPOINT_SYSCTLS: v })
                .as_object()
                .unwrap()
                .clone()
        };
        assert!(check_endpoint(&opts("net.ipv6.conf.IFNAME.accept_ra=2"), "n").is_ok());
        // As the docker CLI sends it from --network name=…,driver-opt=…
        assert!(
            check_endpoint(
                &opts("net.ipv4.conf.ifname.x=1,net.ipv6.conf.ifname.accept_ra=1"),
                "n"
            )
            .is_ok()
        );
        for bad in [
            "",
            "net.ipv6.conf.IFNAME.accept_ra=0",
            "net.ipv6.conf.all.accept_ra=2",
        ] {
            let e = check_endpoint(&opts(bad), "n").unwrap_err().to_string();
            assert!(
                e.contains(&format!("driver-opt={OPT_ENDPOINT_SYSCTLS}={ACCEPT_RA}=2")),
                "{bad}: {e}"
            );
        }
        assert!(check_endpoint(&serde_json::Map::new(), "n").is_err());
    }
}
