//! `-o ipam=dhcp`: endpoints take their IPv4 address and gateway from the
//! LAN's DHCP server. Needs `--ipam-driver null` (dockerd then sends the
//! endpoint without an address and accepts the one Switchyard returns) and
//! a network whose endpoints sit on the LAN: macvlan, or ipvlan l2.

use super::{BackendOptions, IpvlanMode, NetworkSpec};
use crate::quote::quote;
use crate::{Error, Result};

pub const OPT_IPAM: &str = "ipam";
pub const IPAM_DHCP: &str = "dhcp";

/// Whether the network's endpoints are addressed by DHCP.
pub fn dhcp_enabled(spec: &NetworkSpec) -> bool {
    spec.options.get(OPT_IPAM).map(String::as_str) == Some(IPAM_DHCP)
}

/// Checks `ipam=` against the rest of the network (`null_ipam`: every IPv4
/// pool dockerd sent is the null IPAM's `0.0.0.0/0`).
pub fn check(spec: &NetworkSpec, null_ipam: bool) -> Result<()> {
    let Some(v) = spec.options.get(OPT_IPAM) else {
        return Ok(());
    };
    if v != IPAM_DHCP {
        return Err(Error::invalid(format!(
            "option ipam={} is not known; the only value is ipam=dhcp (addresses from the LAN's DHCP server), or leave the option out",
            quote(v)
        )));
    }
    match &spec.backend {
        BackendOptions::Ipvlan(i) if i.mode != IpvlanMode::L2 => {
            return Err(Error::invalid(format!(
                "ipam=dhcp needs ipvlan_mode=l2: in mode {} the endpoints are routed, not on the LAN where the DHCP server is",
                i.mode
            )));
        }
        BackendOptions::Vxlan(_) => {
            return Err(Error::invalid(
                "ipam=dhcp is for macvlan and ipvlan l2 networks; a vxlan network has no LAN DHCP server",
            ));
        }
        _ => {}
    }
    if !null_ipam || !spec.ipv4.is_empty() {
        return Err(Error::invalid(
            "ipam=dhcp needs --ipam-driver null: with another IPAM driver dockerd assigns the address itself; add --ipam-driver null and drop --subnet/--gateway/--ip-range",
        ));
    }
    if spec.internal {
        return Err(Error::invalid(
            "ipam=dhcp cannot be used with --internal: the LAN's DHCP server would hand out a gateway the network must not use; drop --internal or ipam=dhcp",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{Policy, parse_network};
    use super::*;
    use crate::protocol::CreateNetworkRequest;
    use serde_json::{Value, json};

    fn parse(generic: Value, pool: &str, internal: bool) -> Result<NetworkSpec> {
        let req: CreateNetworkRequest = serde_json::from_value(json!({
            "NetworkID": "n1",
            "Options": {"com.docker.network.generic": generic, "com.docker.network.internal": internal},
            "IPv4Data": [{"AddressSpace": if pool == "0.0.0.0/0" { "null" } else { "LocalDefault" }, "Pool": pool}],
            "IPv6Data": []
        }))
        .unwrap();
        parse_network(&req, &Policy::default())
    }

    #[test]
    fn dhcp_needs_the_null_ipam_and_an_l2_network() {
        let ok = parse(
            json!({"backend": "macvlan", "parent": "tp0", "ipam": "dhcp"}),
            "0.0.0.0/0",
            false,
        );
        assert!(dhcp_enabled(&ok.unwrap()));
        let ok = parse(
            json!({"backend": "ipvlan", "parent": "tp0", "ipam": "dhcp"}),
            "0.0.0.0/0",
            false,
        );
        assert!(dhcp_enabled(&ok.unwrap()));
        let plain = parse(
            json!({"backend": "macvlan", "parent": "tp0"}),
            "10.1.0.0/24",
            false,
        );
        assert!(!dhcp_enabled(&plain.unwrap()));

        let e = |g: Value, pool: &str, internal: bool| {
            parse(g, pool, internal).unwrap_err().to_string()
        };
        let m = e(
            json!({"backend": "macvlan", "parent": "tp0", "ipam": "dhcp"}),
            "10.1.0.0/24",
            false,
        );
        assert!(m.contains("--ipam-driver null"), "{m}");
        let m = e(
            json!({"backend": "ipvlan", "parent": "tp0", "ipvlan_mode": "l3s", "ipam": "dhcp"}),
            "0.0.0.0/0",
            false,
        );
        assert!(m.contains("ipvlan_mode=l2") && m.contains("l3s"), "{m}");
        let m = e(
            json!({"backend": "vxlan", "vni": "7", "ipam": "dhcp"}),
            "0.0.0.0/0",
            false,
        );
        assert!(m.contains("\"ipam\" belongs to backend"), "{m}");
        let m = e(
            json!({"backend": "macvlan", "parent": "tp0", "ipam": "static"}),
            "0.0.0.0/0",
            false,
        );
        assert!(m.contains("ipam=\"static\" is not known"), "{m}");
        let m = e(
            json!({"backend": "macvlan", "parent": "tp0", "ipam": "dhcp"}),
            "0.0.0.0/0",
            true,
        );
        assert!(m.contains("--internal"), "{m}");
    }
}
