//! What a network on a parent must satisfy before anything is created: the
//! parent exists (or is Switchyard's to make; one that is down is accepted
//! with a warning), it can be shared
//! with the networks already on it, and the MTU fits.

use crate::Host;
use switchyard_core::model::{GatewayAllocation, NetworkRecord};
use switchyard_core::protocol::short_id;
use switchyard_core::spec::{
    BackendOptions, Engine, IpvlanMode, MacvlanMode, NetworkSpec, OPT_MTU, Parent,
};
use switchyard_core::{Error, Result};
use tracing::warn;

/// Whether `other` hangs off the same (shared) parent.
pub(super) fn uses(other: &NetworkRecord, parent: &Parent) -> bool {
    match (other.spec.backend.parent(), parent) {
        (_, Parent::Isolated { .. }) | (Some(Parent::Isolated { .. }), _) | (None, _) => false,
        (Some(p), _) => p.link_name(&other.id) == parent.link_name(""),
    }
}

/// Why `spec` cannot share its parent with `other`, if it cannot.
pub(super) fn conflict(spec: &NetworkSpec, other: &NetworkRecord) -> Option<String> {
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
pub async fn validate(host: &Host<'_>, spec: &NetworkSpec, others: &[NetworkRecord]) -> Result<()> {
    let limit = parent_mtu(host, spec, others).await?;
    check_mtu(spec, limit)
}

/// The checks of `validate`; the MTU the network's links may have at most
/// (`None`: no limit Switchyard knows of).
async fn parent_mtu(
    host: &Host<'_>,
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
        // A private parent of the network's own, internal or not, as
        // Docker's built-in drivers give a network without a parent.
        Parent::Isolated { .. } => Ok(None),
        Parent::Interface { name } => host_interface(host, name).await.map(Some),
        Parent::Vlan { name, base, id } => match host.links.get(name).await? {
            Some(l) => {
                let base_index = host.links.get(base).await?.map(|b| b.index);
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
                    warn_down(name);
                }
                Ok(Some(l.mtu))
            }
            None => {
                let mtu = host_interface(host, base).await?;
                if !host.links.supports("vlan").await? {
                    return Err(host
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

/// A parent that is down is accepted, as Engine 29's built-in drivers
/// accept it: containers start, and traffic flows once the link is up
/// (the operator's link: Switchyard never brings it up). `switchyard
/// status` shows the same warning while it lasts.
fn warn_down(name: &str) {
    warn!(parent = %name, "{}", down_warning(name));
}

/// The warning for a parent that is down (log and `switchyard status`).
pub fn down_warning(name: &str) -> String {
    format!(
        "parent \"{name}\" is down: the network's containers get no traffic until it is up (ip link set {name} up)"
    )
}

async fn host_interface(host: &Host<'_>, name: &str) -> Result<u32> {
    let l = host.links.get(name).await?.ok_or_else(|| {
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
        warn_down(name);
    }
    Ok(l.mtu)
}

/// A child link cannot have a larger MTU than its parent.
pub(super) fn check_mtu(spec: &NetworkSpec, limit: Option<u32>) -> Result<()> {
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

/// `GwAllocCheck` for networks on a parent, as the engine's own built-in
/// macvlan/ipvlan answer it (moby's `GetSkipGwAlloc`):
///
/// * Engine 29 (docker-v29.7.2): never reserve a gateway; IPAM reserves one
///   only when the user gives `--gateway` (the gateway is the LAN's router,
///   the driver assigns it to nothing; l3 has none at all).
/// * Engine 28.5: reserve unless the network is `--internal` or has no
///   parent (`NetworkSpec::answers_internal`), or is ipvlan l3/l3s (whose
///   default route is the interface, not an address).
/// * 20.10 never asks.
pub fn gateway_allocation(spec: &NetworkSpec) -> GatewayAllocation {
    let reserve = match (&spec.engine, &spec.backend) {
        (Engine::V29, _) => false,
        (_, BackendOptions::Ipvlan(i)) if i.mode != IpvlanMode::L2 => false,
        _ => !spec.answers_internal(),
    };
    GatewayAllocation {
        ipv4: reserve,
        ipv6: reserve,
    }
}
