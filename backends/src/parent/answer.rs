//! Join's answer for an L2 endpoint (macvlan, ipvlan l2): the link, the
//! gateways, and never `docker_gwbridge` — as Docker's built-in drivers,
//! the LAN's router is the way out.

use std::net::IpAddr;
use switchyard_core::model::{EndpointRecord, JoinAnswer, NetworkRecord};
use switchyard_core::spec::Subnet;

/// Gateways for Join: the first subnet's of each family that the endpoint
/// has an address in, none on networks that answer as internal
/// (`NetworkSpec::answers_internal`; dockerd does not filter a gateway an
/// internal network returns), and no IPv6 one with `ipv6_slaac`.
pub fn gateways(net: &NetworkRecord, ep: &EndpointRecord) -> (Option<IpAddr>, Option<IpAddr>) {
    if net.spec.answers_internal() {
        return (None, None);
    }
    let pick = |subnets: &[Subnet], addr: Option<ipnet::IpNet>| {
        let addr = addr?;
        subnets
            .iter()
            .find(|s| s.pool.contains(&addr.addr()))
            .or(subnets.first())
            .and_then(|s| s.gateway)
    };
    // With SLAAC the default route is the router's, from its
    // advertisements: a static one beside it would race it (moby #50929).
    let v6 = if net.spec.ipv6_slaac {
        None
    } else {
        pick(&net.spec.ipv6, ep.ipv6)
    };
    (pick(&net.spec.ipv4, ep.ipv4), v6)
}

pub fn l2_join_answer(net: &NetworkRecord, ep: &EndpointRecord) -> JoinAnswer {
    let (gateway, gateway_ipv6) = gateways(net, ep);
    JoinAnswer {
        link_name: ep.link_name.clone(),
        gateway,
        gateway_ipv6,
        connected_routes: Vec::new(),
        gateway_service: false,
    }
}
