//! The client's messages and how it reads the server's replies — pure: bytes
//! in, bytes out, no sockets, so every step is unit tested. `exchange.rs`
//! puts these on the wire; `lease.rs` says when.

use super::lease::Lease;
use crate::mac::MacAddr;
use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Encodable};
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;

/// Who the client is in every message: `chaddr` (the MAC the server sees
/// and matches `dhcp-host=MAC` reservations against) and the client
/// identifier (option 61).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub hardware: MacAddr,
    pub client_id: Vec<u8>,
}

impl Identity {
    /// The client identifier is RFC 2132's "hardware type 1 + MAC" of the
    /// endpoint's own MAC: a container given `--mac-address` keeps its
    /// identifier (and so its lease) across restarts, the one thing of a
    /// container the remote-driver protocol shows that survives them. An
    /// ipvlan endpoint sends the parent's MAC as `chaddr` (all ipvlan
    /// children share it), so its identifier uses the endpoint's own derived
    /// MAC to keep endpoints apart.
    pub fn new(hardware: MacAddr, own: MacAddr) -> Identity {
        let mut client_id = vec![1];
        client_id.extend_from_slice(&own.0);
        Identity {
            hardware,
            client_id,
        }
    }
}

/// The options every request asks for: mask, router, DNS, the timers.
fn parameter_list() -> DhcpOption {
    DhcpOption::ParameterRequestList(vec![
        OptionCode::SubnetMask,
        OptionCode::Router,
        OptionCode::DomainNameServer,
        OptionCode::AddressLeaseTime,
        OptionCode::Renewal,
        OptionCode::Rebinding,
    ])
}

fn message(xid: u32, id: &Identity, ciaddr: Ipv4Addr, kind: MessageType) -> Message {
    let z = Ipv4Addr::UNSPECIFIED;
    let mut m = Message::new_with_id(xid, ciaddr, z, z, z, &id.hardware.0);
    // Replies before the address is configured must be broadcast: the link
    // has no address yet, and an ipvlan child receives unicast only for
    // addresses it holds.
    if ciaddr.is_unspecified() {
        m.set_flags(Flags::default().set_broadcast());
    }
    m.opts_mut().insert(DhcpOption::MessageType(kind));
    m.opts_mut()
        .insert(DhcpOption::ClientIdentifier(id.client_id.clone()));
    m
}

fn encode(m: &Message) -> Vec<u8> {
    // Encoding a message built here from valid values cannot fail.
    m.to_vec()
        .expect("a DHCP message built by the client encodes")
}

pub fn discover(xid: u32, id: &Identity, requested: Option<Ipv4Addr>) -> Vec<u8> {
    let mut m = message(xid, id, Ipv4Addr::UNSPECIFIED, MessageType::Discover);
    if let Some(ip) = requested {
        m.opts_mut().insert(DhcpOption::RequestedIpAddress(ip));
    }
    m.opts_mut().insert(parameter_list());
    encode(&m)
}

/// REQUEST in SELECTING state: takes the offer of `server`.
pub fn request_offer(xid: u32, id: &Identity, offer: &Offer) -> Vec<u8> {
    let mut m = message(xid, id, Ipv4Addr::UNSPECIFIED, MessageType::Request);
    m.opts_mut()
        .insert(DhcpOption::RequestedIpAddress(offer.address));
    m.opts_mut()
        .insert(DhcpOption::ServerIdentifier(offer.server));
    m.opts_mut().insert(parameter_list());
    encode(&m)
}

/// REQUEST in RENEWING or REBINDING state: `ciaddr` is the leased address,
/// no server identifier, no requested address (RFC 2131 §4.3.2); the two
/// differ only in where the frame goes.
pub fn request_extend(xid: u32, lease: &Lease) -> Vec<u8> {
    let id = Identity {
        hardware: lease.hardware,
        client_id: lease.client_id.clone(),
    };
    let mut m = message(xid, &id, lease.address.addr(), MessageType::Request);
    m.opts_mut().insert(parameter_list());
    encode(&m)
}

pub fn release(xid: u32, lease: &Lease) -> Vec<u8> {
    let id = Identity {
        hardware: lease.hardware,
        client_id: lease.client_id.clone(),
    };
    let mut m = message(xid, &id, lease.address.addr(), MessageType::Release);
    m.opts_mut()
        .insert(DhcpOption::ServerIdentifier(lease.server));
    encode(&m)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    pub address: Ipv4Addr,
    pub server: Ipv4Addr,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Offer(Offer),
    /// The lease as the ACK gives it, still without the server's MAC and
    /// the time (the caller knows those).
    Ack(Lease),
    Nak(String),
}

/// Reads a server's reply to transaction `xid` of `id`; anything else
/// (another client's reply, a request, garbage) is `None`.
pub fn read_reply(bytes: &[u8], xid: u32, id: &Identity) -> Option<Reply> {
    let m = Message::from_bytes(bytes).ok()?;
    if m.opcode() != Opcode::BootReply || m.xid() != xid || m.chaddr().get(..6)? != id.hardware.0 {
        return None;
    }
    let opts = m.opts();
    let server = match opts.get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(s)) => *s,
        _ => m.siaddr(),
    };
    match opts.msg_type()? {
        MessageType::Offer => Some(Reply::Offer(Offer {
            address: m.yiaddr(),
            server,
        })),
        MessageType::Nak => {
            let why = match opts.get(OptionCode::Message) {
                Some(DhcpOption::Message(s)) => s.clone(),
                _ => String::new(),
            };
            Some(Reply::Nak(why))
        }
        MessageType::Ack => {
            let mask = match opts.get(OptionCode::SubnetMask) {
                Some(DhcpOption::SubnetMask(m)) => *m,
                // RFC 2131 leaves it to the client: the classful default
                // would be wrong more often than a host route is harmful.
                _ => Ipv4Addr::new(255, 255, 255, 255),
            };
            let prefix = u32::from(mask).leading_ones() as u8;
            let address = Ipv4Net::new(m.yiaddr(), prefix).ok()?;
            let gateway = match opts.get(OptionCode::Router) {
                Some(DhcpOption::Router(r)) => r.first().copied(),
                _ => None,
            };
            let dns = match opts.get(OptionCode::DomainNameServer) {
                Some(DhcpOption::DomainNameServer(d)) => d.clone(),
                _ => Vec::new(),
            };
            let u32_opt = |code| match opts.get(code) {
                Some(DhcpOption::AddressLeaseTime(t))
                | Some(DhcpOption::Renewal(t))
                | Some(DhcpOption::Rebinding(t)) => Some(*t),
                _ => None,
            };
            let lease_secs = u32_opt(OptionCode::AddressLeaseTime)?;
            let (t1, t2) = Lease::timers(
                lease_secs,
                u32_opt(OptionCode::Renewal),
                u32_opt(OptionCode::Rebinding),
            );
            Some(Reply::Ack(Lease {
                address,
                gateway,
                dns,
                server,
                server_mac: MacAddr([0xff; 6]),
                hardware: id.hardware,
                client_id: id.client_id.clone(),
                bound_at: 0,
                lease_secs,
                t1_secs: t1,
                t2_secs: t2,
            }))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> Identity {
        Identity::new(
            MacAddr([2, 0x42, 0, 0, 0, 7]),
            MacAddr([2, 0x42, 0, 0, 0, 7]),
        )
    }

    /// What a server would answer to `req`.
    fn reply(req: &[u8], kind: MessageType, yiaddr: Ipv4Addr, opts: Vec<DhcpOption>) -> Vec<u8> {
        let q = Message::from_bytes(req).unwrap();
        let z = Ipv4Addr::UNSPECIFIED;
        let mut m = Message::new_with_id(q.xid(), z, yiaddr, z, z, &q.chaddr()[..6]);
        m.set_opcode(Opcode::BootReply);
        m.opts_mut().insert(DhcpOption::MessageType(kind));
        m.opts_mut()
            .insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(192, 0, 2, 1)));
        for o in opts {
            m.opts_mut().insert(o);
        }
        m.to_vec().unwrap()
    }

    #[test]
    fn discover_is_broadcast_with_the_identity() {
        let m = Message::from_bytes(&discover(7, &id(), None)).unwrap();
        assert_eq!(m.xid(), 7);
        assert!(m.flags().broadcast());
        assert_eq!(m.opts().msg_type(), Some(MessageType::Discover));
        assert_eq!(
            m.opts().get(OptionCode::ClientIdentifier),
            Some(&DhcpOption::ClientIdentifier(vec![1, 2, 0x42, 0, 0, 0, 7]))
        );
        assert_eq!(&m.chaddr()[..6], &[2, 0x42, 0, 0, 0, 7]);
    }

    #[test]
    fn offer_then_ack_gives_a_lease() {
        let d = discover(9, &id(), None);
        let offer_bytes = reply(&d, MessageType::Offer, Ipv4Addr::new(192, 0, 2, 50), vec![]);
        let Some(Reply::Offer(offer)) = read_reply(&offer_bytes, 9, &id()) else {
            panic!("no offer")
        };
        assert_eq!(offer.address, Ipv4Addr::new(192, 0, 2, 50));
        let r = Message::from_bytes(&request_offer(9, &id(), &offer)).unwrap();
        assert_eq!(
            r.opts().get(OptionCode::RequestedIpAddress),
            Some(&DhcpOption::RequestedIpAddress(offer.address))
        );
        assert_eq!(
            r.opts().get(OptionCode::ServerIdentifier),
            Some(&DhcpOption::ServerIdentifier(Ipv4Addr::new(192, 0, 2, 1)))
        );
        let ack = reply(
            &request_offer(9, &id(), &offer),
            MessageType::Ack,
            offer.address,
            vec![
                DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)),
                DhcpOption::Router(vec![Ipv4Addr::new(192, 0, 2, 1)]),
                DhcpOption::DomainNameServer(vec![Ipv4Addr::new(192, 0, 2, 53)]),
                DhcpOption::AddressLeaseTime(120),
            ],
        );
        let Some(Reply::Ack(lease)) = read_reply(&ack, 9, &id()) else {
            panic!("no ack")
        };
        assert_eq!(lease.address, "192.0.2.50/24".parse::<Ipv4Net>().unwrap());
        assert_eq!(lease.gateway, Some(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(lease.dns, vec![Ipv4Addr::new(192, 0, 2, 53)]);
        assert_eq!(
            (lease.lease_secs, lease.t1_secs, lease.t2_secs),
            (120, 60, 105)
        );
    }

    #[test]
    fn replies_to_others_are_ignored() {
        let d = discover(9, &id(), None);
        let offer = reply(&d, MessageType::Offer, Ipv4Addr::new(192, 0, 2, 50), vec![]);
        assert_eq!(read_reply(&offer, 10, &id()), None, "another transaction");
        let other = Identity::new(MacAddr([2, 0, 0, 0, 0, 9]), MacAddr([2, 0, 0, 0, 0, 9]));
        assert_eq!(read_reply(&offer, 9, &other), None, "another client");
        assert_eq!(read_reply(&d, 9, &id()), None, "a request, not a reply");
        assert_eq!(read_reply(b"garbage", 9, &id()), None);
    }

    #[test]
    fn nak_and_renewal_and_release() {
        let d = discover(3, &id(), None);
        let nak = reply(&d, MessageType::Nak, Ipv4Addr::UNSPECIFIED, vec![]);
        assert!(matches!(read_reply(&nak, 3, &id()), Some(Reply::Nak(_))));
        let lease = Lease {
            address: "192.0.2.50/24".parse().unwrap(),
            gateway: None,
            dns: vec![],
            server: Ipv4Addr::new(192, 0, 2, 1),
            server_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            hardware: id().hardware,
            client_id: id().client_id,
            bound_at: 0,
            lease_secs: 120,
            t1_secs: 60,
            t2_secs: 105,
        };
        let r = Message::from_bytes(&request_extend(4, &lease)).unwrap();
        assert_eq!(r.ciaddr(), Ipv4Addr::new(192, 0, 2, 50));
        assert!(!r.flags().broadcast());
        assert_eq!(r.opts().get(OptionCode::ServerIdentifier), None);
        assert_eq!(r.opts().get(OptionCode::RequestedIpAddress), None);
        let rel = Message::from_bytes(&release(5, &lease)).unwrap();
        assert_eq!(rel.opts().msg_type(), Some(MessageType::Release));
        assert_eq!(rel.ciaddr(), Ipv4Addr::new(192, 0, 2, 50));
    }
}
