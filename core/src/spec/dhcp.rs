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
