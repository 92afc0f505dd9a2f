//! VXLAN only from members: on each host, UDP to the VXLAN port is accepted
//! only from the cluster's current VTEPs (and the static `-o peers` of local
//! networks). Switchyard keeps its own nftables table, `inet switchyard`,
//! with one set per address family and one input chain; it never touches
//! another table (Docker's, the operator's). The agent keeps the set in
//! step with etcd (`fdb_sync.rs` calls `sync` after every reconcile pass);
//! the table goes with the last VXLAN network.
//!
//! The `nft` CLI (Debian package nftables) applies each change as one
//! transaction: the table, set and chain are declared (created if missing,
//! left alone if present), the chain and sets are flushed and refilled, so
//! a packet sees either the old or the new allow-list, never none (the drop
//! rules' counters start again at each change). The periodic pass applies
//! the table again only if it is gone.

use super::Vxlan;
use std::collections::BTreeSet;
use std::net::IpAddr;
use tracing::{info, warn};

pub const TABLE: &str = "switchyard";
pub const SET4: &str = "vteps4";
pub const SET6: &str = "vteps6";
pub const CHAIN: &str = "vxlan_in";

/// What is in the kernel, as far as this process knows.
#[derive(Debug, Default)]
pub(super) struct FirewallState {
    /// Whether `applied` is known (false until the first pass, which also
    /// removes a table a crash left behind when no network remains).
    known: bool,
    /// The allow-list last applied (None: no table).
    applied: Option<BTreeSet<IpAddr>>,
    /// Why the last change failed, if it did.
    error: Option<String>,
}

/// The nft script that makes the table hold exactly this allow-list, for
/// VXLAN on `port` and on `encrypted_port` (encrypted networks, `ipsec.rs`).
pub fn script(port: u16, encrypted_port: u16, vteps: &BTreeSet<IpAddr>) -> String {
    let list = |v6: bool| -> String {
        vteps
            .iter()
            .filter(|a| a.is_ipv6() == v6)
            .map(IpAddr::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut s = format!(
        "table inet {TABLE} {{\n\
         \tset {SET4} {{ type ipv4_addr; }}\n\
         \tset {SET6} {{ type ipv6_addr; }}\n\
         \tchain {CHAIN} {{ type filter hook input priority filter - 10; policy accept; }}\n\
         }}\n\
         flush chain inet {TABLE} {CHAIN}\n\
         flush set inet {TABLE} {SET4}\n\
         flush set inet {TABLE} {SET6}\n\
         add rule inet {TABLE} {CHAIN} udp dport {{ {port}, {encrypted_port} }} ip saddr != @{SET4} counter drop comment \"VXLAN from a host outside the Switchyard cluster\"\n\
         add rule inet {TABLE} {CHAIN} udp dport {{ {port}, {encrypted_port} }} ip6 saddr != @{SET6} counter drop comment \"VXLAN from a host outside the Switchyard cluster\"\n"
    );
    for (set, v6) in [(SET4, false), (SET6, true)] {
        let l = list(v6);
        if !l.is_empty() {
            s.push_str(&format!("add element inet {TABLE} {set} {{ {l} }}\n"));
        }
    }
    s
}

async fn nft(stdin: &str, args: &[&str]) -> Result<(), String> {
    super::kernel_tool::run(
        "nft",
        args,
        stdin,
        "the nftables package to keep VXLAN to cluster members",
    )
    .await
}

impl Vxlan {
    /// The VTEPs VXLAN is accepted from; None while the cluster has not
    /// been listed yet (the table is left as it is until then).
    fn allowed_vteps(&self) -> Option<BTreeSet<IpAddr>> {
        let mut vteps: BTreeSet<IpAddr> = self
            .state
            .networks
            .read()
            .unwrap()
            .values()
            .flat_map(|n| super::options(&n.spec).peers.clone())
            .collect();
        if let Some(c) = &self.state.cluster {
            if !c.synced() {
                return None;
            }
            vteps.extend(c.member_vteps());
        }
        Some(vteps)
    }

    /// Makes the kernel's allow-list what the cluster says: the table while
    /// VXLAN networks exist, none after the last. `force` re-applies an
    /// unchanged list (drift repair on the periodic pass).
    pub(super) async fn sync_firewall(&self, force: bool) {
        if !self.state.cfg.members_only {
            return;
        }
        let any = !self.state.networks.read().unwrap().is_empty();
        let want = if any {
            match self.allowed_vteps() {
                Some(v) => Some(v),
                None => return,
            }
        } else {
            None
        };
        let (known, applied) = {
            let st = self.state.firewall.lock().unwrap();
            (st.known, st.applied.clone())
        };
        if known && applied == want {
            // Periodic pass: repair a table deleted by hand, leave an intact
            // one alone (rewriting it would reset its counters).
            if !(force && want.is_some()) || self.firewall_present().await {
                return;
            }
            warn!("nftables table inet {TABLE} missing or changed: applying it again");
        }
        let r = match &want {
            Some(v) => {
                let c = &self.state.cfg;
                nft(&script(c.port, c.encrypted_port, v), &["-f", "-"]).await
            }
            None if applied.is_some() || !known => {
                match nft("", &["delete", "table", "inet", TABLE]).await {
                    Err(e) if e.contains("No such file") => Ok(()),
                    r => r,
                }
            }
            None => Ok(()),
        };
        let mut st = self.state.firewall.lock().unwrap();
        match r {
            Ok(()) => {
                if st.applied != want {
                    match &want {
                        Some(v) => info!(
                            vteps = %v.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(","),
                            port = self.state.cfg.port,
                            "VXLAN accepted only from these VTEPs (nftables table inet {TABLE})"
                        ),
                        None => {
                            info!("last VXLAN network gone: nftables table inet {TABLE} removed")
                        }
                    }
                }
                st.applied = want;
                st.known = true;
                st.error = None;
            }
            Err(e) => {
                if st.error.as_deref() != Some(e.as_str()) {
                    warn!(error = %e, "the VXLAN allow-list could not be applied");
                }
                st.error = Some(e);
            }
        }
    }

    /// Whether the table, its chain and sets are in the kernel.
    async fn firewall_present(&self) -> bool {
        let mut ok = true;
        for obj in [["chain", CHAIN], ["set", SET4], ["set", SET6]] {
            ok &= nft("", &["list", obj[0], "inet", TABLE, obj[1]])
                .await
                .is_ok();
        }
        ok
    }

    /// For `status`: what the allow-list is.
    pub(super) fn describe_firewall(&self) -> String {
        if !self.state.cfg.members_only {
            return "off ([vxlan] members_only = false)".into();
        }
        let st = self.state.firewall.lock().unwrap();
        match (&st.error, &st.applied) {
            (Some(e), _) => format!("NOT APPLIED: {e}"),
            (None, Some(v)) => format!(
                "VXLAN only from {} (nftables inet {TABLE})",
                if v.is_empty() {
                    "no host".to_string()
                } else {
                    v.iter()
                        .map(IpAddr::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                }
            ),
            (None, None) => "not applied yet (the cluster is not listed)".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_declares_flushes_and_fills() {
        let v: BTreeSet<IpAddr> = ["192.168.88.2", "192.168.88.1", "fd00::1"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let s = script(4789, 4793, &v);
        assert!(s.starts_with("table inet switchyard {"), "{s}");
        assert!(s.contains("flush set inet switchyard vteps4"), "{s}");
        assert!(
            s.contains("udp dport { 4789, 4793 } ip saddr != @vteps4 counter drop"),
            "{s}"
        );
        assert!(s.contains("add element inet switchyard vteps4 { 192.168.88.1, 192.168.88.2 }"));
        assert!(s.contains("add element inet switchyard vteps6 { fd00::1 }"));
        let empty = script(8472, 8473, &BTreeSet::new());
        assert!(!empty.contains("add element"), "{empty}");
        assert!(empty.contains("udp dport { 8472, 8473 }"));
        assert!(
            !s.contains("ip filter") && !s.contains("table ip "),
            "only its own table"
        );
    }
}
