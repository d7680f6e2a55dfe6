//! The alerts side of the API: `GET /api/v1/alerts` (stored alerts, filtered as the Alerts
//! page filters them) and `GET /api/v1/rules` (the running rules with their alert counts). A
//! principal bound to a cluster sees only that cluster's alerts. A rule id that is neither
//! running nor named by a stored alert is refused with the closest known id, so a typo never
//! answers "no alerts".

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, RawQuery, State};
use kubetrail_api::params::{alert_filter_from_pairs, parse_query};
use kubetrail_api::wire::{AlertsReply, RuleItem, RulesReply};
use kubetrail_store::{AlertField, AlertFilter, ReadScope};

use crate::auth::Principal;
use crate::query::{blocking, limit_of};
use crate::{ApiError, AppState};

/// Most alerts one answer holds.
const MAX_ALERTS: usize = kubetrail_api::paths::MAX_PAGE_SIZE;

/// `filter` narrowed to what `principal` may read.
fn scoped(principal: &Principal, filter: &mut AlertFilter) -> Result<(), ApiError> {
    filter
        .restrict_to(&ReadScope::of(principal.cluster.as_deref()))
        .map_err(|e| ApiError::forbidden(format!("{} {e}", principal.name)))
}

/// The rule ids a caller may name: the running rules' and those of stored alerts.
async fn known_rules(
    state: &Arc<AppState>,
    principal: &Principal,
) -> Result<Vec<String>, ApiError> {
    let mut known: Vec<String> = state
        .detector
        .as_ref()
        .map(|d| d.rules().into_iter().map(|r| r.id).collect())
        .unwrap_or_default();
    let mut all = AlertFilter::default();
    scoped(principal, &mut all)?;
    let stored = blocking(state, "counting alerts", move |s| {
        s.count_alerts(&all, AlertField::Rule)
    })
    .await?;
    known.extend(stored.into_iter().map(|(rule, _)| rule));
    known.sort();
    known.dedup();
    Ok(known)
}

/// "unknown rule …", with the closest known id when one is close.
fn unknown_rule(given: &str, known: &[String]) -> ApiError {
    let hint = match kubetrail_report::closest(given, known.iter().map(String::as_str)) {
        Some(k) => format!(": did you mean {k:?}?"),
        None if known.is_empty() => ": no rules run and no alerts are stored".into(),
        None => format!(": expected one of {}", known.join(", ")),
    };
    ApiError::bad_request(format!("parameter rule: unknown rule {given:?}{hint}"))
}

/// `GET /api/v1/alerts`.
pub(crate) async fn alerts(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    RawQuery(query): RawQuery,
) -> Result<Json<AlertsReply>, ApiError> {
    let pairs = parse_query(query.as_deref().unwrap_or(""));
    let now = chrono::Utc::now().timestamp_micros();
    let (mut filter, rest) =
        alert_filter_from_pairs(&pairs, &["limit"], now).map_err(ApiError::bad_request)?;
    scoped(&principal, &mut filter)?;
    let limit = limit_of(&rest, 100, MAX_ALERTS)?;
    if !filter.rules.is_empty() {
        let known = known_rules(&state, &principal).await?;
        if let Some(r) = filter.rules.iter().find(|r| !known.contains(r)) {
            return Err(unknown_rule(r, &known));
        }
    }
    let records = blocking(&state, "querying alerts", move |s| {
        s.query_alerts(&filter, limit)
    })
    .await?;
    let alerts = records
        .into_iter()
        .map(|r| {
            serde_json::value::RawValue::from_string(r.json)
                .map_err(|e| ApiError::internal(format!("a stored alert is not JSON: {e}")))
        })
        .collect::<Result<_, _>>()?;
    Ok(Json(AlertsReply { alerts }))
}

/// A running rule as the API and the pages show it, with no alerts counted yet.
pub(crate) fn rule_item(r: crate::RuleSummary) -> RuleItem {
    let references = match serde_json::to_value(&r.references) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    RuleItem {
        alerts: 0,
        references,
        parameters: r.parameters.into_iter().collect(),
        kind: serde_json::to_value(r.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        severity: r.severity.to_string(),
        id: r.id,
        title: r.title,
        level: r.level,
        description: r.description,
    }
}

/// `GET /api/v1/rules`.
pub(crate) async fn rules(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    RawQuery(query): RawQuery,
) -> Result<Json<RulesReply>, ApiError> {
    if let Some((k, _)) = parse_query(query.as_deref().unwrap_or("")).first() {
        return Err(ApiError::bad_request(format!(
            "unknown parameter {k:?}: /api/v1/rules takes none"
        )));
    }
    let Some(detector) = state.detector.clone() else {
        return Ok(Json(RulesReply {
            detection: false,
            rules: Vec::new(),
        }));
    };
    let mut all = AlertFilter::default();
    scoped(&principal, &mut all)?;
    let counts = blocking(&state, "counting alerts", move |s| {
        s.count_alerts(&all, AlertField::Rule)
    })
    .await?;
    let rules = detector
        .rules()
        .into_iter()
        .map(|r| {
            let mut item = rule_item(r);
            item.alerts = counts
                .iter()
                .find(|(id, _)| *id == item.id)
                .map_or(0, |(_, n)| *n);
            item
        })
        .collect();
    Ok(Json(RulesReply {
        detection: true,
        rules,
    }))
}
