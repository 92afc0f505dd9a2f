//! A managed (v2) Switchyard plugin in a test dockerd, as a user installs
//! one: the `scripts/build-plugin.sh` directory, `docker plugin create`,
//! its state on a host directory of the test's (`docker plugin set`),
//! `docker plugin enable`. Networks name it by its full name, `DRIVER`.

use crate::dockerd::{Dockerd, Engine};
use crate::packaging::{
    build_plugin_dir, plugin_pids_below, release_binary, runc_without_time_namespace,
};
use crate::wait_for;
use std::path::Path;

/// The managed plugin's name in the tests (as `docker plugin create NAME`).
pub const PLUGIN: &str = "switchyard";
/// The driver name networks use: a managed plugin's full name, tag
/// included (`-d switchyard` is "could not resolve driver").
pub const DRIVER: &str = "switchyard:latest";

/// Builds the plugin directory in `work/plugin` from the release binary and
/// creates the plugin `PLUGIN` in `d` (not enabled); on Engine 29 with the
/// test machine's old runc first.
pub fn create_plugin(d: &Dockerd, work: &Path) {
    if d.engine == Engine::V29 {
        runc_without_time_namespace(d);
    }
    let dir = work.join("plugin");
    build_plugin_dir(&release_binary(), &dir);
    d.docker_out(&["plugin", "create", PLUGIN, dir.to_str().unwrap()]);
}

/// `create_plugin`, then the state in `work/state` and `extra` settings
/// (`KEY=VALUE`) through `docker plugin set`, then `docker plugin enable`;
/// waits for the plugin's process.
pub fn install(d: &Dockerd, work: &Path, extra: &[&str]) -> i32 {
    create_plugin(d, work);
    let state = work.join("state");
    std::fs::create_dir_all(&state).expect("create the plugin's state directory");
    let source = format!("state.source={}", state.display());
    let mut args = vec!["plugin", "set", PLUGIN, &source];
    args.extend(extra);
    d.docker_out(&args);
    d.docker_out(&["plugin", "enable", PLUGIN]);
    plugin_pid(d)
}

/// The plugin's `switchyard serve` process (its root is below the
/// dockerd's data-root), waiting for it to appear.
pub fn plugin_pid(d: &Dockerd) -> i32 {
    let base = d.base().to_owned();
    let pid = wait_for(20.0, || plugin_pids_below(&base).first().copied());
    pid.unwrap_or_else(|| {
        panic!(
            "[Engine {}] no `switchyard serve` runs under a shim of the dockerd in {} (the plugin did not start)",
            d.engine.label(),
            base.display()
        )
    })
}
