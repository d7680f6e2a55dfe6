//! The Changes page: the newest writes of the scope (range, cluster, namespace, user, and a
//! resource or name), newest first, each with what it changed against its object's state
//! before ([`report::changes`]); no-op and dry-run writes are hidden unless `noop=show`. Each
//! object links to its history.

use kubetrail_model::Stage;
use kubetrail_report as report;
use maud::{Markup, html};

use crate::history::changes_cell;
use crate::layout::{self, Nav};
use crate::scope::Scope;
use crate::search::event_href;
use crate::{Context, UiError, format};

/// Writes read unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 100;
/// The most `limit` may ask for.
const MAX_LIMIT: usize = 1000;

/// The form's own fields (the scope bar has cluster, namespace and user): parameter, label,
/// placeholder.
const FIELDS: [(&str, &str, &str); 3] = [
    ("resource", "Resource", "deployments.apps, configmaps"),
    ("name", "Name", "nginx"),
    ("verb", "Verb", "patch"),
];

/// Renders `/changes`.
pub fn render(ctx: &Context<'_>, query: &str) -> Result<Markup, UiError> {
    let scope = Scope::of(ctx, query, &["noop", "limit"])?;
    let show_hidden = scope.show_noop()?;
    let limit = scope.limit(DEFAULT_LIMIT, MAX_LIMIT)?;
    let writes = report::changes(&scope.filter, limit, |f, c, n| ctx.store.query(f, c, n))?;
    let read = writes.len();
    let (shown, hidden): (Vec<_>, Vec<_>) = writes.into_iter().partition(|(_, step)| {
        show_hidden || !step.as_ref().is_some_and(report::hidden_by_default)
    });
    let kept: Vec<&str> = FIELDS
        .iter()
        .map(|(k, _, _)| *k)
        .chain(["noop", "limit"])
        .collect();
    let body = html! {
        h1 { "Changes" }
        (layout::scope_bar(&scope, "/changes", &kept))
        form.filter method="get" action="/changes" {
            @for k in ["range", "from", "to", "cluster", "namespace", "user", "noop", "limit"] {
                @for v in scope.all(k) { input type="hidden" name=(k) value=(v); }
            }
            @for (key, label, placeholder) in FIELDS {
                label { (label) input type="text" name=(key) value=[scope.get(key)] placeholder=(placeholder); }
            }
            button type="submit" { "Show" }
        }
        p.muted { "What the newest writes in the range changed, newest first, each against its object's state before. " }
        @if shown.is_empty() && hidden.is_empty() {
            p.empty { "No writes in this range." }
        } @else {
            p.summary {
                span #change-count { (format::count(shown.len() as u64)) } " writes"
                @if read == limit { " (the newest " (limit) ")" }
                @if !hidden.is_empty() {
                    " · " span #hidden-writes { (hidden.len()) } " no-op or dry-run not shown: "
                    a href=(scope.href("/changes", &[("noop", "show")])) { "show them" }
                } @else if show_hidden {
                    " · " a href=(scope.href("/changes", &[("noop", "hide")])) { "hide no-op and dry-run writes" }
                }
            }
            table.events.history.changes-feed {
                thead {
                    tr {
                        th { "Time (UTC)" } th { "Cluster" } th { "User" } th { "Verb" } th { "Object" }
                        th.num { "Code" } th { "Stage" } th { "Changes" }
                    }
                }
                tbody {
                    @for (r, step) in &shown {
                        tr data-audit-id=(r.audit_id) class=[step.as_ref().filter(|s| s.noop).map(|_| "noop")] {
                            td.time { a href=(event_href(r)) { (format::time(r.ts_micros)) } }
                            td { (r.cluster) }
                            td { a href=(scope.scoped("/changes", &[("user", format::user(&r.user))])) { (format::user(&r.user)) } (format::acting_as(r)) }
                            td { (r.verb) }
                            td {
                                (format::resource(r)) " "
                                @if r.name.is_empty() { span.muted { "(no name)" } }
                                @else { a.object href=(format::history_href(r)) { (r.name) } }
                                @if !r.namespace.is_empty() { span.muted { " in " (r.namespace) } }
                            }
                            td.num class=(format::code_class(r.code)) { (format::code(r.code)) }
                            td.muted { (r.stage.map(Stage::as_str).unwrap_or("")) }
                            td { @match step { Some(s) => (changes_cell(s)), None => span.muted { "not computed (more than " (report::DIFF_WINDOW) " writes of the object in between, or the event does not decode)" } } }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(
        ctx.viewer,
        "Changes",
        Nav::Changes,
        Some(&scope),
        body,
    ))
}
