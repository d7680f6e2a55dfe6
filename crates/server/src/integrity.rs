//! The trail's integrity while the server runs: every [`CHECK_EVERY`] the links made since the
//! last check are verified with the server's own public key and those the store keeps of
//! other writers (numbering, hashes and signatures
//! of every link; the events of the new ones), and the outcome is kept for the overview page
//! and `/metrics`. `POST /api/v1/verify` verifies on demand (`kubetrail verify --server`), with
//! the caller's keys and checkpoint.
//!
//! A problem once found stays reported until the server restarts: a later check of newer
//! links does not make an altered older one intact.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use axum::Json;
use axum::extract::{Extension, State};
use kubetrail_store::Store;
use kubetrail_trust::{Checkpoint, Options, PublicKey, Report};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Deserialize;

use crate::auth::Principal;
use crate::{ApiError, AppState};

/// How often the newest links are checked.
pub const CHECK_EVERY: Duration = Duration::from_secs(300);

/// How far back of the last check's start the next one looks again: a link committed while a
/// check ran is covered by the next.
const OVERLAP_MICROS: i64 = 60_000_000;

/// Problems kept for the overview.
const KEPT_PROBLEMS: usize = 20;

/// Distinct problems remembered (each counted once); beyond, new ones are not counted.
const MAX_SEEN: usize = 100_000;

/// What the checks count.
#[derive(Clone, Default)]
pub struct IntegrityMetrics {
    checks: Counter,
    failed_checks: Counter,
    problems: Gauge,
    intact: Gauge,
    last_check: Gauge,
    events_verified: Counter,
}

impl IntegrityMetrics {
    pub(crate) fn register(&self, registry: &mut Registry) {
        registry.register(
            "chain_checks",
            "Checks of the hash chain's newest links the server ran",
            self.checks.clone(),
        );
        registry.register(
            "chain_check_errors",
            "Checks of the hash chain that could not run (the store did not answer)",
            self.failed_checks.clone(),
        );
        registry.register(
            "chain_problems",
            "Problems the hash chain checks found since the server started (events changed, deleted or inserted, links missing or badly signed); 0 while intact",
            self.problems.clone(),
        );
        registry.register(
            "chain_intact",
            "1 while every check of the hash chain found it intact, 0 once one did not",
            self.intact.clone(),
        );
        registry.register(
            "chain_last_check_timestamp_seconds",
            "When the hash chain was last checked (seconds since the epoch)",
            self.last_check.clone(),
        );
        registry.register(
            "chain_verified_events",
            "Events the hash chain checks found as their links list them",
            self.events_verified.clone(),
        );
    }
}

/// What the checks found so far.
#[derive(Debug, Clone, Default)]
pub struct IntegrityStatus {
    /// When the last check ended (microseconds), if one did.
    pub checked_at_micros: Option<i64>,
    /// Distinct problems found since the start (at most 100,000 are told apart).
    pub problems: u64,
    /// The newest problems found: (cluster, what).
    pub first: Vec<(String, String)>,
    /// Per cluster: links and events verified by the last check that ran.
    pub clusters: Vec<(String, u64, u64)>,
    /// Why the last check could not run, if it could not.
    pub error: Option<String>,
    /// The problems counted, each once.
    seen: std::collections::HashSet<(String, String)>,
    /// The newest link of each chain (cluster, key) a check saw.
    heads: std::collections::HashMap<(String, String), u64>,
}

/// The server's checker.
pub struct Integrity {
    key: PublicKey,
    status: Mutex<IntegrityStatus>,
    metrics: IntegrityMetrics,
}

impl Integrity {
    /// Checks `store` every [`CHECK_EVERY`] with `key`, on a thread of its own that ends when
    /// the returned checker is dropped.
    pub fn start(store: Arc<dyn Store>, key: PublicKey, metrics: IntegrityMetrics) -> Arc<Self> {
        metrics.intact.set(1);
        let me = Arc::new(Integrity {
            key,
            status: Mutex::new(IntegrityStatus::default()),
            metrics,
        });
        let weak: Weak<Integrity> = Arc::downgrade(&me);
        let spawned = std::thread::Builder::new()
            .name("chain-check".into())
            .spawn(move || {
                // The first check looks at the last hour's links; later ones at what is new.
                let mut from = chrono::Utc::now().timestamp_micros() - 3_600_000_000;
                loop {
                    let Some(me) = weak.upgrade() else { return };
                    let started = chrono::Utc::now().timestamp_micros();
                    me.check(store.as_ref(), from);
                    from = started - OVERLAP_MICROS;
                    drop(me);
                    // Sleeps in short steps, to end soon after the server does.
                    for _ in 0..CHECK_EVERY.as_secs() {
                        std::thread::sleep(Duration::from_secs(1));
                        if weak.strong_count() == 0 {
                            return;
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "the hash chain checks could not start");
        }
        me
    }

    /// One check of the links made since `from_micros`, with the server's key and the keys the
    /// store keeps (other writers': an `import`, another server); `kubetrail verify
    /// --public-key` is the check against keys kept apart.
    pub fn check(&self, store: &dyn Store, from_micros: i64) {
        let mut keys = vec![self.key.clone()];
        if let Ok(stored) = store.chain_public_keys() {
            for pem in stored {
                match PublicKey::from_pem(&pem, std::path::Path::new("the store")) {
                    Ok(k) if !keys.contains(&k) => keys.push(k),
                    _ => {}
                }
            }
        }
        let options = Options {
            keys,
            created_from_micros: Some(from_micros),
            settled_before_micros: Some(chrono::Utc::now().timestamp_micros() - 120_000_000),
            ..Options::default()
        };
        let outcome = kubetrail_trust::verify(store, &options);
        let now = chrono::Utc::now().timestamp_micros();
        self.metrics.checks.inc();
        self.metrics.last_check.set(now / 1_000_000);
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        status.checked_at_micros = Some(now);
        match outcome {
            Ok(report) => {
                status.error = None;
                status.clusters = clusters_of(&report);
                let verified: u64 = report.chains.iter().map(|c| c.events_verified).sum();
                self.metrics.events_verified.inc_by(verified);
                let mut problems: Vec<(String, String)> = report
                    .problems
                    .iter()
                    .map(|p| (p.cluster.clone(), describe(p)))
                    .collect();
                // A chain whose head went back since an earlier check lost its newest links;
                // one no longer there lost them all.
                for ((cluster, key_id), seen) in &status.heads {
                    let there = report
                        .chains
                        .iter()
                        .any(|c| &c.cluster == cluster && &c.key_id == key_id);
                    if !there {
                        problems.push((
                            cluster.clone(),
                            format!(
                                "truncated: the chain of key {key_id} is gone, and this server saw its link {seen}"
                            ),
                        ));
                    }
                }
                for c in &report.chains {
                    let key = (c.cluster.clone(), c.key_id.clone());
                    let seen = status.heads.get(&key).copied().unwrap_or(0);
                    if c.head < seen {
                        problems.push((
                            c.cluster.clone(),
                            format!(
                                "truncated: the chain of key {} ends at link {}, and this server saw link {seen}: its newest links were removed",
                                c.key_id, c.head
                            ),
                        ));
                    }
                    status.heads.insert(key, c.head.max(seen));
                }
                // Each problem counts once, however many checks see it again.
                let mut new = 0;
                for p in &problems {
                    if status.seen.len() < MAX_SEEN && status.seen.insert(p.clone()) {
                        new += 1;
                        status.first.insert(0, p.clone());
                    }
                }
                status.first.truncate(KEPT_PROBLEMS);
                status.problems += new;
                if new > 0 {
                    tracing::error!(
                        new,
                        first = %problems[0].1,
                        "the hash chain is NOT INTACT: run `kubetrail verify` for every problem"
                    );
                }
                if status.problems > 0 {
                    self.metrics
                        .problems
                        .set(i64::try_from(status.problems).unwrap_or(i64::MAX));
                    self.metrics.intact.set(0);
                }
            }
            Err(e) => {
                self.metrics.failed_checks.inc();
                tracing::warn!(error = %e, "the hash chain check could not run");
                status.error = Some(e.to_string());
            }
        }
    }

    /// What the checks found so far.
    pub fn status(&self) -> IntegrityStatus {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

fn clusters_of(report: &Report) -> Vec<(String, u64, u64)> {
    let mut out: Vec<(String, u64, u64)> = Vec::new();
    for c in &report.chains {
        match out.iter_mut().find(|(name, _, _)| name == &c.cluster) {
            Some(entry) => {
                entry.1 += c.links;
                entry.2 += c.events_verified;
            }
            None => out.push((c.cluster.clone(), c.links, c.events_verified)),
        }
    }
    out
}

/// A problem in one line: kind, place, what.
pub fn describe(p: &kubetrail_trust::Problem) -> String {
    let kind = serde_json::to_value(p.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let mut place = String::new();
    if let Some(l) = p.link {
        place.push_str(&format!(" link {l}"));
    }
    if let Some(a) = &p.audit_id {
        place.push_str(&format!(" auditID {a}"));
    }
    format!("{kind}:{place} {}", p.detail)
}

/// The body of `POST /api/v1/verify`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct VerifyRequest {
    #[serde(default)]
    cluster: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    /// PEM public keys to check with; none: the store's.
    #[serde(default)]
    public_keys: Vec<String>,
    #[serde(default)]
    checkpoint: Option<Checkpoint>,
}

/// One verification at a time: it reads every event of the range.
static VERIFYING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// `POST /api/v1/verify`: the whole report, for a reader not bound to a cluster (it names
/// events of every cluster and namespace). One runs at a time; one that outlasts
/// [`crate::STORE_ANSWER_TIMEOUT`] is answered 503 and goes on to its end.
pub(crate) async fn verify(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    body: axum::body::Bytes,
) -> Result<Json<Report>, ApiError> {
    if principal.cluster.is_some() {
        return Err(ApiError::forbidden(
            "verifying the trail needs a token not bound to one cluster",
        ));
    }
    let request: VerifyRequest = if body.iter().all(u8::is_ascii_whitespace) {
        VerifyRequest::default()
    } else {
        let value: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("the request body: {e}")))?;
        if !value.is_object() {
            return Err(ApiError::bad_request(
                "the request body: not a JSON object".to_string(),
            ));
        }
        // A field is given or left out: `null` is neither, and is refused rather than read as
        // left out.
        if let Some((field, _)) = value
            .as_object()
            .and_then(|o| o.iter().find(|(_, v)| v.is_null()))
        {
            return Err(ApiError::bad_request(format!(
                "the request body: {field} is null (leave it out instead)"
            )));
        }
        serde_json::from_value(value)
            .map_err(|e| ApiError::bad_request(format!("the request body: {e}")))?
    };
    let time = |name: &str, v: &Option<String>| -> Result<Option<i64>, ApiError> {
        v.as_deref()
            .map(|t| {
                kubetrail_store::text::parse_time(t)
                    .map(|t| t.timestamp_micros())
                    .map_err(|e| ApiError::bad_request(format!("{name}: {e}")))
            })
            .transpose()
    };
    let keys = request
        .public_keys
        .iter()
        .enumerate()
        .map(|(i, pem)| {
            PublicKey::from_pem(pem, std::path::Path::new(&format!("publicKeys[{i}]")))
                .map_err(|e| ApiError::bad_request(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let options = Options {
        cluster: request.cluster.clone(),
        from_micros: time("from", &request.from)?,
        to_micros: time("to", &request.to)?,
        created_from_micros: None,
        settled_before_micros: Some(chrono::Utc::now().timestamp_micros() - 120_000_000),
        keys,
        checkpoint: request.checkpoint,
    };
    let one = VERIFYING.try_acquire().map_err(|_| ApiError {
        status: axum::http::StatusCode::SERVICE_UNAVAILABLE,
        reason: "a verification runs already: try again when it ends".into(),
    })?;
    // The permit goes with the work: a verification that outlasts the answer's timeout still
    // holds it until it ends.
    let report = crate::on_store(&state, move |store| {
        let _one = one;
        if let Some(cluster) = &options.cluster
            && let Some(why) = kubetrail_trust::verify::unknown_cluster(store, cluster)?
        {
            return Ok(Err(format!("cluster {why}")));
        }
        kubetrail_trust::verify(store, &options).map(Ok)
    })
    .await?
    .map_err(|e| ApiError::store("verifying the trail", &e))?
    .map_err(|reason| ApiError {
        status: axum::http::StatusCode::NOT_FOUND,
        reason,
    })?;
    Ok(Json(report))
}

/// `GET /api/v1/chain/checkpoint`: the signed head of every chain, for safekeeping.
pub(crate) async fn checkpoint(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
) -> Result<Json<Checkpoint>, ApiError> {
    if principal.cluster.is_some() {
        return Err(ApiError::forbidden(
            "the checkpoint needs a token not bound to one cluster",
        ));
    }
    let now = chrono::Utc::now().timestamp_micros();
    let cp = crate::on_store(&state, move |store| kubetrail_trust::checkpoint(store, now))
        .await?
        .map_err(|e| ApiError::store("reading the chain", &e))?;
    Ok(Json(cp))
}

/// `GET /api/v1/chain/public-keys`: the PEM public keys of the chains the store holds, the
/// server's own first.
pub(crate) async fn public_keys(
    State(state): State<Arc<AppState>>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let own = state.integrity.as_ref().map(|i| i.key.to_pem());
    let stored = crate::on_store(&state, |store| store.chain_public_keys())
        .await?
        .map_err(|e| ApiError::store("reading the chain's keys", &e))?;
    let mut keys: Vec<String> = own.into_iter().collect();
    for k in stored {
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-pem-file")],
        keys.concat(),
    )
        .into_response())
}
