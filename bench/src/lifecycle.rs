//! Parts 1 and 2: the plugin's time per container lifecycle over its socket,
//! with real macvlan links, and its memory with 1,000 endpoints.

use crate::interrupt::check as check_interrupt;
use crate::machine;
use crate::nsthread::{NsThread, wait_gone};
use crate::pluginlog::{Handled, PluginLog, RUST_LOG, epoch_secs};
use crate::stats::{Summary, Table, f3, ms, summarize, summarize_ms};
use crate::wire::{self, Endpoint, LABELS, LIFECYCLE, Lifecycle};
use crate::{Args, Report};
use std::time::{Duration, Instant, SystemTime};
use switchyard_integration_tests::{Netns, Plugin, PluginClient, random_id};

const PARENT: &str = "byp0";
const PEER: &str = "byp1";
const DEFERRED_TIMEOUT: Duration = Duration::from_secs(120);

fn start_plugin(ns: &Netns) -> Plugin {
    let p = Plugin::start_with(
        ns,
        &[("SWITCHYARD__LOG__LEVEL", "info"), ("RUST_LOG", RUST_LOG)],
    );
    let comm = machine::comm(p.pid());
    assert_eq!(
        comm,
        "switchyard",
        "pid {} is {comm:?}, not the plugin",
        p.pid()
    );
    p
}

fn create_network(client: &mut PluginClient) -> String {
    let net = random_id();
    wire::call(
        client,
        "NetworkDriver.CreateNetwork",
        &wire::create_network(&net, PARENT, wire::POOL, wire::GATEWAY),
    );
    net
}

/// What one mode (paced or back-to-back) collected.
#[derive(Default)]
struct Mode {
    runs: Vec<Lifecycle>,
    /// Handler time (µs) of each call as the plugin logged it, per lifecycle.
    handler: Vec<[u64; 8]>,
    /// Paced: DeleteEndpoint's answer → link name gone from the namespace.
    name_gone: Vec<Duration>,
    /// Paced: DeleteEndpoint's answer → the plugin's background delete returned.
    reaper_done: Vec<f64>,
    /// Back-to-back: (links still pending when the block's last answer came,
    /// ms until the reaper finished them, ms until their names were gone).
    drains: Vec<(usize, f64, f64)>,
}

impl Mode {
    fn add_handled(&mut self, h: &[Handled], lifecycles: usize) {
        assert_eq!(
            h.len(),
            8 * lifecycles,
            "plugin log: expected {} request lines, got {}",
            8 * lifecycles,
            h.len()
        );
        for chunk in h.chunks(8) {
            let mut us = [0u64; 8];
            for (i, c) in chunk.iter().enumerate() {
                assert_eq!(
                    format!("NetworkDriver.{}", c.method),
                    LIFECYCLE[i],
                    "plugin log out of order"
                );
                us[i] = c.us;
            }
            self.handler.push(us);
        }
    }

    fn table(&self) -> String {
        let mut t = Table::new(&[
            "call",
            "n",
            "p50 ms",
            "p99 ms",
            "mean ms",
            "max ms",
            "handler p50 ms",
            "handler p99 ms",
        ]);
        let row = |t: &mut Table, label: &str, c: Summary, h: Summary| {
            t.row(vec![
                label.to_string(),
                c.n.to_string(),
                f3(c.p50),
                f3(c.p99),
                f3(c.mean),
                f3(c.max),
                f3(h.p50),
                f3(h.p99),
            ])
        };
        for (i, label) in LABELS.iter().enumerate() {
            let c = summarize(&self.runs.iter().map(|r| r.calls[i]).collect::<Vec<_>>());
            let h = summarize_ms(
                &self
                    .handler
                    .iter()
                    .map(|u| u[i] as f64 / 1000.0)
                    .collect::<Vec<_>>(),
            );
            row(&mut t, label, c, h);
        }
        let c = summarize(&self.runs.iter().map(|r| r.total).collect::<Vec<_>>());
        let h = summarize_ms(
            &self
                .handler
                .iter()
                .map(|u| u.iter().sum::<u64>() as f64 / 1000.0)
                .collect::<Vec<_>>(),
        );
        row(&mut t, "**whole lifecycle (8 calls)**", c, h);
        t.render()
    }
}

/// Runs `n` lifecycles back to back; then waits for their deferred deletes.
fn back_to_back(
    client: &mut PluginClient,
    net: &str,
    nst: &NsThread,
    log: &mut PluginLog,
    n: usize,
    seq: &mut usize,
    mode: Option<&mut Mode>,
) {
    let mut runs = Vec::with_capacity(n);
    for _ in 0..n {
        check_interrupt();
        let ep = Endpoint::new(*seq);
        *seq += 1;
        runs.push(wire::lifecycle(client, net, &ep));
    }
    let last = runs.last().expect("n > 0").clone();
    let handled = log.take();
    let links: Vec<String> = runs.iter().map(|r| r.link.clone()).collect();
    let pending = links
        .iter()
        .filter(|l| !log.deleted.contains_key(*l))
        .count();
    let (gone, done) = wait_deferred_deletes(
        nst,
        log,
        &links,
        "links of deleted endpoints still exist after 120 s",
    );
    if let Some(m) = mode {
        m.add_handled(&handled, n);
        m.drains.push((
            pending,
            ((done - epoch_secs(last.deleted_at)) * 1000.0).max(0.0),
            ms(gone.saturating_duration_since(last.deleted_instant)),
        ));
        m.runs.extend(runs);
    }
}

/// One lifecycle, then waits until its link's deferred delete is finished.
fn paced(
    client: &mut PluginClient,
    net: &str,
    nst: &NsThread,
    log: &mut PluginLog,
    seq: &mut usize,
    m: &mut Mode,
) {
    check_interrupt();
    let ep = Endpoint::new(*seq);
    *seq += 1;
    let r = wire::lifecycle(client, net, &ep);
    let name = vec![r.link.clone()];
    let gone = nst
        .run(move || wait_gone(&name, DEFERRED_TIMEOUT))
        .expect("link still exists 120 s after DeleteEndpoint");
    assert!(log.wait_deleted(std::slice::from_ref(&r.link), DEFERRED_TIMEOUT));
    let handled = log.take();
    m.add_handled(&handled, 1);
    m.name_gone
        .push(gone.saturating_duration_since(r.deleted_instant));
    m.reaper_done
        .push(((log.deleted[&r.link] - epoch_secs(r.deleted_at)) * 1000.0).max(0.0));
    m.runs.push(r);
}

/// A directory on tmpfs, removed on drop.
struct ShmDir(std::path::PathBuf);

impl ShmDir {
    fn new() -> ShmDir {
        let p = std::path::PathBuf::from(format!(
            "/dev/shm/{}",
            switchyard_integration_tests::unique("switchyard-bench-")
        ));
        std::fs::create_dir_all(&p).expect("create a directory on /dev/shm");
        ShmDir(p)
    }
}

impl Drop for ShmDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub struct Part1 {
    pub memory_rows: Vec<(String, (u64, u64), u64)>,
    /// Whole-lifecycle p50 (ms): paced, back-to-back, paced with state on tmpfs.
    pub p50: [f64; 3],
}

pub fn part1(args: &Args, report: &mut Report) -> Part1 {
    eprintln!(
        "[bench] part 1: {} lifecycles paced + {} back to back",
        args.lifecycles, args.lifecycles
    );
    let ns = Netns::new("bench");
    ns.veth(PARENT, PEER);
    let nst = NsThread::new(&ns.path());
    let plugin = start_plugin(&ns);
    let pid = plugin.pid();
    std::thread::sleep(Duration::from_millis(500));
    let mut memory_rows = vec![(
        "plugin 1: idle after start".to_string(),
        machine::rss_kib(pid),
        machine::threads(pid),
    )];
    let mut client = plugin.client();
    let mut log = PluginLog::new(plugin.log.clone());
    let net = create_network(&mut client);
    log.take();

    // The same plugin binary with its state on tmpfs: fsync costs nothing
    // there, so the difference to the paced mode is the disk's share.
    let shm = ShmDir::new();
    let shm_state = shm.0.join("state");
    let plugin_tmpfs = Plugin::start_with(
        &ns,
        &[
            ("SWITCHYARD__LOG__LEVEL", "info"),
            ("RUST_LOG", RUST_LOG),
            ("SWITCHYARD__PLUGIN__STATE_DIR", shm_state.to_str().unwrap()),
        ],
    );
    let mut client_t = plugin_tmpfs.client();
    let mut log_t = PluginLog::new(plugin_tmpfs.log.clone());
    let net_t = create_network(&mut client_t);
    log_t.take();

    let mut seq = 0usize;
    // Warm-up: connections, allocator, page cache of the state file.
    back_to_back(&mut client, &net, &nst, &mut log, 20, &mut seq, None);
    log.take();
    back_to_back(&mut client_t, &net_t, &nst, &mut log_t, 20, &mut seq, None);
    log_t.take();

    let mut paced_mode = Mode::default();
    let mut b2b = Mode::default();
    let mut tmpfs = Mode::default();
    let block = args.block.max(1);
    let started = Instant::now();
    let mut done = 0;
    while done < args.lifecycles {
        let n = block.min(args.lifecycles - done);
        for _ in 0..n {
            paced(&mut client, &net, &nst, &mut log, &mut seq, &mut paced_mode);
        }
        back_to_back(
            &mut client,
            &net,
            &nst,
            &mut log,
            n,
            &mut seq,
            Some(&mut b2b),
        );
        for _ in 0..n {
            paced(
                &mut client_t,
                &net_t,
                &nst,
                &mut log_t,
                &mut seq,
                &mut tmpfs,
            );
        }
        done += n;
        if done % (block * 4) == 0 || done == args.lifecycles {
            eprintln!(
                "[bench]   {done}/{} (paced p50 so far {:.3} ms, {:.0} s)",
                args.lifecycles,
                summarize(&paced_mode.runs.iter().map(|r| r.total).collect::<Vec<_>>()).p50,
                started.elapsed().as_secs_f64()
            );
        }
    }
    wire::call(
        &mut client_t,
        "NetworkDriver.DeleteNetwork",
        &wire::network_only(&net_t),
    );
    drop(plugin_tmpfs);
    drop(shm);
    std::thread::sleep(Duration::from_millis(500));
    memory_rows.push((
        format!(
            "plugin 1: after {} lifecycles (all deleted)",
            2 * args.lifecycles + 20
        ),
        machine::rss_kib(pid),
        machine::threads(pid),
    ));

    let mut out = String::new();
    out += &format!(
        "## 1. Plugin time per container lifecycle (macvlan, real links)\n\n\
         The eight calls dockerd 20.10 makes for `docker run --rm` on one network, with its exact request bodies, \
         over the plugin's unix socket (one keep-alive connection, as dockerd). Parent: one end of a veth pair in a \
         namespace made for the bench; the plugin runs in that namespace. Columns `p50`…`max`: round trip measured by \
         the client (what dockerd waits for). `handler`: the time the plugin itself logs for the request (`us=`), \
         from parsed request to answer, without HTTP framing and socket transfer.\n\n\
         Two modes, run interleaved in blocks of {block}: **paced** — before the next container starts, the previous \
         link's deferred deletion has finished (as with `docker run` at human pace); **back-to-back** — no pause, so \
         the plugin's background deletions overlap the next containers' calls.\n\n\
         ### 1a. Paced ({} lifecycles)\n\n{}\n\
         ### 1b. Back-to-back ({} lifecycles)\n\n{}\n\
         ### 1c. Paced, plugin state_dir on tmpfs ({} lifecycles)\n\n\
         A second plugin (same binary) whose state_dir is on /dev/shm, interleaved with the two modes above: fsync is free \
         there, so the difference to 1a is what the disk's durability costs.\n\n{}\n",
        paced_mode.runs.len(),
        paced_mode.table(),
        b2b.runs.len(),
        b2b.table(),
        tmpfs.runs.len(),
        tmpfs.table()
    );

    let mut t = Table::new(&[
        "deferred kernel work (not in the times above)",
        "n",
        "p50 ms",
        "p99 ms",
        "mean ms",
        "max ms",
    ]);
    let srow = |t: &mut Table, label: &str, s: Summary| {
        t.row(vec![
            label.into(),
            s.n.to_string(),
            f3(s.p50),
            f3(s.p99),
            f3(s.mean),
            f3(s.max),
        ])
    };
    srow(
        &mut t,
        "paced: DeleteEndpoint answered → link name gone from the namespace",
        summarize(&paced_mode.name_gone),
    );
    srow(
        &mut t,
        "paced: DeleteEndpoint answered → plugin's background netlink delete returned",
        summarize_ms(&paced_mode.reaper_done),
    );
    srow(
        &mut t,
        "back-to-back: links still pending when a block's last DeleteEndpoint answered",
        summarize_ms(&b2b.drains.iter().map(|d| d.0 as f64).collect::<Vec<_>>()),
    );
    srow(
        &mut t,
        "back-to-back: last DeleteEndpoint answered → all of the block's deletes returned",
        summarize_ms(&b2b.drains.iter().map(|d| d.1).collect::<Vec<_>>()),
    );
    out += &format!(
        "### 1d. Deferred link deletion\n\nDeleteEndpoint answers once the endpoint is forgotten; the link is deleted by a \
         background task of the plugin (the kernel takes milliseconds to unregister a netdev). The \"returned\" times come from the \
         plugin's own log line written when its netlink delete returned (`deleted link=…`, debug level for that module only); \
         (count rows are counts, not ms).\n\n{}",
        t.render()
    );
    report.emit(&out);
    let p50 = [&paced_mode, &b2b, &tmpfs]
        .map(|m| summarize(&m.runs.iter().map(|r| r.total).collect::<Vec<_>>()).p50);
    teardown(&mut client, &net, plugin, nst, ns);
    Part1 { memory_rows, p50 }
}

/// Part 2: memory with `n` endpoints, and how the calls scale with them.
pub fn part2(args: &Args, report: &mut Report, mut memory_rows: Vec<(String, (u64, u64), u64)>) {
    let n = args.endpoints;
    eprintln!("[bench] part 2: memory with {n} endpoints");
    let ns = Netns::new("benchm");
    ns.veth(PARENT, PEER);
    let nst = NsThread::new(&ns.path());
    let plugin = start_plugin(&ns);
    let pid = plugin.pid();
    std::thread::sleep(Duration::from_secs(1));
    let idle = machine::rss_kib(pid);
    memory_rows.insert(0, ("idle after start".into(), idle, machine::threads(pid)));
    let mut client = plugin.client();
    let mut log = PluginLog::new(plugin.log.clone());
    let net = create_network(&mut client);
    memory_rows.insert(
        1,
        (
            "after CreateNetwork".into(),
            machine::rss_kib(pid),
            machine::threads(pid),
        ),
    );

    let eps: Vec<Endpoint> = (0..n).map(Endpoint::new).collect();
    let mut create = Vec::with_capacity(n);
    let mut join = Vec::with_capacity(n);
    let up_start = Instant::now();
    for ep in &eps {
        check_interrupt();
        let d = wire::run_calls(&mut client, &net, ep, 0..5);
        create.push(d[0]);
        join.push(d[1]);
    }
    let up = up_start.elapsed();
    let macvlans = ns
        .ip(&["-o", "link", "show", "type", "macvlan"])
        .lines()
        .count();
    let names: Vec<String> = eps.iter().map(Endpoint::link).collect();
    let present = {
        let names = names.clone();
        nst.run(move || {
            names
                .iter()
                .filter(|l| crate::nsthread::link_exists(l))
                .count()
        })
    };
    assert_eq!(present, n, "not every joined endpoint has its link");
    std::thread::sleep(Duration::from_secs(1));
    let full = machine::rss_kib(pid);
    memory_rows.insert(
        2,
        (
            format!("{n} endpoints created + joined ({macvlans} macvlan links exist)"),
            full,
            machine::threads(pid),
        ),
    );

    let mut delete = Vec::with_capacity(n);
    let down_start = Instant::now();
    let down_start_wall = SystemTime::now();
    for ep in &eps {
        check_interrupt();
        let d = wire::run_calls(&mut client, &net, ep, 5..8);
        delete.push(d[2]);
    }
    let last_answer = Instant::now();
    let last_answer_wall = SystemTime::now();
    let down = down_start.elapsed();
    let (gone, reaper_last) = wait_deferred_deletes(
        &nst,
        &mut log,
        &names,
        "links still exist 120 s after DeleteEndpoint",
    );
    std::thread::sleep(Duration::from_secs(1));
    memory_rows.insert(
        3,
        (
            format!("all {n} deleted again (links gone)"),
            machine::rss_kib(pid),
            machine::threads(pid),
        ),
    );

    let mut t = Table::new(&[
        "plugin state",
        "VmRSS MiB",
        "Δ vs idle MiB",
        "VmHWM (peak) MiB",
        "threads",
    ]);
    let mib = |k: u64| format!("{:.1}", k as f64 / 1024.0);
    for (label, (rss, hwm), th) in &memory_rows {
        t.row(vec![
            label.clone(),
            mib(*rss),
            format!("{:+.1}", (*rss as f64 - idle.0 as f64) / 1024.0),
            mib(*hwm),
            th.to_string(),
        ]);
    }
    let mut out = format!(
        "## 2. Resident memory\n\nVmRSS and VmHWM from /proc/<pid>/status of the plugin process (release build, log level info). \
         Rows 1–4: one fresh plugin; \"plugin 1\" rows: the plugin of part 1 (leak check).\n\n{}\n",
        t.render()
    );

    let first = |v: &[Duration]| summarize(&v[..v.len().min(100)]);
    let lastn = |v: &[Duration]| summarize(&v[v.len().saturating_sub(100)..]);
    let mut s = Table::new(&[
        "with many endpoints",
        "first 100 p50 ms",
        "last 100 p50 ms",
        "all p99 ms",
        "all max ms",
    ]);
    for (label, v) in [
        ("CreateEndpoint (0 → n endpoints)", &create),
        ("Join (0 → n links)", &join),
        ("DeleteEndpoint (n → 0 endpoints)", &delete),
    ] {
        let all = summarize(v);
        s.row(vec![
            label.into(),
            f3(first(v).p50),
            f3(lastn(v).p50),
            f3(all.p99),
            f3(all.max),
        ]);
    }
    let reaper_total = (reaper_last - epoch_secs(down_start_wall)) * 1000.0;
    let mut b = Table::new(&["batch of n endpoints", "ms", "per endpoint ms"]);
    let per = |x: f64| f3(x / n as f64);
    b.row(vec![
        "CreateEndpoint+Join+Program+OperInfo×2, all n (client)".into(),
        f3(ms(up)),
        per(ms(up)),
    ]);
    b.row(vec![
        "Revoke+Leave+DeleteEndpoint, all n (client)".into(),
        f3(ms(down)),
        per(ms(down)),
    ]);
    b.row(vec![
        "first DeleteEndpoint sent → last link name gone".into(),
        f3(ms(gone - down_start)),
        per(ms(gone - down_start)),
    ]);
    b.row(vec![
        "first DeleteEndpoint sent → plugin's last background delete returned".into(),
        f3(reaper_total),
        per(reaper_total),
    ]);
    b.row(vec![
        "last DeleteEndpoint answered → last background delete returned".into(),
        f3((reaper_last - epoch_secs(last_answer_wall)) * 1000.0),
        "".into(),
    ]);
    let _ = last_answer;
    out += &format!(
        "### 2b. The same {n} endpoints: latency as they accumulate, and the batch deletion\n\n{}\n{}\n",
        s.render(),
        b.render()
    );

    // Containers starting while the background deletions of earlier ones
    // are still queued (e.g. `compose down` then `up`).
    let k = n.min(100);
    let probe_n = 20;
    let backlog: Vec<Endpoint> = (0..k).map(|i| Endpoint::new(n + i)).collect();
    for ep in &backlog {
        check_interrupt();
        wire::run_calls(&mut client, &net, ep, 0..5);
    }
    for ep in &backlog {
        check_interrupt();
        wire::run_calls(&mut client, &net, ep, 5..8);
    }
    let mut runs = Vec::new();
    for i in 0..probe_n {
        check_interrupt();
        runs.push(wire::lifecycle(
            &mut client,
            &net,
            &Endpoint::new(n + k + i),
        ));
    }
    let mut all: Vec<String> = backlog.iter().map(Endpoint::link).collect();
    all.extend(runs.iter().map(|r| r.link.clone()));
    {
        let all = all.clone();
        nst.run(move || wait_gone(&all, DEFERRED_TIMEOUT))
            .expect("links still exist 120 s after DeleteEndpoint");
    }
    assert!(
        log.wait_deleted(&all, DEFERRED_TIMEOUT),
        "plugin never logged the deferred deletes"
    );
    let mut p = Table::new(&["call", "n", "p50 ms", "p99 ms", "mean ms", "max ms"]);
    for (label, v) in [
        (
            "CreateEndpoint".to_string(),
            runs.iter().map(|r| r.calls[0]).collect::<Vec<_>>(),
        ),
        (
            "Join".to_string(),
            runs.iter().map(|r| r.calls[1]).collect(),
        ),
        (
            "DeleteEndpoint".to_string(),
            runs.iter().map(|r| r.calls[7]).collect(),
        ),
        (
            "**whole lifecycle (8 calls)**".to_string(),
            runs.iter().map(|r| r.total).collect(),
        ),
    ] {
        let s = summarize(&v);
        p.row(vec![
            label,
            s.n.to_string(),
            f3(s.p50),
            f3(s.p99),
            f3(s.mean),
            f3(s.max),
        ]);
    }
    out += &format!(
        "### 2c. Containers starting while {k} deferred link deletions are queued\n\n\
         {k} endpoints created+joined, then all {k} deleted (answers are immediate, the links are deleted in the \
         background one by one), then at once {probe_n} lifecycles back to back:\n\n{}",
        p.render()
    );
    report.emit(&out);
    teardown(&mut client, &net, plugin, nst, ns);
}

/// Waits until `links` are gone (seen from the namespace's thread; panics
/// with `timeout_msg` after 120 s) and the plugin has logged deleting each:
/// (when the last was gone, the plugin's latest `deleted` time).
fn wait_deferred_deletes(
    nst: &NsThread,
    log: &mut PluginLog,
    links: &[String],
    timeout_msg: &str,
) -> (Instant, f64) {
    let names = links.to_vec();
    let gone = nst
        .run(move || wait_gone(&names, DEFERRED_TIMEOUT))
        .expect(timeout_msg);
    assert!(
        log.wait_deleted(links, DEFERRED_TIMEOUT),
        "plugin never logged the deferred deletes"
    );
    let last = links
        .iter()
        .map(|l| log.deleted[l])
        .fold(f64::MIN, f64::max);
    (gone, last)
}

/// DeleteNetwork, then the plugin, the namespace's thread and the namespace
/// go, in that order.
fn teardown(client: &mut PluginClient, net: &str, plugin: Plugin, nst: NsThread, ns: Netns) {
    wire::call(
        client,
        "NetworkDriver.DeleteNetwork",
        &wire::network_only(net),
    );
    drop(plugin);
    drop(nst);
    drop(ns);
}
