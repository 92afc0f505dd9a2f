//! This host's identity in the cluster (`[cluster] host_id`).
//!
//! Unless the operator names the host, its identity is generated once, at
//! random, and kept in the state dir (`cluster-host-id.json`), beside the
//! /etc/machine-id it was generated under. So two machines cloned from one
//! image get two identities even when they share a machine-id (the random
//! part differs), and a clone whose machine-id was regenerated but whose
//! state dir was copied notices the changed machine-id and generates a new
//! identity of its own. A clone that copied both is caught by the fence at
//! registration (`agent.rs`): a live agent with the same identity and
//! another lease makes the second refuse to join.
//!
//! Upgrades keep the identity: a host whose state dir was written by a
//! version that identified hosts by their machine-id (a store older than
//! this process, no identity file) keeps the machine-id as its identity.

use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The file in `[plugin] state_dir` that keeps a generated identity.
pub const HOST_ID_FILE: &str = "cluster-host-id.json";
/// The state file of the store (core/store), to tell an upgrade.
const STORE_FILE: &str = "switchyard.redb";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Stored {
    host_id: String,
    /// /etc/machine-id when the identity was made ("" if there was none).
    #[serde(default)]
    machine_id: String,
}

/// Where this host's identity came from (for logs and `check`).
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    /// `[cluster] host_id`.
    Configured,
    /// Kept in the state dir from an earlier start.
    Stored(PathBuf),
    /// Generated now (and kept in the state dir); the reason.
    Generated(String),
    /// Adopted from an earlier version's machine-id identity.
    Upgraded,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub host_id: String,
    pub origin: Origin,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Configured => write!(f, "[cluster] host_id"),
            Origin::Stored(p) => write!(f, "kept in {}", p.display()),
            Origin::Generated(why) => write!(f, "generated ({why})"),
            Origin::Upgraded => write!(f, "the machine-id, kept from an earlier version"),
        }
    }
}

/// Checks an operator-given host id: it is part of etcd keys.
pub fn validate_host_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Ok(());
    }
    let ok = id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        return Err(format!(
            "[cluster] host_id \"{}\" must be 1–128 characters of A–Z, a–z, 0–9, '-', '_', '.' (it names the host in etcd keys); leave it empty to have one generated",
            id.escape_default()
        ));
    }
    Ok(())
}

/// /etc/machine-id, if the machine has one.
pub fn machine_id() -> Option<String> {
    std::fs::read_to_string("/etc/machine-id")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The identity kept in `state_dir`, if any (for `status` and `check`,
/// which never write it).
pub fn stored(state_dir: &Path) -> Option<String> {
    read(&state_dir.join(HOST_ID_FILE)).map(|s| s.host_id)
}

fn read(path: &Path) -> Option<Stored> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str::<Stored>(&text)
        .ok()
        .filter(|s| validate_host_id(&s.host_id).is_ok() && !s.host_id.is_empty())
}

/// This host's identity: the configured one, else the one kept in
/// `state_dir` (unless the machine-id changed since: a clone), else a new
/// one, written to `state_dir` before it is used.
pub fn resolve(
    configured: &str,
    state_dir: &Path,
    machine_id: Option<&str>,
) -> Result<Identity, String> {
    resolve_at(configured, state_dir, machine_id, process_started())
}

/// `resolve`, given when this process started (None: unknown).
fn resolve_at(
    configured: &str,
    state_dir: &Path,
    machine_id: Option<&str>,
    started: Option<std::time::SystemTime>,
) -> Result<Identity, String> {
    if !configured.is_empty() {
        validate_host_id(configured)?;
        return Ok(Identity {
            host_id: configured.to_string(),
            origin: Origin::Configured,
        });
    }
    let path = state_dir.join(HOST_ID_FILE);
    let mid = machine_id.unwrap_or("");
    let reason = match read(&path) {
        Some(s) if s.machine_id == mid || s.machine_id.is_empty() || mid.is_empty() => {
            return Ok(Identity {
                host_id: s.host_id,
                origin: Origin::Stored(path),
            });
        }
        Some(s) => format!(
            "the machine-id changed since {} was written (a cloned machine): it was {}, it is {mid}",
            path.display(),
            s.machine_id
        ),
        None if path.exists() => format!("{} was not understood", path.display()),
        None => match machine_id {
            Some(m) if store_predates(state_dir, started) => {
                write(&path, m, mid)?;
                return Ok(Identity {
                    host_id: m.to_string(),
                    origin: Origin::Upgraded,
                });
            }
            _ => "first start".to_string(),
        },
    };
    let id = generate()?;
    write(&path, &id, mid)?;
    Ok(Identity {
        host_id: id,
        origin: Origin::Generated(reason),
    })
}

fn write(path: &Path, host_id: &str, machine_id: &str) -> Result<(), String> {
    let s = Stored {
        host_id: host_id.to_string(),
        machine_id: machine_id.to_string(),
    };
    let text = serde_json::to_string_pretty(&s).unwrap_or_default() + "\n";
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            format!(
                "cannot keep this host's cluster identity in {} ({e}); make [plugin] state_dir writable, or set [cluster] host_id",
                path.display()
            )
        })
}

/// A new identity: the hostname (for people) and 64 random bits (for
/// uniqueness), e.g. `node1-3fa9c2d17b04e8a1`.
fn generate() -> Result<String, String> {
    let mut bytes = [0u8; 8];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("cannot read /dev/urandom for a host identity: {e}"))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let host: String = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(48)
        .collect();
    Ok(if host.is_empty() {
        format!("host-{hex}")
    } else {
        format!("{host}-{hex}")
    })
}

/// Whether the store in `state_dir` was made (its birth time) before this
/// process started: an earlier version ran here. Without a birth time
/// (filesystems that keep none) it is not an upgrade.
fn store_predates(state_dir: &Path, started: Option<std::time::SystemTime>) -> bool {
    let Ok(born) = std::fs::metadata(state_dir.join(STORE_FILE)).and_then(|m| m.created()) else {
        return false;
    };
    started.is_some_and(|s| born + std::time::Duration::from_secs(1) < s)
}

/// When this process started (from /proc: its start in ticks since boot).
fn process_started() -> Option<std::time::SystemTime> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')')?.1;
    let ticks: u64 = rest.split_whitespace().nth(19)?.parse().ok()?;
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    // USER_HZ is 100 on every Linux architecture Switchyard builds for.
    let age = uptime - ticks as f64 / 100.0;
    std::time::SystemTime::now().checked_sub(std::time::Duration::from_secs_f64(age.max(0.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state dir of the test's own, removed when the test ends (also
    /// when it fails).
    struct Dir(PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    impl std::ops::Deref for Dir {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    fn dir(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!(
            "sy-identity-{name}-{}-{}",
            std::process::id(),
            generate().unwrap()
        ));
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    #[test]
    fn configured_wins_and_is_not_written() {
        let d = dir("cfg");
        let id = resolve("h1", &d, Some("m")).unwrap();
        assert_eq!((id.host_id.as_str(), id.origin), ("h1", Origin::Configured));
        assert!(!d.join(HOST_ID_FILE).exists());
        assert!(
            resolve("a/b", &d, None).is_err(),
            "a '/' would split etcd keys"
        );
    }

    #[test]
    fn generated_once_then_kept() {
        let d = dir("gen");
        let a = resolve("", &d, Some("m1")).unwrap();
        assert!(matches!(a.origin, Origin::Generated(_)), "{:?}", a.origin);
        let b = resolve("", &d, Some("m1")).unwrap();
        assert_eq!(b.host_id, a.host_id);
        assert!(matches!(b.origin, Origin::Stored(_)));
        assert_eq!(stored(&d).as_deref(), Some(a.host_id.as_str()));
    }

    #[test]
    fn one_machine_id_two_state_dirs_two_identities() {
        let (d1, d2) = (dir("c1"), dir("c2"));
        let a = resolve("", &d1, Some("same")).unwrap();
        let b = resolve("", &d2, Some("same")).unwrap();
        assert_ne!(a.host_id, b.host_id);
        assert!(
            !a.host_id.contains("same"),
            "the machine-id is not the identity"
        );
    }

    #[test]
    fn a_copied_state_dir_with_a_new_machine_id_is_a_clone() {
        let d = dir("clone");
        let a = resolve("", &d, Some("m1")).unwrap();
        let b = resolve("", &d, Some("m2")).unwrap();
        assert_ne!(a.host_id, b.host_id);
        match &b.origin {
            Origin::Generated(why) => assert!(why.contains("machine-id changed"), "{why}"),
            o => panic!("{o:?}"),
        }
        // And the new one is kept from now on.
        assert_eq!(resolve("", &d, Some("m2")).unwrap().host_id, b.host_id);
    }

    #[test]
    fn a_store_from_before_this_process_keeps_the_machine_id() {
        let d = dir("upgrade");
        std::fs::write(d.join(STORE_FILE), b"").unwrap();
        if std::fs::metadata(d.join(STORE_FILE))
            .unwrap()
            .created()
            .is_err()
        {
            return; // no birth times here: never an upgrade (tested below)
        }
        // A process that started a minute after the store was made.
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
        let id = resolve_at("", &d, Some("mid"), Some(later)).unwrap();
        assert_eq!((id.host_id.as_str(), id.origin), ("mid", Origin::Upgraded));
        assert!(matches!(
            resolve("", &d, Some("mid")).unwrap().origin,
            Origin::Stored(_)
        ));
    }

    #[test]
    fn a_store_made_by_this_process_is_not_an_upgrade() {
        let d = dir("fresh");
        std::fs::write(d.join(STORE_FILE), b"").unwrap();
        let earlier = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        let id = resolve_at("", &d, Some("mid"), Some(earlier)).unwrap();
        assert!(matches!(id.origin, Origin::Generated(_)), "{:?}", id.origin);
        let d = dir("fresh2");
        std::fs::write(d.join(STORE_FILE), b"").unwrap();
        assert!(matches!(
            resolve("", &d, Some("mid")).unwrap().origin,
            Origin::Generated(_)
        ));
    }

    #[test]
    fn unreadable_file_is_replaced() {
        let d = dir("bad");
        std::fs::write(d.join(HOST_ID_FILE), b"not json").unwrap();
        let id = resolve("", &d, None).unwrap();
        assert!(matches!(id.origin, Origin::Generated(_)));
        assert_eq!(stored(&d), Some(id.host_id));
    }
}
