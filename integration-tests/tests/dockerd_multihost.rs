//! The acceptance test of multi-host VXLAN: two real dockerds, each in its
//! own network namespace ("host") on one underlay, each with its own
//! Switchyard (so the driver names differ), one real etcd. The network is
//! created on both hosts with the same VNI and subnet and Switchyard's IPAM;
//! a container on host 2 pings a container on host 1, and the addresses
//! are unique across the hosts. The two hosts run different engines
//! (`engine_20`: 20.10 and 28, `engine_28`: 28 and 29, `engine_29`: 29 and
//! 20.10), which is also what a rolling upgrade looks like.

use switchyard_integration_tests::dockerd::{Dockerd, Engine};
use switchyard_integration_tests::multihost::Cluster;
use switchyard_integration_tests::{engine_matrix, wait_for};

/// The engine of the second host: the next one in the matrix (20.10 → 28
/// → 29 → 20.10), so that every engine meets another one.
fn peer_engine(engine: Engine) -> Engine {
    let i = Engine::ALL.iter().position(|e| *e == engine).unwrap();
    Engine::ALL[(i + 1) % Engine::ALL.len()]
}

fn two_dockerds_ping_over_vxlan(engine: Engine) {
    let c = Cluster::new(2);
    // Dropped first: their containers leave while the plugins still run.
    let d1 = Dockerd::start(engine, &c.hosts[0].ns);
    let d2 = Dockerd::start(peer_engine(engine), &c.hosts[1].ns);
    let ds = [&d1, &d2];
    for (d, h) in ds.iter().zip(&c.hosts) {
        let name = h.plugin().name.clone();
        d.docker_out(&[
            "network",
            "create",
            "-d",
            &name,
            "--ipam-driver",
            &name,
            "-o",
            "backend=vxlan",
            "-o",
            "vni=5001",
            "--subnet",
            "10.20.0.0/16",
            "ov1",
        ]);
    }
    // A VNI already used with another subnet is refused, naming the VNI.
    let (ok, out) = d2.docker(&[
        "network",
        "create",
        "-d",
        &c.hosts[1].plugin().name,
        "-o",
        "backend=vxlan",
        "-o",
        "vni=5001",
        "--subnet",
        "10.99.0.0/16",
        "clash",
    ]);
    assert!(!ok && out.contains("VNI 5001"), "{out}");

    d1.run_d("web", "ov1", &[]);
    d2.run_d("web2", "ov1", &[]);
    let (web, web2) = (d1.ip4("web", "ov1"), d2.ip4("web2", "ov1"));
    assert_ne!(web, web2, "the two hosts handed out the same address");
    let reached = wait_for(10.0, || {
        d2.try_exec("web2", &["ping", "-c", "1", "-W", "1", &web])
            .0
            .then_some(())
    });
    assert!(
        reached.is_some(),
        "a container on host 2 cannot reach {web} on host 1;\n{}",
        c.logs()
    );
    // A fresh container on host 2 reaches host 1 too (docker run --rm …).
    let (ok, out) = d2.run_rm("ov1", &["ping", "-c", "2", "-W", "2", &web]);
    assert!(ok, "docker run --rm ping {web} from host 2: {out}");
    // The whole path carries full-size frames: MTU 1450 end to end.
    let link = d1.exec("web", &["ip", "link", "show", "eth0"]);
    assert!(link.contains("mtu 1450"), "{link}");
    // busybox's ping cannot set DF: iputils' ping inside web2's namespace.
    let pid = d2.inspect("web2", "{{.State.Pid}}");
    let df = |size: &str| {
        std::process::Command::new("nsenter")
            .args([
                "-t", &pid, "-n", "ping", "-c", "1", "-W", "2", "-M", "do", "-s", size, &web,
            ])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    assert!(
        df("1422"),
        "a DF ping of 1450 bytes (MTU − 28 payload) does not cross"
    );
    assert!(
        !df("1423"),
        "a DF ping one byte over the MTU passed: the MTU is not enforced"
    );

    d1.docker_out(&["rm", "-f", "web"]);
    d2.docker_out(&["rm", "-f", "web2"]);
    for d in ds {
        d.docker_out(&["network", "rm", "ov1"]);
    }
    for h in &c.hosts {
        let clean = wait_for(5.0, || h.ns.marked_links().is_empty().then_some(()));
        assert!(
            clean.is_some(),
            "{}: links left {:?}",
            h.id,
            h.ns.marked_links()
        );
    }
}

engine_matrix!(two_dockerds_ping_over_vxlan);
