//! CI smoke of the cluster scale benchmark (`switchyard-bench cluster`):
//! the same run, 3 hosts × 5 endpoints, with real convergence asserted, so
//! the benchmark's code cannot rot.

use switchyard_integration_tests::cluster_scale::{ScaleConfig, run};

#[test]
fn scale_run_small() {
    let mut cfg = ScaleConfig::new(3, 5);
    cfg.pace_ms = 20;
    // A grace long enough that a loaded CI machine does not collect a live
    // host whose keep-alive came late; short enough to measure collection.
    cfg.lease_ttl = 3;
    cfg.gc_grace = 15;
    cfg.resync_interval = 1;
    cfg.settle_secs = 30.0;
    let (r, c) = run(&cfg, &mut |l| eprintln!("[scale] {l}"));
    let n = 3 * 5;
    assert_eq!(r.made.len(), n);
    assert!(
        r.kernels_equal,
        "kernels never equalled the model\n{}",
        c.logs()
    );
    for m in &r.made {
        let ms = m.converged_ms.unwrap_or_else(|| {
            panic!(
                "{} ({}) never programmed on {:?}\n{}",
                m.ip,
                c.hosts[m.host].id,
                m.missing_on,
                c.logs()
            )
        });
        assert!((0.0..30_000.0).contains(&ms), "{}: {ms} ms", m.ip);
    }
    // One address claim and one endpoint record per endpoint, nothing
    // deleted; the watch saw every revision.
    assert_eq!(
        r.writes_by_kind.get("endpoints put"),
        Some(&n),
        "{:?}",
        r.writes_by_kind
    );
    assert_eq!(
        r.writes_by_kind.get("ipam put"),
        Some(&n),
        "{:?}",
        r.writes_by_kind
    );
    assert!(
        !r.writes_by_kind.keys().any(|k| k.ends_with("delete")),
        "{:?}",
        r.writes_by_kind
    );
    let seen: usize = r.writes_by_kind.values().sum();
    assert!(
        r.revisions as usize <= seen,
        "{} revisions, {:?}",
        r.revisions,
        r.writes_by_kind
    );
    for (h, m) in r.memory.iter().enumerate() {
        assert!(m.1 > 0, "no VmRSS for host {h}");
        assert_eq!(m.3, 2 * 5, "host {h} reports {} remote endpoints", m.3);
    }
    let gc = &r.gc;
    assert!(gc.alive_gone.is_some(), "{}'s alive key stayed", gc.host);
    assert!(
        gc.records_gone.is_some(),
        "{}'s records stayed\n{}",
        gc.host,
        c.logs()
    );
    assert!(
        gc.kernels_equal,
        "kernels still hold {}'s entries\n{}",
        gc.host,
        c.logs()
    );
    assert_eq!(gc.kernel_clean.len(), 2);
    for t in &gc.kernel_clean {
        let t = t.unwrap_or_else(|| panic!("no deletion seen: {gc:?}"));
        // Not before the lease expired and the grace passed.
        assert!(t >= (cfg.gc_grace) as f64, "collected after {t} s: {gc:?}");
    }
}
