//! Runs a test again inside the User-Mode Linux kernel of
//! `../shared/tools/run-in-kernel.sh`, which has what the build machines'
//! kernel lacks (IPVLAN, 802.1q, dummy). A missing tool or kernel fails the
//! test; it never passes by skipping.

use crate::{plugin, shared_dir};
use std::process::Command;

const IN_KERNEL: &str = "SWITCHYARD_IN_TEST_KERNEL";

/// True when the test body should run here; otherwise runs `test` (of the
/// current test binary) inside the UML kernel, asserts it passed there,
/// and returns false.
pub fn in_test_kernel(test: &str) -> bool {
    if std::env::var_os(IN_KERNEL).is_some() {
        return true;
    }
    let tool = shared_dir().join("tools/run-in-kernel.sh");
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(&tool)
        .arg(&exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(IN_KERNEL, "1")
        .env("SWITCHYARD_BIN", plugin::binary())
        .env("RIK_TIMEOUT", "600")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", tool.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{test} failed inside the test kernel ({}):\n{text}",
        out.status
    );
    assert!(
        text.contains("1 passed"),
        "{test} did not run inside the test kernel:\n{text}"
    );
    false
}
