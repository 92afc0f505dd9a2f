//! Reads the plugin's own log as it grows: the handler time it logs for each
//! request (`us=`), and when its background reaper finished deleting a link
//! (the `deleted link=…` debug line, enabled for that module only).

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The plugin's log filter: `info` as in production, plus the reaper's
/// one debug line per deferred delete (it carries the completion time).
pub const RUST_LOG: &str = "info,switchyard_core::link::reaper=debug";

pub struct PluginLog {
    path: PathBuf,
    offset: u64,
    partial: String,
    /// Link name → when the reaper logged its deletion (seconds since the epoch).
    pub deleted: HashMap<String, f64>,
    handled: Vec<Handled>,
}

/// One request as the plugin logged it.
#[derive(Clone, Debug)]
pub struct Handled {
    pub method: String,
    pub us: u64,
}

impl PluginLog {
    /// Starts reading at the current end of the file.
    pub fn new(path: PathBuf) -> PluginLog {
        let offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        PluginLog {
            path,
            offset,
            partial: String::new(),
            deleted: HashMap::new(),
            handled: Vec::new(),
        }
    }

    /// The requests logged since the last call (reads what was appended).
    pub fn take(&mut self) -> Vec<Handled> {
        self.poll();
        std::mem::take(&mut self.handled)
    }

    /// Reads what was appended.
    pub fn poll(&mut self) {
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return;
        };
        let _ = f.seek(SeekFrom::Start(self.offset));
        let mut buf = String::new();
        let n = f.read_to_string(&mut buf).unwrap_or(0);
        self.offset += n as u64;
        self.partial.push_str(&buf);
        let text = std::mem::take(&mut self.partial);
        let (complete, rest) = match text.rfind('\n') {
            Some(i) => (&text[..=i], &text[i + 1..]),
            None => ("", text.as_str()),
        };
        for line in complete.lines() {
            let mut method = None;
            let mut us = None;
            let mut link = None;
            for tok in line.split_whitespace() {
                if let Some(v) = tok.strip_prefix("method=") {
                    method = Some(v.trim_start_matches("NetworkDriver.").to_string());
                } else if let Some(v) = tok.strip_prefix("us=") {
                    us = v.parse::<u64>().ok();
                } else if let Some(v) = tok.strip_prefix("link=") {
                    link = Some(v.to_string());
                }
            }
            if let (Some(method), Some(us)) = (method, us) {
                self.handled.push(Handled { method, us });
            } else if let Some(link) = link
                && line.contains(" deleted ")
                && let Some(ts) = line.split_whitespace().next().and_then(parse_rfc3339)
            {
                self.deleted.insert(link, ts);
            }
        }
        self.partial = rest.to_string();
    }

    /// Polls until the reaper has logged every one of `links`; false on timeout.
    pub fn wait_deleted(&mut self, links: &[String], timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        loop {
            self.poll();
            if links.iter().all(|l| self.deleted.contains_key(l)) {
                return true;
            }
            if Instant::now() > end {
                return false;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

pub fn epoch_secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// `2025-11-28T06:40:01.123456Z` → seconds since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<f64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.split(':');
    let (hh, mm) = (
        t.next()?.parse::<f64>().ok()?,
        t.next()?.parse::<f64>().ok()?,
    );
    let ss = t.next()?.parse::<f64>().ok()?;
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days as f64 * 86400.0 + hh * 3600.0 + mm * 60.0 + ss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00.000000Z"), Some(0.0));
        let v = parse_rfc3339("2026-11-28T06:40:01.250000Z").unwrap();
        assert!((v - 1_795_848_001.25).abs() < 1e-6, "{v}");
    }
}
