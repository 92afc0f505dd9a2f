//! Facts about the machine and about processes.

use std::process::Command;

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn sh(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// `key: value` from a /proc file such as /proc/meminfo.
fn proc_field(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find(|l| l.split(':').next().map(str::trim) == Some(key))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

pub fn date_utc() -> String {
    sh("date", &["-u", "+%Y-%m-%d %H:%M:%S UTC"])
}

pub fn loadavg() -> String {
    read("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The markdown block at the top of the output.
pub fn facts(state_dir_fs: &str, plugin: &str) -> String {
    let cpuinfo = read("/proc/cpuinfo");
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let model = proc_field(&cpuinfo, "model name").unwrap_or_else(|| "?".into());
    let mem_kb: u64 = proc_field(&read("/proc/meminfo"), "MemTotal")
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0);
    format!(
        "## Machine\n\n\
         | fact | value |\n|---|---|\n\
         | date | {} |\n\
         | nproc | {nproc} |\n\
         | CPU | {model} |\n\
         | kernel | {} |\n\
         | memory | {:.1} GiB |\n\
         | load average at start | {} |\n\
         | plugin | {plugin} |\n\
         | plugin state_dir filesystem | {state_dir_fs} (redb, fsync per commit) |\n",
        date_utc(),
        read("/proc/sys/kernel/osrelease").trim(),
        mem_kb as f64 / 1024.0 / 1024.0,
        loadavg(),
    )
}

/// The workspace's commit, marked when the work tree has changes.
pub fn workspace_commit() -> String {
    let root = switchyard_integration_tests::workspace_root();
    let root = root.to_string_lossy();
    let rev = sh("git", &["-C", &root, "rev-parse", "--short", "HEAD"]);
    let dirty = !sh(
        "git",
        &["-C", &root, "status", "--porcelain", "--untracked-files=no"],
    )
    .is_empty();
    format!("{rev}{}", if dirty { " + uncommitted changes" } else { "" })
}

/// Filesystem type of the mount holding `path` (from /proc/self/mounts).
pub fn fs_type(path: &std::path::Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_owned());
    read("/proc/self/mounts")
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 2 && path.starts_with(f[1])).then(|| (f[1].len(), f[2].to_string()))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, t)| t)
        .unwrap_or_else(|| "?".into())
}

/// (VmRSS, VmHWM) of a process in KiB.
pub fn rss_kib(pid: u32) -> (u64, u64) {
    let s = read(&format!("/proc/{pid}/status"));
    let kib = |k: &str| {
        proc_field(&s, k)
            .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
            .unwrap_or(0)
    };
    (kib("VmRSS"), kib("VmHWM"))
}

/// Number of threads of a process.
pub fn threads(pid: u32) -> u64 {
    proc_field(&read(&format!("/proc/{pid}/status")), "Threads")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The process's executable name, to make sure a pid is what we think.
pub fn comm(pid: u32) -> String {
    read(&format!("/proc/{pid}/comm")).trim().to_string()
}
