//! The protocol surface: `/Plugin.Activate`, `/NetworkDriver.*`,
//! `/IpamDriver.*` and `/Switchyard.Status` over HTTP/1.1. `edge.rs`
//! checks every request before any work, `dispatch.rs` hands it to the
//! Driver, `outcome.rs` shapes the answer; one log line per request, with
//! every value from the request escaped.

mod dispatch;
mod edge;
mod outcome;
#[cfg(test)]
mod props;

use crate::driver::Driver;
use crate::metrics::Metrics;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures::{FutureExt, StreamExt};
use outcome::err_reply;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;
use switchyard_core::protocol::short_id;
use tracing::{error, info, warn};
use warp::Filter;
use warp::http::StatusCode;
use warp::reply::Response;

const MAX_BODY: usize = 1 << 20;

async fn handle(
    driver: Arc<Driver>,
    metrics: Arc<Metrics>,
    method: String,
    body: Bytes,
) -> Response {
    let start = Instant::now();
    let shown = edge::quote_method(&method);
    let value = match edge::parse(&method, &body) {
        Ok(v) => v,
        Err(edge::Refused(msg)) => {
            warn!(method = %shown, error = %msg, "refused");
            metrics.call(&method, "refused", start.elapsed());
            return err_reply(StatusCode::BAD_REQUEST, msg);
        }
    };
    let body = if value.is_null() { json!({}) } else { value };
    if let Err(edge::Refused(msg)) = edge::check_ids(&method, &body) {
        warn!(method = %shown, error = %msg, "refused");
        metrics.call(&method, "refused", start.elapsed());
        return err_reply(StatusCode::BAD_REQUEST, msg);
    }
    // IDs passed the edge's check: plain ASCII letters and digits.
    let id = |f: &str| short_id(body.get(f).and_then(Value::as_str).unwrap_or("")).to_string();
    let (net, ep) = (id("NetworkID"), id("EndpointID"));
    // A bug in one handler must not take the plugin down with it: the
    // caller gets an error and the log says where.
    let outcome = match std::panic::AssertUnwindSafe(dispatch::dispatch(&driver, &method, &body))
        .catch_unwind()
        .await
    {
        Ok(o) => o,
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("unknown");
            error!(method = %shown, network = %net, endpoint = %ep, panic = ?what, "handler panicked; answered with an error");
            outcome::failed(switchyard_core::Error::Internal(format!(
                "{shown} failed inside Switchyard (a bug: the plugin's log has the details); the plugin keeps serving, so the call can be retried"
            )))
        }
    };
    let took = start.elapsed();
    let micros = took.as_micros() as u64;
    let label = match outcome.response.status() {
        StatusCode::OK => "ok",
        StatusCode::BAD_REQUEST => "refused",
        StatusCode::NOT_FOUND => "not_found",
        _ => "error",
    };
    metrics.call(&method, label, took);
    match (&outcome.ok, &outcome.message) {
        (true, None) => info!(method = %shown, network = %net, endpoint = %ep, us = micros, "ok"),
        (true, Some(m)) => info!(method = %shown, us = micros, outcome = ?m, "answered"),
        (false, m) => {
            warn!(method = %shown, network = %net, endpoint = %ep, us = micros, error = ?m.as_deref().unwrap_or(""), "failed")
        }
    }
    outcome.response
}

/// The body, at most `MAX_BODY` bytes whatever its encoding: a declared
/// Content-Length over the limit is refused before reading, and a chunked
/// body is counted as it arrives and refused once it passes the limit.
fn bounded_body() -> impl Filter<Extract = (Bytes,), Error = warp::Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
        .and(warp::body::stream())
        .and_then(|len: Option<u64>, mut stream| async move {
            if len.is_some_and(|n| n > MAX_BODY as u64) {
                return Err(warp::reject::custom(TooLarge));
            }
            let mut body = BytesMut::new();
            while let Some(chunk) = StreamExt::next(&mut stream).await {
                let mut chunk: warp::hyper::body::Bytes = match chunk {
                    Ok(mut c) => {
                        let n = Buf::remaining(&c);
                        Buf::copy_to_bytes(&mut c, n)
                    }
                    Err(_) => return Err(warp::reject::custom(Unreadable)),
                };
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(warp::reject::custom(TooLarge));
                }
                body.put(&mut chunk);
            }
            Ok(body.freeze())
        })
}

#[derive(Debug)]
struct TooLarge;
impl warp::reject::Reject for TooLarge {}

#[derive(Debug)]
struct Unreadable;
impl warp::reject::Reject for Unreadable {}

pub fn routes(
    driver: Arc<Driver>,
    metrics: Arc<Metrics>,
) -> impl Filter<Extract = (impl warp::Reply,), Error = std::convert::Infallible> + Clone {
    let calls = warp::path::param::<String>()
        .and(warp::path::end())
        .and(warp::post())
        .and(bounded_body())
        .then(move |method: String, body: Bytes| {
            handle(driver.clone(), metrics.clone(), method, body)
        });
    calls.recover(|r: warp::Rejection| async move {
        let resp = if r.is_not_found() {
            err_reply(
                StatusCode::NOT_FOUND,
                "no such plugin method; methods are POST /<Subsystem>.<Method>",
            )
        } else if r.find::<TooLarge>().is_some() {
            err_reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body over {MAX_BODY} bytes"),
            )
        } else if r.find::<warp::reject::MethodNotAllowed>().is_some() {
            err_reply(StatusCode::METHOD_NOT_ALLOWED, "plugin methods take POST")
        } else if r.find::<Unreadable>().is_some() {
            err_reply(
                StatusCode::BAD_REQUEST,
                "the request body could not be read (the connection broke or its encoding is invalid); send it again",
            )
        } else {
            err_reply(
                StatusCode::BAD_REQUEST,
                "the request is not a plugin call; send POST /<Subsystem>.<Method> with a JSON body",
            )
        };
        Ok::<_, std::convert::Infallible>(resp)
    })
}
