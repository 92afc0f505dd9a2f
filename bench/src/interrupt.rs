//! SIGINT/SIGTERM/SIGHUP become a panic at the next check, so that the
//! guards (namespaces, plugin, dockerd) are dropped and clean up.

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: nix::libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

pub fn install() {
    let sa = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores to an atomic.
        unsafe { sigaction(s, &sa) }.expect("install signal handler");
    }
}

/// Panics (unwinding through the guards) if a signal arrived.
pub fn check() {
    if INTERRUPTED.load(Ordering::SeqCst) {
        panic!("interrupted by a signal; cleaning up");
    }
}
