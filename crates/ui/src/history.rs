//! One object's history ([`report::history_filter`]): every write to it (create, update, patch,
//! delete, including writes to its subresources), one event per request, newest first, each
//! with what it changed ([`report::history_steps`]); no-op and dry-run writes are hidden unless
//! `noop=show`.

use std::collections::HashMap;

use kubetrail_diff::{Basis, Change, ChangeKind, PatchKind, Step};
use kubetrail_model::Stage;
use kubetrail_report as report;
use kubetrail_store::{Cursor, Record};
use maud::{Markup, html};

use crate::layout::{self, Nav};
use crate::scope::Scope;
use crate::search::event_href;
use crate::{Context, UiError, format};

/// Writes per page.
const PAGE: usize = 100;

/// Longest value shown in a diff cell.
const MAX_VALUE_CHARS: usize = 400;

/// The steps of the history `filter` selects, by event ([`report::steps_by_event`]).
pub(crate) fn steps_by_event(
    ctx: &Context<'_>,
    filter: &kubetrail_store::Filter,
) -> Result<HashMap<report::EventKey, Step>, UiError> {
    Ok(report::steps_by_event(filter, |f, c, n| {
        ctx.store.query(f, c, n)
    })?)
}

/// Renders `/history?resource=R&name=N[&namespace=NS]`.
pub fn render(ctx: &Context<'_>, query: &str) -> Result<Markup, UiError> {
    // An object's whole life, unless the link narrows it.
    let query = if ["range=", "from=", "to="].iter().any(|k| query.contains(k)) {
        query.to_string()
    } else {
        format!("{query}&range=custom&from=1970-01-01T00:00:00Z&to=9999-12-31T00:00:00Z")
    };
    let scope = Scope::of(ctx, &query, &["noop"])?;
    let show_hidden = scope.show_noop()?;
    let filter = report::history_filter(&scope.filter)
        .map_err(|e| UiError::BadRequest(format!("the history page: {e}")))?;
    let cursor = scope
        .extra("cursor")
        .map(|c| c.parse::<Cursor>())
        .transpose()
        .map_err(|e| UiError::BadRequest(format!("parameter cursor: {e}")))?;
    let page = ctx.store.query(&filter, cursor.as_ref(), PAGE)?;
    let steps = steps_by_event(ctx, &filter)?;
    let (shown, hidden): (Vec<&Record>, Vec<&Record>) = page.records.iter().partition(|r| {
        show_hidden
            || !steps
                .get(&report::event_key(r))
                .is_some_and(report::hidden_by_default)
    });
    let resource = scope.get("resource").unwrap_or_default();
    let name = scope.get("name").unwrap_or_default();
    let namespace = scope.get("namespace");
    let body = html! {
        h1 { "History of " (resource) " " span #object-name { (name) }
            @if let Some(ns) = namespace { " in " (ns) } }
        p.muted { "Every write to the object, one event per request, newest first. "
            a href=(scope.href("/search", &[("stages", "final")])) { "All requests on it →" } }
        @if page.records.is_empty() {
            p.empty { "No writes to this object are stored." }
        } @else {
            p.summary { (format::count(page.records.len() as u64)) @if page.next.is_some() { "+" } " writes"
                @if !hidden.is_empty() {
                    " · " span #hidden-writes { (hidden.len()) } " no-op or dry-run not shown: "
                    a href=(scope.href("/history", &[("noop", "show")])) { "show them" }
                } @else if show_hidden {
                    " · " a href=(scope.href("/history", &[("noop", "hide")])) { "hide no-op and dry-run writes" }
                }
            }
            (history_table(&shown, &steps))
        }
        @if let Some(next) = &page.next {
            p.pager { a rel="next" href=(scope.href("/history", &[("cursor", &next.to_string())])) { "Older writes →" } }
        }
    };
    Ok(layout::page(ctx.viewer, "History", Nav::Search, None, body))
}

/// The writes, each with its changes in a side-by-side diff that opens on click.
fn history_table(records: &[&Record], steps: &HashMap<report::EventKey, Step>) -> Markup {
    html! {
        table.events.history {
            thead {
                tr {
                    th { "Time (UTC)" } th { "Cluster" } th { "User" } th { "Verb" } th { "Resource" }
                    th.num { "Code" } th { "Stage" } th { "Changes" }
                }
            }
            tbody {
                @for r in records {
                    @let step = steps.get(&report::event_key(r));
                    tr data-audit-id=(r.audit_id) class=[step.filter(|s| s.noop).map(|_| "noop")] {
                        td.time { a href=(event_href(r)) { (format::time(r.ts_micros)) } }
                        td { (r.cluster) }
                        td { (format::user(&r.user)) (format::acting_as(r)) }
                        td { (r.verb) }
                        td { (format::resource(r)) }
                        td.num class=(format::code_class(r.code)) { (format::code(r.code)) }
                        td.muted { (r.stage.map(Stage::as_str).unwrap_or("")) }
                        td { @match step { Some(s) => (changes_cell(s)), None => span.muted { "not computed (older than the newest " (report::DIFF_WINDOW) " writes)" } } }
                    }
                }
            }
        }
    }
}

/// What a step changed: marks, then the changed paths in a `<details>`.
pub(crate) fn changes_cell(step: &Step) -> Markup {
    let note = match step.basis {
        Basis::Diff | Basis::Created => None,
        Basis::Deleted => Some("deleted"),
        Basis::Patch => Some(match step.patch {
            Some(PatchKind::Json) => "JSON patch",
            Some(PatchKind::Merge) => "merge patch",
            Some(PatchKind::Strategic) => "strategic merge patch",
            Some(PatchKind::Apply) => "apply patch",
            None => "patch",
        }),
        Basis::Baseline => Some("the state before is not known"),
        Basis::Subresource => Some("subresource request body"),
        Basis::Failed => Some("failed: nothing changed"),
        Basis::NoBody => Some("no body recorded"),
    };
    html! {
        @if step.noop { span.badge.noop { "no-op" } " " }
        @if step.dry_run { span.badge.dry-run { "dry run" } " " }
        @if let Some(n) = note { span.muted { (n) } " " }
        @if !step.changes.is_empty() {
            details.changes {
                summary { (step.changes.len()) " changed path" @if step.changes.len() != 1 { "s" } }
                div.diff role="table" {
                    div.diff-row.diff-head role="row" { span role="columnheader" { "Path" } span role="columnheader" { "Before" } span role="columnheader" { "After" } }
                    @for c in &step.changes { (change_row(c)) }
                }
            }
        }
    }
}

fn change_row(c: &Change) -> Markup {
    let class = match c.kind() {
        ChangeKind::Added => "added",
        ChangeKind::Removed => "removed",
        ChangeKind::Changed => "changed",
    };
    html! {
        div.diff-row.(class) role="row" {
            code.path role="cell" { @if c.path.is_empty() { "/" } @else { (c.path) } }
            span.old role="cell" { @if let Some(v) = &c.old { code { (value_text(v)) } } }
            span.new role="cell" { @if let Some(v) = &c.new { code { (value_text(v)) } } }
        }
    }
}

fn value_text(v: &serde_json::Value) -> String {
    let text = v.to_string();
    if text.chars().count() > MAX_VALUE_CHARS {
        let cut: String = text.chars().take(MAX_VALUE_CHARS).collect();
        format!("{cut}…")
    } else {
        text
    }
}
