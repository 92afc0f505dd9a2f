//! CreateEndpoint, DeleteEndpoint, EndpointOperInfo.

use super::{Driver, dhcp};
use ipnet::IpNet;
use serde_json::{Map, Value, json};
use switchyard_backends::Backend;
use switchyard_core::mac::MacAddr;
use switchyard_core::mark::Mark;
use switchyard_core::model::{EndpointRecord, NetworkRecord, endpoint_link_name, now};
use switchyard_core::protocol::{
    CreateEndpointRequest, CreateEndpointResponse, EndpointRequest, InterfaceUpdate,
    OperInfoResponse, short_id,
};
use switchyard_core::spec::dhcp_enabled;
use switchyard_core::spec::slaac;
use switchyard_core::{Error, Result};
use tracing::info;

fn parse_addr(what: &str, s: &str, v6: bool) -> Result<Option<IpNet>> {
    if s.is_empty() {
        return Ok(None);
    }
    let n: IpNet = s.parse().map_err(|_| {
        Error::invalid(format!(
            "endpoint {what} \"{s}\" is not an address with prefix length (e.g. 10.0.0.2/24)"
        ))
    })?;
    if n.addr().is_ipv6() != v6 {
        return Err(Error::invalid(format!(
            "endpoint {what} \"{s}\" is of the wrong address family"
        )));
    }
    Ok(Some(n))
}

/// The endpoint's address must lie in one of the network's subnets of its
/// family (when the network has any): dockerd's IPAM hands out only those,
/// and a link addressed outside them would never be reachable.
fn check_in_subnets(what: &str, addr: Option<IpNet>, net: &NetworkRecord, v6: bool) -> Result<()> {
    let Some(a) = addr else { return Ok(()) };
    let subnets = if v6 { &net.spec.ipv6 } else { &net.spec.ipv4 };
    if subnets.is_empty() || subnets.iter().any(|s| s.pool.contains(&a.addr())) {
        return Ok(());
    }
    let list: Vec<String> = subnets.iter().map(|s| s.pool.to_string()).collect();
    Err(Error::invalid(format!(
        "endpoint {what} {a} is outside the network's subnets ({}); it must be an address of one of them",
        list.join(", ")
    )))
}

/// A MAC the kernel accepts for a link: not all zeroes (Join would fail
/// with "Cannot assign requested address") and unicast (bit 0 of the first
/// byte clear).
fn check_mac(mac: MacAddr) -> Result<()> {
    if mac.0 == [0; 6] {
        return Err(Error::invalid(format!(
            "Interface.MacAddress {mac} is all zeroes; it must be a unicast MAC address such as 02:42:0a:00:00:02"
        )));
    }
    if mac.0[0] & 1 == 1 {
        return Err(Error::invalid(format!(
            "Interface.MacAddress {mac} is a multicast address (lowest bit of the first byte set); it must be a unicast MAC address such as 02:42:0a:00:00:02"
        )));
    }
    Ok(())
}

/// `dhcp_address`: the address of the endpoint's DHCP lease (dockerd sent
/// none, so it takes the one returned).
fn response(ep: &EndpointRecord, dhcp_address: Option<String>) -> CreateEndpointResponse {
    let mac = match (ep.mac, ep.mac_from_user) {
        (Some(mac), false) => mac.to_string(),
        _ => String::new(),
    };
    let address = dhcp_address.unwrap_or_default();
    if mac.is_empty() && address.is_empty() {
        return CreateEndpointResponse::default();
    }
    CreateEndpointResponse {
        interface: Some(InterfaceUpdate {
            address,
            mac_address: mac,
        }),
    }
}

impl Driver {
    pub async fn create_endpoint(
        &self,
        req: CreateEndpointRequest,
    ) -> Result<CreateEndpointResponse> {
        if req.endpoint_id.is_empty() {
            return Err(Error::invalid(
                "EndpointID is empty; dockerd always sends one",
            ));
        }
        let _guard = self.locks.lock(&req.network_id).await;
        let net = self.known_network(&req.network_id)?;
        if let Some(existing) = self.store.endpoint(&req.network_id, &req.endpoint_id) {
            // A retry: answer the same way.
            let lease = self.store.lease(&req.network_id, &req.endpoint_id);
            return Ok(response(&existing, lease.map(|l| l.address.to_string())));
        }
        let requested = match req.interface.mac_address.as_str() {
            "" => None,
            s => Some(s.parse::<MacAddr>().map_err(Error::Invalid)?),
        };
        if let Some(mac) = requested {
            check_mac(mac)?;
        }
        if net.spec.ipv6_slaac {
            slaac::check_endpoint(&req.options, short_id(&net.id))?;
        }
        let backend = self.backends.for_network(&net);
        let mut ep = EndpointRecord {
            network_id: req.network_id.clone(),
            id: req.endpoint_id.clone(),
            ipv4: parse_addr("Address", &req.interface.address, false)?,
            ipv6: parse_addr("AddressIPv6", &req.interface.address_ipv6, true)?,
            mac: None,
            mac_from_user: requested.is_some(),
            link_name: endpoint_link_name(&req.endpoint_id),
            sandbox_key: None,
            created_at: now(),
        };
        check_in_subnets("Address", ep.ipv4, &net, false)?;
        check_in_subnets("AddressIPv6", ep.ipv6, &net, true)?;
        ep.mac = backend.endpoint_mac(&net, &ep, requested)?;
        backend.validate_endpoint(&net, &ep, &|| self.store.endpoints(&net.id))?;
        if dhcp_enabled(&net.spec) && ep.ipv4.is_none() {
            let lease = self.dhcp_acquire(&net, &ep).await?;
            ep.ipv4 = Some(dhcp::lease_address(&lease));
            let kept = self
                .store
                .put_lease(&net.id, &ep.id, &lease)
                .and_then(|_| self.store.put_endpoint(&ep));
            if let Err(e) = kept {
                self.dhcp_release(&net, &ep).await;
                let host = self.host();
                let _ = backend.delete_endpoint_link(&host, &net, &ep).await;
                return Err(e);
            }
            return Ok(response(&ep, Some(lease.address.to_string())));
        }
        self.store.put_endpoint(&ep)?;
        Ok(response(&ep, None))
    }

    /// Succeeds for unknown endpoints and missing links: teardown is never retried.
    pub async fn delete_endpoint(&self, req: EndpointRequest) -> Result<()> {
        let _guard = self.locks.lock(&req.network_id).await;
        let host = self.host();
        match (
            self.store.network(&req.network_id),
            self.store.endpoint(&req.network_id, &req.endpoint_id),
        ) {
            (Some(net), Some(ep)) => {
                self.dhcp_release(&net, &ep).await;
                // Forget first: if the process dies before the link is gone,
                // startup reconciliation removes it as an orphan.
                self.store.delete_endpoint(&ep.network_id, &ep.id)?;
                switchyard_core::failpoint::kill("endpoint.delete.forgotten");
                self.backends
                    .for_network(&net)
                    .delete_endpoint_link_later(&host, &net, &ep);
            }
            _ => {
                // Not in the state (already deleted, or never created here):
                // still remove a link that carries exactly this endpoint's mark.
                let mark = Mark::endpoint(&self.instance, &req.network_id, &req.endpoint_id);
                self.links
                    .delete_later(&endpoint_link_name(&req.endpoint_id), mark);
                info!(
                    network = short_id(&req.network_id),
                    endpoint = short_id(&req.endpoint_id),
                    "DeleteEndpoint for an endpoint Switchyard does not know: nothing to do"
                );
            }
        }
        Ok(())
    }

    /// Fast and never failing: answered from memory.
    pub fn endpoint_oper_info(&self, req: EndpointRequest) -> OperInfoResponse {
        let mut value = Map::new();
        if let (Some(net), Some(ep)) = (
            self.store.network(&req.network_id),
            self.store.endpoint(&req.network_id, &req.endpoint_id),
        ) {
            value.insert("backend".into(), json!(net.spec.backend.kind()));
            if let Some(p) = net.spec.backend.parent() {
                value.insert("parent".into(), json!(p.link_name(&net.id)));
            }
            value.insert("host_link".into(), json!(ep.link_name));
            if let Some(mac) = ep.mac {
                value.insert("mac_address".into(), Value::String(mac.to_string()));
            }
        }
        OperInfoResponse { value }
    }
}
