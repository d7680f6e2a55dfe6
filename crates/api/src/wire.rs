//! The JSON bodies of the API. Field names are camelCase, as in Kubernetes APIs.

use kubetrail_store::GroupCount;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The answer to an ingest (webhook or agent batch): sent only after the batch is committed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestReply {
    /// Events in the batch.
    pub received: u64,
    /// Events newly stored.
    pub stored: u64,
    /// Events the store already had.
    pub duplicates: u64,
    /// Of the stored events, those that claim the identity (cluster, auditID, stage, time) of
    /// a different stored event: kept, and marked as conflicting.
    #[serde(default)]
    pub conflicts: u64,
    /// Lines that are not audit events (agent batches only; a webhook batch with a bad event
    /// is refused whole).
    pub rejected: u64,
    /// The first reasons, as `line N: reason`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected_reasons: Vec<String>,
    /// True when the idempotency key was seen before and this is the earlier answer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replayed: bool,
}

/// An error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, naming the parameter or field.
    pub error: String,
}

/// One stored event.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventItem {
    /// The cluster it came from.
    pub cluster: String,
    /// When kubetrail received it (RFC 3339).
    pub received: String,
    /// The event time the store keys it by (RFC 3339): its stageTimestamp, or for an event
    /// that carries no timestamp the time kubetrail gave it (a file's time on import). Absent
    /// from servers older than this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// The auditID the store keys it by: the event's own, or for an event without one the
    /// stable synthetic id kubetrail gave it (the one event pages and filters use). Absent from
    /// servers older than this field.
    #[serde(rename = "auditID", default, skip_serializing_if = "Option::is_none")]
    pub audit_id: Option<String>,
    /// The event's JSON as stored.
    pub event: Box<RawValue>,
    /// What the write changed: in a history asked with `diff=true`, for every write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<kubetrail_diff::Step>,
}

/// A page of events, newest first (oldest first for history).
#[derive(Debug, Serialize, Deserialize)]
pub struct EventsPage {
    /// The events.
    pub items: Vec<EventItem>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// The answer of `GET /api/v1/audit/changes`: writes newest first, each with its `diff`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangesPage {
    /// The writes shown.
    pub items: Vec<EventItem>,
    /// Of the writes read, the no-op and dry-run ones left out (`noop=show` lists them).
    pub hidden: u64,
}

/// One histogram bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    /// Bucket start (RFC 3339).
    pub start: String,
    /// The split field's value, when split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Events in the bucket.
    pub count: u64,
}

/// The answer of `GET /api/v1/audit/aggregate`: groups for `by`, buckets for `histogram`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AggregateReply {
    /// The groups, largest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupCount>,
    /// The buckets, in time order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buckets: Vec<Bucket>,
}

/// A stretch of audit log an agent could not deliver: the one type the follower, the agent
/// and the server share.
pub use kubetrail_model::{Gap, GapReason};

/// What an agent reports periodically.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentStatus {
    /// Node the agent runs on.
    pub node: String,
    /// Cluster, when the agent's token does not say.
    #[serde(default)]
    pub cluster: String,
    /// Bytes written to the log but not yet acknowledged by the server.
    pub lag_bytes: u64,
    /// Files not yet fully shipped.
    pub pending_files: u64,
    /// Events shipped and acknowledged since the agent started.
    pub shipped_events: u64,
    /// Bytes lost so far (sum of the gaps' bytes).
    pub dropped_bytes: u64,
    /// Gaps not yet acknowledged by a server.
    #[serde(default)]
    pub gaps: Vec<Gap>,
}

/// The server's view of one agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentView {
    /// Cluster.
    pub cluster: String,
    /// The last status.
    pub status: AgentStatus,
    /// When it arrived (RFC 3339).
    pub seen_at: String,
}

/// `GET /api/v1/alerts`: alerts, newest first (ties by rule, then auditID).
#[derive(Debug, Serialize, Deserialize)]
pub struct AlertsReply {
    /// Each alert as `kubetrail detect -o json` writes it.
    pub alerts: Vec<Box<RawValue>>,
}

/// A detection rule, with the alerts it has raised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleItem {
    /// The id.
    pub id: String,
    /// The title.
    pub title: String,
    /// `info`, `low`, `medium`, `high` or `critical`.
    pub severity: String,
    /// The audit level its events must be logged at (`Metadata`, `Request`, `RequestResponse`).
    pub level: String,
    /// `stateless`, `threshold`, `sequence` or `table`.
    pub kind: String,
    /// What it detects and why.
    pub description: String,
    /// The upstream detections it covers, by source (`falco`, `panther`, `sigma`, `elastic`, `datadog`).
    pub references: serde_json::Map<String, serde_json::Value>,
    /// Its parameters and their values.
    pub parameters: serde_json::Map<String, serde_json::Value>,
    /// Alerts stored for it (of the clusters the caller may read).
    pub alerts: u64,
}

/// `GET /api/v1/rules`: the rules `serve` runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RulesReply {
    /// False when `serve` runs without detection (`noDetection`); no rules are listed then.
    pub detection: bool,
    /// The rules, in the order they run.
    pub rules: Vec<RuleItem>,
}
