//! An answer and what its log line says.

use serde::Serialize;
use serde_json::json;
use switchyard_core::Error;
use warp::http::{HeaderValue, StatusCode, header::CONTENT_TYPE};
use warp::reply::Response;

pub const PLUGIN_CONTENT_TYPE: &str = "application/vnd.docker.plugins.v1.2+json";

pub fn reply<T: Serialize>(status: StatusCode, v: &T) -> Response {
    let body = serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec());
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(PLUGIN_CONTENT_TYPE));
    r
}

pub fn err_reply(status: StatusCode, msg: impl Into<String>) -> Response {
    reply(status, &json!({"Err": msg.into()}))
}

/// An outcome of one call: the reply plus what the log line says.
pub struct Outcome {
    pub response: Response,
    pub ok: bool,
    pub message: Option<String>,
}

pub fn ok<T: Serialize>(v: &T) -> Outcome {
    Outcome {
        response: reply(StatusCode::OK, v),
        ok: true,
        message: None,
    }
}

pub fn failed(e: Error) -> Outcome {
    let msg = printable(&e.to_string());
    Outcome {
        response: err_reply(StatusCode::INTERNAL_SERVER_ERROR, msg.clone()),
        ok: false,
        message: Some(msg),
    }
}

pub fn result<T: Serialize>(r: switchyard_core::Result<T>) -> Outcome {
    match r {
        Ok(v) => ok(&v),
        Err(e) => failed(e),
    }
}

impl Outcome {
    /// The edge refused the request (400): nothing was done.
    pub fn refused(msg: String) -> Outcome {
        Outcome {
            response: err_reply(StatusCode::BAD_REQUEST, msg.clone()),
            ok: false,
            message: Some(msg),
        }
    }
}

/// IPAM answers carry their error as `Error` (protocol.md §3); with a
/// non-200 status `Err` works too, so both are sent.
pub fn ipam(o: Outcome) -> Outcome {
    match (&o.ok, &o.message) {
        (false, Some(m)) => Outcome {
            response: reply(o.response.status(), &json!({"Err": m, "Error": m})),
            ok: false,
            message: o.message,
        },
        _ => o,
    }
}

/// An error's text as it may reach a terminal or a log: control characters
/// escaped, at most `MAX_ERROR` characters (values are quoted shorter where
/// the error is made; this is the backstop).
fn printable(msg: &str) -> String {
    const MAX_ERROR: usize = 2000;
    let mut out = String::new();
    for (n, c) in msg.chars().enumerate() {
        if n == MAX_ERROR {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}
