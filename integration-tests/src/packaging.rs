//! What the packaging tests share: the release binary, the managed-plugin
//! directory `scripts/build-plugin.sh` makes, the plugin's process as the
//! kernel sees it, and a read-only registry serving a plugin inside a test
//! namespace (`docker plugin upgrade` pulls; there is no registry here).

use crate::netns::Netns;
use crate::prereq::{require_command, run};
use crate::workspace_root;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The release binary the packages carry: `$SWITCHYARD_RELEASE_BIN`, else
/// `target/release/switchyard`, built once per test process when missing
/// (`scripts/test.sh` builds it beforehand).
pub fn release_binary() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(p) = std::env::var("SWITCHYARD_RELEASE_BIN") {
            return PathBuf::from(p);
        }
        let root = workspace_root();
        let target = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| root.join("target"));
        let bin = target.join("release/switchyard");
        if !bin.is_file() {
            let status = Command::new(env!("CARGO"))
                .args(["build", "-q", "--release", "-p", "switchyard"])
                .current_dir(&root)
                .status()
                .expect("run cargo build --release");
            assert!(
                status.success(),
                "cargo build --release -p switchyard failed"
            );
        }
        bin
    })
    .clone()
}

/// Runs `f` on a thread of its own in a mount namespace of its own (a
/// slave of the host's) where `plugins` is bound over /run/docker/plugins.
/// Every process `f` starts (dockerd, containerd, a plugin) inherits it, so
/// what dockerd puts in /run/docker/plugins — the v1 plugin sockets it
/// looks for, and a managed plugin's socket directory, which dockerd keeps
/// there whatever its --exec-root — lands in the test's directory, not
/// the machine's. Namespaces must be made (and dropped) outside `f`.
pub fn with_private_plugin_dir<T: Send>(plugins: &Path, f: impl FnOnce() -> T + Send) -> T {
    require_command("mount", "mount");
    std::fs::create_dir_all(plugins).expect("create the test's plugin directory");
    if !Path::new("/run/docker/plugins").is_dir() {
        // A mount point is needed; an empty directory is what dockerd makes.
        std::fs::create_dir_all("/run/docker/plugins").expect("create /run/docker/plugins");
    }
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
                .expect("unshare the mount namespace");
            run("mount", &["--make-rslave", "/"]);
            run(
                "mount",
                &["--bind", plugins.to_str().unwrap(), "/run/docker/plugins"],
            );
            f()
        })
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

/// Runs `scripts/build-plugin.sh --bin BIN OUT`: OUT/config.json and OUT/rootfs.
pub fn build_plugin_dir(bin: &Path, out: &Path) {
    require_command("ldd", "libc-bin");
    run(
        "bash",
        &[
            workspace_root()
                .join("scripts/build-plugin.sh")
                .to_str()
                .unwrap(),
            "--bin",
            bin.to_str().unwrap(),
            out.to_str().unwrap(),
        ],
    );
    assert!(out.join("config.json").is_file() && out.join("rootfs/usr/bin/switchyard").is_file());
}

/// The PIDs of the processes running `switchyard serve` whose parent (a
/// containerd shim) names `base` on its command line: a managed plugin of
/// the dockerd whose directories are below `base`.
pub fn plugin_pids_below(base: &Path) -> Vec<i32> {
    let base = base.to_string_lossy().into_owned();
    let cmdline = |pid: i32| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .unwrap_or_default()
    };
    let ppid = |pid: i32| -> Option<i32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| {
        let pid: i32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        if !cmdline(pid).starts_with("/usr/bin/switchyard serve") {
            return None;
        }
        cmdline(ppid(pid)?).contains(&base).then_some(pid)
    })
    .collect()
}

/// A capability set from /proc/PID/status (`CapEff`, `CapBnd`, …).
pub fn capabilities(pid: i32, which: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{which}:")))
        .unwrap_or_else(|| panic!("no {which} in /proc/{pid}/status"))
        .trim();
    u64::from_str_radix(hex, 16).expect("hex capability set")
}

/// Engine 29 gives a managed plugin a time namespace (its
/// `--feature time-namespaces=false` covers containers only), which Debian
/// 12's runc 1.1 cannot create ("namespace {"time" ""} does not exist").
/// This puts a `runc` first in the PATH of `d`'s containerd shims (the
/// harness's `pathbin`; the shim looks runc up when it starts a task) that
/// drops the time namespace from the bundle's config.json and runs the
/// system's runc. Only for the test machine's old runc; a runc ≥ 1.2 needs
/// nothing.
pub fn runc_without_time_namespace(d: &crate::dockerd::Dockerd) {
    let runc = d.base().join("pathbin/runc");
    std::fs::write(
        &runc,
        r#"#!/bin/sh
prev=
for a in "$@"; do
    b=
    case $prev in --bundle|-b) b=$a ;; esac
    case $a in --bundle=*) b=${a#--bundle=} ;; esac
    if [ -n "$b" ] && [ -f "$b/config.json" ]; then
        sed -i -e 's/{"type":"time"},//g' -e 's/,{"type":"time"}//g' -e 's/{"type":"time"}//g' "$b/config.json"
    fi
    prev=$a
done
exec /usr/bin/runc "$@"
"#,
    )
    .expect("write the runc wrapper");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&runc, std::fs::Permissions::from_mode(0o755)).unwrap();
}

pub const CAP_NET_ADMIN: u32 = 12;
pub const CAP_SYS_ADMIN: u32 = 21;

/// `sha256sum FILE` as `sha256:HEX`.
fn sha256(path: &Path) -> String {
    require_command("sha256sum", "coreutils");
    let out = run("sha256sum", &[path.to_str().unwrap()]);
    format!("sha256:{}", out.split_whitespace().next().unwrap())
}

/// One plugin in a registry: its manifest and blobs, by digest.
struct Repo {
    name: String,
    tag: String,
    manifest: Vec<u8>,
    manifest_digest: String,
    blobs: Vec<(String, PathBuf)>,
}

/// A read-only Docker registry (HTTP, `127.0.0.1` inside a test namespace:
/// dockerd treats loopback registries as insecure) serving one plugin made
/// from a `build-plugin.sh` directory, as `docker plugin push` would have
/// stored it: a schema-2 manifest, the plugin config (with the rootfs
/// layer's diff id) and one gzipped layer. Stops on drop.
pub struct PluginRegistry {
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PluginRegistry {
    /// Serves `dir` (config.json + rootfs) as `127.0.0.1:PORT/NAME:TAG`;
    /// blobs are written to `work`.
    pub fn serve(ns: &Netns, dir: &Path, name: &str, tag: &str, work: &Path) -> PluginRegistry {
        require_command("tar", "tar");
        require_command("gzip", "gzip");
        std::fs::create_dir_all(work).unwrap();
        let layer = work.join("layer.tar");
        run(
            "tar",
            &[
                "-C",
                dir.join("rootfs").to_str().unwrap(),
                "-cf",
                layer.to_str().unwrap(),
                ".",
            ],
        );
        let diff_id = sha256(&layer);
        run("gzip", &["-1", "-n", "-f", layer.to_str().unwrap()]);
        let layer_gz = work.join("layer.tar.gz");
        let layer_digest = sha256(&layer_gz);
        let layer_size = std::fs::metadata(&layer_gz).unwrap().len();

        let mut config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
        config["rootfs"] = serde_json::json!({"type": "layers", "diff_ids": [diff_id]});
        let config_path = work.join("config.json");
        std::fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();
        let config_digest = sha256(&config_path);
        let config_size = std::fs::metadata(&config_path).unwrap().len();

        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.plugin.v1+json",
                "size": config_size,
                "digest": config_digest,
            },
            "layers": [{
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "size": layer_size,
                "digest": layer_digest,
            }],
        }))
        .unwrap();
        let manifest_path = work.join("manifest.json");
        std::fs::write(&manifest_path, &manifest).unwrap();
        let repo = Arc::new(Repo {
            name: name.into(),
            tag: tag.into(),
            manifest_digest: sha256(&manifest_path),
            manifest,
            blobs: vec![(config_digest, config_path), (layer_digest, layer_gz)],
        });

        // The listener must belong to the test's namespace (where dockerd
        // runs): bind it on a thread that entered the namespace.
        let (tx, rx) = std::sync::mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let ns_path = ns.path();
        let thread = std::thread::spawn(move || {
            let f = std::fs::File::open(&ns_path).expect("open the namespace");
            nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET)
                .expect("enter the namespace");
            let l = TcpListener::bind("127.0.0.1:0").expect("bind the registry");
            l.set_nonblocking(true).unwrap();
            tx.send(l.local_addr().unwrap().port()).unwrap();
            while !stop2.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((s, _)) => {
                        let repo = repo.clone();
                        std::thread::spawn(move || {
                            let _ = handle(s, &repo);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the registry listens");
        PluginRegistry {
            port,
            stop,
            thread: Some(thread),
        }
    }

    /// `127.0.0.1:PORT/NAME:TAG`.
    pub fn reference(&self, name: &str, tag: &str) -> String {
        format!("127.0.0.1:{}/{name}:{tag}", self.port)
    }
}

impl Drop for PluginRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn handle(s: TcpStream, repo: &Repo) -> std::io::Result<()> {
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut r = BufReader::new(s.try_clone()?);
    let mut w = s;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
            // Not HTTP (e.g. a TLS hello before the plain-HTTP fallback).
            return Ok(());
        };
        let (method, path) = (method.to_string(), path.to_string());
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h)? == 0 {
                return Ok(());
            }
            if h == "\r\n" || h == "\n" {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; len];
        r.read_exact(&mut body)?;
        let head = method == "HEAD";
        let manifests = format!("/v2/{}/manifests/", repo.name);
        let blobs = format!("/v2/{}/blobs/", repo.name);
        if path == "/v2/" || path == "/v2" {
            respond(&mut w, head, 200, "application/json", None, b"{}")?;
        } else if let Some(reference) = path.strip_prefix(&manifests) {
            if reference == repo.tag || reference == repo.manifest_digest {
                respond(
                    &mut w,
                    head,
                    200,
                    "application/vnd.docker.distribution.manifest.v2+json",
                    Some(&repo.manifest_digest),
                    &repo.manifest,
                )?;
            } else {
                not_found(&mut w, head, "MANIFEST_UNKNOWN")?;
            }
        } else if let Some(digest) = path.strip_prefix(&blobs) {
            match repo.blobs.iter().find(|(d, _)| d == digest) {
                Some((d, p)) => {
                    let size = std::fs::metadata(p)?.len();
                    write!(
                        w,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {size}\r\nDocker-Content-Digest: {d}\r\nDocker-Distribution-API-Version: registry/2.0\r\n\r\n"
                    )?;
                    if !head {
                        std::io::copy(&mut std::fs::File::open(p)?, &mut w)?;
                    }
                }
                None => not_found(&mut w, head, "BLOB_UNKNOWN")?,
            }
        } else {
            not_found(&mut w, head, "NAME_UNKNOWN")?;
        }
        w.flush()?;
    }
}

fn not_found(w: &mut TcpStream, head: bool, code: &str) -> std::io::Result<()> {
    let body = format!(
        r#"{{"errors":[{{"code":"{code}","message":"not served by the test registry"}}]}}"#
    );
    respond(w, head, 404, "application/json", None, body.as_bytes())
}

fn respond(
    w: &mut TcpStream,
    head: bool,
    status: u16,
    ctype: &str,
    digest: Option<&str>,
    body: &[u8],
) -> std::io::Result<()> {
    let reason = if status == 200 { "OK" } else { "Not Found" };
    let digest = digest
        .map(|d| format!("Docker-Content-Digest: {d}\r\n"))
        .unwrap_or_default();
    write!(
        w,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n{digest}Docker-Distribution-API-Version: registry/2.0\r\n\r\n",
        body.len()
    )?;
    if !head {
        w.write_all(body)?;
    }
    Ok(())
}
