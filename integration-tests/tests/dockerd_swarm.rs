//! Switchyard networks in swarm mode, on a single-node swarm inside each
//! test dockerd's namespace, with the managed plugin (swarm refuses v1
//! plugins). Switchyard's Scope is `local`, so a `--scope swarm` network
//! takes its options and IPAM config from a per-node `--config-only`
//! network (`--config-from`); without one it gets no options at all and
//! must say so.

use switchyard_integration_tests::dockerd::{Dockerd, Engine, IMAGE};
use switchyard_integration_tests::managed_plugin::{self, DRIVER};
use switchyard_integration_tests::packaging::with_private_plugin_dir;
use switchyard_integration_tests::{Netns, TempDir, engine_matrix, wait_for};

/// The address the swarm advertises: on a veth of the test's namespace.
const ADVERTISE: &str = "10.99.0.1";

/// A single-node swarm in `ns` with the managed plugin enabled; runs `f`
/// with the dockerd. Everything (swarm state, plugin, docker_gwbridge, the
/// ingress sandbox) lives in the dockerd's temporary data-root and the
/// test's namespace, and goes with them, also on panic.
fn with_swarm(engine: Engine, tag: &str, f: impl FnOnce(&Dockerd, &Netns) + Send) {
    with_swarm_set(engine, tag, &[], f)
}

/// As `with_swarm`, the plugin given `settings` (`docker plugin set`).
fn with_swarm_set(
    engine: Engine,
    tag: &str,
    settings: &[&str],
    f: impl FnOnce(&Dockerd, &Netns) + Send,
) {
    let ns = Netns::new(tag);
    ns.veth("tp0", "tp1");
    ns.veth("sw0", "sw1");
    ns.ip(&["addr", "add", &format!("{ADVERTISE}/24"), "dev", "sw0"]);
    let work = TempDir::new(tag);
    let plugins = work.path().join("run-docker-plugins");
    with_private_plugin_dir(&plugins, || {
        let d = Dockerd::start(engine, &ns);
        let mut set = vec!["SWITCHYARD__LOG__LEVEL=debug"];
        set.extend(settings);
        managed_plugin::install(&d, work.path(), &set);
        d.docker_out(&["swarm", "init", "--advertise-addr", ADVERTISE]);
        f(&d, &ns);
        leave_swarm(&d);
        drop(d);
    });
}

fn leave_swarm(d: &Dockerd) {
    let (ok, out) = d.docker(&["swarm", "leave", "--force"]);
    assert!(ok, "[Engine {}] swarm leave: {out}", d.engine.label());
}

/// The IDs of the running containers of service `svc`, waiting until
/// there are `n`.
fn running_tasks(d: &Dockerd, svc: &str, n: usize) -> Vec<String> {
    let filter = format!("label=com.docker.swarm.service.name={svc}");
    let ids = wait_for(120.0, || {
        let out = d.docker_out(&[
            "ps",
            "-q",
            "--filter",
            &filter,
            "--filter",
            "status=running",
        ]);
        let ids: Vec<String> = out.split_whitespace().map(str::to_string).collect();
        (ids.len() == n).then_some(ids)
    });
    ids.unwrap_or_else(|| {
        panic!(
            "[Engine {}] service {svc} has no {n} running tasks 120 s later:\n{}\n{}",
            d.engine.label(),
            d.docker(&["service", "ps", "--no-trunc", svc]).1,
            d.docker(&["ps", "-a"]).1
        )
    })
}

/// Container `c`'s IPv4 address on network `net`.
fn addr_on(d: &Dockerd, c: &str, net: &str) -> String {
    let a = d.ip4(c, net);
    assert!(
        !a.is_empty(),
        "[Engine {}] container {c} has no address on {net}: {}",
        d.engine.label(),
        d.inspect(c, "{{json .NetworkSettings.Networks}}")
    );
    a
}

/// The address busybox's `ping NAME` resolves `name` to in container `c`
/// (`PING NAME (ADDR): …`), the ping succeeding.
fn resolved_by_ping(d: &Dockerd, c: &str, name: &str) -> String {
    let (ok, out) = d.try_exec(c, &["ping", "-c", "1", "-W", "3", name]);
    assert!(
        ok,
        "[Engine {}] ping {name} in {c} failed:\n{out}",
        d.engine.label()
    );
    out.split_once('(')
        .and_then(|(_, r)| r.split_once(')'))
        .map(|(a, _)| a.to_string())
        .unwrap_or_else(|| panic!("no address in ping's output:\n{out}"))
}

/// `docker service rm NAME`, waiting until its containers are gone.
fn remove_service(d: &Dockerd, name: &str) {
    d.docker_out(&["service", "rm", name]);
    let filter = format!("label=com.docker.swarm.service.name={name}");
    let gone = wait_for(60.0, || {
        d.docker_out(&["ps", "-aq", "--filter", &filter])
            .is_empty()
            .then_some(())
    });
    assert!(
        gone.is_some(),
        "[Engine {}] the tasks of {name} are not gone 60 s after service rm",
        d.engine.label()
    );
}

/// `docker service create` of `n` replicas of the test image on `net`
/// (the image exists on this node only: no registry is asked).
fn service(d: &Dockerd, name: &str, n: u32) {
    d.docker_out(&[
        "service",
        "create",
        "--detach",
        "--no-resolve-image",
        "--name",
        name,
        "--network",
        "net",
        "--replicas",
        &n.to_string(),
        IMAGE,
        "sleep",
        "600",
    ]);
}

/// How many `METHOD` calls for network `id` Switchyard answered "ok"
/// (its request log is in dockerd's log, the managed plugin's output).
fn calls(d: &Dockerd, method: &str, id: &str) -> usize {
    let m = format!("method=NetworkDriver.{method} network={}", &id[..12]);
    d.log_text()
        .lines()
        .filter(|l| l.contains(&m) && l.contains(" ok"))
        .count()
}

/// The whole user story for one backend: config-only network, swarm
/// network from it, a service with two replicas that reach each other, an
/// attached container reaching them, then everything removed and no
/// Switchyard link left.
fn service_on(d: &Dockerd, ns: &Netns, config: &[&str], subnet_prefix: &str) {
    let label = d.engine.label();
    let mut cfg = vec!["network", "create", "--config-only"];
    cfg.extend(config);
    cfg.push("cfg");
    d.docker_out(&cfg);
    d.docker_out(&[
        "network",
        "create",
        "-d",
        DRIVER,
        "--scope",
        "swarm",
        "--config-from",
        "cfg",
        "--attachable",
        "net",
    ]);
    assert_eq!(
        d.docker_out(&["network", "inspect", "-f", "{{.Scope}}", "net"]),
        "swarm"
    );
    let id = d.docker_out(&["network", "inspect", "-f", "{{.Id}}", "net"]);
    assert!(
        id.len() == 25,
        "[Engine {label}] a swarm network's ID is 25 base-36 characters: {id}"
    );
    service(d, "web", 2);
    let tasks = running_tasks(d, "web", 2);
    let a = addr_on(d, &tasks[0], "net");
    let b = addr_on(d, &tasks[1], "net");
    eprintln!("[Engine {label}] replicas: {a} {b}");
    for addr in [&a, &b] {
        assert!(
            addr.starts_with(subnet_prefix),
            "[Engine {label}] a replica's address {addr} is not from the config-only network's range {subnet_prefix}…"
        );
    }
    d.assert_ping(&tasks[0], &b, "replica to replica");
    d.assert_ping(&tasks[1], &a, "replica to replica");
    // Service discovery is dockerd's own (its embedded DNS on user-defined
    // networks): the service's name and tasks.NAME resolve to a replica's
    // address (no virtual IP: that needs the overlay's load balancer).
    for name in ["web", "tasks.web"] {
        let resolved = resolved_by_ping(d, &tasks[1], name);
        eprintln!("[Engine {label}] {name} resolves to {resolved} in a replica");
        assert!(
            resolved == a || resolved == b,
            "[Engine {label}] {name} resolves to {resolved}, not to a replica ({a}, {b})"
        );
    }

    // Attachable: a plain container on the swarm network.
    d.run_d("side", "net", &[]);
    let s = addr_on(d, "side", "net");
    assert!(s.starts_with(subnet_prefix), "attached container: {s}");
    d.assert_ping("side", &a, "attached container to a replica");
    d.assert_ping(&tasks[1], &s, "replica to the attached container");

    d.docker_out(&["rm", "-f", "side"]);
    remove_service(d, "web");
    // The node deletes its part of the network when the last task and
    // container left, and creates it again for the next: the same ID again.
    let deleted = wait_for(30.0, || (calls(d, "DeleteNetwork", &id) > 0).then_some(()));
    eprintln!(
        "[Engine {label}] after the first service: CreateNetwork {} DeleteNetwork {} for {id}",
        calls(d, "CreateNetwork", &id),
        calls(d, "DeleteNetwork", &id)
    );
    assert!(
        deleted.is_some(),
        "[Engine {label}] the node kept its part of the network after its last task and container left"
    );
    service(d, "again", 1);
    let t = running_tasks(d, "again", 1);
    let c = addr_on(d, &t[0], "net");
    assert!(
        c.starts_with(subnet_prefix),
        "[Engine {label}] re-created network: {c}"
    );
    remove_service(d, "again");
    assert!(
        calls(d, "CreateNetwork", &id) >= 2,
        "[Engine {label}] the network was deleted but not created again for the next task"
    );
    let log = d.log_text();
    let failed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("failed method=NetworkDriver.") && l.contains(&id[..12]))
        .collect();
    assert!(
        failed.is_empty(),
        "[Engine {label}] Switchyard refused swarm's calls: {failed:#?}"
    );
    // `network
    // rm` removes it from the swarm (it may take a moment while the tasks'
    // endpoints go).
    let removed = wait_for(30.0, || d.docker(&["network", "rm", "net"]).0.then_some(()));
    assert!(
        removed.is_some(),
        "[Engine {label}] network rm net: {}",
        d.docker(&["network", "rm", "net"]).1
    );
    // The node's own copy of the swarm network goes a moment later; until
    // then the config-only network is "in use".
    let removed = wait_for(30.0, || d.docker(&["network", "rm", "cfg"]).0.then_some(()));
    assert!(
        removed.is_some(),
        "[Engine {label}] network rm cfg: {}",
        d.docker(&["network", "rm", "cfg"]).1
    );
    // Marked links, and `sy…` names (a link under its temporary name);
    // what swarm made (docker_gwbridge, the ingress) is dockerd's.
    let clean = wait_for(30.0, || {
        let stray = ns.links().iter().any(|l| l.starts_with("sy"));
        (ns.marked_links().is_empty() && !stray).then_some(())
    });
    assert!(
        clean.is_some(),
        "[Engine {label}] Switchyard links left after service rm and network rm: {:?}\n{}",
        ns.marked_links(),
        ns.ip(&["-d", "link", "show"])
    );
}

fn swarm_macvlan(engine: Engine) {
    with_swarm(engine, "swm", |d, ns| {
        service_on(
            d,
            ns,
            &[
                "-o",
                "backend=macvlan",
                "-o",
                "parent=tp0",
                "--subnet",
                "192.168.88.0/24",
                "--ip-range",
                "192.168.88.64/26",
            ],
            "192.168.88.",
        )
    });
}
engine_matrix!(swarm_macvlan);

fn swarm_vxlan(engine: Engine) {
    with_swarm(engine, "swv", |d, ns| {
        service_on(
            d,
            ns,
            &[
                "-o",
                "backend=vxlan",
                "-o",
                "vni=6001",
                "--subnet",
                "10.66.0.0/24",
            ],
            "10.66.0.",
        )
    });
}
engine_matrix!(swarm_vxlan);

/// What a user must be told when a `--scope swarm` network has no options
/// of its own: the way that works.
fn says_config_from(out: &str) -> bool {
    out.contains("--config-only") && out.contains("--config-from")
}

/// dockerd's error lines naming `--config-only`/`--config-from`.
fn config_from_errors_logged(d: &Dockerd) -> usize {
    d.log_text()
        .lines()
        .filter(|l| l.contains("level=error") && says_config_from(l))
        .count()
}

/// Creates swarm network `net` with `opts` but no `--config-from`, which
/// swarm accepts without asking the driver; then a container and a service
/// task on it must be refused with the way that works.
fn refused_without_config_from(d: &Dockerd, net: &str, opts: &[&str]) {
    let label = d.engine.label();
    let mut a = vec![
        "network",
        "create",
        "-d",
        DRIVER,
        "--scope",
        "swarm",
        "--attachable",
    ];
    a.extend(opts);
    a.push(net);
    let (ok, out) = d.docker(&a);
    eprintln!("[Engine {label}] network create --scope swarm {opts:?} {net}: {ok}\n{out}");
    assert!(
        ok,
        "[Engine {label}] swarm stores the network without the driver: {out}"
    );
    let logged = config_from_errors_logged(d);
    let (ok, out) = d.docker(&["run", "--rm", "--network", net, IMAGE, "true"]);
    eprintln!("[Engine {label}] docker run --network {net}: {ok}\n{out}");
    // dockerd asks the manager for an attachment and, when the node's
    // CreateNetwork fails, tells `docker run` only "attaching to network
    // failed … check manager logs"; Switchyard's answer is in dockerd's log
    // (and in `docker service ps` below).
    assert!(!ok, "[Engine {label}] docker run on {net} must fail: {out}");
    assert!(
        config_from_errors_logged(d) > logged,
        "[Engine {label}] dockerd's log has no new error naming --config-only/--config-from"
    );
    let svc = format!("{net}-svc");
    d.docker_out(&[
        "service",
        "create",
        "--detach",
        "--no-resolve-image",
        "--name",
        &svc,
        "--network",
        net,
        IMAGE,
        "sleep",
        "600",
    ]);
    let err = wait_for(60.0, || {
        let out = d.docker_out(&[
            "service",
            "ps",
            "--no-trunc",
            "--format",
            "{{.Error}}",
            &svc,
        ]);
        out.lines()
            .find(|l| !l.trim().is_empty())
            .map(str::to_string)
    });
    let err =
        err.unwrap_or_else(|| panic!("[Engine {label}] no task of {svc} was refused 60 s later"));
    eprintln!("[Engine {label}] task of {svc}: {err}");
    assert!(
        says_config_from(&err),
        "[Engine {label}] the task's error must name --config-only/--config-from: {err}"
    );
    d.docker_out(&["service", "rm", &svc]);
    let removed = wait_for(30.0, || d.docker(&["network", "rm", net]).0.then_some(()));
    assert!(
        removed.is_some(),
        "[Engine {label}] network rm {net}: {}",
        d.docker(&["network", "rm", net]).1
    );
}

/// `--scope swarm` without `--config-from`: every node creates the network
/// with no options at all, also when the command had `-o`; refused with
/// the way that works, and nothing left behind.
fn swarm_without_config_from(engine: Engine) {
    with_swarm(engine, "swn", |d, ns| {
        refused_without_config_from(d, "bare", &[]);
        refused_without_config_from(
            d,
            "withopts",
            &["-o", "backend=vxlan", "--subnet", "10.67.0.0/24"],
        );
        nothing_left_by_refusals(d, ns);
    });
}
engine_matrix!(swarm_without_config_from);

/// With an operator's default backend a swarm network without
/// `--config-from` would pass every option check (it has none) and become
/// a different network on every node: refused all the same.
fn swarm_default_backend_without_config_from(engine: Engine) {
    with_swarm_set(
        engine,
        "swd",
        &["SWITCHYARD__PLUGIN__DEFAULT_BACKEND=vxlan"],
        |d, ns| {
            refused_without_config_from(d, "bare", &[]);
            nothing_left_by_refusals(d, ns);
        },
    );
}
engine_matrix!(swarm_default_backend_without_config_from);

fn nothing_left_by_refusals(d: &Dockerd, ns: &Netns) {
    assert!(
        ns.marked_links().is_empty(),
        "[Engine {}] a refused network left links: {:?}",
        d.engine.label(),
        ns.marked_links()
    );
}
