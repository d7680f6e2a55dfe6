//! `kubetrail serve`: the HTTP side of kubetrail. It receives the apiserver's webhook batches
//! and the agents' batches, commits them to a [`Store`] before acknowledging, answers the query
//! and report API, and exposes health and Prometheus metrics — all behind bearer-token or
//! client-certificate authentication ([`auth`]).
//!
//! It also serves the web UI ([`web`]): pages rendered by `kubetrail-ui` behind a sign-in.
//!
//! Handlers only translate between HTTP and the store, report, API and UI crates; what a report
//! means or how a filter is written lives there.
//!
//! What a client may hold or send is bounded: connections at once and the time to send a
//! request's head ([`ConnectionLimits`], applied by [`serve_with`]); the length of the URL and
//! the time to send the body ([`RequestLimits`], checked for every route before
//! authentication); the body's size ([`Limits`]); and the values of a filter
//! ([`kubetrail_api::params`]).

mod agents;
mod alerts;
pub mod auth;
mod commit;
pub mod detection;
mod error;
mod ingest;
pub mod integrity;
pub mod metrics;
mod query;
pub mod rbac;
pub mod tls;
pub mod web;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use kubetrail_api::paths;
use kubetrail_store::Store;

pub use agents::AgentBook;
pub use auth::{Authenticator, Principal, Role, TokenEntry, load_tokens};
pub use detection::{Detector, RuleLoader, RuleSummary};
pub use error::ApiError;
pub use metrics::Metrics;
pub use query::OPENAPI_JSON;
pub use rbac::RbacSource;
pub use tls::{ConnectionLimits, ServeError, TlsFiles, serve, serve_with};
pub use web::UiSettings;

/// Default largest request body: a 400-event webhook batch of RequestResponse events, each up
/// to the apiserver's default truncation size (100 KiB), with room to spare.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 << 20;

/// Limits on what a request may carry.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request body, and largest decompressed agent batch.
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// Default longest URL (path and query) a request may have: as much as common proxies take.
pub const DEFAULT_MAX_URL_BYTES: usize = 8 << 10;

/// Default time a client has to send a request's body, from the moment its head arrived.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Limits on how a request arrives, checked for every route before authentication.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// Longest path and query in bytes; a longer one is answered 414.
    pub max_url_bytes: usize,
    /// Time from the request's head to its body's last byte; a slower body is answered 408
    /// and the connection closed.
    pub body_read_timeout: Duration,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            max_url_bytes: DEFAULT_MAX_URL_BYTES,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
        }
    }
}

/// Everything the handlers share.
pub struct AppState {
    /// Where events go and come from.
    pub store: Arc<dyn Store>,
    /// Who may do what.
    pub auth: Authenticator,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Request limits.
    pub limits: Limits,
    /// URL length and body read time.
    pub requests: RequestLimits,
    /// Agents' statuses and the gaps they reported.
    pub agents: AgentBook,
    /// Web UI settings.
    pub ui: UiSettings,
    /// Web UI sessions.
    pub sessions: web::Sessions,
    /// Live detection, when it runs.
    pub detector: Option<Arc<Detector>>,
    /// Takes secrets out of ingested events before they are stored; `None` stores them as
    /// received (`serve --no-redact`).
    pub redactor: Option<Arc<kubetrail_redact::Redactor>>,
    /// The cluster's RBAC, for the RBAC endpoints and the user page's permissions; `None`
    /// when the server was given none.
    pub rbac: Option<Arc<RbacSource>>,
    /// The hash chain's checks, when the store is linked into one.
    pub integrity: Option<Arc<integrity::Integrity>>,
    recent: ingest::RecentBatches,
    committer: commit::Committer,
    /// The clusters the store holds events of, for the pages' cluster picker: read from the
    /// store once, then grown by every committed batch.
    clusters: KnownClusters,
    /// The resources the store names, for resolving resource names in questions.
    pub(crate) resources: kubetrail_report::ResourceCache,
}

/// The clusters the store holds events of (`None` until first read).
#[derive(Default)]
pub(crate) struct KnownClusters(std::sync::Mutex<Option<std::collections::BTreeSet<String>>>);

impl KnownClusters {
    /// Every known cluster, read from `store` the first time.
    pub(crate) fn all(&self, store: &dyn Store) -> kubetrail_store::Result<Vec<String>> {
        let mut known = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if known.is_none() {
            let counts = store.aggregate(
                &kubetrail_store::Filter::default(),
                &kubetrail_store::Aggregation::CountBy {
                    fields: vec![kubetrail_store::Field::Cluster],
                    limit: None,
                },
            )?;
            *known = Some(
                counts
                    .groups()
                    .iter()
                    .filter_map(|g| g.keys.first().cloned())
                    .collect(),
            );
        }
        Ok(known.iter().flatten().cloned().collect())
    }

    /// A batch of `cluster` was committed.
    pub(crate) fn add(&self, cluster: &str) {
        let mut known = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(set) = known.as_mut()
            && !set.contains(cluster)
        {
            set.insert(cluster.to_string());
        }
    }
}

impl AppState {
    /// State over `store`; agents' gaps are kept in `state_dir` (in memory only when `None`).
    pub fn new(
        store: Arc<dyn Store>,
        auth: Authenticator,
        limits: Limits,
        state_dir: Option<PathBuf>,
    ) -> std::io::Result<Self> {
        let metrics = Metrics::new();
        // Every store call — ingest, the API, the pages, readiness — is timed in one place.
        let store: Arc<dyn Store> = Arc::new(kubetrail_store::metered::Metered::new(
            store,
            Arc::new(metrics.store_operations()),
        ));
        Ok(AppState {
            committer: commit::Committer::start(store.clone())?,
            store,
            auth,
            metrics,
            limits,
            requests: RequestLimits::default(),
            agents: AgentBook::open(state_dir)?,
            ui: UiSettings::default(),
            sessions: web::Sessions::default(),
            detector: None,
            redactor: None,
            rbac: None,
            integrity: None,
            recent: ingest::RecentBatches::new(4096),
            clusters: KnownClusters::default(),
            resources: kubetrail_report::ResourceCache::default(),
        })
    }

    /// The same state with these web UI settings.
    pub fn with_ui(mut self, ui: UiSettings) -> Self {
        self.ui = ui;
        self
    }

    /// The same state with live detection by the rules `loader` loads: every committed event
    /// is evaluated after its commit. Fails when the rules do not load.
    pub fn with_detection(self, loader: RuleLoader) -> Result<Self, String> {
        self.with_detection_notifying(loader, None)
    }

    /// [`with_detection`](Self::with_detection), announcing new alerts to `notifier`'s sinks.
    pub fn with_detection_notifying(
        mut self,
        loader: RuleLoader,
        notifier: Option<Arc<kubetrail_notify::Notifier>>,
    ) -> Result<Self, String> {
        let detector = Arc::new(Detector::start(
            self.store.clone(),
            loader,
            self.metrics.detection(),
            notifier,
        )?);
        if !self.committer.detect_with(detector.clone()) {
            return Err("detection runs already".into());
        }
        self.detector = Some(detector);
        Ok(self)
    }

    /// The same state redacting every ingested event with `redactor` before it is stored.
    pub fn with_redaction(mut self, redactor: Arc<kubetrail_redact::Redactor>) -> Self {
        self.redactor = Some(redactor);
        self
    }

    /// The same state answering RBAC questions over `source`.
    pub fn with_rbac(mut self, source: Arc<RbacSource>) -> Self {
        self.rbac = Some(source);
        self
    }

    /// The same state checking the hash chain's newest links, signed by `key`, as it runs
    /// ([`integrity`]).
    pub fn with_integrity(mut self, key: kubetrail_trust::PublicKey) -> Self {
        self.integrity = Some(integrity::Integrity::start(
            self.store.clone(),
            key,
            self.metrics.integrity(),
        ));
        self
    }

    /// The same state with these URL and body-time limits.
    pub fn with_request_limits(mut self, requests: RequestLimits) -> Self {
        self.requests = requests;
        self
    }
}

/// How long a read of the store may take before the request is answered 503: a query the
/// store cannot finish holds a blocking thread, not the caller.
pub const STORE_ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `f` over the store on the blocking pool, within [`STORE_ANSWER_TIMEOUT`]: the one way
/// handlers and pages call the store.
pub(crate) async fn on_store<T: Send + 'static>(
    state: &Arc<AppState>,
    f: impl FnOnce(&dyn Store) -> T + Send + 'static,
) -> Result<T, ApiError> {
    let store = state.store.clone();
    let task = tokio::task::spawn_blocking(move || f(store.as_ref()));
    match tokio::time::timeout(STORE_ANSWER_TIMEOUT, task).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => Err(ApiError::internal(format!("the store task failed: {e}"))),
        Err(_) => Err(ApiError {
            status: axum::http::StatusCode::SERVICE_UNAVAILABLE,
            reason: format!(
                "the store did not answer within {} s",
                STORE_ANSWER_TIMEOUT.as_secs()
            ),
        }),
    }
}

/// The router: every route with its role.
pub fn router(state: Arc<AppState>) -> Router {
    let ingest = Router::new()
        .route(paths::WEBHOOK, post(ingest::webhook))
        .route(paths::EVENTS, post(ingest::agent_batch))
        .route(paths::AGENT_STATUS, post(agents::report))
        .layer(DefaultBodyLimit::max(state.limits.max_body_bytes))
        .route_layer(from_fn_with_state(state.clone(), auth::require_ingest));
    let read = Router::new()
        .route(paths::EVENTS, get(query::events))
        .route(paths::AGGREGATE, get(query::aggregate))
        .route(paths::HISTORY, get(query::history))
        .route(paths::CHANGES, get(query::changes))
        .route(&format!("{}/{{name}}", paths::REPORTS), get(query::report))
        .route(paths::ALERTS, get(alerts::alerts))
        .route(paths::RULES, get(alerts::rules))
        .route(paths::RBAC_SUGGEST, get(rbac::suggest))
        .route(paths::RBAC_UNUSED, get(rbac::unused))
        .route(paths::VERIFY, post(integrity::verify))
        .route(paths::CHAIN_PUBLIC_KEYS, get(integrity::public_keys))
        .route(paths::CHAIN_CHECKPOINT, get(integrity::checkpoint))
        .route(paths::GAPS, get(agents::gaps))
        .route(paths::AGENTS, get(agents::list))
        .route(paths::METRICS, get(metrics::render))
        .route(paths::OPENAPI, get(query::openapi))
        .route_layer(from_fn_with_state(state.clone(), auth::require_read));
    let open = Router::new()
        .route(paths::HEALTHZ, get(|| async { "ok" }))
        .route(paths::READYZ, get(query::ready))
        .route("/login", get(web::login_form).post(web::login))
        .route("/logout", post(web::logout))
        .route(kubetrail_ui::STYLE_PATH, get(web::style))
        .route(kubetrail_ui::ICON_PATH, get(web::icon));
    let mut pages = Router::new();
    for page in kubetrail_ui::Page::ALL {
        pages = pages.route(page.path(), get(web::page));
    }
    let pages = pages.route_layer(from_fn_with_state(state.clone(), web::require_viewer));
    // GET and POST on /api/v1/audit/events need different roles: merge keeps both.
    ingest
        .merge(read)
        .merge(pages)
        .merge(open)
        .fallback(|| async { ApiError::not_found() })
        .layer(from_fn_with_state(state.clone(), error::limit_requests))
        .with_state(state)
}
