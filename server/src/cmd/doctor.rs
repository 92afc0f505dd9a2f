//! `switchyard doctor`: checks a host the way a support engineer would and
//! says, for each finding, what to do. It only looks: nothing is created
//! (kernel features are probed with requests the kernel refuses).

use super::clock_skew;
use crate::config::Settings;
use std::path::Path;
use std::time::{Duration, SystemTime};
use switchyard_backends::vxlan::TlsFiles;
use switchyard_backends::vxlan::inspect::{IdentityHolder, inspect};
use switchyard_client::PluginClient;
use switchyard_core::link::LinkManager;
use switchyard_core::spec::Parent;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Ok,
    Warn,
    Fail,
}

struct Finding {
    level: Level,
    what: String,
    /// What to do about it (empty when nothing is to be done).
    todo: String,
}

fn ok(what: impl Into<String>) -> Finding {
    Finding {
        level: Level::Ok,
        what: what.into(),
        todo: String::new(),
    }
}

fn warn(what: impl Into<String>, todo: impl Into<String>) -> Finding {
    Finding {
        level: Level::Warn,
        what: what.into(),
        todo: todo.into(),
    }
}

fn fail(what: impl Into<String>, todo: impl Into<String>) -> Finding {
    Finding {
        level: Level::Fail,
        what: what.into(),
        todo: todo.into(),
    }
}

/// Runs every check, prints the findings, and fails if any check failed.
pub fn doctor(settings: &Settings, docker_socket: &Path) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let mut findings = rt.block_on(kernel_and_parents(settings));
    findings.push(plugin(settings));
    findings.push(dockerd(settings, docker_socket));
    findings.extend(rt.block_on(cluster(settings)));
    for f in &findings {
        let tag = match f.level {
            Level::Ok => "ok  ",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        };
        println!("[{tag}] {}", f.what);
        if !f.todo.is_empty() {
            println!("       → {}", f.todo);
        }
    }
    match findings.iter().map(|f| f.level).max() {
        Some(Level::Fail) => Err("some checks failed (see above)".into()),
        _ => Ok(()),
    }
}

async fn kernel_and_parents(settings: &Settings) -> Vec<Finding> {
    let mut out = Vec::new();
    let links = match LinkManager::new() {
        Ok(l) => l,
        Err(e) => {
            return vec![fail(
                format!("cannot open a netlink socket: {e}"),
                "run switchyard doctor as root (the plugin needs CAP_NET_ADMIN)",
            )];
        }
    };
    for (kind, backend, module) in [
        ("macvlan", "macvlan", "macvlan"),
        ("ipvlan", "ipvlan", "ipvlan"),
        ("vlan", "802.1q parents (-o parent=eth0.30)", "8021q"),
        ("vxlan", "vxlan", "vxlan"),
    ] {
        out.push(match links.supports(kind).await {
            Ok(true) => ok(format!("kernel: {kind} links ({backend})")),
            Ok(false) => warn(
                format!("kernel: no {kind} links, so no {backend}"),
                format!("load the module (modprobe {module}) or use a kernel with it"),
            ),
            Err(e) => warn(format!("kernel: cannot probe {kind} links: {e}"), ""),
        });
    }
    let b = &settings.backends;
    for (section, parent) in [("macvlan", &b.macvlan.parent), ("ipvlan", &b.ipvlan.parent)] {
        if parent.is_empty() {
            continue;
        }
        let base = match Parent::parse(parent) {
            Ok(p) => p.host_interface().unwrap_or(parent).to_string(),
            Err(e) => {
                out.push(fail(
                    format!("[{section}] parent: {e}"),
                    "fix the config file",
                ));
                continue;
            }
        };
        out.push(match links.get(&base).await {
            Ok(Some(l)) if !l.up => warn(
                format!("[{section}] parent {base} exists but is down"),
                format!(
                    "bring it up (ip link set {base} up); containers have no traffic until then"
                ),
            ),
            Ok(Some(l)) => ok(format!("[{section}] parent {base}: up, MTU {}", l.mtu)),
            Ok(None) => fail(
                format!("[{section}] parent {base} does not exist on this host"),
                "name an existing interface in the config (see `ip link`)",
            ),
            Err(e) => warn(format!("[{section}] parent {base}: {e}"), ""),
        });
    }
    if !b.macvlan.parent.is_empty() && b.macvlan.parent == b.ipvlan.parent {
        out.push(warn(
            format!(
                "[macvlan] and [ipvlan] both default to parent {}; the kernel cannot put macvlan and ipvlan links on one parent",
                b.macvlan.parent
            ),
            "give one of them another parent (e.g. a VLAN sub-interface)",
        ));
    }
    out
}

fn plugin(settings: &Settings) -> Finding {
    let sock = &settings.plugin.socket;
    match PluginClient::new(sock).call_raw("NetworkDriver.GetCapabilities", b"") {
        Ok(r) if r.status == 200 => ok(format!("plugin answers on {}", sock.display())),
        Ok(r) => fail(
            format!(
                "{} answers, but not as Switchyard: HTTP {}",
                sock.display(),
                r.status
            ),
            "another program holds the socket; stop it or set [plugin] socket",
        ),
        Err(_) => warn(
            format!("no plugin answers on {}", sock.display()),
            "start it (systemctl start switchyard, or switchyard serve) before dockerd",
        ),
    }
}

fn dockerd(settings: &Settings, socket: &Path) -> Finding {
    let name = settings.driver_name();
    match crate::docker_api::get(socket, "/info") {
        Err(e) => warn(
            format!("dockerd does not answer on {}: {e}", socket.display()),
            "start dockerd, or pass --docker-socket PATH",
        ),
        Ok((200, body)) => {
            let info: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let version = info["ServerVersion"].as_str().unwrap_or("?").to_string();
            let sees = info["Plugins"]["Network"]
                .as_array()
                .is_some_and(|a| a.iter().any(|d| d.as_str() == Some(name.as_str())));
            if sees {
                ok(format!("dockerd {version} lists the network driver {name}"))
            } else {
                warn(
                    format!("dockerd {version} does not list the driver {name} yet"),
                    format!(
                        "dockerd lists a socket plugin once it has used it: try `docker network create -d {name} -o backend=… …`; if that fails, check that {} is in /run/docker/plugins",
                        settings.plugin.socket.display()
                    ),
                )
            }
        }
        Ok((status, _)) => warn(format!("dockerd answered /info with HTTP {status}"), ""),
    }
}

async fn cluster(settings: &Settings) -> Vec<Finding> {
    let c = &settings.backends.cluster;
    if c.etcd_endpoints.is_empty() {
        return vec![ok(
            "cluster: none configured (VXLAN networks are single-host)",
        )];
    }
    let mut out = Vec::new();
    let tls = c.tls_files();
    for url in &c.etcd_endpoints {
        match etcd_version(url, &tls).await {
            Ok((v, skew)) => {
                out.push(ok(format!("etcd {url} answers ({v})")));
                out.push(skew);
            }
            Err(e) => out.push(fail(
                format!("etcd {url} does not answer: {e}"),
                "check [cluster] etcd_endpoints and that this host reaches etcd; local networks keep working meanwhile",
            )),
        }
    }
    // This host's VTEP, as the plugin would find it (only looks).
    let vtep = match LinkManager::new() {
        Ok(links) => {
            switchyard_backends::vxlan::discover_underlay(&settings.backends.vxlan, c, &links)
                .await
                .ok()
                .and_then(|u| u.vtep)
        }
        Err(_) => None,
    };
    match inspect(c, &settings.plugin.state_dir, vtep).await {
        Err(e) => out.push(fail(
            e,
            "check [cluster] etcd_endpoints, the TLS files (ca_file, cert_file, key_file) and username/password; local networks keep working meanwhile",
        )),
        Ok(i) => {
            out.push(ok(format!(
                "etcd {} accepts this host's connection and credentials",
                i.version
            )));
            out.push(match i.identity {
                IdentityHolder::NoIdentityYet => ok(
                    "host identity: none yet (the plugin makes one at its first start, kept in [plugin] state_dir)",
                ),
                IdentityHolder::Free { host_id } => warn(
                    format!("host identity \"{host_id}\": no live agent holds it — the plugin here is not registered"),
                    "start the plugin, or see `switchyard status` for why it does not register",
                ),
                IdentityHolder::Ours { host_id, lease } => ok(format!(
                    "host identity \"{host_id}\": unique, held by this host's agent (etcd lease {lease:x})"
                )),
                IdentityHolder::Other { host_id, problem } => fail(
                    format!("host identity \"{host_id}\" is not unique: {problem}"),
                    "give each host its own [cluster] host_id (or delete the copied identity file on the clone) and restart its plugin",
                ),
            });
        }
    }
    out
}

/// etcd's `/version` (plain HTTP on its client URL, over TLS for
/// https://), and the clock skew its `Date` header shows.
async fn etcd_version(
    url: &str,
    tls: &Result<Option<TlsFiles>, String>,
) -> Result<(String, Finding), String> {
    let (https, rest) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
        (Some(r), _) => (false, r),
        (_, Some(r)) => (true, r),
        _ => return Err("write http://HOST:PORT or https://HOST:PORT".into()),
    };
    let hostport = rest.trim_end_matches('/');
    let addr: std::net::SocketAddr = hostport
        .parse()
        .map_err(|_| format!("{hostport} is not HOST:PORT with an IP address"))?;
    let request = format!("GET /version HTTP/1.0\r\nHost: {hostport}\r\n\r\n");
    let limit = Duration::from_secs(3);
    let sent = SystemTime::now();
    let exchange = async {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        if https {
            let files = match tls {
                Ok(Some(f)) => f,
                Ok(None) => return Err("https:// needs [cluster] ca_file".to_string()),
                Err(e) => return Err(e.clone()),
            };
            let mut s = super::etcd_https::connect(tcp, addr.ip(), files).await?;
            s.write_all(request.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            s.read_to_end(&mut out).await.map_err(|e| e.to_string())?;
        } else {
            let mut s = tcp;
            s.write_all(request.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            s.read_to_end(&mut out).await.map_err(|e| e.to_string())?;
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    };
    let out = tokio::time::timeout(limit, exchange)
        .await
        .map_err(|_| format!("no answer within {} s", limit.as_secs()))??;
    let received = SystemTime::now();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let v: serde_json::Value =
        serde_json::from_str(body).map_err(|_| "not an etcd /version answer".to_string())?;
    let version = format!("etcd {}", v["etcdserver"].as_str().unwrap_or("?"));
    let skew = match clock_skew::date_header(head) {
        None => warn(
            format!("clock skew against etcd {url}: its answer has no Date header"),
            "compare `date -u` here and on the etcd host",
        ),
        Some(date) => {
            let (e, u) = clock_skew::skew(sent, received, date);
            let said = format!(
                "this host's clock is {:.1} s {} etcd's at {url} (± {u:.1} s)",
                e.abs(),
                if e >= 0.0 { "ahead of" } else { "behind" }
            );
            if clock_skew::too_far(e, u) {
                warn(
                    format!("clock skew: {said}"),
                    format!(
                        "synchronise the clocks (chrony or systemd-timesyncd on both hosts); beyond {} s TLS certificates may look not yet valid or expired, and logs of the hosts do not line up",
                        clock_skew::TOLERATED.as_secs()
                    ),
                )
            } else {
                ok(format!("clock skew: {said}"))
            }
        }
    };
    Ok((version, skew))
}
