//! Which Driver call answers which plugin method.

use super::edge::{Refused, decode};
use super::outcome::{Outcome, ipam, ok, result};
use crate::driver::Driver;
use serde_json::Value;
use switchyard_core::protocol::{
    ActivateResponse, AllocateNetworkRequest, AllocateNetworkResponse,
};
use warp::http::StatusCode;

macro_rules! call {
    ($method:expr, $body:expr, $req:ty, |$r:ident| $e:expr) => {
        match decode::<$req>($method, $body) {
            Ok($r) => $e,
            Err(Refused(m)) => Outcome::refused(m),
        }
    };
}

pub async fn dispatch(driver: &Driver, method: &str, body: &Value) -> Outcome {
    use switchyard_core::protocol as p;
    match method {
        "Plugin.Activate" => ok(&ActivateResponse {
            implements: vec!["NetworkDriver".into(), "IpamDriver".into()],
        }),
        "IpamDriver.GetCapabilities" => ok(&driver.ipam_capabilities()),
        "IpamDriver.GetDefaultAddressSpaces" => ok(&driver.ipam_address_spaces()),
        "IpamDriver.RequestPool" => ipam(call!(method, body, p::ipam::RequestPoolRequest, |r| {
            result(driver.ipam_request_pool(r).await)
        })),
        "IpamDriver.ReleasePool" => ipam(call!(method, body, p::ipam::ReleasePoolRequest, |r| {
            result(driver.ipam_release_pool(r).await)
        })),
        "IpamDriver.RequestAddress" => {
            ipam(call!(method, body, p::ipam::AddressRequest, |r| result(
                driver.ipam_request_address(r).await
            )))
        }
        "IpamDriver.ReleaseAddress" => {
            ipam(call!(method, body, p::ipam::AddressRequest, |r| result(
                driver.ipam_release_address(r).await
            )))
        }
        "NetworkDriver.GetCapabilities" => ok(&driver.capabilities()),
        "NetworkDriver.GwAllocCheck" => {
            call!(method, body, p::GwAllocCheckRequest, |r| result(
                driver.gw_alloc_check(r).await
            ))
        }
        "NetworkDriver.CreateNetwork" => call!(method, body, p::CreateNetworkRequest, |r| result(
            driver.create_network(r).await.map(|_| p::Empty {})
        )),
        "NetworkDriver.DeleteNetwork" => call!(method, body, p::NetworkRequest, |r| result(
            driver
                .delete_network(&r.network_id)
                .await
                .map(|_| p::Empty {})
        )),
        "NetworkDriver.CreateEndpoint" => call!(method, body, p::CreateEndpointRequest, |r| {
            result(driver.create_endpoint(r).await)
        }),
        "NetworkDriver.DeleteEndpoint" => call!(method, body, p::EndpointRequest, |r| result(
            driver.delete_endpoint(r).await.map(|_| p::Empty {})
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
            driver.leave(r).await.map(|_| p::Empty {})
        )),
        // No NAT or port publishing for L2 backends: nothing to program.
        "NetworkDriver.ProgramExternalConnectivity"
        | "NetworkDriver.RevokeExternalConnectivity" => {
            call!(method, body, p::ExternalConnectivityRequest, |_r| ok(
                &p::Empty {}
            ))
        }
        // Only sent to Scope "global" drivers on swarm managers; Switchyard is
        // "local", but answering keeps a future scope change harmless.
        "NetworkDriver.AllocateNetwork" => call!(method, body, AllocateNetworkRequest, |r| ok(
            &AllocateNetworkResponse { options: r.options }
        )),
        "NetworkDriver.FreeNetwork" => {
            call!(method, body, p::NetworkRequest, |_r| ok(&p::Empty {}))
        }
        "NetworkDriver.DiscoverNew" | "NetworkDriver.DiscoverDelete" => {
            call!(method, body, p::DiscoveryRequest, |_r| ok(&p::Empty {}))
        }
        "Switchyard.Status" => ok(&driver.status().await),
        _ => Outcome {
            response: super::outcome::err_reply(
                StatusCode::NOT_FOUND,
                format!(
                    "{} is not implemented by Switchyard",
                    super::edge::quote_method(method)
                ),
            ),
            ok: true,
            message: Some("not implemented (404)".into()),
        },
    }
}
