//! One identity: how much it did and how much of it failed, when, on what, from which
//! addresses and with which clients, and its latest requests.

use kubetrail_report as report;
use kubetrail_store::{Aggregation, AggregationResult, Field, Filter};
use maud::{Markup, html};
use serde_json::Value;

use crate::counts;
use crate::layout::{self, Nav, tile};
use crate::overview::{Split, activity};
use crate::scope::Scope;
use crate::search::events_table;
use crate::{Context, UiError, format};

/// Latest requests shown.
const RECENT: usize = 25;
/// Rows per breakdown.
const ROWS: usize = 10;

fn count(ctx: &Context<'_>, filter: &Filter) -> Result<u64, UiError> {
    Ok(ctx
        .store
        .aggregate(
            filter,
            &Aggregation::CountBy {
                fields: vec![],
                limit: None,
            },
        )?
        .total())
}

/// Renders `/user?user=NAME`.
pub fn render(ctx: &Context<'_>, query: &str) -> Result<Markup, UiError> {
    let scope = Scope::parse(query, &[], ctx.now_micros, ctx.viewer)?;
    let [name] = scope.filter.users.as_slice() else {
        return Err(UiError::BadRequest(
            "parameter user: the user page needs exactly one user".into(),
        ));
    };
    let name = name.clone();
    let base = report::base(&scope.filter);
    let requests = count(ctx, &base)?;
    let writes = count(ctx, &report::writes(&scope.filter))?;
    let failed = count(ctx, &report::failed(&scope.filter))?;
    let forbidden = count(ctx, &report::forbidden(&scope.filter))?;
    let fields = vec![
        Field::Verb,
        Field::Resource,
        Field::Namespace,
        Field::SourceIp,
        Field::UserAgent,
    ];
    let each = match ctx
        .store
        .aggregate(&base, &Aggregation::CountEach { fields })?
    {
        AggregationResult::Each { groups, .. } => groups,
        _ => Vec::new(),
    };
    let group = |i: usize| each.get(i).cloned().unwrap_or_default();
    let chart = activity(ctx, &scope, Split::Verb)?;
    let recent = ctx.store.query(&scope.filter, None, RECENT)?.records;
    let groups = recent
        .first()
        .and_then(|r| serde_json::from_str::<Value>(&r.raw).ok())
        .and_then(|v| {
            v.pointer("/user/groups")
                .and_then(Value::as_array)
                .map(|g| {
                    g.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                })
        })
        .unwrap_or_default();
    let s = |add: &[(&str, &str)]| {
        let mut all = vec![("stages", "final")];
        all.extend_from_slice(add);
        scope.href("/search", &all)
    };
    let write_verbs: Vec<(&str, &str)> = report::WRITE_VERBS.iter().map(|v| ("verb", *v)).collect();
    let body = html! {
        h1 { "User " span #user-name { (format::user(&name)) } }
        @if !groups.is_empty() {
            p.muted { "Groups (latest request): " (groups.join(", ")) }
        }
        (layout::scope_bar(&scope, "/user", &[]))
        div.tiles {
            (tile("Requests", requests, &s(&[]), "requests", false))
            (tile("Writes", writes, &s(&write_verbs), "writes", false))
            (tile("Failed", failed, &s(&[("code", "failed")]), "failed", true))
            (tile("Forbidden", forbidden, &s(&[("code", "403")]), "forbidden", true))
        }
        section.panel.wide { h2 { "Activity" } (chart) }
        div.grid {
            (counts::key_table(&scope, "verbs", "Verbs", &group(0), Some("verb"), ROWS))
            (counts::key_table(&scope, "resources", "Resources", &group(1), Some("resource"), ROWS))
            (counts::key_table(&scope, "namespaces", "Namespaces", &group(2), Some("namespace"), ROWS))
            (counts::key_table(&scope, "sources", "From where (source addresses)", &group(3), None, ROWS))
            (counts::key_table(&scope, "agents", "With which client (user agents)", &group(4), None, ROWS))
        }
        section.panel.wide {
            h2 { "Latest requests " a.more href=(scope.href("/search", &[])) { "all events →" } }
            @if recent.is_empty() { p.empty { "No events in this range." } }
            @else { (events_table(&scope, &recent, true)) }
        }
    };
    Ok(layout::page(
        ctx.viewer,
        "User",
        Nav::Search,
        Some(&scope),
        body,
    ))
}
