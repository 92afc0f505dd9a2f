//! Plays libnetwork: the requests dockerd sends, built as dockerd builds them.

use crate::PluginClient;
use serde_json::{Value, json};

pub struct Libnetwork {
    pub client: PluginClient,
}

/// One call's outcome: Ok(body) on HTTP 200 without `Err`, else Err(message).
pub type Answer = Result<Value, String>;

impl Libnetwork {
    pub fn new(client: PluginClient) -> Libnetwork {
        Libnetwork { client }
    }

    pub fn call(&mut self, method: &str, body: Value) -> Answer {
        let r = self
            .client
            .call(&format!("NetworkDriver.{method}"), &body)
            .map_err(|e| format!("transport: {e}"))?;
        let v = r.json();
        match (r.status, v.get("Err").and_then(Value::as_str)) {
            (200, None) => Ok(v),
            (_, Some(e)) => Err(e.to_string()),
            (s, None) => Err(format!("HTTP {s}: {}", r.text())),
        }
    }

    /// An `IpamDriver.<method>` call: IPAM answers errors in `Error`.
    pub fn ipam(&mut self, method: &str, body: Value) -> Answer {
        let r = self
            .client
            .call(&format!("IpamDriver.{method}"), &body)
            .map_err(|e| format!("transport: {e}"))?;
        let v = r.json();
        match (r.status, v.get("Error").and_then(Value::as_str)) {
            (200, None) => Ok(v),
            (_, Some(e)) => Err(e.to_string()),
            (s, None) => Err(format!("HTTP {s}: {}", r.text())),
        }
    }

    /// CreateNetwork with `-o` options, IPv4 subnets `(pool, gateway)` and IPv6 ones.
    pub fn create_network(
        &mut self,
        id: &str,
        generic: &[(&str, &str)],
        v4: &[(&str, Option<&str>)],
        v6: &[(&str, Option<&str>)],
        internal: bool,
    ) -> Answer {
        let ipam = |subnets: &[(&str, Option<&str>)]| -> Vec<Value> {
            subnets
                .iter()
                .map(|(pool, gw)| {
                    let mut d = json!({"AddressSpace": "LocalDefault", "Pool": pool});
                    if let Some(g) = gw {
                        let len = pool.split('/').nth(1).unwrap_or("24");
                        d["Gateway"] = json!(format!("{g}/{len}"));
                    }
                    d
                })
                .collect()
        };
        let generic: serde_json::Map<String, Value> = generic
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        let mut options = json!({
            "com.docker.network.enable_ipv4": true,
            "com.docker.network.enable_ipv6": !v6.is_empty(),
            "com.docker.network.generic": generic,
        });
        if internal {
            options["com.docker.network.internal"] = json!(true);
        }
        self.call(
            "CreateNetwork",
            json!({"NetworkID": id, "Options": options, "IPv4Data": ipam(v4), "IPv6Data": ipam(v6)}),
        )
    }

    pub fn create_endpoint(
        &mut self,
        net: &str,
        ep: &str,
        v4: &str,
        v6: &str,
        mac: &str,
    ) -> Answer {
        self.call(
            "CreateEndpoint",
            json!({"NetworkID": net, "EndpointID": ep,
                   "Interface": {"Address": v4, "AddressIPv6": v6, "MacAddress": mac},
                   "Options": {}}),
        )
    }

    pub fn join(&mut self, net: &str, ep: &str, sandbox: &str) -> Answer {
        self.call(
            "Join",
            json!({"NetworkID": net, "EndpointID": ep, "SandboxKey": sandbox,
                   "Options": {"com.docker.network.endpoint.exposedports": [], "com.docker.network.portmap": []}}),
        )
    }

    pub fn endpoint_call(&mut self, method: &str, net: &str, ep: &str) -> Answer {
        self.call(method, json!({"NetworkID": net, "EndpointID": ep}))
    }

    pub fn delete_network(&mut self, net: &str) -> Answer {
        self.call("DeleteNetwork", json!({"NetworkID": net}))
    }
}
