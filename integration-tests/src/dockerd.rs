//! Real dockerds, run inside a test's network namespace: Debian's Engine
//! 20.10 (`docker.io`), Engine 28 from Debian sid and Engine 29.7.2 (both
//! fetched by `../shared/tools/docker-engine.sh` into /opt/docker-engine-28
//! and /opt/docker-engine-29; 29 is driven by the 28 CLI).
//!
//! Each `Dockerd` has its own data-root, exec-root, API socket and pidfile
//! in a temporary directory, and a busybox image (`IMAGE`) imported from
//! Debian's busybox-static. Dropping it removes its containers, stops the
//! daemon (SIGTERM, then SIGKILL for what is left of the processes it
//! started) and removes the directory, also when the test panics.
//!
//! dockerd is started with `setsid nsenter --net=…`, not `ip netns exec`:
//! the latter runs it in a private mount namespace (with /sys remounted),
//! so the mounts dockerd makes would not be seen by the rest of the host.

use crate::netns::Netns;
use crate::prereq::{require_command, require_root};
use crate::{TempDir, shared_dir, wait_for};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The busybox image every `Dockerd` has: `CMD ["sh"]`, with the applets
/// the tests use (`ip`, `ping`, `sleep`, …) as symlinks.
pub const IMAGE: &str = "switchyard-busybox:test";

/// Debian's busybox-static; it must be static to run in an empty rootfs.
const BUSYBOX: &str = "/bin/busybox";

const APPLETS: &[&str] = &[
    "sh", "ash", "ping", "ping6", "ip", "sleep", "cat", "true", "false", "ifconfig", "route", "ls",
    "echo", "grep", "hostname", "ps", "kill", "wc", "sed", "head", "tail", "env", "ipneigh",
    "arping", "nc",
];

/// Where `docker-engine.sh fetch 28` unpacks Engine 28.
const ENGINE28_DIR: &str = "/opt/docker-engine-28";
/// Where `docker-engine.sh fetch 29` unpacks Engine 29 (its `docker` and
/// `tini-static` are links into the 28 tree, which the fetch also makes).
const ENGINE29_DIR: &str = "/opt/docker-engine-29";

/// How long one `docker` command may take before it is killed.
const CLI_TIMEOUT_SECS: u32 = 120;

/// Ordered by release: `engine >= Engine::V28` holds for 28 and 29.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Engine {
    /// Debian 12's docker.io (20.10.24).
    V20,
    /// Docker Engine 28 from Debian sid, beside the system's 20.10.
    V28,
    /// Docker Engine 29.7.2, built from source (`../shared/engines/`).
    V29,
}

impl Engine {
    /// Every engine the real-dockerd tests run on.
    pub const ALL: [Engine; 3] = [Engine::V20, Engine::V28, Engine::V29];

    pub fn label(self) -> &'static str {
        match self {
            Engine::V20 => "20.10",
            Engine::V28 => "28",
            Engine::V29 => "29",
        }
    }

    /// Parses a label (`20.10` or `20`, `28`, `29`).
    pub fn from_label(s: &str) -> Option<Engine> {
        match s {
            "20" | "20.10" => Some(Engine::V20),
            "28" => Some(Engine::V28),
            "29" => Some(Engine::V29),
            _ => None,
        }
    }

    /// Where `docker-engine.sh fetch` unpacks it (None: the system's).
    fn dir(self) -> Option<&'static Path> {
        match self {
            Engine::V20 => None,
            Engine::V28 => Some(Path::new(ENGINE28_DIR)),
            Engine::V29 => Some(Path::new(ENGINE29_DIR)),
        }
    }

    pub fn dockerd_bin(self) -> PathBuf {
        match self.dir() {
            None => PathBuf::from("/usr/sbin/dockerd"),
            Some(d) => d.join("usr/sbin/dockerd"),
        }
    }

    /// The matching CLI. For 20.10 that is /usr/bin/docker, not the first
    /// `docker` in PATH (/usr/local/bin/docker is a 28 client); for 29 it
    /// is the 28 CLI (API negotiation).
    pub fn cli_bin(self) -> PathBuf {
        match self.dir() {
            None => PathBuf::from("/usr/bin/docker"),
            Some(d) => d.join("usr/bin/docker"),
        }
    }

    /// The server version must start with this.
    fn version_prefix(self) -> &'static str {
        match self {
            Engine::V20 => "20.10.",
            Engine::V28 => "28.",
            Engine::V29 => "29.",
        }
    }

    /// Fails the test unless the engine's binaries are there; fetches
    /// Engine 28 or 29 with docker-engine.sh when it is missing.
    pub fn ensure_installed(self) {
        require_root();
        for (cmd, pkg) in [
            ("nsenter", "util-linux"),
            ("setsid", "util-linux"),
            ("tar", "tar"),
            ("timeout", "coreutils"),
            ("containerd", "containerd"),
            ("runc", "runc"),
        ] {
            require_command(cmd, pkg);
        }
        match self {
            Engine::V20 => {
                for p in [self.dockerd_bin(), self.cli_bin()] {
                    assert!(
                        p.is_file(),
                        "Engine 20.10 needs {}; install the Debian package docker.io",
                        p.display()
                    );
                }
            }
            Engine::V28 | Engine::V29 => fetch_engine(self),
        }
    }
}

/// Runs `docker-engine.sh fetch 28|29` once, under a lock on the script, so
/// that parallel test processes do not unpack into the same directory at
/// once.
fn fetch_engine(engine: Engine) {
    let ready = || engine.dockerd_bin().is_file() && engine.cli_bin().is_file();
    if ready() {
        return;
    }
    let script = shared_dir().join("tools/docker-engine.sh");
    let file = std::fs::File::open(&script)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", script.display()));
    let _lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .unwrap_or_else(|e| panic!("cannot lock {}: {e}", script.display()));
    if ready() {
        return;
    }
    let dir = engine.dir().expect("only fetched engines");
    let out = Command::new("bash")
        .arg(&script)
        .args(["fetch", engine.label()])
        .env("ENGINE_DIR", dir)
        .env("ENGINE28_DIR", ENGINE28_DIR)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let label = engine.label();
    assert!(
        out.status.success() && ready(),
        "Engine {label} is not installed and `{} fetch {label}` failed (it needs the Debian archive named in this machine's apt sources{}):\n{}{}",
        script.display(),
        if engine == Engine::V29 {
            ", and ../shared/engines/docker-engine-29.*.tar.xz"
        } else {
            ""
        },
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Fails unless `path` is a statically linked ELF (no PT_INTERP header).
fn require_static_busybox() {
    let bytes = std::fs::read(BUSYBOX).unwrap_or_else(|e| {
        panic!("the test image needs {BUSYBOX} ({e}); install the Debian package busybox-static")
    });
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap()) as usize;
    assert!(
        bytes.len() > 64 && &bytes[..4] == b"\x7fELF" && bytes[4] == 2,
        "{BUSYBOX} is not a 64-bit ELF file; install the Debian package busybox-static"
    );
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    let dynamic = (0..phnum).any(|i| {
        let o = phoff + i * phentsize;
        o + 4 <= bytes.len() && u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap()) == 3
    });
    assert!(
        !dynamic,
        "{BUSYBOX} is dynamically linked and cannot run in an empty image; install the Debian package busybox-static"
    );
}

pub struct Dockerd {
    pub engine: Engine,
    netns_path: PathBuf,
    child: Option<Child>,
    dir: TempDir,
    resolv_conf: Option<PathBuf>,
}

impl Dockerd {
    /// Starts `engine`'s dockerd inside `ns` and imports `IMAGE`.
    pub fn start(engine: Engine, ns: &Netns) -> Dockerd {
        Self::start_with(engine, ns, None)
    }

    /// As `start`; with `resolv_conf`, dockerd reads that file as the
    /// host's /etc/resolv.conf (see `spawn`).
    pub fn start_with(engine: Engine, ns: &Netns, resolv_conf: Option<&Path>) -> Dockerd {
        engine.ensure_installed();
        require_static_busybox();
        let mut d = Dockerd {
            engine,
            netns_path: ns.path(),
            child: None,
            dir: TempDir::new(&format!("dockerd{}", engine.label())),
            resolv_conf: resolv_conf.map(Path::to_path_buf),
        };
        // From here on a panic drops `d`, which cleans up.
        std::fs::write(d.base().join("daemon.json"), "{}\n").expect("write daemon.json");
        std::fs::create_dir_all(d.base().join("cli")).expect("create the CLI config dir");
        if let Some(eng) = engine.dir() {
            // As docker-engine.sh: docker-init and docker-proxy from the
            // engine's tree, containerd and runc from the system.
            let bin = d.base().join("pathbin");
            std::fs::create_dir_all(&bin).expect("create pathbin");
            std::os::unix::fs::symlink(eng.join("usr/bin/tini-static"), bin.join("docker-init"))
                .expect("link docker-init");
            std::os::unix::fs::symlink(eng.join("usr/sbin/docker-proxy"), bin.join("docker-proxy"))
                .expect("link docker-proxy");
        }
        d.spawn();
        let version = d.docker_out(&["version", "--format", "{{.Server.Version}}"]);
        assert!(
            version.starts_with(engine.version_prefix()),
            "expected Engine {} but {} reports server version {version:?}",
            engine.label(),
            engine.dockerd_bin().display()
        );
        d.import_image();
        d
    }

    pub fn base(&self) -> &Path {
        self.dir.path()
    }

    pub fn socket(&self) -> PathBuf {
        self.base().join("docker.sock")
    }

    fn exec_root(&self) -> PathBuf {
        self.base().join("exec")
    }

    pub fn log_path(&self) -> PathBuf {
        self.base().join("dockerd.log")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The log without its `level=info`/`level=debug` lines.
    pub fn notable_log(&self) -> String {
        self.log_text()
            .lines()
            .filter(|l| !l.contains("level=info") && !l.contains("level=debug"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The PID of the running dockerd (0 when stopped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    fn spawn(&mut self) {
        let base = self.base().to_owned();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open dockerd.log");
        let path = match self.engine {
            Engine::V20 => "/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
            Engine::V28 | Engine::V29 => format!(
                "{}:/usr/sbin:/usr/bin:/sbin:/bin",
                base.join("pathbin").display()
            ),
        };
        let _ = std::fs::remove_file(base.join("docker.pid"));
        let mut cmd = Command::new("setsid");
        if let Some(resolv) = &self.resolv_conf {
            // dockerd reads the host's resolver config from /etc/resolv.conf
            // only. It gets its own mount namespace in which that file is
            // `resolv`; the machine's file is never touched: the namespace's
            // root is made private before the bind. Its exec-root (the
            // containers' netns files the plugin opens) is a shared mount
            // first, so what dockerd mounts there is seen outside.
            let exec = self.exec_root();
            std::fs::create_dir_all(&exec).expect("create the exec-root");
            if !is_mount_point(&exec) {
                let e = exec.to_str().expect("a UTF-8 exec-root");
                crate::prereq::run("mount", &["--bind", e, e]);
                crate::prereq::run("mount", &["--make-shared", e]);
            }
            cmd.args(["unshare", "--mount", "--propagation", "unchanged"])
                .args([
                    "sh",
                    "-c",
                    "mount --make-private / && mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"",
                ])
                .arg(resolv);
        }
        cmd.arg("nsenter")
            .arg(format!("--net={}", self.netns_path.display()))
            .arg(self.engine.dockerd_bin())
            .arg("--data-root")
            .arg(base.join("data"))
            .arg("--exec-root")
            .arg(self.exec_root())
            .arg("-H")
            .arg(format!("unix://{}", self.socket().display()))
            .arg("--pidfile")
            .arg(base.join("docker.pid"))
            .arg("--config-file")
            .arg(base.join("daemon.json"))
            .args([
                "--storage-driver",
                "vfs",
                "--iptables=false",
                "--bridge=none",
            ]);
        if self.engine >= Engine::V28 {
            cmd.arg("--ip6tables=false");
        }
        if self.engine == Engine::V29 {
            // 29 puts containers in a time namespace, which the system's
            // runc 1.1 cannot create (as docker-engine.sh starts it).
            cmd.args(["--feature", "time-namespaces=false"]);
        }
        cmd.env_clear()
            .env("PATH", path)
            .env(
                "HOME",
                std::env::var("HOME").unwrap_or_else(|_| "/root".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup dockerd.log"))
            .stderr(log);
        // setsid (not a group leader here), unshare (mount only), sh and
        // nsenter (net only) all exec, so the child's PID is dockerd's.
        let child = cmd.spawn().expect("spawn setsid nsenter dockerd");
        self.child = Some(child);
        let sock = self.socket();
        let up = wait_for(60.0, || {
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                return Some(Err(st));
            }
            api_ping(&sock).then_some(Ok(()))
        });
        match up {
            Some(Ok(())) => {}
            Some(Err(st)) => {
                self.child = None;
                panic!(
                    "dockerd {} exited ({st}) at start:\n{}",
                    self.engine.label(),
                    tail(&self.log_text(), 60)
                )
            }
            None => panic!(
                "dockerd {} did not answer on {} within 60 s:\n{}",
                self.engine.label(),
                sock.display(),
                tail(&self.log_text(), 60)
            ),
        }
        let pidfile = std::fs::read_to_string(base.join("docker.pid")).unwrap_or_default();
        assert_eq!(
            pidfile.trim(),
            self.pid().to_string(),
            "dockerd's pidfile does not name the process this harness started"
        );
    }

    /// Builds a rootfs with busybox-static and its applets and imports it.
    fn import_image(&self) {
        let root = self.base().join("rootfs");
        for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "root"] {
            std::fs::create_dir_all(root.join(d)).expect("create rootfs dir");
        }
        std::fs::copy(BUSYBOX, root.join("bin/busybox")).expect("copy busybox");
        for a in APPLETS {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).expect("link applet");
        }
        let tarball = self.base().join("busybox.tar");
        crate::prereq::run(
            "tar",
            &[
                "-C",
                root.to_str().unwrap(),
                "-cf",
                tarball.to_str().unwrap(),
                ".",
            ],
        );
        self.docker_out(&[
            "import",
            "-c",
            r#"CMD ["sh"]"#,
            tarball.to_str().unwrap(),
            IMAGE,
        ]);
        let _ = std::fs::remove_dir_all(&root);
        let _ = std::fs::remove_file(&tarball);
    }

    fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new("timeout")
            .args(["-k", "5", &CLI_TIMEOUT_SECS.to_string()])
            .arg(self.engine.cli_bin())
            .arg("-H")
            .arg(format!("unix://{}", self.socket().display()))
            .args(args)
            .env("DOCKER_CONFIG", self.base().join("cli"))
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .stdin(Stdio::null())
            .output()
            .expect("run the docker CLI");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs the matching `docker` CLI against this daemon: (success,
    /// stdout followed by stderr).
    pub fn docker(&self, args: &[&str]) -> (bool, String) {
        let (ok, out, err) = self.cli(args);
        (ok, out + &err)
    }

    /// Runs `docker ARGS`, panicking with its output on failure; returns
    /// stdout only (warnings on stderr are left out), trimmed.
    pub fn docker_out(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.cli(args);
        assert!(
            ok,
            "[Engine {}] docker {} failed:\n{out}{err}",
            self.engine.label(),
            args.join(" ")
        );
        out.trim().to_string()
    }

    /// `docker run -d --name NAME --network NET EXTRA IMAGE sleep 600`.
    pub fn run_d(&self, name: &str, net: &str, extra: &[&str]) {
        let mut a = vec!["run", "-d", "--name", name, "--network", net];
        a.extend(extra);
        a.extend([IMAGE, "sleep", "600"]);
        self.docker_out(&a);
    }

    /// `docker run --rm --network NET IMAGE CMD`: (success, output).
    pub fn run_rm(&self, net: &str, cmd: &[&str]) -> (bool, String) {
        let mut a = vec!["run", "--rm", "--network", net, IMAGE];
        a.extend(cmd);
        self.docker(&a)
    }

    /// `docker exec C CMD`, panicking on failure; stdout.
    pub fn exec(&self, c: &str, cmd: &[&str]) -> String {
        let mut a = vec!["exec", c];
        a.extend(cmd);
        self.docker_out(&a)
    }

    /// `docker exec C CMD`: (success, output).
    pub fn try_exec(&self, c: &str, cmd: &[&str]) -> (bool, String) {
        let mut a = vec!["exec", c];
        a.extend(cmd);
        self.docker(&a)
    }

    /// `docker inspect -f FORMAT OBJ`.
    pub fn inspect(&self, obj: &str, format: &str) -> String {
        self.docker_out(&["inspect", "-f", format, obj])
    }

    /// The IPv4 address IPAM gave container `c` on network `net`.
    pub fn ip4(&self, c: &str, net: &str) -> String {
        self.inspect(
            c,
            &format!(r#"{{{{(index .NetworkSettings.Networks "{net}").IPAddress}}}}"#),
        )
    }

    /// The IPv6 address IPAM gave container `c` on network `net`.
    pub fn ip6(&self, c: &str, net: &str) -> String {
        self.inspect(
            c,
            &format!(r#"{{{{(index .NetworkSettings.Networks "{net}").GlobalIPv6Address}}}}"#),
        )
    }

    /// `ping -c1 -W3` (or `ping6`) from container `c`: (success, output).
    pub fn ping_from(&self, c: &str, addr: &str) -> (bool, String) {
        let ping = if addr.contains(':') { "ping6" } else { "ping" };
        self.try_exec(c, &[ping, "-c", "1", "-W", "3", addr])
    }

    pub fn assert_ping(&self, c: &str, addr: &str, what: &str) {
        let (ok, out) = self.ping_from(c, addr);
        assert!(
            ok,
            "[Engine {}] {what}: ping {addr} from {c} failed:\n{out}",
            self.engine.label()
        );
    }

    /// Interface names inside container `c` (`eth0@if7` → `eth0`).
    pub fn container_links(&self, c: &str) -> Vec<String> {
        crate::netns::link_names(&self.exec(c, &["ip", "-o", "link", "show"]))
    }

    /// `ip -d -o link show eth0` run by the host's iproute2 in container
    /// `c`'s network namespace (busybox `ip` does not show aliases).
    pub fn eth0_details(&self, c: &str) -> String {
        let sandbox = self.inspect(c, "{{.NetworkSettings.SandboxKey}}");
        let (ok, out) = crate::prereq::try_run(
            "nsenter",
            &[
                &format!("--net={sandbox}"),
                "ip",
                "-d",
                "-o",
                "link",
                "show",
                "eth0",
            ],
        );
        assert!(ok, "ip -d link in {c}'s namespace {sandbox}:\n{out}");
        out
    }

    /// `docker network ls` names.
    pub fn network_names(&self) -> Vec<String> {
        self.docker_out(&["network", "ls", "--format", "{{.Name}}"])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// SIGTERM, then the same daemon again (same directories and flags).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Stops the daemon: SIGTERM and wait (dockerd stops its containers
    /// and its containerd), SIGKILL if it is not gone after 60 s. Either
    /// way, whatever still runs from this daemon's directories is killed.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = Pid::from_raw(c.id() as i32);
            let _ = kill(pid, Signal::SIGTERM);
            let exited = wait_for(60.0, || c.try_wait().ok().flatten()).is_some();
            if !exited {
                eprintln!(
                    "dockerd {} (pid {pid}) ignored SIGTERM for 60 s; killing it",
                    self.engine.label()
                );
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        self.kill_leftovers();
    }

    /// containerd, shims and container processes started by this daemon:
    /// the processes whose command line names this daemon's exec-root, and
    /// their children (the containers' first processes).
    fn kill_leftovers(&self) {
        let exec_root = self.exec_root().to_string_lossy().into_owned();
        let procs = processes();
        let ours: Vec<i32> = procs
            .iter()
            .filter(|p| p.cmdline.contains(&exec_root))
            .map(|p| p.pid)
            .collect();
        let mut victims = ours.clone();
        victims.extend(
            procs
                .iter()
                .filter(|p| ours.contains(&p.ppid))
                .map(|p| p.pid),
        );
        for pid in victims {
            if pid as u32 != std::process::id() {
                eprintln!(
                    "killing leftover process {pid} of dockerd {}",
                    self.engine.label()
                );
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }

    /// Lazily unmounts anything still mounted below this daemon's directory.
    fn unmount_leftovers(&self) {
        // (The exec-root's own bind mount, when there is one, is under the
        // base too, and the longest paths go first.)
        let base = self.base().to_string_lossy().into_owned();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&format!("{base}/")))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = crate::prereq::try_run("umount", &["-l", p]);
        }
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- dockerd {} log: warnings and errors (the last 60) ---\n{}",
                self.engine.label(),
                tail(&self.notable_log(), 60)
            );
        }
        if self.child.is_some() && api_ping(&self.socket()) {
            // Removing the containers first keeps shutdown fast (no stop
            // timeouts) and lets the plugin, still running, see the
            // endpoints go.
            let (_, ids, _) = self.cli(&["ps", "-aq"]);
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f"];
                args.extend(ids);
                let _ = self.cli(&args);
            }
        }
        self.stop();
        self.unmount_leftovers();
    }
}

/// `GET /_ping` on the API socket.
fn api_ping(sock: &Path) -> bool {
    let Ok(mut s) = UnixStream::connect(sock) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut r = String::new();
    let _ = s.read_to_string(&mut r);
    r.starts_with("HTTP/1.") && r.contains(" 200 ")
}

struct Proc {
    pid: i32,
    ppid: i32,
    cmdline: String,
}

fn processes() -> Vec<Proc> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| {
        let e = e.ok()?;
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
        // pid (comm) state ppid …; comm may contain spaces and parentheses.
        let ppid = stat
            .rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        Some(Proc { pid, ppid, cmdline })
    })
    .collect()
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Whether `dir` is itself a mount point (in this mount namespace).
fn is_mount_point(dir: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let d = dir.to_string_lossy();
    mounts.lines().any(|l| l.split(' ').nth(4) == Some(&*d))
}
