//! Prometheus metrics (OpenMetrics text at `/metrics`): events received, stored, duplicate and
//! rejected by source and cluster; batch commit latency; store size; authentication failures;
//! and what agents report about themselves (lag, pending files, dropped bytes, gaps).
//!
//! A caller bound to a cluster is shown only that cluster's series (and `auth_failures`,
//! which concerns the server, not a cluster), so one Prometheus job per cluster can scrape
//! with that cluster's read token; series that add up every cluster are left out for it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Extension, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::auth::Principal;
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

#[derive(Debug, Clone, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct SourceCluster {
    source: &'static str,
    cluster: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct ClusterLabel {
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
struct OperationLabel {
    operation: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationErrorLabels {
    operation: &'static str,
    kind: &'static str,
}

/// Every store operation's time and failures (all clusters together), fed by the
/// [`Metered`](kubetrail_store::metered::Metered) store the server wraps its store in.
#[derive(Clone)]
pub struct StoreOperations {
    seconds: Family<OperationLabel, Histogram, fn() -> Histogram>,
    errors: Family<OperationErrorLabels, Counter>,
}

impl kubetrail_store::metered::Observer for StoreOperations {
    fn observe(
        &self,
        op: kubetrail_store::metered::Operation,
        elapsed: std::time::Duration,
        outcome: Result<(), kubetrail_store::ErrorKind>,
    ) {
        let operation = op.as_str();
        self.seconds
            .get_or_create(&OperationLabel { operation })
            .observe(elapsed.as_secs_f64());
        if let Err(kind) = outcome {
            let kind = match kind {
                kubetrail_store::ErrorKind::Invalid => "invalid",
                kubetrail_store::ErrorKind::Unavailable => "unavailable",
                kubetrail_store::ErrorKind::Internal => "internal",
            };
            self.errors
                .get_or_create(&OperationErrorLabels { operation, kind })
                .inc();
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct AgentLabels {
    cluster: String,
    node: String,
}

fn commit_histogram() -> Histogram {
    // 1 ms to about 16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// The series labelled with a cluster: what a token bound to that cluster may see of them.
#[derive(Default, Clone)]
struct ClusterFamilies {
    received: Family<SourceCluster, Counter>,
    stored: Family<SourceCluster, Counter>,
    duplicates: Family<SourceCluster, Counter>,
    conflicts: Family<SourceCluster, Counter>,
    rejected: Family<SourceCluster, Counter>,
    commit_failures: Family<SourceCluster, Counter>,
    last_event: Family<ClusterLabel, Gauge>,
    agent_lag: Family<AgentLabels, Gauge>,
    agent_pending_files: Family<AgentLabels, Gauge>,
    agent_dropped: Family<AgentLabels, Counter>,
    agent_gaps: Family<AgentLabels, Counter>,
}

impl ClusterFamilies {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "events_received",
            "Audit events received",
            self.received.clone(),
        );
        registry.register(
            "events_stored",
            "Audit events newly stored",
            self.stored.clone(),
        );
        registry.register(
            "events_duplicate",
            "Audit events received again (already stored)",
            self.duplicates.clone(),
        );
        registry.register(
            "events_conflicting",
            "Audit events stored that claim the identity (auditID, stage, time) of a different stored event",
            self.conflicts.clone(),
        );
        registry.register(
            "events_rejected",
            "Lines or batches refused as not audit events",
            self.rejected.clone(),
        );
        registry.register(
            "batch_commit_failures",
            "Batches the store could not commit (answered 5xx)",
            self.commit_failures.clone(),
        );
        registry.register(
            "last_event_timestamp_seconds",
            "Event time of the newest audit event committed from the cluster since the server started, in seconds since the epoch: alert when it stops advancing",
            self.last_event.clone(),
        );
        // What agents report, under a prefix of the server's own: `kubetrail_agent_*` belongs
        // to the agent's `--metrics-listen` (one owner per name).
        registry.register(
            "agent_status_lag_bytes",
            "Bytes an agent has read from its log but not yet had acknowledged",
            self.agent_lag.clone(),
        );
        registry.register(
            "agent_status_pending_files",
            "Files an agent has not yet fully shipped",
            self.agent_pending_files.clone(),
        );
        registry.register(
            "agent_status_dropped_bytes",
            "Bytes of audit log an agent reports lost",
            self.agent_dropped.clone(),
        );
        registry.register(
            "agent_status_gaps",
            "Collection gaps reported by agents",
            self.agent_gaps.clone(),
        );
    }

    /// A copy holding only the series of `cluster`, from the label sets in `seen`.
    fn only(&self, cluster: &str, seen: &Seen) -> ClusterFamilies {
        let out = ClusterFamilies::default();
        let counter = |from: &Family<SourceCluster, Counter>,
                       to: &Family<SourceCluster, Counter>,
                       key: &SourceCluster| {
            if let Some(c) = from.get(key) {
                to.get_or_create(key).inc_by(c.get());
            }
        };
        for key in seen.sources.iter().filter(|k| k.cluster == cluster) {
            counter(&self.received, &out.received, key);
            counter(&self.stored, &out.stored, key);
            counter(&self.duplicates, &out.duplicates, key);
            counter(&self.conflicts, &out.conflicts, key);
            counter(&self.rejected, &out.rejected, key);
            counter(&self.commit_failures, &out.commit_failures, key);
        }
        let label = ClusterLabel {
            cluster: cluster.to_string(),
        };
        if let Some(g) = self.last_event.get(&label) {
            out.last_event.get_or_create(&label).set(g.get());
        }
        let gauge = |from: &Family<AgentLabels, Gauge>,
                     to: &Family<AgentLabels, Gauge>,
                     key: &AgentLabels| {
            if let Some(g) = from.get(key) {
                to.get_or_create(key).set(g.get());
            }
        };
        for key in seen.agents.iter().filter(|k| k.cluster == cluster) {
            gauge(&self.agent_lag, &out.agent_lag, key);
            gauge(&self.agent_pending_files, &out.agent_pending_files, key);
            for (from, to) in [
                (&self.agent_dropped, &out.agent_dropped),
                (&self.agent_gaps, &out.agent_gaps),
            ] {
                if let Some(c) = from.get(key) {
                    to.get_or_create(key).inc_by(c.get());
                }
            }
        }
        out
    }
}

/// Every cluster-labelled label set used so far (families cannot be listed).
#[derive(Default)]
struct Seen {
    sources: BTreeSet<SourceCluster>,
    agents: BTreeSet<AgentLabels>,
    /// Each agent's last reported `dropped_bytes` (a total it keeps in its checkpoint), so the
    /// counter grows by what is new.
    dropped: BTreeMap<AgentLabels, u64>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabels {
    rule: String,
    severity: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabel {
    rule: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

/// What live detection counts (all clusters together: hidden from cluster-bound tokens).
#[derive(Clone, Default)]
pub struct DetectionMetrics {
    events: Counter,
    skipped: Counter,
    alerts_raised: Family<RuleLabels, Counter>,
    rule_errors: Family<RuleLabel, Counter>,
    alerts_stored: Counter,
    alerts_dropped: Counter,
    alerts_unsaved: Gauge,
    rules: Gauge,
    reloads: Family<OutcomeLabel, Counter>,
    /// When a skip was last logged (seconds since the epoch), to log at most every 10 s.
    last_skip_log: Arc<std::sync::atomic::AtomicI64>,
}

impl DetectionMetrics {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "detection_events",
            "Committed events the detection rules evaluated (replays after a start or reload included)",
            self.events.clone(),
        );
        registry.register(
            "detection_skipped_events",
            "Committed events not evaluated live because detection was behind (they are stored)",
            self.skipped.clone(),
        );
        registry.register(
            "alerts_raised",
            "Alerts a rule raised, by rule and severity (raised again on replay included)",
            self.alerts_raised.clone(),
        );
        registry.register(
            "detection_rule_errors",
            "Events on which a rule's expression failed (the rule did not fire), by rule",
            self.rule_errors.clone(),
        );
        registry.register(
            "alerts_stored",
            "Alerts stored that the store did not hold yet",
            self.alerts_stored.clone(),
        );
        registry.register(
            "alerts_dropped",
            "Alerts dropped because the store refused them for too long",
            self.alerts_dropped.clone(),
        );
        registry.register(
            "alerts_unsaved",
            "Alerts waiting for the store to take them",
            self.alerts_unsaved.clone(),
        );
        registry.register(
            "detection_rules",
            "Detection rules running",
            self.rules.clone(),
        );
        registry.register(
            "detection_reloads",
            "Rule reloads, by outcome (applied, refused)",
            self.reloads.clone(),
        );
    }

    pub(crate) fn evaluated(&self, n: usize) {
        self.events.inc_by(n as u64);
    }

    /// Counts skipped events; true when the skip should be logged (at most every 10 s).
    pub(crate) fn skipped(&self, n: usize) -> bool {
        self.skipped.inc_by(n as u64);
        let now = chrono::Utc::now().timestamp();
        let last = self
            .last_skip_log
            .load(std::sync::atomic::Ordering::Relaxed);
        now >= last + 10
            && self
                .last_skip_log
                .compare_exchange(
                    last,
                    now,
                    std::sync::atomic::Ordering::Relaxed,
                    std::sync::atomic::Ordering::Relaxed,
                )
                .is_ok()
    }

    pub(crate) fn rule_counts(
        &self,
        rule: &str,
        severity: kubetrail_detect::Severity,
        raised: u64,
        errors: u64,
    ) {
        if raised > 0 {
            self.alerts_raised
                .get_or_create(&RuleLabels {
                    rule: rule.to_string(),
                    severity: severity.as_str(),
                })
                .inc_by(raised);
        }
        if errors > 0 {
            self.rule_errors
                .get_or_create(&RuleLabel {
                    rule: rule.to_string(),
                })
                .inc_by(errors);
        }
    }

    pub(crate) fn stored(&self, n: usize) {
        self.alerts_stored.inc_by(n as u64);
    }

    pub(crate) fn dropped(&self, n: usize) {
        self.alerts_dropped.inc_by(n as u64);
    }

    pub(crate) fn unsaved(&self, n: usize) {
        self.alerts_unsaved.set(n as i64);
    }

    pub(crate) fn rules_loaded(&self, n: usize) {
        self.rules.set(n as i64);
    }

    pub(crate) fn reloaded(&self, applied: bool) {
        self.reloads
            .get_or_create(&OutcomeLabel {
                outcome: if applied { "applied" } else { "refused" },
            })
            .inc();
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkLabel {
    sink: String,
}

/// What the alert sinks report (server-wide: hidden from cluster-bound tokens).
#[derive(Clone, Default)]
pub struct NotifyMetrics {
    delivered: Family<SinkLabel, Counter>,
    failures: Family<SinkLabel, Counter>,
    dropped: Family<SinkLabel, Counter>,
    pending: Family<SinkLabel, Gauge>,
}

impl NotifyMetrics {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "notify_delivered",
            "Alert notifications a sink took, by sink",
            self.delivered.clone(),
        );
        registry.register(
            "notify_failures",
            "Delivery attempts to a sink that failed (the notifications stay in its outbox), by sink",
            self.failures.clone(),
        );
        registry.register(
            "notify_dropped",
            "Alert notifications dropped because a sink's outbox was full, by sink",
            self.dropped.clone(),
        );
        registry.register(
            "notify_pending",
            "Alert notifications waiting in a sink's outbox, by sink",
            self.pending.clone(),
        );
    }
}

impl kubetrail_notify::Observer for NotifyMetrics {
    fn delivered(&self, sink: &str, n: usize) {
        self.delivered
            .get_or_create(&SinkLabel { sink: sink.into() })
            .inc_by(n as u64);
    }
    fn failed(&self, sink: &str) {
        self.failures
            .get_or_create(&SinkLabel { sink: sink.into() })
            .inc();
    }
    fn dropped(&self, sink: &str, n: usize) {
        self.dropped
            .get_or_create(&SinkLabel { sink: sink.into() })
            .inc_by(n as u64);
    }
    fn pending(&self, sink: &str, n: usize) {
        self.pending
            .get_or_create(&SinkLabel { sink: sink.into() })
            .set(n as i64);
    }
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    clusters: ClusterFamilies,
    seen: Mutex<Seen>,
    commit_seconds: Family<SourceLabel, Histogram, fn() -> Histogram>,
    auth_failures: Family<ReasonLabel, Counter>,
    store_bytes: Gauge,
    store_events: Gauge,
    store_damaged: Gauge,
    store_recovered_wal_bytes: Gauge,
    store_operations: StoreOperations,
    detection: DetectionMetrics,
    notify: NotifyMetrics,
    integrity: crate::integrity::IntegrityMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

const AUTH_FAILURES: (&str, &str) = (
    "auth_failures",
    "Requests refused by authentication (401) or role (403)",
);

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("kubetrail");
        let m = Metrics {
            clusters: ClusterFamilies::default(),
            seen: Mutex::default(),
            commit_seconds: Family::new_with_constructor(commit_histogram),
            auth_failures: Family::default(),
            store_bytes: Gauge::default(),
            store_events: Gauge::default(),
            store_damaged: Gauge::default(),
            store_recovered_wal_bytes: Gauge::default(),
            store_operations: StoreOperations {
                seconds: Family::new_with_constructor(commit_histogram),
                errors: Family::default(),
            },
            detection: DetectionMetrics::default(),
            notify: NotifyMetrics::default(),
            integrity: crate::integrity::IntegrityMetrics::default(),
            registry: Registry::default(),
        };
        m.clusters.register(&mut registry);
        m.detection.register(&mut registry);
        m.notify.register(&mut registry);
        m.integrity.register(&mut registry);
        registry.register(
            "batch_commit_seconds",
            "Time to commit one batch to the store",
            m.commit_seconds.clone(),
        );
        registry.register(AUTH_FAILURES.0, AUTH_FAILURES.1, m.auth_failures.clone());
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
            "store_damaged",
            "1 when the store reported damage: batches are refused and /readyz fails until it is repaired and kubetrail restarted",
            m.store_damaged.clone(),
        );
        registry.register(
            "store_recovered_wal_bytes",
            "Bytes of a write-ahead log that did not replay to its end when the store opened (kept aside; events committed in its lost part are missing); 0 when none",
            m.store_recovered_wal_bytes.clone(),
        );
        registry.register(
            "store_operation_seconds",
            "Time of each store operation (append, query, aggregate, ...), pages and API alike",
            m.store_operations.seconds.clone(),
        );
        registry.register(
            "store_operation_errors",
            "Store operations that failed, by operation and kind (invalid, unavailable, internal)",
            m.store_operations.errors.clone(),
        );
        Metrics { registry, ..m }
    }

    /// What the alert sinks report to.
    pub fn notify(&self) -> NotifyMetrics {
        self.notify.clone()
    }

    /// What the hash chain's checks report to.
    pub fn integrity(&self) -> crate::integrity::IntegrityMetrics {
        self.integrity.clone()
    }

    /// What live detection reports to.
    pub fn detection(&self) -> DetectionMetrics {
        self.detection.clone()
    }

    /// What the server's [`Metered`](kubetrail_store::metered::Metered) store reports to.
    pub fn store_operations(&self) -> StoreOperations {
        self.store_operations.clone()
    }

    fn key(&self, source: Source, cluster: &str) -> SourceCluster {
        let key = SourceCluster {
            source: source.as_str(),
            cluster: cluster.to_string(),
        };
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if !seen.sources.contains(&key) {
            seen.sources.insert(key.clone());
        }
        key
    }

    /// Events arrived.
    pub fn received(&self, source: Source, cluster: &str, n: u64) {
        self.clusters
            .received
            .get_or_create(&self.key(source, cluster))
            .inc_by(n);
    }

    /// Events or batches refused.
    pub fn rejected(&self, source: Source, cluster: &str, n: u64) {
        self.clusters
            .rejected
            .get_or_create(&self.key(source, cluster))
            .inc_by(n);
    }

    /// A batch committed; `newest_micros` is the event time of its newest event.
    pub fn committed(
        &self,
        source: Source,
        cluster: &str,
        outcome: &kubetrail_store::AppendOutcome,
        newest_micros: Option<i64>,
        took: Duration,
    ) {
        let key = self.key(source, cluster);
        let families = &self.clusters;
        if let Some(newest) = newest_micros {
            let last = families.last_event.get_or_create(&ClusterLabel {
                cluster: cluster.to_string(),
            });
            // A backfill of older events does not move it back.
            last.set(last.get().max(newest.div_euclid(1_000_000)));
        }
        families.stored.get_or_create(&key).inc_by(outcome.stored);
        families
            .duplicates
            .get_or_create(&key)
            .inc_by(outcome.duplicates);
        // Created with the others, so that a dashboard finds the series at 0.
        families
            .conflicts
            .get_or_create(&key)
            .inc_by(outcome.conflicts);
        self.commit_seconds
            .get_or_create(&SourceLabel {
                source: source.as_str(),
            })
            .observe(took.as_secs_f64());
    }

    /// A batch the store refused.
    pub fn commit_failed(&self, source: Source, cluster: &str) {
        self.clusters
            .commit_failures
            .get_or_create(&self.key(source, cluster))
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
        let new_dropped = {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            if !seen.agents.contains(&labels) {
                seen.agents.insert(labels.clone());
            }
            let last = seen
                .dropped
                .insert(labels.clone(), status.dropped_bytes)
                .unwrap_or(0);
            // A total below the last one is an agent that started over (a new checkpoint):
            // all it reports is new.
            if status.dropped_bytes >= last {
                status.dropped_bytes - last
            } else {
                status.dropped_bytes
            }
        };
        let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let c = &self.clusters;
        c.agent_lag
            .get_or_create(&labels)
            .set(clamp(status.lag_bytes));
        c.agent_pending_files
            .get_or_create(&labels)
            .set(clamp(status.pending_files));
        c.agent_dropped.get_or_create(&labels).inc_by(new_dropped);
        c.agent_gaps.get_or_create(&labels).inc_by(new_gaps);
    }

    /// Every series, for a caller who may read every cluster.
    fn encode(&self, store: &StoreHealth) -> Result<String, std::fmt::Error> {
        let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.store_bytes.set(gauge(store.bytes));
        self.store_events.set(gauge(store.events));
        self.store_damaged.set(i64::from(store.damaged));
        self.store_recovered_wal_bytes
            .set(gauge(store.recovered_wal_bytes));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    /// What a caller bound to `cluster` may see: the series labelled with that cluster, and
    /// of the others only `auth_failures`, which is about the server itself. The commit
    /// latency histogram and the store's size and event count add up every cluster's traffic,
    /// so they are left out.
    pub fn encode_for_cluster(&self, cluster: &str) -> Result<String, std::fmt::Error> {
        let only = {
            let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            self.clusters.only(cluster, &seen)
        };
        let mut registry = Registry::with_prefix("kubetrail");
        only.register(&mut registry);
        registry.register(AUTH_FAILURES.0, AUTH_FAILURES.1, self.auth_failures.clone());
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry)?;
        Ok(out)
    }
}

/// What `/metrics` says of the store itself.
struct StoreHealth {
    bytes: u64,
    events: u64,
    damaged: bool,
    recovered_wal_bytes: u64,
}

/// `GET /metrics`.
pub(crate) async fn render(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
) -> Result<Response, ApiError> {
    let text = match &principal.cluster {
        Some(bound) => state.metrics.encode_for_cluster(bound),
        None => {
            let damaged = state.committer.failure().is_some();
            let (bytes, events, recovered) = crate::on_store(&state, move |store| {
                let recovered = store.recovery_report().map_or(0, |r| r.bytes);
                // A damaged store may not answer its size: the rest is still worth saying.
                let measured = store.size_bytes().and_then(|b| Ok((b, store.count()?)));
                match measured {
                    Ok((b, n)) => Ok((b, n, recovered)),
                    Err(_) if damaged => Ok((0, 0, recovered)),
                    Err(e) => Err(e),
                }
            })
            .await?
            .map_err(|e| ApiError::store("measuring the store", &e))?;
            state.metrics.encode(&StoreHealth {
                bytes,
                events,
                damaged,
                recovered_wal_bytes: recovered,
            })
        }
    }
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
