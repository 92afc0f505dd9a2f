//! The few reads Switchyard makes of dockerd's own API (`/version`,
//! `/info`), over its unix socket. Never on a request's path: dockerd may
//! be waiting for the plugin while it is asked.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// GET `path` on dockerd's API socket: (HTTP status, body).
pub fn get(socket: &Path, path: &str) -> Result<(u16, String), String> {
    let mut s = UnixStream::connect(socket).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n").map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.take(1 << 20)
        .read_to_string(&mut out)
        .map_err(|e| e.to_string())?;
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Ok((status, body.to_string()))
}

/// dockerd's version (`/version`'s `Version`, e.g. "29.7.2").
pub fn version(socket: &Path) -> Result<String, String> {
    match get(socket, "/version")? {
        (200, body) => serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["Version"].as_str().map(str::to_string))
            .ok_or_else(|| "its /version answer has no \"Version\"".to_string()),
        (status, _) => Err(format!("it answered /version with HTTP {status}")),
    }
}
