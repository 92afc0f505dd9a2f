//! Failpoints for the crash tests, compiled in only with the cargo feature
//! `test-hooks` (without it every function here is an empty inline no-op).
//!
//! `SWITCHYARD_FAILPOINTS=name[@n][,name[@n]…]` arms points by name: the
//! `n`th time (default the first) the process reaches a point once startup
//! is over (`serving()`) it fires; `startup:name[@n]` arms the point for
//! startup's reconciliation instead (`STARTUP_POINTS`). A
//! kill point (`kill`) then logs one line to stderr and raises SIGKILL on
//! the process itself — no destructor, no flush, exactly a crash at that
//! instant. Other points (`fires`) let the caller break something instead
//! (e.g. `netlink.break` ends the netlink connection).
//!
//! The names of the points are listed in `POINTS`, so tests can walk them.

/// Every kill point, in the order an endpoint's lifecycle reaches them.
pub const POINTS: &[&str] = &[
    // IPAM RequestAddress of the gateway (and, later, of the endpoint)
    "store.ipam_claim.before_commit",
    "store.ipam_claim.after_commit",
    // CreateNetwork
    "network.create.validated",
    "link.apply.created",
    "link.apply.marked",
    "network.create.setup",
    "store.put_network.before_commit",
    "store.put_network.after_commit",
    // CreateEndpoint
    "store.put_endpoint.before_commit",
    "store.put_endpoint.after_commit",
    // Join
    "join.link_ready",
    // Leave
    "leave.start",
    // DeleteEndpoint
    "store.delete_endpoint.before_commit",
    "store.delete_endpoint.after_commit",
    "endpoint.delete.forgotten",
    // IPAM ReleaseAddress of the endpoint (and, later, of the gateway)
    "store.ipam_release.before_commit",
    "store.ipam_release.after_commit",
    // DeleteNetwork
    "network.delete.endpoints_removed",
    "store.delete_network.before_commit",
    "store.delete_network.after_commit",
    "network.delete.forgotten",
];

/// Every point startup's reconciliation reaches, in order, each once per
/// repair it makes (arm them as `startup:<name>`): the link list read, a
/// half-made link removed, an orphaned link removed, a backend's networks
/// restored (a missing private parent re-created through `link.apply.*`).
pub const STARTUP_POINTS: &[&str] = &[
    "reconcile.listed",
    "reconcile.half_made_removed",
    "reconcile.orphan_removed",
    "link.apply.created",
    "link.apply.marked",
    "reconcile.backend_restored",
    "reconcile.done",
];

/// The prefix that arms a point for startup instead of for serving.
pub const STARTUP: &str = "startup:";

#[cfg(feature = "test-hooks")]
mod imp {
    use super::STARTUP;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Mutex, OnceLock};

    /// name → (fire at this hit, hits so far)
    fn armed() -> &'static Mutex<HashMap<String, (u64, u64)>> {
        static ARMED: OnceLock<Mutex<HashMap<String, (u64, u64)>>> = OnceLock::new();
        ARMED.get_or_init(|| {
            let spec = std::env::var("SWITCHYARD_FAILPOINTS").unwrap_or_default();
            let map = spec
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| match s.split_once('@') {
                    Some((n, k)) => (n.to_string(), (k.parse().unwrap_or(1).max(1), 0)),
                    None => (s.to_string(), (1, 0)),
                })
                .collect();
            Mutex::new(map)
        })
    }

    static SERVING: AtomicBool = AtomicBool::new(false);

    pub fn fires(name: &str) -> bool {
        let mut m = armed().lock().unwrap_or_else(|e| e.into_inner());
        let key = if SERVING.load(Ordering::Acquire) {
            name.to_string()
        } else {
            format!("{STARTUP}{name}")
        };
        match m.get_mut(&key) {
            Some((at, hits)) => {
                *hits += 1;
                *hits == *at
            }
            None => false,
        }
    }

    pub fn serving() {
        SERVING.store(true, Ordering::Release);
    }

    pub fn kill(name: &str) {
        if fires(name) {
            eprintln!("failpoint {name}: killing the process (SIGKILL)");
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
            // Not reached; never continue past a fired kill point.
            std::process::abort();
        }
    }
}

/// Whether the point `name` fires now (always false without `test-hooks`).
#[inline(always)]
pub fn fires(_name: &str) -> bool {
    #[cfg(feature = "test-hooks")]
    {
        imp::fires(_name)
    }
    #[cfg(not(feature = "test-hooks"))]
    {
        false
    }
}

/// Startup is over: hits count from here (`@n` is the nth hit while
/// serving requests; nothing fires during startup).
#[inline(always)]
pub fn serving() {
    #[cfg(feature = "test-hooks")]
    imp::serving()
}

/// Kills the process with SIGKILL if the point `name` fires now (a no-op
/// without `test-hooks`).
#[inline(always)]
pub fn kill(_name: &str) {
    #[cfg(feature = "test-hooks")]
    imp::kill(_name)
}
