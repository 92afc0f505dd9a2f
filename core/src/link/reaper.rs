//! Deferred link deletion: one task deletes, in order, the links handed to
//! it, re-checking each one's mark just before deleting it.

use super::{Deleted, LinkManager};
use crate::mark::Mark;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

enum Job {
    Delete { name: String, mark: Mark },
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct Reaper {
    tx: mpsc::UnboundedSender<Job>,
}

impl Reaper {
    pub fn spawn(links: LinkManager) -> Reaper {
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        tokio::spawn(async move {
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
                    }
                }
            }
        });
        Reaper { tx }
    }

    pub fn delete(&self, name: &str, mark: Mark) {
        let _ = self.tx.send(Job::Delete {
            name: name.to_string(),
            mark,
        });
    }

    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Job::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}
