//! Network namespaces the tests own. Nothing here touches the machine's own
//! interfaces: every link is created inside a namespace made here, and the
//! namespace (with every link in it) is deleted on drop.

use crate::prereq::{require_command, require_root, run, try_run};
use crate::unique;
use std::path::PathBuf;

pub struct Netns {
    name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        require_root();
        require_command("ip", "iproute2");
        let name = unique(&format!("sy{tag}"));
        run("ip", &["netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The bind-mounted nsfs file, usable as a Docker `SandboxKey`.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.name))
    }

    /// `ip -n NS ARGS`, panicking on failure.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut a = vec!["-n", &self.name];
        a.extend_from_slice(args);
        run("ip", &a)
    }

    /// `ip netns exec NS CMD ARGS`: (success, output).
    pub fn exec(&self, cmd: &[&str]) -> (bool, String) {
        let mut a = vec!["netns", "exec", &self.name];
        a.extend_from_slice(cmd);
        try_run("ip", &a)
    }

    /// A veth pair inside this namespace, both ends up.
    pub fn veth(&self, a: &str, b: &str) {
        self.ip(&["link", "add", a, "type", "veth", "peer", "name", b]);
        self.ip(&["link", "set", a, "up"]);
        self.ip(&["link", "set", b, "up"]);
    }

    /// Names of the links in this namespace.
    pub fn links(&self) -> Vec<String> {
        link_names(&self.ip(&["-o", "link", "show"]))
    }

    /// The alias of `link` (`Some("")` without one); None when the link
    /// does not exist.
    pub fn link_alias(&self, link: &str) -> Option<String> {
        let (ok, out) = try_run("ip", &["-n", &self.name, "-d", "link", "show", link]);
        ok.then(|| {
            out.lines()
                .find_map(|l| l.trim().strip_prefix("alias ").map(str::to_string))
                .unwrap_or_default()
        })
    }

    /// The links in this namespace whose alias is a Switchyard mark.
    pub fn marked_links(&self) -> Vec<String> {
        self.ip(&["-o", "-d", "link", "show"])
            .lines()
            .filter(|l| l.contains("alias switchyard"))
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .collect()
    }

    /// Moves `link` into `target` (as libnetwork does), renames it, sets the
    /// addresses and brings it up.
    pub fn hand_over(&self, link: &str, target: &Netns, new_name: &str, addrs: &[&str]) {
        self.ip(&["link", "set", link, "netns", target.name()]);
        target.ip(&["link", "set", link, "name", new_name]);
        for a in addrs {
            target.ip(&["addr", "add", a, "dev", new_name, "nodad"]);
        }
        target.ip(&["link", "set", new_name, "up"]);
    }

    /// `ping` from this namespace: true if a reply came back to any of three
    /// echo requests (the first may be spent on ARP, or on a neighbour entry
    /// that just failed).
    pub fn ping(&self, addr: &str) -> bool {
        require_command("ping", "iputils-ping");
        self.exec(&["ping", "-c", "3", "-i", "0.2", "-W", "1", addr])
            .0
    }
}

/// Link names from `ip -o link show` output (`eth0@if7` → `eth0`).
pub fn link_names(ip_o_link: &str) -> Vec<String> {
    ip_o_link
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = try_run("ip", &["netns", "del", &self.name]);
    }
}
