//! Netlink failures, translated into what an operator can act on.

use std::fmt;

pub const EPERM: i32 = 1;
pub const ENOENT: i32 = 2;
pub const EEXIST: i32 = 17;
pub const ENODEV: i32 = 19;
pub const EINVAL: i32 = 22;
pub const EBUSY: i32 = 16;
pub const ERANGE: i32 = 34;
pub const EOPNOTSUPP: i32 = 95;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkError {
    /// What was being done, e.g. `creating macvlan link sy1234 on tp0`.
    pub action: String,
    /// The errno the kernel answered with (positive), 0 if none.
    pub errno: i32,
    pub detail: String,
}

impl LinkError {
    pub fn new(action: impl Into<String>, errno: i32, detail: impl Into<String>) -> Self {
        LinkError {
            action: action.into(),
            errno,
            detail: detail.into(),
        }
    }

    pub fn from_netlink(action: impl Into<String>, e: rtnetlink::Error) -> Self {
        let action = action.into();
        match e {
            rtnetlink::Error::NetlinkError(m) => {
                let errno = m.raw_code().abs();
                let detail = std::io::Error::from_raw_os_error(errno).to_string();
                LinkError::new(action, errno, detail)
            }
            other => LinkError::new(action, 0, other.to_string()),
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.errno == ENODEV
    }
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hint = match self.errno {
            EPERM => "; switchyard needs CAP_NET_ADMIN (run it as root)",
            ERANGE => "; Linux interface names have at most 15 bytes",
            _ => "",
        };
        write!(f, "{} failed: {}{hint}", self.action, self.detail)
    }
}

impl std::error::Error for LinkError {}
