//! Ingest: the apiserver's webhook batches (`EventList`) and the agents' NDJSON batches. A
//! batch is acknowledged only after the store committed it; a webhook batch with any bad event
//! is refused whole (400, nothing stored), while an agent batch stores its good lines and
//! reports the bad ones (a truncated line in a log file will never become valid, so refusing
//! the batch would only stall the agent).
//!
//! A body that is not a batch at all is refused with 400 and a reason: a webhook body that is
//! not an `EventList` (no `items` array), an agent batch with no bytes. An event the store could
//! not keep faithfully (nested deeper than [`kubetrail_model::MAX_DEPTH`]) is refused at
//! decoding like any other bad event, by its place (`items[3]`, `line 4`).

use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, RawQuery, State};
use axum::http::{HeaderMap, header};
use kubetrail_api::params::parse_query;
use kubetrail_api::paths;
use kubetrail_api::wire::IngestReply;
use kubetrail_store::intake::{decode_event_list, decode_lines};
use kubetrail_store::{AppendOutcome, Record};

use crate::auth::Principal;
use crate::metrics::Source;
use crate::{ApiError, AppState};

/// The answers to recent agent batches, by idempotency key: a retried batch gets the first
/// answer without touching the store again.
pub(crate) struct RecentBatches {
    capacity: usize,
    inner: Mutex<(HashMap<String, IngestReply>, VecDeque<String>)>,
}

impl RecentBatches {
    pub(crate) fn new(capacity: usize) -> Self {
        RecentBatches {
            capacity,
            inner: Mutex::new((HashMap::new(), VecDeque::new())),
        }
    }

    fn get(&self, key: &str) -> Option<IngestReply> {
        let guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        guard.0.get(key).cloned()
    }

    fn put(&self, key: String, reply: IngestReply) {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (map, order) = &mut *guard;
        if map.insert(key.clone(), reply).is_none() {
            order.push_back(key);
        }
        while order.len() > self.capacity {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
    }
}

/// The only query parameters the ingest endpoints take.
fn ingest_params(
    query: Option<&str>,
    allowed: &[&str],
) -> Result<HashMap<String, String>, ApiError> {
    let mut out = HashMap::new();
    for (k, v) in parse_query(query.unwrap_or("")) {
        if !allowed.contains(&k.as_str()) {
            return Err(ApiError::bad_request(format!(
                "unknown parameter {k:?}: expected {}",
                allowed.join(" or ")
            )));
        }
        out.insert(k, v);
    }
    Ok(out)
}

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Commits records and accounts for them.
async fn commit(
    state: &Arc<AppState>,
    source: Source,
    cluster: &str,
    records: Vec<Record>,
) -> Result<AppendOutcome, ApiError> {
    let started = Instant::now();
    let newest = records.iter().map(|r| r.ts_micros).max();
    let outcome = match state.committer.commit(records).await {
        Ok(o) => o,
        Err(e) => {
            state.metrics.commit_failed(source, cluster);
            return Err(ApiError::store("committing the batch", &e));
        }
    };
    state
        .metrics
        .committed(source, cluster, &outcome, newest, started.elapsed());
    state.clusters.add(cluster);
    if outcome.conflicts > 0 {
        tracing::warn!(
            cluster,
            conflicts = outcome.conflicts,
            "stored events that claim the identity (auditID, stage, time) of different events"
        );
    }
    Ok(outcome)
}

/// `POST /api/v1/audit/webhook[?cluster=NAME]`.
pub(crate) async fn webhook(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Json<IngestReply>, ApiError> {
    let params = ingest_params(query.as_deref(), &["cluster"])?;
    let cluster = principal.write_cluster(params.get("cluster").map(String::as_str))?;
    let c = cluster.clone();
    let redactor = state.redactor.clone();
    let decoded = tokio::task::spawn_blocking(move || {
        decode_event_list(&body, &c, now_micros(), redactor.as_deref())
    })
    .await
    .map_err(|e| ApiError::internal(format!("the decode task failed: {e}")))?;
    let records = match decoded {
        Ok(r) => r,
        Err(reason) => {
            state.metrics.rejected(Source::Webhook, &cluster, 1);
            tracing::warn!(
                cluster,
                caller = principal.name,
                "webhook batch refused: {reason}"
            );
            return Err(ApiError::bad_request(reason));
        }
    };
    let received = records.len() as u64;
    state.metrics.received(Source::Webhook, &cluster, received);
    let outcome = commit(&state, Source::Webhook, &cluster, records).await?;
    Ok(Json(IngestReply {
        received,
        stored: outcome.stored,
        duplicates: outcome.duplicates,
        conflicts: outcome.conflicts,
        ..IngestReply::default()
    }))
}

fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(body)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::bad_request(format!("the gzip body is corrupt: {e}")))?;
    if out.len() > limit {
        return Err(ApiError::too_large(limit));
    }
    Ok(out)
}

/// `POST /api/v1/audit/events?node=N[&cluster=C]`: an agent batch.
pub(crate) async fn agent_batch(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<IngestReply>, ApiError> {
    let params = ingest_params(query.as_deref(), &["cluster", "node"])?;
    let cluster = principal.write_cluster(params.get("cluster").map(String::as_str))?;
    let key = match headers.get(paths::IDEMPOTENCY_KEY) {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ApiError::bad_request("the idempotency key is not text"))?
                .to_string(),
        ),
        None => None,
    };
    let scoped_key = key.map(|k| format!("{cluster}\u{1f}{k}"));
    if let Some(k) = &scoped_key
        && let Some(mut earlier) = state.recent.get(k)
    {
        earlier.replayed = true;
        return Ok(Json(earlier));
    }
    let gzip = match headers.get(header::CONTENT_ENCODING).map(|v| v.to_str()) {
        None | Some(Ok("identity")) => false,
        Some(Ok("gzip")) => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unsupported Content-Encoding {:?}: send gzip or identity",
                other.unwrap_or("?")
            )));
        }
    };
    let limit = state.limits.max_body_bytes;
    let c = cluster.clone();
    let redactor = state.redactor.clone();
    let (records, rejections) = tokio::task::spawn_blocking(move || {
        let plain = if gzip {
            gunzip(&body, limit)?
        } else {
            body.to_vec()
        };
        if plain.is_empty() {
            return Err(ApiError::bad_request(
                "the batch is empty: send audit events as JSON lines (NDJSON), one per line",
            ));
        }
        Ok::<_, ApiError>(decode_lines(&plain, &c, now_micros(), redactor.as_deref()))
    })
    .await
    .map_err(|e| ApiError::internal(format!("the decode task failed: {e}")))??;
    let rejected = rejections.count;
    let received = records.len() as u64 + rejected;
    state.metrics.received(Source::Agent, &cluster, received);
    if rejected > 0 {
        state.metrics.rejected(Source::Agent, &cluster, rejected);
        tracing::warn!(
            cluster,
            node = params.get("node").map(String::as_str).unwrap_or(""),
            rejected,
            first = rejections.reasons.first().map(String::as_str).unwrap_or(""),
            "agent batch had lines that are not audit events"
        );
    }
    let outcome = commit(&state, Source::Agent, &cluster, records).await?;
    let reply = IngestReply {
        received,
        stored: outcome.stored,
        duplicates: outcome.duplicates,
        conflicts: outcome.conflicts,
        rejected,
        rejected_reasons: rejections.reasons,
        replayed: false,
    };
    if let Some(k) = scoped_key {
        state.recent.put(k, reply.clone());
    }
    Ok(Json(reply))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_batches_forget_the_oldest() {
        let r = RecentBatches::new(2);
        for k in ["a", "b", "c"] {
            r.put(k.into(), IngestReply::default());
        }
        assert!(r.get("a").is_none());
        assert!(r.get("b").is_some() && r.get("c").is_some());
    }

    #[test]
    fn gzip_bombs_stop_at_the_limit() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![b'{'; 1 << 20]).unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(gunzip(&gz, 1000).unwrap_err().status, 413);
        assert_eq!(gunzip(&gz, 2 << 20).unwrap().len(), 1 << 20);
        assert_eq!(gunzip(b"nope", 10).unwrap_err().status, 400);
    }
}
