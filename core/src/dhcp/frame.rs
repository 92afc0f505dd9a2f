//! Ethernet + IPv4 + UDP framing for DHCP on a packet socket — pure. A
//! packet socket is used because the endpoint's link has no address while
//! the lease is obtained, and after Join it lives in the container's
//! namespace, where port 68 may be anyone's.

use crate::mac::MacAddr;
use std::net::Ipv4Addr;

pub const SERVER_PORT: u16 = 67;
pub const CLIENT_PORT: u16 = 68;
const ETH_HEADER: usize = 14;
const IP_HEADER: usize = 20;
const UDP_HEADER: usize = 8;

fn checksum(data: &[u8], initial: u32) -> u16 {
    let mut sum = initial;
    for pair in data.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += word as u32;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

pub struct Addresses {
    pub src_mac: MacAddr,
    pub dst_mac: MacAddr,
    pub src_ip: Ipv4Addr,
    pub dst_ip: Ipv4Addr,
}

/// A client → server (port 68 → 67) frame carrying `payload`.
pub fn encode(a: &Addresses, payload: &[u8]) -> Vec<u8> {
    let udp_len = UDP_HEADER + payload.len();
    let ip_len = IP_HEADER + udp_len;
    let mut f = Vec::with_capacity(ETH_HEADER + ip_len);
    f.extend_from_slice(&a.dst_mac.0);
    f.extend_from_slice(&a.src_mac.0);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let ip_start = f.len();
    f.extend_from_slice(&[0x45, 0x10]); // IPv4, IHL 5; DSCP low delay as dhclient
    f.extend_from_slice(&(ip_len as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]); // id, DF, TTL 64, UDP, checksum
    f.extend_from_slice(&a.src_ip.octets());
    f.extend_from_slice(&a.dst_ip.octets());
    let ip_sum = checksum(&f[ip_start..ip_start + IP_HEADER], 0);
    f[ip_start + 10..ip_start + 12].copy_from_slice(&ip_sum.to_be_bytes());
    let udp_start = f.len();
    f.extend_from_slice(&CLIENT_PORT.to_be_bytes());
    f.extend_from_slice(&SERVER_PORT.to_be_bytes());
    f.extend_from_slice(&(udp_len as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    let pseudo = {
        let mut s: u32 = 0;
        for ip in [a.src_ip, a.dst_ip] {
            let o = ip.octets();
            s += u16::from_be_bytes([o[0], o[1]]) as u32 + u16::from_be_bytes([o[2], o[3]]) as u32;
        }
        s + 17 + udp_len as u32
    };
    let mut udp_sum = checksum(&f[udp_start..], pseudo);
    if udp_sum == 0 {
        udp_sum = 0xffff;
    }
    f[udp_start + 6..udp_start + 8].copy_from_slice(&udp_sum.to_be_bytes());
    f
}

/// The Ethernet source and UDP payload of a server → client (67 → 68)
/// IPv4 frame; `None` for anything else.
pub fn decode(frame: &[u8]) -> Option<(MacAddr, &[u8])> {
    if frame.len() < ETH_HEADER + IP_HEADER + UDP_HEADER || frame[12..14] != [0x08, 0x00] {
        return None;
    }
    let src = MacAddr(frame[6..12].try_into().ok()?);
    let ip = &frame[ETH_HEADER..];
    let ihl = ((ip[0] & 0x0f) as usize) * 4;
    if ip[0] >> 4 != 4 || ip[9] != 17 || ihl < IP_HEADER || ip.len() < ihl + UDP_HEADER {
        return None;
    }
    let total = (u16::from_be_bytes([ip[2], ip[3]]) as usize).min(ip.len());
    let udp = &ip[ihl..total];
    let sport = u16::from_be_bytes([udp[0], udp[1]]);
    let dport = u16::from_be_bytes([udp[2], udp[3]]);
    let len = (u16::from_be_bytes([udp[4], udp[5]]) as usize).min(udp.len());
    if sport != SERVER_PORT || dport != CLIENT_PORT || len < UDP_HEADER {
        return None;
    }
    Some((src, &udp[UDP_HEADER..len]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_checksums_are_right() {
        let a = Addresses {
            src_mac: MacAddr([2, 0, 0, 0, 0, 2]),
            dst_mac: MacAddr([0xff; 6]),
            src_ip: Ipv4Addr::UNSPECIFIED,
            dst_ip: Ipv4Addr::BROADCAST,
        };
        let f = encode(&a, b"hello");
        assert_eq!(f.len(), 14 + 20 + 8 + 5);
        // A correct checksum sums (with itself) to zero.
        assert_eq!(checksum(&f[14..34], 0), 0);
        assert_eq!(&f[36..38], &SERVER_PORT.to_be_bytes());
    }

    #[test]
    fn decode_takes_only_server_replies() {
        let a = Addresses {
            src_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            dst_mac: MacAddr([0xff; 6]),
            src_ip: Ipv4Addr::new(192, 0, 2, 1),
            dst_ip: Ipv4Addr::BROADCAST,
        };
        let mut f = encode(&a, b"reply");
        assert_eq!(decode(&f), None, "client → server is not a reply");
        // Swap the ports to make it server → client.
        f.swap(34, 36);
        f.swap(35, 37);
        assert_eq!(decode(&f), Some((a.src_mac, &b"reply"[..])));
        assert_eq!(decode(&f[..20]), None);
    }
}
