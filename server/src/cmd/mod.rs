//! The command-line commands, one file each.

pub mod check;
pub mod notify;
pub mod serve;
pub mod status;
