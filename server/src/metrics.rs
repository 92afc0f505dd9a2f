//! `/metrics` (Prometheus text format) and `/healthz` on an opt-in
//! listener (`[metrics] listen`: `HOST:PORT` or `unix:/PATH`), never on the
//! plugin's own socket. Requests are counted as they are answered; the
//! state (networks, endpoints, VXLAN peers) is read at each scrape.

use crate::driver::Driver;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;
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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NetworkLabels {
    network: String,
    vni: String,
}

pub struct Metrics {
    registry: Registry,
    calls: Family<CallLabels, Counter>,
    latency: Family<MethodLabels, Histogram>,
    networks: Family<BackendLabels, Gauge>,
    endpoints: Family<BackendLabels, Gauge>,
    remote_endpoints: Family<NetworkLabels, Gauge>,
    network_problems: Gauge,
    startup_removed: Gauge,
    startup_problems: Gauge,
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
        let remote_endpoints = Family::<NetworkLabels, Gauge>::default();
        registry.register(
            "vxlan_remote_endpoints",
            "Remote endpoints programmed into the kernel, per VXLAN network",
            remote_endpoints.clone(),
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
            remote_endpoints,
            network_problems,
            startup_removed,
            startup_problems,
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
    }

    /// The text a scrape gets: the state as it is now, and the counters.
    async fn render(&self, driver: &Driver) -> String {
        let report = driver.status().await;
        self.networks.clear();
        self.endpoints.clear();
        self.remote_endpoints.clear();
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
            if let (Some(vni), Some(remote)) =
                (n.details.get("vni"), n.details.get("remote_endpoints"))
            {
                self.remote_endpoints
                    .get_or_create(&NetworkLabels {
                        network: n.id.chars().take(12).collect(),
                        vni: vni.clone(),
                    })
                    .set(remote.parse().unwrap_or(0));
            }
        }
        self.network_problems.set(problems);
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            warn!(error = %e, "could not encode the metrics");
        }
        out
    }
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
