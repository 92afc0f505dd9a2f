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
//! - `route`: host addresses and host routes on Switchyard's own links.

mod apply;
mod dump;
pub mod error;
mod message;
mod neigh;
mod netns;
mod plan;
mod query;
mod reaper;
mod route;

pub use apply::Deleted;
pub use error::LinkError;
pub use message::is_temporary;
pub use neigh::{FdbEntry, Neighbour};
pub use plan::{LinkKind, LinkPlan, PeerPlan, VxlanLink};
pub use query::Link;
pub use reaper::DeferredDeletions;

use crate::mark::Mark;
use rtnetlink::Handle;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tracing::warn;

pub(crate) type LinkResult<T> = std::result::Result<T, LinkError>;

/// One netlink connection: the handle requests go through and the task that
/// drives the socket. The task ends when its socket breaks (or a message
/// panics while being encoded); from then on every request on the handle
/// fails, so the next request after that opens a fresh connection.
struct Conn {
    handle: Handle,
    task: tokio::task::JoinHandle<()>,
    /// Set when this connection is known to be broken before its task
    /// has been seen to end.
    broken: bool,
}

impl Conn {
    fn open(netns: Option<&Path>) -> std::io::Result<Conn> {
        let (conn, handle) = match netns {
            None => {
                let (conn, handle, _) = rtnetlink::new_connection()?;
                (conn, handle)
            }
            Some(p) => netns::connection_in_netns(p)?,
        };
        Ok(Conn {
            handle,
            task: tokio::spawn(conn),
            broken: false,
        })
    }
}

#[derive(Clone)]
pub struct LinkManager {
    conn: Arc<Mutex<Conn>>,
    netns: Option<PathBuf>,
    /// `None` only inside the reaper's own copy.
    reaper: Option<reaper::Reaper>,
}

impl LinkManager {
    /// A manager for the network namespace this process runs in. Must be
    /// called inside a tokio runtime (the netlink connection runs on it).
    pub fn new() -> std::io::Result<LinkManager> {
        Self::open(None, true)
    }

    /// A manager for the namespace at `path` (e.g. `/run/netns/NAME`).
    pub fn in_netns(path: &Path) -> std::io::Result<LinkManager> {
        Self::open(Some(path.to_owned()), true)
    }

    pub(super) fn open(netns: Option<PathBuf>, with_reaper: bool) -> std::io::Result<LinkManager> {
        let conn = Conn::open(netns.as_deref())?;
        let reaper = if with_reaper {
            Some(reaper::Reaper::spawn(netns.clone())?)
        } else {
            None
        };
        Ok(LinkManager {
            conn: Arc::new(Mutex::new(conn)),
            netns,
            reaper,
        })
    }

    /// The handle for the next request: the current connection's, or a
    /// fresh connection's if the current one has ended. No broken exchange
    /// outlives the request it broke.
    pub(super) fn handle(&self) -> Handle {
        let mut c = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        if c.broken || c.task.is_finished() {
            match Conn::open(self.netns.as_deref()) {
                Ok(fresh) => {
                    warn!("the netlink connection had ended; opened a fresh one");
                    *c = fresh;
                }
                Err(e) => {
                    warn!(error = %e, "the netlink connection had ended and reopening it failed")
                }
            }
        }
        if crate::failpoint::fires("netlink.break") {
            // Test builds: the connection ends as a broken socket or a
            // panic while encoding ends it — its task gone, every request
            // on its handle failing — and this request goes through it.
            warn!("failpoint netlink.break: ending the netlink connection");
            c.task.abort();
            c.broken = true;
            if let Ok((conn, dead, _)) = rtnetlink::new_connection() {
                drop(conn);
                c.handle = dead;
            }
        }
        c.handle.clone()
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

    /// How many `delete_later` deletions wait, and how many were done.
    pub fn deferred_deletions(&self) -> DeferredDeletions {
        self.reaper.as_ref().map(|r| r.counts()).unwrap_or_default()
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
