//! The API's paths and headers: one place, so the server's router, the client and the OpenAPI
//! document cannot drift apart.

/// The apiserver's webhook backend posts `EventList` batches here (`?cluster=NAME` optional).
pub const WEBHOOK: &str = "/api/v1/audit/webhook";
/// `POST`: agent batches (NDJSON, optionally gzip); `GET`: events matching a filter.
pub const EVENTS: &str = "/api/v1/audit/events";
/// Counts by fields, top-N, histograms.
pub const AGGREGATE: &str = "/api/v1/audit/aggregate";
/// Every write to one object.
pub const HISTORY: &str = "/api/v1/audit/history";
/// The newest writes of a scope with what each changed, newest first.
pub const CHANGES: &str = "/api/v1/audit/changes";
/// `GET /api/v1/audit/reports/{overview|resources|users|failures}`.
pub const REPORTS: &str = "/api/v1/audit/reports";
/// Agents post their status (lag, drops, gaps) here.
pub const AGENT_STATUS: &str = "/api/v1/agents/status";
/// Each agent's last status.
pub const AGENTS: &str = "/api/v1/agents";
/// Collection gaps agents reported.
pub const GAPS: &str = "/api/v1/agents/gaps";
/// Alerts the detection rules raised.
pub const ALERTS: &str = "/api/v1/alerts";
/// The detection rules `serve` runs.
pub const RULES: &str = "/api/v1/rules";
/// The least-privilege RBAC objects a subject's requests need.
pub const RBAC_SUGGEST: &str = "/api/v1/rbac/suggest";
/// What a subject's bindings grant, each permission used or not.
pub const RBAC_UNUSED: &str = "/api/v1/rbac/unused";
/// `POST`: verify the store's hash chains (`kubetrail verify --server`).
pub const VERIFY: &str = "/api/v1/verify";
/// `GET`: the public keys (PEM) of the store's hash chains.
pub const CHAIN_PUBLIC_KEYS: &str = "/api/v1/chain/public-keys";
/// `GET`: the signed head of each of the store's hash chains (`verify --export-checkpoint`).
pub const CHAIN_CHECKPOINT: &str = "/api/v1/chain/checkpoint";
/// `GET`: the OpenAPI document.
pub const OPENAPI: &str = "/api/v1/openapi.json";
/// Liveness.
pub const HEALTHZ: &str = "/healthz";
/// Readiness: the store answers.
pub const READYZ: &str = "/readyz";
/// Prometheus metrics.
pub const METRICS: &str = "/metrics";

/// The most events one `GET` of [`EVENTS`] returns; longer answers continue with the cursor.
pub const MAX_PAGE_SIZE: usize = 5000;

/// The most writes one `GET` of [`CHANGES`] returns (`limit`).
pub const MAX_CHANGES: usize = 10_000;

/// Header carrying an agent batch's idempotency key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The most writes one `GET` of [`HISTORY`] returns (`limit`).
pub const MAX_HISTORY: usize = 100_000;
