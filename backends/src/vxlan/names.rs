//! The names of a VXLAN network's devices and of an endpoint's host end,
//! and the MAC an endpoint gets.

use std::net::IpAddr;
use switchyard_core::mac::MacAddr;

/// The network's bridge.
pub fn bridge_name(vni: u32) -> String {
    format!("sybr{vni}")
}

/// The network's VXLAN device.
pub fn vxlan_name(vni: u32) -> String {
    format!("syvx{vni}")
}

/// The host end of an endpoint's veth pair (the other end is `sy…`).
pub fn host_peer_name(link_name: &str) -> String {
    format!("sh{}", link_name.trim_start_matches("sy"))
}

/// The host end of the veth pair of endpoint `endpoint_id`.
pub fn host_peer_of_endpoint(endpoint_id: &str) -> String {
    host_peer_name(&switchyard_core::model::endpoint_link_name(endpoint_id))
}

/// An endpoint's MAC, derived from its address (IPv4 first) so that a moved
/// endpoint only changes its forwarding entry; from its id if it has none.
pub fn endpoint_mac(ipv4: Option<IpAddr>, ipv6: Option<IpAddr>, endpoint_id: &str) -> MacAddr {
    ipv4.or(ipv6)
        .map(MacAddr::from_ip)
        .unwrap_or_else(|| MacAddr::from_endpoint_id(endpoint_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_carry_the_vni() {
        assert_eq!(bridge_name(10000), "sybr10000");
        assert_eq!(vxlan_name(16777215), "syvx16777215");
        // Within IFNAMSIZ (15) for the largest VNI.
        assert!(bridge_name(switchyard_core::spec::VNI_MAX).len() <= 15);
    }

    #[test]
    fn host_peer_replaces_the_sy_prefix() {
        assert_eq!(host_peer_name("sy0123456789a"), "sh0123456789a");
        let id = "0123456789abcdef0123";
        let link = switchyard_core::model::endpoint_link_name(id);
        assert!(link.starts_with("sy"), "{link}");
        assert_eq!(host_peer_of_endpoint(id), host_peer_name(&link));
        assert!(host_peer_of_endpoint(id).len() <= 15);
    }

    #[test]
    fn mac_from_ipv4_then_ipv6_then_id() {
        let v4: IpAddr = "10.1.2.3".parse().unwrap();
        let v6: IpAddr = "fd00::1:2".parse().unwrap();
        assert_eq!(endpoint_mac(Some(v4), Some(v6), "e1"), MacAddr::from_ip(v4));
        assert_eq!(endpoint_mac(None, Some(v6), "e1"), MacAddr::from_ip(v6));
        assert_eq!(
            endpoint_mac(None, None, "abcdef0123"),
            MacAddr::from_endpoint_id("abcdef0123")
        );
        assert_ne!(
            endpoint_mac(Some(v4), None, "x"),
            endpoint_mac(Some("10.1.2.4".parse().unwrap()), None, "x")
        );
    }
}
