//! The command-line commands, one file each.

pub mod check;
pub mod clock_skew;
pub mod doctor;
mod etcd_https;
pub mod notify;
pub mod serve;
mod socket;
pub mod status;
