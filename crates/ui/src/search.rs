//! Search: the typed filter as a form, the number of matching events, and the events newest
//! first with cursor paging. Every user, resource, namespace and name in the results is a link
//! that adds it to the filter; the time opens the whole event.

use kubetrail_api::params::FILTER_KEYS;
use kubetrail_model::Stage;
use kubetrail_store::{Aggregation, Cursor, Record};
use maud::{Markup, html};

use crate::layout::{self, Nav};
use crate::scope::{Scope, with_query};
use crate::{Context, UiError, format};

/// Events per page unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 50;
/// The most `limit` may ask for.
const MAX_LIMIT: usize = 500;

/// The form's fields: parameter, label, placeholder.
const FIELDS: [(&str, &str, &str); 13] = [
    ("user", "User", "alice@example.com"),
    ("impersonated", "Acting as", "bob (impersonated)"),
    ("group", "Group", "system:masters"),
    ("verb", "Verb", "delete"),
    ("resource", "Resource", "deployments.apps, pods/exec"),
    ("namespace", "Namespace", "prod"),
    ("name", "Name", "nginx"),
    ("code", "Code", "403, 4xx, failed"),
    ("decision", "Decision", "allow, forbid"),
    ("text", "Text", "substring of the event"),
    ("sourceIP", "Source IP", "203.0.113.7"),
    ("cluster", "Cluster", "prod-eu"),
    ("auditID", "auditID", ""),
];

/// The link to one event's page.
pub fn event_href(r: &Record) -> String {
    let stage = r.stage.map(Stage::as_str).unwrap_or("");
    with_query(
        "/event",
        [
            ("cluster", r.cluster.clone()),
            ("auditID", r.audit_id.clone()),
            ("stage", stage.to_string()),
            ("ts", r.ts_micros.to_string()),
            ("hash", r.content_hash.to_string()),
        ],
    )
}

/// A table of events. With `refine`, values link to the search narrowed by them; otherwise to
/// a search scoped like the page.
pub fn events_table(scope: &Scope, records: &[Record], refine: bool) -> Markup {
    let add = |key: &str, value: &str| {
        if refine {
            scope.href("/search", &[(key, value)])
        } else {
            scope.scoped("/search", &[(key, value)])
        }
    };
    html! {
        table.events {
            thead {
                tr {
                    th { "Time (UTC)" } th { "Cluster" } th { "User" } th { "Verb" } th { "Resource" }
                    th { "Namespace" } th { "Name" } th.num { "Code" } th { "Stage" } th { "Source" }
                }
            }
            tbody {
                @for r in records {
                    @let resource = format::resource(r);
                    tr data-audit-id=(r.audit_id) {
                        td.time { a href=(event_href(r)) { (format::time(r.ts_micros)) } }
                        td { a href=(add("cluster", &r.cluster)) { (r.cluster) } }
                        td { a href=(add("user", format::user(&r.user))) { (format::user(&r.user)) } (format::acting_as(r)) }
                        td { a href=(add("verb", &r.verb)) { (r.verb) } }
                        td { @if resource.is_empty() { span.muted title=(r.request_uri) { (r.request_uri) } } @else { a href=(add("resource", &format::exact_resource(&resource))) { (resource) } } }
                        td { @if !r.namespace.is_empty() { a href=(add("namespace", &r.namespace)) { (r.namespace) } } }
                        td { @if !r.name.is_empty() { a href=(add("name", &r.name)) { (r.name) } } }
                        td.num class=(format::code_class(r.code)) { (format::code(r.code)) }
                        td.muted { (r.stage.map(Stage::as_str).unwrap_or("")) }
                        td { @if !r.source_ip.is_empty() { a href=(add("sourceIP", &r.source_ip)) { (r.source_ip) } } }
                    }
                }
            }
        }
    }
}

/// Chips that get their own "remove" link. Each such link is the whole current URL less one
/// value, so links for every chip would make the page grow with the square of its URL; past
/// this many values the chips show the filter and only "clear all" (the page then grows
/// linearly with the URL, which the filter limits of [`kubetrail_api::params`] bound).
pub const MAX_REMOVABLE_CHIPS: usize = 20;

/// The active filter as chips, removable one by one while there are few.
fn chips(scope: &Scope) -> Markup {
    let active: Vec<(&str, &str)> = FILTER_KEYS
        .iter()
        .filter(|k| !matches!(**k, "since" | "from" | "to"))
        .flat_map(|k| scope.all(k).into_iter().map(move |v| (*k, v)))
        .collect();
    let removable = active.len() <= MAX_REMOVABLE_CHIPS;
    html! {
        @if !active.is_empty() {
            ul.chips aria-label="active filter" {
                @for (k, v) in &active {
                    li {
                        span.key { (k) } " " (v)
                        @if removable {
                            " " a.remove href=(remove(scope, k, v)) title="remove" aria-label=(format!("remove {k} {v}")) { "×" }
                        }
                    }
                }
                li { a href=(scope.scoped("/search", &[])) { "clear all" } }
            }
        }
    }
}

/// The current link without one (key, value) pair.
fn remove(scope: &Scope, key: &str, value: &str) -> String {
    let kept: Vec<(&str, &str)> = FILTER_KEYS
        .iter()
        .chain(["range", "from", "to", "limit"].iter())
        .flat_map(|k| scope.all(k).into_iter().map(move |v| (*k, v)))
        .filter(|(k, v)| !(*k == key && *v == value))
        .collect();
    with_query("/search", kept.into_iter().map(|(k, v)| (k, v.to_string())))
}

fn form(scope: &Scope) -> Markup {
    html! {
        form.filter method="get" action="/search" {
            @for k in ["range", "from", "to"] {
                @if let Some(v) = scope.get(k) { input type="hidden" name=(k) value=(v); }
            }
            @for (key, label, placeholder) in FIELDS {
                @let values = scope.all(key);
                @if values.len() > 1 {
                    @for v in &values { input type="hidden" name=(key) value=(v); }
                } @else {
                    label {
                        (label)
                        input type="text" name=(key) value=[values.first()] placeholder=(placeholder);
                    }
                }
            }
            label {
                "Count"
                select name="stages" {
                    option value="all" selected[scope.get("stages") != Some("final")] { "every stage event" }
                    option value="final" selected[scope.get("stages") == Some("final")] { "one event per request" }
                }
            }
            button type="submit" { "Search" }
        }
    }
}

/// Renders `/search`.
pub fn render(ctx: &Context<'_>, query: &str) -> Result<Markup, UiError> {
    let scope = Scope::of(ctx, query, &["limit"])?;
    let limit = scope.limit(DEFAULT_LIMIT, MAX_LIMIT)?;
    let cursor = scope
        .extra("cursor")
        .map(|c| c.parse::<Cursor>())
        .transpose()
        .map_err(|e| UiError::BadRequest(format!("parameter cursor: {e}")))?;
    // Counting a free-text search reads every event's JSON in the range; the page of results
    // stops early. Such searches show their results without a total.
    let total = match scope.filter.text {
        Some(_) => None,
        None => Some(
            ctx.store
                .aggregate(
                    &scope.filter,
                    &Aggregation::CountBy {
                        fields: vec![],
                        limit: None,
                    },
                )?
                .total(),
        ),
    };
    let page = ctx.store.query(&scope.filter, cursor.as_ref(), limit)?;
    let body = html! {
        h1 { "Search" }
        (layout::scope_bar(&scope, "/search", &FILTER_KEYS.iter().copied().chain(["limit"]).filter(|k| !matches!(*k, "cluster" | "namespace" | "user" | "since" | "from" | "to")).collect::<Vec<_>>()))
        (form(&scope))
        (chips(&scope))
        p.summary {
            @if let Some(total) = total {
                strong #match-count data-count=(total) { (format::count(total)) }
                @if scope.get("stages") == Some("final") { " requests match" } @else { " events match" }
            } @else {
                "Matching events, newest first (free-text searches are not counted)"
            }
            @if cursor.is_some() { " · " a href=(scope.href("/search", &[])) { "back to the newest" } }
        }
        @if page.records.is_empty() {
            p.empty { "No events match." }
            // (Not for a free-text search: finding its newest event reads every event.)
            @if cursor.is_none() && scope.filter.text.is_none() { (layout::empty_range(ctx, &scope, "/search")?) }
        } @else {
            (events_table(&scope, &page.records, true))
        }
        @if let Some(next) = &page.next {
            p.pager { a #next-page rel="next" href=(scope.href("/search", &[("cursor", &next.to_string())])) { "Older events →" } }
        }
    };
    Ok(layout::page(
        ctx.viewer,
        "Search",
        Nav::Search,
        Some(&scope),
        body,
    ))
}
