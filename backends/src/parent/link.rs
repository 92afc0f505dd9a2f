//! The parent links: making, sharing, removing and restoring them.
//!
//! Parents, shared by macvlan and ipvlan: a host interface the operator
//! manages, an 802.1q sub-interface (`eth0.30`) Switchyard creates when it
//! is missing, or — for networks without a parent (internal or not) — a private
//! link Switchyard creates for that network alone.
//!
//! Nothing is counted separately: the networks in the store that name a
//! parent are its users, so the count survives restarts by construction. A
//! sub-interface is deleted only if it carries Switchyard's shared-parent
//! mark (Switchyard made it) and no stored network names it any more.

use super::checks::uses;
use crate::Host;
use switchyard_core::Result;
use switchyard_core::link::{Deleted, Link, LinkKind, LinkPlan, PeerPlan, error::EOPNOTSUPP};
use switchyard_core::mark::Mark;
use switchyard_core::model::NetworkRecord;
use switchyard_core::protocol::short_id;
use switchyard_core::spec::Parent;
use tracing::info;

/// The link a network's children hang off.
pub fn link_name(net: &NetworkRecord) -> Option<String> {
    net.spec.backend.parent().map(|p| p.link_name(&net.id))
}

/// Makes sure the network's parent exists: creates a missing VLAN
/// sub-interface or isolated parent, brings Switchyard's own parents up.
/// Idempotent; Join calls it too, which repairs a parent that vanished.
pub async fn acquire(host: &Host<'_>, net: &NetworkRecord) -> Result<()> {
    let Some(parent) = net.spec.backend.parent() else {
        return Ok(());
    };
    let name = parent.link_name(&net.id);
    match parent {
        Parent::Interface { .. } => Ok(()),
        Parent::Vlan { base, id, .. } => {
            if let Some(l) = host.links.get(&name).await? {
                if !l.up && l.mark().is_some_and(|m| m.is_shared_parent()) {
                    host.links.set_up(&name, true).await?;
                }
                return Ok(());
            }
            let plan = LinkPlan::new(
                name.clone(),
                LinkKind::Vlan {
                    parent: base.clone(),
                    id: *id,
                },
                Mark::shared_parent(host.instance),
            )
            .up();
            host.links.apply(&plan).await?;
            info!(parent = %name, "created VLAN sub-interface");
            Ok(())
        }
        Parent::Isolated { .. } => {
            let mark = Mark::network(host.instance, &net.id);
            if let Some(l) = host.links.get(&name).await? {
                if l.mark().as_ref() == Some(&mark) {
                    return Ok(());
                }
                return Err(switchyard_core::Error::conflict(format!(
                    "a link named {name} already exists and is not the private parent of network {}; remove or rename it (ip link del {name}) and retry",
                    short_id(&net.id)
                )));
            }
            let dummy = LinkPlan::new(name.clone(), LinkKind::Dummy, mark.clone()).up();
            match host.links.apply(&dummy).await {
                Ok(_) => {}
                // No dummy links in this kernel: a veth pair whose far end
                // stays unused gives the same private, always-up parent.
                Err(e) if e.errno == EOPNOTSUPP => {
                    let peer = PeerPlan::new(format!("sq{}", &name[2..]), mark.clone()).up();
                    let veth = LinkPlan::new(name.clone(), LinkKind::Veth(peer), mark).up();
                    host.links.apply(&veth).await?;
                }
                Err(e) => return Err(e.into()),
            }
            info!(parent = %name, network = short_id(&net.id), "created isolated parent");
            Ok(())
        }
    }
}

/// Removes what `acquire` made once no network in `remaining` needs it.
pub async fn release(
    host: &Host<'_>,
    net: &NetworkRecord,
    remaining: &[NetworkRecord],
) -> Result<()> {
    let Some(parent) = net.spec.backend.parent() else {
        return Ok(());
    };
    let name = parent.link_name(&net.id);
    let deleted = match parent {
        Parent::Interface { .. } => return Ok(()),
        Parent::Vlan { .. } => {
            if remaining.iter().any(|o| o.id != net.id && uses(o, parent)) {
                return Ok(());
            }
            let instance = host.instance;
            host.links
                .delete_owned(&name, |m| m.is_shared_parent() && m.instance == instance)
                .await?
        }
        Parent::Isolated { .. } => {
            let mark = Mark::network(host.instance, &net.id);
            host.links.delete_owned(&name, |m| *m == mark).await?
        }
    };
    if deleted == Deleted::Deleted {
        info!(parent = %name, "deleted parent Switchyard created");
    }
    Ok(())
}

/// Whether a link marked as a shared parent is still named by a network.
pub fn in_use(link_name: &str, networks: &[NetworkRecord]) -> bool {
    networks
        .iter()
        .any(|n| self::link_name(n).as_deref() == Some(link_name))
}

/// After a restart: re-creates the missing parents Switchyard owns (VLAN
/// sub-interfaces, isolated parents) now rather than at the next Join, and
/// reports the operator's parents that are gone.
pub async fn restore(host: &Host<'_>, networks: &[NetworkRecord], links: &[Link]) -> Vec<String> {
    let mut problems = Vec::new();
    for net in networks {
        let Some(parent) = net.spec.backend.parent() else {
            continue;
        };
        let name = parent.link_name(&net.id);
        if links.iter().any(|l| l.name == name) {
            continue;
        }
        match parent {
            Parent::Vlan { .. } | Parent::Isolated { .. } => match acquire(host, net).await {
                Ok(()) => {
                    info!(parent = %name, network = short_id(&net.id), "re-created a missing parent")
                }
                Err(e) => problems.push(format!(
                    "network {}: parent \"{name}\" is missing and could not be re-created: {e}",
                    short_id(&net.id)
                )),
            },
            Parent::Interface { .. } => problems.push(format!(
                "network {}: parent \"{name}\" no longer exists on this host; containers cannot join it until it is back",
                short_id(&net.id)
            )),
        }
    }
    problems
}
