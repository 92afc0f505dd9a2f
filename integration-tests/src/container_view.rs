//! What a container sees on one network, as `ip` inside it shows: the
//! terms in which tests compare Switchyard's networks with Docker's
//! built-in drivers.

use crate::docker_lab::DockerLab;

/// eth0's IPv4 and global IPv6 addresses, the IPv4 and IPv6 routes, eth0's
/// MTU.
#[derive(Debug, PartialEq)]
pub struct ContainerView {
    pub addr: Vec<String>,
    pub routes: Vec<String>,
    pub routes6: Vec<String>,
    pub mtu: Option<u32>,
}

impl DockerLab {
    /// What a fresh container (`docker run --rm`) sees on `net`.
    pub fn view(&self, net: &str) -> ContainerView {
        let (ok, out) = self.d.run_rm(
            net,
            &[
                "sh",
                "-c",
                "ip -o -4 addr show eth0; ip -o -6 addr show eth0 scope global; echo @@; ip route; echo @@; ip -6 route; echo @@; ip -o link show eth0",
            ],
        );
        assert!(ok, "docker run on {net} failed:\n{out}");
        let parts: Vec<&str> = out.split("@@").collect();
        assert_eq!(parts.len(), 4, "unexpected output on {net}:\n{out}");
        ContainerView {
            addr: parts[0]
                .lines()
                .filter_map(|l| {
                    l.split_whitespace()
                        .skip_while(|w| *w != "inet" && *w != "inet6")
                        .nth(1)
                        .map(str::to_string)
                })
                .collect(),
            routes: route_lines(parts[1]),
            routes6: route_lines(parts[2]),
            mtu: mtu(parts[3]),
        }
    }
}

/// `mtu N` from `ip link show` output.
pub fn mtu(ip_link: &str) -> Option<u32> {
    let mut words = ip_link.split_whitespace();
    while let Some(w) = words.next() {
        if w == "mtu" {
            return words.next()?.parse().ok();
        }
    }
    None
}

/// Route lines with their whitespace normalised (busybox pads with spaces).
pub fn route_lines(out: &str) -> Vec<String> {
    out.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect()
}

pub fn default_route(routes: &[String]) -> Option<&String> {
    routes.iter().find(|r| r.starts_with("default"))
}
