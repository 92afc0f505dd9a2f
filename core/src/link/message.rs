//! The netlink messages a plan becomes, built without a socket, and the
//! temporary names links are created under: a link exists under its real
//! name only once it carries its mark (both are set in one message), so a
//! crash can leave nothing unmarked under a name the plugin uses.

use super::apply::Resolved;
use super::plan::{LinkKind, LinkPlan, PeerPlan};
use crate::mark::Mark;
use crate::spec::{IpvlanFlag, IpvlanMode, MacvlanMode};
use rtnetlink::packet_route::link::{
    InfoData, InfoIpVlan, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage, MacVlanMode,
};
use rtnetlink::{
    LinkBridge, LinkDummy, LinkIpVlan, LinkMacVlan, LinkMessageBuilder, LinkUnspec, LinkVeth,
    LinkVlan, LinkVxlan,
};

/// The kernel's limit for an interface alias, its terminating NUL included.
pub(crate) const IFALIASZ: usize = 256;

/// The prefix of every temporary link name: `sy~` is never a name the
/// plugin gives a finished link, nor one dockerd or an operator makes.
pub(crate) const TEMPORARY: &str = "sy~";

/// FNV-1a, 32 bits: stable across builds and Rust versions (the names it
/// makes outlive the process).
fn fnv(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ b as u32).wrapping_mul(0x0100_0193)
    })
}

/// `sy~` + 4 hex digits of the instance + 8 of the link (its name and
/// mark): 15 bytes, the most Linux allows. Deterministic, so a retried apply
/// finds what a failed one left.
pub(crate) fn temporary_name(name: &str, mark: &Mark) -> String {
    let instance = fnv(&mark.instance) & 0xffff;
    let this = fnv(&format!("{name}\0{mark}"));
    format!("{TEMPORARY}{instance:04x}{this:08x}")
}

/// Whether `name` is a temporary name `apply` of `instance` creates links
/// under before naming and marking them: a link found under one after a
/// crash is this instance's half-made link.
pub fn is_temporary(name: &str, instance: &str) -> bool {
    let Some(rest) = name.strip_prefix(TEMPORARY) else {
        return false;
    };
    rest.len() == 12
        && rest.bytes().all(|b| b.is_ascii_hexdigit())
        && rest[..4] == format!("{:04x}", fnv(instance) & 0xffff)
}

/// The creation message of `plan` under the name `tmp`, down (a link must be
/// down to be renamed; `finish` brings it up with its real name).
pub(crate) fn creation_message(plan: &LinkPlan, names: &Resolved, tmp: &str) -> LinkMessage {
    let mut msg = message(plan, names);
    for a in msg.attributes.iter_mut() {
        match a {
            LinkAttribute::IfName(n) => *n = tmp.to_string(),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos.iter_mut() {
                    if let (LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))), Some(peer)) =
                        (i, plan.kind.peer())
                    {
                        let ptmp = temporary_name(&peer.name, &peer.mark);
                        for pa in p.attributes.iter_mut() {
                            if let LinkAttribute::IfName(n) = pa {
                                *n = ptmp.clone();
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    msg.header.flags.remove(LinkFlags::Up);
    msg.header.change_mask.remove(LinkFlags::Up);
    msg
}

/// The RTM_NEWLINK message creating `plan`, with its names resolved.
pub(crate) fn message(plan: &LinkPlan, names: &Resolved) -> LinkMessage {
    let name = plan.name.as_str();
    let pidx = names.parent.unwrap_or(0);
    let mut msg = match &plan.kind {
        LinkKind::Macvlan { mode, .. } => {
            let mode = match mode {
                MacvlanMode::Bridge => MacVlanMode::Bridge,
                MacvlanMode::Vepa => MacVlanMode::Vepa,
                MacvlanMode::Private => MacVlanMode::Private,
                MacvlanMode::Passthru => MacVlanMode::Passthrough,
            };
            LinkMacVlan::new(name, pidx, mode).build()
        }
        LinkKind::Ipvlan { mode, flag, .. } => {
            use rtnetlink::packet_route::link::{IpVlanFlags, IpVlanMode as M};
            let m = match mode {
                IpvlanMode::L2 => M::L2,
                IpvlanMode::L3 => M::L3,
                IpvlanMode::L3s => M::L3S,
            };
            let f = match flag {
                IpvlanFlag::Bridge => IpVlanFlags::empty(),
                IpvlanFlag::Private => IpVlanFlags::Private,
                IpvlanFlag::Vepa => IpVlanFlags::Vepa,
            };
            LinkMessageBuilder::<LinkIpVlan>::new(name)
                .link(pidx)
                .set_info_data(InfoData::IpVlan(vec![
                    InfoIpVlan::Mode(m),
                    InfoIpVlan::Flags(f),
                ]))
                .build()
        }
        LinkKind::Vlan { id, .. } => LinkVlan::new(name, pidx, *id).build(),
        LinkKind::Veth(peer) => {
            // The peer's name, MTU and MAC go with the creation; its mark,
            // controller and state cannot (`finish` sets them).
            let mut p = LinkUnspec::new_with_name(&peer.name);
            if let Some(mtu) = peer.mtu {
                p = p.mtu(mtu);
            }
            if let Some(mac) = peer.mac {
                p = p.address(mac.0.to_vec());
            }
            LinkVeth::new(name, &peer.name)
                .set_info_data(InfoData::Veth(InfoVeth::Peer(p.build())))
                .build()
        }
        LinkKind::Bridge => LinkBridge::new(name).build(),
        LinkKind::Dummy => LinkDummy::new(name).build(),
        LinkKind::Vxlan(v) => {
            let mut b = LinkVxlan::new(name, v.vni)
                .port(v.port)
                .learning(v.learning)
                .proxy(v.proxy);
            if let Some(i) = names.parent {
                b = b.dev(i);
            }
            match v.local {
                Some(std::net::IpAddr::V4(a)) => b = b.local(a),
                Some(std::net::IpAddr::V6(a)) => b = b.local6(a),
                None => {}
            }
            b.build()
        }
    };
    if let Some(mtu) = plan.mtu {
        msg.attributes.push(LinkAttribute::Mtu(mtu));
    }
    if let Some(mac) = plan.mac {
        msg.attributes.push(LinkAttribute::Address(mac.0.to_vec()));
    }
    if let Some(c) = names.controller {
        msg.attributes.push(LinkAttribute::Controller(c));
    }
    // LinkBridge::new() sets the bridge up; the plan alone decides.
    if !plan.up {
        msg.header.flags.remove(LinkFlags::Up);
        msg.header.change_mask.remove(LinkFlags::Up);
    }
    msg
}

/// The RTM_SETLINK message giving the peer at `index` its mark and settings.
pub(crate) fn peer_settings(peer: &PeerPlan, index: u32, controller: Option<u32>) -> LinkMessage {
    let mut b = LinkUnspec::new_with_index(index).alias(peer.mark.to_string());
    if let Some(mtu) = peer.mtu {
        b = b.mtu(mtu);
    }
    if let Some(c) = controller {
        b = b.controller(c);
    }
    if peer.up {
        b = b.up();
    }
    b.build()
}
