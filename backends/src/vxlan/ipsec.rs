//! Encrypted networks in the kernel: IPsec ESP in transport mode (xfrm,
//! `rfc4106(gcm(aes))`, 128-bit key, 32-bit salt, 128-bit ICV) between this
//! host's VTEP and each peer that shares an encrypted network with it.
//!
//! Which traffic: the VXLAN devices of encrypted networks send to their own
//! UDP port (`[vxlan] encrypted_port`), so xfrm policies select exactly their
//! traffic by port — no packet marks, no netfilter (the policies' selectors
//! are the kernel's own; plain networks on `[vxlan] port` are untouched):
//! - per peer, one `out` policy `udp dport <encrypted_port>` to the peer's
//!   VTEP whose template names the SPI of the generation sent with;
//! - one `in` policy for `udp dport <encrypted_port>` to this VTEP from
//!   anyone, which requires ESP for what the stack checks against policy;
//! - per peer and generation, an inbound and an outbound state.
//!
//! Plaintext refused: the kernel does not check inbound policy for UDP
//! encapsulation sockets such as VXLAN's (which is why Docker's overlay
//! adds an iptables `--pol none` drop rule), so a plaintext frame to the
//! encrypted port would reach the network. A tc ingress filter of
//! Switchyard's own on the underlay interface (`clsact`, preference
//! `GUARD_PREF`, flower `udp dst_port <encrypted_port>`, action drop) drops
//! it before IP sees it, whatever its destination address; ESP packets are
//! IP protocol 50 there, and decrypted packets re-enter IP without passing
//! tc again. tc, not nftables: it works on kernels without nf_tables for
//! ip/inet (the test kernel has only the bridge family), and it counts what
//! it dropped. On other interfaces, the members-only nftables allow-list
//! (`firewall.rs`) covers the encrypted port too.
//!
//! Everything here is driven with iproute2's `ip xfrm` and `tc` (one
//! `-batch` per change); the plan is a value (`XfrmPlan`) and the commands
//! between two plans are built by pure functions.

use super::Vxlan;
use super::ipsec_keys::PairKeys;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use tracing::{info, warn};

pub const AEAD: &str = "rfc4106(gcm(aes))";
/// The reqid of every state and template of Switchyard's (`SY`), so its
/// states are found again after a crash.
pub const REQID: u32 = 0x5359;
/// Bytes ESP in transport mode with AES-GCM adds to a packet: 8 (SPI and
/// sequence number) + 8 (IV) + 2 (pad length, next header) + 16 (ICV) +
/// up to 3 of padding = 37, rounded up to 40 so the inner MTU stays a
/// multiple of 4 (underlay 1500 → VXLAN 1450 → encrypted 1410).
pub const ESP_OVERHEAD: u32 = 40;
/// The preference of the plaintext guard's tc filter on the underlay.
pub const GUARD_PREF: u32 = 4793;

/// A state (one direction of one generation of one pair).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Sa {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub spi: u32,
    /// Key and salt, hex.
    pub key: String,
}

/// What the kernel should hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct XfrmPlan {
    pub sas: BTreeSet<Sa>,
    /// (local VTEP, peer VTEP) → the SPI sent with; None: no keys yet, so
    /// nothing is sent (a `block` policy), rather than plaintext.
    pub out: BTreeMap<(IpAddr, IpAddr), Option<u32>>,
    /// The local VTEP that refuses plaintext on the encrypted port.
    pub inbound: Option<IpAddr>,
    /// The underlay interface whose tc ingress drops plaintext to the
    /// encrypted port of `inbound`.
    pub guard: Option<String>,
}

impl XfrmPlan {
    pub fn is_empty(&self) -> bool {
        self.sas.is_empty() && self.out.is_empty() && self.inbound.is_none() && self.guard.is_none()
    }
}

/// The plan for this host (`me`, at `vtep`) while encrypted networks exist:
/// for each peer whose pair record is written, every generation's states and
/// an out policy for the generation sent with.
pub fn plan(
    me: &str,
    vtep: IpAddr,
    underlay: Option<&str>,
    peers: &[(String, IpAddr, Option<PairKeys>)],
) -> XfrmPlan {
    let mut p = XfrmPlan {
        inbound: Some(vtep),
        guard: underlay.map(str::to_string),
        ..Default::default()
    };
    for (peer, pvtep, keys) in peers {
        if pvtep.is_ipv6() != vtep.is_ipv6() {
            continue;
        }
        let Some(keys) = keys else {
            p.out.insert((vtep, *pvtep), None);
            continue;
        };
        // Direction 0 is lower id → higher id.
        let (tx_dir, rx_dir) = if me < peer.as_str() { (0, 1) } else { (1, 0) };
        for g in &keys.keys {
            p.sas.insert(Sa {
                src: vtep,
                dst: *pvtep,
                spi: g.spi[tx_dir],
                key: g.key[tx_dir].clone(),
            });
            p.sas.insert(Sa {
                src: *pvtep,
                dst: vtep,
                spi: g.spi[rx_dir],
                key: g.key[rx_dir].clone(),
            });
        }
        p.out
            .insert((vtep, *pvtep), keys.tx().map(|tx| tx.spi[tx_dir]));
    }
    p
}

fn host_prefix(a: IpAddr) -> String {
    match a {
        IpAddr::V4(_) => format!("{a}/32"),
        IpAddr::V6(_) => format!("{a}/128"),
    }
}

fn any_prefix(a: IpAddr) -> &'static str {
    match a {
        IpAddr::V4(_) => "0.0.0.0/0",
        IpAddr::V6(_) => "::/0",
    }
}

fn sa_id(s: &Sa) -> String {
    format!("src {} dst {} proto esp spi {:#010x}", s.src, s.dst, s.spi)
}

fn out_selector(src: IpAddr, dst: IpAddr, port: u16) -> String {
    format!(
        "src {} dst {} proto udp dport {port} dir out",
        host_prefix(src),
        host_prefix(dst)
    )
}

fn in_selector(vtep: IpAddr, port: u16) -> String {
    format!(
        "src {} dst {} proto udp dport {port} dir in",
        any_prefix(vtep),
        host_prefix(vtep)
    )
}

/// The `ip -batch` lines that take the kernel from `have` to `want`, in an
/// order that never leaves a sender without its state: new states first,
/// then policies (replaced in place: `update`), then what is gone.
pub fn commands(have: &XfrmPlan, want: &XfrmPlan, port: u16) -> Vec<String> {
    let mut c = Vec::new();
    for s in want.sas.difference(&have.sas) {
        c.push(format!(
            "xfrm state add {} reqid {REQID} mode transport replay-window 64 aead {AEAD} 0x{} 128",
            sa_id(s),
            s.key
        ));
    }
    if want.inbound != have.inbound {
        if let Some(v) = have.inbound {
            c.push(format!("xfrm policy delete {}", in_selector(v, port)));
        }
        if let Some(v) = want.inbound {
            c.push(format!(
                "xfrm policy update {} tmpl proto esp reqid {REQID} mode transport",
                in_selector(v, port)
            ));
        }
    }
    let mut new_out = false;
    for ((src, dst), spi) in &want.out {
        if have.out.get(&(*src, *dst)) != Some(spi) {
            new_out = true;
            c.push(match spi {
                Some(spi) => format!(
                    "xfrm policy update {} tmpl src {src} dst {dst} proto esp spi {spi:#010x} reqid {REQID} mode transport",
                    out_selector(*src, *dst, port)
                ),
                None => format!(
                    "xfrm policy update {} action block",
                    out_selector(*src, *dst, port)
                ),
            });
        }
    }
    if new_out {
        // A VXLAN device keeps the route of each remote in its own cache;
        // one looked up before the policy existed would bypass it.
        c.push("route flush cache".into());
    }
    for (src, dst) in have.out.keys() {
        if !want.out.contains_key(&(*src, *dst)) {
            c.push(format!(
                "xfrm policy delete {}",
                out_selector(*src, *dst, port)
            ));
        }
    }
    for s in have.sas.difference(&want.sas) {
        c.push(format!("xfrm state delete {}", sa_id(s)));
    }
    c
}

/// The `tc -batch` lines that move the plaintext guard from `have` to
/// `want` (the clsact qdisc is added separately: it may exist already).
pub fn guard_commands(have: &XfrmPlan, want: &XfrmPlan, port: u16) -> Vec<String> {
    let filter = |p: &XfrmPlan| Some((p.guard.clone()?, p.inbound?));
    let (h, w) = (filter(have), filter(want));
    if h == w {
        return Vec::new();
    }
    let mut c = Vec::new();
    if let Some((dev, _)) = &h {
        c.push(format!("filter del dev {dev} ingress pref {GUARD_PREF}"));
    }
    if let Some((dev, vtep)) = &w {
        let proto = if vtep.is_ipv6() { "ipv6" } else { "ip" };
        c.push(format!(
            "filter add dev {dev} ingress pref {GUARD_PREF} protocol {proto} flower ip_proto udp dst_port {port} action drop"
        ));
    }
    c
}

/// The commands that remove whatever Switchyard's of this kind is in the
/// kernel, known or not (a crash's leftovers): its states by reqid, its
/// policies on the encrypted port.
pub fn flush_commands(port: u16) -> Vec<String> {
    vec![
        format!("xfrm policy deleteall proto udp dport {port} dir out"),
        format!("xfrm policy deleteall proto udp dport {port} dir in"),
        format!("xfrm state deleteall reqid {REQID}"),
    ]
}

/// Runs `ip -batch -` with these lines.
pub async fn ip_batch(lines: &[String]) -> Result<(), String> {
    batch("ip", lines).await
}

/// Runs `prog -batch -` (iproute2's `ip` or `tc`) with these lines.
pub async fn batch(prog: &str, lines: &[String]) -> Result<(), String> {
    if lines.is_empty() {
        return Ok(());
    }
    let input = lines.join("\n") + "\n";
    super::kernel_tool::run(
        prog,
        &["-batch", "-"],
        &input,
        "the iproute2 package for encrypted networks",
    )
    .await
}

/// Whether this kernel and iproute2 can do what an encrypted network needs:
/// adds an AES-GCM state between two documentation addresses and deletes it
/// again (nothing stays). The error says what is missing.
pub async fn preflight() -> Result<(), String> {
    let probe = Sa {
        src: "192.0.2.1".parse().unwrap(),
        dst: "192.0.2.2".parse().unwrap(),
        spi: 0x5359_0001,
        key: "00".repeat(20),
    };
    let add = XfrmPlan {
        sas: [probe].into(),
        ..Default::default()
    };
    let mut lines = commands(&XfrmPlan::default(), &add, 0);
    lines.extend(commands(&add, &XfrmPlan::default(), 0));
    ip_batch(&lines).await.map_err(|e| {
        if e.starts_with("cannot run ip") {
            e
        } else {
            format!(
                "this kernel cannot do IPsec ESP with {AEAD} ({e}); load the modules xfrm_user, esp4 (esp6 for IPv6) and gcm (modprobe xfrm_user esp4 esp6 gcm), or create the network without -o encrypted"
            )
        }
    })
}

/// How many states of Switchyard's (reqid `REQID`) the kernel holds; None
/// if `ip` cannot say.
async fn kernel_states() -> Option<usize> {
    super::kernel_tool::count_lines(
        "ip",
        &["xfrm", "state", "list", "reqid", &REQID.to_string()],
        "src ",
    )
    .await
}

/// The file in the state dir with the digest of the plan last applied. A
/// digest, not the plan: the keys stay in etcd and the kernel, not on disk.
const APPLIED_FILE: &str = "ipsec-applied";

/// A digest of everything `plan` puts in the kernel (its commands from
/// nothing, and the guard's interface).
fn digest(plan: &XfrmPlan, port: u16) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    commands(&XfrmPlan::default(), plan, port).hash(&mut h);
    plan.guard.hash(&mut h);
    format!("{:016x}", h.finish())
}

/// What is in the kernel, as far as this process knows.
#[derive(Debug, Default)]
pub(super) struct IpsecState {
    /// None until the first pass (which flushes a crash's leftovers) and
    /// after a failed change (the next pass starts again from nothing).
    applied: Option<XfrmPlan>,
    error: Option<String>,
}

impl Vxlan {
    /// Encrypted networks of this host, by VNI.
    pub(super) fn encrypted_vnis(&self) -> Vec<u32> {
        self.state
            .networks
            .read()
            .unwrap()
            .iter()
            .filter(|(_, n)| super::options(&n.spec).encrypted)
            .map(|(v, _)| *v)
            .collect()
    }

    /// Makes the kernel's xfrm states and policies what the pair records
    /// say: nothing once no encrypted network is left. `periodic`: also
    /// checks that the kernel still holds every state applied (drift
    /// repair: a state deleted by hand is put back).
    pub(super) async fn sync_ipsec(&self, periodic: bool) {
        // One change at a time (the reconcile loop and teardown both call
        // this; two would apply the same difference twice).
        let _serial = self.state.kernel.lock().await;
        let any = !self.encrypted_vnis().is_empty();
        let want = match (&self.state.cluster, self.state.underlay.vtep) {
            (Some(c), Some(vtep)) if any => {
                if !c.synced() {
                    return;
                }
                let peers: Vec<(String, IpAddr, Option<PairKeys>)> = c
                    .encrypted_peers()
                    .into_iter()
                    .map(|(h, ip)| {
                        let k = c.pair_keys(&h);
                        (h, ip, k)
                    })
                    .collect();
                plan(
                    c.host_id(),
                    vtep,
                    self.state.underlay.ifname.as_deref(),
                    &peers,
                )
            }
            _ => XfrmPlan::default(),
        };
        let port = self.state.cfg.encrypted_port;
        let mut have = self.state.ipsec.lock().unwrap().applied.clone();
        if periodic
            && let Some(h) = &have
            && !h.sas.is_empty()
            && let Some(n) = kernel_states().await
            && n != h.sas.len()
        {
            warn!(
                kernel = n,
                applied = h.sas.len(),
                "IPsec states changed behind Switchyard's back: applying them again"
            );
            have = None;
        }
        if have.is_none() && !want.is_empty() && self.kernel_as_left(&want, port).await {
            info!(
                states = want.sas.len(),
                "IPsec states and policies are as the last run left them: kept"
            );
            let mut st = self.state.ipsec.lock().unwrap();
            st.applied = Some(want);
            st.error = None;
            return;
        }
        let r = match &have {
            Some(h) if *h == want => return,
            Some(h) => ip_batch(&commands(h, &want, port)).await,
            None => {
                // One `ip` per flush: in one -batch, iproute2 carries the
                // filter of a `deleteall` over to the next, which then
                // misses; and a flush that finds nothing is no error here.
                for l in flush_commands(port) {
                    let _ = ip_batch(&[l]).await;
                }
                ip_batch(&commands(&XfrmPlan::default(), &want, port)).await
            }
        };
        let r = match r {
            Ok(()) => self.sync_guard(have.as_ref(), &want, port).await,
            e => e,
        };
        let mut st = self.state.ipsec.lock().unwrap();
        match r {
            Ok(()) => {
                if st
                    .applied
                    .as_ref()
                    .map(|a| a.out != want.out)
                    .unwrap_or(true)
                    && !want.is_empty()
                {
                    info!(
                        peers = want.out.len(),
                        states = want.sas.len(),
                        "IPsec towards the peers of encrypted networks"
                    );
                }
                if want.is_empty() && st.applied.as_ref().is_some_and(|a| !a.is_empty()) {
                    info!("last encrypted network gone: IPsec states and policies removed");
                }
                self.remember_applied(&want, port);
                st.applied = Some(want);
                st.error = None;
            }
            Err(e) => {
                if st.error.as_deref() != Some(e.as_str()) {
                    warn!(error = %e, "IPsec states could not be applied; starting again next pass");
                }
                st.applied = None;
                st.error = Some(e);
            }
        }
    }

    /// `<state_dir>/ipsec-applied`, if there is a state dir.
    fn applied_file(&self) -> Option<std::path::PathBuf> {
        let dir = self.state.cluster.as_ref()?.cfg.state_dir.clone()?;
        Some(dir.join(APPLIED_FILE))
    }

    /// Keeps the digest of what was just applied (none once nothing is).
    fn remember_applied(&self, plan: &XfrmPlan, port: u16) {
        let Some(path) = self.applied_file() else {
            return;
        };
        let r = if plan.is_empty() {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                r => r,
            }
        } else {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, digest(plan, port) + "\n")
                .and_then(|()| std::fs::rename(&tmp, &path))
        };
        if let Err(e) = r {
            warn!(path = %path.display(), error = %e, "cannot keep the digest of the IPsec states; a restart re-installs them (a short gap in encrypted traffic)");
        }
    }

    /// Whether the kernel holds what an earlier run applied and `want` is
    /// that very plan: the digest kept in the state dir matches, and the
    /// kernel has as many of Switchyard's states and policies, and the
    /// guard. Then a restarted plugin changes nothing, and encrypted
    /// traffic has no gap; otherwise the first pass starts from nothing.
    async fn kernel_as_left(&self, want: &XfrmPlan, port: u16) -> bool {
        let Some(path) = self.applied_file() else {
            return false;
        };
        let kept = std::fs::read_to_string(&path).unwrap_or_default();
        if kept.trim() != digest(want, port) {
            return false;
        }
        let policies = want.out.len() + usize::from(want.inbound.is_some());
        let guard = match &want.guard {
            Some(dev) => {
                let pref = GUARD_PREF.to_string();
                let args = ["filter", "show", "dev", dev, "ingress", "pref", &pref];
                super::kernel_tool::count_lines("tc", &args, "filter")
                    .await
                    .is_some_and(|n| n > 0)
            }
            None => true,
        };
        guard
            && kernel_states().await == Some(want.sas.len())
            && super::kernel_tool::count_lines(
                "ip",
                &[
                    "xfrm",
                    "policy",
                    "list",
                    "proto",
                    "udp",
                    "dport",
                    &port.to_string(),
                ],
                "src ",
            )
            .await
                == Some(policies)
    }

    /// The plaintext guard's tc filter (`guard_commands`); unknown state
    /// (`have` None) deletes a leftover filter first.
    async fn sync_guard(
        &self,
        have: Option<&XfrmPlan>,
        want: &XfrmPlan,
        port: u16,
    ) -> Result<(), String> {
        let none = XfrmPlan::default();
        let have = match have {
            Some(h) => h,
            None => {
                if let Some(dev) = &want.guard {
                    let _ = batch(
                        "tc",
                        &[format!("filter del dev {dev} ingress pref {GUARD_PREF}")],
                    )
                    .await;
                }
                &none
            }
        };
        if let Some(dev) = &want.guard
            && have.guard.as_ref() != Some(dev)
        {
            // Shared with whatever else uses clsact on the interface: added
            // if missing, never removed.
            let _ = batch("tc", &[format!("qdisc add dev {dev} clsact")]).await;
        }
        batch("tc", &guard_commands(have, want, port)).await
    }

    /// For `status`.
    pub(super) fn describe_ipsec(&self) -> String {
        let st = self.state.ipsec.lock().unwrap();
        match (&st.error, &st.applied) {
            (Some(e), _) => format!("NOT APPLIED: {e}"),
            (None, Some(p)) => format!(
                "ESP {AEAD} to {} peer(s), UDP port {}",
                p.out.len(),
                self.state.cfg.encrypted_port
            ),
            (None, None) => "not applied yet".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::ipsec_keys::SaKeys;
    use super::*;

    fn keys(n: u32, gens: usize) -> PairKeys {
        PairKeys {
            keys: (0..gens as u32)
                .map(|g| SaKeys {
                    spi: [0x1000 + n * 16 + g, 0x2000 + n * 16 + g],
                    key: [format!("{:040x}", g), format!("{:040x}", g + 100)],
                })
                .collect(),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn plan_sends_with_the_second_newest_and_installs_all() {
        let peers = vec![
            ("h2".to_string(), ip("192.168.88.2"), Some(keys(1, 2))),
            ("h0".to_string(), ip("192.168.88.9"), Some(keys(2, 1))),
            ("h3".to_string(), ip("192.168.88.3"), None),
        ];
        let p = plan("h1", ip("192.168.88.1"), Some("eth1"), &peers);
        assert_eq!(
            p.sas.len(),
            2 * 2 + 2,
            "two generations with h2, one with h0"
        );
        // h1 < h2: h1 sends on direction 0, with generation 0 (second newest).
        assert_eq!(
            p.out.get(&(ip("192.168.88.1"), ip("192.168.88.2"))),
            Some(&Some(0x1010))
        );
        // h1 > h0: h1 sends on direction 1.
        assert_eq!(
            p.out.get(&(ip("192.168.88.1"), ip("192.168.88.9"))),
            Some(&Some(0x2020))
        );
        assert_eq!(
            p.out.get(&(ip("192.168.88.1"), ip("192.168.88.3"))),
            Some(&None),
            "no record yet: nothing sent (block), nothing installed"
        );
        assert!(p.sas.contains(&Sa {
            src: ip("192.168.88.2"),
            dst: ip("192.168.88.1"),
            spi: 0x2011,
            key: format!("{:040x}", 101),
        }));
        assert_eq!(p.inbound, Some(ip("192.168.88.1")));
        let g = guard_commands(&XfrmPlan::default(), &p, 4793);
        assert_eq!(
            g,
            vec![
                "filter add dev eth1 ingress pref 4793 protocol ip flower ip_proto udp dst_port 4793 action drop"
            ]
        );
        assert!(guard_commands(&p, &p, 4793).is_empty());
        assert_eq!(
            guard_commands(&p, &XfrmPlan::default(), 4793),
            vec!["filter del dev eth1 ingress pref 4793"]
        );
    }

    #[test]
    fn commands_add_states_before_switching_and_remove_after() {
        let me = ip("192.168.88.1");
        let peer = vec![("h2".to_string(), ip("192.168.88.2"), Some(keys(1, 2)))];
        let a = plan("h1", me, None, &peer);
        let first = commands(&XfrmPlan::default(), &a, 4793);
        assert!(first[0].starts_with("xfrm state add src "), "{first:?}");
        assert!(first[0].contains("aead rfc4106(gcm(aes)) 0x"), "{first:?}");
        assert!(first[0].ends_with(" 128"), "ICV 128: {first:?}");
        assert!(first.iter().any(|l| l
            == "xfrm policy update src 0.0.0.0/0 dst 192.168.88.1/32 proto udp dport 4793 dir in tmpl proto esp reqid 21337 mode transport"));
        assert!(first.iter().any(|l| l.starts_with(
            "xfrm policy update src 192.168.88.1/32 dst 192.168.88.2/32 proto udp dport 4793 dir out tmpl src 192.168.88.1 dst 192.168.88.2 proto esp spi 0x00001010"
        )));
        // A rotation: the third generation is added, the sender switches to
        // the second; nothing removed yet.
        let peer3 = vec![("h2".to_string(), ip("192.168.88.2"), Some(keys(1, 3)))];
        let b = plan("h1", me, None, &peer3);
        let rot = commands(&a, &b, 4793);
        assert_eq!(rot.len(), 4, "{rot:?}");
        assert_eq!(rot[3], "route flush cache");
        assert!(rot[0].starts_with("xfrm state add") && rot[1].starts_with("xfrm state add"));
        assert!(rot[2].contains("spi 0x00001011"), "{rot:?}");
        // The last network goes: policies, then states.
        let gone = commands(&b, &XfrmPlan::default(), 4793);
        assert!(gone.iter().all(|l| l.contains("delete")), "{gone:?}");
        assert!(gone[0].starts_with("xfrm policy delete"));
        assert!(gone.last().unwrap().starts_with("xfrm state delete"));
        assert_eq!(gone.len(), 2 + 6);
        assert!(commands(&b, &b, 4793).is_empty());
    }
}
