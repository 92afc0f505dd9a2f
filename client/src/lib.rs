//! A small blocking HTTP/1.1 client for a plugin socket, speaking like
//! dockerd does (POST, JSON body with a trailing newline, no Content-Type,
//! keep-alive). `switchyard status` uses it to ask the running plugin; the
//! tests and the benchmark use it to play libnetwork.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct PluginClient {
    path: PathBuf,
    conn: Option<BufReader<UnixStream>>,
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl PluginClient {
    pub fn new(path: impl AsRef<Path>) -> PluginClient {
        PluginClient {
            path: path.as_ref().to_owned(),
            conn: None,
        }
    }

    /// `POST /<method>` with `body` sent as-is (empty for no body).
    pub fn call_raw(&mut self, method: &str, body: &[u8]) -> std::io::Result<Reply> {
        // One retry on a fresh connection: the server may have closed an idle one.
        match self.try_call(method, body) {
            Ok(r) => Ok(r),
            Err(_) => {
                self.conn = None;
                self.try_call(method, body)
            }
        }
    }

    /// `POST /<method>` with `body` encoded as Go's json.Encoder does.
    pub fn call(&mut self, method: &str, body: &serde_json::Value) -> std::io::Result<Reply> {
        let mut b = serde_json::to_vec(body)?;
        b.push(b'\n');
        self.call_raw(method, &b)
    }

    fn try_call(&mut self, method: &str, body: &[u8]) -> std::io::Result<Reply> {
        if self.conn.is_none() {
            let s = UnixStream::connect(&self.path)?;
            s.set_read_timeout(Some(Duration::from_secs(60)))?;
            self.conn = Some(BufReader::new(s));
        }
        let conn = self.conn.as_mut().unwrap();
        let head = format!(
            "POST /{method} HTTP/1.1\r\nHost: plugin.moby.localhost\r\nUser-Agent: switchyard-client\r\nContent-Length: {}\r\nAccept: application/vnd.docker.plugins.v1.2+json\r\n\r\n",
            body.len()
        );
        let s = conn.get_mut();
        s.write_all(head.as_bytes())?;
        // A server may answer (413) and close before reading a large body:
        // its answer is still worth reading.
        let _ = s.write_all(body);
        let mut line = String::new();
        if conn.read_line(&mut line)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
        let mut len: Option<usize> = None;
        let mut chunked = false;
        let mut content_type = None;
        let mut close = false;
        loop {
            line.clear();
            conn.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
                match k.as_str() {
                    "content-length" => len = v.parse().ok(),
                    "transfer-encoding" => chunked = v.eq_ignore_ascii_case("chunked"),
                    "content-type" => content_type = Some(v.to_string()),
                    "connection" => close = v.eq_ignore_ascii_case("close"),
                    _ => {}
                }
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                conn.read_line(&mut line)?;
                let n = usize::from_str_radix(line.trim(), 16)
                    .map_err(|_| std::io::Error::other("bad chunk"))?;
                let mut chunk = vec![0; n + 2];
                conn.read_exact(&mut chunk)?;
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        } else if let Some(n) = len {
            body.resize(n, 0);
            conn.read_exact(&mut body)?;
        } else {
            conn.read_to_end(&mut body)?;
            close = true;
        }
        if close {
            self.conn = None;
        }
        Ok(Reply {
            status,
            content_type,
            body,
        })
    }
}
