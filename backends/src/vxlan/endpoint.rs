//! Endpoint phase: the veth pair (one plan for Join's link and for the
//! link's creation) and the endpoint's withdrawal from the cluster.

use super::names::host_peer_name;
use super::{Vxlan, vni_of};
use switchyard_core::link::{LinkKind, LinkPlan, PeerPlan};
use switchyard_core::mark::Mark;
use switchyard_core::model::{EndpointRecord, NetworkRecord};

/// The endpoint's veth pair: `sy…` goes to the container, its peer `sh…`
/// stays in `bridge`, up; `apply` creates, marks and configures both.
pub(super) fn veth_plan(ep: &EndpointRecord, mark: Mark, mtu: u32, bridge: &str) -> LinkPlan {
    let peer = PeerPlan::new(host_peer_name(&ep.link_name), mark.clone())
        .mtu(Some(mtu))
        .controller(bridge)
        .up();
    let plan = LinkPlan::new(ep.link_name.clone(), LinkKind::Veth(peer), mark).mtu(Some(mtu));
    match ep.mac {
        Some(mac) => plan.mac(mac),
        None => plan,
    }
}

impl Vxlan {
    /// Takes the endpoint's record out of the cluster (and out of
    /// quarantine); the agent deletes the key.
    pub(super) fn withdraw_endpoint(&self, net: &NetworkRecord, ep: &EndpointRecord) {
        if let (Some(c), Some(vni)) = (&self.state.cluster, vni_of(&net.spec)) {
            c.withdraw_endpoint(vni, &ep.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_core::mac::MacAddr;

    fn ep(mac: Option<MacAddr>) -> EndpointRecord {
        let id = "0123456789abcdef";
        EndpointRecord {
            network_id: "n1".into(),
            id: id.into(),
            ipv4: Some("10.9.0.2/24".parse().unwrap()),
            ipv6: None,
            mac,
            mac_from_user: false,
            link_name: switchyard_core::model::endpoint_link_name(id),
            sandbox_key: None,
            created_at: 2,
        }
    }

    #[test]
    fn veth_plan_pairs_the_container_end_with_the_host_end() {
        let mark = Mark::endpoint("sy", "n1", "0123456789abcdef");
        let mac = MacAddr::from_ip("10.9.0.2".parse().unwrap());
        let p = veth_plan(&ep(Some(mac)), mark.clone(), 1450, "sybr5001");
        assert_eq!(p.name, "sy0123456789a");
        let peer = p.kind.peer().expect("a veth pair");
        assert_eq!(peer.name, "sh0123456789a");
        assert_eq!(
            (peer.mtu, peer.controller.as_deref(), peer.up, &peer.mark),
            (Some(1450), Some("sybr5001"), true, &mark)
        );
        assert_eq!(
            (p.mtu, p.mac, p.mark),
            (Some(1450), Some(mac), mark.clone())
        );
        assert_eq!(veth_plan(&ep(None), mark, 1400, "sybr5001").mac, None);
    }
}
