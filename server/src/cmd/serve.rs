//! `switchyard serve`: build the backends from their config sections,
//! restore and clean up, then answer dockerd on the socket until SIGTERM.

use super::socket;
use crate::config::{Settings, describe_source};
use crate::driver::{DhcpSettings, Driver, spawn_renewer};
use crate::metrics::Metrics;
use crate::{logging, routes};
use std::sync::Arc;
use std::time::Duration;
use switchyard_backends::Backends;
use switchyard_core::link::LinkManager;
use switchyard_core::spec::EngineSetting;
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

/// In-flight requests get this long after SIGTERM; then the plugin stops
/// whatever its clients do (a half-sent request must not keep it alive).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

async fn serve(settings: Settings, path: Option<std::path::PathBuf>) -> Result<(), String> {
    let name = settings.driver_name();
    let sock = &settings.plugin.socket;
    // Decided before anything on the host is touched: a second instance on
    // this socket, or on this state dir, stops here and changes nothing.
    let _claim = socket::claim(sock)?;
    let store = Store::open(&settings.plugin.state_dir).map_err(|e| e.to_string())?;
    let links = LinkManager::new().map_err(|e| format!("cannot open a netlink socket: {e}"))?;
    let backends = Backends::build(&settings.backends, &settings.plugin.state_dir, &links).await?;
    let policy = settings.policy();
    if policy.engine == EngineSetting::Auto && !settings.plugin.docker_socket.as_os_str().is_empty()
    {
        crate::engine_probe::spawn(
            settings.plugin.docker_socket.clone(),
            policy.engine_memory.clone(),
        );
    }
    let driver = Arc::new(
        Driver::new(name.clone(), store, links, policy, backends)
            .with_dhcp(DhcpSettings(settings.dhcp.clone())),
    );
    // The backends' background work (control plane, kernel sync) starts
    // here and runs beside the socket; none of it delays serving (dockerd
    // must get answers at boot).
    let report = driver.startup().await;
    spawn_renewer(driver.clone());
    let metrics = Arc::new(Metrics::new());
    metrics.startup(report.removed_links.len(), report.problems.len());
    info!(
        removed = report.removed_links.len(),
        problems = report.problems.len(),
        "startup reconciliation done"
    );

    // Metrics first: once the plugin's socket exists (what dockerd, systemd
    // and the tests wait for), /metrics answers too.
    if !settings.metrics.listen.is_empty() {
        crate::metrics::serve(&settings.metrics.listen, metrics.clone(), driver.clone()).await?;
    }
    let listener = socket::bind(sock, &settings.plugin.socket_group)?;
    super::notify::notify_listening(sock);
    info!(
        driver = %name,
        socket = %sock.display(),
        state = %settings.plugin.state_dir.display(),
        config = %describe_source(path.as_deref()),
        "switchyard serving"
    );
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let stopping = Arc::new(tokio::sync::Notify::new());
    let signalled = stopping.clone();
    let server = warp::serve(routes::routes(driver.clone(), metrics))
        .incoming(listener)
        .graceful(async move {
            tokio::select! {
                _ = term.recv() => info!("SIGTERM: finishing in-flight requests"),
                _ = int.recv() => info!("SIGINT: finishing in-flight requests"),
            }
            signalled.notify_one();
        })
        .run();
    tokio::select! {
        _ = server => {}
        _ = async {
            stopping.notified().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => warn!(
            grace_s = SHUTDOWN_GRACE.as_secs(),
            "requests still open after the grace period; stopping without them"
        ),
    }
    if tokio::time::timeout(SHUTDOWN_GRACE, driver.flush())
        .await
        .is_err()
    {
        warn!("deferred link deletions not finished; the next start removes what is left");
    }
    if let Err(e) = std::fs::remove_file(sock) {
        warn!(error = %e, "could not remove the socket");
    }
    info!("stopped");
    Ok(())
}
