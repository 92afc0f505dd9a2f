//! Listing every link of the namespace with memory bounded by one receive
//! buffer. Through the shared connection, a dump's messages are parsed and
//! queued by the connection task faster than the caller takes them: with
//! 10,000 links the whole dump sat parsed in the queue (~100 MiB peak at
//! startup). Here one blocking socket is read chunk by chunk and each
//! message is reduced to a `Link` before the next is read.

use super::LinkResult;
use super::error::LinkError;
use super::query::Link;
use nix::sched::{CloneFlags, setns};
use rtnetlink::packet_core::{NLM_F_DUMP, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::link::LinkMessage;
use rtnetlink::sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use std::os::fd::AsFd;
use std::path::PathBuf;

/// The kernel sends a dump in chunks of at most 32 KiB (or a page).
const CHUNK: usize = 64 * 1024;

/// Every link of the namespace at `netns` (this process's when `None`), on
/// a thread of its own: the socket must be created in the namespace and the
/// reads block.
pub(super) async fn links(netns: Option<PathBuf>) -> LinkResult<Vec<Link>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("switchyard-dump".into())
        .spawn(move || {
            let _ = tx.send(dump(netns));
        })
        .map_err(|e| io_err(&e))?;
    rx.await
        .map_err(|_| LinkError::new("listing links", 0, "the dump thread ended early"))?
}

fn io_err(e: &std::io::Error) -> LinkError {
    LinkError::new(
        "listing links",
        e.raw_os_error().unwrap_or(0),
        e.to_string(),
    )
}

fn dump(netns: Option<PathBuf>) -> LinkResult<Vec<Link>> {
    if let Some(p) = &netns {
        let ns = std::fs::File::open(p).map_err(|e| io_err(&e))?;
        setns(ns.as_fd(), CloneFlags::CLONE_NEWNET)
            .map_err(|e| io_err(&std::io::Error::from(e)))?;
    }
    let mut sock = Socket::new(NETLINK_ROUTE).map_err(|e| io_err(&e))?;
    sock.bind_auto().map_err(|e| io_err(&e))?;
    sock.connect(&SocketAddr::new(0, 0))
        .map_err(|e| io_err(&e))?;
    let mut req = NetlinkMessage::from(RouteNetlinkMessage::GetLink(LinkMessage::default()));
    req.header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.header.sequence_number = 1;
    req.finalize();
    let mut out = vec![0u8; req.buffer_len()];
    req.serialize(&mut out);
    sock.send(&out, 0).map_err(|e| io_err(&e))?;

    let mut links = Vec::new();
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK);
    loop {
        buf.clear();
        let n = match sock.recv(&mut buf, 0) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(&e)),
        };
        if n > buf.len() {
            return Err(LinkError::new(
                "listing links",
                0,
                format!("a netlink datagram of {n} bytes did not fit {CHUNK}"),
            ));
        }
        let mut at = 0;
        while at < n {
            let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[at..n])
                .map_err(|e| LinkError::new("listing links", 0, e.to_string()))?;
            let len = msg.header.length as usize;
            match msg.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(m)) => {
                    links.push(Link::from_message(&m));
                }
                NetlinkPayload::Done(_) => return Ok(links),
                NetlinkPayload::Error(e) => {
                    let errno = e.code.map(|c| -c.get()).unwrap_or(0);
                    return Err(LinkError::new(
                        "listing links",
                        errno,
                        std::io::Error::from_raw_os_error(errno).to_string(),
                    ));
                }
                _ => {}
            }
            if len == 0 {
                break;
            }
            // Messages are 4-byte aligned.
            at += (len + 3) & !3;
        }
    }
}
