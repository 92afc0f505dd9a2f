//! `-o host_access=…`: the host reaches its own macvlan / ipvlan L2
//! containers. The kernel never passes traffic between a parent and its
//! children, so the host gets a child of its own on the parent (a macvlan
//! in bridge mode, an ipvlan L2 port) holding an address of the network,
//! and a /32 (/128) route per container through it. This file is the pure
//! half: which modes can do it, and which address the host takes.
//!
//! The address comes from the option itself (`host_access=192.168.1.250`,
//! one per family, comma separated) or from Docker's own reservation,
//! `--aux-address host=…` with `host_access=true`: IPAM then never hands
//! it to a container.

use super::{BackendOptions, IpvlanFlag, IpvlanMode, MacvlanMode, OPT_HOST_ACCESS, Subnet};
use crate::protocol::IpamData;
use crate::quote::quote;
use crate::{Error, Result};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// The `--aux-address` name `host_access=true` takes the host's address from.
pub const AUX_HOST: &str = "host";

/// The host's addresses on the network (at most one per family).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostAccess {
    pub addresses: Vec<IpAddr>,
}

impl HostAccess {
    pub fn ipv4(&self) -> Option<IpAddr> {
        self.addresses.iter().copied().find(IpAddr::is_ipv4)
    }

    pub fn ipv6(&self) -> Option<IpAddr> {
        self.addresses.iter().copied().find(IpAddr::is_ipv6)
    }

    /// The host's address a route to `dest` takes as its source.
    pub fn source_for(&self, dest: IpAddr) -> Option<IpAddr> {
        if dest.is_ipv4() {
            self.ipv4()
        } else {
            self.ipv6()
        }
    }
}

/// Whether the option is given and not switched off.
fn wanted(generic: &BTreeMap<String, String>) -> Option<&str> {
    generic
        .get(OPT_HOST_ACCESS)
        .map(|v| v.trim())
        .filter(|v| !v.eq_ignore_ascii_case("false") && !v.is_empty())
}

/// The modes in which a host-side child reaches the containers: macvlan
/// bridge, ipvlan L2 with the bridge flag. Runs on the options alone
/// (`GwAllocCheck`).
pub fn check_mode(generic: &BTreeMap<String, String>, backend: &BackendOptions) -> Result<()> {
    if wanted(generic).is_none() {
        return Ok(());
    }
    let why = match backend {
        BackendOptions::Macvlan(m) => match m.mode {
            MacvlanMode::Bridge => return Ok(()),
            MacvlanMode::Passthru => {
                "macvlan_mode=passthru gives the whole parent to one container, so no second link can hang off it"
            }
            MacvlanMode::Private => {
                "macvlan_mode=private stops all traffic between links of the parent, the host's included"
            }
            MacvlanMode::Vepa => {
                "macvlan_mode=vepa sends traffic between links of the parent out to the switch, which must reflect it (hairpin); Switchyard cannot know it does"
            }
        },
        BackendOptions::Ipvlan(i) => match (i.mode, i.flag) {
            (IpvlanMode::L2, IpvlanFlag::Bridge) => return Ok(()),
            (IpvlanMode::L2, flag) => {
                return Err(Error::invalid(format!(
                    "{OPT_HOST_ACCESS} cannot work with ipvlan_flag={flag}: it stops (private) or sends out (vepa) traffic between ipvlan links of the parent, the host's included; use ipvlan_flag=bridge, or leave {OPT_HOST_ACCESS} out"
                )));
            }
            (mode, _) => {
                return Err(Error::invalid(format!(
                    "{OPT_HOST_ACCESS} is for ipvlan_mode=l2; with ipvlan_mode={mode} the containers are routed, not on the LAN: route their subnet to the host instead, or use ipvlan_mode=l2"
                )));
            }
        },
        BackendOptions::Vxlan(_) => {
            return Err(Error::invalid(format!(
                "{OPT_HOST_ACCESS} is an option of the macvlan and ipvlan backends"
            )));
        }
    };
    Err(Error::invalid(format!(
        "{OPT_HOST_ACCESS} needs macvlan_mode=bridge: {why}; create the network with -o macvlan_mode=bridge, or leave {OPT_HOST_ACCESS} out"
    )))
}

/// The host's addresses, given the network's subnets and what IPAM sent
/// (`--aux-address`). `None` without the option.
pub fn parse(
    generic: &BTreeMap<String, String>,
    ipv4: &[Subnet],
    ipv6: &[Subnet],
    data: &[&IpamData],
) -> Result<Option<HostAccess>> {
    let Some(value) = wanted(generic) else {
        return Ok(None);
    };
    let addresses = if value.eq_ignore_ascii_case("true") {
        let found = aux_hosts(data)?;
        if found.is_empty() {
            return Err(Error::invalid(format!(
                "{OPT_HOST_ACCESS}=true takes the host's address from --aux-address {AUX_HOST}=<ip>, and the network has none; add --aux-address {AUX_HOST}=<a free address of the subnet> to docker network create, or give the address: -o {OPT_HOST_ACCESS}=<ip>"
            )));
        }
        found
    } else {
        value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpAddr>().map_err(|_| {
                    Error::invalid(format!(
                        "{OPT_HOST_ACCESS} {} is not an IP address; give the host's address on the network (e.g. -o {OPT_HOST_ACCESS}=192.168.1.250, and an IPv6 one after a comma), or -o {OPT_HOST_ACCESS}=true with --aux-address {AUX_HOST}=<ip>",
                        quote(s)
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?
    };
    let mut seen = (false, false);
    for a in &addresses {
        let (subnets, family, twice) = if a.is_ipv4() {
            (ipv4, "IPv4", std::mem::replace(&mut seen.0, true))
        } else {
            (ipv6, "IPv6", std::mem::replace(&mut seen.1, true))
        };
        if twice {
            return Err(Error::invalid(format!(
                "{OPT_HOST_ACCESS} names more than one {family} address; the host takes one address per family"
            )));
        }
        let Some(subnet) = subnets.iter().find(|s| s.pool.contains(a)) else {
            let list: Vec<String> = subnets.iter().map(|s| s.pool.to_string()).collect();
            return Err(Error::invalid(format!(
                "{OPT_HOST_ACCESS} address {a} is outside the network's {family} subnets ({}); the containers reach the host only at an address of their own subnet",
                if list.is_empty() {
                    "none".to_string()
                } else {
                    list.join(", ")
                }
            )));
        };
        if subnet.gateway == Some(*a) {
            return Err(Error::invalid(format!(
                "{OPT_HOST_ACCESS} address {a} is the network's gateway (the LAN's router); give the host another free address of {}",
                subnet.pool
            )));
        }
        if let IpNet::V4(p) = subnet.pool
            && p.prefix_len() < 31
            && (*a == IpAddr::V4(p.network()) || *a == IpAddr::V4(p.broadcast()))
        {
            return Err(Error::invalid(format!(
                "{OPT_HOST_ACCESS} address {a} is the network or broadcast address of {p}; give the host a usable address of it"
            )));
        }
    }
    Ok(Some(HostAccess { addresses }))
}

/// The `host` auxiliary addresses IPAM sent (`IP/prefix` from libnetwork).
fn aux_hosts(data: &[&IpamData]) -> Result<Vec<IpAddr>> {
    let mut out = Vec::new();
    for d in data {
        let Some(v) = d.aux_addresses.as_ref().and_then(|a| a.get(AUX_HOST)) else {
            continue;
        };
        let ip = v
            .parse::<IpNet>()
            .map(|n| n.addr())
            .or_else(|_| v.parse::<IpAddr>())
            .map_err(|_| {
                Error::invalid(format!(
                    "--aux-address {AUX_HOST}={} is not an IP address",
                    quote(v)
                ))
            })?;
        out.push(ip);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{IpvlanOptions, MacvlanOptions, Parent};

    fn generic(v: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(OPT_HOST_ACCESS.to_string(), v.to_string())])
    }

    fn subnet(pool: &str, gw: Option<&str>) -> Subnet {
        Subnet {
            pool: pool.parse().unwrap(),
            gateway: gw.map(|g| g.parse().unwrap()),
        }
    }

    fn macvlan(mode: MacvlanMode) -> BackendOptions {
        BackendOptions::Macvlan(MacvlanOptions {
            parent: Parent::Interface {
                name: "eth0".into(),
            },
            mode,
        })
    }

    fn ipvlan(mode: IpvlanMode, flag: IpvlanFlag) -> BackendOptions {
        BackendOptions::Ipvlan(IpvlanOptions {
            parent: Parent::Interface {
                name: "eth0".into(),
            },
            mode,
            flag,
        })
    }

    #[test]
    fn only_modes_whose_links_talk_to_each_other_are_accepted() {
        let g = generic("192.168.1.250");
        assert!(check_mode(&g, &macvlan(MacvlanMode::Bridge)).is_ok());
        assert!(check_mode(&g, &ipvlan(IpvlanMode::L2, IpvlanFlag::Bridge)).is_ok());
        for (b, want) in [
            (macvlan(MacvlanMode::Passthru), "macvlan_mode=passthru"),
            (macvlan(MacvlanMode::Private), "macvlan_mode=private"),
            (macvlan(MacvlanMode::Vepa), "hairpin"),
            (ipvlan(IpvlanMode::L3, IpvlanFlag::Bridge), "ipvlan_mode=l3"),
            (
                ipvlan(IpvlanMode::L3s, IpvlanFlag::Bridge),
                "ipvlan_mode=l3s",
            ),
            (
                ipvlan(IpvlanMode::L2, IpvlanFlag::Private),
                "ipvlan_flag=private",
            ),
            (ipvlan(IpvlanMode::L2, IpvlanFlag::Vepa), "ipvlan_flag=vepa"),
        ] {
            let e = check_mode(&g, &b).unwrap_err().to_string();
            assert!(e.contains(want), "{b:?}: {e}");
        }
        // Off, or not given: any mode.
        assert!(check_mode(&generic("false"), &macvlan(MacvlanMode::Passthru)).is_ok());
        assert!(check_mode(&BTreeMap::new(), &macvlan(MacvlanMode::Private)).is_ok());
    }

    #[test]
    fn addresses_from_the_option_or_the_aux_address() {
        let v4 = [subnet("192.168.1.0/24", Some("192.168.1.1"))];
        let v6 = [subnet("fd00:1::/64", None)];
        let a = parse(&generic("192.168.1.250, fd00:1::250"), &v4, &v6, &[])
            .unwrap()
            .unwrap();
        assert_eq!(a.ipv4(), Some("192.168.1.250".parse().unwrap()));
        assert_eq!(a.ipv6(), Some("fd00:1::250".parse().unwrap()));
        assert_eq!(
            a.source_for("fd00:1::5".parse().unwrap()),
            Some("fd00:1::250".parse().unwrap())
        );
        let data = IpamData {
            address_space: "LocalDefault".into(),
            pool: "192.168.1.0/24".into(),
            gateway: None,
            aux_addresses: Some(BTreeMap::from([(
                AUX_HOST.to_string(),
                "192.168.1.240/24".to_string(),
            )])),
        };
        let a = parse(&generic("true"), &v4, &[], &[&data])
            .unwrap()
            .unwrap();
        assert_eq!(
            a.addresses,
            vec!["192.168.1.240".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(parse(&generic("false"), &v4, &[], &[]).unwrap(), None);
        assert_eq!(parse(&BTreeMap::new(), &v4, &[], &[]).unwrap(), None);
    }

    #[test]
    fn bad_addresses_are_refused_with_what_would_be_right() {
        let v4 = [subnet("192.168.1.0/24", Some("192.168.1.1"))];
        for (value, want) in [
            ("nothost", "is not an IP address"),
            (
                "10.0.0.5",
                "outside the network's IPv4 subnets (192.168.1.0/24)",
            ),
            ("fd00::5", "outside the network's IPv6 subnets (none)"),
            ("192.168.1.1", "is the network's gateway"),
            ("192.168.1.255", "network or broadcast address"),
            ("192.168.1.5,192.168.1.6", "more than one IPv4 address"),
            ("true", "--aux-address host="),
        ] {
            let e = parse(&generic(value), &v4, &[], &[])
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{value}: {e}");
        }
    }
}
