//! Host routes and host addresses on Switchyard's own links (the host
//! access link of a macvlan / ipvlan network). They live on a marked link
//! and go with it: deleting the link removes them, so they need no mark
//! of their own.

use super::error::{EEXIST, EINVAL};
use super::{LinkError, LinkManager, LinkResult};
use rtnetlink::RouteMessageBuilder;
use rtnetlink::packet_route::address::AddressHeaderFlags;
use rtnetlink::packet_route::route::{RouteMessage, RouteProtocol, RouteScope};
use std::net::IpAddr;

/// ESRCH: the route to delete is not there.
const ESRCH: i32 = 3;

fn host_prefix(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

impl LinkManager {
    /// Gives `name` the single address `ip` (/32 or /128: no prefix route
    /// that could compete with the parent's), usable at once (no duplicate
    /// address detection: the address is reserved for the host).
    pub async fn add_host_address(&self, name: &str, ip: IpAddr) -> LinkResult<()> {
        let link = self.require(name, "link").await?;
        let mut req = self.handle().address().add(link.index, ip, host_prefix(ip));
        req.message_mut().header.flags |= AddressHeaderFlags::Nodad;
        match req.execute().await {
            Ok(()) => Ok(()),
            Err(e) => {
                let e = LinkError::from_netlink(format!("adding address {ip} to {name}"), e);
                if e.errno == EEXIST { Ok(()) } else { Err(e) }
            }
        }
    }

    /// The route to the single address `dest` through `name`, with `src`
    /// as the source the host uses towards it; replaces one that exists.
    pub async fn replace_host_route(
        &self,
        name: &str,
        dest: IpAddr,
        src: Option<IpAddr>,
    ) -> LinkResult<()> {
        let link = self.require(name, "link").await?;
        let action = || format!("adding the route to {dest} through {name}");
        let msg =
            host_route(dest, src, link.index).map_err(|e| LinkError::new(action(), EINVAL, e))?;
        self.handle()
            .route()
            .add(msg)
            .replace()
            .execute()
            .await
            .map_err(|e| LinkError::from_netlink(action(), e))
    }

    /// Removes the route to `dest` through `name`; a route (or link) that
    /// is gone already is not an error.
    pub async fn delete_host_route(&self, name: &str, dest: IpAddr) -> LinkResult<()> {
        let Some(link) = self.get(name).await? else {
            return Ok(());
        };
        let action = || format!("deleting the route to {dest} through {name}");
        let msg =
            host_route(dest, None, link.index).map_err(|e| LinkError::new(action(), EINVAL, e))?;
        match self.handle().route().del(msg).execute().await {
            Ok(()) => Ok(()),
            Err(e) => {
                let e = LinkError::from_netlink(action(), e);
                if e.errno == ESRCH || e.is_not_found() {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    /// The single-address destinations routed through `name` (the host
    /// routes Switchyard added there).
    pub async fn host_routes(&self, name: &str) -> LinkResult<Vec<IpAddr>> {
        use futures::TryStreamExt;
        use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute};
        let Some(link) = self.get(name).await? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for v6 in [false, true] {
            let filter = if v6 {
                RouteMessageBuilder::<std::net::Ipv6Addr>::new().build()
            } else {
                RouteMessageBuilder::<std::net::Ipv4Addr>::new().build()
            };
            let mut req = self.handle().route().get(filter).execute();
            while let Some(r) = req
                .try_next()
                .await
                .map_err(|e| LinkError::from_netlink(format!("listing routes of {name}"), e))?
            {
                let full = if v6 { 128 } else { 32 };
                if r.header.destination_prefix_length != full
                    || r.header.protocol != RouteProtocol::Static
                {
                    continue;
                }
                let mut oif = None;
                let mut dest = None;
                for a in &r.attributes {
                    match a {
                        RouteAttribute::Oif(i) => oif = Some(*i),
                        RouteAttribute::Destination(RouteAddress::Inet(a)) => {
                            dest = Some(IpAddr::V4(*a))
                        }
                        RouteAttribute::Destination(RouteAddress::Inet6(a)) => {
                            dest = Some(IpAddr::V6(*a))
                        }
                        _ => {}
                    }
                }
                if oif == Some(link.index)
                    && let Some(d) = dest
                {
                    out.push(d);
                }
            }
        }
        Ok(out)
    }
}

fn host_route(dest: IpAddr, src: Option<IpAddr>, index: u32) -> Result<RouteMessage, String> {
    let mut b = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(dest, host_prefix(dest))
        .map_err(|e| e.to_string())?
        .output_interface(index)
        .protocol(RouteProtocol::Static);
    if dest.is_ipv4() {
        b = b.scope(RouteScope::Link);
    }
    if let Some(s) = src.filter(|s| s.is_ipv4() == dest.is_ipv4()) {
        b = b.pref_source(s).map_err(|e| e.to_string())?;
    }
    Ok(b.build())
}
