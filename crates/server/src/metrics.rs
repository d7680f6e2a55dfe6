//! Prometheus metrics (OpenMetrics text at `/metrics`): events received, stored, duplicate and
//! rejected by source and cluster; batch commit latency; store size; authentication failures;
//! and what agents report about themselves (lag, pending files, dropped bytes, gaps).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::{ApiError, AppState};

/// Where a batch came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The apiserver's webhook backend.
    Webhook,
    /// A kubetrail agent.
    Agent,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Webhook => "webhook",
            Source::Agent => "agent",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceCluster {
    source: &'static str,
    cluster: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabel {
    source: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AgentLabels {
    cluster: String,
    node: String,
}

fn commit_histogram() -> Histogram {
    // 1 ms to about 16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    received: Family<SourceCluster, Counter>,
    stored: Family<SourceCluster, Counter>,
    duplicates: Family<SourceCluster, Counter>,
    rejected: Family<SourceCluster, Counter>,
    commit_failures: Family<SourceCluster, Counter>,
    commit_seconds: Family<SourceLabel, Histogram, fn() -> Histogram>,
    auth_failures: Family<ReasonLabel, Counter>,
    store_bytes: Gauge,
    store_events: Gauge,
    agent_lag: Family<AgentLabels, Gauge>,
    agent_pending_files: Family<AgentLabels, Gauge>,
    agent_dropped: Family<AgentLabels, Gauge>,
    agent_gaps: Family<AgentLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("kubetrail");
        let m = Metrics {
            received: Family::default(),
            stored: Family::default(),
            duplicates: Family::default(),
            rejected: Family::default(),
            commit_failures: Family::default(),
            commit_seconds: Family::new_with_constructor(commit_histogram),
            auth_failures: Family::default(),
            store_bytes: Gauge::default(),
            store_events: Gauge::default(),
            agent_lag: Family::default(),
            agent_pending_files: Family::default(),
            agent_dropped: Family::default(),
            agent_gaps: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "events_received",
            "Audit events received",
            m.received.clone(),
        );
        registry.register(
            "events_stored",
            "Audit events newly stored",
            m.stored.clone(),
        );
        registry.register(
            "events_duplicate",
            "Audit events received again (already stored)",
            m.duplicates.clone(),
        );
        registry.register(
            "events_rejected",
            "Lines or batches refused as not audit events",
            m.rejected.clone(),
        );
        registry.register(
            "batch_commit_failures",
            "Batches the store could not commit (answered 5xx)",
            m.commit_failures.clone(),
        );
        registry.register(
            "batch_commit_seconds",
            "Time to commit one batch to the store",
            m.commit_seconds.clone(),
        );
        registry.register(
            "auth_failures",
            "Requests refused by authentication (401) or role (403)",
            m.auth_failures.clone(),
        );
        registry.register(
            "store_bytes",
            "Bytes the store occupies",
            m.store_bytes.clone(),
        );
        registry.register(
            "store_events",
            "Events in the store",
            m.store_events.clone(),
        );
        registry.register(
            "agent_lag_bytes",
            "Bytes an agent has read from its log but not yet had acknowledged",
            m.agent_lag.clone(),
        );
        registry.register(
            "agent_pending_files",
            "Files an agent has not yet fully shipped",
            m.agent_pending_files.clone(),
        );
        registry.register(
            "agent_dropped_bytes",
            "Bytes of audit log an agent reports lost",
            m.agent_dropped.clone(),
        );
        registry.register(
            "agent_gaps",
            "Collection gaps reported by agents",
            m.agent_gaps.clone(),
        );
        Metrics { registry, ..m }
    }

    fn key(source: Source, cluster: &str) -> SourceCluster {
        SourceCluster {
            source: source.as_str(),
            cluster: cluster.to_string(),
        }
    }

    /// Events arrived.
    pub fn received(&self, source: Source, cluster: &str, n: u64) {
        self.received
            .get_or_create(&Self::key(source, cluster))
            .inc_by(n);
    }

    /// Events or batches refused.
    pub fn rejected(&self, source: Source, cluster: &str, n: u64) {
        self.rejected
            .get_or_create(&Self::key(source, cluster))
            .inc_by(n);
    }

    /// A batch committed.
    pub fn committed(&self, source: Source, cluster: &str, stored: u64, dup: u64, took: Duration) {
        let key = Self::key(source, cluster);
        self.stored.get_or_create(&key).inc_by(stored);
        self.duplicates.get_or_create(&key).inc_by(dup);
        self.commit_seconds
            .get_or_create(&SourceLabel {
                source: source.as_str(),
            })
            .observe(took.as_secs_f64());
    }

    /// A batch the store refused.
    pub fn commit_failed(&self, source: Source, cluster: &str) {
        self.commit_failures
            .get_or_create(&Self::key(source, cluster))
            .inc();
    }

    /// A request refused by authentication.
    pub fn auth_failure(&self, reason: &'static str) {
        self.auth_failures
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// An agent's status arrived.
    pub fn agent_status(
        &self,
        cluster: &str,
        node: &str,
        status: &kubetrail_api::wire::AgentStatus,
        new_gaps: u64,
    ) {
        let labels = AgentLabels {
            cluster: cluster.to_string(),
            node: node.to_string(),
        };
        let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.agent_lag
            .get_or_create(&labels)
            .set(clamp(status.lag_bytes));
        self.agent_pending_files
            .get_or_create(&labels)
            .set(clamp(status.pending_files));
        self.agent_dropped
            .get_or_create(&labels)
            .set(clamp(status.dropped_bytes));
        self.agent_gaps.get_or_create(&labels).inc_by(new_gaps);
    }

    fn encode(&self, store_bytes: u64, store_events: u64) -> Result<String, std::fmt::Error> {
        self.store_bytes
            .set(i64::try_from(store_bytes).unwrap_or(i64::MAX));
        self.store_events
            .set(i64::try_from(store_events).unwrap_or(i64::MAX));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// `GET /metrics`.
pub(crate) async fn render(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let store = state.store.clone();
    let (bytes, events) = tokio::task::spawn_blocking(move || {
        Ok::<_, kubetrail_store::Error>((store.size_bytes()?, store.count()?))
    })
    .await
    .map_err(|e| ApiError::internal(format!("the metrics task failed: {e}")))?
    .map_err(|e| ApiError::store("measuring the store", &e))?;
    let text = state
        .metrics
        .encode(bytes, events)
        .map_err(|_| ApiError::internal("encoding the metrics failed"))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}
