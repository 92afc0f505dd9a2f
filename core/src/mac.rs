//! MAC addresses as Docker writes them (`aa:bb:cc:dd:ee:ff`).

use crate::quote::quote;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// A locally administered unicast MAC taken from an endpoint id, so the
    /// same endpoint always gets the same MAC (also after a plugin restart).
    pub fn from_endpoint_id(endpoint_id: &str) -> MacAddr {
        let mut bytes = [0u8; 6];
        bytes[0] = 0x02;
        let hex: Vec<u8> = endpoint_id
            .bytes()
            .filter(|b| b.is_ascii_hexdigit())
            .take(10)
            .collect();
        for (i, pair) in hex.chunks(2).enumerate() {
            let s = std::str::from_utf8(pair).unwrap_or("0");
            bytes[i + 1] = u8::from_str_radix(s, 16).unwrap_or(0);
        }
        if hex.len() < 10 {
            // Not a hex id (swarm ids are base36): hash the whole id instead.
            let mut h: u64 = 0xcbf29ce484222325;
            for b in endpoint_id.bytes() {
                h = (h ^ b as u64).wrapping_mul(0x100000001b3);
            }
            bytes[1..].copy_from_slice(&h.to_be_bytes()[..5]);
        }
        MacAddr(bytes)
    }
}

impl MacAddr {
    /// Docker's convention for addresses it derives: 02:42 + the IPv4
    /// address, so an endpoint that moves keeps its MAC.
    pub fn from_ip(ip: std::net::IpAddr) -> MacAddr {
        let tail = match ip {
            std::net::IpAddr::V4(a) => a.octets(),
            std::net::IpAddr::V6(a) => {
                let o = a.octets();
                [o[12], o[13], o[14], o[15]]
            }
        };
        let first = if ip.is_ipv4() { 0x42 } else { 0x43 };
        MacAddr([0x02, first, tail[0], tail[1], tail[2], tail[3]])
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl FromStr for MacAddr {
    type Err = String;
    /// Accepts the forms Go's `net.ParseMAC` accepts for 48-bit addresses.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "MAC address {} is not valid; write it as aa:bb:cc:dd:ee:ff",
                quote(s)
            )
        };
        let hex: String = if s.len() == 17 && (s.contains(':') || s.contains('-')) {
            let sep = if s.contains(':') { ':' } else { '-' };
            let parts: Vec<&str> = s.split(sep).collect();
            if parts.len() != 6 || parts.iter().any(|p| p.len() != 2) {
                return Err(bad());
            }
            parts.concat()
        } else if s.len() == 14 && s.matches('.').count() == 2 {
            s.replace('.', "")
        } else {
            return Err(bad());
        };
        let mut out = [0u8; 6];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(hex.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16)
                .map_err(|_| bad())?;
        }
        if out[0] & 1 == 1 {
            return Err(format!(
                "MAC address {} is a multicast address; an interface needs a unicast one (first byte even, e.g. 02:…)",
                quote(s)
            ));
        }
        Ok(MacAddr(out))
    }
}

impl Serialize for MacAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_forms() {
        let m: MacAddr = "02:42:aa:bb:cc:dd".parse().unwrap();
        assert_eq!(m.0, [2, 0x42, 0xaa, 0xbb, 0xcc, 0xdd]);
        assert_eq!("02-42-aa-bb-cc-dd".parse::<MacAddr>().unwrap(), m);
        assert_eq!("0242.aabb.ccdd".parse::<MacAddr>().unwrap(), m);
        assert_eq!(m.to_string(), "02:42:aa:bb:cc:dd");
    }

    #[test]
    fn rejects_bad_and_multicast() {
        assert!(
            "02:42:aa:bb:cc"
                .parse::<MacAddr>()
                .unwrap_err()
                .contains("not valid")
        );
        assert!("zz:42:aa:bb:cc:dd".parse::<MacAddr>().is_err());
        assert!(
            "01:00:5e:00:00:01"
                .parse::<MacAddr>()
                .unwrap_err()
                .contains("multicast")
        );
    }

    #[test]
    fn endpoint_macs_are_stable_local_unicast() {
        let id = "c1a9e0d27f3b4c5e8a9b0c1d2e3f405162738495a6b7c8d9e0f1a2b3c4d5e6f7";
        let a = MacAddr::from_endpoint_id(id);
        assert_eq!(a, MacAddr::from_endpoint_id(id));
        assert_eq!(a.0, [0x02, 0xc1, 0xa9, 0xe0, 0xd2, 0x7f]);
        let s = MacAddr::from_endpoint_id("3w7mw2zvun88i2eh6h0cvvxqv");
        assert_eq!(s.0[0], 0x02);
    }
}
