//! The protocol surface: `/Plugin.Activate`, `/NetworkDriver.*` and
//! `/Switchyard.Status` over HTTP/1.1. Decoding, error mapping and one log
//! line per request live here; everything else is the Driver's.

use crate::driver::Driver;
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;
use switchyard_core::Error;
use switchyard_core::protocol::{
    ActivateResponse, AllocateNetworkRequest, AllocateNetworkResponse, short_id,
};
use tracing::{info, warn};
use warp::Filter;
use warp::http::{HeaderValue, StatusCode, header::CONTENT_TYPE};
use warp::reply::Response;

pub const PLUGIN_CONTENT_TYPE: &str = "application/vnd.docker.plugins.v1.2+json";
const MAX_BODY: u64 = 1 << 20;

pub fn reply<T: Serialize>(status: StatusCode, v: &T) -> Response {
    let body = serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec());
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(PLUGIN_CONTENT_TYPE));
    r
}

fn err_reply(status: StatusCode, msg: impl Into<String>) -> Response {
    reply(status, &json!({"Err": msg.into()}))
}

/// An outcome of one call: the reply plus what the log line says.
struct Outcome {
    response: Response,
    ok: bool,
    message: Option<String>,
}

fn ok<T: Serialize>(v: &T) -> Outcome {
    Outcome {
        response: reply(StatusCode::OK, v),
        ok: true,
        message: None,
    }
}

fn failed(e: Error) -> Outcome {
    let msg = e.to_string();
    Outcome {
        response: err_reply(StatusCode::INTERNAL_SERVER_ERROR, msg.clone()),
        ok: false,
        message: Some(msg),
    }
}

fn result<T: Serialize>(r: switchyard_core::Result<T>) -> Outcome {
    match r {
        Ok(v) => ok(&v),
        Err(e) => failed(e),
    }
}

fn decode<T: DeserializeOwned>(method: &str, body: &Value) -> Result<T, Box<Outcome>> {
    serde_json::from_value(body.clone()).map_err(|e| {
        let msg = format!("{method}: the request body does not match the protocol: {e}");
        Box::new(Outcome {
            response: err_reply(StatusCode::BAD_REQUEST, msg.clone()),
            ok: false,
            message: Some(msg),
        })
    })
}

macro_rules! call {
    ($method:expr, $body:expr, $req:ty, |$r:ident| $e:expr) => {
        match decode::<$req>($method, $body) {
            Ok($r) => $e,
            Err(o) => *o,
        }
    };
}

/// IPAM answers carry their error as `Error` (protocol.md §3); with a
/// non-200 status `Err` works too, so both are sent.
fn ipam(o: Outcome) -> Outcome {
    match (&o.ok, &o.message) {
        (false, Some(m)) => Outcome {
            response: reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({"Err": m, "Error": m}),
            ),
            ok: false,
            message: o.message,
        },
        _ => o,
    }
}

async fn dispatch(driver: &Driver, method: &str, body: &Value) -> Outcome {
    use switchyard_core::protocol as p;
    match method {
        "Plugin.Activate" => ok(&ActivateResponse {
            implements: vec!["NetworkDriver".into(), "IpamDriver".into()],
        }),
        "IpamDriver.GetCapabilities" => ok(&driver.ipam_capabilities()),
        "IpamDriver.GetDefaultAddressSpaces" => ok(&driver.ipam_address_spaces()),
        "IpamDriver.RequestPool" => {
            ipam(call!(method, body, crate::driver::ipam::RequestPool, |r| {
                result(driver.ipam_request_pool(r).await)
            }))
        }
        "IpamDriver.ReleasePool" => ipam(call!(method, body, crate::driver::ipam::PoolRef, |r| {
            result(driver.ipam_release_pool(r).await)
        })),
        "IpamDriver.RequestAddress" => ipam(call!(
            method,
            body,
            crate::driver::ipam::RequestAddress,
            |r| result(driver.ipam_request_address(r).await)
        )),
        "IpamDriver.ReleaseAddress" => ipam(call!(
            method,
            body,
            crate::driver::ipam::RequestAddress,
            |r| result(driver.ipam_release_address(r).await)
        )),
        "NetworkDriver.GetCapabilities" => ok(&driver.capabilities()),
        "NetworkDriver.GwAllocCheck" => {
            call!(method, body, p::GwAllocCheckRequest, |r| result(
                driver.gw_alloc_check(r).await
            ))
        }
        "NetworkDriver.CreateNetwork" => call!(method, body, p::CreateNetworkRequest, |r| result(
            driver.create_network(r).await.map(|_| json!({}))
        )),
        "NetworkDriver.DeleteNetwork" => call!(method, body, p::NetworkRequest, |r| result(
            driver
                .delete_network(&r.network_id)
                .await
                .map(|_| json!({}))
        )),
        "NetworkDriver.CreateEndpoint" => call!(method, body, p::CreateEndpointRequest, |r| {
            result(driver.create_endpoint(r).await)
        }),
        "NetworkDriver.DeleteEndpoint" => call!(method, body, p::EndpointRequest, |r| result(
            driver.delete_endpoint(r).await.map(|_| json!({}))
        )),
        "NetworkDriver.EndpointOperInfo" => {
            // Never fails: Engine ≤ 26 aborts the container start on an error here.
            let r = serde_json::from_value::<p::EndpointRequest>(body.clone()).unwrap_or_default();
            ok(&driver.endpoint_oper_info(r))
        }
        "NetworkDriver.Join" => call!(method, body, p::JoinRequest, |r| result(
            driver.join(r).await
        )),
        "NetworkDriver.Leave" => call!(method, body, p::EndpointRequest, |r| result(
            driver.leave(r).await.map(|_| json!({}))
        )),
        // No NAT or port publishing for L2 backends: nothing to program.
        "NetworkDriver.ProgramExternalConnectivity"
        | "NetworkDriver.RevokeExternalConnectivity" => {
            call!(method, body, p::ExternalConnectivityRequest, |_r| ok(
                &json!({})
            ))
        }
        // Only sent to Scope "global" drivers on swarm managers; Switchyard is
        // "local", but answering keeps a future scope change harmless.
        "NetworkDriver.AllocateNetwork" => call!(method, body, AllocateNetworkRequest, |r| ok(
            &AllocateNetworkResponse { options: r.options }
        )),
        "NetworkDriver.FreeNetwork" => call!(method, body, p::NetworkRequest, |_r| ok(&json!({}))),
        "NetworkDriver.DiscoverNew" | "NetworkDriver.DiscoverDelete" => {
            call!(method, body, p::DiscoveryRequest, |_r| ok(&json!({})))
        }
        "Switchyard.Status" => ok(&driver.status().await),
        _ => Outcome {
            response: err_reply(
                StatusCode::NOT_FOUND,
                format!("{method} is not implemented by Switchyard"),
            ),
            ok: true,
            message: Some("not implemented (404)".into()),
        },
    }
}

async fn handle(driver: Arc<Driver>, method: String, body: Bytes) -> Response {
    let start = Instant::now();
    // Go's encoder ends bodies with a newline; calls without arguments have
    // none at all.
    let value: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                let msg = format!("{method}: the request body is not valid JSON: {e}");
                warn!(method = %method, "{msg}");
                return err_reply(StatusCode::BAD_REQUEST, msg);
            }
        }
    };
    let body_for_call = if value.is_null() { json!({}) } else { value };
    let net = body_for_call
        .get("NetworkID")
        .and_then(Value::as_str)
        .unwrap_or("");
    let ep = body_for_call
        .get("EndpointID")
        .and_then(Value::as_str)
        .unwrap_or("");
    let (net, ep) = (short_id(net).to_string(), short_id(ep).to_string());
    let outcome = dispatch(&driver, &method, &body_for_call).await;
    let micros = start.elapsed().as_micros() as u64;
    match (&outcome.ok, &outcome.message) {
        (true, None) => info!(method = %method, network = %net, endpoint = %ep, us = micros, "ok"),
        (true, Some(m)) => info!(method = %method, us = micros, "{m}"),
        (false, m) => {
            warn!(method = %method, network = %net, endpoint = %ep, us = micros, error = m.as_deref().unwrap_or(""), "failed")
        }
    }
    outcome.response
}

/// A body-size guard that, unlike warp's, does not demand a Content-Length.
fn body_limit() -> impl Filter<Extract = (), Error = warp::Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
        .and_then(|len: Option<u64>| async move {
            match len {
                Some(n) if n > MAX_BODY => Err(warp::reject::custom(TooLarge)),
                _ => Ok(()),
            }
        })
        .untuple_one()
}

#[derive(Debug)]
struct TooLarge;
impl warp::reject::Reject for TooLarge {}

pub fn routes(
    driver: Arc<Driver>,
) -> impl Filter<Extract = (impl warp::Reply,), Error = std::convert::Infallible> + Clone {
    let calls = warp::path::param::<String>()
        .and(warp::path::end())
        .and(warp::post())
        .and(body_limit())
        .and(warp::body::bytes())
        .then(move |method: String, body: Bytes| handle(driver.clone(), method, body));
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
        } else {
            err_reply(StatusCode::BAD_REQUEST, format!("bad request: {r:?}"))
        };
        Ok::<_, std::convert::Infallible>(resp)
    })
}
