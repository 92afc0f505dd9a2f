//! `switchyard check`: validate a config and explain what it results in.

use crate::config::{Settings, describe_source};
use std::path::Path;

pub fn check(settings: &Settings, path: Option<&Path>) -> Result<(), String> {
    let b = &settings.backends;
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
    println!("  macvlan       {}", b.macvlan.explain());
    println!("  ipvlan        {}", b.ipvlan.explain());
    println!("  vxlan         {}", b.vxlan.explain());
    println!(
        "  cluster       {}",
        b.cluster.explain(&settings.plugin.state_dir)
    );
    if !b.cluster.etcd_endpoints.is_empty() {
        println!("  etcd auth     {}", b.cluster.explain_auth());
        b.cluster.tls_files()?;
    }
    println!(
        "  parents       {}",
        if b.parents.allow.is_empty() {
            "any interface".to_string()
        } else {
            b.parents.allow.join(", ")
        }
    );
    let present = |n: &str| Path::new("/sys/class/net").join(n).exists();
    if !b.macvlan.parent.is_empty() && !present(&b.macvlan.parent) {
        println!(
            "  warning: [macvlan] parent {} does not exist on this host now",
            b.macvlan.parent
        );
    }
    for a in b.parents.allow.iter().filter(|a| !a.ends_with('*')) {
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
