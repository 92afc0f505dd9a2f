//! Join and Leave. The link is created at Join (as Docker's built-in macvlan
//! does) in this namespace; dockerd moves it into the container. Join never
//! enters the sandbox: on Engine ≤ 27 it does not exist yet.

use super::Driver;
use switchyard_backends::Backend;
use switchyard_core::Error;
use switchyard_core::Result;
use switchyard_core::protocol::{EndpointRequest, JoinRequest, JoinResponse, short_id};
use tracing::warn;

impl Driver {
    pub async fn join(&self, req: JoinRequest) -> Result<JoinResponse> {
        let _guard = self.locks.lock(&req.network_id).await;
        let net = self.known_network(&req.network_id)?;
        let mut ep = self
            .store
            .endpoint(&req.network_id, &req.endpoint_id)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "endpoint {} is not known on network {}; dockerd sends CreateEndpoint before Join — recreate the container",
                    short_id(&req.endpoint_id),
                    short_id(&req.network_id)
                ))
            })?;
        let backend = self.backends.for_network(&net);
        let host = self.host();
        backend.create_endpoint_link(&host, &net, &ep).await?;
        switchyard_core::failpoint::kill("join.link_ready");
        let sandbox = Some(req.sandbox_key.clone()).filter(|s| !s.is_empty());
        if ep.sandbox_key != sandbox {
            ep.sandbox_key = sandbox;
            if let Err(e) = self.store.put_endpoint(&ep) {
                let _ = backend.delete_endpoint_link(&host, &net, &ep).await;
                return Err(e);
            }
        }
        let mut answer = backend.join_answer(&net, &ep);
        if let Some(gw) = self.dhcp_gateway(&net, &ep) {
            answer.gateway = Some(gw);
        }
        Ok(JoinResponse::from(&answer))
    }

    /// The link is still inside the container here, and dockerd moves it
    /// back before DeleteEndpoint removes it; only what Join set up on
    /// the host beside it (host access routes) is undone. Never fails:
    /// Leave comes twice, or for endpoints whose Join failed.
    pub async fn leave(&self, req: EndpointRequest) -> Result<()> {
        let _guard = self.locks.lock(&req.network_id).await;
        switchyard_core::failpoint::kill("leave.start");
        if let (Some(net), Some(ep)) = (
            self.store.network(&req.network_id),
            self.store.endpoint(&req.network_id, &req.endpoint_id),
        ) && let Err(e) = self
            .backends
            .for_network(&net)
            .endpoint_left(&self.host(), &net, &ep)
            .await
        {
            warn!(network = short_id(&net.id), endpoint = short_id(&ep.id), error = %e, "Leave: could not undo the endpoint's host setup");
        }
        Ok(())
    }
}
