//! The read side of the API: events (cursor paging), aggregations, one object's history, the
//! changes feed, the reports, the OpenAPI document and readiness. Filters come from the query string
//! ([`kubetrail_api::params`]); a principal bound to a cluster only sees that cluster.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use kubetrail_api::params::{filter_from_pairs, parse_query};
use kubetrail_api::wire::{AggregateReply, Bucket, ChangesPage, EventItem, EventsPage};
use kubetrail_report::ReportKind;
use kubetrail_store::text::{format_micros, parse_duration};
use kubetrail_store::{Aggregation, AggregationResult, Cursor, Field, Filter, Record, Store};

use crate::auth::Principal;
use crate::{ApiError, AppState};

/// Largest page.
const MAX_LIMIT: usize = kubetrail_api::paths::MAX_PAGE_SIZE;

fn parse_filter(
    principal: &Principal,
    query: Option<&str>,
    extra: &[&str],
) -> Result<(Filter, Vec<(String, String)>), ApiError> {
    let pairs = parse_query(query.unwrap_or(""));
    let now = chrono::Utc::now().timestamp_micros();
    let (mut filter, rest) =
        filter_from_pairs(&pairs, extra, now).map_err(ApiError::bad_request)?;
    principal.scope_read(&mut filter)?;
    Ok((filter, rest))
}

pub(crate) fn one<'a>(
    rest: &'a [(String, String)],
    key: &str,
) -> Result<Option<&'a str>, ApiError> {
    let mut values = rest
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str());
    let first = values.next();
    if values.next().is_some() {
        return Err(ApiError::bad_request(format!(
            "parameter {key} given more than once"
        )));
    }
    Ok(first)
}

/// A parameter that is `on` or `off` (the default when absent): whether it is `on`.
fn switch(rest: &[(String, String)], key: &str, [on, off]: [&str; 2]) -> Result<bool, ApiError> {
    match one(rest, key)? {
        None => Ok(false),
        Some(v) if v == off => Ok(false),
        Some(v) if v == on => Ok(true),
        Some(v) => Err(ApiError::bad_request(format!(
            "parameter {key}: expected {on} or {off}, found {v:?}"
        ))),
    }
}

pub(crate) fn limit_of(
    rest: &[(String, String)],
    default: usize,
    max: usize,
) -> Result<usize, ApiError> {
    match one(rest, "limit")? {
        None => Ok(default),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::bad_request(format!(
                "parameter limit: expected a number from 1 to {max}, found {v:?}"
            ))),
        },
    }
}

/// `filter` with kubectl's names for resources (`deploy`, `po`) resolved to the plurals the
/// events write (an unknown name is refused naming the closest) and source networks to the
/// stored addresses in them ([`kubetrail_report::resolve_filter`]).
fn resolved(
    state: &AppState,
    store: &dyn Store,
    mut filter: Filter,
) -> kubetrail_store::Result<Filter> {
    kubetrail_report::resolve_cached(store, &state.resources, &mut filter)?;
    Ok(filter)
}

/// Runs a store call on the blocking pool ([`crate::on_store`]); a store error is answered
/// by its kind, naming `what` was done.
pub(crate) async fn blocking<T: Send + 'static>(
    state: &Arc<AppState>,
    what: &'static str,
    f: impl FnOnce(&dyn Store) -> kubetrail_store::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    crate::on_store(state, f)
        .await?
        .map_err(|e| ApiError::store(what, &e))
}

fn item(r: Record) -> EventItem {
    let event = serde_json::value::RawValue::from_string(r.raw).unwrap_or_else(|e| {
        // Stored events are valid JSON; if one is not, say so rather than fail the page.
        serde_json::value::to_raw_value(&format!("<stored event is not JSON: {e}>"))
            .unwrap_or_default()
    });
    EventItem {
        cluster: r.cluster,
        received: format_micros(r.received_micros),
        time: Some(format_micros(r.ts_micros)),
        audit_id: Some(r.audit_id),
        event,
        diff: None,
    }
}

/// `GET /api/v1/audit/events`.
pub(crate) async fn events(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    RawQuery(query): RawQuery,
) -> Result<Json<EventsPage>, ApiError> {
    let (filter, rest) = parse_filter(&principal, query.as_deref(), &["limit", "cursor"])?;
    let limit = limit_of(&rest, 100, MAX_LIMIT)?;
    let cursor = match one(&rest, "cursor")? {
        Some(c) => Some(
            c.parse::<Cursor>()
                .map_err(|e| ApiError::bad_request(format!("parameter cursor: {e}")))?,
        ),
        None => None,
    };
    let st = state.clone();
    let page = blocking(&state, "querying events", move |s| {
        s.query(&resolved(&st, s, filter)?, cursor.as_ref(), limit)
    })
    .await?;
    Ok(Json(EventsPage {
        next: page.next.map(|c| c.to_string()),
        items: page.records.into_iter().map(item).collect(),
    }))
}

fn fields(text: &str) -> Result<Vec<Field>, ApiError> {
    text.split(',')
        .map(|f| {
            f.trim()
                .parse::<Field>()
                .map_err(|e| ApiError::bad_request(format!("parameter by: {e}")))
        })
        .collect()
}

/// `GET /api/v1/audit/aggregate?by=user[,verb][&top=N]` or `?histogram=1h[&by=verb]`; with
/// neither, the number of matching events as one group without keys.
pub(crate) async fn aggregate(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    RawQuery(query): RawQuery,
) -> Result<Json<AggregateReply>, ApiError> {
    let (filter, rest) = parse_filter(&principal, query.as_deref(), &["by", "top", "histogram"])?;
    let by = one(&rest, "by")?
        .map(fields)
        .transpose()?
        .unwrap_or_default();
    let top = match one(&rest, "top")? {
        None => None,
        Some(v) => Some(v.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
            ApiError::bad_request(format!(
                "parameter top: expected a positive number, found {v:?}"
            ))
        })?),
    };
    let aggregation = match one(&rest, "histogram")? {
        Some(bucket) => {
            let bucket = parse_duration(bucket)
                .map_err(|e| ApiError::bad_request(format!("parameter histogram: {e}")))?;
            if by.len() > 1 {
                return Err(ApiError::bad_request(
                    "parameter by: a histogram is split by at most one field",
                ));
            }
            if top.is_some() {
                return Err(ApiError::bad_request(
                    "parameter top: not used with histogram",
                ));
            }
            Aggregation::Histogram {
                bucket,
                by: by.first().copied(),
            }
        }
        None => {
            if by.len() > 2 {
                return Err(ApiError::bad_request(
                    "parameter by: give by=FIELD[,FIELD] (one or two fields) or histogram=DURATION",
                ));
            }
            if by.is_empty() && top.is_some() {
                return Err(ApiError::bad_request(
                    "parameter top: keeps the largest groups of by=FIELD[,FIELD]; give by",
                ));
            }
            // Without by: one group with no keys, the number of matching events.
            Aggregation::CountBy {
                fields: by,
                limit: top,
            }
        }
    };
    let st = state.clone();
    let result = blocking(&state, "aggregating", move |s| {
        s.aggregate(&resolved(&st, s, filter)?, &aggregation)
    })
    .await?;
    Ok(Json(match result {
        AggregationResult::Groups(groups) => AggregateReply {
            groups,
            ..AggregateReply::default()
        },
        AggregationResult::Histogram(buckets) => AggregateReply {
            buckets: buckets
                .into_iter()
                .map(|b| Bucket {
                    start: format_micros(b.start_micros),
                    key: b.key,
                    count: b.count,
                })
                .collect(),
            ..AggregateReply::default()
        },
        AggregationResult::Each { .. } | AggregationResult::Sections(_) => {
            return Err(ApiError::internal("the store answered another aggregation"));
        }
    }))
}

/// `GET /api/v1/audit/history?resource=R&name=N[&namespace=NS]`: every write to one object,
/// one event per request, oldest first (the newest `limit`, default 1000)
/// ([`kubetrail_report::history_filter`]).
pub(crate) async fn history(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    RawQuery(query): RawQuery,
) -> Result<Json<EventsPage>, ApiError> {
    let (filter, rest) = parse_filter(&principal, query.as_deref(), &["limit", "diff"])?;
    let limit = limit_of(&rest, 1000, kubetrail_api::paths::MAX_HISTORY)?;
    let diff = switch(&rest, "diff", ["true", "false"])?;
    // A question without one object is the caller's mistake, before the store is asked.
    let filter = kubetrail_report::history_filter(&filter)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let st = state.clone();
    let records = blocking(&state, "querying history", move |s| {
        kubetrail_report::requests(s, &resolved(&st, s, filter)?, limit)
    })
    .await?;
    let steps = if diff {
        kubetrail_report::history_steps(&records)
    } else {
        Vec::new()
    };
    let mut steps = steps.into_iter();
    Ok(Json(EventsPage {
        items: records
            .into_iter()
            .map(|r| EventItem {
                diff: steps.next().flatten(),
                ..item(r)
            })
            .collect(),
        next: None,
    }))
}

/// `GET /api/v1/audit/changes`: the newest `limit` writes (default 50) of the scope, newest
/// first, each with what it changed ([`kubetrail_report::changes`]); no-op and dry-run writes
/// are left out (and counted) unless `noop=show`.
pub(crate) async fn changes(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    RawQuery(query): RawQuery,
) -> Result<Json<ChangesPage>, ApiError> {
    let (filter, rest) = parse_filter(&principal, query.as_deref(), &["limit", "noop"])?;
    let limit = limit_of(&rest, 50, kubetrail_api::paths::MAX_CHANGES)?;
    let show_hidden = switch(&rest, "noop", ["show", "hide"])?;
    let st = state.clone();
    let writes = blocking(&state, "querying changes", move |s| {
        kubetrail_report::changes(&resolved(&st, s, filter)?, limit, |f, c, n| {
            s.query(f, c, n)
        })
    })
    .await?;
    let mut hidden = 0;
    let mut items = Vec::new();
    for (record, step) in writes {
        if !show_hidden
            && step
                .as_ref()
                .is_some_and(kubetrail_report::hidden_by_default)
        {
            hidden += 1;
            continue;
        }
        items.push(EventItem {
            diff: step,
            ..item(record)
        });
    }
    Ok(Json(ChangesPage { items, hidden }))
}

/// `GET /api/v1/audit/reports/{name}` ([`kubetrail_report::run`]).
pub(crate) async fn report(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<kubetrail_report::Report>, ApiError> {
    let kind = name.parse::<ReportKind>().map_err(|e| ApiError {
        status: axum::http::StatusCode::NOT_FOUND,
        reason: e,
    })?;
    let (filter, _) = parse_filter(&principal, query.as_deref(), &[])?;
    let st = state.clone();
    let report = blocking(&state, "building the report", move |s| {
        kubetrail_report::run(kind, s, &resolved(&st, s, filter)?)
    })
    .await?;
    Ok(Json(report))
}

/// The OpenAPI document, kept beside the code (a test checks every route is in it).
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

/// `GET /api/v1/openapi.json`.
pub(crate) async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON).into_response()
}

/// `GET /readyz`: 200 when the store gives back stored data within 5 s ([`Store::check`]);
/// 503 with the cause otherwise, and for good once the store reported damage.
pub(crate) async fn ready(State(state): State<Arc<AppState>>) -> Response {
    let unavailable =
        |reason: String| (axum::http::StatusCode::SERVICE_UNAVAILABLE, reason).into_response();
    if let Some(e) = state.committer.failure() {
        return unavailable(format!("store failed: {e}"));
    }
    let store = state.store.clone();
    let check = tokio::task::spawn_blocking(move || store.check());
    match tokio::time::timeout(Duration::from_secs(5), check).await {
        Ok(Ok(Ok(()))) => "ok".into_response(),
        Ok(Ok(Err(e))) => {
            state.committer.note_failure(&e);
            tracing::warn!(error = %e, "store not ready");
            unavailable(format!("store not ready: {e}"))
        }
        Ok(Err(e)) => unavailable(format!("store not ready: the check failed: {e}")),
        Err(_) => unavailable("store not ready: no answer within 5 s".to_string()),
    }
}
