//! The three commands' bodies: serving the socket, checking a config,
//! printing status.

use crate::config::{Settings, describe_source};
use crate::driver::{Driver, StatusReport};
use crate::{logging, routes};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use switchyard_backends::Backends;
use switchyard_backends::vxlan::{
    Cluster, ClusterConfig, NodeRecord, Underlay, Vxlan, VxlanConfig,
};
use switchyard_core::link::LinkManager;
use switchyard_core::plugin_client::PluginClient;
use switchyard_core::store::Store;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{info, warn};

pub fn run(settings: Settings, path: Option<std::path::PathBuf>) -> Result<(), String> {
    logging::init(&settings.log.level, &settings.log.format);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    rt.block_on(serve(settings, path))
}

async fn serve(settings: Settings, path: Option<std::path::PathBuf>) -> Result<(), String> {
    let name = settings.driver_name();
    let store = Store::open(&settings.plugin.state_dir).map_err(|e| e.to_string())?;
    let links = LinkManager::new().map_err(|e| format!("cannot open a netlink socket: {e}"))?;
    let vxlan = vxlan_backend(&settings, &links).await?;
    let driver = Arc::new(Driver::new(
        name.clone(),
        store,
        links.clone(),
        settings.policy(),
        Backends::new(vxlan.clone()),
    ));
    driver.restore_backends();
    let report = driver.reconcile().await;
    // The control plane and the kernel reconcile run beside the socket;
    // neither delays serving (dockerd must get answers at boot).
    if let Some(c) = vxlan.cluster() {
        tokio::spawn(c.clone().run());
    }
    tokio::spawn(vxlan.clone().run_reconciler(
        links,
        name.clone(),
        Duration::from_secs(settings.cluster.resync_interval as u64),
    ));
    info!(
        removed = report.removed_links.len(),
        problems = report.problems.len(),
        "startup reconciliation done"
    );

    let sock = &settings.plugin.socket;
    if let Some(dir) = sock.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create socket directory {}: {e}", dir.display()))?;
    }
    // A socket file left by a killed run would make bind fail with EADDRINUSE.
    if sock.exists() {
        if std::os::unix::net::UnixStream::connect(sock).is_ok() {
            return Err(format!(
                "{} is already served by another process (another switchyard?); stop it or set [plugin] socket to another path",
                sock.display()
            ));
        }
        let _ = std::fs::remove_file(sock);
    }
    let listener = tokio::net::UnixListener::bind(sock)
        .map_err(|e| format!("cannot listen on {}: {e}", sock.display()))?;
    let _ = std::fs::set_permissions(sock, std::fs::Permissions::from_mode(0o660));
    info!(
        driver = %name,
        socket = %sock.display(),
        state = %settings.plugin.state_dir.display(),
        config = %describe_source(path.as_deref()),
        "switchyard serving"
    );
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    warp::serve(routes::routes(driver.clone()))
        .incoming(listener)
        .graceful(async move {
            tokio::select! {
                _ = term.recv() => info!("SIGTERM: finishing in-flight requests"),
                _ = int.recv() => info!("SIGINT: finishing in-flight requests"),
            }
        })
        .run()
        .await;
    driver.flush().await;
    if let Err(e) = std::fs::remove_file(sock) {
        warn!(error = %e, "could not remove the socket");
    }
    info!("stopped");
    Ok(())
}

/// The address in an etcd URL (`http://10.0.0.1:2379` → 10.0.0.1), if it is one.
fn etcd_host_ip(url: &str) -> Option<std::net::IpAddr> {
    let rest = url.split("://").nth(1)?;
    let host = rest.rsplit_once(':').map(|(h, _)| h).unwrap_or(rest);
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

async fn vxlan_backend(settings: &Settings, links: &LinkManager) -> Result<Vxlan, String> {
    let v = &settings.vxlan;
    let underlay = Underlay::discover(
        links,
        Some(v.underlay.as_str()).filter(|u| !u.is_empty()),
        v.local_ip.parse().ok(),
        settings
            .cluster
            .etcd_endpoints
            .iter()
            .find_map(|e| etcd_host_ip(e)),
    )
    .await?;
    info!(
        underlay = underlay.ifname.as_deref().unwrap_or("-"),
        vtep = %underlay.vtep.map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
        mtu = underlay.mtu,
        "VXLAN underlay"
    );
    let c = &settings.cluster;
    let cluster = (!c.etcd_endpoints.is_empty()).then(|| {
        Cluster::new(
            ClusterConfig {
                endpoints: c.etcd_endpoints.clone(),
                host_id: settings.host_id(),
                prefix: c.prefix.clone(),
                lease_ttl: c.lease_ttl as i64,
                gc_grace: Duration::from_secs(c.gc_grace as u64),
                resync: Duration::from_secs(c.resync_interval as u64),
            },
            NodeRecord {
                vtep: underlay
                    .vtep
                    .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0])),
                underlay_mtu: underlay.mtu,
            },
        )
    });
    Ok(Vxlan::new(
        VxlanConfig {
            port: v.port,
            vni_min: v.vni_min,
            vni_max: v.vni_max,
        },
        underlay,
        cluster,
    ))
}

pub fn check(settings: &Settings, path: Option<&Path>) -> Result<(), String> {
    println!("configuration OK ({})", describe_source(path));
    println!(
        "  driver name   {} (docker network create -d {} …)",
        settings.driver_name(),
        settings.driver_name()
    );
    println!("  socket        {}", settings.plugin.socket.display());
    if settings.plugin.socket.parent() != Some(Path::new("/run/docker/plugins")) {
        println!(
            "                note: dockerd discovers sockets only in /run/docker/plugins; elsewhere add /etc/docker/plugins/{}.spec containing unix://{}",
            settings.driver_name(),
            settings.plugin.socket.display()
        );
    }
    println!("  state_dir     {}", settings.plugin.state_dir.display());
    println!(
        "  backend       {}",
        if settings.plugin.default_backend.is_empty() {
            "required on every network (-o backend=…)".to_string()
        } else {
            format!(
                "{} unless -o backend=… says otherwise",
                settings.plugin.default_backend
            )
        }
    );
    println!(
        "  macvlan       parent {}, mode {}",
        if settings.macvlan.parent.is_empty() {
            "required (-o parent=…)"
        } else {
            &settings.macvlan.parent
        },
        settings.macvlan.mode
    );
    println!(
        "  ipvlan        parent {}, mode {}, flag {}",
        if settings.ipvlan.parent.is_empty() {
            "required (-o parent=…)"
        } else {
            &settings.ipvlan.parent
        },
        settings.ipvlan.mode,
        settings.ipvlan.flag
    );
    println!(
        "  vxlan         underlay {}, UDP port {}, VNIs {}–{}",
        if settings.vxlan.underlay.is_empty() {
            "discovered at start"
        } else {
            &settings.vxlan.underlay
        },
        settings.vxlan.port,
        settings.vxlan.vni_min,
        settings.vxlan.vni_max
    );
    if settings.cluster.etcd_endpoints.is_empty() {
        println!("  cluster       none: VXLAN networks are single-host (or -o peers=…)");
    } else {
        println!(
            "  cluster       etcd {} as host {} (prefix {}, lease {} s, GC after {} s)",
            settings.cluster.etcd_endpoints.join(","),
            settings.host_id(),
            settings.cluster.prefix,
            settings.cluster.lease_ttl,
            settings.cluster.gc_grace
        );
    }
    println!(
        "  parents       {}",
        if settings.parents.allow.is_empty() {
            "any interface".to_string()
        } else {
            settings.parents.allow.join(", ")
        }
    );
    let present = |n: &str| Path::new("/sys/class/net").join(n).exists();
    if !settings.macvlan.parent.is_empty() && !present(&settings.macvlan.parent) {
        println!(
            "  warning: [macvlan] parent {} does not exist on this host now",
            settings.macvlan.parent
        );
    }
    for a in settings.parents.allow.iter().filter(|a| !a.ends_with('*')) {
        if !present(a) {
            println!("  warning: [parents] allow entry {a} does not exist on this host now");
        }
    }
    println!(
        "  log           level {}, format {}",
        settings.log.level, settings.log.format
    );
    Ok(())
}

pub fn status(settings: &Settings, json: bool) -> Result<(), String> {
    let report: StatusReport =
        match PluginClient::new(&settings.plugin.socket).call_raw("Switchyard.Status", b"") {
            Ok(r) if r.status == 200 => serde_json::from_slice(&r.body)
                .map_err(|e| format!("the plugin's status answer is not understood: {e}"))?,
            _ => offline_status(settings)?,
        };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print!("{}", report.render());
    }
    Ok(())
}

/// The plugin is not running: read the state file directly.
fn offline_status(settings: &Settings) -> Result<StatusReport, String> {
    let store = Store::open(&settings.plugin.state_dir).map_err(|e| e.to_string())?;
    let present = |n: &str| Some(Path::new("/sys/class/net").join(n).exists());
    let networks = store
        .networks()
        .iter()
        .map(|n| crate::driver::network_status(n, &store.endpoints(&n.id), &present))
        .collect();
    eprintln!(
        "note: no plugin answers on {}; showing the state file",
        settings.plugin.socket.display()
    );
    Ok(StatusReport {
        instance: settings.driver_name(),
        state_file: store.path().display().to_string(),
        networks,
    })
}
