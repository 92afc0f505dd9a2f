//! Part 6 (`--dhcp-only`): the cost of DHCP addressing — `docker run --rm`
//! on a `-o ipam=dhcp` network against a static (IPAM) Switchyard macvlan
//! network on the same parent, interleaved in pairs, with a real dnsmasq
//! on the parent's LAN.

use crate::docker::docker_run;
use crate::interrupt::check as check_interrupt;
use crate::pluginlog::{PluginLog, RUST_LOG};
use crate::stats::{Table, f3, median, median_ci95};
use crate::{Args, Report};
use switchyard_integration_tests::dnsmasq::{Dnsmasq, lan};
use switchyard_integration_tests::dockerd::{Dockerd, IMAGE};
use switchyard_integration_tests::{Netns, Plugin};

pub fn part6(args: &Args, report: &mut Report) {
    let engine = args.engine;
    eprintln!(
        "[bench] part 6: docker run on a DHCP network vs a static one, Engine {}, {} pairs",
        engine.label(),
        args.pairs
    );
    let ns = Netns::new("bdh");
    ns.veth("tp0", "tp1");
    let lan = lan(&ns);
    let server = Dnsmasq::start(&lan, "tp1", &[]);
    let plugin = Plugin::start_with(
        &ns,
        &[("SWITCHYARD__LOG__LEVEL", "info"), ("RUST_LOG", RUST_LOG)],
    );
    let mut log = PluginLog::new(plugin.log.clone());
    let d = Dockerd::start(engine, &ns);
    let version = d.docker_out(&["version", "--format", "{{.Server.Version}}"]);
    let (dh, st) = ("bench-dhcp", "bench-static");
    d.docker_out(&[
        "network",
        "create",
        "-d",
        &plugin.name,
        "--ipam-driver",
        "null",
        "-o",
        "backend=macvlan",
        "-o",
        "parent=tp0",
        "-o",
        "ipam=dhcp",
        dh,
    ]);
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
        "parent=tp0",
        st,
    ]);
    for _ in 0..3 {
        check_interrupt();
        docker_run(&d, dh);
        docker_run(&d, st);
    }
    log.take();
    let (mut a, mut b, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    // Plugin handler time per run (sum over the calls it served), ms.
    let (mut ha, mut hb) = (Vec::new(), Vec::new());
    for i in 0..args.pairs {
        check_interrupt();
        let mut one = |net: &str| {
            let t = docker_run(&d, net).as_secs_f64();
            let ms = log.take().iter().map(|c| c.us).sum::<u64>() as f64 / 1000.0;
            if net == dh {
                ha.push(ms)
            } else {
                hb.push(ms)
            }
            t
        };
        // ABBA ordering: neither variant always goes first.
        let (ta, tb) = if i % 2 == 0 {
            let ta = one(dh);
            (ta, one(st))
        } else {
            let tb = one(st);
            (one(dh), tb)
        };
        a.push(ta);
        b.push(tb);
        ratios.push(ta / tb);
    }
    let mut t = Table::new(&["variant", "runs", "median s", "plugin handler ms, median"]);
    t.row(vec![
        "`-o ipam=dhcp` (dnsmasq on the LAN)".into(),
        a.len().to_string(),
        f3(median(&a)),
        f3(median(&ha)),
    ]);
    t.row(vec![
        "static (`--subnet`)".into(),
        b.len().to_string(),
        f3(median(&b)),
        f3(median(&hb)),
    ]);
    let mut r = Table::new(&["paired comparison", "value"]);
    r.row(vec!["pairs".into(), ratios.len().to_string()]);
    r.row(vec![
        "**median of per-pair ratios dhcp / static**".into(),
        format!("**{:.3}**", median(&ratios)),
    ]);
    r.row(vec![
        "95 % confidence interval of that median".into(),
        median_ci95(&ratios)
            .map(|(lo, hi)| format!("{lo:.3} – {hi:.3}"))
            .unwrap_or_else(|| "too few pairs".into()),
    ]);
    report.emit(&format!(
        "## 6. `docker run --rm --network NET {IMAGE} true`, DHCP vs static addressing\n\n\
         Engine {version}, both Switchyard macvlan networks on the same veth parent; dnsmasq \
         (no ping probe) on the LAN. Interleaved pairs (ABBA) after 3 warm-up runs each.\n\n{}\n{}",
        t.render(),
        r.render()
    ));
    drop(d);
    drop(plugin);
    drop(server);
    drop(lan);
    drop(ns);
}
