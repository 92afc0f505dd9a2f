//! The one netlink component. Every backend goes through `LinkManager`; no
//! other code opens a netlink socket.
//!
//! Creation is idempotent (an existing link carrying the same mark is
//! reused), deletion refuses links without Switchyard's mark, and "not found"
//! is an ordinary answer, never an error.

pub mod error;
mod neigh;
mod netns;
mod plan;
mod reaper;

pub use error::LinkError;
pub use neigh::{FdbEntry, Neighbour};
pub use plan::{LinkKind, LinkPlan, VxlanLink};

use crate::mac::MacAddr;
use crate::mark::Mark;
use crate::spec::{IpvlanFlag, IpvlanMode, MacvlanMode};
use error::{EEXIST, ENODEV};
use futures::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::packet_route::link::{
    InfoData, InfoIpVlan, InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage, MacVlanMode,
};
use rtnetlink::{
    Handle, LinkBridge, LinkDummy, LinkIpVlan, LinkMacVlan, LinkMessageBuilder, LinkUnspec,
    LinkVeth, LinkVlan, LinkVxlan,
};
use std::os::fd::AsRawFd;
use std::path::Path;

pub(crate) type LinkResult<T> = std::result::Result<T, LinkError>;

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

    fn from_message(m: &LinkMessage) -> Link {
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

/// What `delete_owned` found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deleted {
    Deleted,
    /// No link of that name: nothing to do.
    Missing,
    /// A link of that name exists but is not the one the caller owns; left alone.
    NotOurs,
}

#[derive(Clone)]
pub struct LinkManager {
    handle: Handle,
    /// `None` only inside the reaper's own copy.
    reaper: Option<reaper::Reaper>,
}

impl LinkManager {
    /// A manager for the network namespace this process runs in. Must be
    /// called inside a tokio runtime (the netlink connection runs on it).
    pub fn new() -> std::io::Result<LinkManager> {
        let (conn, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(conn);
        Self::with_handle(handle, None)
    }

    /// A manager for the namespace at `path` (e.g. `/run/netns/NAME`).
    pub fn in_netns(path: &Path) -> std::io::Result<LinkManager> {
        let handle = netns::handle_in_netns(path)?;
        Self::with_handle(handle, Some(path.to_owned()))
    }

    fn with_handle(
        handle: Handle,
        netns: Option<std::path::PathBuf>,
    ) -> std::io::Result<LinkManager> {
        Ok(LinkManager {
            handle,
            reaper: Some(reaper::Reaper::spawn(netns)?),
        })
    }

    /// Like `delete_owned` with an exact mark, but off the caller's path:
    /// the kernel takes 10–20 ms to unregister a netdev (RCU grace periods),
    /// which a request need not wait for. If the process dies first, startup
    /// reconciliation removes the link (its endpoint is gone from the state).
    pub fn delete_later(&self, name: &str, mark: Mark) {
        if let Some(r) = &self.reaper {
            r.delete(name, mark);
        }
    }

    /// Waits until every `delete_later` issued so far has been carried out.
    pub async fn flush(&self) {
        if let Some(r) = &self.reaper {
            r.flush().await;
        }
    }

    pub async fn get(&self, name: &str) -> LinkResult<Option<Link>> {
        let mut req = self
            .handle
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
        let mut req = self.handle.link().get().match_index(index).execute();
        match req.try_next().await {
            Ok(m) => Ok(m.map(|m| Link::from_message(&m))),
            Err(e) => {
                let e = LinkError::from_netlink(format!("looking up link #{index}"), e);
                if e.is_not_found() { Ok(None) } else { Err(e) }
            }
        }
    }

    pub async fn list(&self) -> LinkResult<Vec<Link>> {
        let mut out = Vec::new();
        let mut req = self.handle.link().get().execute();
        while let Some(m) = req
            .try_next()
            .await
            .map_err(|e| LinkError::from_netlink("listing links", e))?
        {
            out.push(Link::from_message(&m));
        }
        Ok(out)
    }

    pub(crate) async fn require(&self, name: &str, role: &str) -> LinkResult<Link> {
        self.get(name).await?.ok_or_else(|| {
            LinkError::new(
                format!("looking up {role} {name}"),
                ENODEV,
                format!("{role} \"{name}\" does not exist on this host"),
            )
        })
    }

    /// Creates the planned link, or returns the existing one if it already
    /// carries the plan's mark (a retried request). A same-named link that is
    /// not this plan's is an error, and is left untouched.
    pub async fn apply(&self, plan: &LinkPlan) -> LinkResult<Link> {
        if let Some(existing) = self.get(&plan.name).await? {
            return if existing.mark().as_ref() == Some(&plan.mark) {
                Ok(existing)
            } else {
                Err(LinkError::new(
                    format!("creating {}", plan.describe()),
                    EEXIST,
                    format!(
                        "a link named {} already exists and does not belong to this {}",
                        plan.name,
                        if plan.mark.endpoint_id.is_some() {
                            "endpoint"
                        } else {
                            "network"
                        }
                    ),
                ))
            };
        }
        let msg = self.build(plan).await?;
        self.handle.link().add(msg).execute().await.map_err(|e| {
            let e = LinkError::from_netlink(format!("creating {}", plan.describe()), e);
            if e.errno == error::EOPNOTSUPP {
                unsupported(plan.kind.kernel_kind(), e.action)
            } else {
                e
            }
        })?;
        // The kernel ignores IFLA_IFALIAS on creation, so the mark is set
        // right after; if that fails the fresh link is removed again.
        let link = self.require(&plan.name, "new link").await?;
        let mut set = LinkUnspec::new_with_index(link.index).alias(plan.mark.to_string());
        if plan.up {
            set = set.up();
        }
        if let Err(e) = self.handle.link().set(set.build()).execute().await {
            let _ = self.handle.link().del(link.index).execute().await;
            return Err(LinkError::from_netlink(
                format!("marking {} as Switchyard's", plan.describe()),
                e,
            ));
        }
        self.require(&plan.name, "new link").await
    }

    async fn build(&self, plan: &LinkPlan) -> LinkResult<LinkMessage> {
        let name = plan.name.as_str();
        let parent_index = match plan.kind.parent() {
            Some(p) => Some(self.require(p, "parent").await?.index),
            None => None,
        };
        let pidx = parent_index.unwrap_or(0);
        let base = match &plan.kind {
            LinkKind::Macvlan { mode, .. } => {
                let mode = match mode {
                    MacvlanMode::Bridge => MacVlanMode::Bridge,
                    MacvlanMode::Vepa => MacVlanMode::Vepa,
                    MacvlanMode::Private => MacVlanMode::Private,
                    MacvlanMode::Passthru => MacVlanMode::Passthrough,
                };
                LinkMacVlan::new(name, pidx, mode).build()
            }
            LinkKind::Ipvlan { mode, flag, .. } => {
                use rtnetlink::packet_route::link::{IpVlanFlags, IpVlanMode as M};
                let m = match mode {
                    IpvlanMode::L2 => M::L2,
                    IpvlanMode::L3 => M::L3,
                    IpvlanMode::L3s => M::L3S,
                };
                let f = match flag {
                    IpvlanFlag::Bridge => IpVlanFlags::empty(),
                    IpvlanFlag::Private => IpVlanFlags::Private,
                    IpvlanFlag::Vepa => IpVlanFlags::Vepa,
                };
                LinkMessageBuilder::<LinkIpVlan>::new(name)
                    .link(pidx)
                    .set_info_data(InfoData::IpVlan(vec![
                        InfoIpVlan::Mode(m),
                        InfoIpVlan::Flags(f),
                    ]))
                    .build()
            }
            LinkKind::Vlan { id, .. } => LinkVlan::new(name, pidx, *id).build(),
            LinkKind::Veth { peer } => LinkVeth::new(name, peer).build(),
            LinkKind::Bridge => LinkBridge::new(name).build(),
            LinkKind::Dummy => LinkDummy::new(name).build(),
            LinkKind::Vxlan(v) => {
                let mut b = LinkVxlan::new(name, v.vni)
                    .port(v.port)
                    .learning(v.learning)
                    .proxy(v.proxy);
                if let Some(i) = parent_index {
                    b = b.dev(i);
                }
                match v.local {
                    Some(std::net::IpAddr::V4(a)) => b = b.local(a),
                    Some(std::net::IpAddr::V6(a)) => b = b.local6(a),
                    None => {}
                }
                b.build()
            }
        };
        let mut msg = base;
        if let Some(mtu) = plan.mtu {
            msg.attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(mac) = plan.mac {
            msg.attributes.push(LinkAttribute::Address(mac.0.to_vec()));
        }
        if let Some(c) = &plan.controller {
            let ci = self.require(c, "bridge").await?.index;
            msg.attributes.push(LinkAttribute::Controller(ci));
        }
        // LinkBridge::new() sets the bridge up; the plan alone decides.
        if !plan.up {
            msg.header.flags.remove(LinkFlags::Up);
            msg.header.change_mask.remove(LinkFlags::Up);
        }
        Ok(msg)
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
        match self.handle.link().add(msg).execute().await {
            Ok(()) => {
                // Should not happen; do not leave it behind.
                if let Some(l) = self.get("syprobe0").await? {
                    let _ = self.handle.link().del(l.index).execute().await;
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

    /// Deletes `name` if its mark satisfies `owned`. Links without a mark, or
    /// with someone else's, are never deleted.
    pub async fn delete_owned(
        &self,
        name: &str,
        owned: impl Fn(&Mark) -> bool,
    ) -> LinkResult<Deleted> {
        let Some(link) = self.get(name).await? else {
            return Ok(Deleted::Missing);
        };
        match link.mark() {
            Some(m) if owned(&m) => {}
            _ => return Ok(Deleted::NotOurs),
        }
        match self.handle.link().del(link.index).execute().await {
            Ok(()) => Ok(Deleted::Deleted),
            Err(e) => {
                let e = LinkError::from_netlink(format!("deleting link {name}"), e);
                if e.is_not_found() {
                    Ok(Deleted::Missing)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Deletes the link at `index` if it still carries exactly `mark`.
    pub async fn delete_marked(&self, link: &Link, mark: &Mark) -> LinkResult<Deleted> {
        self.delete_owned(&link.name, |m| m == mark).await
    }

    async fn set(
        &self,
        name: &str,
        action: &str,
        f: impl FnOnce(LinkMessageBuilder<LinkUnspec>) -> LinkMessageBuilder<LinkUnspec>,
    ) -> LinkResult<()> {
        let link = self.require(name, "link").await?;
        let msg = f(LinkUnspec::new_with_index(link.index)).build();
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(|e| LinkError::from_netlink(format!("{action} {name}"), e))
    }

    /// Writes `mark` into the alias of a link made as part of another
    /// (the peer of a veth pair).
    pub async fn set_mark(&self, name: &str, mark: &Mark) -> LinkResult<()> {
        let m = mark.to_string();
        self.set(name, "marking", |b| b.alias(m)).await
    }

    /// Enslaves `name` to `bridge`.
    pub async fn set_controller(&self, name: &str, bridge: &str) -> LinkResult<()> {
        let ci = self.require(bridge, "bridge").await?.index;
        self.set(name, &format!("enslaving to {bridge}:"), |b| {
            b.controller(ci)
        })
        .await
    }

    pub async fn set_mtu(&self, name: &str, mtu: u32) -> LinkResult<()> {
        self.set(name, &format!("setting MTU {mtu} on"), |b| b.mtu(mtu))
            .await
    }

    pub async fn set_up(&self, name: &str, up: bool) -> LinkResult<()> {
        let action = if up { "bringing up" } else { "bringing down" };
        self.set(name, action, |b| if up { b.up() } else { b.down() })
            .await
    }

    pub async fn rename(&self, name: &str, new_name: &str) -> LinkResult<()> {
        self.set(name, &format!("renaming to {new_name}:"), |b| {
            b.name(new_name)
        })
        .await
    }

    /// Moves `name` into the network namespace at `netns` (a bind-mounted
    /// nsfs file such as a Docker sandbox key).
    pub async fn move_to_netns(&self, name: &str, netns: &Path) -> LinkResult<()> {
        let file = std::fs::File::open(netns).map_err(|e| {
            LinkError::new(
                format!("opening network namespace {}", netns.display()),
                e.raw_os_error().unwrap_or(0),
                e.to_string(),
            )
        })?;
        let fd = file.as_raw_fd();
        self.set(name, &format!("moving into {}:", netns.display()), |b| {
            b.setns_by_fd(fd)
        })
        .await
    }

    pub async fn add_address(&self, name: &str, addr: IpNet) -> LinkResult<()> {
        let link = self.require(name, "link").await?;
        match self
            .handle
            .address()
            .add(link.index, addr.addr(), addr.prefix_len())
            .execute()
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => {
                let e = LinkError::from_netlink(format!("adding address {addr} to {name}"), e);
                if e.errno == EEXIST { Ok(()) } else { Err(e) }
            }
        }
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
        let mut req = self.handle.route().get(msg).execute();
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
            .handle
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

fn unsupported(kind: &str, action: String) -> LinkError {
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

#[cfg(test)]
mod tests;
