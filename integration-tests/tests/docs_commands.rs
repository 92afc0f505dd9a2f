//! The user docs cannot rot: every fenced block marked ```` ```sh test ```` in
//! docs/quickstart.md, docs/operators.md and docs/troubleshooting.md runs,
//! in order, as one `sh -e` script in a real dockerd's namespace (Engines
//! 20.10, 28 and 29) against the test plugin, and must succeed; a block
//! marked ```` ```sh test-fails ```` must fail. The compose file marked
//! ```` ```yaml compose ```` is translated into what Compose asks dockerd for
//! (`docker network create` with its `driver_opts`, `docker run` per
//! service; the test machines have no Compose), run, and the network's
//! options checked.
//!
//! The docs are written for a real host; the only substitutions are the
//! names the harness made: the driver name `switchyard` (`-d`, the socket
//! path), the LAN interfaces `eth0` → tp0 and `eth1` → tp2 where they name
//! a parent (`parent=…`, `"…"` in TOML, `link …`), and the image `busybox`
//! → the test image. `docker` and `switchyard` are the test's engine CLI and
//! binary, on the test dockerd's and plugin's sockets.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use switchyard_integration_tests::dockerd::{Engine, IMAGE};
use switchyard_integration_tests::{DockerLab, Lab, TempDir, engine_matrix, workspace_root};

const DOCS: [&str; 3] = [
    "docs/quickstart.md",
    "docs/operators.md",
    "docs/troubleshooting.md",
];

/// The fenced blocks of `text` whose info string is `info`.
fn blocks(text: &str, info: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match &mut current {
            None if line.trim_end() == format!("```{info}") => current = Some(String::new()),
            None => {}
            Some(_) if line.trim_end() == "```" => out.push(current.take().unwrap()),
            Some(b) => {
                b.push_str(line);
                b.push('\n');
            }
        }
    }
    assert!(current.is_none(), "a ```{info} block is not closed");
    out
}

/// The harness's names in place of a real host's.
fn substitute(script: &str, lab: &DockerLab) -> String {
    let name = &lab.plugin.name;
    script
        .replace(
            "/run/docker/plugins/switchyard.sock",
            lab.plugin.socket_path().to_str().unwrap(),
        )
        .replace("-d switchyard ", &format!("-d {name} "))
        .replace(
            "--ipam-driver switchyard ",
            &format!("--ipam-driver {name} "),
        )
        .replace("parent=eth0", "parent=tp0")
        .replace("parent=eth1", "parent=tp2")
        .replace("\"eth0\"", "\"tp0\"")
        .replace("\"eth1\"", "\"tp2\"")
        .replace("link eth0 ", "link tp0 ")
        .replace(" busybox ", &format!(" {IMAGE} "))
}

/// A directory with `docker` and `switchyard` for the docs' commands.
fn tools(lab: &DockerLab, dir: &Path) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let write = |name: &str, text: String| {
        let p = bin.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    write(
        "docker",
        format!(
            "#!/bin/sh\nDOCKER_CONFIG='{}' exec '{}' -H 'unix://{}' \"$@\"\n",
            lab.d.base().join("cli").display(),
            lab.engine().cli_bin().display(),
            lab.d.socket().display()
        ),
    );
    write(
        "switchyard",
        format!(
            "#!/bin/sh\nexport SWITCHYARD__PLUGIN__SOCKET='{}' SWITCHYARD__PLUGIN__STATE_DIR='{}'\nexec '{}' \"$@\"\n",
            lab.plugin.socket_path().display(),
            lab.plugin.state_dir.display(),
            switchyard_integration_tests::plugin::binary().display()
        ),
    );
}

/// Runs `script` with `sh -e -x` in the lab's namespace: (success, output).
fn run(lab: &DockerLab, dir: &Path, script: &str) -> (bool, String) {
    let path = format!(
        "{}:{}",
        dir.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            lab.host.name(),
            "sh",
            "-e",
            "-x",
            "-c",
            script,
        ])
        .current_dir(dir)
        .env("PATH", path)
        .env_remove("SWITCHYARD_CONFIG")
        .env_remove("DOCKER_HOST")
        .output()
        .expect("run sh");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The subset of a compose file the docs use: services (image, command,
/// networks) and networks (driver, driver_opts, ipam config subnet and
/// gateway). Anything else in it fails the test, so the docs cannot show a
/// compose file this check does not understand.
#[derive(Default, Debug)]
struct Compose {
    /// name → (image, command, networks)
    services: BTreeMap<String, (String, String, Vec<String>)>,
    /// name → (driver, driver_opts, subnet, gateway)
    networks: BTreeMap<String, (String, BTreeMap<String, String>, String, String)>,
}

fn parse_compose(text: &str) -> Compose {
    let mut c = Compose::default();
    let mut top = "";
    let mut item = String::new();
    let mut sub = "";
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let indent = line.len() - line.trim_start().len();
        let t = line.trim();
        let (key, value) = match t.split_once(':') {
            Some((k, v)) if !t.starts_with("- ") => (k.trim(), v.trim()),
            _ => ("", t),
        };
        match (indent, top) {
            (0, _) => {
                top = if key == "services" {
                    "services"
                } else {
                    "networks"
                }
            }
            (2, "services") => {
                item = key.to_string();
                c.services.entry(item.clone()).or_default();
            }
            (2, _) => {
                item = key.to_string();
                c.networks.entry(item.clone()).or_default();
            }
            (4, "services") => {
                let s = c.services.get_mut(&item).unwrap();
                match key {
                    "image" => s.0 = value.to_string(),
                    "command" => s.1 = value.to_string(),
                    "networks" => sub = "networks",
                    other => panic!("compose: service key {other:?} not understood"),
                }
            }
            (6, "services") if sub == "networks" => {
                let n = value.strip_prefix("- ").expect("networks: a list");
                c.services.get_mut(&item).unwrap().2.push(n.to_string());
            }
            (4, _) => {
                let n = c.networks.get_mut(&item).unwrap();
                match key {
                    "driver" => n.0 = value.to_string(),
                    "driver_opts" | "ipam" => sub = if key == "ipam" { "ipam" } else { "opts" },
                    other => panic!("compose: network key {other:?} not understood"),
                }
            }
            (6, _) if sub == "opts" => {
                let n = c.networks.get_mut(&item).unwrap();
                n.1.insert(key.to_string(), value.to_string());
            }
            (6, _) if sub == "ipam" && key == "config" => {}
            (8 | 10, _) if sub == "ipam" => {
                let t = t.trim_start_matches("- ");
                let (k, v) = t.split_once(':').expect("ipam config: key: value");
                let n = c.networks.get_mut(&item).unwrap();
                match k.trim() {
                    "subnet" => n.2 = v.trim().to_string(),
                    "gateway" => n.3 = v.trim().to_string(),
                    other => panic!("compose: ipam config key {other:?} not understood"),
                }
            }
            _ => panic!("compose: line {line:?} not understood"),
        }
    }
    c
}

/// What Compose does with the file (project `docs`), against the lab.
fn compose_up_and_down(lab: &DockerLab, text: &str) {
    let c = parse_compose(text);
    assert!(!c.networks.is_empty() && !c.services.is_empty(), "{c:?}");
    let subst = |s: &str| substitute(&format!(" {s} "), lab).trim().to_string();
    for (name, (driver, opts, subnet, gateway)) in &c.networks {
        assert_eq!(driver, "switchyard", "the docs' compose network driver");
        let mut args = vec![
            "network".to_string(),
            "create".into(),
            "-d".into(),
            lab.plugin.name.clone(),
        ];
        for (k, v) in opts {
            args.extend(["-o".into(), subst(&format!("{k}={v}"))]);
        }
        args.extend(["--subnet".into(), subnet.clone()]);
        if !gateway.is_empty() {
            args.extend(["--gateway".into(), gateway.clone()]);
        }
        args.push(format!("docs_{name}"));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        lab.docker(&refs);
        let options = lab.docker(&[
            "network",
            "inspect",
            "-f",
            "{{json .Options}}",
            &format!("docs_{name}"),
        ]);
        let options: BTreeMap<String, String> = serde_json::from_str(&options).unwrap();
        for (k, v) in opts {
            let want = subst(&format!("{k}={v}"));
            assert_eq!(
                format!("{k}={}", options.get(k).map(String::as_str).unwrap_or("")),
                want,
                "driver_opts {k} as dockerd keeps it: {options:?}"
            );
        }
    }
    for (name, (image, command, networks)) in &c.services {
        assert_eq!(image, "busybox", "the docs' compose image");
        let net = format!("docs_{}", networks[0]);
        let cname = format!("docs-{name}-1");
        let mut args = vec!["run", "-d", "--name", &cname, "--network", &net, IMAGE];
        args.extend(command.split_whitespace());
        lab.docker(&args);
        let running = lab.docker(&["inspect", "-f", "{{.State.Running}}", &cname]);
        assert_eq!(running, "true", "{cname}");
        lab.docker(&["rm", "-f", &cname]);
    }
    for name in c.networks.keys() {
        lab.docker(&["network", "rm", &format!("docs_{name}")]);
    }
}

fn docs_commands_run(engine: Engine) {
    let config = Lab::config()
        .tag("dc")
        .veth("tp2", "tp3")
        // The host kernel has no IPVLAN (see dockerd_backends.rs); the
        // ipvlan examples' links become macvlan links, the answers as ipvlan.
        .env("SWITCHYARD_TEST_IPVLAN_AS_MACVLAN", "1");
    let mut lab = DockerLab::new(engine, config);
    let root = workspace_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut ran = 0;
    for doc in DOCS {
        assert!(
            readme.contains(&format!("]({doc})")),
            "README.md does not link {doc}"
        );
        let text = std::fs::read_to_string(root.join(doc)).unwrap();
        let dir = TempDir::new("docs");
        tools(&lab, dir.path());
        let tested = blocks(&text, "sh test");
        assert!(!tested.is_empty(), "{doc} has no ```sh test block");
        for block in &tested {
            let script = substitute(block, &lab);
            let (ok, out) = run(&lab, dir.path(), &script);
            assert!(
                ok,
                "[Engine {}] {doc}: this block failed:\n{block}\n--- output ---\n{out}",
                engine.label()
            );
            ran += 1;
        }
        for block in blocks(&text, "sh test-fails") {
            let (ok, out) = run(&lab, dir.path(), &substitute(&block, &lab));
            assert!(
                !ok,
                "[Engine {}] {doc}: this block must fail:\n{block}\n{out}",
                engine.label()
            );
            ran += 1;
        }
        for compose in blocks(&text, "yaml compose") {
            compose_up_and_down(&lab, &compose);
            ran += 1;
        }
        lab.reset();
    }
    eprintln!("[Engine {}] {ran} doc blocks ran", engine.label());
}

engine_matrix!(docs_commands_run);
