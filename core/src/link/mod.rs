//! The one netlink component. Every backend goes through `LinkManager`; no
//! other code opens a netlink socket.
//!
//! Creation is idempotent (an existing link carrying the same mark is
//! reused), deletion refuses links without Switchyard's mark, and "not found"
//! is an ordinary answer, never an error.
//!
//! - `plan`: links as values (`LinkPlan`, a veth pair's `PeerPlan`); no socket.
//! - `apply`: creating links from plans, deleting, changing one attribute.
//! - `query`: lookups (`get`, `list`, `route_to`, `addresses`, `supports`).

mod apply;
pub mod error;
mod neigh;
mod netns;
mod plan;
mod query;
mod reaper;

pub use apply::Deleted;
pub use error::LinkError;
pub use neigh::{FdbEntry, Neighbour};
pub use plan::{LinkKind, LinkPlan, PeerPlan, VxlanLink};
pub use query::Link;

use crate::mark::Mark;
use rtnetlink::Handle;
use std::path::Path;

pub(crate) type LinkResult<T> = std::result::Result<T, LinkError>;

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
}

#[cfg(test)]
mod tests;
