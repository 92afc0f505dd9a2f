//! The plugin socket: one instance per socket, decided before anything on
//! the host is touched, and a socket that is never reachable by anyone but
//! its owner and group, not even for an instant.

use nix::fcntl::{Flock, FlockArg};
use nix::sys::stat::{Mode, umask};
use nix::unistd::{Group, chown};
use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Held for the life of the process: the socket belongs to this instance.
pub struct Claim {
    _lock: Flock<File>,
}

/// Claims `sock` for this process: a lock beside it (`<socket>.lock`),
/// and no other process answering on it. Creates the socket's directory.
pub fn claim(sock: &Path) -> Result<Claim, String> {
    if let Some(dir) = sock.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create socket directory {}: {e}", dir.display()))?;
    }
    let lock_path = PathBuf::from(format!("{}.lock", sock.display()));
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
    let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| {
        if e == nix::errno::Errno::EWOULDBLOCK {
            format!(
                "another switchyard already serves {} (it holds {}); stop it first, or give this instance its own [plugin] socket and [plugin] state_dir",
                sock.display(),
                lock_path.display()
            )
        } else {
            format!("cannot lock {}: {e}", lock_path.display())
        }
    })?;
    // A process that does not take the lock (an older Switchyard, another
    // plugin) may still answer on the path.
    if sock.exists() && std::os::unix::net::UnixStream::connect(sock).is_ok() {
        return Err(format!(
            "{} is already served by another process; stop it or set [plugin] socket to another path",
            sock.display()
        ));
    }
    Ok(Claim { _lock: lock })
}

/// Binds the socket with mode 0660 and `group` (empty: the process's own),
/// created owner-only so that no one else can connect before the mode and
/// group are final. A stale socket file (a killed run) is replaced.
pub fn bind(sock: &Path, group: &str) -> Result<tokio::net::UnixListener, String> {
    let gid = match group {
        "" => None,
        g => Some(
            Group::from_name(g)
                .map_err(|e| format!("cannot look up [plugin] socket_group \"{g}\": {e}"))?
                .ok_or_else(|| {
                    format!(
                        "[plugin] socket_group \"{g}\" does not exist on this host; create it (e.g. groupadd {g}) or leave socket_group empty"
                    )
                })?
                .gid,
        ),
    };
    let _ = std::fs::remove_file(sock);
    let old = umask(Mode::from_bits_truncate(0o177));
    let bound = tokio::net::UnixListener::bind(sock);
    umask(old);
    let listener = bound.map_err(|e| format!("cannot listen on {}: {e}", sock.display()))?;
    if let Some(gid) = gid {
        chown(sock, None, Some(gid))
            .map_err(|e| format!("cannot give {} to group {group}: {e}", sock.display()))?;
    }
    std::fs::set_permissions(sock, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| format!("cannot set the mode of {}: {e}", sock.display()))?;
    Ok(listener)
}
