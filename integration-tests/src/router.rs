//! A router on a test's LAN: the far end of a veth parent moved into a
//! namespace of its own, addressed, with Debian's radvd advertising a
//! prefix every few seconds (SLAAC tests). Everything goes on drop.

use crate::TempDir;
use crate::background::Background;
use crate::netns::Netns;

pub struct Router {
    // Field order is drop order: radvd, then its files, then the namespace.
    _radvd: Background,
    _dir: TempDir,
    pub ns: Netns,
}

impl Router {
    /// Moves `link` out of `lan` into the router's namespace, gives it
    /// `addr` and fe80::1, and advertises `prefix` on it.
    pub fn start(lan: &Netns, link: &str, prefix: &str, addr: &str) -> Router {
        let ns = Netns::new("rt");
        lan.ip(&["link", "set", link, "netns", ns.name()]);
        // radvd advertises only from a link-local address that has passed
        // duplicate address detection, which some kernels never finish
        // (the host's here): the router skips it.
        for s in [
            "net.ipv6.conf.all.forwarding=1".to_string(),
            format!("net.ipv6.conf.{link}.accept_dad=0"),
        ] {
            let (ok, out) = ns.exec(&["sysctl", "-w", &s]);
            assert!(ok, "sysctl {s} in the router namespace: {out}");
        }
        ns.ip(&["link", "set", link, "up"]);
        ns.ip(&["addr", "add", addr, "dev", link, "nodad"]);
        ns.ip(&["addr", "add", "fe80::1/64", "dev", link, "nodad"]);
        let dir = TempDir::new("radvd");
        let conf = dir.path().join("radvd.conf");
        std::fs::write(
            &conf,
            format!(
                "interface {link} {{\n AdvSendAdvert on;\n MinRtrAdvInterval 3;\n MaxRtrAdvInterval 4;\n prefix {prefix} {{\n  AdvOnLink on;\n  AdvAutonomous on;\n }};\n}};\n"
            ),
        )
        .expect("write radvd.conf");
        let (conf, pid) = (conf.to_string_lossy(), dir.path().join("radvd.pid"));
        let radvd = Background::start(
            &ns,
            "radvd",
            &[
                "radvd",
                "-n",
                "-m",
                "stderr",
                "-C",
                &conf,
                "-p",
                &pid.to_string_lossy(),
            ],
        );
        Router {
            _radvd: radvd,
            _dir: dir,
            ns,
        }
    }
}
