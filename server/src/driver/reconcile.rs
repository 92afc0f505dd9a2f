//! Startup reconciliation: the kernel and the store are compared once, before
//! the socket is served. Links carrying this instance's mark that the store
//! does not know are removed; store entries whose kernel objects vanished are
//! reported (and visible in `switchyard status`). Unmarked links are never
//! touched.

use super::Driver;
use serde::Serialize;
use std::path::Path;
use switchyard_backends::parent;
use switchyard_core::link::Deleted;
use switchyard_core::mark::Mark;
use switchyard_core::protocol::short_id;
use switchyard_core::spec::Parent;
use tracing::{info, warn};

#[derive(Debug, Default, Serialize)]
pub struct ReconcileReport {
    /// Orphaned links removed (names).
    pub removed_links: Vec<String>,
    /// Problems found and left for the operator.
    pub problems: Vec<String>,
}

impl Driver {
    pub async fn reconcile(&self) -> ReconcileReport {
        let mut report = ReconcileReport::default();
        let links = match self.links.list().await {
            Ok(l) => l,
            Err(e) => {
                report.problems.push(format!("cannot list links: {e}"));
                return report;
            }
        };
        let networks = self.store.networks();
        for link in &links {
            let Some(mark) = link.mark() else { continue };
            if mark.instance != self.instance {
                continue;
            }
            let known = match &mark.endpoint_id {
                Some(e) => self.store.endpoint(&mark.network_id, e).is_some(),
                None if mark.is_shared_parent() => parent::in_use(&link.name, &networks),
                None => self.store.network(&mark.network_id).is_some(),
            };
            if known {
                continue;
            }
            match self.links.delete_marked(link, &mark).await {
                Ok(Deleted::Deleted) => {
                    info!(link = %link.name, mark = %mark, "removed orphaned link left by an earlier run");
                    report.removed_links.push(link.name.clone());
                }
                Ok(_) => {}
                Err(e) => report
                    .problems
                    .push(format!("cannot remove orphaned link {}: {e}", link.name)),
            }
        }
        for net in &networks {
            let Some(parent) = net.spec.backend.parent() else {
                continue;
            };
            let name = parent.link_name(&net.id);
            if links.iter().any(|l| l.name == name) {
                continue;
            }
            match parent {
                // Switchyard's own parents: made again now, not at the next Join.
                Parent::Vlan { .. } | Parent::Isolated => {
                    match parent::acquire(&self.ctx(), net).await {
                        Ok(()) => info!(parent = %name, network = short_id(&net.id), "re-created a missing parent"),
                        Err(e) => report.problems.push(format!(
                            "network {}: parent \"{name}\" is missing and could not be re-created: {e}",
                            short_id(&net.id)
                        )),
                    }
                }
                Parent::Interface { .. } => report.problems.push(format!(
                    "network {}: parent \"{name}\" no longer exists on this host; containers cannot join it until it is back",
                    short_id(&net.id)
                )),
            }
        }
        for ep in self.store.all_endpoints() {
            let on_host = links.iter().any(|l| l.name == ep.link_name);
            if let Some(sb) = &ep.sandbox_key
                && !on_host
                && !Path::new(sb).exists()
            {
                report.problems.push(format!(
                    "endpoint {} on network {}: its container's namespace {sb} is gone and its link with it; it stays in the state until dockerd sends DeleteEndpoint or the network is removed",
                    short_id(&ep.id),
                    short_id(&ep.network_id)
                ));
            }
        }
        for p in &report.problems {
            warn!("{p}");
        }
        report
    }

    /// Deletes every link of this instance whose mark satisfies `select`.
    pub(super) async fn delete_marked_links(&self, select: impl Fn(&Mark) -> bool) {
        let Ok(links) = self.links.list().await else {
            return;
        };
        for link in links {
            if let Some(mark) = link.mark()
                && mark.instance == self.instance
                && select(&mark)
            {
                match self.links.delete_marked(&link, &mark).await {
                    Ok(Deleted::Deleted) => info!(link = %link.name, "deleted leftover link"),
                    Ok(_) => {}
                    Err(e) => {
                        warn!(link = %link.name, error = %e, "could not delete leftover link")
                    }
                }
            }
        }
    }
}
