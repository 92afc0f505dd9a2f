//! The multi-host lab (docs/multihost.md §8): an underlay namespace `ul`
//! holding a bridge (192.168.88.254/24) and a real etcd, "hosts" that are
//! namespaces with an `uplink` veth into that bridge (192.168.88.N/24), one
//! real `switchyard` per host running inside its namespace, and "containers"
//! that are namespaces too. The tests play libnetwork (and its IPAM client)
//! against each host's plugin.
//!
//! Everything is private to namespaces made here and is removed on drop, also
//! on panic: plugins and etcd are killed by their own PIDs.

use crate::libnetwork::{Answer, Libnetwork};
use crate::plugin::{Plugin, binary};
use crate::prereq::{require_command, try_command, try_run};
use crate::{Netns, TempDir, random_id, wait_for};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ETCD_IP: &str = "192.168.88.254";
pub const ETCD_URL: &str = "http://192.168.88.254:2379";
pub const LEASE_TTL: u64 = 3;
pub const GC_GRACE: u64 = 6;
pub const RESYNC_INTERVAL: u64 = 2;

/// The prerequisites of the multi-host lab; each missing one fails the test
/// naming its Debian package.
pub fn require_lab_tools() {
    crate::prereq::require_root();
    require_command("ip", "iproute2");
    require_command("bridge", "iproute2");
    require_command("etcd", "etcd-server");
    require_command("etcdctl", "etcd-client");
    require_command("iptables", "iptables");
    require_command("ping", "iputils-ping");
}

// ---------------------------------------------------------------------------
// etcd

/// A single-member etcd inside the underlay namespace, listening on
/// 192.168.88.254:2379 (clients) and 127.0.0.1:2380 (peers, private to `ul`).
pub struct Etcd {
    child: Option<Child>,
    ns: String,
    data: PathBuf,
    log: PathBuf,
    /// With TLS: clients must present a certificate signed by its CA.
    pki: Option<Pki>,
    _dir: TempDir,
}

/// The client URL of a TLS etcd.
pub const ETCD_TLS_URL: &str = "https://192.168.88.254:2379";

/// Certificates made for one test with the openssl CLI (Debian package
/// openssl): a CA, etcd's server certificate (IP SAN 192.168.88.254), a
/// client certificate, and a second CA that signed nothing etcd trusts.
pub struct Pki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    pub other_ca: PathBuf,
    dir: TempDir,
}

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pki {
    pub fn generate() -> Pki {
        require_command("openssl", "openssl");
        let dir = TempDir::new("pki");
        let d = dir.path();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        for ca in ["ca", "other-ca"] {
            let mut a = vec!["req", "-x509"];
            a.extend(ec);
            let (key, pem, subj) = (
                format!("{ca}.key"),
                format!("{ca}.pem"),
                format!("/CN=switchyard test {ca}"),
            );
            a.extend(["-keyout", &key, "-out", &pem, "-days", "2", "-subj", &subj]);
            openssl(d, &a);
        }
        for (name, ext) in [
            (
                "server",
                "subjectAltName=IP:192.168.88.254,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=CA:FALSE\n",
            ),
            (
                "client",
                "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=CA:FALSE\n",
            ),
        ] {
            std::fs::write(d.join(format!("{name}.ext")), ext).unwrap();
            let (key, csr, pem, extf) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("{name}.pem"),
                format!("{name}.ext"),
            );
            let subj = format!("/CN=switchyard-{name}");
            let mut a = vec!["req"];
            a.extend(ec);
            a.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
            openssl(d, &a);
            openssl(
                d,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-out",
                    &pem,
                    "-days",
                    "2",
                    "-extfile",
                    &extf,
                ],
            );
        }
        Pki {
            ca: d.join("ca.pem"),
            server_cert: d.join("server.pem"),
            server_key: d.join("server.key"),
            client_cert: d.join("client.pem"),
            client_key: d.join("client.key"),
            other_ca: d.join("other-ca.pem"),
            dir,
        }
    }

    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// `[cluster]` settings for a plugin that trusts `ca` and presents the
    /// client certificate.
    pub fn env(&self, ca: &std::path::Path) -> Vec<(String, String)> {
        let p = |p: &std::path::Path| p.display().to_string();
        vec![
            (
                "SWITCHYARD__CLUSTER__ETCD_ENDPOINTS".into(),
                ETCD_TLS_URL.into(),
            ),
            ("SWITCHYARD__CLUSTER__CA_FILE".into(), p(ca)),
            (
                "SWITCHYARD__CLUSTER__CERT_FILE".into(),
                p(&self.client_cert),
            ),
            ("SWITCHYARD__CLUSTER__KEY_FILE".into(), p(&self.client_key)),
        ]
    }
}

impl Etcd {
    pub fn start(ul: &Netns) -> Etcd {
        Etcd::start_with(ul, None)
    }

    /// With `pki`: TLS on the client URL (https://192.168.88.254:2379) and
    /// `--client-cert-auth`.
    pub fn start_with(ul: &Netns, pki: Option<Pki>) -> Etcd {
        require_command("etcd", "etcd-server");
        require_command("etcdctl", "etcd-client");
        let dir = TempDir::new("etcd");
        let mut e = Etcd {
            child: None,
            ns: ul.name().to_string(),
            data: dir.path().join("data"),
            log: dir.path().join("etcd.log"),
            pki,
            _dir: dir,
        };
        e.spawn();
        e
    }

    pub fn url(&self) -> &'static str {
        if self.pki.is_some() {
            ETCD_TLS_URL
        } else {
            ETCD_URL
        }
    }

    pub fn pki(&self) -> Option<&Pki> {
        self.pki.as_ref()
    }

    /// etcdctl's TLS flags.
    fn ctl_tls(&self) -> Vec<String> {
        match &self.pki {
            None => Vec::new(),
            Some(p) => vec![
                format!("--cacert={}", p.ca.display()),
                format!("--cert={}", p.client_cert.display()),
                format!("--key={}", p.client_key.display()),
            ],
        }
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "etcd is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open etcd log");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns, "etcd", "--name", "t"])
            .arg("--data-dir")
            .arg(&self.data)
            .args(match &self.pki {
                None => Vec::new(),
                Some(p) => vec![
                    format!("--cert-file={}", p.server_cert.display()),
                    format!("--key-file={}", p.server_key.display()),
                    format!("--trusted-ca-file={}", p.ca.display()),
                    "--client-cert-auth".to_string(),
                ],
            })
            .args([
                "--listen-client-urls",
                self.url(),
                "--advertise-client-urls",
                self.url(),
                "--listen-peer-urls",
                "http://127.0.0.1:2380",
                "--initial-advertise-peer-urls",
                "http://127.0.0.1:2380",
                "--initial-cluster",
                "t=http://127.0.0.1:2380",
                "--logger",
                "zap",
                "--log-outputs",
                "stderr",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn etcd (Debian package etcd-server)");
        self.child = Some(child);
        let ok = wait_for(20.0, || {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                panic!("etcd exited ({st}) at start:\n{}", self.log_text());
            }
            self.ctl(&["endpoint", "health"]).0.then_some(())
        });
        assert!(
            ok.is_some(),
            "etcd did not become healthy within 20 s:\n{}",
            self.log_text()
        );
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// `etcdctl ARGS` run inside the underlay namespace: (success, output).
    pub fn ctl(&self, args: &[&str]) -> (bool, String) {
        try_command(
            Command::new("ip")
                .args(["netns", "exec", &self.ns, "etcdctl"])
                .args(["--endpoints", self.url(), "--command-timeout=3s"])
                .args(self.ctl_tls())
                .args(args)
                .env("ETCDCTL_API", "3"),
        )
    }

    /// `etcdctl ARGS`, panicking on failure.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let (ok, out) = self.ctl(args);
        assert!(ok, "etcdctl {} failed: {out}", args.join(" "));
        out
    }

    /// SIGTERM and wait.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = c.wait();
        }
    }

    /// SIGKILL and wait.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same data directory.
    pub fn start_again(&mut self) {
        self.spawn();
    }

    /// The store's head revision.
    pub fn revision(&self) -> i64 {
        let out = self.ctl_ok(&["get", "/nonexistent-key-for-revision", "-w", "json"]);
        let v: Value = serde_json::from_str(out.trim()).expect("etcdctl -w json output");
        v["header"]["revision"]
            .as_i64()
            .unwrap_or_else(|| panic!("no header.revision in {out}"))
    }

    /// Compacts the store to its head revision (physically); returns it.
    pub fn compact_head(&self) -> i64 {
        let rev = self.revision();
        self.ctl_ok(&["compact", &rev.to_string(), "--physical"]);
        rev
    }

    /// Every key under `prefix` with its value, sorted by key.
    pub fn get_prefix(&self, prefix: &str) -> Vec<(String, String)> {
        let out = self.ctl_ok(&["get", "--prefix", prefix, "-w", "json"]);
        let v: Value = serde_json::from_str(out.trim()).expect("etcdctl -w json output");
        let mut kvs: Vec<(String, String)> = v["kvs"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|kv| {
                        (
                            b64(kv["key"].as_str().unwrap_or("")),
                            b64(kv["value"].as_str().unwrap_or("")),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        kvs.sort();
        kvs
    }

    pub fn put(&self, key: &str, value: &str) {
        self.ctl_ok(&["put", key, value]);
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = self.log_text();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!(
                "--- etcd log (last 40 lines) ---\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }
}

/// Decodes standard base64 (as etcdctl -w json prints keys and values).
fn b64(s: &str) -> String {
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => continue,
        } as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------
// Hosts

/// One emulated host: a namespace with `uplink` (192.168.88.N/24) and the
/// plugin running inside it.
pub struct Host {
    // Drop order: plugin first, then the namespace.
    pub plugin: Option<Plugin>,
    pub ns: Netns,
    /// `h1`, `h2`, … (the cluster host id).
    pub id: String,
    /// 192.168.88.N
    pub vtep: String,
    env: Vec<(String, String)>,
}

/// The kernel's view on one host of one VXLAN network.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KernelView {
    /// (mac, dst) of `self` FDB entries with a dst on syvx<vni>
    /// (all-zero MACs excluded).
    pub fdb: BTreeSet<(String, String)>,
    /// (ip, mac) of permanent neighbours on syvx<vni>.
    pub neigh: BTreeSet<(String, String)>,
}

impl Host {
    pub fn plugin(&self) -> &Plugin {
        self.plugin
            .as_ref()
            .unwrap_or_else(|| panic!("the plugin of {} is not running", self.id))
    }

    pub fn ln(&self) -> Libnetwork {
        Libnetwork::new(self.plugin().client())
    }

    fn env_refs(&self) -> Vec<(&str, &str)> {
        self.env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    /// Starts the plugin (first start).
    pub fn start_plugin(&mut self) {
        assert!(self.plugin.is_none());
        let p = Plugin::start_with(&self.ns, &self.env_refs());
        self.plugin = Some(p);
    }

    /// SIGKILL the plugin (the Plugin value stays, for its log and restart).
    pub fn kill_plugin(&mut self) {
        if let Some(p) = self.plugin.as_mut() {
            p.kill();
        }
    }

    /// SIGTERM the plugin and wait; true if it exited 0.
    pub fn stop_plugin(&mut self) -> bool {
        self.plugin.as_mut().map(|p| p.stop()).unwrap_or(true)
    }

    /// Starts the same plugin again (same socket, same state dir).
    pub fn restart_plugin(&mut self) {
        self.plugin
            .as_mut()
            .expect("plugin was never started")
            .restart();
    }

    /// An IPAM call; Ok(body) on HTTP 200 without a non-empty Error/Err.
    pub fn ipam(&self, method: &str, body: Value) -> Answer {
        let r = self
            .plugin()
            .client()
            .call(&format!("IpamDriver.{method}"), &body)
            .map_err(|e| format!("transport: {e}"))?;
        let v = r.json();
        let err = ["Error", "Err"].iter().find_map(|k| {
            v.get(*k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        });
        match (r.status, err) {
            (200, None) => Ok(v),
            (_, Some(e)) => Err(format!("HTTP {}: {e}", r.status)),
            (s, None) => Err(format!("HTTP {s}: {}", r.text())),
        }
    }

    /// Drops this host's TCP to and from etcd (a control-plane-only
    /// partition: the underlay and VXLAN traffic are untouched). Both
    /// directions, so that a watch stream cannot keep receiving events.
    pub fn partition(&self) {
        self.iptables("-A", &["DROP"]);
    }

    pub fn heal(&self) {
        self.iptables("-D", &["DROP"]);
    }

    /// A partition that resets this host's connections to etcd at once
    /// (and drops what etcd sends) instead of black-holing them silently.
    pub fn partition_reset(&self) {
        self.iptables("-A", &["REJECT", "--reject-with", "tcp-reset"]);
    }

    pub fn heal_reset(&self) {
        self.iptables("-D", &["REJECT", "--reject-with", "tcp-reset"]);
    }

    fn iptables(&self, op: &str, target: &[&str]) {
        require_command("iptables", "iptables");
        let rules: [&[&str]; 2] = [
            &["OUTPUT", "-p", "tcp", "-d", ETCD_IP, "--dport", "2379"],
            // Only from the wire: the RST that REJECT sends back to the local
            // socket comes in on lo and must pass.
            &[
                "INPUT", "-i", "uplink", "-p", "tcp", "-s", ETCD_IP, "--sport", "2379",
            ],
        ];
        for rule in rules {
            let mut args = vec!["iptables", op];
            args.extend_from_slice(rule);
            args.push("-j");
            // Incoming packets are dropped either way; only outgoing ones are reset.
            if rule[0] == "INPUT" {
                args.push("DROP");
            } else {
                args.extend_from_slice(target);
            }
            let (ok, out) = self.ns.exec(&args);
            assert!(ok, "iptables {} in {}: {out}", args[1..].join(" "), self.id);
        }
    }

    /// The MTU of a link in this host.
    pub fn mtu(&self, link: &str) -> u32 {
        link_mtu(&self.ns, link)
    }

    pub fn has_link(&self, link: &str) -> bool {
        self.ns.links().iter().any(|l| l == link)
    }

    /// FDB and neighbour entries of syvx<vni>; Err if the dump fails (e.g. no device).
    pub fn kernel(&self, vni: u32) -> Result<KernelView, String> {
        let dev = format!("syvx{vni}");
        let (ok, out) = fdb_show(&self.ns, &dev, true);
        if !ok {
            return Err(format!("bridge fdb show dev {dev} on {}: {out}", self.id));
        }
        let fdb_json: Value = serde_json::from_str(out.trim()).unwrap_or(json!([]));
        let mut fdb = BTreeSet::new();
        for e in fdb_json.as_array().into_iter().flatten() {
            let flags: Vec<&str> = e["flags"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let (Some(mac), Some(dst)) = (e["mac"].as_str(), e["dst"].as_str()) else {
                continue;
            };
            if flags.contains(&"self") && mac != "00:00:00:00:00:00" {
                fdb.insert((mac.to_string(), dst.to_string()));
            }
        }
        let (ok, out) = permanent_neighbours(&self.ns, &dev, true);
        if !ok {
            return Err(format!("ip neigh show dev {dev} on {}: {out}", self.id));
        }
        let nj: Value = serde_json::from_str(out.trim()).unwrap_or(json!([]));
        let mut neigh = BTreeSet::new();
        for e in nj.as_array().into_iter().flatten() {
            if let (Some(ip), Some(mac)) = (e["dst"].as_str(), e["lladdr"].as_str()) {
                neigh.insert((ip.to_string(), mac.to_string()));
            }
        }
        Ok(KernelView { fdb, neigh })
    }

    /// Raw text dumps (for before/after comparisons).
    pub fn kernel_text(&self, vni: u32) -> String {
        let dev = format!("syvx{vni}");
        let f = fdb_show(&self.ns, &dev, false).1;
        let n = permanent_neighbours(&self.ns, &dev, false).1;
        format!("fdb:\n{f}neigh:\n{n}")
    }

    /// Sets (Some) or removes (None) one `SWITCHYARD__…` variable of this
    /// host's plugin, for its next start.
    pub fn set_env(&mut self, key: &str, value: Option<&str>) {
        self.env.retain(|(k, _)| k != key);
        if let Some(v) = value {
            self.env.push((key.to_string(), v.to_string()));
        }
    }

    /// The `cluster` part of `switchyard status --json` (host id, VTEP,
    /// registered, problem).
    pub fn cluster_status(&self) -> Result<Value, String> {
        let st = self.status_json()?;
        match st.get("cluster") {
            Some(c) if c.is_object() => Ok(c.clone()),
            _ => Err(format!("status --json has no cluster part: {st:#}")),
        }
    }

    /// Waits until the plugin's status names a cluster problem (why it
    /// stays out of the cluster); the problem.
    pub fn wait_problem(&self, secs: f64) -> Option<String> {
        wait_for(secs, || {
            self.cluster_status()
                .ok()
                .and_then(|s| s["problem"].as_str().map(str::to_string))
        })
    }

    /// Waits until the plugin is registered with etcd; its host id.
    pub fn wait_registered(&self, secs: f64) -> Result<String, String> {
        let mut last = String::new();
        wait_for(secs, || match self.cluster_status() {
            Ok(c) if c["registered"] == true => c["host_id"].as_str().map(str::to_string),
            Ok(c) => {
                last = c.to_string();
                None
            }
            Err(e) => {
                last = e;
                None
            }
        })
        .ok_or_else(|| format!("{} not registered within {secs} s: {last}", self.id))
    }

    /// `switchyard status --json` for this host's plugin.
    pub fn status_json(&self) -> Result<Value, String> {
        let p = self.plugin();
        let out = Command::new("ip")
            .args(["netns", "exec", self.ns.name()])
            .arg(binary())
            .args(["status", "--json"])
            .env("SWITCHYARD__PLUGIN__SOCKET", &p.socket)
            .env("SWITCHYARD__PLUGIN__STATE_DIR", &p.state_dir)
            .env_remove("SWITCHYARD_CONFIG")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            return Err(format!(
                "switchyard status --json failed: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        serde_json::from_str(&text).map_err(|e| format!("status --json is not JSON ({e}): {text}"))
    }
}

/// `bridge [-j] fdb show dev DEV` in `ns`: (success, output).
pub fn fdb_show(ns: &Netns, dev: &str, json: bool) -> (bool, String) {
    let mut a = vec!["-n", ns.name()];
    if json {
        a.push("-j");
    }
    a.extend(["fdb", "show", "dev", dev]);
    try_run("bridge", &a)
}

/// `ip [-j] neigh show dev DEV nud permanent` in `ns`: (success, output).
pub fn permanent_neighbours(ns: &Netns, dev: &str, json: bool) -> (bool, String) {
    let mut a = vec!["-n", ns.name()];
    if json {
        a.push("-j");
    }
    a.extend(["neigh", "show", "dev", dev, "nud", "permanent"]);
    try_run("ip", &a)
}

pub fn link_mtu(ns: &Netns, link: &str) -> u32 {
    let out = ns.ip(&["-j", "link", "show", link]);
    let v: Value = serde_json::from_str(out.trim()).expect("ip -j link show");
    v[0]["mtu"].as_u64().expect("mtu") as u32
}

// ---------------------------------------------------------------------------
// The cluster

/// A VXLAN network as created on each host (one Docker network ID per host,
/// as each dockerd makes its own).
#[derive(Debug, Clone)]
pub struct Net {
    pub vni: u32,
    pub subnet: String,
    /// Per host index, where created.
    pub on: Vec<Option<OnHost>>,
}

/// A network as one host's dockerd created it.
#[derive(Debug, Clone)]
pub struct OnHost {
    /// Docker's network ID on that host.
    pub id: String,
    pub pool_id: String,
    /// The gateway IPAM gave that dockerd (CIDR), if it asked for one.
    pub gateway: Option<String>,
}

impl Net {
    pub fn id_on(&self, host: usize) -> &str {
        &self.on[host]
            .as_ref()
            .unwrap_or_else(|| panic!("network VNI {} not created on host {host}", self.vni))
            .id
    }
    pub fn pool_on(&self, host: usize) -> &str {
        &self.on[host].as_ref().expect("network on host").pool_id
    }
    pub fn prefix_len(&self) -> &str {
        self.subnet.split('/').nth(1).unwrap_or("24")
    }
}

/// A container attached to a network.
/// A new endpoint's CreateEndpoint and Join answers.
pub struct Joined {
    pub id: String,
    pub mac: String,
    /// Join's SrcName.
    pub src: String,
    pub join: Value,
}

pub struct Ep {
    // Drop order: the container namespace goes with it.
    pub ctr: Netns,
    pub host: usize,
    pub vni: u32,
    pub net_id: String,
    pub pool_id: String,
    pub id: String,
    /// Plain IPv4.
    pub ip: String,
    /// As IPAM answered (CIDR).
    pub cidr: String,
    pub mac: String,
    /// Join's SrcName.
    pub src: String,
    pub join: Value,
}

pub struct Cluster {
    // Drop order: containers, hosts (plugins, then namespaces), etcd, underlay.
    pub eps: Vec<Ep>,
    pub hosts: Vec<Host>,
    pub etcd: Etcd,
    pub ul: Netns,
    pub prefix: String,
}

/// Cluster settings for every plugin.
pub fn cluster_env(host_id: &str, prefix: &str) -> Vec<(String, String)> {
    [
        ("SWITCHYARD__CLUSTER__ETCD_ENDPOINTS", ETCD_URL.to_string()),
        ("SWITCHYARD__CLUSTER__HOST_ID", host_id.to_string()),
        ("SWITCHYARD__CLUSTER__PREFIX", prefix.to_string()),
        ("SWITCHYARD__CLUSTER__LEASE_TTL", LEASE_TTL.to_string()),
        ("SWITCHYARD__CLUSTER__GC_GRACE", GC_GRACE.to_string()),
        (
            "SWITCHYARD__CLUSTER__RESYNC_INTERVAL",
            RESYNC_INTERVAL.to_string(),
        ),
        ("SWITCHYARD__VXLAN__UNDERLAY", "uplink".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

impl Cluster {
    /// Underlay, etcd and `n` hosts with their plugins running.
    pub fn new(n: usize) -> Cluster {
        let mut c = Cluster::without_plugins(n);
        for h in &mut c.hosts {
            h.start_plugin();
        }
        c
    }

    /// Underlay, etcd and `n` hosts; no plugin started yet.
    pub fn without_plugins(n: usize) -> Cluster {
        Cluster::without_plugins_with(n, None)
    }

    /// With `pki`: etcd speaks TLS and wants client certificates, and every
    /// host's plugin trusts the CA and presents the client certificate.
    pub fn without_plugins_with(n: usize, pki: Option<Pki>) -> Cluster {
        require_lab_tools();
        let ul = Netns::new("ul");
        ul.ip(&["link", "add", "ulbr", "type", "bridge"]);
        ul.ip(&["addr", "add", &format!("{ETCD_IP}/24"), "dev", "ulbr"]);
        ul.ip(&["link", "set", "ulbr", "up"]);
        let etcd = Etcd::start_with(&ul, pki);
        let prefix = format!("/switchyard-test/{}/", crate::unique("c"));
        let mut hosts = Vec::new();
        for i in 1..=n {
            let ns = Netns::new(&format!("h{i}"));
            let port = format!("ulp{i}");
            ul.ip(&[
                "link",
                "add",
                &port,
                "type",
                "veth",
                "peer",
                "name",
                "uplink",
                "netns",
                ns.name(),
            ]);
            ul.ip(&["link", "set", &port, "master", "ulbr"]);
            ul.ip(&["link", "set", &port, "mtu", "1500", "up"]);
            let vtep = format!("192.168.88.{i}");
            ns.ip(&["link", "set", "uplink", "mtu", "1500"]);
            ns.ip(&["addr", "add", &format!("{vtep}/24"), "dev", "uplink"]);
            ns.ip(&["link", "set", "uplink", "up"]);
            let id = format!("h{i}");
            let mut env = cluster_env(&id, &prefix);
            if let Some(p) = etcd.pki() {
                for (k, v) in p.env(&p.ca) {
                    env.retain(|(ek, _)| *ek != k);
                    env.push((k, v));
                }
            }
            hosts.push(Host {
                plugin: None,
                ns,
                id,
                vtep,
                env,
            });
        }
        // The underlay must work before anything else.
        for h in &hosts {
            let ok = wait_for(5.0, || h.ns.ping(ETCD_IP).then_some(()));
            assert!(
                ok.is_some(),
                "{} cannot reach {ETCD_IP} on the underlay",
                h.id
            );
        }
        Cluster {
            eps: Vec::new(),
            hosts,
            etcd,
            ul,
            prefix,
        }
    }

    /// `etcdctl` from inside a host namespace (to check that the plugin's path
    /// to etcd works).
    pub fn etcdctl_from_host(&self, host: usize, args: &[&str]) -> (bool, String) {
        let mut a = vec!["etcdctl", "--endpoints", ETCD_URL, "--command-timeout=3s"];
        a.extend_from_slice(args);
        self.hosts[host].ns.exec(&a)
    }

    /// The IPAM steps dockerd takes, then CreateNetwork, on one host.
    /// `opts` are extra `-o` options besides backend and vni.
    /// An empty `vni` leaves the option out (the plugin allocates one).
    pub fn create_network_on(
        &self,
        host: usize,
        vni: &str,
        subnet: &str,
        opts: &[(&str, &str)],
    ) -> Result<OnHost, String> {
        let h = &self.hosts[host];
        let spaces = h
            .ipam("GetDefaultAddressSpaces", json!({}))
            .map_err(|e| format!("GetDefaultAddressSpaces on {}: {e}", h.id))?;
        let space = spaces["GlobalDefaultAddressSpace"]
            .as_str()
            .or(spaces["LocalDefaultAddressSpace"].as_str())
            .ok_or_else(|| format!("GetDefaultAddressSpaces answered {spaces}"))?
            .to_string();
        let pool = h
            .ipam(
                "RequestPool",
                json!({"AddressSpace": space, "Pool": subnet, "SubPool": "", "Options": {}, "V6": false}),
            )
            .map_err(|e| format!("RequestPool {subnet} on {}: {e}", h.id))?;
        let pool_id = pool["PoolID"]
            .as_str()
            .ok_or_else(|| format!("RequestPool answered {pool}"))?
            .to_string();
        if pool["Pool"].as_str() != Some(subnet) {
            return Err(format!("RequestPool {subnet} answered {pool}"));
        }
        // As dockerd before Engine 28 (no GwAllocCheck): the gateway comes
        // from the pool's Data or from a gateway RequestAddress.
        let gateway = match pool["Data"]["com.docker.network.gateway"].as_str() {
            Some(g) => g.to_string(),
            None => {
                let g = h
                    .ipam(
                        "RequestAddress",
                        json!({"PoolID": pool_id, "Address": "",
                               "Options": {"RequestAddressType": "com.docker.network.gateway"}}),
                    )
                    .map_err(|e| format!("gateway RequestAddress on {}: {e}", h.id))?;
                g["Address"]
                    .as_str()
                    .ok_or_else(|| format!("gateway RequestAddress answered {g}"))?
                    .to_string()
            }
        };
        let id = random_id();
        let mut generic = serde_json::Map::new();
        generic.insert("backend".into(), json!("vxlan"));
        if !vni.is_empty() {
            generic.insert("vni".into(), json!(vni));
        }
        for (k, v) in opts {
            generic.insert(k.to_string(), json!(v));
        }
        let body = json!({
            "NetworkID": id,
            "Options": {
                "com.docker.network.enable_ipv4": true,
                "com.docker.network.enable_ipv6": false,
                "com.docker.network.generic": generic,
            },
            "IPv4Data": [{"AddressSpace": space, "Pool": subnet, "Gateway": gateway}],
            "IPv6Data": [],
        });
        match h.ln().call("CreateNetwork", body) {
            Ok(_) => Ok(OnHost {
                id,
                pool_id,
                gateway: Some(gateway),
            }),
            Err(e) => {
                // dockerd releases the gateway and the pool when the driver refuses.
                let gw = gateway.split('/').next().unwrap_or("");
                let _ = h.ipam("ReleaseAddress", json!({"PoolID": pool_id, "Address": gw}));
                let _ = h.ipam("ReleasePool", json!({"PoolID": pool_id}));
                Err(e)
            }
        }
    }

    /// What dockerd does on `docker network rm` on one host: DeleteNetwork,
    /// then release the gateway and the pool.
    pub fn delete_network_on(&self, host: usize, net: &Net) -> Result<(), String> {
        let h = &self.hosts[host];
        let on = net.on[host].as_ref().expect("network on host");
        h.ln()
            .delete_network(&on.id)
            .map_err(|e| format!("DeleteNetwork on {}: {e}", h.id))?;
        if let Some(g) = &on.gateway {
            let gw = g.split('/').next().unwrap_or("");
            h.ipam(
                "ReleaseAddress",
                json!({"PoolID": on.pool_id, "Address": gw}),
            )
            .map_err(|e| format!("ReleaseAddress gateway {gw} on {}: {e}", h.id))?;
        }
        h.ipam("ReleasePool", json!({"PoolID": on.pool_id}))
            .map_err(|e| format!("ReleasePool on {}: {e}", h.id))?;
        Ok(())
    }

    /// Creates the network on every host; panics on any refusal.
    pub fn create_network(&self, vni: u32, subnet: &str, opts: &[(&str, &str)]) -> Net {
        let mut on = Vec::new();
        for i in 0..self.hosts.len() {
            let r = self
                .create_network_on(i, &vni.to_string(), subnet, opts)
                .unwrap_or_else(|e| {
                    panic!(
                        "CreateNetwork VNI {vni} {subnet} on {}: {e}",
                        self.hosts[i].id
                    )
                });
            on.push(Some(r));
        }
        Net {
            vni,
            subnet: subnet.to_string(),
            on,
        }
    }

    /// RequestAddress + CreateEndpoint + Join on `host`, then what libnetwork
    /// does: move SrcName into a new container namespace, rename it eth0,
    /// set the MAC CreateEndpoint answered, the address, up. Returns the
    /// index in `self.eps`.
    pub fn attach(&mut self, host: usize, net: &Net) -> usize {
        self.try_attach(host, net, None)
            .unwrap_or_else(|e| panic!("attach on {}: {e}", self.hosts[host].id))
    }

    pub fn try_attach(
        &mut self,
        host: usize,
        net: &Net,
        ip: Option<&str>,
    ) -> Result<usize, String> {
        let cidr = self.request_address(host, net, ip)?;
        let ctr = Netns::new("c");
        let joined = self.create_and_join(host, net, &cidr, &ctr)?;
        self.plug_in(host, &joined, &ctr, &cidr);
        Ok(self.record(host, net, ctr, cidr, joined))
    }

    /// RequestAddress (`ip`, or any) in `net`'s pool on `host`: the CIDR.
    pub fn request_address(
        &self,
        host: usize,
        net: &Net,
        ip: Option<&str>,
    ) -> Result<String, String> {
        let addr = self.hosts[host]
            .ipam(
                "RequestAddress",
                json!({"PoolID": net.pool_on(host), "Address": ip.unwrap_or(""), "Options": {}}),
            )
            .map_err(|e| format!("RequestAddress {ip:?}: {e}"))?;
        let cidr = addr["Address"]
            .as_str()
            .filter(|a| a.contains('/'))
            .ok_or_else(|| format!("RequestAddress answered {addr}"))?
            .to_string();
        let plain = cidr.split('/').next().unwrap();
        if let Some(want) = ip
            && want != plain
        {
            return Err(format!("RequestAddress for {want} answered {cidr}"));
        }
        Ok(cidr)
    }

    /// CreateEndpoint (with `cidr`) + Join (sandbox `ctr`) of a new endpoint
    /// of `net` on `host`.
    pub fn create_and_join(
        &self,
        host: usize,
        net: &Net,
        cidr: &str,
        ctr: &Netns,
    ) -> Result<Joined, String> {
        let net_id = net.id_on(host);
        let mut ln = self.hosts[host].ln();
        let id = random_id();
        let ce = ln
            .create_endpoint(net_id, &id, cidr, "", "")
            .map_err(|e| format!("CreateEndpoint {cidr}: {e}"))?;
        let mac = ce["Interface"]["MacAddress"]
            .as_str()
            .ok_or_else(|| format!("CreateEndpoint {cidr} answered no MacAddress: {ce}"))?
            .to_string();
        let join = ln
            .join(net_id, &id, ctr.path().to_str().unwrap())
            .map_err(|e| format!("Join: {e}"))?;
        let src = join["InterfaceName"]["SrcName"]
            .as_str()
            .ok_or_else(|| format!("Join answered {join}"))?
            .to_string();
        Ok(Joined { id, mac, src, join })
    }

    /// What libnetwork does after Join: move SrcName into `ctr`, rename it
    /// eth0, set the MAC CreateEndpoint answered, the address, up.
    pub fn plug_in(&self, host: usize, joined: &Joined, ctr: &Netns, cidr: &str) {
        let src = &joined.src;
        self.hosts[host]
            .ns
            .ip(&["link", "set", src, "netns", ctr.name()]);
        ctr.ip(&["link", "set", src, "name", "eth0"]);
        ctr.ip(&["link", "set", "eth0", "address", &joined.mac]);
        ctr.ip(&["addr", "add", cidr, "dev", "eth0", "nodad"]);
        ctr.ip(&["link", "set", "eth0", "up"]);
    }

    /// Keeps an attached endpoint in `self.eps`; returns its index.
    pub fn record(
        &mut self,
        host: usize,
        net: &Net,
        ctr: Netns,
        cidr: String,
        joined: Joined,
    ) -> usize {
        self.eps.push(Ep {
            ctr,
            host,
            vni: net.vni,
            net_id: net.id_on(host).to_string(),
            pool_id: net.pool_on(host).to_string(),
            id: joined.id,
            ip: cidr.split('/').next().unwrap().to_string(),
            cidr,
            mac: joined.mac,
            src: joined.src,
            join: joined.join,
        });
        self.eps.len() - 1
    }

    /// Leave, move the link back (as libnetwork does), DeleteEndpoint,
    /// ReleaseAddress; the container namespace goes away.
    pub fn detach(&mut self, idx: usize) {
        let ep = self.eps.remove(idx);
        let h = &self.hosts[ep.host];
        let mut ln = h.ln();
        ln.endpoint_call("Leave", &ep.net_id, &ep.id)
            .unwrap_or_else(|e| panic!("Leave: {e}"));
        ep.ctr.ip(&["link", "set", "eth0", "down"]);
        ep.ctr.ip(&["link", "set", "eth0", "name", &ep.src]);
        ep.ctr.ip(&["link", "set", &ep.src, "netns", h.ns.name()]);
        ln.endpoint_call("DeleteEndpoint", &ep.net_id, &ep.id)
            .unwrap_or_else(|e| panic!("DeleteEndpoint: {e}"));
        h.ipam(
            "ReleaseAddress",
            json!({"PoolID": ep.pool_id, "Address": ep.ip}),
        )
        .unwrap_or_else(|e| panic!("ReleaseAddress {}: {e}", ep.ip));
    }

    /// What `host`'s kernel should hold for `vni`: every endpoint of that
    /// network on another host, except those on `gone` hosts.
    pub fn desired(&self, host: usize, vni: u32, gone: &[usize]) -> KernelView {
        let mut v = KernelView::default();
        for e in &self.eps {
            if e.vni == vni && e.host != host && !gone.contains(&e.host) {
                v.fdb
                    .insert((e.mac.clone(), self.hosts[e.host].vtep.clone()));
                v.neigh.insert((e.ip.clone(), e.mac.clone()));
            }
        }
        v
    }

    /// Waits until every listed host's kernel equals `desired` for `vni`;
    /// Err describes the last difference.
    pub fn wait_kernel(
        &self,
        hosts: &[usize],
        vni: u32,
        gone: &[usize],
        secs: f64,
    ) -> Result<f64, String> {
        let t0 = Instant::now();
        let mut last = String::new();
        let ok = wait_for(secs, || {
            for &h in hosts {
                let want = self.desired(h, vni, gone);
                match self.hosts[h].kernel(vni) {
                    Ok(k) if k == want => {}
                    Ok(k) => {
                        last = format!(
                            "{} VNI {vni}: kernel {k:?}\n  want {want:?}",
                            self.hosts[h].id
                        );
                        return None;
                    }
                    Err(e) => {
                        last = e;
                        return None;
                    }
                }
            }
            Some(())
        });
        match ok {
            Some(()) => Ok(t0.elapsed().as_secs_f64()),
            None => Err(format!("not converged after {secs} s: {last}")),
        }
    }

    /// Every host's kernel for `vni` equal to the model.
    pub fn wait_all_kernels(&self, vni: u32, secs: f64) -> Result<f64, String> {
        let all: Vec<usize> = (0..self.hosts.len()).collect();
        self.wait_kernel(&all, vni, &[], secs)
    }

    /// What the store says `host`'s kernel should hold for `vni`: every
    /// endpoints/<vni>/* record of another host, with its VTEP from nodes/.
    pub fn store_desired(&self, host: usize, vni: u32) -> Result<KernelView, String> {
        let kvs = self.etcd.get_prefix(&self.prefix);
        let mut vteps = std::collections::BTreeMap::new();
        for (k, v) in &kvs {
            if let Some(h) = k.strip_prefix(&format!("{}nodes/", self.prefix)) {
                let val: Value = serde_json::from_str(v).unwrap_or(Value::Null);
                let vtep = val["vtep"]
                    .as_str()
                    .map(str::to_string)
                    .or_else(|| find_ipv4(&val))
                    .ok_or_else(|| format!("no VTEP in {k} = {v}"))?;
                vteps.insert(h.to_string(), vtep);
            }
        }
        let me = &self.hosts[host].id;
        let mut view = KernelView::default();
        for (k, v) in &kvs {
            if k.starts_with(&format!("{}endpoints/{vni}/", self.prefix)) {
                let val: Value =
                    serde_json::from_str(v).map_err(|e| format!("{k} = {v}: not JSON ({e})"))?;
                let h = val["host"]
                    .as_str()
                    .ok_or_else(|| format!("no host in {k} = {v}"))?;
                if h == me {
                    continue;
                }
                let ip = ["ip", "ipv4", "address", "addr"]
                    .iter()
                    .find_map(|f| val[*f].as_str())
                    .map(|s| s.split('/').next().unwrap().to_string())
                    .or_else(|| find_ipv4(&val))
                    .ok_or_else(|| format!("no IPv4 in {k} = {v}"))?;
                let mac = val["mac"]
                    .as_str()
                    .or(val["mac_address"].as_str())
                    .map(str::to_string)
                    .unwrap_or_else(|| mac_of(&ip));
                let vtep = val["vtep"]
                    .as_str()
                    .map(str::to_string)
                    .or_else(|| vteps.get(h).cloned())
                    .ok_or_else(|| format!("no VTEP for host {h} of {k}"))?;
                view.fdb.insert((mac.to_lowercase(), vtep));
                view.neigh.insert((ip, mac.to_lowercase()));
            }
        }
        Ok(view)
    }

    /// Keys under `<prefix><sub>`.
    pub fn keys(&self, sub: &str) -> Vec<String> {
        self.etcd
            .get_prefix(&format!("{}{sub}", self.prefix))
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }

    /// Waits until a ping from `from` to `to` (endpoint indexes) succeeds;
    /// returns the seconds it took.
    pub fn wait_ping(&self, from: usize, to: usize, secs: f64) -> Result<f64, String> {
        let t0 = Instant::now();
        let (a, b) = (&self.eps[from], &self.eps[to]);
        wait_for(secs, || {
            a.ctr
                .exec(&["ping", "-c", "1", "-W", "1", &b.ip])
                .0
                .then_some(())
        })
        .map(|()| t0.elapsed().as_secs_f64())
        .ok_or_else(|| {
            format!(
                "{} ({} on {}) cannot ping {} ({} on {}) within {secs} s",
                a.ip,
                short(&a.id),
                self.hosts[a.host].id,
                b.ip,
                short(&b.id),
                self.hosts[b.host].id
            )
        })
    }

    /// One ping from endpoint `from` to `to`.
    pub fn ping(&self, from: usize, to: usize) -> bool {
        let b = &self.eps[to];
        self.eps[from].ctr.ping(&b.ip)
    }

    /// Plugin logs of every host (for failure messages).
    pub fn logs(&self) -> String {
        let mut s = String::new();
        for h in &self.hosts {
            if let Some(p) = &h.plugin {
                // Without the HTTP/2 frame chatter of the etcd client.
                let log: String = p
                    .log_text()
                    .lines()
                    .filter(|l| !l.contains("frame=") && !l.contains("processing request"))
                    .map(|l| format!("{l}\n"))
                    .collect();
                s.push_str(&format!(
                    "--- {} plugin log ---\n{}\n",
                    h.id,
                    tail(&log, 60)
                ));
            }
        }
        s
    }
}

/// The last `n` lines.
pub fn tail(s: &str, n: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(n)..].join("\n")
}

pub fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// 02:42 + the IPv4 bytes (the contract's IP-derived MAC).
pub fn mac_of(ip: &str) -> String {
    let b: Vec<u8> = ip.split('.').map(|x| x.parse().unwrap_or(0)).collect();
    format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3])
}

fn find_ipv4(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => {
            let plain = s.split('/').next().unwrap();
            plain
                .parse::<std::net::Ipv4Addr>()
                .ok()
                .map(|a| a.to_string())
        }
        Value::Object(m) => m.values().find_map(find_ipv4),
        Value::Array(a) => a.iter().find_map(find_ipv4),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Continuous pings and monitors

/// A 10 Hz ping running in the background.
pub struct PingLoop {
    child: Option<Child>,
    what: String,
}

#[derive(Debug, Clone, Copy)]
pub struct PingStats {
    pub sent: u32,
    pub received: u32,
}

impl PingStats {
    pub fn lost(&self) -> u32 {
        self.sent.saturating_sub(self.received)
    }
}

impl PingLoop {
    /// Pings `to` from `from` every 100 ms for `secs` seconds.
    pub fn start(from: &Netns, to: &str, secs: f64) -> PingLoop {
        require_command("ping", "iputils-ping");
        let count = ((secs * 10.0).ceil() as u32).max(1).to_string();
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                from.name(),
                "ping",
                "-n",
                "-q",
                "-i",
                "0.1",
                "-W",
                "1",
            ])
            .args(["-c", &count, to])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ping");
        PingLoop {
            child: Some(child),
            what: format!("ping {to} from {}", from.name()),
        }
    }

    /// Ends the loop now (SIGINT: ping prints its summary); (sent, received).
    /// A probe in flight at that moment may count as lost.
    pub fn interrupt(self) -> PingStats {
        if let Some(c) = &self.child {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGINT,
            );
        }
        self.wait()
    }

    /// Waits for the loop to end; (sent, received).
    pub fn wait(mut self) -> PingStats {
        let child = self.child.take().unwrap();
        let out = child.wait_with_output().expect("wait for ping");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        parse_ping(&text).unwrap_or_else(|| {
            panic!(
                "{}: no summary in output: {text}{}",
                self.what,
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }
}

impl Drop for PingLoop {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn parse_ping(text: &str) -> Option<PingStats> {
    let line = text.lines().find(|l| l.contains("packets transmitted"))?;
    let nums: Vec<u32> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect();
    Some(PingStats {
        sent: *nums.first()?,
        received: *nums.get(1)?,
    })
}

/// A netlink monitor (`ip monitor neigh`, `bridge monitor fdb`) in a namespace.
pub struct Monitor {
    child: Option<Child>,
    out: PathBuf,
    _dir: TempDir,
}

impl Monitor {
    pub fn start(ns: &Netns, cmd: &[&str]) -> Monitor {
        let dir = TempDir::new("mon");
        let out = dir.path().join("out");
        let f = std::fs::File::create(&out).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", ns.name()])
            .args(cmd)
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .expect("spawn monitor");
        // Let it subscribe before anything happens.
        std::thread::sleep(Duration::from_millis(200));
        Monitor {
            child: Some(child),
            out,
            _dir: dir,
        }
    }

    /// Stops it; the lines it printed.
    pub fn stop(mut self) -> Vec<String> {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
