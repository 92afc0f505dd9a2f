//! A thread that lives in a test namespace, so the bench can look at that
//! namespace's links without forking `ip` (which would cost milliseconds and
//! disturb what is being measured).

use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

type Job = Box<dyn FnOnce() + Send>;

pub struct NsThread {
    tx: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl NsThread {
    pub fn new(netns: &Path) -> NsThread {
        let file =
            std::fs::File::open(netns).unwrap_or_else(|e| panic!("open {}: {e}", netns.display()));
        let (tx, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let r = nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET);
            let _ = ready_tx.send(r);
            while let Ok(job) = rx.recv() {
                job();
            }
        });
        ready_rx
            .recv()
            .expect("namespace thread started")
            .expect("setns into the bench namespace");
        NsThread {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    /// Runs `f` on the namespace thread and returns its result.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        self.tx
            .as_ref()
            .unwrap()
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .expect("namespace thread alive");
        rx.recv().expect("namespace thread answered")
    }
}

impl Drop for NsThread {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Whether a link of that name exists in the calling thread's namespace.
pub fn link_exists(name: &str) -> bool {
    nix::net::if_::if_nametoindex(name).is_ok()
}

/// Polls (every ~100 µs) until none of `names` exists; the moment that was
/// seen, or `None` after `timeout`. Call on the namespace thread.
pub fn wait_gone(names: &[String], timeout: Duration) -> Option<Instant> {
    let end = Instant::now() + timeout;
    let mut pending: Vec<&String> = names.iter().collect();
    loop {
        pending.retain(|n| link_exists(n));
        let now = Instant::now();
        if pending.is_empty() {
            return Some(now);
        }
        if now > end {
            return None;
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}
