//! One test's world without dockerd: a "host" network namespace with veth
//! parents (`tp0`, whose peer `tp1` plays the LAN, unless configured
//! otherwise), the real `switchyard` running inside it, and a client that
//! speaks to it as libnetwork does. Containers are namespaces the tests
//! make (`Netns::new`) and hand to `attach`.

use crate::libnetwork::Libnetwork;
use crate::{Netns, Plugin, random_id, wait_for};
use serde_json::Value;

/// How to build a `Lab`: its veth pairs, their MTU and the plugin's extra
/// environment.
pub struct LabConfig {
    tag: String,
    veths: Vec<(String, String)>,
    mtu: Option<u32>,
    env: Vec<(String, String)>,
}

impl Default for LabConfig {
    fn default() -> Self {
        LabConfig {
            tag: "h".into(),
            veths: vec![("tp0".into(), "tp1".into())],
            mtu: None,
            env: Vec::new(),
        }
    }
}

impl LabConfig {
    /// The namespace's name tag (names stay short for `ip`).
    pub fn tag(mut self, tag: &str) -> Self {
        self.tag = tag.into();
        self
    }

    /// Another veth pair beside tp0/tp1, both ends up.
    pub fn veth(mut self, a: &str, b: &str) -> Self {
        self.veths.push((a.into(), b.into()));
        self
    }

    /// The MTU of every veth end (not 1500, to make "the parent's MTU"
    /// observable).
    pub fn mtu(mut self, mtu: u32) -> Self {
        self.mtu = Some(mtu);
        self
    }

    /// An environment variable for the plugin (`SWITCHYARD__…` overrides,
    /// test hooks).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn start(self) -> Lab {
        let host = Netns::new(&self.tag);
        for (a, b) in &self.veths {
            host.veth(a, b);
            if let Some(mtu) = self.mtu {
                for l in [a, b] {
                    host.ip(&["link", "set", l, "mtu", &mtu.to_string()]);
                }
            }
        }
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let plugin = Plugin::start_with(&host, &env);
        let ln = Libnetwork::new(plugin.client());
        Lab { plugin, host, ln }
    }
}

/// Fields drop in declaration order: the plugin first, then the namespace
/// (with every link in it).
pub struct Lab {
    pub plugin: Plugin,
    pub host: Netns,
    pub ln: Libnetwork,
}

impl Lab {
    /// The default lab: namespace `h…` with tp0/tp1, a plain plugin.
    pub fn new() -> Lab {
        LabConfig::default().start()
    }

    pub fn config() -> LabConfig {
        LabConfig::default()
    }

    /// CreateNetwork with `-o` options and one IPv4 subnet without a
    /// gateway: the network's id, or the plugin's refusal.
    pub fn network(
        &mut self,
        opts: &[(&str, &str)],
        subnet: &str,
        internal: bool,
    ) -> Result<String, String> {
        let id = random_id();
        self.ln
            .create_network(&id, opts, &[(subnet, None)], &[], internal)?;
        Ok(id)
    }

    /// CreateEndpoint + Join, then what libnetwork does: move SrcName into
    /// the container, rename it eth0, address it (`cidr`), bring it up and
    /// add the answer's connected StaticRoutes. Returns (endpoint id, Join
    /// answer).
    pub fn attach(&mut self, net: &str, ctr: &Netns, cidr: &str) -> (String, Value) {
        self.attach_dual(net, ctr, cidr, "")
    }

    /// As `attach`, with an IPv6 address too (`v6`; empty: none).
    pub fn attach_dual(&mut self, net: &str, ctr: &Netns, cidr: &str, v6: &str) -> (String, Value) {
        let ep = random_id();
        self.ln
            .create_endpoint(net, &ep, cidr, v6, "")
            .unwrap_or_else(|e| panic!("CreateEndpoint: {e}"));
        let join = self
            .ln
            .join(net, &ep, ctr.path().to_str().unwrap())
            .unwrap_or_else(|e| panic!("Join: {e}"));
        let src = join["InterfaceName"]["SrcName"]
            .as_str()
            .unwrap()
            .to_string();
        let addrs: Vec<&str> = [cidr, v6].into_iter().filter(|a| !a.is_empty()).collect();
        self.host.hand_over(&src, ctr, "eth0", &addrs);
        for r in join["StaticRoutes"].as_array().into_iter().flatten() {
            if r["RouteType"] == 1 {
                ctr.ip(&[
                    "route",
                    "add",
                    r["Destination"].as_str().unwrap(),
                    "dev",
                    "eth0",
                ]);
            }
        }
        (ep, join)
    }

    /// Leave, what libnetwork does after it (move the link back under its
    /// SrcName), DeleteEndpoint.
    pub fn detach(&mut self, net: &str, ep: &str, ctr: &Netns, src: &str) {
        self.ln
            .endpoint_call("RevokeExternalConnectivity", net, ep)
            .unwrap();
        self.ln.endpoint_call("Leave", net, ep).unwrap();
        ctr.ip(&["link", "set", "eth0", "down"]);
        ctr.ip(&["link", "set", "eth0", "name", src]);
        ctr.ip(&["link", "set", src, "netns", self.host.name()]);
        self.ln.endpoint_call("DeleteEndpoint", net, ep).unwrap();
    }

    /// The plugin started again (same socket and state), and a new client.
    pub fn restart_plugin(&mut self) {
        self.plugin.restart();
        self.ln = Libnetwork::new(self.plugin.client());
    }

    /// Polls until no link in the host namespace carries a Switchyard mark
    /// (endpoint links are deleted in the background).
    pub fn assert_no_marked_links(&self) {
        let left = wait_for(5.0, || self.host.marked_links().is_empty().then_some(()));
        assert!(
            left.is_some(),
            "Switchyard links left behind: {:?}",
            self.host.marked_links()
        );
    }

    /// The alias of `name` in the host namespace (`Some("")` without one),
    /// None when the link does not exist.
    pub fn link_alias(&self, name: &str) -> Option<String> {
        self.host.link_alias(name)
    }

    /// True once `name` is gone from the host namespace (within 5 s).
    pub fn gone(&self, name: &str) -> bool {
        wait_for(5.0, || {
            (!self.host.links().contains(&name.to_string())).then_some(())
        })
        .is_some()
    }
}

impl Default for Lab {
    fn default() -> Self {
        Lab::new()
    }
}
