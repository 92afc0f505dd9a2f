//! The underlay: the interface towards the other hosts, this host's VTEP
//! address on it, and the MTU left for the networks over it.

use std::net::IpAddr;
use switchyard_core::link::{Link, LinkManager};

/// The interface towards the other hosts and this host's VTEP address on it.
#[derive(Clone, Debug, Default)]
pub struct Underlay {
    pub ifname: Option<String>,
    pub vtep: Option<IpAddr>,
    pub mtu: u32,
}

impl Underlay {
    /// VXLAN's encapsulation: inner Ethernet 14 + VXLAN 8 + UDP 8 + outer IP
    /// (20 over IPv4, 40 over IPv6).
    pub fn overhead(&self) -> u32 {
        match self.vtep {
            Some(IpAddr::V6(_)) => 70,
            _ => 50,
        }
    }

    /// The MTU every link of a network gets unless the user names one.
    pub fn default_mtu(&self) -> u32 {
        self.mtu.saturating_sub(self.overhead())
    }

    /// Finds the underlay: the named interface; else the interface of the
    /// route towards `towards` (an etcd endpoint), with its preferred source
    /// as the VTEP; else the first up, non-loopback interface with an IPv4
    /// address that Switchyard did not make. The VTEP is `local_ip` if
    /// given, else the route's source, else the interface's first IPv4
    /// (else IPv6) address.
    pub async fn discover(
        links: &LinkManager,
        ifname: Option<&str>,
        local_ip: Option<IpAddr>,
        towards: Option<IpAddr>,
    ) -> Result<Underlay, String> {
        if ifname.is_none()
            && let Some(t) = towards
            && let Ok(Some((index, src))) = links.route_to(t).await
            && let Ok(Some(l)) = links.get_by_index(index).await
            && l.name != "lo"
        {
            let vtep = local_ip.or(src);
            if vtep.is_some() {
                return Ok(Underlay {
                    ifname: Some(l.name),
                    vtep,
                    mtu: l.mtu,
                });
            }
        }
        let pick = |l: &Link| l.name != "lo" && l.up && l.mark().is_none();
        let link = match ifname {
            Some(n) => Some(
                links
                    .get(n)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("[vxlan] underlay \"{n}\" does not exist on this host; name the interface that reaches the other hosts"))?,
            ),
            None => {
                let mut found = None;
                for l in links.list().await.map_err(|e| e.to_string())?.into_iter().filter(pick) {
                    let addrs = links.addresses(&l.name).await.unwrap_or_default();
                    if addrs.iter().any(|a| a.addr().is_ipv4() && !a.addr().is_loopback()) {
                        found = Some(l);
                        break;
                    }
                }
                found
            }
        };
        let Some(link) = link else {
            return Ok(Underlay {
                ifname: None,
                vtep: local_ip,
                mtu: 1500,
            });
        };
        let vtep = match local_ip {
            Some(ip) => Some(ip),
            None => {
                let addrs = links
                    .addresses(&link.name)
                    .await
                    .map_err(|e| e.to_string())?;
                addrs
                    .iter()
                    .map(|a| a.addr())
                    .find(|a| a.is_ipv4())
                    .or_else(|| {
                        addrs
                            .iter()
                            .map(|a| a.addr())
                            .find(|a| a.is_ipv6() && !is_link_local(a))
                    })
            }
        };
        Ok(Underlay {
            ifname: Some(link.name),
            vtep,
            mtu: link.mtu,
        })
    }
}

fn is_link_local(a: &IpAddr) -> bool {
    matches!(a, IpAddr::V6(v) if (v.segments()[0] & 0xffc0) == 0xfe80)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overhead_and_mtu_follow_the_vtep_family() {
        let v4 = Underlay {
            ifname: Some("eth1".into()),
            vtep: Some("192.0.2.1".parse().unwrap()),
            mtu: 1500,
        };
        assert_eq!((v4.overhead(), v4.default_mtu()), (50, 1450));
        let v6 = Underlay {
            vtep: Some("2001:db8::1".parse().unwrap()),
            mtu: 9000,
            ..v4.clone()
        };
        assert_eq!((v6.overhead(), v6.default_mtu()), (70, 8930));
        let none = Underlay {
            mtu: 20,
            ..Underlay::default()
        };
        assert_eq!((none.overhead(), none.default_mtu()), (50, 0));
    }

    #[test]
    fn link_local_is_fe80_slash_10() {
        assert!(is_link_local(&"fe80::1".parse().unwrap()));
        assert!(is_link_local(&"febf::1".parse().unwrap()));
        assert!(!is_link_local(&"fec0::1".parse().unwrap()));
        assert!(!is_link_local(&"169.254.1.1".parse().unwrap()));
    }
}
