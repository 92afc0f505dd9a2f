//! Deferred link deletion: one thread deletes, in order, the links handed to
//! it, re-checking each one's mark just before deleting it.
//!
//! It has its own OS thread and its own netlink socket: the kernel does the
//! whole unregistering (10–20 ms of RCU grace periods) inside `sendmsg`, so
//! on a shared socket or a runtime worker every other request would wait.

use super::{Deleted, LinkManager};
use crate::mark::Mark;
use nix::sched::{CloneFlags, setns};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

enum Job {
    Delete { name: String, mark: Mark },
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct Reaper {
    tx: mpsc::UnboundedSender<Job>,
    counts: Arc<Counts>,
}

/// Deletions handed over and carried out, for `/metrics`: their difference
/// is the backlog a slow kernel builds up.
#[derive(Default)]
struct Counts {
    queued: AtomicU64,
    done: AtomicU64,
}

/// The reaper's backlog now and the deletions it has carried out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeferredDeletions {
    pub pending: u64,
    pub done: u64,
}

impl Reaper {
    /// Starts the deleting thread in the namespace at `netns` (this
    /// process's own when `None`).
    pub fn spawn(netns: Option<PathBuf>) -> std::io::Result<Reaper> {
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
        let counts = Arc::new(Counts::default());
        let seen = counts.clone();
        std::thread::Builder::new()
            .name("switchyard-reaper".into())
            .spawn(move || {
                let setup = || -> std::io::Result<tokio::runtime::Runtime> {
                    if let Some(p) = &netns {
                        let f = std::fs::File::open(p)?;
                        setns(f.as_fd(), CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
                    }
                    tokio::runtime::Builder::new_current_thread().enable_all().build()
                };
                let rt = match setup() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    // Already inside the namespace: its own connection there.
                    let links = match LinkManager::open(None, false) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    while let Some(job) = rx.recv().await {
                        match job {
                            Job::Flush(done) => {
                                let _ = done.send(());
                            }
                            Job::Delete { name, mark } => {
                                match links.delete_owned(&name, |m| *m == mark).await {
                                    Ok(Deleted::Deleted) => debug!(link = %name, "deleted"),
                                    Ok(Deleted::Missing) => debug!(link = %name, "already gone"),
                                    Ok(Deleted::NotOurs) => {
                                        warn!(link = %name, "not deleted: it no longer carries the mark {mark}")
                                    }
                                    Err(e) => warn!(link = %name, error = %e, "deferred delete failed"),
                                }
                                seen.done.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                });
            })?;
        ready_rx
            .recv()
            .map_err(|_| std::io::Error::other("the reaper thread died at start"))??;
        Ok(Reaper { tx, counts })
    }

    pub fn delete(&self, name: &str, mark: Mark) {
        let sent = self.tx.send(Job::Delete {
            name: name.to_string(),
            mark,
        });
        if sent.is_ok() {
            self.counts.queued.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn counts(&self) -> DeferredDeletions {
        // `done` first: read the other way round, a deletion finishing in
        // between would be counted done but not queued.
        let done = self.counts.done.load(Ordering::Relaxed);
        let queued = self.counts.queued.load(Ordering::Relaxed);
        DeferredDeletions {
            pending: queued.saturating_sub(done),
            done,
        }
    }

    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Job::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}
