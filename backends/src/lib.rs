//! Switchyard's dataplanes. One `Backend` trait (`backend.rs`), one
//! implementation per kind of network, built from their config sections and
//! dispatched through `AnyBackend` (`registry.rs`, netavark's driver-factory
//! idea: the driver picks the backend by the network's spec).
//!
//! A backend validates a spec against the host, turns networks and endpoints
//! into link plans, and answers Join; the shared `LinkManager` in `Host` does
//! every kernel operation. macvlan and ipvlan are child kinds of the shared
//! parent handling (`parent/`); vxlan has its own control plane (`vxlan/`).

mod backend;
mod ipvlan;
mod macvlan;
pub mod metrics;
pub mod parent;
mod registry;
pub mod vxlan;

pub use backend::{Backend, Host};
pub use ipvlan::{Ipvlan, IpvlanSettings};
pub use macvlan::{Macvlan, MacvlanSettings};
pub use registry::{AnyBackend, BackendSettings, Backends};
pub use vxlan::{ClusterStatus, Vxlan};
