//! `switchyard-bench`: what the plugin costs a container, on this machine.
//!
//! 1. The plugin's time for one container lifecycle over its socket (the
//!    eight calls dockerd makes, with real macvlan links), per call and in
//!    total, plus the deferred kernel work of deleting the links.
//! 2. The plugin's resident memory idle, with 1,000 endpoints and after.
//! 3. `docker run --rm` on a Switchyard macvlan network vs Docker's built-in
//!    macvlan driver on the same parent, interleaved, on a real dockerd.
//! 4. Multi-host VXLAN on emulated hosts with a real etcd: convergence of a
//!    new endpoint, TCP throughput vs a plain veth pair, and 3 hosts × 1,000
//!    endpoints (kernel programming time, plugin restart resync, memory).
//!
//! Everything runs in network namespaces the bench creates and removes;
//! the host's interfaces, routes and firewall are never touched. Prints
//! markdown tables on stdout (progress on stderr); `--out FILE` appends the
//! same tables to FILE.
//!
//! ```text
//! cargo run --release -p switchyard-bench -- \
//!     [--lifecycles N] [--endpoints N] [--pairs N] [--engine 20.10|28|29] [--skip-docker] [--out FILE]
//!     [--load N]
//!     [--converge N] [--iperf-runs N] [--iperf-secs N] [--scale N] [--scale-wait S] [--skip-vxlan | --vxlan-only]
//! cargo run --release -p switchyard-bench -- cluster [--hosts N] [--per-host N] …
//! ```
//!
//! `encryption` compares encrypted and plain VXLAN throughput inside the
//! UML kernel (encryption.rs).
//!
//! `cluster` is the 20-host scale benchmark (cluster.rs): convergence,
//! etcd writes per endpoint, memory and dead-host collection.

mod cluster;
mod dhcp;
mod docker;
mod encryption;
mod interrupt;
mod lifecycle;
mod load;
mod machine;
mod nsthread;
mod pluginlog;
mod stats;
mod vxlan;
mod wire;

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use switchyard_integration_tests::dockerd::Engine;

const USAGE: &str = "usage: switchyard-bench [--lifecycles N] [--endpoints N] [--block N] [--pairs N] [--engine 20.10|28|29] [--skip-docker]
                        [--converge N] [--iperf-runs N] [--iperf-secs N] [--scale N] [--scale-wait S] [--skip-vxlan | --vxlan-only] [--out FILE]

  --lifecycles N   container lifecycles per mode (paced and back-to-back), default 1000
  --endpoints N    endpoints alive at once for the memory part, default 1000
  --block N        lifecycles per interleaved block, default 50
  --pairs N        docker run pairs (Switchyard, built-in macvlan), default 30
  --engine V       dockerd for part 3: 20.10 (default, Debian's docker.io), 28 or 29
  --skip-docker    leave out part 3
  --converge N     part 4a: endpoints whose convergence is timed, default 100
  --iperf-runs N   part 4b: iperf3 runs per path (interleaved), default 5
  --iperf-secs N   part 4b: seconds per iperf3 run, default 3
  --scale N        part 4c: endpoints per host (3 hosts), default 1000
  --scale-wait S   part 4c: seconds to wait for the kernels after the last Join, default 300
  --skip-vxlan     leave out part 4 (multi-host VXLAN)
  --vxlan-only     run only part 4
  --out FILE       also append the tables to FILE
  --dhcp-only      run only part 6: docker run on a DHCP network vs a static one (--pairs, --engine)
  --load N         run only part 5: N endpoints on one host (cost flat?, restart, memory)
switchyard-bench cluster --help: the 20-host scale benchmark
Runs as root; needs iproute2, for part 3 docker.io, containerd, runc, busybox-static,
for part 4 etcd-server, etcd-client, iperf3, iptables, iputils-ping.";

pub struct Args {
    pub lifecycles: usize,
    pub endpoints: usize,
    pub block: usize,
    pub pairs: usize,
    pub engine: Engine,
    pub skip_docker: bool,
    pub converge: usize,
    pub iperf_runs: usize,
    pub iperf_secs: usize,
    pub scale: usize,
    pub scale_wait: usize,
    pub skip_vxlan: bool,
    pub vxlan_only: bool,
    pub out: Option<PathBuf>,
    /// Part 5 only, with this many endpoints (0: parts 1–4).
    pub load: usize,
    /// Part 6 only (DHCP vs static addressing).
    pub dhcp_only: bool,
}

impl Args {
    fn parse() -> Args {
        let mut a = Args {
            lifecycles: 1000,
            endpoints: 1000,
            block: 50,
            pairs: 30,
            engine: Engine::V20,
            skip_docker: false,
            converge: 100,
            iperf_runs: 5,
            iperf_secs: 3,
            scale: 1000,
            scale_wait: 300,
            skip_vxlan: false,
            vxlan_only: false,
            out: None,
            load: 0,
            dhcp_only: false,
        };
        let mut it = std::env::args().skip(1);
        let fail = |m: String| -> ! {
            eprintln!("switchyard-bench: {m}\n{USAGE}");
            std::process::exit(2)
        };
        while let Some(arg) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .unwrap_or_else(|| fail(format!("{name} needs a value")))
            };
            let mut number = |name: &str| -> usize {
                let v = value(name);
                v.parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .unwrap_or_else(|| fail(format!("{name}: {v:?} is not a positive number")))
            };
            match arg.as_str() {
                "--lifecycles" => a.lifecycles = number("--lifecycles"),
                "--endpoints" => a.endpoints = number("--endpoints"),
                "--block" => a.block = number("--block"),
                "--pairs" => a.pairs = number("--pairs"),
                "--engine" => {
                    let v = value("--engine");
                    a.engine = Engine::from_label(&v)
                        .unwrap_or_else(|| fail(format!("--engine: {v:?}; use 20.10, 28 or 29")))
                }
                "--skip-docker" => a.skip_docker = true,
                "--converge" => a.converge = number("--converge"),
                "--iperf-runs" => a.iperf_runs = number("--iperf-runs"),
                "--iperf-secs" => a.iperf_secs = number("--iperf-secs"),
                "--scale" => a.scale = number("--scale"),
                "--scale-wait" => a.scale_wait = number("--scale-wait"),
                "--skip-vxlan" => a.skip_vxlan = true,
                "--vxlan-only" => a.vxlan_only = true,
                "--out" => a.out = Some(PathBuf::from(value("--out"))),
                "--load" => a.load = number("--load"),
                "--dhcp-only" => a.dhcp_only = true,
                "-h" | "--help" => {
                    println!("{USAGE}");
                    std::process::exit(0)
                }
                other => fail(format!("unknown argument {other:?}")),
            }
        }
        if a.skip_vxlan && a.vxlan_only {
            fail("--skip-vxlan and --vxlan-only exclude each other".into());
        }
        a
    }
}

/// Where the tables go: stdout, and appended to `--out`.
pub struct Report {
    out: Option<PathBuf>,
}

impl Report {
    pub fn emit(&mut self, text: &str) {
        println!("{text}");
        let _ = std::io::stdout().flush();
        if let Some(p) = &self.out {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .unwrap_or_else(|e| panic!("open --out {}: {e}", p.display()));
            writeln!(f, "{text}").unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        }
    }
}

/// The release build of the plugin, freshly built; exported as
/// SWITCHYARD_BIN for the harness. An explicit SWITCHYARD_BIN is respected.
pub(crate) fn release_binary() -> (PathBuf, String) {
    if let Ok(p) = std::env::var("SWITCHYARD_BIN") {
        eprintln!("[bench] using SWITCHYARD_BIN={p}");
        let desc = format!("`{p}` (given by SWITCHYARD_BIN)");
        return (PathBuf::from(p), desc);
    }
    let root = switchyard_integration_tests::workspace_root();
    eprintln!("[bench] cargo build --release -p switchyard --bin switchyard");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let st = Command::new(cargo)
        .args([
            "build",
            "--release",
            "-q",
            "-p",
            "switchyard",
            "--bin",
            "switchyard",
        ])
        .current_dir(&root)
        .status()
        .expect("run cargo build");
    assert!(
        st.success(),
        "building the release switchyard binary failed"
    );
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    let bin = target.join("release/switchyard");
    assert!(bin.is_file(), "{} missing after the build", bin.display());
    // SAFETY: single-threaded here; nothing else reads the environment yet.
    unsafe { std::env::set_var("SWITCHYARD_BIN", &bin) };
    let desc = format!(
        "`{}`, release build of the work tree at commit {}",
        bin.display(),
        machine::workspace_commit()
    );
    (bin, desc)
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("cluster") {
        cluster::main(&argv[1..]);
        return;
    }
    if argv.first().map(String::as_str) == Some("encryption") {
        encryption::main(&argv[1..]);
        return;
    }
    let args = Args::parse();
    switchyard_integration_tests::prereq::require_root();
    interrupt::install();
    let (_bin, plugin_desc) = release_binary();
    // The plugin's log filter is set by the bench, not inherited.
    // SAFETY: still single-threaded.
    unsafe { std::env::remove_var("RUST_LOG") };
    let mut report = Report {
        out: args.out.clone(),
    };
    let state_fs = machine::fs_type(&std::env::temp_dir());
    let mut flags = String::new();
    for (flag, v, default) in [
        ("--lifecycles", args.lifecycles, 1000),
        ("--endpoints", args.endpoints, 1000),
        ("--block", args.block, 50),
        ("--pairs", args.pairs, 30),
        ("--converge", args.converge, 100),
        ("--iperf-runs", args.iperf_runs, 5),
        ("--iperf-secs", args.iperf_secs, 3),
        ("--scale", args.scale, 1000),
        ("--scale-wait", args.scale_wait, 300),
    ] {
        if v != default {
            flags += &format!(" {flag} {v}");
        }
    }
    if args.engine != Engine::V20 {
        flags += &format!(" --engine {}", args.engine.label());
    }
    if args.skip_docker {
        flags += " --skip-docker";
    }
    if args.skip_vxlan {
        flags += " --skip-vxlan";
    }
    if args.vxlan_only {
        flags += " --vxlan-only";
    }
    if args.dhcp_only {
        flags += " --dhcp-only";
    }
    let flags = if flags.is_empty() {
        flags
    } else {
        format!(" --{flags}")
    };
    report.emit(&format!(
        "# Switchyard benchmark\n\n`cargo run --release -p switchyard-bench{flags}`\n\n{}",
        machine::facts(&state_fs, &plugin_desc),
    ));
    if args.load > 0 {
        load::part5(&args, &mut report);
        return;
    }
    if args.dhcp_only {
        dhcp::part6(&args, &mut report);
        return;
    }
    if !args.vxlan_only {
        let p1 = lifecycle::part1(&args, &mut report);
        lifecycle::part2(&args, &mut report, p1.memory_rows);
        if !args.skip_docker {
            docker::part3(&args, &mut report);
        }
        let [paced, b2b, tmpfs] = p1.p50;
        let verdict = |v: f64| if v < 2.0 { "met" } else { "NOT met" };
        report.emit(&format!(
            "**Target (issue): lifecycle p50 < 2 ms.** Paced: {paced:.3} ms ({}); back-to-back: {b2b:.3} ms ({}); \
             paced with state on tmpfs: {tmpfs:.3} ms ({}). Load average at the end: {}.\n",
            verdict(paced),
            verdict(b2b),
            verdict(tmpfs),
            machine::loadavg()
        ));
    }
    if !args.skip_vxlan {
        vxlan::part4(&args, &mut report);
    }
}
