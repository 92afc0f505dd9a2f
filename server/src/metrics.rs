//! `/metrics` (Prometheus text format) and `/healthz` on an opt-in
//! listener (`[metrics] listen`: `HOST:PORT` or `unix:/PATH`), never on the
//! plugin's own socket. Requests are counted as they are answered; the
//! state (networks, endpoints) and the backends' own samples (their
//! background loops: `Backend::metrics`) are read at each scrape.

use crate::driver::Driver;
use prometheus_client::encoding::{EncodeLabelSet, text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use switchyard_backends::metrics::{Sample, SampleKind};
use tracing::{info, warn};
use warp::Filter;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub method: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendLabels {
    backend: String,
}

pub struct Metrics {
    registry: Registry,
    calls: Family<CallLabels, Counter>,
    latency: Family<MethodLabels, Histogram>,
    networks: Family<BackendLabels, Gauge>,
    endpoints: Family<BackendLabels, Gauge>,
    network_problems: Gauge,
    startup_removed: Gauge,
    startup_problems: Gauge,
    /// The startup reconciliation's samples, beside the backends' loops'.
    startup: std::sync::Mutex<Vec<Sample>>,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("switchyard");
        let calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "plugin_calls",
            "Plugin calls answered, by method and outcome (ok, error, refused)",
            calls.clone(),
        );
        let latency = Family::<MethodLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.0, 16))
        });
        registry.register(
            "plugin_call_seconds",
            "Time to answer a plugin call, by method",
            latency.clone(),
        );
        let networks = Family::<BackendLabels, Gauge>::default();
        registry.register(
            "networks",
            "Networks in the state, by backend",
            networks.clone(),
        );
        let endpoints = Family::<BackendLabels, Gauge>::default();
        registry.register(
            "endpoints",
            "Endpoints in the state, by backend",
            endpoints.clone(),
        );
        let network_problems = Gauge::default();
        registry.register(
            "network_problems",
            "Networks whose parent is missing on this host",
            network_problems.clone(),
        );
        let startup_removed = Gauge::default();
        registry.register(
            "startup_removed_links",
            "Orphaned links removed by the last startup reconciliation",
            startup_removed.clone(),
        );
        let startup_problems = Gauge::default();
        registry.register(
            "startup_problems",
            "Problems the last startup reconciliation left to the operator",
            startup_problems.clone(),
        );
        Metrics {
            registry,
            calls,
            latency,
            networks,
            endpoints,
            network_problems,
            startup_removed,
            startup_problems,
            startup: Default::default(),
        }
    }

    /// One answered call.
    pub fn call(&self, method: &str, outcome: &str, took: Duration) {
        // Unknown methods are one label, so a client cannot grow the series.
        let method = if method.starts_with("NetworkDriver.")
            || method.starts_with("IpamDriver.")
            || method.starts_with("Plugin.")
            || method.starts_with("Switchyard.")
        {
            method
        } else {
            "other"
        };
        let method = if method.len() > 64 { "other" } else { method };
        self.calls
            .get_or_create(&CallLabels {
                method: method.into(),
                outcome: outcome.into(),
            })
            .inc();
        self.latency
            .get_or_create(&MethodLabels {
                method: method.into(),
            })
            .observe(took.as_secs_f64());
    }

    pub fn startup(&self, removed: usize, problems: usize) {
        self.startup_removed.set(removed as i64);
        self.startup_problems.set(problems as i64);
        *self.startup.lock().unwrap() = vec![
            Sample::counter(
                "reconcile_runs",
                "Reconcile passes over the kernel (startup: once per start; vxlan: after each cluster change and every resync)",
                1.0,
            )
            .label("loop", "startup"),
            Sample::counter(
                "drift_repaired",
                "Kernel objects found different from the state and repaired, by loop and kind",
                removed as f64,
            )
            .label("loop", "startup")
            .label("what", "orphaned_links"),
        ];
    }

    /// The text a scrape gets: the state as it is now, and the counters.
    async fn render(&self, driver: &Driver) -> String {
        let report = driver.status().await;
        self.networks.clear();
        self.endpoints.clear();
        let mut problems = 0;
        for n in &report.networks {
            let b = BackendLabels {
                backend: n.backend.clone(),
            };
            self.networks.get_or_create(&b).inc();
            self.endpoints
                .get_or_create(&b)
                .inc_by(n.endpoints.len() as i64);
            problems += i64::from(n.problem.is_some());
        }
        self.network_problems.set(problems);
        let mut samples = self.startup.lock().unwrap().clone();
        samples.extend(driver.background_metrics());
        let mut out = String::new();
        let encoded = text::encode_registry(&mut out, &self.registry)
            .and_then(|()| text::encode_registry(&mut out, &registry_of(&samples)))
            .and_then(|()| text::encode_eof(&mut out));
        if let Err(e) = encoded {
            warn!(error = %e, "could not encode the metrics");
        }
        out
    }
}

type SampleLabels = Vec<(&'static str, String)>;
type SampleGauges = Family<SampleLabels, Gauge<f64, AtomicU64>>;
type SampleCounters = Family<SampleLabels, Counter<f64, AtomicU64>>;

/// A registry holding `samples` (one family per name, in their order), as
/// they are at this scrape.
fn registry_of(samples: &[Sample]) -> Registry {
    let mut registry = Registry::with_prefix("switchyard");
    let mut gauges: Vec<(&str, SampleGauges)> = Vec::new();
    let mut counters: Vec<(&str, SampleCounters)> = Vec::new();
    for s in samples {
        match s.kind {
            SampleKind::Gauge => {
                let family = match gauges.iter().find(|(n, _)| *n == s.name) {
                    Some((_, f)) => f.clone(),
                    None => {
                        let f = Family::default();
                        registry.register(s.name, s.help, f.clone());
                        gauges.push((s.name, f.clone()));
                        f
                    }
                };
                family.get_or_create(&s.labels).set(s.value);
            }
            SampleKind::Counter => {
                let family = match counters.iter().find(|(n, _)| *n == s.name) {
                    Some((_, f)) => f.clone(),
                    None => {
                        let f = Family::default();
                        registry.register(s.name, s.help, f.clone());
                        counters.push((s.name, f.clone()));
                        f
                    }
                };
                family.get_or_create(&s.labels).inc_by(s.value);
            }
        }
    }
    registry
}

/// Serves `/metrics` and `/healthz` on `listen` until the process ends.
pub async fn serve(listen: &str, metrics: Arc<Metrics>, driver: Arc<Driver>) -> Result<(), String> {
    let m = metrics.clone();
    let d = driver.clone();
    let scrape = warp::path!("metrics").and(warp::get()).then(move || {
        let (m, d) = (m.clone(), d.clone());
        async move {
            warp::reply::with_header(
                m.render(&d).await,
                "content-type",
                "text/plain; version=0.0.4; charset=utf-8",
            )
        }
    });
    let health = warp::path!("healthz").and(warp::get()).map(|| "ok\n");
    let routes = scrape.or(health);
    match listen.strip_prefix("unix:") {
        Some(path) => {
            let _ = std::fs::remove_file(path);
            let l = tokio::net::UnixListener::bind(path)
                .map_err(|e| format!("[metrics] listen {listen}: cannot listen: {e}"))?;
            info!(listen, "metrics served");
            tokio::spawn(warp::serve(routes).incoming(l).run());
        }
        None => {
            let l = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
                format!("[metrics] listen {listen}: cannot listen: {e}; write HOST:PORT (e.g. 127.0.0.1:9323) or unix:/PATH")
            })?;
            info!(listen, "metrics served");
            tokio::spawn(warp::serve(routes).incoming(l).run());
        }
    }
    Ok(())
}
