//! `switchyard-bench encryption`: TCP throughput over an encrypted VXLAN
//! network (`-o encrypted=true`: IPsec ESP, AES-GCM) against a plain one,
//! between the same two emulated hosts (`multihost::Cluster`, a real etcd,
//! one plugin each). The build machines' kernel lacks the AEAD modules, so
//! the bench re-runs itself inside the UML kernel of `run-in-kernel.sh`
//! (one CPU: the figure is the CPU cost per byte of ESP in that kernel).
//!
//! ```text
//! cargo run --release -p switchyard-bench -- encryption [--runs N] [--secs N] [--out FILE]
//! ```

use crate::stats::{Table, median};
use crate::vxlan::{Killed, iperf};
use std::process::{Command, Stdio};
use switchyard_integration_tests::multihost::{Cluster, link_mtu};
use switchyard_integration_tests::prereq::require_command;
use switchyard_integration_tests::wait_for;

const IN_KERNEL: &str = "SWITCHYARD_IN_TEST_KERNEL";
const USAGE: &str = "usage: switchyard-bench encryption [--runs N] [--secs N] [--out FILE]
  --runs N   iperf3 runs per network, interleaved (default 5)
  --secs N   seconds per run (default 5)
  --out FILE also append the table to FILE
Runs as root, inside the UML kernel of ../shared/tools/run-in-kernel.sh; needs
etcd-server, etcd-client, iperf3, iproute2, iputils-ping.";

pub fn main(argv: &[String]) {
    let (mut runs, mut secs, mut out) = (5usize, 5usize, None::<String>);
    let mut it = argv.iter();
    while let Some(a) = it.next() {
        let mut num = |what: &str| -> usize {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{what} needs a number\n{USAGE}"))
        };
        match a.as_str() {
            "--runs" => runs = num("--runs").max(1),
            "--secs" => secs = num("--secs").max(1),
            "--out" => out = it.next().cloned(),
            "--help" | "-h" => {
                println!("{USAGE}");
                return;
            }
            other => panic!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    switchyard_integration_tests::prereq::require_root();
    if std::env::var_os(IN_KERNEL).is_none() {
        let (bin, _) = crate::release_binary();
        let tool = switchyard_integration_tests::shared_dir().join("tools/run-in-kernel.sh");
        let o = Command::new(&tool)
            .arg(std::env::current_exe().unwrap())
            .arg("encryption")
            .args(["--runs", &runs.to_string(), "--secs", &secs.to_string()])
            .env(IN_KERNEL, "1")
            .env("SWITCHYARD_BIN", &bin)
            .env("RIK_TIMEOUT", "1800")
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", tool.display()));
        let text = String::from_utf8_lossy(&o.stdout);
        print!("{text}");
        assert!(o.status.success(), "the bench failed inside the UML kernel");
        if let Some(f) = out {
            use std::io::Write;
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&f)
                .and_then(|mut w| w.write_all(text.as_bytes()))
                .unwrap_or_else(|e| panic!("appending to {f}: {e}"));
        }
        return;
    }
    println!("{}", measure(runs, secs));
}

/// The table, measured here (inside the UML kernel).
fn measure(runs: usize, secs: usize) -> String {
    require_command("iperf3", "iperf3");
    let mut c = Cluster::new(2);
    for h in &c.hosts {
        h.wait_registered(30.0).expect("registration");
    }
    let plain = c.create_network(7101, "10.71.0.0/16", &[]);
    let enc = c.create_network(7102, "10.72.0.0/16", &[("encrypted", "true")]);
    let (pa, pb) = (c.attach(0, &plain), c.attach(1, &plain));
    let (ea, eb) = (c.attach(0, &enc), c.attach(1, &enc));
    for (a, b) in [(pa, pb), (ea, eb)] {
        c.wait_ping(a, b, 30.0)
            .unwrap_or_else(|e| panic!("{e}\n{}", c.logs()));
    }
    let mut servers = Vec::new();
    for b in [pb, eb] {
        let ns = &c.eps[b].ctr;
        servers.push(Killed(Some(
            Command::new("ip")
                .args(["netns", "exec", ns.name(), "iperf3", "-s"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn iperf3 -s"),
        )));
        let up = wait_for(10.0, || {
            ns.exec(&["ss", "-ltn"]).1.contains(":5201").then_some(())
        });
        assert!(up.is_some(), "iperf3 -s did not listen");
    }
    let paths = [
        ("plain VXLAN", pa, pb),
        ("encrypted VXLAN (ESP AES-GCM)", ea, eb),
    ];
    let mut gbps: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut ratios = Vec::new();
    for round in 0..runs {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        let mut this = [0.0; 2];
        for i in order {
            let (_, a, b) = paths[i];
            let (g, _) = iperf(&c.eps[a].ctr, &c.eps[b].ip, secs);
            this[i] = g;
            gbps[i].push(g);
        }
        eprintln!(
            "[encryption] round {}: plain {:.3} Gbit/s, encrypted {:.3} Gbit/s",
            round + 1,
            this[0],
            this[1]
        );
        ratios.push(this[1] / this[0]);
    }
    drop(servers);
    let mut t = Table::new(&["network", "MTU", "runs", "median Mbit/s", "min", "max"]);
    for (i, (name, a, _)) in paths.iter().enumerate() {
        let g = &gbps[i];
        let fold = |f: fn(f64, f64) -> f64, init| g.iter().cloned().fold(init, f) * 1000.0;
        t.row(vec![
            name.to_string(),
            link_mtu(&c.eps[*a].ctr, "eth0").to_string(),
            g.len().to_string(),
            format!("{:.0}", median(g) * 1000.0),
            format!("{:.0}", fold(f64::min, f64::INFINITY)),
            format!("{:.0}", fold(f64::max, 0.0)),
        ]);
    }
    format!(
        "### Encrypted vs plain VXLAN, TCP throughput in the UML kernel\n\n\
         One iperf3 TCP stream ({secs} s, first second omitted) between containers on two \
         emulated hosts, over a plain and an encrypted VXLAN network of the same cluster; \
         runs interleaved, order alternating; the UML guest has one CPU.\n\n{}\n\
         **Ratio encrypted / plain: {:.3} (ratio of medians), {:.3} (median of per-round \
         ratios; min {:.3}, max {:.3}).**\n",
        t.render(),
        median(&gbps[1]) / median(&gbps[0]),
        median(&ratios),
        ratios.iter().cloned().fold(f64::INFINITY, f64::min),
        ratios.iter().cloned().fold(0.0, f64::max),
    )
}
