//! Applying plans and changing links. `apply` resolves each name a plan
//! refers to (parent, bridges) once, creates the link — a veth pair with
//! both ends — marks and configures it, and removes it again if a step after
//! the creation fails. Deletion only ever touches links carrying the
//! caller's mark.

use super::error::{self, EEXIST};
use super::message::{IFALIASZ, creation_message, is_temporary, peer_settings, temporary_name};
use super::plan::{LinkPlan, PeerPlan};
use super::query::{Link, not_found, unsupported};
use super::{LinkError, LinkManager, LinkResult};
use crate::mark::Mark;
use ipnet::IpNet;
use rtnetlink::packet_route::link::LinkAttribute;
use rtnetlink::{LinkMessageBuilder, LinkUnspec};
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
        // The real names are given only after creation (by rename): check
        // them first, so a name the kernel would refuse creates nothing.
        for name in std::iter::once(&plan.name).chain(plan.kind.peer().map(|p| &p.name)) {
            if name.is_empty() || name.len() > 15 {
                return Err(LinkError::new(
                    format!("creating {}", plan.describe()),
                    error::ERANGE,
                    format!("the interface name \"{name}\" is not 1 to 15 bytes long"),
                ));
            }
        }
        let names = self.resolve(plan).await?;
        // Created under a temporary name, renamed in the message that marks
        // it: a link never exists under its real name without its mark, and
        // what a crash can leave is a link under a temporary name of this
        // instance, which startup removes (`is_temporary`).
        let tmp = temporary_name(&plan.name, &plan.mark);
        let peer_tmp = plan.kind.peer().map(|p| temporary_name(&p.name, &p.mark));
        for t in std::iter::once(&tmp).chain(&peer_tmp) {
            if let Some(stale) = self.get(t).await? {
                // A failed apply of this very plan whose rollback failed too.
                self.del_index(stale.index, t).await?;
            }
        }
        let msg = creation_message(plan, &names, &tmp);
        self.handle().link().add(msg).execute().await.map_err(|e| {
            let e = LinkError::from_netlink(format!("creating {}", plan.describe()), e);
            if e.errno == error::EOPNOTSUPP {
                unsupported(plan.kind.kernel_kind(), e.action)
            } else {
                e
            }
        })?;
        crate::failpoint::kill("link.apply.created");
        let link = self.require(&tmp, "new link").await?;
        if let Err(e) = self.finish(plan, &link, &names).await {
            // Deleting either end of a veth pair deletes both.
            let _ = self.handle().link().del(link.index).execute().await;
            return Err(e);
        }
        self.get_by_index(link.index)
            .await?
            .ok_or_else(|| not_found(&plan.name, "new link"))
    }

    async fn del_index(&self, index: u32, name: &str) -> LinkResult<()> {
        match self.handle().link().del(index).execute().await {
            Ok(()) => Ok(()),
            Err(e) => {
                let e = LinkError::from_netlink(format!("deleting link {name}"), e);
                if e.is_not_found() { Ok(()) } else { Err(e) }
            }
        }
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
        let alias = plan.mark.to_string();
        if alias.len() >= IFALIASZ {
            return Err(LinkError::new(
                format!("marking {} as Switchyard's", plan.describe()),
                error::EINVAL,
                format!(
                    "its mark is {} bytes; the kernel keeps at most {}",
                    alias.len(),
                    IFALIASZ - 1
                ),
            ));
        }
        // One message, applied whole by the kernel (name, then alias, then
        // state): the link gets its real name and its mark at once.
        let mut set = LinkUnspec::new_with_index(link.index)
            .name(plan.name.clone())
            .alias(alias);
        if plan.up {
            set = set.up();
        }
        self.handle()
            .link()
            .set(set.build())
            .execute()
            .await
            .map_err(|e| {
                LinkError::from_netlink(
                    format!("naming and marking {} as Switchyard's", plan.describe()),
                    e,
                )
            })?;
        crate::failpoint::kill("link.apply.marked");
        if let Some(peer) = plan.kind.peer() {
            // The peer too waits under a temporary name until it is marked.
            let tmp = temporary_name(&peer.name, &peer.mark);
            let index = self.require(&tmp, "veth peer").await?.index;
            self.configure_peer(plan, peer, index, names.peer_controller, true)
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
        self.configure_peer(plan, peer, found.index, controller, false)
            .await
    }

    async fn configure_peer(
        &self,
        plan: &LinkPlan,
        peer: &PeerPlan,
        index: u32,
        controller: Option<u32>,
        rename: bool,
    ) -> LinkResult<()> {
        let mut msg = peer_settings(peer, index, controller);
        if rename {
            // Its real name in the message that marks it.
            msg.attributes
                .push(LinkAttribute::IfName(peer.name.clone()));
        }
        self.handle().link().set(msg).execute().await.map_err(|e| {
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
        match self.handle().link().del(link.index).execute().await {
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

    /// Deletes `link` if it is still unmarked under a temporary name of
    /// `instance` (see `is_temporary`): a half-made link of a dead process.
    pub async fn delete_temporary(&self, link: &Link, instance: &str) -> LinkResult<Deleted> {
        if !is_temporary(&link.name, instance) {
            return Ok(Deleted::NotOurs);
        }
        self.delete_unmarked(link, |_| true).await
    }

    /// Deletes `link` if it is still there under its name, still without a
    /// mark, and still satisfies `expected` — for a link the caller has
    /// proven to be its own by other means than a mark (see startup).
    pub async fn delete_unmarked(
        &self,
        link: &Link,
        expected: impl Fn(&Link) -> bool,
    ) -> LinkResult<Deleted> {
        match self.get_by_index(link.index).await? {
            Some(l) if l.name == link.name && l.mark().is_none() && expected(&l) => {
                self.del_index(l.index, &l.name).await?;
                Ok(Deleted::Deleted)
            }
            Some(_) => Ok(Deleted::NotOurs),
            None => Ok(Deleted::Missing),
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
        self.handle()
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
            .handle()
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

#[cfg(test)]
mod tests;
