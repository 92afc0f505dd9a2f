//! The shape of the IDs dockerd sends, checked at the edge before any work:
//! a network or endpoint ID is 64 hexadecimal digits (`stringid`), or, for
//! networks made by a swarm manager, 25 lowercase letters and digits
//! (`identity.NewID`). Nothing else reaches link names, marks or the store,
//! so no ID can contain a separator, a control character or a multi-byte
//! character, or be long enough to overflow a netlink attribute.

use crate::quote::quote;
use crate::{Error, Result};

/// What an ID must look like, as error messages state it.
pub const ID_RULE: &str = "64 hexadecimal digits as dockerd generates them (or 25 lowercase letters and digits for a swarm network)";

pub fn is_valid_id(id: &str) -> bool {
    let b = id.as_bytes();
    match b.len() {
        64 => b.iter().all(u8::is_ascii_hexdigit),
        25 => b
            .iter()
            .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()),
        _ => false,
    }
}

/// `field` (e.g. `NetworkID`) holds a valid ID.
pub fn check_id(field: &str, id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::invalid(format!(
            "{field} is missing; it must be {ID_RULE}"
        )));
    }
    if !is_valid_id(id) {
        return Err(Error::invalid(format!(
            "{field} {} is not an ID dockerd sends; it must be {ID_RULE}",
            quote(id)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerd_and_swarm_ids_pass() {
        assert!(is_valid_id(&"0a".repeat(32)));
        assert!(is_valid_id(&"AB".repeat(32)));
        assert!(is_valid_id("qz2h2l5v0n6g5e6j9b1c7x3p4"));
    }

    #[test]
    fn everything_else_is_refused_with_the_rule() {
        for bad in [
            "",
            "n1",
            &"0".repeat(63),
            &"0".repeat(65),
            &"g".repeat(64),
            &format!("{}:", "0".repeat(63)),
            &format!("{}\0", "0".repeat(63)),
            "aéééééééééééé",
            "QZ2H2L5V0N6G5E6J9B1C7X3P4",
            &"0".repeat(100_000),
        ] {
            assert!(!is_valid_id(bad), "{bad:?}");
            let e = check_id("NetworkID", bad).unwrap_err().to_string();
            assert!(
                e.contains("NetworkID") && e.contains("64 hexadecimal digits"),
                "{e}"
            );
            assert!(e.len() < 400, "the value is truncated in the error: {e}");
        }
    }
}
