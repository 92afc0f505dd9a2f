//! The harness for Switchyard's end-to-end tests and its benchmark
//! (`switchyard-bench`): network namespaces and veth pairs the tests own, the
//! real `switchyard` binary started inside them, a client that speaks to it
//! as libnetwork does, and real dockerds.
//!
//! * `Lab` (lab.rs): a namespace with veth parents, the plugin, a
//!   libnetwork client; built with `Lab::config()`.
//! * `DockerLab` (docker_lab.rs): a `Lab` with a real dockerd in it, and
//!   `engine_matrix!`, which makes every real-dockerd test one test per
//!   engine (20.10, 28, 29).
//! * `multihost`: emulated hosts on one underlay with a real etcd.
//! * `cluster_scale`: the 20-host benchmark's run (`switchyard-bench
//!   cluster`), also run small in CI.
//!
//! Everything here cleans up on drop, also when a test panics. Prerequisites
//! that are missing (root, a command) fail the test with a message saying
//! what to install; they never turn into a silent skip.

pub mod background;
pub mod cluster_scale;
pub mod container_view;
pub mod crash;
pub mod dnsmasq;
pub mod docker_lab;
pub mod dockerd;
pub mod guest;
pub mod lab;
pub mod libnetwork;
pub mod managed_plugin;
pub mod multihost;
pub mod netns;
pub mod packaging;
pub mod plugin;
pub mod prereq;
pub mod router;

pub use background::Background;
pub use docker_lab::DockerLab;
pub use lab::{Lab, LabConfig};
pub use netns::Netns;
pub use plugin::Plugin;
pub use switchyard_client::PluginClient;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A unique short tag for names of namespaces, sockets and directories.
/// The process id alone is not enough: tests re-run inside UML kernels get
/// the same small pids in every guest, while /tmp is the host's.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    static SALT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let salt = SALT.get_or_init(|| random_id()[..4].to_string());
    format!(
        "{prefix}{}x{}{salt}",
        std::process::id() % 100000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// 64 random hex characters, like a Docker network or endpoint id.
pub fn random_id() -> String {
    let mut b = [0u8; 32];
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("read /dev/urandom");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(unique(&format!("switchyard-{tag}-")));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The workspace root (where `target/` is).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// `../shared` beside the repository: fixtures and tools.
pub fn shared_dir() -> PathBuf {
    let p = workspace_root().join("../shared");
    assert!(
        p.join("fixtures").is_dir(),
        "../shared (fixtures, tools) must sit beside the repository; not found at {}",
        p.display()
    );
    p
}

/// Polls `f` until it returns `Some`, for at most `secs` seconds.
pub fn wait_for<T>(secs: f64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = std::time::Instant::now() + std::time::Duration::from_secs_f64(secs);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if std::time::Instant::now() > end {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
