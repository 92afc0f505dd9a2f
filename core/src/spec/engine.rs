//! Which Docker Engine a network was created on, as far as its requests
//! tell. The plugin protocol carries no version, and the Docker API must
//! never be called while a request is handled, so the engine is read from
//! what dockerd sends (measured, `../shared/fixtures/dockerd-*`):
//!
//! * Engine 20.10 sends no `com.docker.network.enable_ipv4` in
//!   CreateNetwork's options (28 and 29 always do), and no `GwAllocCheck`.
//! * Engine 29 sends `"AuxAddresses":{}` on every pool given with
//!   `--subnet`; 28 leaves the key out unless `--aux-address` was used.
//! * 28 and 29 send the same `GwAllocCheck`; before any CreateNetwork has
//!   shown Engine 29's mark, nothing tells them apart. Then the plugin
//!   answers as 28.5 (the safe side: the subnet's first address is never
//!   handed to a container), unless `[parents] engine` names the engine.
//!
//! What was learnt lives in each stored network (`NetworkSpec::engine`) and,
//! for the plugin's lifetime, in `Policy`: a network created with
//! `--subnet` on Engine 29 teaches the plugin for every later one.
//!
//! Outside requests, the server asks dockerd's API for its version
//! (`[plugin] docker_socket`, in the background: never while a request
//! waits). What the engine says of itself wins over what requests suggest,
//! so even the first network on Engine 29 is answered as 29.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

/// The engine a network's requests came from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// Records stored before engines were told apart.
    #[default]
    Unknown,
    /// Engine 20.10 (no `enable_ipv4`, no `GwAllocCheck`).
    #[serde(rename = "20.10")]
    V20,
    /// Engine 28, or 29 before it showed its mark.
    #[serde(rename = "28")]
    V28,
    /// Engine 29 (`AuxAddresses: {}` on user pools, or configured).
    #[serde(rename = "29")]
    V29,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Unknown => "unknown",
            Engine::V20 => "20.10",
            Engine::V28 => "28",
            Engine::V29 => "29",
        }
    }

    /// Whether the engine installs a connected default route (0.0.0.0/0,
    /// ::/0) a remote driver returns: 28 and 29 do; 20.10 refuses it
    /// ("failed to set gateway: file exists"). Unknown (old records) is
    /// answered as 20.10, which the cover routes satisfy on every engine.
    pub fn takes_connected_default(self) -> bool {
        matches!(self, Engine::V28 | Engine::V29)
    }

    fn code(self) -> u8 {
        match self {
            Engine::Unknown => 0,
            Engine::V20 => 20,
            Engine::V28 => 28,
            Engine::V29 => 29,
        }
    }

    fn from_code(c: u8) -> Engine {
        match c {
            20 => Engine::V20,
            28 => Engine::V28,
            29 => Engine::V29,
            _ => Engine::Unknown,
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[parents] engine`: `auto` (read from the requests) or the engine to
/// answer as.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EngineSetting {
    #[default]
    Auto,
    Fixed(Engine),
}

impl FromStr for EngineSetting {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "" | "auto" => EngineSetting::Auto,
            "20" | "20.10" | "20.1" => EngineSetting::Fixed(Engine::V20),
            "28" => EngineSetting::Fixed(Engine::V28),
            "29" => EngineSetting::Fixed(Engine::V29),
            other => {
                return Err(Error::invalid(format!(
                    "engine \"{other}\" is not known; use auto (read from dockerd's requests), 20.10, 28 or 29"
                )));
            }
        })
    }
}

/// What the plugin has learnt about its engine in this lifetime: the last
/// decisive evidence (20.10 or 29) a CreateNetwork carried, and what
/// dockerd's API said of itself.
#[derive(Clone, Debug, Default)]
pub struct EngineMemory {
    evidence: Arc<AtomicU8>,
    told: Arc<AtomicU8>,
}

impl EngineMemory {
    pub fn get(&self) -> Engine {
        Engine::from_code(self.evidence.load(Ordering::Relaxed))
    }

    /// Remembers decisive evidence (20.10 or 29); anything else is ignored.
    pub fn learn(&self, e: Engine) {
        if matches!(e, Engine::V20 | Engine::V29) {
            self.evidence.store(e.code(), Ordering::Relaxed);
        }
    }

    /// What dockerd's API last said it is (`Unknown`: not asked, or no
    /// answer yet).
    pub fn told(&self) -> Engine {
        Engine::from_code(self.told.load(Ordering::Relaxed))
    }

    /// Records dockerd's own version; returns whether it changed.
    pub fn tell(&self, e: Engine) -> bool {
        self.told.swap(e.code(), Ordering::Relaxed) != e.code()
    }
}

impl Engine {
    /// The engine a Docker `Version` string (`/version`'s `Version`, e.g.
    /// "29.7.2", "20.10.24+dfsg1") names; later ones are answered as 29.
    /// Engines between 20.10 and 28 were never measured: None leaves them
    /// to what their requests show.
    pub fn from_version(version: &str) -> Option<Engine> {
        let major: u32 = version.split('.').next()?.trim().parse().ok()?;
        Some(match major {
            20 => Engine::V20,
            28 => Engine::V28,
            29.. => Engine::V29,
            _ => return None,
        })
    }
}
