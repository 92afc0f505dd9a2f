//! A DHCPv4 lease as the store keeps it, and where in its life it is
//! (RFC 2131 §4.4.5): bound until T1, renewing (unicast to the server that
//! gave it) until T2, rebinding (broadcast to any server) until it expires.

use crate::mac::MacAddr;
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The leased address with the subnet mask the server gave.
    pub address: Ipv4Net,
    pub gateway: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    /// The server identifier (option 54): renewals go to it and name it.
    pub server: Ipv4Addr,
    /// The Ethernet source of the server's last ACK: renewals are unicast
    /// frames, and the endpoint's link has no ARP of its own before Join.
    pub server_mac: MacAddr,
    /// `chaddr` of every message for this lease.
    pub hardware: MacAddr,
    /// Option 61, the same in every message for this lease.
    pub client_id: Vec<u8>,
    /// Seconds since the epoch when the last ACK arrived.
    pub bound_at: u64,
    /// Lease time, T1 and T2 in seconds from `bound_at`.
    pub lease_secs: u32,
    pub t1_secs: u32,
    pub t2_secs: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Bound,
    /// Past T1: ask the server that gave the lease.
    Renewing,
    /// Past T2: ask any server.
    Rebinding,
    Expired,
}

impl Lease {
    /// T1 and T2 default to 50% and 87.5% of the lease when the server sends
    /// none, and are kept in order when it sends odd ones.
    pub fn timers(lease_secs: u32, t1: Option<u32>, t2: Option<u32>) -> (u32, u32) {
        let t2 = t2
            .filter(|t| *t <= lease_secs)
            .unwrap_or((lease_secs as u64 * 7 / 8) as u32);
        let t1 = t1.filter(|t| *t <= t2).unwrap_or(lease_secs / 2).min(t2);
        (t1, t2)
    }

    pub fn expires_at(&self) -> u64 {
        self.bound_at + self.lease_secs as u64
    }

    pub fn phase(&self, now: u64) -> Phase {
        let age = now.saturating_sub(self.bound_at);
        if age >= self.lease_secs as u64 {
            Phase::Expired
        } else if age >= self.t2_secs as u64 {
            Phase::Rebinding
        } else if age >= self.t1_secs as u64 {
            Phase::Renewing
        } else {
            Phase::Bound
        }
    }

    /// When the renewer should next act on this lease: at T1, or — when
    /// `renew_every` is set (operators who want renewals sooner, and the
    /// tests, which cannot wait for a 2-minute lease's T1) — that many
    /// seconds after it was bound, whichever comes first.
    pub fn renew_at(&self, renew_every: Option<u64>) -> u64 {
        let t1 = self.bound_at + self.t1_secs as u64;
        match renew_every {
            Some(s) => t1.min(self.bound_at + s.max(1)),
            None => t1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(bound_at: u64) -> Lease {
        let (t1, t2) = Lease::timers(120, None, None);
        Lease {
            address: "192.0.2.10/24".parse().unwrap(),
            gateway: None,
            dns: vec![],
            server: Ipv4Addr::new(192, 0, 2, 1),
            server_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            hardware: MacAddr([2, 0, 0, 0, 0, 2]),
            client_id: vec![1, 2, 0, 0, 0, 0, 2],
            bound_at,
            lease_secs: 120,
            t1_secs: t1,
            t2_secs: t2,
        }
    }

    #[test]
    fn timers_default_to_half_and_seven_eighths() {
        assert_eq!(Lease::timers(120, None, None), (60, 105));
        assert_eq!(Lease::timers(3600, Some(100), Some(200)), (100, 200));
        // T1 after T2, T2 after the lease: the defaults are used instead.
        assert_eq!(Lease::timers(120, Some(110), Some(100)), (60, 100));
        assert_eq!(Lease::timers(120, None, Some(500)), (60, 105));
    }

    #[test]
    fn phases_follow_the_timers() {
        let l = lease(1000);
        assert_eq!(l.phase(1000), Phase::Bound);
        assert_eq!(l.phase(1059), Phase::Bound);
        assert_eq!(l.phase(1060), Phase::Renewing);
        assert_eq!(l.phase(1105), Phase::Rebinding);
        assert_eq!(l.phase(1120), Phase::Expired);
        assert_eq!(l.expires_at(), 1120);
    }

    #[test]
    fn renew_at_is_t1_or_sooner() {
        let l = lease(1000);
        assert_eq!(l.renew_at(None), 1060);
        assert_eq!(l.renew_at(Some(5)), 1005);
        assert_eq!(l.renew_at(Some(500)), 1060);
    }
}
