//! `switchyard serve`: build the backends from their config sections,
//! restore and clean up, then answer dockerd on the socket until SIGTERM.

use crate::config::{Settings, describe_source};
use crate::driver::Driver;
use crate::{logging, routes};
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use switchyard_backends::Backends;
use switchyard_core::link::LinkManager;
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
    let backends = Backends::build(&settings.backends, &settings.plugin.state_dir, &links).await?;
    let driver = Arc::new(Driver::new(
        name.clone(),
        store,
        links,
        settings.policy(),
        backends,
    ));
    // The backends' background work (control plane, kernel sync) starts
    // here and runs beside the socket; none of it delays serving (dockerd
    // must get answers at boot).
    let report = driver.startup().await;
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
