//! The client's exchanges on the wire, blocking and bounded: obtain a lease
//! (DISCOVER → OFFER → REQUEST → ACK), extend it (REQUEST → ACK/NAK) and
//! release it. Messages come from `client.rs`, frames from `frame.rs`.

use super::client::{self, Identity, Reply};
use super::frame::{self, Addresses};
use super::lease::Lease;
use super::socket::PacketSocket;
use crate::mac::MacAddr;
use crate::model::now;
use std::io;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

const BROADCAST: MacAddr = MacAddr([0xff; 6]);

fn xid() -> u32 {
    // Unique enough per transaction; replies are matched on chaddr too.
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    t.subsec_nanos() ^ (t.as_secs() as u32).rotate_left(16) ^ std::process::id()
}

fn send(
    sock: &PacketSocket,
    src: (MacAddr, Ipv4Addr),
    dst: (MacAddr, Ipv4Addr),
    msg: &[u8],
) -> io::Result<()> {
    let f = frame::encode(
        &Addresses {
            src_mac: src.0,
            dst_mac: dst.0,
            src_ip: src.1,
            dst_ip: dst.1,
        },
        msg,
    );
    sock.send(&f, dst.0)
}

/// Waits until `deadline` for a reply to `xid`; with the server's MAC.
fn wait(
    sock: &PacketSocket,
    xid: u32,
    id: &Identity,
    deadline: Instant,
) -> io::Result<Option<(MacAddr, Reply)>> {
    while let Some(f) = sock.recv(deadline)? {
        if let Some((src, payload)) = frame::decode(&f)
            && let Some(r) = client::read_reply(payload, xid, id)
        {
            return Ok(Some((src, r)));
        }
    }
    Ok(None)
}

fn bound(mut lease: Lease, server_mac: MacAddr) -> Lease {
    lease.server_mac = server_mac;
    lease.bound_at = now();
    lease
}

/// Obtains a lease within `timeout`, retransmitting with back-off (1, 2,
/// 4 s, as RFC 2131 §4.1 asks, shortened to fit). `Ok(None)`: no server
/// answered in time.
pub fn acquire(sock: &PacketSocket, id: &Identity, timeout: Duration) -> io::Result<Option<Lease>> {
    let end = Instant::now() + timeout;
    let src = (id.hardware, Ipv4Addr::UNSPECIFIED);
    let dst = (BROADCAST, Ipv4Addr::BROADCAST);
    let mut wait_for = Duration::from_secs(1);
    while Instant::now() < end {
        let x = xid();
        send(sock, src, dst, &client::discover(x, id, None))?;
        let round = (Instant::now() + wait_for).min(end);
        wait_for = (wait_for * 2).min(Duration::from_secs(4));
        let Some((_, Reply::Offer(offer))) = wait(sock, x, id, round)? else {
            continue;
        };
        send(sock, src, dst, &client::request_offer(x, id, &offer))?;
        let ack_by = (Instant::now() + Duration::from_secs(3)).min(end);
        if let Some((mac, Reply::Ack(lease))) = wait(sock, x, id, ack_by)? {
            return Ok(Some(bound(lease, mac)));
        }
        // NAK or silence after an offer: start over with a new DISCOVER.
    }
    Ok(None)
}

#[derive(Debug, PartialEq)]
pub enum Extended {
    Ack(Lease),
    /// The server refused: the address is no longer this client's.
    Nak(String),
    NoAnswer,
}

/// One RENEWING (unicast to the lease's server) or REBINDING (broadcast)
/// attempt, answered within `timeout`.
pub fn extend(
    sock: &PacketSocket,
    lease: &Lease,
    rebind: bool,
    timeout: Duration,
) -> io::Result<Extended> {
    let x = xid();
    let id = Identity {
        hardware: lease.hardware,
        client_id: lease.client_id.clone(),
    };
    let dst = if rebind {
        (BROADCAST, Ipv4Addr::BROADCAST)
    } else {
        (lease.server_mac, lease.server)
    };
    send(
        sock,
        (lease.hardware, lease.address.addr()),
        dst,
        &client::request_extend(x, lease),
    )?;
    Ok(match wait(sock, x, &id, Instant::now() + timeout)? {
        Some((mac, Reply::Ack(new))) => Extended::Ack(bound(new, mac)),
        Some((_, Reply::Nak(why))) => Extended::Nak(why),
        _ => Extended::NoAnswer,
    })
}

/// Tells the server the address is free again (no answer is sent).
pub fn release(sock: &PacketSocket, lease: &Lease) -> io::Result<()> {
    send(
        sock,
        (lease.hardware, lease.address.addr()),
        (lease.server_mac, lease.server),
        &client::release(xid(), lease),
    )
}
