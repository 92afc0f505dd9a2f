//! Crash tests' shared parts: one container lifecycle at protocol level as
//! a list of calls that can be retried after a crash, and the invariants a
//! restarted plugin must leave (no half-made or unmarked Switchyard links,
//! operator links untouched).

use crate::lab::Lab;
use crate::libnetwork::Answer;
use crate::{Netns, random_id};
use serde_json::json;
use std::sync::Mutex;

/// The network kinds a lifecycle runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    /// macvlan on the lab's tp0.
    Macvlan,
    /// macvlan on a private parent (`--internal`, no parent).
    Isolated,
    /// vxlan with a bridge, a VXLAN device and veth pairs (static peers).
    Vxlan,
}

pub const FLAVOURS: [Flavour; 3] = [Flavour::Macvlan, Flavour::Isolated, Flavour::Vxlan];

/// The calls of one container's life, in dockerd's order, with Switchyard
/// as the IPAM driver too (`--ipam-driver`): the pool and the gateway before
/// CreateNetwork, the address before CreateEndpoint, released in reverse.
pub const CALLS: [&str; 12] = [
    "RequestPool",
    "RequestGateway",
    "CreateNetwork",
    "RequestAddress",
    "CreateEndpoint",
    "Join",
    "Leave",
    "DeleteEndpoint",
    "ReleaseAddress",
    "ReleaseGateway",
    "ReleasePool",
    "DeleteNetwork",
];

/// The subnet every lifecycle's network uses (one set of claims for all).
pub const SUBNET: &str = "10.88.0.0/24";

/// One lifecycle's ids, and what IPAM answered.
pub struct Lifecycle {
    pub flavour: Flavour,
    pub net: String,
    pub ep: String,
    /// The endpoint's name as Engine 29 sends it in RequestAddress.
    pub name: String,
    /// `--ip` (odd `n`), or `None`: any address (even `n`).
    pub wanted: Option<String>,
    pub sandbox: Netns,
    pool_id: Mutex<String>,
    gateway: Mutex<String>,
    addr: Mutex<String>,
}

impl Lifecycle {
    pub fn new(flavour: Flavour, n: u8) -> Lifecycle {
        Lifecycle {
            flavour,
            net: random_id(),
            ep: random_id(),
            name: format!("c{n}"),
            // From the top: dynamic answers come from the bottom.
            wanted: (n % 2 == 1).then(|| format!("10.88.0.{}", 254 - n.min(200))),
            sandbox: Netns::new("cs"),
            pool_id: Mutex::default(),
            gateway: Mutex::default(),
            addr: Mutex::default(),
        }
    }

    /// The endpoint's address (CIDR) as IPAM answered it.
    pub fn addr(&self) -> String {
        self.addr.lock().unwrap().clone()
    }

    fn ipam(&self, lab: &mut Lab, call: &str) -> Answer {
        let pool_id = self.pool_id.lock().unwrap().clone();
        let plain = |a: &str| a.split('/').next().unwrap_or("").to_string();
        match call {
            "RequestPool" => {
                let r = lab.ln.ipam(
                    "RequestPool",
                    json!({"AddressSpace": "switchyard-local", "Pool": SUBNET, "SubPool": "", "Options": {}, "V6": false}),
                )?;
                *self.pool_id.lock().unwrap() = r["PoolID"].as_str().unwrap_or("").to_string();
                Ok(r)
            }
            "RequestGateway" => {
                let r = lab.ln.ipam(
                    "RequestAddress",
                    json!({"PoolID": pool_id, "Address": "", "Options": {"RequestAddressType": "com.docker.network.gateway"}}),
                )?;
                *self.gateway.lock().unwrap() = r["Address"].as_str().unwrap_or("").to_string();
                Ok(r)
            }
            "RequestAddress" => {
                let r = lab.ln.ipam(
                    "RequestAddress",
                    json!({"PoolID": pool_id, "Address": self.wanted.clone().unwrap_or_default(),
                           "Options": {"com.docker.network.endpoint.name": self.name}}),
                )?;
                let got = r["Address"].as_str().unwrap_or("").to_string();
                if let Some(w) = &self.wanted
                    && plain(&got) != *w
                {
                    return Err(format!("asked for {w}, RequestAddress answered {r}"));
                }
                *self.addr.lock().unwrap() = got;
                Ok(r)
            }
            "ReleaseAddress" => lab.ln.ipam(
                "ReleaseAddress",
                json!({"PoolID": pool_id, "Address": plain(&self.addr())}),
            ),
            "ReleaseGateway" => {
                let gw = plain(&self.gateway.lock().unwrap());
                lab.ln
                    .ipam("ReleaseAddress", json!({"PoolID": pool_id, "Address": gw}))
            }
            "ReleasePool" => lab.ln.ipam("ReleasePool", json!({"PoolID": pool_id})),
            other => panic!("no call {other}"),
        }
    }

    /// Gives the lab what the flavour needs (an underlay address for VXLAN).
    pub fn prepare(lab: &Lab) {
        lab.host.ip(&["addr", "add", "10.99.0.1/24", "dev", "tp0"]);
    }

    pub fn call(&self, lab: &mut Lab, call: &str) -> Answer {
        match call {
            c if c.starts_with("Request") || c.starts_with("Release") => self.ipam(lab, c),
            "CreateNetwork" => {
                let (opts, internal): (Vec<(&str, &str)>, bool) = match self.flavour {
                    Flavour::Macvlan => (vec![("backend", "macvlan"), ("parent", "tp0")], false),
                    Flavour::Isolated => (vec![("backend", "macvlan")], true),
                    Flavour::Vxlan => (
                        vec![
                            ("backend", "vxlan"),
                            ("vni", "4242"),
                            ("peers", "10.99.0.2"),
                        ],
                        true,
                    ),
                };
                let gw = self.gateway.lock().unwrap().clone();
                let gw = gw.split('/').next().filter(|g| !g.is_empty());
                lab.ln
                    .create_network(&self.net, &opts, &[(SUBNET, gw)], &[], internal)
            }
            "CreateEndpoint" => lab
                .ln
                .create_endpoint(&self.net, &self.ep, &self.addr(), "", ""),
            "Join" => lab
                .ln
                .join(&self.net, &self.ep, self.sandbox.path().to_str().unwrap()),
            "Leave" => lab.ln.endpoint_call("Leave", &self.net, &self.ep),
            "DeleteEndpoint" => lab.ln.endpoint_call("DeleteEndpoint", &self.net, &self.ep),
            "DeleteNetwork" => lab.ln.delete_network(&self.net),
            other => panic!("no call {other}"),
        }
    }

    /// What must hold once `call` has succeeded (also after a crash and a
    /// retry): the endpoint is known from CreateEndpoint to DeleteEndpoint,
    /// its link exists and carries its mark from Join to DeleteEndpoint.
    pub fn check_after(&self, lab: &mut Lab, call: &str) -> Result<(), String> {
        if call.starts_with("Request") || call.starts_with("Release") {
            // IPAM's answers are checked in `call`; what it keeps, by
            // `ipam_leaks` once the lifecycle is over.
            return Ok(());
        }
        let info = lab
            .ln
            .endpoint_call("EndpointOperInfo", &self.net, &self.ep)
            .map_err(|e| format!("EndpointOperInfo: {e}"))?;
        let link = info["Value"]["host_link"].as_str().map(str::to_string);
        let known = matches!(call, "CreateEndpoint" | "Join" | "Leave");
        if known != link.is_some() {
            return Err(format!(
                "after {call} the endpoint should {}be known: {info}",
                if known { "" } else { "not " }
            ));
        }
        if matches!(call, "Join" | "Leave") {
            let name = link.unwrap();
            let alias = lab.link_alias(&name).unwrap_or_default();
            if !alias.starts_with("switchyard") || !alias.ends_with(&self.ep) {
                return Err(format!("after {call} link {name} has alias {alias:?}"));
            }
        }
        Ok(())
    }
}

/// Operator links that look like Switchyard's and must never be touched.
pub const OPERATOR_LINKS: [&str; 2] = ["syop0", "syop1"];

pub fn add_operator_links(lab: &Lab) {
    lab.host.veth(OPERATOR_LINKS[0], OPERATOR_LINKS[1]);
}

/// Half-made links (temporary names `sy~…`) and links named like
/// Switchyard's (`sy…`, `sd…`, `sh…`) without its mark; the operator's excepted.
pub fn unmarked_leftovers(lab: &Lab) -> Vec<String> {
    // One dump: names and marks seen at the same instant.
    lab.host
        .ip(&["-o", "-d", "link", "show"])
        .lines()
        .filter_map(|l| {
            let name = l.split(": ").nth(1)?;
            let name = name.split('@').next().unwrap_or(name);
            Some((name.to_string(), l.contains("alias switchyard")))
        })
        .filter(|(l, _)| l.starts_with("sy") || l.starts_with("sd") || l.starts_with("sh"))
        .filter(|(l, _)| !OPERATOR_LINKS.contains(&l.as_str()))
        .filter(|(l, marked)| l.starts_with("sy~") || !marked)
        .map(|(l, _)| l)
        .collect()
}

/// `unmarked_leftovers` that stay: a link the plugin is creating right now
/// (a backend's background repair) is under its temporary name for a
/// moment; a leftover is one still there after `secs`.
pub fn lasting_leftovers(lab: &Lab, secs: f64) -> Vec<String> {
    match crate::wait_for(secs, || {
        let l = unmarked_leftovers(lab);
        l.is_empty().then_some(())
    }) {
        Some(()) => Vec::new(),
        None => unmarked_leftovers(lab),
    }
}

pub fn operator_links_intact(lab: &Lab) -> bool {
    let links = lab.host.links();
    OPERATOR_LINKS
        .iter()
        .all(|l| links.contains(&l.to_string()) && lab.link_alias(l).unwrap_or_default().is_empty())
}

/// Addresses of `SUBNET` that IPAM still holds although every lifecycle
/// released what it asked for: fills a fresh pool of the subnet (254
/// addresses when nothing leaked) and releases that pool again.
pub fn ipam_leaks(lab: &mut Lab) -> Result<Vec<String>, String> {
    let pool = lab.ln.ipam(
        "RequestPool",
        json!({"AddressSpace": "switchyard-local", "Pool": SUBNET, "SubPool": "", "Options": {}, "V6": false}),
    )?;
    let id = pool["PoolID"].as_str().unwrap_or("").to_string();
    let mut free = std::collections::BTreeSet::new();
    loop {
        match lab.ln.ipam(
            "RequestAddress",
            json!({"PoolID": id, "Address": "", "Options": null}),
        ) {
            Ok(r) => {
                let a = r["Address"].as_str().unwrap_or("");
                free.insert(a.split('/').next().unwrap_or("").to_string());
            }
            Err(e) if e.contains("no free address left") => break,
            Err(e) => return Err(format!("filling {SUBNET}: {e}")),
        }
    }
    lab.ln.ipam("ReleasePool", json!({"PoolID": id}))?;
    Ok((1..=254)
        .map(|i| format!("10.88.0.{i}"))
        .filter(|a| !free.contains(a))
        .collect())
}
