//! Part 5 (`--load N`): one host with N endpoints (created and joined, N
//! macvlan links on one parent). Is CreateEndpoint's and Join's cost flat
//! from 10 to N endpoints, how long does a restart take to reconcile N
//! endpoints before serving, and how much memory does the plugin hold?

use crate::interrupt::check as check_interrupt;
use crate::machine;
use crate::pluginlog::{RUST_LOG, parse_rfc3339};
use crate::stats::{Table, f3, ms, summarize};
use crate::wire::{self, Endpoint};
use crate::{Args, Report};
use std::time::{Duration, Instant};
use switchyard_integration_tests::{Netns, Plugin, random_id};

const PARENT: &str = "byl0";
const PEER: &str = "byl1";

/// Endpoint counts at which the cost is sampled: the `WINDOW` calls that
/// bring the count up to each.
fn milestones(n: usize) -> Vec<usize> {
    let mut m: Vec<usize> = [10, 100, 1000, 10_000, 100_000]
        .into_iter()
        .filter(|&x| x < n)
        .collect();
    m.push(n);
    m
}
/// The first row: endpoints 1–10; every other row: the last `WINDOW` calls
/// before its count (a contended machine needs the larger sample).
const FIRST: usize = 10;
const WINDOW: usize = 100;

/// Seconds from the plugin's first log line of a start (the VXLAN backend's
/// "VXLAN underlay", logged when the backends are built, before
/// reconciliation) to its "startup reconciliation done" line, for the last
/// start in `log`.
fn reconcile_secs(log: &str) -> Option<f64> {
    let lines: Vec<&str> = log.lines().collect();
    let done = lines
        .iter()
        .rposition(|l| l.contains("startup reconciliation done"))?;
    let first = lines[..done]
        .iter()
        .rposition(|l| l.contains("VXLAN underlay"))?;
    let t = |l: &str| parse_rfc3339(l.split_whitespace().next()?);
    Some(t(lines[done])? - t(lines[first])?)
}

pub fn part5(args: &Args, report: &mut Report) {
    let n = args.load;
    eprintln!("[bench] part 5: {n} endpoints on one host");
    let ns = Netns::new("benchl");
    ns.veth(PARENT, PEER);
    let mut plugin = Plugin::start_with(
        &ns,
        &[("SWITCHYARD__LOG__LEVEL", "info"), ("RUST_LOG", RUST_LOG)],
    );
    let mut client = plugin.client();
    let net = random_id();
    wire::call(
        &mut client,
        "NetworkDriver.CreateNetwork",
        &wire::create_network(&net, PARENT, wire::POOL, wire::GATEWAY),
    );
    let mut create = Vec::with_capacity(n);
    let mut join = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        check_interrupt();
        let d = wire::run_calls(&mut client, &net, &Endpoint::new(i), 0..2);
        create.push(d[0]);
        join.push(d[1]);
        if (i + 1) % 1000 == 0 {
            eprintln!(
                "[bench] {} endpoints, {:.0} s",
                i + 1,
                start.elapsed().as_secs_f64()
            );
        }
    }
    let up = start.elapsed();
    let links = ns
        .ip(&["-o", "link", "show", "type", "macvlan"])
        .lines()
        .count();
    std::thread::sleep(Duration::from_secs(1));
    let (rss, hwm) = machine::rss_kib(plugin.pid());

    let mut t = Table::new(&[
        "endpoints on the host",
        "CreateEndpoint p50 ms",
        "CreateEndpoint mean ms",
        "Join p50 ms",
        "Join mean ms",
    ]);
    let base = summarize(&create[..FIRST.min(n)]);
    let base_j = summarize(&join[..FIRST.min(n)]);
    let mut worst: f64 = 0.0;
    for m in milestones(n) {
        let w = if m <= FIRST {
            0..m
        } else {
            m.saturating_sub(WINDOW).max(FIRST)..m
        };
        let c = summarize(&create[w.clone()]);
        let j = summarize(&join[w.clone()]);
        worst = worst.max(c.p50 / base.p50).max(j.p50 / base_j.p50);
        t.row(vec![
            format!("{}–{}", w.start + 1, w.end),
            f3(c.p50),
            f3(c.mean),
            f3(j.p50),
            f3(j.mean),
        ]);
    }

    // A restart with N endpoints: reconciliation before serving.
    let t0 = Instant::now();
    plugin.restart();
    let restart = t0.elapsed();
    let reconcile = reconcile_secs(&plugin.log_text());
    std::thread::sleep(Duration::from_secs(1));
    let (rss2, hwm2) = machine::rss_kib(plugin.pid());
    // One more CreateEndpoint + Join after the restart: still served.
    let mut client = plugin.client();
    let after = wire::run_calls(&mut client, &net, &Endpoint::new(n), 0..2);

    let mib = |k: u64| format!("{:.1}", k as f64 / 1024.0);
    report.emit(&format!(
        "## 5. {n} endpoints on one host\n\n\
         One macvlan network on a veth parent; endpoint i is CreateEndpoint + Join (no Leave), so {links} macvlan links exist at the end. \
         Client-side times per call over the socket (release build): endpoints 1–{FIRST}, then the (up to) {WINDOW} calls that brought the count to each row's end.\n\n{}\n\
         Largest p50 ratio against endpoints 1–{FIRST}: **{worst:.2}×** (target ≤ 1.2×). All {n} created + joined in {:.1} s.\n\n\
         | with {n} endpoints | value |\n|---|---|\n\
         | restart (SIGKILL, start, reconcile, listen), wall | {:.0} ms |\n\
         | startup reconciliation (log: first line → \"reconciliation done\") | {} |\n\
         | VmRSS / VmHWM before the restart | {} / {} MiB |\n\
         | VmRSS / VmHWM after the restart | {} / {} MiB |\n\
         | CreateEndpoint / Join right after the restart | {} / {} ms |\n",
        t.render(),
        up.as_secs_f64(),
        ms(restart),
        reconcile.map(|s| format!("{:.0} ms", s * 1000.0)).unwrap_or("?".into()),
        mib(rss),
        mib(hwm),
        mib(rss2),
        mib(hwm2),
        f3(ms(after[0])),
        f3(ms(after[1])),
    ));
    // Teardown: the kernel removes the links with the namespace; deleting
    // them one by one through the plugin would take minutes.
    plugin.kill();
    drop(plugin);
    drop(ns);
}
