//! `switchyard status`: networks and endpoints, from the running plugin,
//! else from the state file.

use crate::config::Settings;
use crate::driver::StatusReport;
use std::path::Path;
use switchyard_client::PluginClient;
use switchyard_core::store::Store;

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
        .map(|n| crate::driver::network_status(n, &store.endpoints(&n.id), &present, &admin_down))
        .collect();
    eprintln!(
        "note: no plugin answers on {}; showing the state file",
        settings.plugin.socket.display()
    );
    Ok(StatusReport {
        instance: settings.driver_name(),
        state_file: store.path().display().to_string(),
        engine: None,
        cluster: settings
            .backends
            .cluster
            .offline_status(&settings.plugin.state_dir),
        networks,
    })
}

/// Whether link `name` exists and is administratively down (IFF_UP clear
/// in its flags), read from sysfs as the plugin is not there to ask.
fn admin_down(name: &str) -> bool {
    std::fs::read_to_string(Path::new("/sys/class/net").join(name).join("flags"))
        .ok()
        .and_then(|f| u32::from_str_radix(f.trim().trim_start_matches("0x"), 16).ok())
        .is_some_and(|flags| flags & nix::libc::IFF_UP as u32 == 0)
}
