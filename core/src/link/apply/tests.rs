//! The netlink messages `apply` sends, built from plans without a socket.

use super::*;
use crate::link::message::message;
use crate::link::plan::LinkKind;
use crate::mac::MacAddr;
use crate::spec::MacvlanMode;
use rtnetlink::packet_route::link::LinkInfo;
use rtnetlink::packet_route::link::{InfoData, InfoVeth, LinkFlags, LinkMessage};

fn mark(e: &str) -> Mark {
    Mark::endpoint("switchyard", "net1", e)
}

/// The peer message inside a veth creation message.
fn peer_of(msg: &LinkMessage) -> &LinkMessage {
    msg.attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
                LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))) => Some(p),
                _ => None,
            }),
            _ => None,
        })
        .expect("a veth message carries its peer")
}

fn has(msg: &LinkMessage, attr: &LinkAttribute) -> bool {
    msg.attributes.contains(attr)
}

#[test]
fn a_veth_pair_is_created_with_the_peers_name_mtu_and_mac() {
    let mac: MacAddr = "02:42:0a:00:00:05".parse().unwrap();
    let peer_mac: MacAddr = "02:42:0a:00:00:06".parse().unwrap();
    let plan = LinkPlan::new(
        "syab",
        LinkKind::Veth(
            PeerPlan::new("shab", mark("e1"))
                .mtu(Some(1450))
                .mac(peer_mac)
                .controller("sybr42")
                .up(),
        ),
        mark("e1"),
    )
    .mtu(Some(1400))
    .mac(mac);
    let names = Resolved {
        peer_controller: Some(7),
        ..Resolved::default()
    };
    let msg = message(&plan, &names);
    assert!(has(&msg, &LinkAttribute::IfName("syab".into())));
    assert!(has(&msg, &LinkAttribute::Mtu(1400)));
    assert!(has(&msg, &LinkAttribute::Address(mac.0.to_vec())));
    assert!(
        !msg.attributes
            .iter()
            .any(|a| matches!(a, LinkAttribute::Controller(_))),
        "the peer's bridge is not the link's"
    );
    assert!(!msg.header.flags.contains(LinkFlags::Up));
    let peer = peer_of(&msg);
    assert!(has(peer, &LinkAttribute::IfName("shab".into())));
    assert!(has(peer, &LinkAttribute::Mtu(1450)));
    assert!(has(peer, &LinkAttribute::Address(peer_mac.0.to_vec())));
    // The kernel ignores these at creation: `finish` sets them.
    assert!(
        !peer
            .attributes
            .iter()
            .any(|a| matches!(a, LinkAttribute::IfAlias(_) | LinkAttribute::Controller(_)))
    );
}

#[test]
fn resolved_parents_and_the_plans_state_go_into_the_message() {
    let mv = LinkPlan::new(
        "symv0",
        LinkKind::Macvlan {
            parent: "eth1".into(),
            mode: MacvlanMode::Private,
        },
        mark("e1"),
    );
    let names = Resolved {
        parent: Some(5),
        ..Resolved::default()
    };
    assert!(has(&message(&mv, &names), &LinkAttribute::Link(5)));
    // LinkBridge::new() asks for up; only the plan decides.
    let br = LinkPlan::new("sybr0", LinkKind::Bridge, mark("e1"));
    let down = message(&br, &Resolved::default());
    assert!(!down.header.flags.contains(LinkFlags::Up));
    assert!(!down.header.change_mask.contains(LinkFlags::Up));
    let up = message(&br.up(), &Resolved::default());
    assert!(up.header.flags.contains(LinkFlags::Up));
}

#[test]
fn peer_settings_mark_and_configure_the_peer() {
    let peer = PeerPlan::new("shab", mark("e1"))
        .mtu(Some(1450))
        .controller("sybr42")
        .up();
    let msg = peer_settings(&peer, 12, Some(9));
    assert_eq!(msg.header.index, 12);
    assert!(has(&msg, &LinkAttribute::IfAlias(mark("e1").to_string())));
    assert!(has(&msg, &LinkAttribute::Mtu(1450)));
    assert!(has(&msg, &LinkAttribute::Controller(9)));
    assert!(msg.header.flags.contains(LinkFlags::Up));
    let bare = peer_settings(&PeerPlan::new("shab", mark("e1")), 12, None);
    assert_eq!(
        bare.attributes,
        vec![LinkAttribute::IfAlias(mark("e1").to_string())]
    );
    assert!(!bare.header.change_mask.contains(LinkFlags::Up));
}

#[test]
fn links_are_created_down_under_a_temporary_name_of_their_instance() {
    let plan = LinkPlan::new(
        "syab",
        LinkKind::Veth(PeerPlan::new("shab", mark("e1")).up()),
        mark("e1"),
    )
    .up();
    let tmp = temporary_name(&plan.name, &plan.mark);
    assert_eq!(tmp.len(), 15, "{tmp}: at most IFNAMSIZ-1 bytes");
    assert!(is_temporary(&tmp, "switchyard"));
    assert!(!is_temporary(&tmp, "sy2"), "another instance's");
    assert!(!is_temporary("syab", "switchyard"));
    assert!(!is_temporary("sy~operator", "switchyard"));
    assert_eq!(tmp, temporary_name("syab", &mark("e1")), "deterministic");
    assert_ne!(tmp, temporary_name("shab", &mark("e1")));
    let msg = creation_message(&plan, &Resolved::default(), &tmp);
    assert!(has(&msg, &LinkAttribute::IfName(tmp.clone())));
    assert!(!has(&msg, &LinkAttribute::IfName("syab".into())));
    assert!(!msg.header.flags.contains(LinkFlags::Up));
    let peer = peer_of(&msg);
    let ptmp = temporary_name("shab", &mark("e1"));
    assert!(peer.attributes.contains(&LinkAttribute::IfName(ptmp)));
}
