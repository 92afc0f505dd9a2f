//! How far behind etcd the agent's view is. At every keep-alive the agent
//! asks the watch for a progress notification; etcd answers it only once
//! every event up to its current revision has been sent on the stream. The
//! time from asking to the answer is the watch's lag; an answer that does
//! not come (a stuck stream, an overloaded etcd) shows as a lag that keeps
//! growing. Revisions are kept beside it: etcd's latest (from any response
//! header) and the latest the cache took in.

use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub(super) struct WatchLag {
    /// When the unanswered progress request was sent.
    asked: Option<Instant>,
    /// The last measured time from request to answer.
    last: Option<Duration>,
    /// etcd's revision in the newest response header seen.
    pub etcd_revision: i64,
    /// The revision the cache holds (list, watch events, progress).
    pub applied_revision: i64,
}

impl WatchLag {
    /// A progress request was sent; one already outstanding keeps its time.
    pub fn asked(&mut self, now: Instant) {
        self.asked.get_or_insert(now);
    }

    /// The watch delivered everything up to `revision` (a progress
    /// notification when `progress`).
    pub fn delivered(&mut self, now: Instant, revision: i64, progress: bool) {
        self.seen(revision);
        self.applied_revision = self.applied_revision.max(revision);
        if progress && let Some(at) = self.asked.take() {
            self.last = Some(now.saturating_duration_since(at));
        }
    }

    /// A response header with etcd's revision then.
    pub fn seen(&mut self, revision: i64) {
        self.etcd_revision = self.etcd_revision.max(revision);
    }

    /// A new session: the stream and its outstanding request are gone.
    pub fn restart(&mut self) {
        self.asked = None;
    }

    /// The lag now: the last measured one, or longer if the request sent
    /// since has waited longer than that.
    pub fn lag(&self, now: Instant) -> Duration {
        let waiting = self
            .asked
            .map(|at| now.saturating_duration_since(at))
            .unwrap_or_default();
        self.last.unwrap_or_default().max(waiting)
    }

    pub fn revisions_behind(&self) -> i64 {
        (self.etcd_revision - self.applied_revision).max(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_measures_and_a_missing_one_grows() {
        let t0 = Instant::now();
        let mut w = WatchLag::default();
        assert_eq!(w.lag(t0), Duration::ZERO);
        w.asked(t0);
        w.asked(t0 + Duration::from_millis(5)); // keeps the first time
        w.delivered(t0 + Duration::from_millis(30), 7, false);
        assert_eq!(
            w.lag(t0 + Duration::from_millis(40)),
            Duration::from_millis(40)
        );
        w.delivered(t0 + Duration::from_millis(50), 7, true);
        assert_eq!(
            w.lag(t0 + Duration::from_secs(9)),
            Duration::from_millis(50)
        );
        // Unanswered for longer than the last lag: that is the lag now.
        w.asked(t0 + Duration::from_secs(10));
        assert_eq!(w.lag(t0 + Duration::from_secs(12)), Duration::from_secs(2));
    }

    #[test]
    fn revisions_behind_never_negative() {
        let mut w = WatchLag::default();
        w.seen(10);
        w.delivered(Instant::now(), 8, false);
        assert_eq!(w.revisions_behind(), 2);
        w.delivered(Instant::now(), 12, true);
        assert_eq!(w.revisions_behind(), 0);
    }
}
