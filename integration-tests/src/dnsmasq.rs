//! A real DHCP server (Debian's `dnsmasq`) on a LAN the test made: runs in
//! a namespace on one end of a veth (a `Background` server), with its lease
//! file in a TempDir that outlives stops and restarts.

use crate::background::Background;
use crate::{Netns, TempDir};
use std::path::PathBuf;

pub struct Dnsmasq {
    server: Option<Background>,
    dir: TempDir,
    args: Vec<String>,
}

/// Makes tp1 (the far end of the lab's parent tp0) the LAN: moved into a
/// namespace of its own with 192.0.2.1/24, where a server can run.
pub fn lan(host: &Netns) -> Netns {
    let lan = Netns::new("lan");
    host.ip(&["link", "set", "tp1", "netns", lan.name()]);
    lan.ip(&["addr", "add", "192.0.2.1/24", "dev", "tp1"]);
    lan.ip(&["link", "set", "tp1", "up"]);
    lan
}

impl Dnsmasq {
    /// Serves `192.0.2.50`–`.150`/24 with router 192.0.2.1 and 2-minute
    /// leases (dnsmasq's minimum) on `iface` in `ns`, which must already
    /// hold 192.0.2.1/24. `extra`: more dnsmasq options (`--dhcp-host=…`).
    pub fn start(ns: &Netns, iface: &str, extra: &[&str]) -> Dnsmasq {
        let dir = TempDir::new("dnsmasq");
        let mut args: Vec<String> = vec![
            "dnsmasq".into(),
            "--keep-in-foreground".into(),
            "--conf-file=/dev/null".into(),
            "--user=root".into(),
            "--port=0".into(),
            format!("--interface={iface}"),
            "--bind-interfaces".into(),
            "--dhcp-authoritative".into(),
            "--dhcp-range=192.0.2.50,192.0.2.150,255.255.255.0,2m".into(),
            "--dhcp-option=3,192.0.2.1".into(),
            format!("--dhcp-leasefile={}", dir.path().join("leases").display()),
            format!("--pid-file={}", dir.path().join("pid").display()),
            "--log-dhcp".into(),
            // No ping probe before an offer: 3 s per lease the tests do not need.
            "--no-ping".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut d = Dnsmasq {
            server: None,
            dir,
            args,
        };
        d.resume(ns);
        d
    }

    /// Starts the server again in `ns` after `stop` (same leases file).
    pub fn resume(&mut self, ns: &Netns) {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let mut server = Background::start(ns, "dnsmasq-base", &args);
        let pid = self.dir.path().join("pid");
        server.wait_ready(5.0, || pid.exists());
        self.server = Some(server);
    }

    /// Stops the server (the server "goes away").
    pub fn stop(&mut self) {
        self.server = None;
        let _ = std::fs::remove_file(self.dir.path().join("pid"));
    }

    pub fn lease_file(&self) -> PathBuf {
        self.dir.path().join("leases")
    }

    /// The leases dnsmasq has written: (expiry, MAC, address).
    pub fn leases(&self) -> Vec<(u64, String, String)> {
        std::fs::read_to_string(self.lease_file())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                Some((
                    f.first()?.parse().ok()?,
                    f.get(1)?.to_string(),
                    f.get(2)?.to_string(),
                ))
            })
            .collect()
    }

    /// The expiry dnsmasq holds for `addr`, if it has a lease for it.
    pub fn expiry(&self, addr: &str) -> Option<u64> {
        self.leases().into_iter().find(|l| l.2 == addr).map(|l| l.0)
    }

    pub fn log(&self) -> String {
        self.server
            .as_ref()
            .map(Background::log)
            .unwrap_or_default()
    }
}
