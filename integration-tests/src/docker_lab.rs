//! A `Lab` with a real dockerd in its namespace, and the one engine matrix
//! every real-dockerd test runs on (`engine_matrix!`).

use crate::dockerd::{Dockerd, Engine};
use crate::lab::{Lab, LabConfig};
use crate::wait_for;
use std::ops::{Deref, DerefMut};

/// Fields drop in declaration order: dockerd first (its containers'
/// endpoints are deleted while the plugin still runs), then the lab (the
/// plugin, then the namespace). Derefs to the `Lab`.
pub struct DockerLab {
    pub d: Dockerd,
    pub lab: Lab,
}

impl Deref for DockerLab {
    type Target = Lab;
    fn deref(&self) -> &Lab {
        &self.lab
    }
}

impl DerefMut for DockerLab {
    fn deref_mut(&mut self) -> &mut Lab {
        &mut self.lab
    }
}

impl DockerLab {
    /// Starts the lab `config` describes, then `engine`'s dockerd in it,
    /// whose API the plugin may ask which engine it is.
    pub fn new(engine: Engine, config: LabConfig) -> DockerLab {
        Self::with_resolv_conf(engine, config, None)
    }

    /// As `new`; with `resolv_conf`, dockerd reads that file as the host's
    /// /etc/resolv.conf.
    pub fn with_resolv_conf(
        engine: Engine,
        config: LabConfig,
        resolv_conf: Option<&std::path::Path>,
    ) -> DockerLab {
        let lab = config.start();
        let d = Dockerd::start_with(engine, &lab.host, resolv_conf);
        std::os::unix::fs::symlink(d.socket(), &lab.plugin.docker_socket)
            .expect("link dockerd's socket where the plugin asks for it");
        DockerLab { d, lab }
    }

    pub fn engine(&self) -> Engine {
        self.d.engine
    }

    /// `docker ARGS`, panicking on failure; stdout.
    pub fn docker(&self, args: &[&str]) -> String {
        self.d.docker_out(args)
    }

    /// `docker network create -d <plugin> ARGS NAME`; the network's id.
    pub fn create(&self, name: &str, args: &[&str]) -> String {
        let mut a = vec!["network", "create", "-d", &self.lab.plugin.name];
        a.extend(args);
        a.push(name);
        self.docker(&a)
    }

    /// Gives tp1, the LAN beyond the parent tp0, an address.
    pub fn lan_peer(&self, cidr: &str) {
        self.host.ip(&["addr", "add", cidr, "dev", "tp1"]);
    }

    /// Polls until the namespace holds no Switchyard link (marked, or
    /// named `sy…`): endpoint links are deleted in the background.
    pub fn assert_no_links(&self, after: &str) {
        let clean = wait_for(10.0, || {
            let stray: Vec<String> = self
                .host
                .links()
                .into_iter()
                .filter(|l| l.starts_with("sy"))
                .collect();
            (self.host.marked_links().is_empty() && stray.is_empty()).then_some(())
        });
        assert!(
            clean.is_some(),
            "after {after}, Switchyard links are still in the namespace 10 s later (marked: {:?}):\n{}",
            self.host.marked_links(),
            self.host.ip(&["-d", "link", "show"])
        );
    }

    /// `docker rm -f CONTAINERS`, `docker network rm NETS`, then no marked
    /// link may be left.
    pub fn teardown(&self, containers: &[&str], nets: &[&str]) {
        let mut a = vec!["rm", "-f"];
        a.extend(containers);
        self.docker(&a);
        let mut a = vec!["network", "rm"];
        a.extend(nets);
        self.docker(&a);
        self.assert_no_marked_links();
    }

    /// Removes every container and user network, so that the next scenario
    /// starts clean whatever the last one left; then checks no link leaked.
    pub fn reset(&mut self) {
        if self.plugin.pid() == 0 {
            self.plugin.restart();
        }
        let ids = self.docker(&["ps", "-aq"]);
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let mut a = vec!["rm", "-f"];
            a.extend(ids);
            self.docker(&a);
        }
        let nets: Vec<String> = self
            .d
            .network_names()
            .into_iter()
            .filter(|n| !["bridge", "host", "none"].contains(&n.as_str()))
            .collect();
        if !nets.is_empty() {
            let mut a = vec!["network", "rm"];
            a.extend(nets.iter().map(String::as_str));
            self.docker(&a);
        }
        self.assert_no_links("removing all containers and networks");
    }
}

/// The engine matrix: from `fn NAME(engine: Engine)` in the calling test
/// file, a module `NAME` with one `#[test]` per engine: `NAME::engine_20`
/// (20.10), `NAME::engine_28` and `NAME::engine_29`.
///
/// `engine_matrix!(NAME);` runs on every engine; `engine_matrix!(NAME: 20,
/// 28);` on those listed (say next to it why an engine is left out).
#[macro_export]
macro_rules! engine_matrix {
    ($body:ident) => {
        $crate::engine_matrix!($body: 20, 28, 29);
    };
    ($body:ident: $($v:tt),+ $(,)?) => {
        mod $body {
            $( $crate::engine_matrix!(@test $body $v); )+
        }
    };
    (@test $body:ident 20) => {
        #[test]
        fn engine_20() {
            super::$body($crate::dockerd::Engine::V20)
        }
    };
    (@test $body:ident 28) => {
        #[test]
        fn engine_28() {
            super::$body($crate::dockerd::Engine::V28)
        }
    };
    (@test $body:ident 29) => {
        #[test]
        fn engine_29() {
            super::$body($crate::dockerd::Engine::V29)
        }
    };
}
