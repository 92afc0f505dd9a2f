//! Swarm networks of a Scope-local driver (Switchyard's scope). The swarm
//! manager stores only the driver's name for them and every node creates
//! the network with the options of its `--config-only` network, named by
//! `--config-from`; without one a node gets no options at all (`-o` given
//! with `--scope swarm` is dropped), so with an operator's default backend
//! it would silently become a different network on every node. dockerd
//! always sends `com.docker.network.internal` for a network made from a
//! config-only network and only with `--internal` otherwise.

use crate::protocol::{OPT_INTERNAL, Options};
use crate::{Error, Result};

/// What a user needs to do, also where a request cannot tell it is swarm's
/// (GwAllocCheck carries no NetworkID).
pub const CONFIG_FROM_HINT: &str = "a --scope swarm network takes its options only from a config-only network: docker network create --config-only -o backend=... [--subnet ...] CFG on each node, then docker network create -d switchyard:latest --scope swarm --config-from CFG NAME";

/// Whether `network_id` is a swarm network's (25 base-36 characters; the
/// edge has checked it is one of dockerd's two shapes).
pub fn is_swarm_network(network_id: &str) -> bool {
    network_id.len() == 25
}

/// A swarm network must come from a config-only network.
pub fn check_config_from(network_id: &str, raw: &Options) -> Result<()> {
    if is_swarm_network(network_id) && !raw.contains_key(OPT_INTERNAL) {
        return Err(Error::invalid(format!(
            "swarm network {network_id} was created without --config-from, so it has no options on this node; {CONFIG_FROM_HINT}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn opts(v: serde_json::Value) -> Options {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_swarm_network_without_a_config_only_network_is_refused_with_the_way() {
        let e = check_config_from(
            "qz2h2l5v0n6g5e6j9b1c7x3p4",
            &opts(json!({"com.docker.network.generic": {}})),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("without --config-from") && e.contains("--config-only"),
            "{e}"
        );
    }

    #[test]
    fn config_from_and_local_networks_pass() {
        let from_cfg = opts(json!({
            "com.docker.network.generic": {"backend": "vxlan"},
            "com.docker.network.internal": false,
        }));
        assert!(check_config_from("qz2h2l5v0n6g5e6j9b1c7x3p4", &from_cfg).is_ok());
        let local = opts(json!({"com.docker.network.generic": {"backend": "vxlan"}}));
        assert!(check_config_from(&"0a".repeat(32), &local).is_ok());
    }
}
