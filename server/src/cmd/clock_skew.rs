//! How far this host's clock is from etcd's. etcd serves HTTP (`/version`)
//! on its client URL (over TLS for https://), and Go's HTTP server stamps every answer
//! with a `Date` header (whole seconds): the server's clock between our
//! sending and receiving. Leases are timed by etcd alone, so a skew does not
//! break the control plane, but certificates (TLS to etcd) are checked
//! against the local clock, and logs of several hosts no longer line up.

use std::time::{Duration, SystemTime};

/// Above this, doctor warns.
pub const TOLERATED: Duration = Duration::from_secs(2);

/// The local clock minus etcd's, at best known: `(estimate, uncertainty)`
/// in seconds (positive: this host is ahead). `date` is the header's value;
/// `sent`/`received` bracket the exchange on the local clock.
pub fn skew(sent: SystemTime, received: SystemTime, date: SystemTime) -> (f64, f64) {
    let secs = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
    };
    let (s, r) = (secs(sent), secs(received).max(secs(sent)));
    // The server's clock read some time in [date, date + 1 s) while ours
    // was in [sent, received]: the midpoints, and half of both widths.
    let local = (s + r) / 2.0;
    let server = secs(date) + 0.5;
    (local - server, (r - s) / 2.0 + 0.5)
}

/// Whether a measured skew is beyond what doctor tolerates, certainly.
pub fn too_far(estimate: f64, uncertainty: f64) -> bool {
    estimate.abs() - uncertainty > TOLERATED.as_secs_f64()
}

/// The `Date` header of an HTTP answer's head.
pub fn date_header(head: &str) -> Option<SystemTime> {
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case("date").then(|| v.trim())
        })
        .and_then(|v| httpdate::parse_http_date(v).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: f64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs_f64(secs)
    }

    #[test]
    fn in_step_clocks_are_within_the_tolerance() {
        // Sent at 1000.2, answered at 1000.4, server said 1000 (whole s).
        let (e, u) = skew(at(1000.2), at(1000.4), at(1000.0));
        assert!(
            (e - (-0.2)).abs() < 1e-6 && (u - 0.6).abs() < 1e-6,
            "{e} {u}"
        );
        assert!(!too_far(e, u));
    }

    #[test]
    fn a_host_ahead_or_behind_is_found_with_its_sign() {
        let (e, u) = skew(at(1030.0), at(1030.1), at(1000.0));
        assert!(too_far(e, u) && e > 29.0 && e < 30.0, "{e}");
        let (e, u) = skew(at(970.0), at(970.1), at(1000.0));
        assert!(too_far(e, u) && e < -30.0, "{e}");
        // A slow answer widens the uncertainty instead of raising an alarm.
        let (e, u) = skew(at(1000.0), at(1006.0), at(1000.0));
        assert!(!too_far(e, u), "{e} ± {u}");
    }

    #[test]
    fn reads_the_date_header() {
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Thu, 03 Dec 2026 00:55:28 GMT\r\n";
        let d = date_header(head).unwrap();
        assert_eq!(httpdate::fmt_http_date(d), "Thu, 03 Dec 2026 00:55:28 GMT");
        assert!(date_header("HTTP/1.1 200 OK\r\n").is_none());
    }
}
