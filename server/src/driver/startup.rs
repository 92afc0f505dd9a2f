//! Startup: the kernel and the store are compared once, before the socket
//! is served. Links carrying this instance's mark that the store does not
//! know are removed; each backend then takes up its stored networks and
//! repairs what it owns (`Backend::restore`); store entries whose kernel
//! objects vanished are reported (and visible in `switchyard status`).
//! Unmarked links are never touched. Then the backends' background work
//! starts.

use super::Driver;
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;
use switchyard_backends::{Backend, parent};
use switchyard_core::failpoint;
use switchyard_core::link::{Deleted, Link, LinkPlan, is_temporary};
use switchyard_core::mark::Mark;
use switchyard_core::model::EndpointRecord;
use switchyard_core::protocol::short_id;
use tracing::{info, warn};

#[derive(Debug, Default, Serialize)]
pub struct StartupReport {
    /// Orphaned links removed (names).
    pub removed_links: Vec<String>,
    /// Problems found and left for the operator.
    pub problems: Vec<String>,
}

impl Driver {
    /// Runs once before serving; never fails (problems are reported).
    pub async fn startup(&self) -> StartupReport {
        let report = self.reconcile().await;
        failpoint::kill("reconcile.done");
        for backend in self.backends.all() {
            backend.start(&self.links, &self.instance);
        }
        // Reconciliation parsed every link of the host (10,000 endpoints:
        // tens of MB of netlink messages, freed by now); give the freed
        // heap back instead of carrying it as resident memory for ever.
        // SAFETY: malloc_trim only releases free memory of glibc's arenas.
        #[cfg(target_env = "gnu")]
        unsafe {
            nix::libc::malloc_trim(0);
        }
        switchyard_core::failpoint::serving();
        report
    }

    async fn reconcile(&self) -> StartupReport {
        let mut report = StartupReport::default();
        let links = match self.links.list().await {
            Ok(l) => l,
            Err(e) => {
                report.problems.push(format!("cannot list links: {e}"));
                return report;
            }
        };
        failpoint::kill("reconcile.listed");
        let networks = self.store.networks();
        let endpoints = self.store.all_endpoints();
        let by_link: HashMap<&str, &EndpointRecord> = endpoints
            .iter()
            .map(|e| (e.link_name.as_str(), e))
            .collect();
        let names: HashMap<u32, &str> = links.iter().map(|l| (l.index, l.name.as_str())).collect();
        for link in &links {
            let Some(mark) = link.mark() else {
                // A link this instance was creating when it died: created
                // under a temporary name, never named nor marked.
                // Or, from a version that created links under their real
                // names, the link of a stored endpoint that died before
                // marking it: its exact name, kind and parent (or peer).
                let planned = by_link.get(link.name.as_str()).and_then(|ep| {
                    let net = networks.iter().find(|n| n.id == ep.network_id)?;
                    let plan =
                        self.backends
                            .for_network(net)
                            .plan_endpoint(&self.instance, net, ep);
                    is_planned(link, &plan, &names).then_some(plan)
                });
                let removal = if is_temporary(&link.name, &self.instance) {
                    Some(self.links.delete_temporary(link, &self.instance).await)
                } else if let Some(plan) = planned {
                    Some(
                        self.links
                            .delete_unmarked(link, |l| is_planned(l, &plan, &names))
                            .await,
                    )
                } else {
                    None
                };
                if let Some(removal) = removal {
                    match removal {
                        Ok(Deleted::Deleted) => {
                            info!(link = %link.name, "removed a half-made link left by an earlier run");
                            report.removed_links.push(link.name.clone());
                            failpoint::kill("reconcile.half_made_removed");
                        }
                        Ok(_) => {}
                        Err(e) => report
                            .problems
                            .push(format!("cannot remove half-made link {}: {e}", link.name)),
                    }
                }
                continue;
            };
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
                    failpoint::kill("reconcile.orphan_removed");
                }
                Ok(_) => {}
                Err(e) => report
                    .problems
                    .push(format!("cannot remove orphaned link {}: {e}", link.name)),
            }
        }
        // A removal can take more than the link it names: deleting a
        // half-made veth peer deletes its marked end too (a private parent
        // killed between naming its ends). Backends restore from what is
        // there now.
        let links = if report.removed_links.is_empty() {
            links
        } else {
            match self.links.list().await {
                Ok(l) => l,
                Err(e) => {
                    report.problems.push(format!("cannot list links: {e}"));
                    links
                }
            }
        };
        for backend in self.backends.all() {
            let problems = backend
                .restore(&self.host(), &networks, &endpoints, &links)
                .await;
            report.problems.extend(problems);
            failpoint::kill("reconcile.backend_restored");
        }
        let names: std::collections::HashSet<&str> =
            links.iter().map(|l| l.name.as_str()).collect();
        for ep in endpoints {
            let on_host = names.contains(ep.link_name.as_str());
            if let Some(sb) = &ep.sandbox_key
                && !on_host
                && !Path::new(sb).exists()
            {
                report.problems.push(format!(
                    "endpoint {} on network {}: its container's namespace {sb} is not visible to Switchyard (the container is gone, or, for a managed plugin, dockerd's namespaces are not mounted where the plugin runs) and its link is not on this host; the endpoint stays in the state until dockerd sends DeleteEndpoint or the network is removed",
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

/// Whether `link` is what `plan` would have created: the same name and
/// kernel kind, on the planned parent (a veth: with the planned peer).
fn is_planned(link: &Link, plan: &LinkPlan, names: &HashMap<u32, &str>) -> bool {
    if link.name != plan.name || link.kind.as_deref() != Some(plan.kind.kernel_kind()) {
        return false;
    }
    let lower = link.parent_index.and_then(|i| names.get(&i).copied());
    match (plan.kind.parent(), plan.kind.peer()) {
        (Some(parent), _) => lower == Some(parent),
        (None, Some(peer)) => lower == Some(peer.name.as_str()),
        (None, None) => true,
    }
}
