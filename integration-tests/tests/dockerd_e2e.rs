//! End to end with real dockerds: Engine 20.10, 28 and 29 each
//! drive the real `switchyard` binary, and every scenario checks what the
//! containers actually got (`ip addr/route/link` inside them, `ping`).
//!
//! Layout of every test: a network namespace with a veth pair tp0/tp1
//! (tp0 is the macvlan parent, tp1 plays the LAN on the other side of it),
//! the plugin and dockerd inside that namespace. Nothing touches the
//! machine's own interfaces.
//!
//! Per engine there are three tests, each sharing one dockerd across its
//! scenarios: `networking` (user story, MTU, internal, dual stack, MAC, bad
//! options), `parity` (built-in macvlan parity) and `restarts` (plugin
//! SIGKILL/SIGTERM, dockerd restart). A failing scenario does not hide the others: each is
//! run, its leftovers are removed, and the test fails at the end with the
//! list of failed scenarios (their panics are printed as they happen).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;
use switchyard_integration_tests::container_view::{default_route, mtu, route_lines};
use switchyard_integration_tests::dockerd::Engine;
use switchyard_integration_tests::{DockerLab, Lab, engine_matrix, wait_for};

/// The parent's MTU: not 1500, so that "the parent's MTU" is observable.
const PARENT_MTU: u32 = 1450;

/// The lab of every test here: tp0/tp1 with the parent's MTU.
fn new_lab(engine: Engine) -> DockerLab {
    DockerLab::new(engine, Lab::config().tag("dk").mtu(PARENT_MTU))
}

/// `docker network create -d <plugin> -o backend=macvlan -o parent=tp0 ARGS NAME`.
fn create(lab: &DockerLab, name: &str, args: &[&str]) -> String {
    let mut a = vec!["-o", "backend=macvlan", "-o", "parent=tp0"];
    a.extend(args);
    lab.create(name, &a)
}

/// Runs named scenarios against one lab; collects failures.
struct Scenarios {
    engine: Engine,
    failures: Vec<String>,
}

impl Scenarios {
    fn new(engine: Engine) -> Scenarios {
        Scenarios {
            engine,
            failures: Vec::new(),
        }
    }

    fn run(&mut self, lab: &mut DockerLab, name: &str, f: impl FnOnce(&mut DockerLab)) {
        let label = self.engine.label();
        eprintln!("=== [Engine {label}] {name}");
        let t = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| f(lab)));
        let cleanup = catch_unwind(AssertUnwindSafe(|| lab.reset()));
        match outcome {
            Ok(()) => eprintln!(
                "--- [Engine {label}] {name}: ok ({:.1} s)",
                t.elapsed().as_secs_f64()
            ),
            Err(e) => {
                eprintln!("--- [Engine {label}] {name}: FAILED");
                self.failures.push(format!("{name}: {}", panic_text(&e)));
            }
        }
        if let Err(e) = cleanup {
            self.failures
                .push(format!("{name} (cleanup afterwards): {}", panic_text(&e)));
        }
    }

    /// Fails the test if a scenario failed (the plugin's and dockerd's
    /// logs are printed as the lab drops).
    fn finish(self) {
        assert!(
            self.failures.is_empty(),
            "Engine {}: {} scenario(s) failed:\n- {}",
            self.engine.label(),
            self.failures.len(),
            self.failures.join("\n- ")
        );
    }
}

fn panic_text(e: &Box<dyn std::any::Any + Send>) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(panic without a message)".into())
}

// ---------------------------------------------------------------- scenarios

/// Scenario 1: the user story: a network on tp0, two containers that reach each
/// other and the LAN, the IPAM address on eth0, the default route via the
/// gateway, the parent's MTU, no docker_gwbridge, and nothing left after
/// `docker network rm`.
fn user_story(lab: &mut DockerLab) {
    lab.lan_peer("10.77.0.254/24");
    let id = create(
        lab,
        "lan",
        &["--subnet", "10.77.0.0/24", "--gateway", "10.77.0.1"],
    );
    assert_eq!(
        lab.d.inspect(&id, "{{.Driver}}"),
        lab.plugin.name,
        "network lan is not served by the plugin"
    );
    lab.d.run_d("ca", "lan", &[]);
    let ip = lab.d.ip4("ca", "lan");
    assert!(ip.starts_with("10.77.0."), "IPAM address of ca: {ip:?}");

    let addr = lab
        .d
        .exec("ca", &["ip", "-o", "-4", "addr", "show", "eth0"]);
    assert!(
        addr.contains(&format!("inet {ip}/24")),
        "ca's eth0 lacks {ip}/24:\n{addr}"
    );
    let routes = route_lines(&lab.d.exec("ca", &["ip", "route"]));
    assert!(
        routes
            .iter()
            .any(|r| r.starts_with("default via 10.77.0.1 dev eth0")),
        "no default route via the gateway in ca:\n{routes:#?}"
    );
    assert!(
        routes
            .iter()
            .any(|r| r.starts_with("10.77.0.0/24 dev eth0")),
        "no connected route in ca:\n{routes:#?}"
    );

    let (ok, out) = lab.d.run_rm("lan", &["ping", "-c", "1", "-W", "3", &ip]);
    assert!(ok, "a second container could not ping ca at {ip}:\n{out}");
    lab.d
        .assert_ping("ca", "10.77.0.254", "the LAN beyond the parent (tp1)");

    let link = lab.d.exec("ca", &["ip", "-o", "link", "show", "eth0"]);
    assert_eq!(
        mtu(&link),
        Some(PARENT_MTU),
        "without the MTU option eth0 has the parent's MTU:\n{link}"
    );
    assert_eq!(
        lab.d.container_links("ca"),
        ["lo", "eth0"],
        "ca must have only lo and eth0 (no docker_gwbridge leg)"
    );
    assert!(
        !lab.d.network_names().iter().any(|n| n == "docker_gwbridge"),
        "dockerd created docker_gwbridge: {:?}",
        lab.d.network_names()
    );
    let ep = lab.d.inspect(
        "ca",
        r#"{{(index .NetworkSettings.Networks "lan").EndpointID}}"#,
    );
    let details = lab.d.eth0_details("ca");
    assert!(
        details.contains(&format!("alias switchyard@{}:{id}:{ep}", lab.plugin.name)),
        "ca's eth0 must be Switchyard's link, marked with its driver name, network {id} and endpoint {ep}:\n{details}"
    );
    assert!(
        details.contains(" macvlan mode bridge "),
        "ca's eth0 must be a macvlan link in bridge mode:\n{details}"
    );
    let mut host_links = lab.host.links();
    host_links.sort();
    assert_eq!(
        host_links,
        ["lo", "tp0", "tp1"],
        "the endpoint link must be inside the container, nothing left beside the parent"
    );

    create(
        lab,
        "lan1400",
        &[
            "-o",
            "com.docker.network.driver.mtu=1400",
            "--subnet",
            "10.76.0.0/24",
            "--gateway",
            "10.76.0.1",
        ],
    );
    let (ok, out) = lab
        .d
        .run_rm("lan1400", &["ip", "-o", "link", "show", "eth0"]);
    assert!(
        ok && mtu(&out) == Some(1400),
        "with the MTU option eth0 must have mtu 1400:\n{out}"
    );

    lab.docker(&["stop", "-t", "0", "ca"]);
    lab.docker(&["rm", "ca"]);
    lab.docker(&["network", "rm", "lan", "lan1400"]);
    let nets = lab.d.network_names();
    assert!(
        !nets.iter().any(|n| n == "lan" || n == "lan1400"),
        "networks still listed: {nets:?}"
    );
    lab.assert_no_links("docker stop, docker rm and docker network rm");
}

/// Scenario 1b: the same options on the same parent with Docker's built-in macvlan
/// driver give the container the same addresses (IPv4 and IPv6), routes and
/// MTU, on every engine. This covers the GwAllocCheck answer: on 28 a
/// gateway is reserved unless the network is --internal (as 28.5's built-in
/// driver does); on 29 none unless --gateway is given, so the first
/// container gets the subnet's first address and no default route, as with
/// 29's built-in.
///
/// Engines 28 and 29 send the same GwAllocCheck; the plugin learns it talks
/// to 29 from the first CreateNetwork given --subnet (spec::Engine), so a
/// first network teaches it, and is removed again.
fn builtin_parity(lab: &mut DockerLab) {
    create(lab, "teach", &["--internal", "--subnet", "10.74.0.0/24"]);
    lab.docker(&["network", "rm", "teach"]);
    let cases: [(&str, &[&str]); 4] = [
        ("without --gateway", &["--subnet", "10.75.0.0/24"]),
        (
            "with --gateway",
            &["--subnet", "10.75.0.0/24", "--gateway", "10.75.0.1"],
        ),
        ("--internal", &["--internal", "--subnet", "10.75.0.0/24"]),
        (
            "dual stack without --gateway",
            &[
                "--ipv6",
                "--subnet",
                "10.75.0.0/24",
                "--subnet",
                "fd00:75::/64",
            ],
        ),
    ];
    for (case, args) in cases {
        create(lab, "pnet", args);
        let plugin = lab.view("pnet");
        lab.docker(&["network", "rm", "pnet"]);
        let mut a = vec!["network", "create", "-d", "macvlan", "-o", "parent=tp0"];
        a.extend(args);
        a.push("bnet");
        lab.docker(&a);
        let builtin = lab.view("bnet");
        lab.docker(&["network", "rm", "bnet"]);

        assert_eq!(
            plugin, builtin,
            "{case}: a Switchyard container (left) differs from a built-in macvlan container (right)"
        );
        let gateway = args.contains(&"--gateway")
            || (lab.engine() != Engine::V29 && !args.contains(&"--internal"));
        assert_eq!(
            default_route(&plugin.routes).is_some(),
            gateway,
            "{case}: {plugin:#?}"
        );
    }
    lab.assert_no_links("the parity networks were removed");
}

/// Scenario 2: --internal: an address and the connected route, but no default route;
/// containers still reach each other.
fn internal(lab: &mut DockerLab) {
    create(lab, "intl", &["--internal", "--subnet", "10.73.0.0/24"]);
    lab.d.run_d("ci", "intl", &[]);
    let ip = lab.d.ip4("ci", "intl");
    let addr = lab
        .d
        .exec("ci", &["ip", "-o", "-4", "addr", "show", "eth0"]);
    assert!(
        addr.contains(&format!("inet {ip}/24")),
        "ci's eth0 lacks {ip}/24:\n{addr}"
    );
    let routes = route_lines(&lab.d.exec("ci", &["ip", "route"]));
    assert_eq!(
        default_route(&routes),
        None,
        "an internal network must give no default route: {routes:#?}"
    );
    assert!(
        routes
            .iter()
            .any(|r| r.starts_with("10.73.0.0/24 dev eth0")),
        "{routes:#?}"
    );
    let routes6 = route_lines(&lab.d.exec("ci", &["ip", "-6", "route"]));
    assert_eq!(default_route(&routes6), None, "{routes6:#?}");
    assert_eq!(
        lab.d.container_links("ci"),
        ["lo", "eth0"],
        "no docker_gwbridge leg on an internal network"
    );
    let (ok, out) = lab.d.run_rm("intl", &["ping", "-c", "1", "-W", "3", &ip]);
    assert!(
        ok,
        "containers on an internal network must reach each other:\n{out}"
    );
}

/// Scenario 3: dual stack: the v6 address on eth0, a v6 default route via the v6
/// gateway, v6 reachability. On 28 also IPv6-only networks.
fn dual_stack(lab: &mut DockerLab) {
    let mut args = vec![
        "--ipv6",
        "--subnet",
        "10.72.0.0/24",
        "--subnet",
        "fd00:72::/64",
    ];
    if lab.engine() >= Engine::V28 {
        // Engine 28 reserves no gateway for Switchyard networks unless asked.
        args.extend(["--gateway", "10.72.0.1", "--gateway", "fd00:72::1"]);
    }
    create(lab, "ds", &args);
    lab.d.run_d("cd", "ds", &[]);
    let ip6 = lab.d.ip6("cd", "ds");
    assert!(
        ip6.starts_with("fd00:72::"),
        "IPAM v6 address of cd: {ip6:?}"
    );
    let addr6 = lab
        .d
        .exec("cd", &["ip", "-o", "-6", "addr", "show", "eth0"]);
    assert!(
        addr6.contains(&format!("inet6 {ip6}/64")),
        "cd's eth0 lacks {ip6}/64:\n{addr6}"
    );
    let ip4 = lab.d.ip4("cd", "ds");
    let addr4 = lab
        .d
        .exec("cd", &["ip", "-o", "-4", "addr", "show", "eth0"]);
    assert!(
        addr4.contains(&format!("inet {ip4}/24")),
        "cd's eth0 lacks {ip4}/24:\n{addr4}"
    );
    let routes6 = route_lines(&lab.d.exec("cd", &["ip", "-6", "route"]));
    assert!(
        routes6
            .iter()
            .any(|r| r.starts_with("default via fd00:72::1 dev eth0")),
        "no v6 default route via fd00:72::1: {routes6:#?}"
    );
    let routes = route_lines(&lab.d.exec("cd", &["ip", "route"]));
    assert!(
        routes
            .iter()
            .any(|r| r.starts_with("default via 10.72.0.1 dev eth0")),
        "no v4 default route via 10.72.0.1: {routes:#?}"
    );
    let (ok, out) = lab.d.run_rm("ds", &["ping6", "-c", "1", "-W", "3", &ip6]);
    assert!(ok, "a second container could not ping6 cd at {ip6}:\n{out}");

    if lab.engine() >= Engine::V28 {
        create(
            lab,
            "v6only",
            &[
                "--ipv4=false",
                "--ipv6",
                "--subnet",
                "fd00:70::/64",
                "--gateway",
                "fd00:70::1",
            ],
        );
        lab.d.run_d("c6", "v6only", &[]);
        let ip6 = lab.d.ip6("c6", "v6only");
        assert!(
            ip6.starts_with("fd00:70::"),
            "IPAM v6 address of c6: {ip6:?}"
        );
        let addr = lab.d.exec("c6", &["ip", "-o", "addr", "show", "eth0"]);
        assert!(
            addr.contains(&format!("inet6 {ip6}/64")),
            "c6's eth0 lacks {ip6}/64:\n{addr}"
        );
        assert!(
            !addr.contains("inet "),
            "an IPv6-only container must have no IPv4 address:\n{addr}"
        );
        let routes6 = route_lines(&lab.d.exec("c6", &["ip", "-6", "route"]));
        assert!(
            routes6
                .iter()
                .any(|r| r.starts_with("default via fd00:70::1 dev eth0")),
            "no v6 default route via fd00:70::1: {routes6:#?}"
        );
        let routes4 = route_lines(&lab.d.exec("c6", &["ip", "route"]));
        assert!(
            routes4.is_empty(),
            "an IPv6-only container must have no IPv4 routes: {routes4:#?}"
        );
        let (ok, out) = lab
            .d
            .run_rm("v6only", &["ping6", "-c", "1", "-W", "3", &ip6]);
        assert!(ok, "a second container could not ping6 c6 at {ip6}:\n{out}");

        // Without --gateway, GwAllocCheck answers as the engine's built-in
        // macvlan: on 28 IPAM reserves the subnet's first address as the
        // gateway, and it is the route; on 29 nothing is reserved, so the
        // first container gets that address and no default route.
        create(
            lab,
            "v6nogw",
            &["--ipv4=false", "--ipv6", "--subnet", "fd00:69::/64"],
        );
        let (ok, out) = lab
            .d
            .run_rm("v6nogw", &["sh", "-c", "ip -o addr show eth0; ip -6 route"]);
        assert!(
            ok && out.contains("inet6 fd00:69::"),
            "no v6 address on v6nogw:\n{out}"
        );
        if lab.engine() == Engine::V29 {
            assert!(
                out.contains("inet6 fd00:69::1/64") && default_route(&route_lines(&out)).is_none(),
                "v6nogw on 29: the first address and no default route, as the built-in:\n{out}"
            );
        } else {
            assert_eq!(
                default_route(&route_lines(&out))
                    .map(|r| r.starts_with("default via fd00:69::1 dev eth0")),
                Some(true),
                "v6nogw: the reserved gateway fd00:69::1 should be the default route:\n{out}"
            );
        }
    }
}

/// Scenario 4: --mac-address lands on eth0; without it, the MAC Switchyard picked is
/// the one dockerd reports.
fn mac_address(lab: &mut DockerLab) {
    create(
        lab,
        "macn",
        &["--subnet", "10.71.0.0/24", "--gateway", "10.71.0.1"],
    );
    let mac = "02:42:aa:bb:cc:dd";
    lab.d.run_d("cm", "macn", &["--mac-address", mac]);
    let link = lab.d.exec("cm", &["ip", "-o", "link", "show", "eth0"]);
    assert!(
        link.contains(&format!("link/ether {mac}")),
        "eth0 does not have {mac}:\n{link}"
    );
    let mac_of = |c: &str| {
        lab.d.inspect(
            c,
            r#"{{(index .NetworkSettings.Networks "macn").MacAddress}}"#,
        )
    };
    assert_eq!(mac_of("cm"), mac, "docker inspect MacAddress");
    let ip = lab.d.ip4("cm", "macn");
    let (ok, out) = lab.d.run_rm("macn", &["ping", "-c", "1", "-W", "3", &ip]);
    assert!(ok, "cm with a user MAC is not reachable:\n{out}");

    lab.d.run_d("cn", "macn", &[]);
    let link = lab.d.exec("cn", &["ip", "-o", "link", "show", "eth0"]);
    let reported = mac_of("cn");
    assert!(
        !reported.is_empty() && link.contains(&format!("link/ether {reported}")),
        "docker inspect says MAC {reported:?} but eth0 is:\n{link}"
    );
}

/// Scenario 5: bad options: `docker network create` fails with the plugin's message,
/// and neither a network nor a link is left behind.
fn bad_options(lab: &mut DockerLab) {
    let before = lab.host.links();
    let cases: [(&[&str], &str); 5] = [
        (
            &["-o", "backend=nope", "-o", "parent=tp0"],
            r#"backend "nope" is not known; use one of: macvlan, ipvlan, vxlan"#,
        ),
        (
            &[
                "-o",
                "backend=macvlan",
                "-o",
                "parent=tp0",
                "-o",
                "macvlan_mode=x",
            ],
            r#"macvlan_mode "x" is not valid"#,
        ),
        (
            &["-o", "backend=macvlan", "-o", "parent=tp0", "-o", "foo=bar"],
            r#"option "foo" is not known; backend macvlan accepts:"#,
        ),
        (
            &["-o", "backend=macvlan", "-o", "parent=tp0.5000"],
            r#"parent "tp0.5000" names VLAN 5000, which is outside 1–4094"#,
        ),
        (
            &["-o", "backend=macvlan", "-o", "parent=eth9"],
            r#"parent "eth9" does not exist on this host"#,
        ),
    ];
    for (i, (opts, message)) in cases.iter().enumerate() {
        let name = format!("bad{i}");
        let mut a = vec!["network", "create", "-d", &lab.plugin.name];
        a.extend(*opts);
        a.extend(["--subnet", "10.66.0.0/24", &name]);
        let (ok, out) = lab.d.docker(&a);
        let shown = format!("docker {}", a.join(" "));
        assert!(!ok, "{shown} succeeded:\n{out}");
        assert!(
            out.contains(message),
            "{shown}: the output lacks the plugin's message {message:?}:\n{out}"
        );
        assert!(
            !lab.d.network_names().contains(&name),
            "{shown} failed but the network is listed: {:?}",
            lab.d.network_names()
        );
        assert_eq!(
            lab.host.links(),
            before,
            "{shown} changed the namespace's links"
        );
        assert!(
            lab.host.marked_links().is_empty(),
            "{shown} left marked links"
        );
    }
    // The refusals poisoned nothing: a good network on the same subnet works.
    create(
        lab,
        "good",
        &["--subnet", "10.66.0.0/24", "--gateway", "10.66.0.1"],
    );
    let (ok, out) = lab
        .d
        .run_rm("good", &["ip", "-o", "-4", "addr", "show", "eth0"]);
    assert!(
        ok && out.contains("inet 10.66.0."),
        "a good network after the refusals:\n{out}"
    );
}

/// Scenario 6: the plugin restarts (SIGKILL, then SIGTERM) while containers run;
/// disconnect, connect, run, stop and network rm all still work and leave
/// no link.
fn plugin_restart(lab: &mut DockerLab) {
    create(
        lab,
        "rs",
        &["--subnet", "10.70.0.0/24", "--gateway", "10.70.0.1"],
    );
    create(
        lab,
        "rs2",
        &["--subnet", "10.69.0.0/24", "--gateway", "10.69.0.1"],
    );
    lab.d.run_d("r1", "rs", &[]);
    lab.d.run_d("r2", "rs", &[]);
    lab.docker(&["network", "connect", "rs2", "r1"]);
    assert_eq!(lab.d.container_links("r1"), ["lo", "eth0", "eth1"]);
    let ip2 = lab.d.ip4("r2", "rs");

    lab.plugin.kill();
    lab.d.assert_ping(
        "r1",
        &ip2,
        "with the plugin killed (the dataplane is the kernel's)",
    );
    lab.plugin.restart();
    lab.d
        .assert_ping("r1", &ip2, "after the plugin restarted from SIGKILL");

    lab.docker(&["network", "disconnect", "rs2", "r1"]);
    assert_eq!(
        lab.d.container_links("r1"),
        ["lo", "eth0"],
        "eth1 must be gone after disconnect"
    );
    lab.assert_no_links("docker network disconnect after a plugin SIGKILL");
    lab.d.run_d("r3", "rs", &[]);
    let ip1 = lab.d.ip4("r1", "rs");
    lab.d
        .assert_ping("r3", &ip1, "a container started after the plugin restart");
    lab.docker(&["stop", "-t", "0", "r2"]);
    lab.assert_no_links("docker stop after a plugin SIGKILL");

    assert!(
        lab.plugin.stop(),
        "switchyard did not exit 0 on SIGTERM:\n{}",
        lab.plugin.log_text()
    );
    lab.plugin.restart();
    lab.docker(&["network", "connect", "rs2", "r3"]);
    let addr = lab
        .d
        .exec("r3", &["ip", "-o", "-4", "addr", "show", "eth1"]);
    let ip3b = lab.d.ip4("r3", "rs2");
    assert!(
        addr.contains(&format!("inet {ip3b}/24")),
        "r3's eth1 after connect:\n{addr}"
    );
    lab.d
        .assert_ping("r3", &ip1, "after the plugin restarted from SIGTERM");
    lab.docker(&["network", "disconnect", "rs2", "r3"]);
    lab.docker(&["stop", "-t", "0", "r1", "r3"]);
    lab.docker(&["rm", "r1", "r2", "r3"]);
    lab.docker(&["network", "rm", "rs", "rs2"]);
    let nets = lab.d.network_names();
    assert!(
        !nets.iter().any(|n| n == "rs" || n == "rs2"),
        "networks still listed: {nets:?}"
    );
    lab.assert_no_links("teardown after two plugin restarts");
}

/// Scenario 7: dockerd restarts: a --restart=always container comes back running
/// and connected (same --ip, gateway, LAN and container reachability);
/// one without a restart policy stays stopped and leaks nothing.
fn dockerd_restart(lab: &mut DockerLab) {
    lab.lan_peer("10.68.0.254/24");
    create(
        lab,
        "rb",
        &["--subnet", "10.68.0.0/24", "--gateway", "10.68.0.1"],
    );
    let keep = ["--stop-timeout", "1"];
    lab.d.run_d(
        "ra",
        "rb",
        &["--restart=always", "--ip", "10.68.0.10", keep[0], keep[1]],
    );
    lab.d.run_d("rn", "rb", &keep);
    lab.d
        .assert_ping("ra", "10.68.0.254", "before the dockerd restart");

    let old_pid = lab.d.pid();
    lab.d.restart();
    assert_ne!(lab.d.pid(), old_pid);
    let running = wait_for(30.0, || {
        (lab.d.inspect("ra", "{{.State.Running}}") == "true").then_some(())
    });
    assert!(
        running.is_some(),
        "the --restart=always container did not come back within 30 s: {}",
        lab.d.inspect("ra", "{{json .State}}")
    );
    assert_eq!(
        lab.d.inspect("rn", "{{.State.Running}}"),
        "false",
        "rn has no restart policy"
    );
    let addr = lab
        .d
        .exec("ra", &["ip", "-o", "-4", "addr", "show", "eth0"]);
    assert!(
        addr.contains("inet 10.68.0.10/24"),
        "ra lost its --ip after the restart:\n{addr}"
    );
    let routes = route_lines(&lab.d.exec("ra", &["ip", "route"]));
    assert!(
        routes
            .iter()
            .any(|r| r.starts_with("default via 10.68.0.1 dev eth0")),
        "ra has no default route after the restart: {routes:#?}"
    );
    assert_eq!(lab.d.container_links("ra"), ["lo", "eth0"]);
    lab.d
        .assert_ping("ra", "10.68.0.254", "the LAN after the dockerd restart");
    let (ok, out) = lab
        .d
        .run_rm("rb", &["ping", "-c", "1", "-W", "3", "10.68.0.10"]);
    assert!(
        ok,
        "a new container could not ping ra after the restart:\n{out}"
    );
    lab.assert_no_links("the dockerd restart (old endpoints must be deleted)");

    lab.docker(&["stop", "-t", "0", "ra"]);
    lab.docker(&["rm", "ra", "rn"]);
    lab.docker(&["network", "rm", "rb"]);
    lab.assert_no_links("teardown after the dockerd restart");
}

// -------------------------------------------------------------------- tests

/// A named scenario.
type Scenario<'a> = (&'a str, fn(&mut DockerLab));

/// Runs `scenarios` one after the other against one lab (one dockerd).
fn run_all(engine: Engine, scenarios: &[Scenario]) {
    let mut lab = new_lab(engine);
    let mut s = Scenarios::new(engine);
    for (name, f) in scenarios {
        s.run(&mut lab, name, f);
    }
    s.finish();
}

fn networking(engine: Engine) {
    run_all(
        engine,
        &[
            ("1 user story", user_story),
            ("2 --internal", internal),
            ("3 dual stack", dual_stack),
            ("4 --mac-address", mac_address),
            ("5 bad options", bad_options),
        ],
    );
}

fn parity(engine: Engine) {
    run_all(
        engine,
        &[("1b parity with built-in macvlan", builtin_parity)],
    );
}

fn restarts(engine: Engine) {
    run_all(
        engine,
        &[
            ("6 plugin restart", plugin_restart),
            ("7 dockerd restart", dockerd_restart),
        ],
    );
}

engine_matrix!(networking);
engine_matrix!(parity);
engine_matrix!(restarts);
