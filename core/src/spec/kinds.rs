//! The backends and their modes, named as `-o` options and Docker's
//! built-in drivers name them.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use super::OPT_ENCRYPTED;
use super::{
    OPT_HOST_ACCESS, OPT_IPV6_SLAAC, OPT_IPVLAN_FLAG, OPT_IPVLAN_MODE, OPT_MACVLAN_MODE, OPT_MTU,
    OPT_PARENT, OPT_PEERS, OPT_VNI, OPT_VXLANID_LIST,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Macvlan,
    Ipvlan,
    Vxlan,
}

impl BackendKind {
    pub const ALL: [BackendKind; 3] = [
        BackendKind::Macvlan,
        BackendKind::Ipvlan,
        BackendKind::Vxlan,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Macvlan => "macvlan",
            BackendKind::Ipvlan => "ipvlan",
            BackendKind::Vxlan => "vxlan",
        }
    }

    /// The options this backend understands, besides `backend` itself.
    pub fn options(self) -> &'static [&'static str] {
        match self {
            BackendKind::Macvlan => &[
                OPT_PARENT,
                OPT_MACVLAN_MODE,
                OPT_MTU,
                OPT_HOST_ACCESS,
                OPT_IPV6_SLAAC,
                super::OPT_IPAM,
            ],
            BackendKind::Ipvlan => &[
                OPT_PARENT,
                OPT_IPVLAN_MODE,
                OPT_IPVLAN_FLAG,
                OPT_MTU,
                OPT_HOST_ACCESS,
                OPT_IPV6_SLAAC,
                super::OPT_IPAM,
            ],
            BackendKind::Vxlan => &[OPT_VNI, OPT_VXLANID_LIST, OPT_PEERS, OPT_MTU, OPT_ENCRYPTED],
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BackendKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        BackendKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "backend \"{s}\" is not known; use one of: macvlan, ipvlan, vxlan"
                ))
            })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MacvlanMode {
    #[default]
    Bridge,
    Vepa,
    Private,
    Passthru,
}

impl MacvlanMode {
    pub fn as_str(self) -> &'static str {
        match self {
            MacvlanMode::Bridge => "bridge",
            MacvlanMode::Vepa => "vepa",
            MacvlanMode::Private => "private",
            MacvlanMode::Passthru => "passthru",
        }
    }
}

impl fmt::Display for MacvlanMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MacvlanMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "bridge" => Ok(MacvlanMode::Bridge),
            "vepa" => Ok(MacvlanMode::Vepa),
            "private" => Ok(MacvlanMode::Private),
            "passthru" => Ok(MacvlanMode::Passthru),
            _ => Err(Error::invalid(format!(
                "macvlan_mode \"{s}\" is not valid; use one of: bridge, vepa, private, passthru"
            ))),
        }
    }
}

/// `ipvlan_mode`, as Docker's built-in ipvlan driver names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum IpvlanMode {
    #[default]
    L2,
    L3,
    L3s,
}

impl IpvlanMode {
    pub fn as_str(self) -> &'static str {
        match self {
            IpvlanMode::L2 => "l2",
            IpvlanMode::L3 => "l3",
            IpvlanMode::L3s => "l3s",
        }
    }
}

impl fmt::Display for IpvlanMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IpvlanMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "l2" => Ok(IpvlanMode::L2),
            "l3" => Ok(IpvlanMode::L3),
            "l3s" => Ok(IpvlanMode::L3s),
            _ => Err(Error::invalid(format!(
                "ipvlan_mode \"{s}\" is not valid; use one of: l2, l3, l3s"
            ))),
        }
    }
}

/// `ipvlan_flag`, as Docker's built-in ipvlan driver names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum IpvlanFlag {
    #[default]
    Bridge,
    Private,
    Vepa,
}

impl IpvlanFlag {
    pub fn as_str(self) -> &'static str {
        match self {
            IpvlanFlag::Bridge => "bridge",
            IpvlanFlag::Private => "private",
            IpvlanFlag::Vepa => "vepa",
        }
    }
}

impl fmt::Display for IpvlanFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IpvlanFlag {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "bridge" => Ok(IpvlanFlag::Bridge),
            "private" => Ok(IpvlanFlag::Private),
            "vepa" => Ok(IpvlanFlag::Vepa),
            _ => Err(Error::invalid(format!(
                "ipvlan_flag \"{s}\" is not valid; use one of: bridge, private, vepa"
            ))),
        }
    }
}
