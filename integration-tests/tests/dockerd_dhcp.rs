//! `-o ipam=dhcp` on real dockerds (Engine 20.10, 28, 29) with a real
//! dnsmasq on the parent's LAN: `docker run` gets the server's address (a
//! reservation by `--mac-address`) and gateway, renewals reach the server
//! also after a plugin restart, `docker rm` releases the lease, and with no
//! server `docker run` fails within the bound with Switchyard's message.

use std::time::{Duration, Instant};
use switchyard_integration_tests::dnsmasq::{Dnsmasq, lan};
use switchyard_integration_tests::dockerd::{Engine, IMAGE};
use switchyard_integration_tests::{DockerLab, Lab, engine_matrix, wait_for};

fn dhcp_on_docker(engine: Engine) {
    let config = Lab::config()
        .tag("dd")
        .env("SWITCHYARD__DHCP__RENEW_EVERY_SECS", "3")
        .env("SWITCHYARD__DHCP__TIMEOUT_SECS", "4");
    let mut lab = DockerLab::new(engine, config);
    let lan = lan(&lab.host);
    let mut server = Dnsmasq::start(&lan, "tp1", &["--dhcp-host=02:42:c0:00:02:63,192.0.2.99"]);
    lab.create(
        "dh",
        &[
            "--ipam-driver",
            "null",
            "-o",
            "backend=macvlan",
            "-o",
            "parent=tp0",
            "-o",
            "ipam=dhcp",
        ],
    );

    lab.d
        .run_d("c1", "dh", &["--mac-address", "02:42:c0:00:02:63"]);
    let addrs = lab.d.exec("c1", &["ip", "-4", "addr", "show", "eth0"]);
    assert!(
        addrs.contains("192.0.2.99/24"),
        "{engine:?}: the reserved address: {addrs}"
    );
    let routes = lab.d.exec("c1", &["ip", "route"]);
    assert!(
        routes.contains("default via 192.0.2.1 dev eth0"),
        "{engine:?}: {routes}"
    );
    assert!(
        lab.d
            .try_exec("c1", &["ping", "-c", "2", "-W", "1", "192.0.2.1"])
            .0
    );

    let first = server
        .expiry("192.0.2.99")
        .expect("dnsmasq holds the lease");
    let renewed = wait_for(20.0, || server.expiry("192.0.2.99").filter(|e| *e > first));
    assert!(
        renewed.is_some(),
        "{engine:?}: no renewal: {}",
        server.log()
    );

    lab.restart_plugin();
    let before = server.expiry("192.0.2.99").unwrap();
    let renewed = wait_for(20.0, || server.expiry("192.0.2.99").filter(|e| *e > before));
    assert!(
        renewed.is_some(),
        "{engine:?}: no renewal after a plugin restart: {}",
        server.log()
    );
    let addrs = lab.d.exec("c1", &["ip", "-4", "addr", "show", "eth0"]);
    assert!(
        addrs.contains("192.0.2.99/24"),
        "{engine:?}: address kept: {addrs}"
    );

    lab.docker(&["rm", "-f", "c1"]);
    assert!(
        wait_for(10.0, || server.expiry("192.0.2.99").is_none().then_some(())).is_some(),
        "{engine:?}: docker rm released the lease: {:?}",
        server.leases()
    );

    // No server: docker run fails within the bound, saying why.
    server.stop();
    let t = Instant::now();
    let (ok, out) = lab
        .d
        .docker(&["run", "--rm", "--network", "dh", IMAGE, "true"]);
    assert!(
        !ok,
        "{engine:?}: docker run without a DHCP server succeeded: {out}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "{engine:?}: took {:?}",
        t.elapsed()
    );
    assert!(
        out.contains("no DHCP server answered on parent \"tp0\""),
        "{engine:?}: {out}"
    );
    lab.reset();
}

engine_matrix!(dhcp_on_docker);
