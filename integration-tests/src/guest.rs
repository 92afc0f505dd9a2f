//! Tests that need kernel features the build machines lack (IPVLAN, 802.1q,
//! dummy links) re-run themselves inside a User-Mode Linux kernel through
//! `../shared/tools/run-in-kernel.sh` (a few seconds to boot; the guest
//! sees the host's files but has its own /run, /sys and network). A real
//! dockerd runs there too (`DockerGuest`). If the tool or its kernel is
//! missing the test fails; it never passes by skipping.

use crate::background::Background;
use crate::{plugin, prereq, shared_dir};
use std::process::Command;

const IN_KERNEL: &str = "SWITCHYARD_IN_TEST_KERNEL";

/// How big a guest a test needs.
#[derive(Clone, Copy)]
pub enum Guest {
    /// Links and the plugin only (1 GiB).
    Links,
    /// A real dockerd as well (2 GiB; temporary files on the guest's tmpfs,
    /// where dockerd's vfs storage works, unlike on the host's files).
    Dockerd,
}

/// True when the test body should run here; otherwise runs `test` (its
/// full name in the test binary) inside the UML kernel, asserts it passed
/// there, and returns false.
pub fn in_test_kernel(test: &str, guest: Guest) -> bool {
    if std::env::var_os(IN_KERNEL).is_some() {
        return true;
    }
    let tool = shared_dir().join("tools/run-in-kernel.sh");
    let bin = plugin::binary();
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(&tool);
    if let Guest::Dockerd = guest {
        // For the guest only: UML keeps its memory file in the host's
        // TMPDIR.
        cmd.args(["env", "TMPDIR=/run/tmp"]);
    }
    cmd.arg(&exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(IN_KERNEL, "1")
        .env("SWITCHYARD_BIN", &bin)
        .env("RIK_TIMEOUT", "600");
    if let Guest::Dockerd = guest {
        cmd.env("RIK_MEM", "2G");
    }
    let out = cmd
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

/// What dockerd needs inside the guest (../shared/tools/README.md): cgroup
/// v1 hierarchies and a containerd whose state is on the guest's tmpfs.
/// The guest, and all of this with it, ends with the test.
pub struct DockerGuest {
    _containerd: Background,
}

impl DockerGuest {
    pub fn prepare() -> DockerGuest {
        assert!(
            std::env::var_os(IN_KERNEL).is_some(),
            "DockerGuest::prepare runs only inside the test kernel (it mounts cgroups over /sys/fs/cgroup)"
        );
        std::fs::create_dir_all("/run/tmp").expect("create /run/tmp");
        prereq::run("mount", &["-t", "tmpfs", "tmpfs", "/sys/fs/cgroup"]);
        // Every v1 controller the guest kernel has (its build has no memory
        // or cpuset controller), each on its own hierarchy.
        let listed = std::fs::read_to_string("/proc/cgroups").expect("read /proc/cgroups");
        let controllers = listed.lines().filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 4 && !f[0].starts_with('#') && f[3] == "1").then(|| f[0].to_string())
        });
        for c in controllers {
            let c = c.as_str();
            let dir = format!("/sys/fs/cgroup/{c}");
            std::fs::create_dir_all(&dir).expect("create a cgroup mount point");
            prereq::run("mount", &["-t", "cgroup", "-o", c, "cgroup", &dir]);
        }
        let mut containerd = Background::start_here(
            "containerd",
            &[
                "containerd",
                "--root",
                "/run/containerd-root",
                "--state",
                "/run/containerd",
                "--address",
                "/run/containerd/containerd.sock",
            ],
        );
        containerd.wait_ready(60.0, || {
            std::path::Path::new("/run/containerd/containerd.sock").exists()
        });
        DockerGuest {
            _containerd: containerd,
        }
    }
}
