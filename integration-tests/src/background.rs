//! A server a test runs inside one of its namespaces for as long as the
//! test needs it (a DNS resolver, a DHCP server, a router advertiser…),
//! stopped by its own PID on drop, also when the test fails.

use crate::netns::Netns;
use crate::prereq::require_command;
use crate::{TempDir, wait_for};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct Background {
    child: Child,
    what: String,
    log: PathBuf,
    _dir: TempDir,
}

impl Background {
    /// Runs `cmd` (which must stay in the foreground) in `ns`; `package`
    /// is what to install when the command is missing. Its output goes to
    /// a log shown when the test fails.
    pub fn start(ns: &Netns, package: &str, cmd: &[&str]) -> Background {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns.name()]).args(cmd);
        Self::launch(c, package, cmd)
    }

    /// As `start`, in the test's own namespaces.
    pub fn start_here(package: &str, cmd: &[&str]) -> Background {
        let mut c = Command::new(cmd[0]);
        c.args(&cmd[1..]);
        Self::launch(c, package, cmd)
    }

    fn launch(mut command: Command, package: &str, cmd: &[&str]) -> Background {
        require_command(cmd[0], package);
        let dir = TempDir::new(cmd[0]);
        let log = dir.path().join("log");
        let out = std::fs::File::create(&log).expect("create the server's log");
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("clone the log handle"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", cmd[0]));
        Background {
            child,
            what: cmd.join(" "),
            log,
            _dir: dir,
        }
    }

    /// A directory that lives as long as the server (for its pid, lease
    /// and config files).
    pub fn dir(&self) -> &Path {
        self._dir.path()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `ready` for up to `secs`; panics with the server's log if it
    /// never holds or the server exited.
    pub fn wait_ready(&mut self, secs: f64, mut ready: impl FnMut() -> bool) {
        let ok = wait_for(secs, || {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(Err(st));
            }
            ready().then_some(Ok(()))
        });
        match ok {
            Some(Ok(())) => {}
            Some(Err(st)) => panic!("{} exited ({st}):\n{}", self.what, self.log()),
            None => panic!("{} not ready after {secs} s:\n{}", self.what, self.log()),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- {} log ---\n{}", self.what, self.log());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
