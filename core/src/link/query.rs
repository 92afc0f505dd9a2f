//! Lookups: links by name or index, the route to an address, a link's
//! addresses, which link kinds this kernel has. "Not found" is an answer.

use super::error::{self, ENODEV};
use super::{LinkError, LinkManager, LinkResult};
use crate::mac::MacAddr;
use crate::mark::Mark;
use futures::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::LinkMessageBuilder;
use rtnetlink::LinkUnspec;
use rtnetlink::packet_route::link::{
    InfoData, InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};

/// A link as the kernel reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// `macvlan`, `veth`, … ; `None` for physical devices.
    pub kind: Option<String>,
    pub mtu: u32,
    pub up: bool,
    pub alias: Option<String>,
    /// Index of the lower device (IFLA_LINK) for stacked links.
    pub parent_index: Option<u32>,
    pub controller: Option<u32>,
    pub mac: Option<MacAddr>,
    /// The VLAN id of an 802.1q link.
    pub vlan_id: Option<u16>,
}

impl Link {
    pub fn mark(&self) -> Option<Mark> {
        self.alias.as_deref().and_then(Mark::parse)
    }

    pub(super) fn from_message(m: &LinkMessage) -> Link {
        let mut link = Link {
            index: m.header.index,
            name: String::new(),
            kind: None,
            mtu: 0,
            up: m.header.flags.contains(LinkFlags::Up),
            alias: None,
            parent_index: None,
            controller: None,
            mac: None,
            vlan_id: None,
        };
        for a in &m.attributes {
            match a {
                LinkAttribute::IfName(n) => link.name = n.clone(),
                LinkAttribute::Mtu(v) => link.mtu = *v,
                LinkAttribute::IfAlias(s) if !s.is_empty() => link.alias = Some(s.clone()),
                LinkAttribute::Link(i) if *i != 0 => link.parent_index = Some(*i),
                LinkAttribute::Controller(i) if *i != 0 => link.controller = Some(*i),
                LinkAttribute::Address(b) if b.len() == 6 => {
                    let mut mac = [0u8; 6];
                    mac.copy_from_slice(b);
                    link.mac = Some(MacAddr(mac));
                }
                LinkAttribute::LinkInfo(infos) => {
                    for i in infos {
                        match i {
                            LinkInfo::Kind(k) => link.kind = Some(k.to_string()),
                            LinkInfo::Data(InfoData::Vlan(v)) => {
                                for x in v {
                                    if let rtnetlink::packet_route::link::InfoVlan::Id(id) = x {
                                        link.vlan_id = Some(*id);
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        link
    }
}

impl LinkManager {
    pub async fn get(&self, name: &str) -> LinkResult<Option<Link>> {
        let mut req = self
            .handle()
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match req.try_next().await {
            Ok(Some(m)) => Ok(Some(Link::from_message(&m))),
            Ok(None) => Ok(None),
            Err(e) => {
                let e = LinkError::from_netlink(format!("looking up link {name}"), e);
                if e.is_not_found() { Ok(None) } else { Err(e) }
            }
        }
    }

    pub async fn get_by_index(&self, index: u32) -> LinkResult<Option<Link>> {
        let mut req = self.handle().link().get().match_index(index).execute();
        match req.try_next().await {
            Ok(m) => Ok(m.map(|m| Link::from_message(&m))),
            Err(e) => {
                let e = LinkError::from_netlink(format!("looking up link #{index}"), e);
                if e.is_not_found() { Ok(None) } else { Err(e) }
            }
        }
    }

    /// Every link of the namespace (see `dump.rs`: bounded memory).
    pub async fn list(&self) -> LinkResult<Vec<Link>> {
        super::dump::links(self.netns.clone()).await
    }

    pub(crate) async fn require(&self, name: &str, role: &str) -> LinkResult<Link> {
        self.get(name).await?.ok_or_else(|| not_found(name, role))
    }

    /// Whether this kernel can create links of `kind` ("ipvlan", "vlan",
    /// "macvlan", "vxlan"). Asks the kernel to create one without a lower
    /// device: a kernel that knows the type refuses for the missing device
    /// (EINVAL/ENODEV), one that does not answers EOPNOTSUPP. Nothing is created.
    pub async fn supports(&self, kind: &str) -> LinkResult<bool> {
        let kind_info = match kind {
            "ipvlan" => InfoKind::IpVlan,
            "vlan" => InfoKind::Vlan,
            "macvlan" => InfoKind::MacVlan,
            "vxlan" => InfoKind::Vxlan,
            other => {
                return Err(LinkError::new(
                    format!("probing for {other} links"),
                    error::EINVAL,
                    "cannot probe that kind",
                ));
            }
        };
        let msg = LinkMessageBuilder::<LinkUnspec>::new_with_info_kind(kind_info)
            .name("syprobe0".to_string())
            .build();
        match self.handle().link().add(msg).execute().await {
            Ok(()) => {
                // Should not happen; do not leave it behind.
                if let Some(l) = self.get("syprobe0").await? {
                    let _ = self.handle().link().del(l.index).execute().await;
                }
                Ok(true)
            }
            Err(e) => Ok(LinkError::from_netlink("probe", e).errno != error::EOPNOTSUPP),
        }
    }

    /// An error saying this kernel lacks `kind` links, for callers that
    /// found out with `supports`.
    pub fn unsupported(&self, kind: &str, action: impl Into<String>) -> LinkError {
        unsupported(kind, action.into())
    }

    /// The route this host would use to reach `ip`: the outgoing link's index
    /// and the preferred source address (`ip route get`).
    pub async fn route_to(
        &self,
        ip: std::net::IpAddr,
    ) -> LinkResult<Option<(u32, Option<std::net::IpAddr>)>> {
        use rtnetlink::RouteMessageBuilder;
        use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute};
        let msg = match ip {
            std::net::IpAddr::V4(a) => RouteMessageBuilder::<std::net::Ipv4Addr>::new()
                .destination_prefix(a, 32)
                .build(),
            std::net::IpAddr::V6(a) => RouteMessageBuilder::<std::net::Ipv6Addr>::new()
                .destination_prefix(a, 128)
                .build(),
        };
        let mut req = self.handle().route().get(msg).execute();
        let route = match req.try_next().await {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(None),
            Err(e) => {
                let e = LinkError::from_netlink(format!("looking up the route to {ip}"), e);
                // No route (ENETUNREACH) is an answer, not a failure.
                return if e.errno == 101 || e.errno == 113 {
                    Ok(None)
                } else {
                    Err(e)
                };
            }
        };
        let mut oif = None;
        let mut src = None;
        for a in &route.attributes {
            match a {
                RouteAttribute::Oif(i) => oif = Some(*i),
                RouteAttribute::PrefSource(RouteAddress::Inet(v)) => {
                    src = Some(std::net::IpAddr::V4(*v))
                }
                RouteAttribute::PrefSource(RouteAddress::Inet6(v)) => {
                    src = Some(std::net::IpAddr::V6(*v))
                }
                _ => {}
            }
        }
        Ok(oif.map(|i| (i, src)))
    }

    pub async fn addresses(&self, name: &str) -> LinkResult<Vec<IpNet>> {
        use rtnetlink::packet_route::address::AddressAttribute;
        let link = self.require(name, "link").await?;
        let mut out = Vec::new();
        let mut req = self
            .handle()
            .address()
            .get()
            .set_link_index_filter(link.index)
            .execute();
        while let Some(m) = req
            .try_next()
            .await
            .map_err(|e| LinkError::from_netlink(format!("listing addresses of {name}"), e))?
        {
            for a in &m.attributes {
                if let AddressAttribute::Address(ip) = a
                    && let Ok(n) = IpNet::new(*ip, m.header.prefix_len)
                {
                    out.push(n);
                }
            }
        }
        Ok(out)
    }
}

pub(super) fn not_found(name: &str, role: &str) -> LinkError {
    LinkError::new(
        format!("looking up {role} {name}"),
        ENODEV,
        format!("{role} \"{name}\" does not exist on this host"),
    )
}

pub(super) fn unsupported(kind: &str, action: String) -> LinkError {
    let (feature, module) = match kind {
        "ipvlan" => ("IPVLAN", "ipvlan"),
        "vlan" => ("802.1q VLAN", "8021q"),
        "dummy" => ("dummy", "dummy"),
        "macvlan" => ("MACVLAN", "macvlan"),
        "vxlan" => ("VXLAN", "vxlan"),
        other => (other, other),
    };
    LinkError::new(
        action,
        error::EOPNOTSUPP,
        format!(
            "this host's kernel has no {feature} support (kernel module {module}); use a kernel with it, or load the module (modprobe {module})"
        ),
    )
}
