//! A packet socket on one link, opened in the current thread's network
//! namespace (the caller's thread may have entered a container's). The one
//! place DHCP touches the kernel.

use crate::mac::MacAddr;
use std::ffi::CString;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::Instant;

const ETH_P_IP: u16 = 0x0800;

pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: i32,
}

fn last_error(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// An IPv4 packet socket, not bound yet (in the current thread's namespace).
fn open_packet_fd() -> io::Result<OwnedFd> {
    // SAFETY: socket(2); the fd is owned (and so closed) right away.
    unsafe {
        let raw = libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            ETH_P_IP.to_be() as i32,
        );
        if raw < 0 {
            return Err(last_error("opening a packet socket"));
        }
        Ok(OwnedFd::from_raw_fd(raw))
    }
}

/// Whether this process may do what DHCP networks need: open packet
/// sockets (CAP_NET_RAW) and enter containers' network namespaces to renew
/// leases (setns: CAP_SYS_ADMIN). Asked when a DHCP network is created, so
/// that a confined plugin refuses the network instead of losing leases later.
pub fn dhcp_privileges() -> io::Result<()> {
    drop(open_packet_fd()?);
    const CAP_SYS_ADMIN: u32 = 21;
    let status = std::fs::read_to_string("/proc/self/status")?;
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .ok_or_else(|| io::Error::other("no CapEff in /proc/self/status"))?;
    if eff & (1 << CAP_SYS_ADMIN) == 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "no CAP_SYS_ADMIN to enter containers' network namespaces",
        ));
    }
    Ok(())
}

impl PacketSocket {
    pub fn open(ifindex: u32) -> io::Result<PacketSocket> {
        let fd = open_packet_fd()?;
        // SAFETY: a plain bind(2) with a zeroed, filled-in sockaddr_ll of
        // the right size on an fd we own.
        unsafe {
            let mut sa: libc::sockaddr_ll = std::mem::zeroed();
            sa.sll_family = libc::AF_PACKET as u16;
            sa.sll_protocol = ETH_P_IP.to_be();
            sa.sll_ifindex = ifindex as i32;
            let r = libc::bind(
                fd.as_raw_fd(),
                &sa as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            );
            if r < 0 {
                return Err(last_error("binding a packet socket"));
            }
            Ok(PacketSocket {
                fd,
                ifindex: ifindex as i32,
            })
        }
    }

    pub fn send(&self, frame: &[u8], dst: MacAddr) -> io::Result<()> {
        // SAFETY: sendto(2) with a valid buffer and a filled-in sockaddr_ll.
        unsafe {
            let mut sa: libc::sockaddr_ll = std::mem::zeroed();
            sa.sll_family = libc::AF_PACKET as u16;
            sa.sll_protocol = ETH_P_IP.to_be();
            sa.sll_ifindex = self.ifindex;
            sa.sll_halen = 6;
            sa.sll_addr[..6].copy_from_slice(&dst.0);
            let r = libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr() as *const libc::c_void,
                frame.len(),
                0,
                &sa as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            );
            if r < 0 {
                return Err(last_error("sending a DHCP frame"));
            }
        }
        Ok(())
    }

    /// The next frame before `deadline`, or `None` when it passes.
    pub fn recv(&self, deadline: Instant) -> io::Result<Option<Vec<u8>>> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: poll(2) on one valid pollfd; recv(2) into a buffer of
            // the length passed.
            let n = unsafe { libc::poll(&mut pfd, 1, left.as_millis().max(1) as i32) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if n == 0 {
                continue;
            }
            let mut buf = vec![0u8; 2048];
            let r = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                    0,
                )
            };
            if r < 0 {
                return Err(last_error("receiving a DHCP frame"));
            }
            buf.truncate(r as usize);
            return Ok(Some(buf));
        }
    }
}

/// The index of link `name` in the current namespace.
pub fn ifindex_by_name(name: &str) -> io::Result<u32> {
    let c = CString::new(name).map_err(|_| io::Error::other("link name has a NUL byte"))?;
    // SAFETY: if_nametoindex(3) reads a valid C string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no link named \"{name}\""),
        ));
    }
    Ok(i)
}

/// The index of the link holding `addr` in the current namespace (in a
/// container the endpoint's link is renamed `eth<n>` and may be renumbered).
pub fn ifindex_by_address(addr: Ipv4Addr) -> io::Result<u32> {
    let mut found = None;
    // SAFETY: getifaddrs(3)'s list is walked read-only and freed once.
    unsafe {
        let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
        if libc::getifaddrs(&mut head) != 0 {
            return Err(last_error("listing addresses"));
        }
        let mut p = head;
        while !p.is_null() {
            let a = (*p).ifa_addr;
            if !a.is_null() && (*a).sa_family as i32 == libc::AF_INET {
                let sin = &*(a as *const libc::sockaddr_in);
                if Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)) == addr {
                    found = Some(libc::if_nametoindex((*p).ifa_name));
                    break;
                }
            }
            p = (*p).ifa_next;
        }
        libc::freeifaddrs(head);
    }
    match found {
        Some(i) if i != 0 => Ok(i),
        _ => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no link holds {addr}"),
        )),
    }
}

/// Runs `f` on a new thread inside the network namespace at `netns` (the
/// thread ends with `f`, so no thread of the process is left in it).
///
/// When this process runs in a mount namespace of its own (`ip netns
/// exec`, a systemd unit with private mounts, a managed plugin) dockerd's
/// bind mount of the sandbox may not be visible at `netns` — the file is
/// there but is no namespace (EINVAL) — so the same path is then opened
/// through the root of a process that has it mounted (dockerd).
pub fn in_netns<T: Send + 'static>(
    netns: &Path,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let direct = netns.to_path_buf();
    let holders = mount_holders(netns);
    std::thread::Builder::new()
        .name("sy-dhcp-netns".into())
        .spawn(move || {
            let mut last = io::Error::other("no namespace file");
            for p in std::iter::once(&direct).chain(holders.iter()) {
                let file = match std::fs::File::open(p) {
                    Ok(f) => f,
                    Err(e) => {
                        last = io::Error::new(e.kind(), format!("opening {}: {e}", p.display()));
                        continue;
                    }
                };
                match nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET) {
                    Ok(()) => return f(),
                    Err(e) => {
                        last =
                            io::Error::other(format!("entering the namespace {}: {e}", p.display()))
                    }
                }
            }
            Err(last)
        })?
        .join()
        .map_err(|_| io::Error::other("the DHCP thread panicked"))?
}

/// `path` as seen by the other processes that have a mount at exactly
/// `path` (their `/proc/PID/root/…`), the ones this process may open first.
fn mount_holders(path: &Path) -> Vec<std::path::PathBuf> {
    let Some(target) = path.to_str() else {
        return Vec::new();
    };
    let me = std::process::id().to_string();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == me {
            continue;
        }
        let Ok(info) = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")) else {
            continue;
        };
        // Field 5 of a mountinfo line is the mount point.
        if info.lines().any(|l| l.split(' ').nth(4) == Some(target)) {
            let p = Path::new("/proc")
                .join(&pid)
                .join("root")
                .join(target.trim_start_matches('/'));
            if std::fs::File::open(&p).is_ok() {
                out.push(p);
                break;
            }
        }
    }
    out
}
