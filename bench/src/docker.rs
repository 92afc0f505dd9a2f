//! Part 3: `docker run --rm` on a Switchyard macvlan network against the
//! built-in macvlan driver on the same parent, interleaved, on a real dockerd
//! in a namespace of the bench's own.

use crate::interrupt::check as check_interrupt;
use crate::machine;
use crate::pluginlog::{PluginLog, RUST_LOG};
use crate::stats::{Table, f3, median, median_ci95, summarize_ms};
use crate::{Args, Report};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use switchyard_integration_tests::dockerd::{Dockerd, IMAGE};
use switchyard_integration_tests::{Netns, Plugin};

const PARENT: &str = "bdp0";
const PEER: &str = "bdp1";
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// `docker run --rm --network NET IMAGE true`: wall time, run directly
/// (no `timeout` wrapper in the timed path; a watchdog thread instead).
pub fn docker_run(d: &Dockerd, network: &str) -> Duration {
    let mut cmd = Command::new(d.engine.cli_bin());
    cmd.arg("-H")
        .arg(format!("unix://{}", d.socket().display()))
        .args(["run", "--rm", "--network", network, IMAGE, "true"])
        .env("DOCKER_CONFIG", d.base().join("cli"))
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let t = Instant::now();
    let child = cmd.spawn().expect("run the docker CLI");
    let pid = child.id();
    let (tx, rx) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(RUN_TIMEOUT) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    });
    let out = child.wait_with_output().expect("wait for the docker CLI");
    let d_ = t.elapsed();
    drop(tx);
    let _ = watchdog.join();
    assert!(
        out.status.success(),
        "docker run --network {network} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    d_
}

pub fn part3(args: &Args, report: &mut Report) {
    let engine = args.engine;
    eprintln!(
        "[bench] part 3: docker run, Engine {}, {} pairs",
        engine.label(),
        args.pairs
    );
    let ns = Netns::new("bdock");
    ns.veth(PARENT, PEER);
    let plugin = Plugin::start_with(
        &ns,
        &[("SWITCHYARD__LOG__LEVEL", "info"), ("RUST_LOG", RUST_LOG)],
    );
    let mut log = PluginLog::new(plugin.log.clone());
    let d = Dockerd::start(engine, &ns);
    let server = d.docker_out(&["version", "--format", "{{.Server.Version}}"]);
    let (sy, mv) = ("bench-switchyard", "bench-builtin");
    d.docker_out(&[
        "network",
        "create",
        "-d",
        &plugin.name,
        "--subnet",
        "198.18.0.0/24",
        "-o",
        "backend=macvlan",
        "-o",
        &format!("parent={PARENT}"),
        sy,
    ]);
    d.docker_out(&[
        "network",
        "create",
        "-d",
        "macvlan",
        "--subnet",
        "198.18.1.0/24",
        "-o",
        &format!("parent={PARENT}"),
        mv,
    ]);
    // Warm-up: image layers, first-use paths in dockerd and in the plugin.
    for _ in 0..3 {
        check_interrupt();
        docker_run(&d, sy);
        docker_run(&d, mv);
    }
    log.take();

    let mut a = Vec::new(); // switchyard, seconds
    let mut b = Vec::new(); // built-in
    let mut ratios = Vec::new();
    let mut plugin_ms = Vec::new();
    let mut calls_seen = 0usize;
    let load_start = machine::loadavg();
    for i in 0..args.pairs {
        let mut one = |net: &str| {
            check_interrupt();
            let t = docker_run(&d, net).as_secs_f64();
            if net == sy {
                // --rm: the CLI returns after removal, so all eight calls are logged.
                let h = log.take();
                calls_seen += h.len();
                plugin_ms.push(h.iter().map(|c| c.us).sum::<u64>() as f64 / 1000.0);
            }
            t
        };
        // ABBA ordering: neither variant always goes first.
        let (ta, tb) = if i % 2 == 0 {
            let ta = one(sy);
            (ta, one(mv))
        } else {
            let tb = one(mv);
            (one(sy), tb)
        };
        a.push(ta);
        b.push(tb);
        ratios.push(ta / tb);
        if (i + 1) % 10 == 0 {
            eprintln!(
                "[bench]   {}/{} pairs, median ratio so far {:.3}",
                i + 1,
                args.pairs,
                median(&ratios)
            );
        }
    }
    let load_end = machine::loadavg();

    let mut t = Table::new(&["variant", "runs", "median s", "mean s", "min s", "max s"]);
    for (label, v) in [
        (format!("Switchyard macvlan (`-d {}`)", plugin.name), &a),
        ("built-in `macvlan`".to_string(), &b),
    ] {
        let s = summarize_ms(v);
        let min = v.iter().cloned().fold(f64::MAX, f64::min);
        t.row(vec![
            label,
            s.n.to_string(),
            f3(median(v)),
            f3(s.mean),
            f3(min),
            f3(s.max),
        ]);
    }
    let mut sorted = ratios.clone();
    sorted.sort_by(f64::total_cmp);
    let q =
        |p: f64| sorted[((p * (sorted.len() - 1) as f64).round() as usize).min(sorted.len() - 1)];
    let faster = ratios.iter().filter(|r| **r < 1.0).count();
    let mut r = Table::new(&["paired comparison", "value"]);
    r.row(vec!["pairs".into(), ratios.len().to_string()]);
    r.row(vec![
        "**median of per-pair ratios switchyard / built-in**".into(),
        format!("**{:.3}**", median(&ratios)),
    ]);
    r.row(vec![
        "95 % confidence interval of that median (order statistics)".into(),
        median_ci95(&ratios)
            .map(|(lo, hi)| format!("{lo:.3} – {hi:.3}"))
            .unwrap_or_else(|| "too few pairs".into()),
    ]);
    r.row(vec![
        "ratio quartiles (25 % / 75 %)".into(),
        format!("{:.3} / {:.3}", q(0.25), q(0.75)),
    ]);
    r.row(vec![
        "ratio of the medians".into(),
        format!("{:.3}", median(&a) / median(&b)),
    ]);
    r.row(vec![
        "pairs where Switchyard was faster".into(),
        format!("{faster} of {}", ratios.len()),
    ]);
    r.row(vec![
        "median paired difference switchyard − built-in".into(),
        format!(
            "{:+.1} ms",
            median(
                &a.iter()
                    .zip(&b)
                    .map(|(x, y)| (x - y) * 1000.0)
                    .collect::<Vec<_>>()
            )
        ),
    ]);
    r.row(vec![
        "plugin handler time per Switchyard run (sum over the calls it served), median / max"
            .into(),
        format!(
            "{} / {} ms ({} calls logged for {} runs)",
            f3(median(&plugin_ms)),
            f3(plugin_ms.iter().cloned().fold(0.0, f64::max)),
            calls_seen,
            a.len()
        ),
    ]);
    r.row(vec![
        "load average before / after".into(),
        format!("{load_start} → {load_end}"),
    ]);
    let out = format!(
        "## 3. `docker run --rm --network NET {IMAGE} true`, Switchyard vs built-in macvlan\n\n\
         Engine {server} (dockerd in a namespace of the bench's own, vfs storage), both networks on the same veth parent. \
         Wall time of the `docker` CLI, runs interleaved in pairs (order alternating ABBA), after 3 warm-up runs each.\n\n{}\n{}",
        t.render(),
        r.render()
    );
    report.emit(&out);
    drop(d);
    drop(plugin);
    drop(ns);
}
