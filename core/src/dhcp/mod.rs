//! DHCPv4 client for endpoints of `-o ipam=dhcp` networks: the lease comes
//! from the LAN's own server for the endpoint's MAC.
//!
//! `client.rs` (messages, pure), `lease.rs` (timers and phases, pure; what
//! the store keeps), `frame.rs` (Ethernet/IPv4/UDP, pure), `socket.rs` (the
//! packet socket, and entering a container's namespace), `exchange.rs`
//! (bounded, blocking exchanges). The driver decides when
//! (server/src/driver/dhcp.rs).

pub mod client;
pub mod exchange;
pub mod frame;
pub mod lease;
pub mod socket;

pub use client::Identity;
pub use exchange::Extended;
pub use lease::{Lease, Phase};
