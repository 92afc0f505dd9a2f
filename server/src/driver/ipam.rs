//! The IPAM driver on the same socket (`--ipam-driver <name>`). Addresses
//! are claimed through the driver's one `Claims` object: etcd when a cluster
//! is configured — unique across every host — and the embedded store
//! otherwise.

use super::Driver;
use std::net::IpAddr;
use switchyard_core::ipam::{GLOBAL_SPACE, LOCAL_SPACE, Pool};
use switchyard_core::protocol::Empty;
use switchyard_core::protocol::ipam::{
    AddressRequest, AddressSpacesResponse, IpamCapabilitiesResponse, ReleasePoolRequest,
    RequestAddressResponse, RequestPoolRequest, RequestPoolResponse,
};
use switchyard_core::store::{Asker, Holder, Owner};
use switchyard_core::{Error, Result};

const GATEWAY_REQUEST: &str = "com.docker.network.gateway";
/// Engine 29 names the endpoint (the container) in RequestAddress.
const ENDPOINT_NAME: &str = "com.docker.network.endpoint.name";

impl Driver {
    pub fn ipam_capabilities(&self) -> IpamCapabilitiesResponse {
        IpamCapabilitiesResponse {
            requires_mac_address: false,
            requires_request_replay: false,
        }
    }

    pub fn ipam_address_spaces(&self) -> AddressSpacesResponse {
        AddressSpacesResponse {
            local: LOCAL_SPACE.into(),
            global: GLOBAL_SPACE.into(),
        }
    }

    pub async fn ipam_request_pool(&self, req: RequestPoolRequest) -> Result<RequestPoolResponse> {
        let wants_cluster = req.address_space == GLOBAL_SPACE
            || req
                .options
                .get("scope")
                .is_some_and(|s| s == "cluster" || s == "global");
        if wants_cluster && !self.claims.cluster_wide() {
            return Err(Error::invalid(
                "cluster-wide address allocation needs etcd: set [cluster] etcd_endpoints in this host's Switchyard config, or drop the cluster scope for a single-host network",
            ));
        }
        if req.address_space.contains('/') {
            return Err(Error::invalid(format!(
                "AddressSpace {} contains '/'; it must be a name without '/' (dockerd sends \"{LOCAL_SPACE}\" or \"{GLOBAL_SPACE}\")",
                switchyard_core::quote::quote(&req.address_space)
            )));
        }
        let space = if req.address_space.is_empty() {
            LOCAL_SPACE
        } else {
            &req.address_space
        };
        // Nothing is stored: a RequestPool retried after a crash cannot
        // count twice. The fresh tag makes the PoolID this network's own.
        let pool = Pool::parse(space, &req.pool, &req.sub_pool)?.tagged();
        Ok(RequestPoolResponse {
            pool_id: pool.id(),
            pool: pool.pool.to_string(),
            data: Default::default(),
        })
    }

    /// dockerd releases a pool after the network's endpoints and gateway:
    /// claims of this network still held are what a crash left (a request
    /// committed whose answer never arrived), collected here.
    pub async fn ipam_release_pool(&self, req: ReleasePoolRequest) -> Result<Empty> {
        if let Ok(pool) = Pool::from_id(&req.pool_id)
            && pool.tag.is_some()
        {
            self.claims
                .release_pool(&pool.claim_key(), &req.pool_id)
                .await?;
        }
        Ok(Empty {})
    }

    pub async fn ipam_request_address(
        &self,
        req: AddressRequest,
    ) -> Result<RequestAddressResponse> {
        let pool = Pool::from_id(&req.pool_id)?;
        let gateway = req
            .options
            .get("RequestAddressType")
            .is_some_and(|t| t == GATEWAY_REQUEST);
        let wanted = match req.address.split('/').next().unwrap_or("") {
            "" => None,
            a => {
                let ip: IpAddr = a.parse().map_err(|_| {
                    Error::invalid(format!("address \"{}\" is not an IP address", req.address))
                })?;
                if !pool.contains(ip) {
                    return Err(Error::invalid(format!(
                        "address {ip} is outside the pool {}",
                        pool.pool
                    )));
                }
                Some(ip)
            }
        };
        // Who asks: only pools with a tag know their network.
        let owner = pool.tag.is_some().then(|| Owner {
            pool_id: req.pool_id.clone(),
            asker: if gateway {
                Asker::Gateway
            } else {
                match req.options.get(ENDPOINT_NAME).filter(|n| !n.is_empty()) {
                    Some(n) => Asker::Endpoint(n.clone()),
                    None => Asker::Unnamed,
                }
            },
        });
        if let Some(ip) = owner.as_ref().and_then(|o| self.retried(&pool, o, wanted)) {
            return Ok(address(&pool, ip));
        }
        if gateway && self.claims.cluster_wide() {
            // Every host's dockerd asks for the gateway of the same subnet:
            // one address, shared, the first of the pool unless named.
            let ip = wanted
                .or_else(|| pool.candidates().next())
                .ok_or_else(|| Error::conflict(format!("{} has no addresses", pool.pool)))?;
            if self.claims.claim_shared(&pool.claim_key(), ip).await? {
                return Ok(address(&pool, ip));
            }
            return Err(self.taken(&pool, ip));
        }
        let ip = match wanted {
            Some(ip) => {
                if !self
                    .claims
                    .claim(&pool.claim_key(), ip, owner.as_ref())
                    .await?
                {
                    return Err(self.taken(&pool, ip));
                }
                ip
            }
            None => {
                let mut got = None;
                for ip in pool.candidates() {
                    if self.claims.claimed_by(&pool.claim_key(), ip).is_some() {
                        continue;
                    }
                    if self
                        .claims
                        .claim(&pool.claim_key(), ip, owner.as_ref())
                        .await?
                    {
                        got = Some(ip);
                        break;
                    }
                }
                got.ok_or_else(|| {
                    Error::conflict(format!(
                        "no free address left in {}",
                        pool.range.unwrap_or(pool.pool)
                    ))
                })?
            }
        };
        Ok(address(&pool, ip))
    }

    /// The answer to a request already answered once — dockerd retrying
    /// it after a crash took the answer: the address its named owner holds,
    /// if it is the one wanted. An endpoint's is not taken from a stored
    /// endpoint that has it (a renamed container still running).
    fn retried(&self, pool: &Pool, owner: &Owner, wanted: Option<IpAddr>) -> Option<IpAddr> {
        if !owner.named() {
            return None;
        }
        let ip = self.claims.held_by(&pool.claim_key(), owner)?;
        if wanted.is_some_and(|w| w != ip) {
            return None;
        }
        if owner.asker != Asker::Gateway && self.store.endpoint_has_address(ip) {
            return None;
        }
        Some(ip)
    }

    fn taken(&self, pool: &Pool, ip: IpAddr) -> Error {
        let holder = match self.claims.claimed_by(&pool.claim_key(), ip) {
            Some(Holder::Gateway) => " (as the gateway)".to_string(),
            Some(Holder::Host(h)) => format!(" (held by host {h})"),
            Some(Holder::Local) | None => String::new(),
        };
        Error::conflict(format!(
            "address {ip} is already in use in {}{holder}; choose another --ip or leave it out",
            pool.pool
        ))
    }

    pub async fn ipam_release_address(&self, req: AddressRequest) -> Result<Empty> {
        let Ok(pool) = Pool::from_id(&req.pool_id) else {
            return Ok(Empty {});
        };
        let Ok(ip) = req
            .address
            .split('/')
            .next()
            .unwrap_or("")
            .parse::<IpAddr>()
        else {
            return Ok(Empty {});
        };
        self.claims.release(&pool.claim_key(), ip).await?;
        Ok(Empty {})
    }
}

fn address(pool: &Pool, ip: IpAddr) -> RequestAddressResponse {
    RequestAddressResponse {
        address: pool.cidr(ip).to_string(),
        data: Default::default(),
    }
}
