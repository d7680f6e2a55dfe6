//! The agent's own metrics and health, at `/metrics` and `/healthz` on `--listen`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The agent's metrics.
pub struct AgentMetrics {
    registry: Registry,
    events: Counter,
    bytes: Counter,
    rejected: Counter,
    failures: Counter,
    ship_seconds: Histogram,
    lag: Gauge,
    pending_files: Gauge,
    dropped: Counter,
    /// The follower's dropped total last seen, so the counter grows by what is new.
    dropped_seen: AtomicU64,
}

impl Default for AgentMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl AgentMetrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("kubetrail_agent");
        let m = AgentMetrics {
            registry: Registry::default(),
            events: Counter::default(),
            bytes: Counter::default(),
            rejected: Counter::default(),
            failures: Counter::default(),
            ship_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
            lag: Gauge::default(),
            pending_files: Gauge::default(),
            dropped: Counter::default(),
            dropped_seen: AtomicU64::new(0),
        };
        registry.register(
            "shipped_events",
            "Events acknowledged by the server",
            m.events.clone(),
        );
        registry.register(
            "shipped_bytes",
            "Log bytes acknowledged by the server",
            m.bytes.clone(),
        );
        registry.register(
            "rejected_lines",
            "Lines the server refused as not audit events",
            m.rejected.clone(),
        );
        registry.register(
            "batch_failures",
            "Batches that failed and were retried",
            m.failures.clone(),
        );
        registry.register(
            "batch_seconds",
            "Time from sending a batch to its acknowledgement",
            m.ship_seconds.clone(),
        );
        registry.register(
            "lag_bytes",
            "Bytes in the log not yet acknowledged",
            m.lag.clone(),
        );
        registry.register(
            "pending_files",
            "Files not yet shipped to their end",
            m.pending_files.clone(),
        );
        registry.register(
            "dropped_bytes",
            "Bytes lost (files deleted before they were read, backlog skipped)",
            m.dropped.clone(),
        );
        AgentMetrics { registry, ..m }
    }

    /// A batch was acknowledged.
    pub fn shipped(&self, events: u64, bytes: u64, rejected: u64, took: Duration) {
        self.events.inc_by(events);
        self.bytes.inc_by(bytes);
        self.rejected.inc_by(rejected);
        self.ship_seconds.observe(took.as_secs_f64());
    }

    /// A batch failed.
    pub fn failed(&self) {
        self.failures.inc();
    }

    /// The follower's state.
    pub fn set_state(&self, lag: u64, pending_files: u64, dropped: u64) {
        let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.lag.set(clamp(lag));
        self.pending_files.set(clamp(pending_files));
        // The follower's total only grows (it is kept in the checkpoint).
        let seen = self.dropped_seen.swap(dropped, Ordering::Relaxed);
        self.dropped.inc_by(dropped.saturating_sub(seen));
    }

    fn encode(&self) -> String {
        let mut out = String::new();
        // Encoding into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Serves `/metrics` and `/healthz` on `addr` until the runtime ends.
pub async fn serve_metrics(addr: SocketAddr, metrics: Arc<AgentMetrics>) -> std::io::Result<()> {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/metrics",
            get(move || {
                let m = metrics.clone();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        m.encode(),
                    )
                        .into_response()
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await
}
