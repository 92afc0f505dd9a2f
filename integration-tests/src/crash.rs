//! Crash tests' shared parts: one container lifecycle at protocol level as
//! a list of calls that can be retried after a crash, and the invariants a
//! restarted plugin must leave (no half-made or unmarked Switchyard links,
//! operator links untouched).

use crate::lab::Lab;
use crate::libnetwork::Answer;
use crate::{Netns, random_id};

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

/// The calls of one container's life, in dockerd's order.
pub const CALLS: [&str; 6] = [
    "CreateNetwork",
    "CreateEndpoint",
    "Join",
    "Leave",
    "DeleteEndpoint",
    "DeleteNetwork",
];

/// One lifecycle's ids.
pub struct Lifecycle {
    pub flavour: Flavour,
    pub net: String,
    pub ep: String,
    pub addr: String,
    pub sandbox: Netns,
}

impl Lifecycle {
    pub fn new(flavour: Flavour, n: u8) -> Lifecycle {
        Lifecycle {
            flavour,
            net: random_id(),
            ep: random_id(),
            addr: format!("10.88.0.{}/24", 2 + n),
            sandbox: Netns::new("cs"),
        }
    }

    /// Gives the lab what the flavour needs (an underlay address for VXLAN).
    pub fn prepare(lab: &Lab) {
        lab.host.ip(&["addr", "add", "10.99.0.1/24", "dev", "tp0"]);
    }

    pub fn call(&self, lab: &mut Lab, call: &str) -> Answer {
        match call {
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
                lab.ln
                    .create_network(&self.net, &opts, &[("10.88.0.0/24", None)], &[], internal)
            }
            "CreateEndpoint" => lab
                .ln
                .create_endpoint(&self.net, &self.ep, &self.addr, "", ""),
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
