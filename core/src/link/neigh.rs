//! Neighbour and FDB entries on a VXLAN device: how remote endpoints are
//! programmed (permanent IP→MAC neighbours answered by proxy ARP, and
//! `self permanent` MAC→VTEP forwarding entries).

use super::{LinkError, LinkManager, LinkResult};
use crate::mac::MacAddr;
use futures::{StreamExt, TryStreamExt};
use rtnetlink::packet_core::{
    NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload,
};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use std::net::IpAddr;

/// A permanent neighbour entry: `ip neigh … lladdr MAC nud permanent`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Neighbour {
    pub ip: IpAddr,
    pub mac: MacAddr,
}

/// A forwarding entry of the device itself: `bridge fdb … MAC dst IP self permanent`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FdbEntry {
    pub mac: MacAddr,
    pub dst: IpAddr,
}

fn to_addr(ip: IpAddr) -> NeighbourAddress {
    match ip {
        IpAddr::V4(a) => NeighbourAddress::Inet(a),
        IpAddr::V6(a) => NeighbourAddress::Inet6(a),
    }
}

fn parse(m: &NeighbourMessage) -> (Option<IpAddr>, Option<MacAddr>) {
    let mut ip = None;
    let mut mac = None;
    for a in &m.attributes {
        match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(v)) => ip = Some(IpAddr::V4(*v)),
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(v)) => {
                ip = Some(IpAddr::V6(*v))
            }
            // In AF_BRIDGE messages the crate cannot tell the family of the
            // destination and leaves the raw bytes.
            NeighbourAttribute::Destination(NeighbourAddress::Other(b)) => {
                ip = match b.len() {
                    4 => <[u8; 4]>::try_from(b.as_slice()).ok().map(IpAddr::from),
                    16 => <[u8; 16]>::try_from(b.as_slice()).ok().map(IpAddr::from),
                    _ => None,
                }
            }
            NeighbourAttribute::LinkLayerAddress(b) if b.len() == 6 => {
                let mut x = [0u8; 6];
                x.copy_from_slice(b);
                mac = Some(MacAddr(x));
            }
            _ => {}
        }
    }
    (ip, mac)
}

impl LinkManager {
    async fn index_of(&self, dev: &str) -> LinkResult<u32> {
        Ok(self.require(dev, "device").await?.index)
    }

    async fn dump(&self, family: AddressFamily, what: &str) -> LinkResult<Vec<NeighbourMessage>> {
        self.handle()
            .neighbours()
            .get()
            .set_address_family(family)
            .execute()
            .try_collect()
            .await
            .map_err(|e| LinkError::from_netlink(format!("listing {what}"), e))
    }

    /// The permanent neighbour entries of `dev` (IPv4 and IPv6).
    pub async fn neighbours(&self, dev: &str) -> LinkResult<Vec<Neighbour>> {
        let idx = self.index_of(dev).await?;
        let mut out = Vec::new();
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            for m in self.dump(family, "neighbours").await? {
                if m.header.ifindex != idx || m.header.state != NeighbourState::Permanent {
                    continue;
                }
                if let (Some(ip), Some(mac)) = parse(&m) {
                    out.push(Neighbour { ip, mac });
                }
            }
        }
        Ok(out)
    }

    /// The device's own forwarding entries that point at a remote address.
    pub async fn fdb(&self, dev: &str) -> LinkResult<Vec<FdbEntry>> {
        let idx = self.index_of(dev).await?;
        let mut out = Vec::new();
        for m in self
            .dump(AddressFamily::Bridge, "forwarding entries")
            .await?
        {
            if m.header.ifindex != idx || !m.header.flags.contains(NeighbourFlags::Own) {
                continue;
            }
            if let (Some(dst), Some(mac)) = parse(&m) {
                out.push(FdbEntry { mac, dst });
            }
        }
        Ok(out)
    }

    pub async fn neighbour_replace(&self, dev: &str, n: Neighbour) -> LinkResult<()> {
        let idx = self.index_of(dev).await?;
        self.handle()
            .neighbours()
            .add(idx, n.ip)
            .link_layer_address(&n.mac.0)
            .state(NeighbourState::Permanent)
            .replace()
            .execute()
            .await
            .map_err(|e| LinkError::from_netlink(format!("setting neighbour {} on {dev}", n.ip), e))
    }

    pub async fn neighbour_del(&self, dev: &str, n: Neighbour) -> LinkResult<()> {
        let idx = self.index_of(dev).await?;
        let mut m = NeighbourMessage::default();
        m.header.family = match n.ip {
            IpAddr::V4(_) => AddressFamily::Inet,
            IpAddr::V6(_) => AddressFamily::Inet6,
        };
        m.header.ifindex = idx;
        m.attributes
            .push(NeighbourAttribute::Destination(to_addr(n.ip)));
        self.ignore_missing(
            self.handle().neighbours().del(m).execute().await,
            format!("deleting neighbour {} on {dev}", n.ip),
        )
    }

    pub async fn fdb_replace(&self, dev: &str, e: FdbEntry) -> LinkResult<()> {
        let idx = self.index_of(dev).await?;
        self.handle()
            .neighbours()
            .add_bridge(idx, &e.mac.0)
            .destination(e.dst)
            .flags(NeighbourFlags::Own)
            .state(NeighbourState::Permanent)
            .replace()
            .execute()
            .await
            .map_err(|x| {
                LinkError::from_netlink(
                    format!("setting forwarding entry {} → {} on {dev}", e.mac, e.dst),
                    x,
                )
            })
    }

    /// Adds one more destination for `e.mac` (`bridge fdb append`): with the
    /// all-zero MAC this builds a head-end replication list.
    pub async fn fdb_append(&self, dev: &str, e: FdbEntry) -> LinkResult<()> {
        let idx = self.index_of(dev).await?;
        let mut m = NeighbourMessage::default();
        m.header.family = AddressFamily::Bridge;
        m.header.ifindex = idx;
        m.header.state = NeighbourState::Permanent;
        m.header.flags = NeighbourFlags::Own;
        m.attributes
            .push(NeighbourAttribute::LinkLayerAddress(e.mac.0.to_vec()));
        m.attributes
            .push(NeighbourAttribute::Destination(to_addr(e.dst)));
        let mut req = NetlinkMessage::from(RouteNetlinkMessage::NewNeighbour(m));
        req.header.flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND;
        let action = format!("appending forwarding entry {} → {} on {dev}", e.mac, e.dst);
        let mut handle = self.handle();
        let mut resp = handle
            .request(req)
            .map_err(|x| LinkError::from_netlink(action.clone(), x))?;
        while let Some(msg) = resp.next().await {
            if let NetlinkPayload::Error(err) = msg.payload
                && err.code.is_some()
            {
                let x =
                    LinkError::from_netlink(action.clone(), rtnetlink::Error::NetlinkError(err));
                if x.errno != super::error::EEXIST {
                    return Err(x);
                }
            }
        }
        Ok(())
    }

    pub async fn fdb_del(&self, dev: &str, e: FdbEntry) -> LinkResult<()> {
        let idx = self.index_of(dev).await?;
        let mut m = NeighbourMessage::default();
        m.header.family = AddressFamily::Bridge;
        m.header.ifindex = idx;
        m.header.flags = NeighbourFlags::Own;
        m.attributes
            .push(NeighbourAttribute::LinkLayerAddress(e.mac.0.to_vec()));
        m.attributes
            .push(NeighbourAttribute::Destination(to_addr(e.dst)));
        self.ignore_missing(
            self.handle().neighbours().del(m).execute().await,
            format!("deleting forwarding entry {} → {} on {dev}", e.mac, e.dst),
        )
    }

    fn ignore_missing(&self, r: Result<(), rtnetlink::Error>, action: String) -> LinkResult<()> {
        match r {
            Ok(()) => Ok(()),
            Err(e) => {
                let e = LinkError::from_netlink(action, e);
                if e.errno == super::error::ENOENT || e.is_not_found() {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }
}
