//! What LAN users ask of macvlan networks, on real dockerds (Engine 20.10,
//! 28 and 29):
//!
//! * host access (`-o host_access`): the host — the test dockerd's
//!   namespace, whose parent tp0 has its own address on the LAN — pings
//!   its container, and the container fetches a page from a server on the
//!   host; again after plugin restarts (one of them after the host link
//!   was lost); nothing is left after `docker network rm`.
//! * SLAAC (`-o ipv6_slaac=true`): Debian's radvd on the LAN, containers
//!   take an address and their one default route from it (28, 29); 20.10
//!   refuses with the engine named.

use switchyard_integration_tests::dockerd::{Engine, IMAGE};
use switchyard_integration_tests::router::Router;
use switchyard_integration_tests::{Background, DockerLab, Lab, TempDir, engine_matrix, wait_for};

/// `docker` arguments written as one line.
fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

const HOST: &str = "10.79.0.250";

/// busybox httpd on the host's access address, serving one file.
struct HostServer {
    _httpd: Background,
    _www: TempDir,
}

impl HostServer {
    fn start(lab: &Lab, addr: &str, body: &str) -> HostServer {
        let www = TempDir::new("www");
        std::fs::write(www.path().join("hello.txt"), body).expect("server file");
        let listen = format!("{addr}:8080");
        let root = www.path().to_string_lossy().into_owned();
        let httpd = Background::start(
            &lab.host,
            "busybox-static",
            &["busybox", "httpd", "-f", "-p", &listen, "-h", &root],
        );
        HostServer {
            _httpd: httpd,
            _www: www,
        }
    }
}

/// The host's link for the network, as `switchyard status` names it.
fn host_link(lab: &mut DockerLab, net_id: &str) -> String {
    let s = lab
        .ln
        .client
        .call_raw("Switchyard.Status", b"")
        .unwrap()
        .json();
    let n = s["networks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"].as_str() == Some(net_id))
        .unwrap_or_else(|| panic!("network {net_id} not in status: {s}"))
        .clone();
    n["details"]["host_access"]
        .as_str()
        .unwrap_or_else(|| panic!("status shows no host_access: {n}"))
        .split('(')
        .next()
        .unwrap()
        .to_string()
}

/// Host → container (ping) and container → host (an HTTP GET with nc).
fn assert_both_ways(lab: &DockerLab, ctr: &str, when: &str) {
    let engine = lab.engine();
    let ip = lab.d.ip4(ctr, "lan");
    let why = || {
        format!(
            "{}\n{}",
            lab.host.ip(&["-d", "addr"]),
            lab.host.ip(&["route"])
        )
    };
    assert!(
        lab.host.ping(&ip),
        "{engine:?} {when}: the host cannot reach its container at {ip}:\n{}",
        why()
    );
    let get = format!("printf 'GET /hello.txt HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {HOST} 8080");
    let fetched = wait_for(5.0, || {
        let (ok, out) = lab.d.try_exec(ctr, &["sh", "-c", &get]);
        (ok && out.contains("from the host")).then_some(out)
    });
    assert!(
        fetched.is_some(),
        "{engine:?} {when}: the container cannot fetch from the host's server at {HOST}:8080: {}\n{}",
        lab.d.try_exec(ctr, &["sh", "-c", &get]).1,
        why()
    );
}

fn host_access(engine: Engine) {
    let mut lab = DockerLab::new(engine, Lab::config().tag("dh"));
    // The host is on the LAN: its parent has an address in the subnet.
    lab.host.ip(&["addr", "add", "10.79.0.10/24", "dev", "tp0"]);
    let id = lab.create(
        "lan",
        &words(
            "-o backend=macvlan -o parent=tp0 -o host_access=true --subnet 10.79.0.0/24 --gateway 10.79.0.1 --aux-address host=10.79.0.250",
        ),
    );
    let link = host_link(&mut lab, &id);
    let _server = HostServer::start(&lab, HOST, "hello from the host\n");
    lab.d.run_d("c1", "lan", &[]);
    assert_ne!(
        lab.d.ip4("c1", "lan"),
        HOST,
        "{engine:?}: IPAM must not hand out the host's reserved address"
    );
    assert_both_ways(&lab, "c1", "after docker run");

    lab.restart_plugin();
    assert_both_ways(&lab, "c1", "after a plugin restart");

    // Lost while the plugin was down: made again at start.
    lab.plugin.kill();
    lab.host.ip(&["link", "del", &link]);
    lab.restart_plugin();
    assert_both_ways(
        &lab,
        "c1",
        "after the host link was lost and the plugin restarted",
    );

    // A second container joins after the restarts.
    lab.d.run_d("c2", "lan", &[]);
    assert_both_ways(&lab, "c2", "for a container started after the restarts");

    lab.docker(&["rm", "-f", "c1", "c2"]);
    let routes = lab.host.ip(&["route", "show", "dev", &link]);
    assert!(
        routes.trim().is_empty(),
        "{engine:?}: routes left for removed containers: {routes}"
    );
    lab.docker(&["network", "rm", "lan"]);
    lab.assert_no_links("docker network rm of a host access network");
    let addrs = lab.host.ip(&["addr", "show", "tp0"]);
    assert!(
        addrs.contains("10.79.0.10/24"),
        "{engine:?}: the parent is the host's: {addrs}"
    );
}

engine_matrix!(host_access);

const ACCEPT_RA: &str =
    "driver-opt=com.docker.network.endpoint.sysctls=net.ipv6.conf.IFNAME.accept_ra=2";

/// SLAAC: on 28 and 29 the container takes an address from the router's
/// prefix and its default route from the advertisements, and Switchyard
/// answers no static IPv6 gateway beside it; without the endpoint sysctl
/// `docker run` fails saying what to add. 20.10 cannot apply endpoint
/// sysctls: the network is refused, naming the engine.
fn slaac(engine: Engine) {
    let lab = DockerLab::new(engine, Lab::config().tag("ds"));
    let opts = "-o backend=macvlan -o parent=tp0 -o ipv6_slaac=true --subnet 10.80.0.0/24 --ipv6 --subnet fd00:80::/64";
    if engine == Engine::V20 {
        let mut a = vec!["network", "create", "-d", &lab.plugin.name];
        a.extend(words(opts));
        a.push("lan6");
        let (ok, out) = lab.d.docker(&a);
        assert!(!ok, "20.10 must refuse ipv6_slaac: {out}");
        assert!(
            out.contains("Docker Engine 20.10") && out.contains("Upgrade Docker"),
            "{out}"
        );
        lab.assert_no_links("a refused ipv6_slaac network");
        return;
    }
    let router = Router::start(&lab.host, "tp1", "fd00:80::/64", "fd00:80::1/64");
    lab.create("lan6", &words(opts));

    // Without the endpoint sysctl: refused, with the flag to add.
    let (ok, out) = lab.d.docker(&[
        "run",
        "-d",
        "--name",
        "bare",
        "--network",
        "lan6",
        IMAGE,
        "sleep",
        "600",
    ]);
    assert!(
        !ok,
        "{engine:?}: a container without accept_ra must be refused: {out}"
    );
    assert!(out.contains(ACCEPT_RA), "{engine:?}: {out}");
    lab.docker(&["rm", "-f", "bare"]);

    let network = format!("name=lan6,{ACCEPT_RA}");
    lab.d.docker_out(&[
        "run",
        "-d",
        "--name",
        "s1",
        "--network",
        &network,
        IMAGE,
        "sleep",
        "600",
    ]);
    let learnt = wait_for(20.0, || {
        let addrs = lab
            .d
            .exec("s1", &["ip", "-6", "addr", "show", "dev", "eth0"]);
        let routes = lab.d.exec("s1", &["ip", "-6", "route"]);
        (addrs.contains("dynamic") && routes.contains("default via fe80:"))
            .then_some((addrs, routes))
    });
    let (addrs, routes) = learnt.unwrap_or_else(|| {
        panic!(
            "{engine:?}: no address or default route from router advertisements within 20 s:\n{}\n{}\n{}\nrouter: {}",
            lab.d.exec("s1", &["ip", "-6", "addr"]),
            lab.d.exec("s1", &["ip", "-6", "route"]),
            lab.d.try_exec("s1", &["sh", "-c", "ip link; cd /proc/sys/net/ipv6/conf/eth0 && grep . accept_ra autoconf disable_ipv6 forwarding accept_dad"]).1,
            router.ns.ip(&["-6", "addr"])
        )
    });
    assert!(addrs.contains("inet6 fd00:80::"), "{engine:?}: {addrs}");
    let defaults: Vec<&str> = routes
        .lines()
        .filter(|l| l.starts_with("default"))
        .collect();
    assert_eq!(
        defaults.len(),
        1,
        "{engine:?}: one default route, the router's (no static one to race it): {routes}"
    );
    let via = lab
        .d
        .exec("s1", &["ip", "-6", "route", "get", "2001:db8::1"]);
    assert!(
        via.contains("via fe80::1 dev eth0"),
        "{engine:?}: the way out is the advertising router: {via}"
    );
    // No ping to the router: this test kernel never runs IPv6 duplicate
    // address detection to its end, so the router never joins its
    // solicited-node groups and answers no neighbour solicitation.
    lab.teardown(&["s1"], &["lan6"]);
}

engine_matrix!(slaac);
