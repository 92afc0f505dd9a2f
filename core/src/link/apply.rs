//! Applying plans and changing links. `apply` resolves each name a plan
//! refers to (parent, bridges) once, creates the link — a veth pair with
//! both ends — marks and configures it, and removes it again if a step after
//! the creation fails. Deletion only ever touches links carrying the
//! caller's mark.

use super::error::{self, EEXIST};
use super::plan::{LinkKind, LinkPlan, PeerPlan};
use super::query::{Link, not_found, unsupported};
use super::{LinkError, LinkManager, LinkResult};
use crate::mark::Mark;
use crate::spec::{IpvlanFlag, IpvlanMode, MacvlanMode};
use ipnet::IpNet;
use rtnetlink::packet_route::link::{
    InfoData, InfoIpVlan, InfoVeth, LinkAttribute, LinkFlags, LinkMessage, MacVlanMode,
};
use rtnetlink::{
    LinkBridge, LinkDummy, LinkIpVlan, LinkMacVlan, LinkMessageBuilder, LinkUnspec, LinkVeth,
    LinkVlan, LinkVxlan,
};
use std::os::fd::AsRawFd;
use std::path::Path;

/// What `delete_owned` found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deleted {
    Deleted,
    /// No link of that name: nothing to do.
    Missing,
    /// A link of that name exists but is not the one the caller owns; left alone.
    NotOurs,
}

/// The indices of the links a plan names, each looked up once per apply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Resolved {
    pub parent: Option<u32>,
    pub controller: Option<u32>,
    pub peer_controller: Option<u32>,
}

impl LinkManager {
    /// Creates the planned link, or returns the existing one if it already
    /// carries the plan's mark (a retried request). A same-named link that is
    /// not this plan's is an error, and is left untouched.
    ///
    /// A `Veth` is created with its peer; both ends are marked and the
    /// peer gets its MTU, controller and state. A retry re-applies the peer's
    /// settings to a peer that is this plan's. If a step after the creation
    /// fails, the new link (with its peer) is deleted again.
    pub async fn apply(&self, plan: &LinkPlan) -> LinkResult<Link> {
        if let Some(existing) = self.get(&plan.name).await? {
            if existing.mark().as_ref() != Some(&plan.mark) {
                return Err(not_ours(plan, &plan.name));
            }
            if let Some(peer) = plan.kind.peer() {
                self.reconfigure_peer(plan, &existing, peer).await?;
            }
            return Ok(existing);
        }
        let names = self.resolve(plan).await?;
        let msg = message(plan, &names);
        self.handle.link().add(msg).execute().await.map_err(|e| {
            let e = LinkError::from_netlink(format!("creating {}", plan.describe()), e);
            if e.errno == error::EOPNOTSUPP {
                unsupported(plan.kind.kernel_kind(), e.action)
            } else {
                e
            }
        })?;
        // The kernel ignores IFLA_IFALIAS on creation, so the marks are set
        // right after; if that fails the fresh link is removed again.
        let link = self.require(&plan.name, "new link").await?;
        if let Err(e) = self.finish(plan, &link, &names).await {
            // Deleting either end of a veth pair deletes both.
            let _ = self.handle.link().del(link.index).execute().await;
            return Err(e);
        }
        self.get_by_index(link.index)
            .await?
            .ok_or_else(|| not_found(&plan.name, "new link"))
    }

    /// Looks up, once each, the links `plan` names.
    async fn resolve(&self, plan: &LinkPlan) -> LinkResult<Resolved> {
        let parent = self.index_if_named(plan.kind.parent(), "parent").await?;
        let controller = self
            .index_if_named(plan.controller.as_deref(), "bridge")
            .await?;
        let peer_controller = match plan.kind.peer().and_then(|p| p.controller.as_deref()) {
            same if same == plan.controller.as_deref() => controller,
            other => self.index_if_named(other, "bridge").await?,
        };
        Ok(Resolved {
            parent,
            controller,
            peer_controller,
        })
    }

    async fn index_if_named(&self, name: Option<&str>, role: &str) -> LinkResult<Option<u32>> {
        match name {
            Some(n) => Ok(Some(self.require(n, role).await?.index)),
            None => Ok(None),
        }
    }

    /// What creation cannot do: the marks, the link's state, the peer's
    /// controller and state.
    async fn finish(&self, plan: &LinkPlan, link: &Link, names: &Resolved) -> LinkResult<()> {
        let mut set = LinkUnspec::new_with_index(link.index).alias(plan.mark.to_string());
        if plan.up {
            set = set.up();
        }
        self.handle
            .link()
            .set(set.build())
            .execute()
            .await
            .map_err(|e| {
                LinkError::from_netlink(format!("marking {} as Switchyard's", plan.describe()), e)
            })?;
        if let Some(peer) = plan.kind.peer() {
            let index = self.require(&peer.name, "veth peer").await?.index;
            self.configure_peer(plan, peer, index, names.peer_controller)
                .await?;
        }
        Ok(())
    }

    /// A retried apply of a pair: the peer must be this plan's — marked so,
    /// or unmarked but the link's own other end (an apply that stopped
    /// before marking it) — and gets the plan's settings again.
    async fn reconfigure_peer(
        &self,
        plan: &LinkPlan,
        link: &Link,
        peer: &PeerPlan,
    ) -> LinkResult<()> {
        let found = self.require(&peer.name, "veth peer").await?;
        let ours = match found.mark() {
            Some(m) => m == peer.mark,
            None => link.parent_index == Some(found.index),
        };
        if !ours {
            return Err(not_ours(plan, &peer.name));
        }
        let controller = self
            .index_if_named(peer.controller.as_deref(), "bridge")
            .await?;
        self.configure_peer(plan, peer, found.index, controller)
            .await
    }

    async fn configure_peer(
        &self,
        plan: &LinkPlan,
        peer: &PeerPlan,
        index: u32,
        controller: Option<u32>,
    ) -> LinkResult<()> {
        self.handle
            .link()
            .set(peer_settings(peer, index, controller))
            .execute()
            .await
            .map_err(|e| {
                LinkError::from_netlink(
                    format!("configuring veth peer {} of {}", peer.name, plan.name),
                    e,
                )
            })
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
}

/// `name` exists but is not this plan's.
fn not_ours(plan: &LinkPlan, name: &str) -> LinkError {
    LinkError::new(
        format!("creating {}", plan.describe()),
        EEXIST,
        format!(
            "a link named {name} already exists and does not belong to this {}",
            plan.owner()
        ),
    )
}

/// The RTM_NEWLINK message creating `plan`, with its names resolved.
pub(super) fn message(plan: &LinkPlan, names: &Resolved) -> LinkMessage {
    let name = plan.name.as_str();
    let pidx = names.parent.unwrap_or(0);
    let mut msg = match &plan.kind {
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
        LinkKind::Veth(peer) => {
            // The peer's name, MTU and MAC go with the creation; its mark,
            // controller and state cannot (`finish` sets them).
            let mut p = LinkUnspec::new_with_name(&peer.name);
            if let Some(mtu) = peer.mtu {
                p = p.mtu(mtu);
            }
            if let Some(mac) = peer.mac {
                p = p.address(mac.0.to_vec());
            }
            LinkVeth::new(name, &peer.name)
                .set_info_data(InfoData::Veth(InfoVeth::Peer(p.build())))
                .build()
        }
        LinkKind::Bridge => LinkBridge::new(name).build(),
        LinkKind::Dummy => LinkDummy::new(name).build(),
        LinkKind::Vxlan(v) => {
            let mut b = LinkVxlan::new(name, v.vni)
                .port(v.port)
                .learning(v.learning)
                .proxy(v.proxy);
            if let Some(i) = names.parent {
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
    if let Some(mtu) = plan.mtu {
        msg.attributes.push(LinkAttribute::Mtu(mtu));
    }
    if let Some(mac) = plan.mac {
        msg.attributes.push(LinkAttribute::Address(mac.0.to_vec()));
    }
    if let Some(c) = names.controller {
        msg.attributes.push(LinkAttribute::Controller(c));
    }
    // LinkBridge::new() sets the bridge up; the plan alone decides.
    if !plan.up {
        msg.header.flags.remove(LinkFlags::Up);
        msg.header.change_mask.remove(LinkFlags::Up);
    }
    msg
}

/// The RTM_SETLINK message giving the peer at `index` its mark and settings.
pub(super) fn peer_settings(peer: &PeerPlan, index: u32, controller: Option<u32>) -> LinkMessage {
    let mut b = LinkUnspec::new_with_index(index).alias(peer.mark.to_string());
    if let Some(mtu) = peer.mtu {
        b = b.mtu(mtu);
    }
    if let Some(c) = controller {
        b = b.controller(c);
    }
    if peer.up {
        b = b.up();
    }
    b.build()
}

#[cfg(test)]
mod tests;
