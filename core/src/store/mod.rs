//! What Switchyard keeps: the embedded redb store of networks, endpoints and
//! local IPAM (`embedded.rs`), and the one interface the IPAM driver claims
//! addresses through (`claims.rs`) — served by the embedded store on a
//! single host and by the etcd control plane (the VXLAN backend's cluster)
//! when one is configured; who asked for a claim (`owner.rs`).

mod claims;
mod embedded;
mod owner;

pub use claims::{ClaimFuture, Claims, Holder};
pub use embedded::{STATE_FILE, Store};
pub use owner::{Asker, Owner};
