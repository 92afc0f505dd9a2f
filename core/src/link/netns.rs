//! A netlink socket that belongs to another network namespace.
//!
//! A socket lives in the namespace it was created in, so only its creation
//! must happen there: on a throwaway OS thread (never a pooled tokio thread,
//! whose later tasks would run in the wrong namespace).

use nix::sched::{CloneFlags, setns};
use std::fs::File;
use std::os::fd::{AsFd, FromRawFd, IntoRawFd, RawFd};
use std::path::Path;

pub type Connection = rtnetlink::proto::Connection<rtnetlink::packet_route::RouteNetlinkMessage>;

pub fn connection_in_netns(path: &Path) -> std::io::Result<(Connection, rtnetlink::Handle)> {
    let path = path.to_owned();
    let fd = std::thread::spawn(move || -> std::io::Result<RawFd> {
        let ns = File::open(&path)?;
        setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
        let s = rtnetlink::sys::Socket::new(rtnetlink::sys::protocols::NETLINK_ROUTE)?;
        Ok(s.into_raw_fd())
    })
    .join()
    .map_err(|_| std::io::Error::other("netns thread panicked"))??;
    // SAFETY: `fd` is a fresh netlink socket owned by nobody else.
    let sock = unsafe { rtnetlink::sys::TokioSocket::from_raw_fd(fd) };
    let (conn, handle, _) = rtnetlink::from_socket(sock);
    Ok((conn, handle))
}
