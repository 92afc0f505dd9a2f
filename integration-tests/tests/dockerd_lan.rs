//! What LAN users ask of macvlan networks, on real dockerds (Engine 20.10,
//! 28 and 29):
//!
//! * host access (`-o host_access`): the host — the test dockerd's
//!   namespace, whose parent tp0 has its own address on the LAN — pings
//!   its container, and the container fetches a page from a server on the
//!   host; again after plugin restarts (one of them after the host link
//!   was lost); nothing is left after `docker network rm`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use switchyard_integration_tests::dockerd::Engine;
use switchyard_integration_tests::{DockerLab, Lab, engine_matrix, unique, wait_for};

/// `docker` arguments written as one line.
fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

const HOST: &str = "10.79.0.250";

/// busybox httpd on the host's access address, serving one file; stopped
/// (by its pid) and its directory removed on drop.
struct HostServer {
    child: Child,
    dir: PathBuf,
}

impl HostServer {
    fn start(lab: &Lab, addr: &str, body: &str) -> HostServer {
        let dir = std::env::temp_dir().join(unique("syhttp"));
        std::fs::create_dir_all(&dir).expect("server directory");
        std::fs::write(dir.join("hello.txt"), body).expect("server file");
        let child = Command::new("ip")
            .args(["netns", "exec", lab.host.name(), "busybox", "httpd", "-f"])
            .arg("-p")
            .arg(format!("{addr}:8080"))
            .arg("-h")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start busybox httpd (Debian package busybox-static)");
        HostServer { child, dir }
    }
}

impl Drop for HostServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
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
