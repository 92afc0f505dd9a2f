//! The real `switchyard` binary, run inside a test namespace with its own
//! socket and state directory.

use crate::netns::Netns;
use crate::{PluginClient, TempDir, unique, wait_for, workspace_root};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// The `switchyard` binary: `$SWITCHYARD_BIN`, else the workspace's debug
/// build (built once per test process if missing or stale).
pub fn binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(p) = std::env::var("SWITCHYARD_BIN") {
            return PathBuf::from(p);
        }
        let root = workspace_root();
        let status = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "switchyard", "--bin", "switchyard"])
            .current_dir(&root)
            .status()
            .expect("run cargo build for the switchyard binary");
        assert!(status.success(), "cargo build -p switchyard failed");
        let target = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| root.join("target"));
        target.join("debug/switchyard")
    })
    .clone()
}

pub struct Plugin {
    child: Option<Child>,
    pub name: String,
    pub socket: PathBuf,
    pub state_dir: PathBuf,
    pub log: PathBuf,
    /// Where the plugin looks for dockerd's API (`[plugin] docker_socket`):
    /// nothing there unless a `DockerLab` links its dockerd's socket, so a
    /// dockerd of the machine is never asked.
    pub docker_socket: PathBuf,
    netns: String,
    env: Vec<(String, String)>,
    _dir: Option<TempDir>,
}

impl Plugin {
    /// Starts a plugin in `ns` with a fresh socket (under /run/docker/plugins,
    /// where dockerd finds it) and state directory.
    pub fn start(ns: &Netns) -> Plugin {
        Self::start_with(ns, &[])
    }

    /// As `start`, with extra `SWITCHYARD__…` environment overrides.
    pub fn start_with(ns: &Netns, env: &[(&str, &str)]) -> Plugin {
        let dir = TempDir::new("plugin");
        let name = unique("sy");
        let socket = PathBuf::from(format!("/run/docker/plugins/{name}.sock"));
        let mut p = Plugin {
            child: None,
            name,
            socket,
            state_dir: dir.path().join("state"),
            log: dir.path().join("switchyard.log"),
            docker_socket: dir.path().join("docker.sock"),
            netns: ns.name().to_string(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            _dir: Some(dir),
        };
        p.spawn();
        p
    }

    fn spawn(&mut self) {
        if let Err(e) = self.try_spawn() {
            panic!("{e}");
        }
    }

    /// Starts the plugin; Err if it exits or does not listen within 20 s.
    fn try_spawn(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open plugin log");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.netns])
            .arg(binary())
            .arg("serve")
            .env("SWITCHYARD__PLUGIN__SOCKET", &self.socket)
            .env("SWITCHYARD__PLUGIN__STATE_DIR", &self.state_dir)
            .env("SWITCHYARD__LOG__LEVEL", "debug")
            .env("SWITCHYARD__PLUGIN__DOCKER_SOCKET", &self.docker_socket)
            .env_remove("SWITCHYARD_CONFIG")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn switchyard");
        let sock = self.socket.clone();
        let up = wait_for(20.0, || {
            if let Ok(Some(st)) = child.try_wait() {
                return Some(Err(st));
            }
            std::os::unix::net::UnixStream::connect(&sock)
                .ok()
                .map(|_| Ok(()))
        });
        match up {
            Some(Ok(())) => {}
            Some(Err(st)) => {
                return Err(format!(
                    "switchyard exited ({st}) at start:\n{}",
                    self.log_text()
                ));
            }
            None => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "switchyard did not listen on {} within 20 s:\n{}",
                    sock.display(),
                    self.log_text()
                ));
            }
        }
        self.child = Some(child);
        Ok(())
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn client(&self) -> PluginClient {
        PluginClient::new(&self.socket)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit; returns whether it exited 0.
    pub fn stop(&mut self) -> bool {
        match self.child.take() {
            Some(mut c) => {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(c.id() as i32),
                    nix::sys::signal::Signal::SIGTERM,
                );
                c.wait().map(|s| s.success()).unwrap_or(false)
            }
            None => true,
        }
    }

    /// Sets (`Some`) or removes (`None`) an environment variable for the
    /// next start (`restart`), e.g. to disarm `SWITCHYARD_FAILPOINTS`.
    pub fn set_env(&mut self, key: &str, value: Option<&str>) {
        self.env.retain(|(k, _)| k != key);
        if let Some(v) = value {
            self.env.push((key.to_string(), v.to_string()));
        }
    }

    /// Whether the process is still running (false after a crash).
    pub fn alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Whether the process has died or dies within `secs` (a client can see
    /// its socket close a moment before the process is a zombie).
    pub fn dead_within(&mut self, secs: f64) -> bool {
        wait_for(secs, || (!self.alive()).then_some(())).is_some()
    }

    /// Starts the same plugin again; Err (with its log) if it exits during
    /// startup — what a crash test that kills startup expects.
    pub fn try_restart(&mut self) -> Result<(), String> {
        self.kill();
        self.try_spawn()
    }

    /// Starts the same plugin again (same socket and state).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    /// Runs `switchyard ARGS…` in `ns` with `env` until it exits (killed
    /// after `limit`): a command, or an instance that must refuse to start.
    pub fn run_once(ns: &Netns, args: &[&str], env: &[(&str, &str)], limit: Duration) -> RunOnce {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns.name()])
            .arg(binary())
            .args(args)
            .env_remove("SWITCHYARD_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn switchyard");
        let done = wait_for(limit.as_secs_f64(), || child.try_wait().ok().flatten());
        if done.is_none() {
            let _ = child.kill();
        }
        let out = child.wait_with_output().expect("collect switchyard output");
        RunOnce {
            success: done.is_some_and(|s| s.success()),
            text: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }
}

/// How a `run_once` ended.
pub struct RunOnce {
    pub success: bool,
    pub text: String,
}

impl Drop for Plugin {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::remove_file(format!("{}.lock", self.socket.display()));
        if std::thread::panicking() {
            eprintln!(
                "--- switchyard log ({}) ---\n{}",
                self.name,
                self.log_text()
            );
        }
    }
}
