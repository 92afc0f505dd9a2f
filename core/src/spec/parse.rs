//! Request options → `NetworkSpec`: the pure half of validation. It needs no
//! kernel and runs in `GwAllocCheck` and `CreateNetwork`; facts about the
//! host (does the parent exist, does the MTU fit it) are the backend's.

use super::vxlan_options::{parse_encrypted, parse_peers, parse_vni};
use super::*;
use crate::protocol::{
    CreateNetworkRequest, IpamData, OPT_ENABLE_IPV4, OPT_ENABLE_IPV6, OPT_GENERIC, OPT_INTERNAL,
    Options,
};
use crate::quote::quote;
use crate::{Error, Result};
use ipnet::IpNet;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Docker-reserved keys that libnetwork itself consumes or that reach every
/// driver; they are accepted and ignored rather than refused as unknown.
const DOCKER_KEYS_IGNORED: &[&str] = &[
    OPT_ENABLE_IPV4,
    OPT_ENABLE_IPV6,
    OPT_INTERNAL,
    "com.docker.network.advertise_addr_nmsgs",
    "com.docker.network.advertise_addr_ms",
    "com.docker.network.endpoint.ifname",
];

/// The options of a request with the engine's top-level flags.
pub struct RequestOptions {
    pub generic: BTreeMap<String, String>,
    pub internal: bool,
    pub ipv6: bool,
    /// Whether `com.docker.network.enable_ipv4` was sent (Engine 28 and
    /// later always send it; 20.10 never does).
    pub enable_ipv4_sent: bool,
}

impl RequestOptions {
    pub fn new(raw: &Options) -> Result<Self> {
        let generic = match raw.get(OPT_GENERIC) {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| check_option(k, value_as_string(v)))
                .collect::<Result<_>>()?,
            Some(other) => {
                return Err(Error::invalid(format!(
                    "{OPT_GENERIC} must be an object of options (-o key=value), got {}",
                    quote(&other.to_string())
                )));
            }
        };
        Ok(RequestOptions {
            generic,
            internal: flag(raw, OPT_INTERNAL),
            ipv6: flag(raw, OPT_ENABLE_IPV6),
            enable_ipv4_sent: raw.contains_key(OPT_ENABLE_IPV4),
        })
    }
}

/// The longest option key and value accepted (a `peers` list of many
/// hosts fits; nothing needs more).
const MAX_OPTION_KEY: usize = 128;
const MAX_OPTION_VALUE: usize = 4096;

/// An option as given with `-o key=value`: no control characters (they
/// cannot name an interface or a number, and would reach logs), bounded.
fn check_option(key: &str, value: String) -> Result<(String, String)> {
    if key.len() > MAX_OPTION_KEY || key.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "option {} is not an option name: names are at most {MAX_OPTION_KEY} bytes without control characters",
            quote(key)
        )));
    }
    if value.len() > MAX_OPTION_VALUE || value.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "option \"{key}\" has the value {}, which is not valid: values are at most {MAX_OPTION_VALUE} bytes without control characters",
            quote(&value)
        )));
    }
    Ok((key.to_string(), value))
}

fn flag(raw: &Options, key: &str) -> bool {
    match raw.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn value_as_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Parses the generic options alone (as `GwAllocCheck` sees them, before IPAM).
pub fn parse_options(
    opts: &RequestOptions,
    policy: &Policy,
) -> Result<(BackendOptions, Option<u32>)> {
    let generic = &opts.generic;
    let backend = match generic.get(OPT_BACKEND) {
        Some(b) => b.parse()?,
        None => policy.default_backend.ok_or_else(|| {
            Error::invalid(
                // Swarm gives a Scope-local driver's `--scope swarm` network
                // no options but a config-only network's, so that is the
                // usual way to get here without a mistake in the command.
                format!("option \"backend\" is required; add -o backend=macvlan (or ipvlan, vxlan) to docker network create; {}", super::swarm::CONFIG_FROM_HINT),
            )
        })?,
    };
    for key in generic.keys() {
        if key == OPT_BACKEND || DOCKER_KEYS_IGNORED.contains(&key.as_str()) {
            continue;
        }
        if !backend.options().contains(&key.as_str()) {
            let owner = BackendKind::ALL
                .into_iter()
                .find(|k| *k != backend && k.options().contains(&key.as_str()));
            let hint = format!(
                "backend {backend} accepts: backend, {}",
                backend.options().join(", ")
            );
            return Err(Error::invalid(match owner {
                Some(o) => {
                    format!(
                        "option {} belongs to backend {o}, not {backend}; {hint}",
                        quote(key)
                    )
                }
                None => format!("option {} is not known; {hint}", quote(key)),
            }));
        }
    }
    let mtu = generic.get(OPT_MTU).map(|s| parse_mtu(s)).transpose()?;
    let options = match backend {
        BackendKind::Macvlan => BackendOptions::Macvlan(MacvlanOptions {
            parent: parse_parent(opts, policy, backend, policy.macvlan_parent.as_deref())?,
            mode: match generic.get(OPT_MACVLAN_MODE) {
                Some(m) => m.parse()?,
                None => policy.macvlan_mode,
            },
        }),
        BackendKind::Ipvlan => BackendOptions::Ipvlan(IpvlanOptions {
            parent: parse_parent(opts, policy, backend, policy.ipvlan_parent.as_deref())?,
            mode: match generic.get(OPT_IPVLAN_MODE) {
                Some(m) => m.parse()?,
                None => policy.ipvlan_mode,
            },
            flag: match generic.get(OPT_IPVLAN_FLAG) {
                Some(f) => f.parse()?,
                None => policy.ipvlan_flag,
            },
        }),
        BackendKind::Vxlan => BackendOptions::Vxlan(VxlanOptions {
            vni: parse_vni(generic)?,
            peers: parse_peers(generic)?,
            encrypted: parse_encrypted(generic)?,
        }),
    };
    host_access::check_mode(generic, &options)?;
    if slaac::parse(generic)? {
        slaac::check_mode(&options)?;
    }
    Ok((options, mtu))
}

fn parse_parent(
    opts: &RequestOptions,
    policy: &Policy,
    backend: BackendKind,
    default: Option<&str>,
) -> Result<Parent> {
    let given = opts.generic.get(OPT_PARENT).map(String::as_str).or(default);
    // As Docker's built-in drivers (every engine): no parent gives the
    // network a private parent of its own, internal or not.
    let Some(name) = given else {
        return Ok(Parent::Isolated { name: None });
    };
    let parent = Parent::parse(name)?;
    if name == "lo" {
        return Err(Error::invalid(format!(
            "parent \"lo\" cannot carry a {backend} network; name an Ethernet interface, e.g. -o parent=eth0"
        )));
    }
    let host = parent.host_interface().unwrap_or(name);
    if !policy.parent_allowed(name) && !policy.parent_allowed(host) {
        return Err(Error::invalid(format!(
            "parent {} is not allowed by this host's Switchyard config; allowed parents: {}",
            quote(name),
            policy.allowed_parents.join(", ")
        )));
    }
    Ok(parent)
}

/// Parses a CreateNetwork request into a spec.
pub fn parse_network(req: &CreateNetworkRequest, policy: &Policy) -> Result<NetworkSpec> {
    if req.network_id.is_empty() {
        return Err(Error::invalid(
            "NetworkID is empty; dockerd always sends one",
        ));
    }
    super::swarm::check_config_from(&req.network_id, &req.options)?;
    let opts = RequestOptions::new(&req.options)?;
    let (mut backend, mtu) = parse_options(&opts, policy)?;
    // A private parent gets its name now, from the whole ID, and keeps it.
    if let Some(Parent::Isolated { name }) = backend.parent_mut() {
        *name = Some(isolated_parent_name(&req.network_id));
    }
    let ipv4 = parse_subnets(&req.ipv4_data, false)?;
    let ipv6 = if opts.ipv6 || !req.ipv6_data.is_empty() {
        parse_subnets(&req.ipv6_data, true)?
    } else {
        Vec::new()
    };
    if let Some(m) = mtu
        && !ipv6.is_empty()
        && m < 1280
    {
        return Err(Error::invalid(format!(
            "{OPT_MTU} {m} is too small for IPv6, which needs at least 1280; use 1280 or more, or drop --ipv6"
        )));
    }
    let engine = request_engine(req, &opts);
    let null_ipam = req.ipv4_data.iter().all(|d| d.pool == "0.0.0.0/0");
    let ipam_data: Vec<&IpamData> = req.ipv4_data.iter().chain(&req.ipv6_data).collect();
    let host_access = host_access::parse(&opts.generic, &ipv4, &ipv6, &ipam_data)?;
    let ipv6_slaac = slaac::parse(&opts.generic)?;
    if ipv6_slaac {
        slaac::check_network(engine, opts.ipv6)?;
    }
    let spec = NetworkSpec {
        backend,
        internal: opts.internal,
        ipv4,
        ipv6,
        mtu,
        options: opts.generic,
        engine,
        host_access,
        ipv6_slaac,
    };
    super::dhcp::check(&spec, null_ipam)?;
    Ok(spec)
}

/// What a CreateNetwork request itself shows of its engine (`engine.rs`):
/// 20.10, 29, or `Unknown` for "28 or later without 29's mark".
pub fn request_engine(req: &CreateNetworkRequest, opts: &RequestOptions) -> Engine {
    if !opts.enable_ipv4_sent {
        Engine::V20
    } else if req
        .ipv4_data
        .iter()
        .chain(&req.ipv6_data)
        .any(|d| d.aux_addresses.as_ref().is_some_and(|a| a.is_empty()))
    {
        Engine::V29
    } else {
        Engine::Unknown
    }
}

fn parse_mtu(s: &str) -> Result<u32> {
    let m: u32 = s.trim().parse().map_err(|_| {
        Error::invalid(format!(
            "{OPT_MTU} {} is not a number; use an MTU between 68 and 65535, e.g. -o {OPT_MTU}=1500",
            quote(s)
        ))
    })?;
    if !(68..=65535).contains(&m) {
        return Err(Error::invalid(format!(
            "{OPT_MTU} {m} is out of range; use an MTU between 68 and 65535"
        )));
    }
    Ok(m)
}

fn parse_subnets(data: &[IpamData], v6: bool) -> Result<Vec<Subnet>> {
    let family = if v6 { "IPv6" } else { "IPv4" };
    let mut out = Vec::new();
    for d in data {
        let pool: IpNet = d.pool.parse().map_err(|_| {
            Error::invalid(format!("IPAM pool {} is not a CIDR subnet", quote(&d.pool)))
        })?;
        if pool.addr().is_ipv6() != v6 {
            return Err(Error::invalid(format!(
                "IPAM pool {pool} was given as {family} data but is not {family}"
            )));
        }
        if pool.prefix_len() == 0 {
            // The null IPAM driver: no addresses are managed for this family.
            continue;
        }
        let gateway = match d.gateway.as_deref().filter(|g| !g.is_empty()) {
            None => None,
            Some(g) => {
                let addr = match g.parse::<IpNet>() {
                    Ok(n) => n.addr(),
                    Err(_) => g.parse::<IpAddr>().map_err(|_| {
                        Error::invalid(format!("gateway {} is not an IP address", quote(g)))
                    })?,
                };
                if !pool.contains(&addr) {
                    return Err(Error::invalid(format!(
                        "gateway {addr} is outside subnet {pool}; choose a gateway inside the subnet"
                    )));
                }
                Some(addr)
            }
        };
        out.push(Subnet { pool, gateway });
    }
    Ok(out)
}
