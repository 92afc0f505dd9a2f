//! Switchyard's core: the model shared by every backend, the typed options
//! (`NetworkSpec`), the wire types of the libnetwork protocol, the one netlink
//! link manager, and the embedded store.

pub mod dhcp;
pub mod error;
pub mod failpoint;
pub mod ids;
pub mod ipam;
pub mod link;
pub mod mac;
pub mod mark;
pub mod model;
pub mod protocol;
pub mod quote;
pub mod spec;
pub mod store;

pub use error::{Error, Result};
