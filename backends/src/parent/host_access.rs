//! The host's own link on a network's parent (`-o host_access`): the
//! kernel passes no traffic between a parent and its macvlan / ipvlan
//! children, so the host reaches its containers through a child of its
//! own — a sibling of theirs — holding the host's address on the network
//! (`spec/host_access.rs`).
//!
//! Routes: one /32 (/128) per joined container through that link, added
//! at Join and removed at Leave. A route for the whole subnet would clash
//! with the parent's own connected route when the host is on the same LAN
//! (the usual case): the host would lose the LAN's other machines, or the
//! containers, depending on which route wins. Per-container routes carry
//! the host's address as their source, so the containers answer it on the
//! LAN segment they share with the host link.
//!
//! The link carries the network's mark: it is removed with the network
//! (DeleteNetwork deletes every link marked for it) and kept by startup,
//! which makes it again if it vanished and re-adds the routes.

use crate::Host;
use std::collections::BTreeSet;
use std::net::IpAddr;
use switchyard_core::link::{LinkKind, LinkPlan};
use switchyard_core::mark::Mark;
use switchyard_core::model::{EndpointRecord, NetworkRecord};
use switchyard_core::protocol::short_id;
use switchyard_core::spec::isolated_parent_name;
use switchyard_core::{Error, Result};
use tracing::info;

/// `syh` + 12 hex digits of a hash of the whole network ID (15 bytes).
pub fn link_name(network_id: &str) -> String {
    format!("syh{}", &isolated_parent_name(network_id)[2..14])
}

/// The host link as a value: a child of the network's kind (`kind`: a
/// macvlan in bridge mode, an ipvlan L2 port), up, marked for the network.
/// `None` for networks without host access.
pub fn plan(instance: &str, net: &NetworkRecord, kind: LinkKind) -> Option<LinkPlan> {
    net.spec.host_access.as_ref()?;
    Some(
        LinkPlan::new(link_name(&net.id), kind, Mark::network(instance, &net.id))
            .mtu(net.spec.mtu)
            .up(),
    )
}

/// Makes the host link (if missing) and gives it the host's addresses.
/// Idempotent.
pub async fn ensure(host: &Host<'_>, net: &NetworkRecord, plan: &LinkPlan) -> Result<()> {
    let Some(access) = &net.spec.host_access else {
        return Ok(());
    };
    let existed = host.links.get(&plan.name).await?.is_some();
    let link = host.links.apply(plan).await?;
    if !link.up {
        host.links.set_up(&plan.name, true).await?;
    }
    for ip in &access.addresses {
        host.links.add_host_address(&plan.name, *ip).await?;
    }
    if !existed {
        info!(link = %plan.name, network = short_id(&net.id), addresses = ?access.addresses, "created the host access link");
    }
    Ok(())
}

/// An endpoint may not take the host's address (IPAM hands it out when
/// it is not reserved with `--aux-address`).
pub fn check_endpoint(net: &NetworkRecord, ep: &EndpointRecord) -> Result<()> {
    let Some(access) = &net.spec.host_access else {
        return Ok(());
    };
    match destinations(ep).find(|a| access.addresses.contains(a)) {
        None => Ok(()),
        Some(a) => Err(Error::conflict(format!(
            "address {a} is the host's on network {} (host_access); give the container another address, and keep IPAM off the host's with --aux-address host={a} (docker network create … -o host_access=true)",
            short_id(&net.id)
        ))),
    }
}

/// The endpoint's addresses the host routes through its link.
fn destinations(ep: &EndpointRecord) -> impl Iterator<Item = IpAddr> {
    ep.ipv4.iter().chain(&ep.ipv6).map(|n| n.addr())
}

/// At Join: the routes to the endpoint's addresses through the host link
/// (the link made again first if it vanished).
pub async fn route_endpoint(
    host: &Host<'_>,
    net: &NetworkRecord,
    plan: &LinkPlan,
    ep: &EndpointRecord,
) -> Result<()> {
    let Some(access) = &net.spec.host_access else {
        return Ok(());
    };
    ensure(host, net, plan).await?;
    for dest in destinations(ep) {
        // A family the host has no address in is not reachable from it.
        let Some(src) = access.source_for(dest) else {
            continue;
        };
        host.links
            .replace_host_route(&plan.name, dest, Some(src))
            .await?;
    }
    Ok(())
}

/// At Leave: the endpoint's routes go (idempotent: Leave may come twice).
pub async fn unroute_endpoint(
    host: &Host<'_>,
    net: &NetworkRecord,
    ep: &EndpointRecord,
) -> Result<()> {
    if net.spec.host_access.is_none() {
        return Ok(());
    }
    let name = link_name(&net.id);
    for dest in destinations(ep) {
        host.links.delete_host_route(&name, dest).await?;
    }
    Ok(())
}

/// After a restart: the host link of every network that has one, its
/// addresses, a route per joined endpoint, and no route for an endpoint
/// that is gone. Returns the problems left for the operator.
pub async fn restore(
    host: &Host<'_>,
    net: &NetworkRecord,
    plan: &LinkPlan,
    endpoints: &[EndpointRecord],
) -> Vec<String> {
    let mut problems = Vec::new();
    if let Err(e) = ensure(host, net, plan).await {
        problems.push(format!(
            "network {}: the host access link {} could not be made again: {e}",
            short_id(&net.id),
            plan.name
        ));
        return problems;
    }
    let joined: Vec<&EndpointRecord> = endpoints
        .iter()
        .filter(|e| e.network_id == net.id && e.sandbox_key.is_some())
        .collect();
    let wanted: BTreeSet<IpAddr> = joined.iter().flat_map(|e| destinations(e)).collect();
    match host.links.host_routes(&plan.name).await {
        Ok(routes) => {
            for stale in routes.into_iter().filter(|r| !wanted.contains(r)) {
                if let Err(e) = host.links.delete_host_route(&plan.name, stale).await {
                    problems.push(format!(
                        "network {}: a route to {stale} through {} is left: {e}",
                        short_id(&net.id),
                        plan.name
                    ));
                }
            }
        }
        Err(e) => problems.push(format!(
            "network {}: cannot list the routes of {}: {e}",
            short_id(&net.id),
            plan.name
        )),
    }
    for ep in joined {
        if let Err(e) = route_endpoint(host, net, plan, ep).await {
            problems.push(format!("network {}: {e}", short_id(&net.id)));
        }
    }
    problems
}

/// What `switchyard status` shows: the link and the host's addresses.
pub fn describe(net: &NetworkRecord) -> Option<String> {
    let access = net.spec.host_access.as_ref()?;
    let addrs: Vec<String> = access.addresses.iter().map(IpAddr::to_string).collect();
    Some(format!("{}({})", link_name(&net.id), addrs.join(",")))
}
