//! `switchyard-bench cluster`: the 20-host scale benchmark. The run itself
//! is `switchyard_integration_tests::cluster_scale` (CI runs it small, so
//! this code path cannot rot); this file parses the arguments and prints
//! the tables.

use crate::machine;
use crate::stats::{Table, f3, summarize_ms};
use crate::{Report, release_binary};
use std::path::PathBuf;
use switchyard_integration_tests::cluster_scale::{self, ScaleConfig, ScaleResult};

const USAGE: &str = "usage: switchyard-bench cluster [--hosts N] [--per-host N] [--pace-ms N]
                        [--lease-ttl S] [--gc-grace S] [--resync S] [--settle S] [--out FILE]

  --hosts N      emulated hosts (namespaces, one plugin each), default 20
  --per-host N   endpoints made on each host, default 50
  --pace-ms N    pause after each endpoint, default 100
  --lease-ttl S  [cluster] lease_ttl of every plugin, default 15
  --gc-grace S   [cluster] gc_grace, default 30
  --resync S     [cluster] resync_interval, default 30 (production)
  --settle S     how long kernels may take to converge / be cleaned, default 120
  --out FILE     also append the tables to FILE
Runs as root; needs iproute2, etcd-server, etcd-client, iptables, iputils-ping.";

fn parse(args: &[String]) -> (ScaleConfig, Option<PathBuf>, String) {
    let mut cfg = ScaleConfig::new(20, 50);
    let mut out = None;
    let fail = |m: String| -> ! {
        eprintln!("switchyard-bench cluster: {m}\n{USAGE}");
        std::process::exit(2)
    };
    let mut flags = String::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .unwrap_or_else(|| fail(format!("{a} needs a value")))
        };
        if a == "--out" {
            out = Some(PathBuf::from(value()));
            continue;
        }
        if a == "-h" || a == "--help" {
            println!("{USAGE}");
            std::process::exit(0)
        }
        let v = value();
        let n: u64 = v
            .parse()
            .unwrap_or_else(|_| fail(format!("{a}: {v:?} is not a number")));
        match a.as_str() {
            "--hosts" if n >= 2 => cfg.hosts = n as usize,
            "--per-host" if n >= 1 => cfg.per_host = n as usize,
            "--pace-ms" => cfg.pace_ms = n,
            "--lease-ttl" if n >= 2 => cfg.lease_ttl = n,
            "--gc-grace" => cfg.gc_grace = n,
            "--resync" if n >= 1 => cfg.resync_interval = n,
            "--settle" if n >= 1 => cfg.settle_secs = n as f64,
            "--hosts" | "--per-host" | "--lease-ttl" | "--resync" | "--settle" => {
                fail(format!("{a}: {v} is too small"))
            }
            other => fail(format!("unknown argument {other:?}")),
        }
        flags += &format!(" {a} {v}");
    }
    if cfg.gc_grace < cfg.lease_ttl {
        fail(format!(
            "--gc-grace {} must be at least --lease-ttl {} (the plugin refuses otherwise)",
            cfg.gc_grace, cfg.lease_ttl
        ));
    }
    (cfg, out, flags)
}

fn secs(v: Option<f64>) -> String {
    v.map_or("not within the run".into(), |s| format!("{s:.2}"))
}

/// The tables for one run.
pub fn render(r: &ScaleResult, cfg: &ScaleConfig) -> String {
    let n = r.made.len();
    let others = r.hosts - 1;
    let conv: Vec<f64> = r.made.iter().filter_map(|m| m.converged_ms).collect();
    let answered: Vec<f64> = r.made.iter().map(|m| m.answered_ms).collect();
    let after_join: Vec<f64> = r
        .made
        .iter()
        .filter_map(|m| m.converged_ms.map(|c| c - m.answered_ms))
        .collect();
    let unconverged: Vec<String> = r
        .made
        .iter()
        .filter(|m| m.converged_ms.is_none())
        .map(|m| format!("{} (missing on {})", m.ip, m.missing_on.join(",")))
        .collect();
    let mut t = Table::new(&[
        "ms from CreateEndpoint's request",
        "n",
        "p50",
        "p99",
        "mean",
        "max",
    ]);
    for (what, v) in [
        ("CreateEndpoint + Join answered", &answered),
        (
            &*format!("**programmed on all {others} other hosts** (neighbour + FDB)"),
            &conv,
        ),
        ("… of which after Join was answered", &after_join),
    ] {
        let s = summarize_ms(v);
        t.row(vec![
            what.to_string(),
            s.n.to_string(),
            f3(s.p50),
            f3(s.p99),
            f3(s.mean),
            f3(s.max),
        ]);
    }
    let p99 = summarize_ms(&conv).p99;
    let mut w = Table::new(&[
        "etcd writes while the endpoints were made",
        "count",
        "per endpoint",
    ]);
    w.row(vec![
        "store revisions (write transactions)".into(),
        r.revisions.to_string(),
        format!("{:.2}", r.revisions as f64 / n as f64),
    ]);
    for (k, v) in &r.writes_by_kind {
        w.row(vec![
            format!("watch events `{k}`"),
            v.to_string(),
            format!("{:.2}", *v as f64 / n as f64),
        ]);
    }
    let rss: Vec<f64> = r.memory.iter().map(|m| m.1 as f64 / 1024.0).collect();
    let idle: Vec<f64> = r.memory.iter().map(|m| m.0 as f64 / 1024.0).collect();
    let hwm: Vec<f64> = r.memory.iter().map(|m| m.2 as f64 / 1024.0).collect();
    let remote: Vec<usize> = r.memory.iter().map(|m| m.3).collect();
    let mut m = Table::new(&[
        "plugin memory (all plugins)",
        "min MiB",
        "p50 MiB",
        "max MiB",
    ]);
    for (what, v) in [
        ("VmRSS idle (network created, no endpoint)", &idle),
        (
            &*format!(
                "VmRSS with {} local + {} remote endpoints",
                r.per_host,
                (r.hosts - 1) * r.per_host
            ),
            &rss,
        ),
        ("VmHWM (peak)", &hwm),
    ] {
        let s = summarize_ms(v);
        let min = v.iter().cloned().fold(f64::INFINITY, f64::min);
        m.row(vec![
            what.to_string(),
            format!("{min:.1}"),
            format!("{:.1}", s.p50),
            format!("{:.1}", s.max),
        ]);
    }
    let gc = &r.gc;
    let clean: Vec<f64> = gc.kernel_clean.iter().flatten().cloned().collect();
    let all_clean =
        (clean.len() == gc.kernel_clean.len()).then(|| clean.iter().cloned().fold(0.0, f64::max));
    let first_clean = clean.iter().cloned().fold(f64::INFINITY, f64::min);
    let mut g = Table::new(&[&*format!("after SIGKILL of {}'s plugin", gc.host), "s"]);
    g.row(vec![
        "its `alive/` key gone (lease expired)".into(),
        secs(gc.alive_gone),
    ]);
    g.row(vec![
        format!("its {} endpoint records deleted from etcd", gc.endpoints),
        secs(gc.records_gone),
    ]);
    g.row(vec![
        format!("first of the {others} other kernels clean"),
        if clean.is_empty() {
            "–".into()
        } else {
            format!("{first_clean:.2}")
        },
    ]);
    g.row(vec![
        format!(
            "**all {others} other kernels clean** (its {} neighbour + FDB entries gone)",
            gc.endpoints
        ),
        secs(all_clean),
    ]);
    format!(
        "### Cluster scale: {} hosts × {} endpoints (`switchyard-bench cluster`)\n\n\
         Hosts are network namespaces, each with an `uplink` veth into one bridge (the underlay) \
         in a namespace where a single etcd member runs; one release plugin per host \
         (`[cluster]` lease_ttl {} s, gc_grace {} s, resync_interval {} s; log level {}). One \
         VXLAN network (VNI {}) on every host. Endpoints are made at protocol level \
         (RequestAddress + CreateEndpoint + Join; the link stays in the host namespace), one at a \
         time, round-robin over the hosts, {} ms apart, until each host has {}. Creating all {n} \
         took {:.1} s. Times of kernel changes come from `ip -ts monitor neigh` in every host \
         namespace (it reports neighbour and FDB entries); afterwards every kernel was compared \
         entry by entry with the model ({} neighbours + {} FDB entries each): {}.\n\n\
         #### Convergence after a change\n\n{}\n{}\
         **Goal p99 < 500 ms: {}** (p99 {:.1} ms).\n\n\
         #### etcd writes per endpoint\n\n{}\n\
         Goal 1 write per endpoint: {}. Each endpoint is two writes, in two calls: \
         RequestAddress claims its address cluster-wide (`ipam/…`, compare-and-swap) and \
         CreateEndpoint publishes the endpoint (`endpoints/…`).\n\n\
         #### Memory\n\n{}\n\
         Remote endpoints each plugin reported in `status` (`remote_endpoints`): {}.\n\n\
         #### Dead host: SIGKILL, then garbage collection\n\n{}\n\
         The collection waits for the lease to expire (lease_ttl {} s) and then the grace \
         period (gc_grace {} s) and runs at the next housekeeping tick of any surviving host \
         (every resync_interval, {} s, each host on its own phase); so with the production \
         values (15 s, 300 s, 30 s) expect about 5–6 minutes. The surviving kernels afterwards \
         equal the model without the dead host: {}.\n",
        r.hosts,
        r.per_host,
        r.lease_ttl,
        r.gc_grace,
        r.resync_interval,
        cfg.log_level,
        cluster_scale::VNI,
        cfg.pace_ms,
        r.per_host,
        r.create_secs,
        (r.hosts - 1) * r.per_host,
        (r.hosts - 1) * r.per_host,
        if r.kernels_equal {
            "equal"
        } else {
            "NOT equal within the settle time"
        },
        t.render(),
        if unconverged.is_empty() {
            String::new()
        } else {
            format!(
                "Endpoints never programmed everywhere: {} ({}).\n\n",
                unconverged.len(),
                unconverged
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        },
        if p99 < 500.0 && unconverged.is_empty() {
            "met"
        } else {
            "NOT met"
        },
        p99,
        w.render(),
        if (r.revisions as f64 / n as f64) <= 1.0 {
            "met"
        } else {
            "NOT met"
        },
        m.render(),
        if remote.iter().all(|x| *x == remote[0]) {
            format!("{} on every host", remote[0])
        } else {
            format!("{remote:?}")
        },
        g.render(),
        r.lease_ttl,
        r.gc_grace,
        r.resync_interval,
        if gc.kernels_equal { "yes" } else { "NO" },
    )
}

pub fn main(args: &[String]) {
    let (cfg, out, flags) = parse(args);
    switchyard_integration_tests::prereq::require_root();
    crate::interrupt::install();
    let (_bin, plugin_desc) = release_binary();
    // SAFETY: still single-threaded.
    unsafe { std::env::remove_var("RUST_LOG") };
    let mut report = Report { out };
    let state_fs = machine::fs_type(&std::env::temp_dir());
    report.emit(&format!(
        "# Switchyard cluster benchmark\n\n`cargo run --release -p switchyard-bench -- cluster{flags}`\n\n{}",
        machine::facts(&state_fs, &plugin_desc),
    ));
    let t0 = std::time::Instant::now();
    let (r, c) = cluster_scale::run(&cfg, &mut |l| {
        eprintln!("[cluster {:6.1}s] {l}", t0.elapsed().as_secs_f64());
        crate::interrupt::check();
    });
    report.emit(&render(&r, &cfg));
    report.emit(&format!(
        "Ended {}, load average {}.\n",
        machine::date_utc(),
        machine::loadavg()
    ));
    eprintln!("[cluster] removing the cluster");
    drop(c);
}
