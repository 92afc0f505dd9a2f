//! VXLAN's options: the VNI (`vni`, or Docker overlay's `vxlanid_list`)
//! and static peers (`peers`).

use super::{OPT_ENCRYPTED, OPT_PEERS, OPT_VNI, OPT_VXLANID_LIST, VNI_MAX};
use crate::quote::quote;
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::net::IpAddr;

fn parse_one_vni(what: &str, s: &str) -> Result<u32> {
    let n: u64 = s.trim().parse().map_err(|_| {
        Error::invalid(format!(
            "{what} {} is not a number; use a VXLAN network identifier from 1 to {VNI_MAX}, e.g. -o vni=5001",
            quote(s)
        ))
    })?;
    if n == 0 || n > VNI_MAX as u64 {
        return Err(Error::invalid(format!(
            "{what} {n} is out of range; a VXLAN network identifier is 1 to {VNI_MAX}"
        )));
    }
    Ok(n as u32)
}

pub(super) fn parse_vni(generic: &BTreeMap<String, String>) -> Result<Option<u32>> {
    let vni = generic
        .get(OPT_VNI)
        .map(|v| parse_one_vni("vni", v))
        .transpose()?;
    let list = match generic.get(OPT_VXLANID_LIST) {
        None => None,
        Some(l) => {
            let ids: Vec<&str> = l
                .split(',')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .collect();
            if ids.len() > 1 {
                return Err(Error::invalid(format!(
                    "{OPT_VXLANID_LIST} {} names {} VNIs, but a Switchyard VXLAN network has one; give one VNI (and one IPv4 subnet)",
                    quote(l),
                    ids.len()
                )));
            }
            ids.first()
                .map(|v| parse_one_vni(OPT_VXLANID_LIST, v))
                .transpose()?
        }
    };
    match (vni, list) {
        (Some(a), Some(b)) if a != b => Err(Error::invalid(format!(
            "vni {a} and {OPT_VXLANID_LIST} {b} disagree; give one of them"
        ))),
        (a, b) => Ok(a.or(b)),
    }
}

pub(super) fn parse_peers(generic: &BTreeMap<String, String>) -> Result<Vec<IpAddr>> {
    let Some(list) = generic.get(OPT_PEERS) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for p in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let ip: IpAddr = p.parse().map_err(|_| {
            Error::invalid(format!(
                "peers: {} is not an IP address; list the other hosts' VTEP addresses, e.g. -o peers=192.0.2.11,192.0.2.12",
                quote(p)
            ))
        })?;
        if ip.is_unspecified() || ip.is_multicast() || ip.is_loopback() {
            return Err(Error::invalid(format!(
                "peers: {ip} cannot be a VTEP; list the other hosts' unicast underlay addresses"
            )));
        }
        if !out.contains(&ip) {
            out.push(ip);
        }
    }
    if out.is_empty() {
        return Err(Error::invalid(
            "peers is empty; list the other hosts' VTEP addresses, e.g. -o peers=192.0.2.11,192.0.2.12, or leave the option out",
        ));
    }
    Ok(out)
}

/// `-o encrypted`: as with Docker's overlay driver, the bare option (empty
/// value) means on. Docker turns it on whatever the value; here the value is
/// a boolean, so `encrypted=false` is off as written, and anything else is
/// refused rather than guessed.
pub(super) fn parse_encrypted(generic: &BTreeMap<String, String>) -> Result<bool> {
    match generic
        .get(OPT_ENCRYPTED)
        .map(|v| v.trim().to_ascii_lowercase())
    {
        None => Ok(false),
        Some(v) => match v.as_str() {
            "" | "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(Error::invalid(format!(
                "{OPT_ENCRYPTED} {} is not a boolean; use -o {OPT_ENCRYPTED}=true (or -o {OPT_ENCRYPTED}) for IPsec between the hosts, or leave it out",
                quote(&generic[OPT_ENCRYPTED])
            ))),
        },
    }
}

#[cfg(test)]
mod encrypted_tests {
    use super::*;

    fn opts(v: Option<&str>) -> BTreeMap<String, String> {
        v.map(|v| (OPT_ENCRYPTED.to_string(), v.to_string()))
            .into_iter()
            .collect()
    }

    #[test]
    fn encrypted_is_docker_overlays_boolean() {
        assert!(!parse_encrypted(&opts(None)).unwrap());
        assert!(
            parse_encrypted(&opts(Some(""))).unwrap(),
            "Docker's bare -o encrypted"
        );
        assert!(parse_encrypted(&opts(Some("true"))).unwrap());
        assert!(!parse_encrypted(&opts(Some("false"))).unwrap());
        let e = parse_encrypted(&opts(Some("maybe")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("encrypted \"maybe\" is not a boolean"), "{e}");
    }
}
