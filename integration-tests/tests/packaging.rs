//! Installing and operating Switchyard as Docker users do: the managed (v2)
//! plugin `scripts/build-plugin.sh` makes, on every engine, and the Debian
//! package `scripts/build-deb.sh` makes, installed with dpkg on this machine
//! (its binary run against a test dockerd, never its unit started), plus
//! the systemd readiness notification.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::Duration;
use switchyard_integration_tests::dockerd::{Dockerd, Engine};
use switchyard_integration_tests::managed_plugin::{DRIVER, PLUGIN, create_plugin, plugin_pid};
use switchyard_integration_tests::packaging::{
    CAP_NET_ADMIN, CAP_SYS_ADMIN, PluginRegistry, build_plugin_dir, capabilities, release_binary,
    with_private_plugin_dir,
};
use switchyard_integration_tests::prereq::{
    require_command, require_root, run, try_command, try_run,
};
use switchyard_integration_tests::{Netns, TempDir, engine_matrix, wait_for, workspace_root};

/// Polls until container `c` is running.
fn wait_running(d: &Dockerd, c: &str, what: &str) {
    let up = wait_for(60.0, || {
        (d.docker(&["inspect", "-f", "{{.State.Running}}", c])
            .1
            .trim()
            == "true")
            .then_some(())
    });
    assert!(
        up.is_some(),
        "[Engine {}] {what}: container {c} is not running 60 s later: {}",
        d.engine.label(),
        d.docker(&["inspect", "-f", "{{json .State}}", c]).1
    );
}

fn managed_plugin(engine: Engine) {
    let ns = Netns::new("mp");
    ns.veth("tp0", "tp1");
    let work = TempDir::new("managed");
    let plugins = work.path().join("run-docker-plugins");
    with_private_plugin_dir(&plugins, || {
        managed_plugin_in(engine, &ns, work.path(), &plugins)
    });
}

fn managed_plugin_in(engine: Engine, ns: &Netns, work: &Path, plugins: &Path) {
    let mut d = Dockerd::start(engine, ns);
    let state = work.join("state");
    std::fs::create_dir_all(&state).unwrap();

    // create: both interfaces, host network, the one capability.
    create_plugin(&d, work);
    let types = d.docker_out(&[
        "plugin",
        "inspect",
        "-f",
        "{{range .Config.Interface.Types}}{{.}} {{end}}",
        PLUGIN,
    ]);
    assert!(
        types.contains("docker.networkdriver/1.0") && types.contains("docker.ipamdriver/1.0"),
        "interface types: {types}"
    );
    assert_eq!(
        d.docker_out(&[
            "plugin",
            "inspect",
            "-f",
            "{{.Config.Network.Type}}",
            PLUGIN
        ]),
        "host"
    );
    // Settings through `docker plugin set`: the state on a host path of the
    // test's, a SWITCHYARD__ variable.
    d.docker_out(&[
        "plugin",
        "set",
        PLUGIN,
        &format!("state.source={}", state.display()),
        "SWITCHYARD__LOG__LEVEL=debug",
    ]);
    let (ok, out) = d.docker(&[
        "plugin",
        "set",
        PLUGIN,
        "SWITCHYARD__PLUGIN__SOCKET=/x.sock",
    ]);
    assert!(!ok, "the socket must not be settable: {out}");
    // An address for the VXLAN network's VTEP (found at enable).
    ns.ip(&["addr", "add", "192.168.78.1/24", "dev", "tp0"]);
    d.docker_out(&["plugin", "enable", PLUGIN]);

    let pid = plugin_pid(&d);
    let caps = capabilities(pid, "CapEff");
    assert!(
        caps & (1 << CAP_NET_ADMIN) != 0,
        "plugin lacks CAP_NET_ADMIN: {caps:x}"
    );
    assert!(
        caps & (1 << CAP_SYS_ADMIN) == 0,
        "plugin has CAP_SYS_ADMIN: {caps:x}"
    );
    // network.type host: the plugin's network namespace is dockerd's.
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap(),
        std::fs::read_link(format!("/proc/{}/ns/net", d.pid())).unwrap(),
        "the plugin does not run in dockerd's network namespace"
    );
    let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let env = String::from_utf8_lossy(&env);
    assert!(env.contains("SWITCHYARD__LOG__LEVEL=debug"), "{env}");

    // A macvlan network on tp0 (IPAM by Switchyard too), two containers.
    d.docker_out(&[
        "network",
        "create",
        "-d",
        DRIVER,
        "--ipam-driver",
        DRIVER,
        "-o",
        "backend=macvlan",
        "-o",
        "parent=tp0",
        "--subnet",
        "192.168.77.0/24",
        "lan",
    ]);
    d.run_d("ca", "lan", &["--restart=always"]);
    d.run_d("cb", "lan", &[]);
    let a_ip = d.ip4("ca", "lan");
    d.assert_ping("cb", &a_ip, "after create");
    // A DHCP network needs what the managed plugin is not given
    // (CAP_NET_RAW, CAP_SYS_ADMIN): refused when created, with the way out.
    let (ok, out) = d.docker(&[
        "network",
        "create",
        "-d",
        DRIVER,
        "--ipam-driver",
        "null",
        "-o",
        "backend=macvlan",
        "-o",
        "parent=tp0",
        "-o",
        "ipam=dhcp",
        "dh",
    ]);
    assert!(
        !ok && out.contains("CAP_NET_RAW") && out.contains("Debian package"),
        "a DHCP network on the managed plugin: {ok} {out}"
    );
    // The programs VXLAN networks run come with the rootfs: the plugin's
    // own nftables table lets VXLAN in only from the network's peer.
    d.docker_out(&[
        "network",
        "create",
        "-d",
        DRIVER,
        "-o",
        "backend=vxlan",
        "-o",
        "vni=7077",
        "-o",
        "peers=192.168.77.250",
        "--subnet",
        "10.77.0.0/24",
        "ov",
    ]);
    let table = wait_for(10.0, || {
        let (ok, t) = ns.exec(&["nft", "list", "table", "inet", "switchyard"]);
        (ok && t.contains("192.168.77.250")).then_some(t)
    });
    assert!(
        table.is_some(),
        "no allow-list from the managed plugin (nft in its rootfs?): {}",
        ns.exec(&["nft", "list", "ruleset"]).1
    );
    d.docker_out(&["network", "rm", "ov"]);
    assert!(
        wait_for(10.0, || (!ns
            .exec(&["nft", "list", "table", "inet", "switchyard"])
            .0)
            .then_some(()))
        .is_some(),
        "the allow-list outlived the last VXLAN network"
    );
    // `switchyard status` on the host reaches the plugin's socket, which
    // dockerd keeps at /run/docker/plugins/<id>/switchyard.sock.
    let id = d.docker_out(&["plugin", "inspect", "-f", "{{.Id}}", PLUGIN]);
    let net = d.docker_out(&["network", "inspect", "-f", "{{.Id}}", "lan"]);
    assert!(
        plugins.join(&id).join("switchyard.sock").exists(),
        "the managed plugin's socket is not in the test's /run/docker/plugins"
    );
    let (ok, status) = try_command(
        std::process::Command::new(release_binary())
            .arg("status")
            // (the test's directory: see with_private_plugin_dir; the
            // path is short enough for a unix socket, the test's is not)
            .env(
                "SWITCHYARD__PLUGIN__SOCKET",
                format!("/run/docker/plugins/{id}/switchyard.sock"),
            )
            .env("SWITCHYARD__PLUGIN__STATE_DIR", work.join("none")),
    );
    assert!(
        ok && status.contains(&net[..12]),
        "switchyard status against the managed plugin:\n{status}"
    );
    let db: Vec<_> = std::fs::read_dir(&state)
        .unwrap()
        .filter_map(Result::ok)
        .collect();
    assert!(
        !db.is_empty(),
        "the state mount {} is empty: the plugin keeps its state elsewhere",
        state.display()
    );

    // disable/enable with the network and containers present.
    let (ok, out) = d.docker(&["plugin", "disable", PLUGIN]);
    eprintln!(
        "[Engine {}] plugin disable with a network present: {ok} {}",
        engine.label(),
        out.trim()
    );
    // dockerd counts the network's reference: `-f` is the documented way.
    assert!(!ok && out.contains("in use"), "plugin disable: {out}");
    d.docker_out(&["plugin", "disable", "-f", PLUGIN]);
    d.docker_out(&["plugin", "enable", PLUGIN]);
    d.assert_ping("cb", &a_ip, "after disable/enable");
    d.run_d("cc", "lan", &[]);
    d.assert_ping("cc", &a_ip, "a container joined after disable/enable");

    // dockerd restart: the enabled plugin is registered again and the
    // --restart=always container comes back on its network (moby#29471).
    d.restart();
    wait_running(&d, "ca", "after dockerd restart");
    plugin_pid(&d);
    d.docker_out(&["start", "cb"]);
    wait_running(&d, "cb", "docker start after dockerd restart");
    let a_ip2 = d.ip4("ca", "lan");
    d.assert_ping("cb", &a_ip2, "after dockerd restart");
    assert_eq!(
        d.docker_out(&["network", "inspect", "-f", "{{.Driver}}", "lan"]),
        DRIVER
    );

    // upgrade from a registry: the networks stay, the new rootfs runs.
    let v2 = work.join("plugin-v2");
    build_plugin_dir(&release_binary(), &v2);
    std::fs::write(v2.join("rootfs/etc/switchyard-release"), "v2\n").unwrap();
    let reg = PluginRegistry::serve(ns, &v2, "switchyard", "v2", &work.join("registry"));
    let remote = reg.reference("switchyard", "v2");
    let (ok, out) = d.docker(&["plugin", "disable", PLUGIN]);
    if !ok {
        assert!(out.contains("in use"), "plugin disable: {out}");
        d.docker_out(&["plugin", "disable", "-f", PLUGIN]);
    }
    d.docker_out(&[
        "plugin",
        "upgrade",
        "--grant-all-permissions",
        "--skip-remote-check",
        PLUGIN,
        &remote,
    ]);
    // dockerd keeps the env settings across an upgrade but resets mount
    // sources to the new config's: set the state's again (README says so).
    let settings = d.docker_out(&["plugin", "inspect", "-f", "{{json .Settings}}", PLUGIN]);
    eprintln!(
        "[Engine {}] settings after upgrade: {settings}",
        engine.label()
    );
    d.docker_out(&[
        "plugin",
        "set",
        PLUGIN,
        &format!("state.source={}", state.display()),
    ]);
    d.docker_out(&["plugin", "enable", PLUGIN]);
    let pid = plugin_pid(&d);
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/root/etc/switchyard-release"))
            .unwrap_or_default(),
        "v2\n",
        "the upgraded rootfs does not run"
    );
    assert_eq!(
        d.docker_out(&["plugin", "inspect", "-f", "{{.PluginReference}}", PLUGIN]),
        remote
    );
    let env = String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/environ")).unwrap())
        .into_owned();
    assert!(
        env.contains("SWITCHYARD__LOG__LEVEL=debug"),
        "settings lost in the upgrade: {env}"
    );
    d.assert_ping("cb", &a_ip2, "after upgrade");
    d.run_d("ce", "lan", &[]);
    d.assert_ping("ce", &a_ip2, "a container joined after upgrade");

    // Removing everything leaves no Switchyard link in the namespace.
    d.docker_out(&["rm", "-f", "ca", "cb", "cc", "ce"]);
    d.docker_out(&["network", "rm", "lan"]);
    d.docker_out(&["plugin", "disable", PLUGIN]);
    d.docker_out(&["plugin", "rm", PLUGIN]);
    assert!(
        ns.marked_links().is_empty(),
        "links left: {:?}",
        ns.marked_links()
    );
    drop(reg);
    drop(d);
}
engine_matrix!(managed_plugin);

/// `switchyard serve` sends READY=1 to $NOTIFY_SOCKET once its socket
/// answers (what `Type=notify` in the unit waits for).
#[test]
fn serve_notifies_readiness() {
    let ns = Netns::new("nt");
    let work = TempDir::new("notify");
    let notify = work.path().join("notify.sock");
    let fake = UnixDatagram::bind(&notify).unwrap();
    fake.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let sock = work.path().join("synt.sock");
    let mut child = std::process::Command::new("ip")
        .args(["netns", "exec", ns.name()])
        .arg(release_binary())
        .arg("serve")
        .env("NOTIFY_SOCKET", &notify)
        .env("SWITCHYARD__PLUGIN__SOCKET", &sock)
        .env("SWITCHYARD__PLUGIN__STATE_DIR", work.path().join("state"))
        .spawn()
        .unwrap();
    let mut buf = [0u8; 4096];
    let got = fake.recv(&mut buf);
    // The socket answers when READY=1 arrives, not later.
    let answers = switchyard_integration_tests::PluginClient::new(&sock)
        .call("Plugin.Activate", &serde_json::json!({}));
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
    let n = got.expect("no datagram on NOTIFY_SOCKET within 30 s");
    let msg = String::from_utf8_lossy(&buf[..n]);
    assert!(msg.starts_with("READY=1\n"), "{msg:?}");
    let answer = answers.expect("the plugin socket answers once READY=1 is sent");
    assert!(answer.text().contains("NetworkDriver"), "{}", answer.text());
}

/// Removes the package (purge) if the test stops half-way.
struct Purge;

impl Drop for Purge {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = try_run("dpkg", &["--purge", "switchyard"]);
        }
    }
}

/// dpkg's status of the package (`ii`, `rc`), "" when dpkg does not know it.
fn installed_status() -> String {
    let out = std::process::Command::new("dpkg-query")
        .args(["-W", "-f", "${db:Status-Abbrev}", "switchyard"])
        .output()
        .expect("run dpkg-query");
    if out.status.success() {
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    } else {
        String::new()
    }
}

/// The .deb `scripts/build-deb.sh` makes: `dpkg -i`, the unit verified,
/// the installed binary (with only the unit's CAP_NET_ADMIN) serving a test
/// dockerd and notifying readiness, `dpkg -r` keeping the state, `dpkg
/// --purge` deleting it.
#[test]
fn debian_package() {
    require_root();
    for (c, p) in [
        ("dpkg", "dpkg"),
        ("dpkg-deb", "dpkg"),
        ("dpkg-query", "dpkg"),
        ("setpriv", "util-linux"),
        ("nsenter", "util-linux"),
        ("mount", "mount"),
        ("systemd-analyze", "systemd"),
    ] {
        require_command(c, p);
    }
    let state = Path::new("/var/lib/switchyard");
    assert!(
        !installed_status().starts_with('i') && !installed_status().starts_with('r'),
        "the switchyard package is already on this machine ({}); this test installs and purges its own: `dpkg --purge switchyard` first",
        installed_status()
    );
    assert!(
        !state.exists(),
        "{} exists (a switchyard's state); this test's purge would delete it: move it away first",
        state.display()
    );
    let work = TempDir::new("deb");
    let deb = run(
        "bash",
        &[
            workspace_root()
                .join("scripts/build-deb.sh")
                .to_str()
                .unwrap(),
            "--bin",
            release_binary().to_str().unwrap(),
            work.path().join("out").to_str().unwrap(),
        ],
    );
    let deb = deb.trim().to_string();
    let contents = run("dpkg-deb", &["-c", &deb]);
    for f in [
        "./usr/bin/switchyard",
        "./lib/systemd/system/switchyard.service",
        "./etc/switchyard/switchyard.toml",
        "./usr/share/doc/switchyard/README.md",
    ] {
        assert!(contents.contains(f), "{deb} lacks {f}:\n{contents}");
    }

    let _purge = Purge;
    run("dpkg", &["-i", &deb]);
    assert!(
        installed_status().starts_with("ii"),
        "{}",
        installed_status()
    );
    let conffiles = run("dpkg-query", &["-W", "-f", "${Conffiles}", "switchyard"]);
    assert!(
        conffiles.contains("/etc/switchyard/switchyard.toml"),
        "not a conffile: {conffiles}"
    );
    assert!(state.is_dir(), "postinst made no {}", state.display());
    let unit = Path::new("/lib/systemd/system/switchyard.service");
    let text = std::fs::read_to_string(unit).unwrap();
    for line in [
        "Type=notify",
        "Before=docker.service",
        "ExecStart=/usr/bin/switchyard serve",
        "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_SYS_ADMIN CAP_SYS_PTRACE",
    ] {
        assert!(text.lines().any(|l| l == line), "the unit lacks {line}");
    }
    let (ok, out) = try_run("systemd-analyze", &["verify", unit.to_str().unwrap()]);
    assert!(
        ok && !out.contains("switchyard.service"),
        "systemd-analyze verify:\n{out}"
    );
    run(
        "/usr/bin/switchyard",
        &["check", "--config", "/etc/switchyard/switchyard.toml"],
    );

    // The installed binary against a test dockerd. Both run in a mount
    // namespace of their own where /run/docker/plugins is a test
    // directory: the machine's is not touched.
    let ns = Netns::new("deb");
    ns.veth("tp0", "tp1");
    let plugins = work.path().join("plugins");
    with_private_plugin_dir(&plugins, || serve_installed(&ns, &plugins, work.path()));

    // Some state, as a running plugin leaves it.
    std::fs::write(state.join("switchyard.redb"), b"state").unwrap();
    run("dpkg", &["-r", "switchyard"]);
    assert!(
        installed_status().starts_with("rc"),
        "{}",
        installed_status()
    );
    for gone in [
        "/usr/bin/switchyard",
        "/lib/systemd/system/switchyard.service",
        "/usr/share/doc/switchyard",
    ] {
        assert!(!Path::new(gone).exists(), "dpkg -r left {gone}");
    }
    assert!(
        state.join("switchyard.redb").is_file(),
        "dpkg -r deleted the state"
    );
    run("dpkg", &["--purge", "switchyard"]);
    assert!(!state.exists(), "dpkg --purge left {}", state.display());
    assert!(
        !Path::new("/etc/switchyard").exists(),
        "dpkg --purge left /etc/switchyard"
    );
    assert_eq!(installed_status(), "", "still known to dpkg after purge");
}

/// In `with_private_plugin_dir(plugins)`: starts Engine 20.10 (Debian's) in
/// `ns`, runs /usr/bin/switchyard there as the unit would (CAP_NET_ADMIN
/// only, NOTIFY_SOCKET), and puts two containers on a macvlan network.
fn serve_installed(ns: &Netns, plugins: &Path, work: &Path) {
    let name = "sydeb";
    let notify = work.join("notify.sock");
    let fake = UnixDatagram::bind(&notify).unwrap();
    fake.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let log = std::fs::File::create(work.join("switchyard.log")).unwrap();
    let mut child = std::process::Command::new("nsenter")
        .arg(format!("--net={}", ns.path().display()))
        .args([
            "setpriv",
            "--bounding-set",
            "-all,+net_admin",
            "/usr/bin/switchyard",
            "serve",
            "--config",
            "/etc/switchyard/switchyard.toml",
        ])
        .env("NOTIFY_SOCKET", &notify)
        .env(
            "SWITCHYARD__PLUGIN__SOCKET",
            format!("/run/docker/plugins/{name}.sock"),
        )
        .env("SWITCHYARD__PLUGIN__STATE_DIR", work.join("state"))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    struct Kill(u32);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.0 as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }
    let _kill = Kill(child.id());
    let mut buf = [0u8; 4096];
    let n = fake.recv(&mut buf).unwrap_or_else(|e| {
        panic!(
            "no READY=1 from the installed binary within 30 s ({e}):\n{}",
            std::fs::read_to_string(work.join("switchyard.log")).unwrap_or_default()
        )
    });
    assert!(buf[..n].starts_with(b"READY=1\n"));
    assert!(
        plugins.join(format!("{name}.sock")).exists(),
        "the socket is not in the test's plugin directory"
    );
    let pid = child.id() as i32;
    let caps = capabilities(pid, "CapEff");
    assert_eq!(caps, 1 << CAP_NET_ADMIN, "effective capabilities {caps:x}");

    let d = Dockerd::start(Engine::V20, ns);
    d.docker_out(&[
        "network",
        "create",
        "-d",
        name,
        "-o",
        "backend=macvlan",
        "-o",
        "parent=tp0",
        "--subnet",
        "192.168.78.0/24",
        "lan",
    ]);
    d.run_d("ca", "lan", &[]);
    d.run_d("cb", "lan", &[]);
    let a = d.ip4("ca", "lan");
    d.assert_ping("cb", &a, "the installed binary");
    d.docker_out(&["rm", "-f", "ca", "cb"]);
    d.docker_out(&["network", "rm", "lan"]);
    drop(d);
    drop(_kill);
    let stopped = wait_for(30.0, || child.try_wait().ok().flatten());
    assert!(
        stopped.is_some_and(|s| s.success()),
        "the installed binary did not stop cleanly on SIGTERM: {stopped:?}"
    );
}
