//! Parents, shared by macvlan and ipvlan: a host interface the operator
//! manages, an 802.1q sub-interface (`eth0.30`) Switchyard creates when it
//! is missing, or — for `--internal` networks without a parent — a private
//! link Switchyard creates for that network alone.
//!
//! Nothing is counted separately: the networks in the store that name a
//! parent are its users, so the count survives restarts by construction. A
//! sub-interface is deleted only if it carries Switchyard's shared-parent
//! mark (Switchyard made it) and no stored network names it any more.

use crate::Ctx;
use switchyard_core::link::{Deleted, LinkKind, LinkPlan, PeerPlan, error::EOPNOTSUPP};
use switchyard_core::mark::Mark;
use switchyard_core::model::NetworkRecord;
use switchyard_core::protocol::{GwAllocCheckResponse, short_id};
use switchyard_core::spec::{BackendOptions, MacvlanMode, NetworkSpec, OPT_MTU, Parent};
use switchyard_core::{Error, Result};
use tracing::info;

/// The link a network's children hang off.
pub fn link_name(net: &NetworkRecord) -> Option<String> {
    net.spec.backend.parent().map(|p| p.link_name(&net.id))
}

fn uses(other: &NetworkRecord, parent: &Parent) -> bool {
    match (other.spec.backend.parent(), parent) {
        (_, Parent::Isolated) | (Some(Parent::Isolated), _) | (None, _) => false,
        (Some(p), _) => p.link_name(&other.id) == parent.link_name(""),
    }
}

/// Why `spec` cannot share its parent with `other`, if it cannot.
fn conflict(spec: &NetworkSpec, other: &NetworkRecord) -> Option<String> {
    let parent = spec.backend.parent()?.link_name("");
    let who = format!("Switchyard network {}", short_id(&other.id));
    match (&spec.backend, &other.spec.backend) {
        (BackendOptions::Macvlan(a), BackendOptions::Macvlan(b)) => (a.mode == MacvlanMode::Passthru
            || b.mode == MacvlanMode::Passthru)
            .then(|| format!(
                "parent \"{parent}\" is already used by {who} (macvlan_mode={}); a parent in passthru mode serves exactly one network, so choose another parent or use macvlan_mode=bridge on both",
                b.mode
            )),
        (BackendOptions::Ipvlan(a), BackendOptions::Ipvlan(b)) => (a.mode != b.mode || a.flag != b.flag).then(|| format!(
            "parent \"{parent}\" already carries {who} with ipvlan_mode={} ipvlan_flag={}; ipvlan links on one parent share its mode, so use the same mode and flag, or another parent (e.g. another VLAN sub-interface)",
            b.mode, b.flag
        )),
        (a, b) => Some(format!(
            "parent \"{parent}\" already carries {who} of backend {}; the kernel cannot put {} and {} links on one parent, so use another parent (e.g. another VLAN sub-interface such as {parent}.31)",
            b.kind(),
            a.kind(),
            b.kind()
        )),
    }
}

/// Checks a new network's parent against the host and the networks already
/// accepted, and its MTU against the parent's. Creates nothing.
pub async fn validate(ctx: &Ctx<'_>, spec: &NetworkSpec, others: &[NetworkRecord]) -> Result<()> {
    let limit = parent_mtu(ctx, spec, others).await?;
    check_mtu(spec, limit)
}

/// The checks of `validate`; the MTU the network's links may have at most
/// (`None`: no limit Switchyard knows of).
async fn parent_mtu(
    ctx: &Ctx<'_>,
    spec: &NetworkSpec,
    others: &[NetworkRecord],
) -> Result<Option<u32>> {
    let Some(parent) = spec.backend.parent() else {
        return Ok(None);
    };
    for other in others.iter().filter(|o| uses(o, parent)) {
        if let Some(why) = conflict(spec, other) {
            return Err(Error::conflict(why));
        }
    }
    match parent {
        Parent::Isolated => {
            if !spec.internal {
                return Err(Error::invalid(
                    "a network without a parent is isolated and has no way out: add --internal, or name a parent with -o parent=eth0",
                ));
            }
            Ok(None)
        }
        Parent::Interface { name } => host_interface(ctx, name).await.map(Some),
        Parent::Vlan { name, base, id } => match ctx.links.get(name).await? {
            Some(l) => {
                let base_index = ctx.links.get(base).await?.map(|b| b.index);
                if l.kind.as_deref() != Some("vlan")
                    || l.vlan_id != Some(*id)
                    || l.parent_index != base_index
                {
                    return Err(Error::invalid(format!(
                        "parent \"{name}\" exists but is not VLAN {id} on {base}; remove or rename it, or name the interface without the .{id} suffix"
                    )));
                }
                let ours = l.mark().is_some_and(|m| m.is_shared_parent());
                if !l.up && !ours {
                    return Err(down(name));
                }
                Ok(Some(l.mtu))
            }
            None => {
                let mtu = host_interface(ctx, base).await?;
                if !ctx.links.supports("vlan").await? {
                    return Err(ctx
                        .links
                        .unsupported(
                            "vlan",
                            format!("creating VLAN sub-interface {name} on {base}"),
                        )
                        .into());
                }
                Ok(Some(mtu))
            }
        },
    }
}

fn down(name: &str) -> Error {
    Error::invalid(format!(
        "parent \"{name}\" is down; bring it up first (ip link set {name} up)"
    ))
}

async fn host_interface(ctx: &Ctx<'_>, name: &str) -> Result<u32> {
    let l = ctx.links.get(name).await?.ok_or_else(|| {
        Error::invalid(format!(
            "parent \"{name}\" does not exist on this host; name an existing interface (see `ip link`)"
        ))
    })?;
    if let Some(m) = l.mark()
        && m.endpoint_id.is_some()
    {
        return Err(Error::invalid(format!(
            "parent \"{name}\" is a container link of Switchyard network {}; name a host interface instead",
            short_id(&m.network_id)
        )));
    }
    if !l.up {
        return Err(down(name));
    }
    Ok(l.mtu)
}

/// Makes sure the network's parent exists: creates a missing VLAN
/// sub-interface or isolated parent, brings Switchyard's own parents up.
/// Idempotent; Join calls it too, which repairs a parent that vanished.
pub async fn acquire(ctx: &Ctx<'_>, net: &NetworkRecord) -> Result<()> {
    let Some(parent) = net.spec.backend.parent() else {
        return Ok(());
    };
    let name = parent.link_name(&net.id);
    match parent {
        Parent::Interface { .. } => Ok(()),
        Parent::Vlan { base, id, .. } => {
            if let Some(l) = ctx.links.get(&name).await? {
                if !l.up && l.mark().is_some_and(|m| m.is_shared_parent()) {
                    ctx.links.set_up(&name, true).await?;
                }
                return Ok(());
            }
            let plan = LinkPlan::new(
                name.clone(),
                LinkKind::Vlan {
                    parent: base.clone(),
                    id: *id,
                },
                Mark::shared_parent(ctx.instance),
            )
            .up();
            ctx.links.apply(&plan).await?;
            info!(parent = %name, "created VLAN sub-interface");
            Ok(())
        }
        Parent::Isolated => {
            if ctx.links.get(&name).await?.is_some() {
                return Ok(());
            }
            let mark = Mark::network(ctx.instance, &net.id);
            let dummy = LinkPlan::new(name.clone(), LinkKind::Dummy, mark.clone()).up();
            match ctx.links.apply(&dummy).await {
                Ok(_) => {}
                // No dummy links in this kernel: a veth pair whose far end
                // stays unused gives the same private, always-up parent.
                Err(e) if e.errno == EOPNOTSUPP => {
                    let peer = PeerPlan::new(format!("sq{}", &name[2..]), mark.clone()).up();
                    let veth = LinkPlan::new(name.clone(), LinkKind::VethPair(peer), mark).up();
                    ctx.links.apply(&veth).await?;
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
    ctx: &Ctx<'_>,
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
            let instance = ctx.instance;
            ctx.links
                .delete_owned(&name, |m| m.is_shared_parent() && m.instance == instance)
                .await?
        }
        Parent::Isolated => {
            let mark = Mark::network(ctx.instance, &net.id);
            ctx.links.delete_owned(&name, |m| *m == mark).await?
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

/// A child link cannot have a larger MTU than its parent.
fn check_mtu(spec: &NetworkSpec, limit: Option<u32>) -> Result<()> {
    let kind = spec.backend.kind();
    if let (Some(mtu), Some(limit)) = (spec.mtu, limit)
        && mtu > limit
    {
        let parent = spec
            .backend
            .parent()
            .map(|p| p.link_name(""))
            .unwrap_or_default();
        return Err(Error::invalid(format!(
            "{OPT_MTU} {mtu} is larger than the MTU of parent {parent} ({limit}); a {kind} link cannot exceed its parent's MTU: use at most {limit}"
        )));
    }
    Ok(())
}

/// `GwAllocCheck` for networks on a parent, as Docker's built-in macvlan on
/// Engine 28.5 answers it (measured, tests/dockerd_e2e.rs): IPAM reserves
/// the subnet's gateway (the LAN's router) unless the network is
/// `--internal`, which has none. (Newer engine sources skip always.)
pub fn gateway_allocation(internal: bool) -> GwAllocCheckResponse {
    GwAllocCheckResponse {
        skip_ipv4: internal,
        skip_ipv6: internal,
    }
}
