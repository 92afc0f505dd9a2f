//! Errors a user or operator can see. Every message names what is wrong and,
//! where there is one, what would be right: they end up verbatim in the output
//! of `docker network create` / `docker run`.

use crate::link::LinkError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request or its options are wrong; nothing was created.
    #[error("{0}")]
    Invalid(String),
    /// The request is valid but conflicts with what already exists.
    #[error("{0}")]
    Conflict(String),
    /// The kernel refused or failed an operation.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The embedded state could not be read or written.
    #[error("switchyard state store: {0}")]
    Store(String),
    /// Switchyard itself failed (a bug); the message says what to do.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::Invalid(msg.into())
    }
    pub fn conflict(msg: impl Into<String>) -> Self {
        Error::Conflict(msg.into())
    }
}
