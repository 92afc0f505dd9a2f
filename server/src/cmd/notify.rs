//! Telling systemd the plugin is ready (`Type=notify`): once the socket is
//! bound and listening, `switchyard serve` sends `READY=1` as one datagram
//! to the unix socket named by `$NOTIFY_SOCKET` (a path, or `@name` for an
//! abstract socket) — the sd_notify protocol, without libsystemd. Without
//! `$NOTIFY_SOCKET` (not started by systemd, or `Type=simple`) nothing is
//! sent. A failure to notify is logged, never fatal: the plugin serves
//! either way.

use std::os::unix::net::UnixDatagram;

/// The message `ready` sends: `READY=1`, the main PID, and a status line.
pub fn ready_message(status: &str) -> String {
    // One line per assignment; a newline inside the status would start a
    // new (bogus) assignment.
    let status: String = status
        .chars()
        .map(|c| if c == '\n' { ' ' } else { c })
        .collect();
    format!("READY=1\nMAINPID={}\nSTATUS={status}\n", std::process::id())
}

/// Sends `READY=1` to `$NOTIFY_SOCKET` when it is set. Ok(false): not set.
pub fn ready(status: &str) -> Result<bool, String> {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    let target = target.to_string_lossy().into_owned();
    send(&target, &ready_message(status))
        .map(|()| true)
        .map_err(|e| format!("cannot notify systemd at NOTIFY_SOCKET={target}: {e}"))
}

/// Sends `msg` as one datagram to the socket `target` names.
pub fn send(target: &str, msg: &str) -> std::io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    if let Some(name) = target.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
        sock.send_to_addr(msg.as_bytes(), &addr)?;
    } else if target.starts_with('/') {
        sock.send_to(msg.as_bytes(), target)?;
    } else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "it must be an absolute path or start with @ (an abstract socket)",
        ));
    }
    Ok(())
}

/// What `serve` calls once the socket listens: notifies, logs a failure.
pub fn notify_listening(socket: &std::path::Path) {
    match ready(&format!("serving {}", socket.display())) {
        Ok(true) => tracing::debug!("told systemd READY=1"),
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "could not tell systemd the plugin is ready"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn recv(sock: &UnixDatagram) -> String {
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 4096];
        let n = sock.recv(&mut buf).expect("a datagram");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn ready_reaches_a_path_socket() {
        let dir = std::env::temp_dir().join(format!("sy-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let fake = UnixDatagram::bind(&path).unwrap();
        send(path.to_str().unwrap(), &ready_message("serving /x.sock")).unwrap();
        let got = recv(&fake);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(got.starts_with("READY=1\n"), "{got:?}");
        assert!(
            got.contains(&format!("MAINPID={}\n", std::process::id())),
            "{got:?}"
        );
        assert!(got.contains("STATUS=serving /x.sock\n"), "{got:?}");
    }

    #[test]
    fn ready_reaches_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("switchyard-notify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let fake = UnixDatagram::bind_addr(&addr).unwrap();
        send(&format!("@{name}"), "READY=1\n").unwrap();
        assert_eq!(recv(&fake), "READY=1\n");
    }

    #[test]
    fn a_relative_target_is_refused_with_the_rule() {
        let e = send("notify.sock", "READY=1\n").unwrap_err();
        assert!(e.to_string().contains("absolute path"), "{e}");
    }

    #[test]
    fn a_status_stays_on_one_line() {
        let m = ready_message("a\nb");
        assert!(m.contains("STATUS=a b\n"), "{m:?}");
        assert_eq!(m.lines().count(), 3, "{m:?}");
    }
}
