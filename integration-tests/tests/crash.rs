//! Crash consistency, proven by killing the plugin at every step: each
//! failpoint (cargo feature `test-hooks`, `SWITCHYARD_FAILPOINTS`) raises
//! SIGKILL at one instant of one operation; the plugin is started again and
//! the call that died is retried as dockerd would. Nothing half-made or
//! unmarked may stay, no endpoint may be lost, the retry must succeed, and
//! the operator's links are never touched. Plus a broken netlink
//! connection, and a seeded randomized kill soak.

use std::time::{Duration, Instant};
use switchyard_core::failpoint::POINTS;
use switchyard_integration_tests::Lab;
use switchyard_integration_tests::crash::{
    CALLS, FLAVOURS, Flavour, Lifecycle, add_operator_links, ipam_leaks, lasting_leftovers,
    operator_links_intact,
};

fn lab(failpoints: &str) -> Lab {
    let lab = Lab::config()
        .tag("cr")
        .env("SWITCHYARD_FAILPOINTS", failpoints)
        .env("SWITCHYARD__VXLAN__UNDERLAY", "tp0")
        .env("SWITCHYARD__VXLAN__LOCAL_IP", "10.99.0.1")
        .start();
    Lifecycle::prepare(&lab);
    add_operator_links(&lab);
    lab
}

/// How many links each flavour's lifecycle creates (`link.apply.*@n`).
fn links_created(f: Flavour) -> usize {
    match f {
        Flavour::Macvlan => 1,  // the endpoint
        Flavour::Isolated => 2, // the private parent, the endpoint
        Flavour::Vxlan => 3,    // bridge, VXLAN device, the endpoint's veth pair
    }
}

/// Runs one lifecycle with `point` armed; returns whether it fired.
fn run_with_kill(flavour: Flavour, point: &str) -> bool {
    let mut lab = lab(point);
    let lc = Lifecycle::new(flavour, 0);
    let name = point.split('@').next().unwrap();
    let mut fired = false;
    for call in CALLS {
        if let Err(e) = lc.call(&mut lab, call) {
            assert!(
                !fired && lab.plugin.dead_within(2.0),
                "{flavour:?} {point}: {call} failed without a crash: {e}\n{}",
                lab.plugin.log_text()
            );
            assert!(
                lab.plugin
                    .log_text()
                    .contains(&format!("failpoint {name}: killing")),
                "{flavour:?} {point}: the plugin died in {call} but not at the failpoint: {e}\n{}",
                lab.plugin.log_text()
            );
            fired = true;
            lab.plugin.set_env("SWITCHYARD_FAILPOINTS", None);
            lab.restart_plugin();
            let left = lasting_leftovers(&lab, 3.0);
            assert!(
                left.is_empty(),
                "{flavour:?} {point}: after the restart, unmarked or half-made links: {left:?}\n{}",
                lab.host.ip(&["-d", "link", "show"])
            );
            lc.call(&mut lab, call).unwrap_or_else(|e| {
                panic!(
                    "{flavour:?} {point}: {call} retried after the restart failed: {e}\n{}",
                    lab.plugin.log_text()
                )
            });
        }
        if let Err(e) = lc.check_after(&mut lab, call) {
            panic!("{flavour:?} {point}: {e}");
        }
    }
    lab.assert_no_marked_links();
    let left = lasting_leftovers(&lab, 3.0);
    assert!(left.is_empty(), "{flavour:?} {point}: left {left:?}");
    assert!(
        operator_links_intact(&lab),
        "{flavour:?} {point}: operator links touched: {}",
        lab.host.ip(&["-d", "link", "show"])
    );
    assert_eq!(
        ipam_leaks(&mut lab),
        Ok(vec![]),
        "{flavour:?} {point}: IPAM still holds addresses"
    );
    fired
}

#[test]
fn a_kill_at_every_step_is_repaired_and_the_retry_succeeds() {
    let started = Instant::now();
    let mut runs = 0;
    for flavour in FLAVOURS {
        for point in POINTS {
            let repeats = if point.starts_with("link.apply.") {
                links_created(flavour)
            } else if point.starts_with("store.ipam_") {
                2 // the gateway's and the endpoint's
            } else {
                1
            };
            for n in 1..=repeats {
                let armed = format!("{point}@{n}");
                let fired = run_with_kill(flavour, &armed);
                runs += 1;
                // Every point is on every flavour's path, except the
                // network-create point that comes after validation.
                assert!(fired, "{flavour:?}: failpoint {armed} never fired");
            }
        }
    }
    eprintln!(
        "{runs} kills at failpoints, each repaired and retried, in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn a_broken_netlink_connection_is_replaced_and_the_next_request_succeeds() {
    // Break the connection at the n-th netlink request, for every n that a
    // lifecycle reaches: the call in flight may fail (once), every call
    // after it must succeed, without a restart.
    let mut n = 1;
    loop {
        let point = format!("netlink.break@{n}");
        let mut lab = lab(&point);
        let mut failed = 0;
        let mut in_first = false;
        // Twice: the second lifecycle uses every connection (the deferred
        // deleter's too) after a break in the first.
        for round in 0..2 {
            if round == 1 {
                in_first = lab.plugin.log_text().contains("failpoint netlink.break");
            }
            let lc = Lifecycle::new(Flavour::Vxlan, round);
            for call in CALLS {
                if let Err(e) = lc.call(&mut lab, call) {
                    failed += 1;
                    assert!(failed == 1, "{point}: a second call failed: {call}: {e}");
                    assert!(lab.plugin.alive(), "{point}: the plugin died: {e}");
                    lc.call(&mut lab, call).unwrap_or_else(|e| {
                        panic!(
                            "{point}: {call} failed again after the connection broke: {e}\n{}",
                            lab.plugin.log_text()
                        )
                    });
                }
                lc.check_after(&mut lab, call)
                    .unwrap_or_else(|e| panic!("{point}: {e}"));
            }
        }
        lab.assert_no_marked_links();
        assert!(lab.plugin.alive());
        if !in_first {
            // Every exchange of a lifecycle has been broken once.
            assert!(n > 10, "a lifecycle made only {n} netlink requests?");
            eprintln!(
                "broke the netlink connection at each of {} exchanges of a lifecycle",
                n - 1
            );
            break;
        }
        assert!(
            lab.plugin
                .log_text()
                .contains("the netlink connection had ended; opened a fresh one"),
            "{point}: no fresh connection was opened"
        );
        drop(lab);
        n += 1;
    }
}

/// xorshift64*: a seeded generator, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// SIGKILLs at random instants while container lifecycles run at protocol
/// level, each followed by a restart and dockerd's retry. Seeded
/// (`SWITCHYARD_SOAK_SEED`), the seed printed on failure; bounded by the
/// number of kills and by time.
#[test]
fn randomized_kill_soak() {
    let seed: u64 = std::env::var("SWITCHYARD_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    let kills_wanted: usize = std::env::var("SWITCHYARD_SOAK_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let budget = Duration::from_secs(170);
    eprintln!("soak seed {seed} (rerun with SWITCHYARD_SOAK_SEED={seed})");
    let result = std::panic::catch_unwind(|| soak(seed, kills_wanted, budget));
    match result {
        Ok((kills, lifecycles, t)) => eprintln!(
            "soak seed {seed}: {kills} SIGKILLs during {lifecycles} lifecycles in {:.1} s",
            t.as_secs_f64()
        ),
        Err(e) => {
            eprintln!("soak FAILED with seed {seed} (rerun with SWITCHYARD_SOAK_SEED={seed})");
            std::panic::resume_unwind(e);
        }
    }
}

/// Restarts the plugin if it died; true if it had.
fn revive(lab: &mut Lab, seed: u64, during: &str) -> bool {
    if !lab.plugin.dead_within(0.5) {
        return false;
    }
    lab.restart_plugin();
    let left = lasting_leftovers(lab, 3.0);
    assert!(
        left.is_empty(),
        "soak seed {seed}: after a kill during {during}: unmarked or half-made links {left:?}"
    );
    assert!(
        operator_links_intact(lab),
        "soak seed {seed}: operator links touched"
    );
    true
}

fn soak(seed: u64, kills_wanted: usize, budget: Duration) -> (usize, usize, Duration) {
    let mut rng = Rng(seed);
    let started = Instant::now();
    let mut lab = lab("");
    // One lifecycle without a kill: how long the window to kill in is.
    let t = Instant::now();
    let lc = Lifecycle::new(Flavour::Vxlan, 0);
    for call in CALLS {
        lc.call(&mut lab, call).unwrap();
    }
    drop(lc);
    let window = (t.elapsed().as_micros() as u64 * 5 / 4).max(1000);
    let mut kills = 0;
    let mut in_calls = 0;
    let mut lifecycles = 0;
    // The killer SIGKILLs the pid it is handed after a delay, then says so.
    let (tx, rx) = std::sync::mpsc::channel::<(u32, Duration)>();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let killer = std::thread::spawn(move || {
        while let Ok((pid, after)) = rx.recv() {
            std::thread::sleep(after);
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = done_tx.send(());
        }
    });
    while kills < kills_wanted {
        assert!(
            started.elapsed() < budget,
            "soak seed {seed}: only {kills} kills in {budget:?}"
        );
        let flavour = FLAVOURS[rng.below(FLAVOURS.len() as u64) as usize];
        let lc = Lifecycle::new(flavour, (lifecycles % 200) as u8);
        lifecycles += 1;
        let after = Duration::from_micros(rng.below(window));
        tx.send((lab.plugin.pid(), after)).unwrap();
        let mut killed = false;
        for call in CALLS {
            if let Err(e) = lc.call(&mut lab, call) {
                assert!(
                    !killed && revive(&mut lab, seed, call),
                    "soak seed {seed}: {flavour:?} {call} failed without a kill: {e}\n{}",
                    lab.plugin.log_text()
                );
                killed = true;
                lc.call(&mut lab, call).unwrap_or_else(|e| {
                    panic!(
                        "soak seed {seed}: {flavour:?} {call} retried after the kill failed: {e}\n{}",
                        lab.plugin.log_text()
                    )
                });
            }
            if let Err(e) = lc.check_after(&mut lab, call) {
                // The kill may land on the check itself.
                assert!(
                    !killed && revive(&mut lab, seed, call),
                    "soak seed {seed}: {flavour:?}: {e}"
                );
                killed = true;
                lc.check_after(&mut lab, call)
                    .unwrap_or_else(|e| panic!("soak seed {seed}: {flavour:?}: {e}"));
            }
        }
        done_rx.recv().unwrap();
        // A kill after the last call: the next start must still be clean.
        if revive(&mut lab, seed, "an idle moment") {
            assert!(!killed);
            killed = true;
        } else {
            in_calls += 1;
        }
        assert!(killed, "soak seed {seed}: the kill did not land");
        kills += 1;
        drop(lc);
    }
    drop(tx);
    let _ = killer.join();
    lab.assert_no_marked_links();
    assert_eq!(
        ipam_leaks(&mut lab),
        Ok(vec![]),
        "soak seed {seed}: IPAM still holds addresses after every lifecycle released its own"
    );
    eprintln!("soak seed {seed}: {in_calls} of the {kills} kills landed inside a call");
    (kills, lifecycles, started.elapsed())
}

/// The half-made link an earlier version left (issue #8, reproduction 10):
/// created under the endpoint's own name, killed before it was marked. The
/// next start recognises it — a stored endpoint's exact link name, kind and
/// parent — and removes it, so dockerd's retried Join succeeds; a link of
/// another kind or on another parent under such a name is left alone.
#[test]
fn an_unmarked_link_of_a_stored_endpoint_is_removed_and_join_succeeds() {
    let mut lab = lab("");
    lab.host.veth("tpx0", "tpx1");
    let lc = Lifecycle::new(Flavour::Macvlan, 0);
    let other = Lifecycle::new(Flavour::Macvlan, 1);
    lc.call(&mut lab, "CreateNetwork").unwrap();
    lc.call(&mut lab, "CreateEndpoint").unwrap();
    // A second endpoint of the same network whose name is taken by an
    // operator's link on another parent.
    other.call(&mut lab, "CreateEndpoint").ok();
    let stored = |lc: &Lifecycle| format!("sy{}", &lc.ep[..11]);
    lab.plugin.kill();
    let name = stored(&lc);
    lab.host.ip(&[
        "link", "add", &name, "link", "tp0", "type", "macvlan", "mode", "bridge",
    ]);
    let foreign = stored(&other);
    lab.host.ip(&[
        "link", "add", &foreign, "link", "tpx0", "type", "macvlan", "mode", "bridge",
    ]);
    lab.restart_plugin();
    assert!(lab.gone(&name), "the half-made {name} is still there");
    assert!(
        lab.host.links().contains(&foreign),
        "{foreign} (on another parent) was removed"
    );
    lc.call(&mut lab, "Join")
        .unwrap_or_else(|e| panic!("Join after the restart: {e}"));
    lc.check_after(&mut lab, "Join").unwrap();
    assert!(operator_links_intact(&lab));
}

/// Arms `point`, makes `call` die there, then restarts the plugin unarmed
/// and retries the same call, as dockerd does: returns the retry's answer.
fn killed_then_retried(
    lab: &mut Lab,
    point: &str,
    call: impl Fn(&mut Lab) -> switchyard_integration_tests::libnetwork::Answer,
) -> serde_json::Value {
    let line = format!("failpoint {point}: killing");
    let before = lab.plugin.log_text().matches(&line).count();
    lab.plugin.set_env("SWITCHYARD_FAILPOINTS", Some(point));
    lab.restart_plugin();
    // dockerd's plugin client retries a refused connection; so does this.
    let mut first = call(lab);
    for _ in 0..20 {
        match &first {
            Err(e) if e.contains("Connection refused") && lab.plugin.alive() => {
                std::thread::sleep(Duration::from_millis(100));
                first = call(lab);
            }
            _ => break,
        }
    }
    assert!(
        first.is_err() && lab.plugin.dead_within(2.0),
        "{point}: the call did not die there: {first:?}"
    );
    assert_eq!(
        lab.plugin.log_text().matches(&line).count(),
        before + 1,
        "{point}: died elsewhere"
    );
    lab.plugin.set_env("SWITCHYARD_FAILPOINTS", None);
    lab.restart_plugin();
    call(lab).unwrap_or_else(|e| {
        panic!(
            "{point}: the retry after the restart failed: {e}\n{}",
            lab.plugin.log_text()
        )
    })
}

/// IPAM at every commit: a RequestAddress killed after its claim is stored
/// but before the answer gets the same answer when dockerd retries it
/// (gateway by its type, endpoint by Engine 29's name; a specific address or
/// any); one killed before the commit just succeeds. Engine 28 sends no
/// name: its retry gets another address, and the one the crash held is
/// collected when the network's pool is released (itself killed at its
/// commit and retried). RequestPool stores nothing: retried, it counts once.
#[test]
fn ipam_calls_killed_at_each_commit_are_retried_and_nothing_leaks() {
    let mut lab = lab("");
    let space = serde_json::json!({"AddressSpace": "switchyard-local", "Pool": "10.88.0.0/24", "SubPool": "", "Options": {}, "V6": false});
    for commit in ["before_commit", "after_commit"] {
        let claim = format!("store.ipam_claim.{commit}");
        let pool = lab.ln.ipam("RequestPool", space.clone()).unwrap();
        let id = pool["PoolID"].as_str().unwrap().to_string();
        let request = |address: &str, options: serde_json::Value| {
            let body = serde_json::json!({"PoolID": id, "Address": address, "Options": options});
            move |lab: &mut Lab| lab.ln.ipam("RequestAddress", body.clone())
        };
        let gw = serde_json::json!({"RequestAddressType": "com.docker.network.gateway"});
        let named = |n: &str| serde_json::json!({"com.docker.network.endpoint.name": n});
        let cases: [(&str, serde_json::Value, Option<&str>); 4] = [
            ("", gw.clone(), Some("10.88.0.1/24")),
            ("10.88.0.7", named("web"), Some("10.88.0.7/24")),
            ("", named("api"), None),
            ("", serde_json::Value::Null, None),
        ];
        let mut held = Vec::new();
        for (address, options, want) in cases {
            let r = killed_then_retried(&mut lab, &claim, request(address, options.clone()));
            let got = r["Address"].as_str().unwrap().to_string();
            if let Some(w) = want {
                assert_eq!(got, w, "{claim}: {options}");
            }
            held.push(got);
        }
        // The same named request again is the same answer, not a second address.
        let again = request("", named("api"))(&mut lab).unwrap();
        assert_eq!(again["Address"].as_str().unwrap(), held[2]);
        let other = request("", named("db"))(&mut lab).unwrap();
        assert!(!held.contains(&other["Address"].as_str().unwrap().to_string()));
        held.push(other["Address"].as_str().unwrap().to_string());
        // A second network on the subnet: its own gateway, not this one's.
        let pool2 = lab.ln.ipam("RequestPool", space.clone()).unwrap();
        assert_ne!(
            pool2["PoolID"], pool["PoolID"],
            "every RequestPool its own PoolID"
        );
        let gw2 = lab
            .ln
            .ipam(
                "RequestAddress",
                serde_json::json!({"PoolID": pool2["PoolID"], "Address": "", "Options": gw}),
            )
            .unwrap();
        assert_ne!(gw2["Address"].as_str().unwrap(), held[0]);
        lab.ln
            .ipam(
                "ReleasePool",
                serde_json::json!({"PoolID": pool2["PoolID"]}),
            )
            .unwrap();
        // dockerd releases what it was answered, then the pool.
        for a in &held {
            let plain = a.split('/').next().unwrap();
            let body = serde_json::json!({"PoolID": id, "Address": plain});
            killed_then_retried(
                &mut lab,
                &format!("store.ipam_release.{commit}"),
                move |lab: &mut Lab| lab.ln.ipam("ReleaseAddress", body.clone()),
            );
        }
        // Still held by this network's pool: what the crash left.
        let leaked = ipam_leaks(&mut lab).unwrap();
        if commit == "after_commit" {
            assert_eq!(
                leaked.len(),
                1,
                "the unnamed request's first claim: {leaked:?}"
            );
            let body = serde_json::json!({"PoolID": id});
            killed_then_retried(
                &mut lab,
                "store.ipam_release_pool.after_commit",
                move |lab: &mut Lab| lab.ln.ipam("ReleasePool", body.clone()),
            );
        } else {
            assert_eq!(leaked, Vec::<String>::new());
            lab.ln
                .ipam("ReleasePool", serde_json::json!({"PoolID": id}))
                .unwrap();
        }
        assert_eq!(ipam_leaks(&mut lab), Ok(vec![]), "{commit}");
    }
}

/// Startup's reconciliation killed at each of its repairs: a half-made link
/// to remove (a Join killed at its link's creation), an orphaned marked
/// link to remove, a private parent deleted by hand to re-create. The start
/// after the kill finishes the repairs: nothing half-made, the orphan gone,
/// the parent back and marked, the killed Join retried successfully, and
/// every lifecycle then ends cleanly with no address left held.
#[test]
fn a_kill_at_each_repair_step_of_startup_is_finished_by_the_next_start() {
    use switchyard_core::failpoint::{STARTUP, STARTUP_POINTS};
    for point in STARTUP_POINTS {
        let armed = format!("{STARTUP}{point}");
        let mut lab = lab("");
        let iso = Lifecycle::new(Flavour::Isolated, 1);
        let mac = Lifecycle::new(Flavour::Macvlan, 2);
        let half = Lifecycle::new(Flavour::Macvlan, 3);
        let join = CALLS.iter().position(|c| *c == "Join").unwrap();
        for lc in [&iso, &mac] {
            for call in &CALLS[..=join] {
                lc.call(&mut lab, call).unwrap();
            }
        }
        for call in &CALLS[..join] {
            half.call(&mut lab, call).unwrap();
        }
        // The half-made link: Join killed once its link exists, unnamed.
        lab.plugin
            .set_env("SWITCHYARD_FAILPOINTS", Some("link.apply.created"));
        lab.restart_plugin();
        assert!(half.call(&mut lab, "Join").is_err() && lab.plugin.dead_within(2.0));
        // An orphaned link: marked by this instance for a network it does
        // not know. A private parent deleted by hand.
        let mac_link = format!("sy{}", &mac.ep[..11]);
        let alias = lab.link_alias(&mac_link).expect("the endpoint's mark");
        let orphan_alias = alias.replace(&mac.net, &switchyard_integration_tests::random_id());
        lab.host.veth("syorph0", "orphpeer");
        lab.host
            .ip(&["link", "set", "syorph0", "alias", &orphan_alias]);
        let parent = switchyard_core::spec::isolated_parent_name(&iso.net);
        lab.host.ip(&["link", "del", &parent]);
        // Startup, killed at the point.
        lab.plugin.set_env("SWITCHYARD_FAILPOINTS", Some(&armed));
        let died = lab.plugin.try_restart();
        assert!(died.is_err(), "{armed}: startup was not killed");
        assert!(
            lab.plugin
                .log_text()
                .contains(&format!("failpoint {point}: killing")),
            "{armed}: never reached:\n{}",
            lab.plugin.log_text()
        );
        // The next start finishes the repairs.
        lab.plugin.set_env("SWITCHYARD_FAILPOINTS", None);
        lab.restart_plugin();
        let left = lasting_leftovers(&lab, 3.0);
        assert!(left.is_empty(), "{armed}: left {left:?}");
        assert!(lab.gone("syorph0"), "{armed}: the orphan is still there");
        assert!(
            lab.link_alias(&parent)
                .is_some_and(|a| a.starts_with("switchyard")),
            "{armed}: the private parent {parent} is not back with its mark: {}",
            lab.host.ip(&["-d", "link", "show"])
        );
        assert!(
            operator_links_intact(&lab),
            "{armed}: operator links touched"
        );
        half.call(&mut lab, "Join")
            .unwrap_or_else(|e| panic!("{armed}: the retried Join failed: {e}"));
        half.check_after(&mut lab, "Join").unwrap();
        // Every lifecycle ends cleanly (the isolated endpoint's link went
        // with its parent: no check of it).
        for lc in [&iso, &mac, &half] {
            for call in &CALLS[join + 1..] {
                lc.call(&mut lab, call)
                    .unwrap_or_else(|e| panic!("{armed}: {:?} {call}: {e}", lc.flavour));
                if lc.flavour != Flavour::Isolated {
                    lc.check_after(&mut lab, call)
                        .unwrap_or_else(|e| panic!("{armed}: {e}"));
                }
            }
        }
        lab.assert_no_marked_links();
        assert_eq!(ipam_leaks(&mut lab), Ok(vec![]), "{armed}");
    }
}
