//! One object's history ([`report::history_filter`]): every write to it (create, update, patch,
//! delete, including writes to its subresources), one event per request, newest first.

use kubetrail_report as report;
use kubetrail_store::Cursor;
use maud::{Markup, html};

use crate::layout::{self, Nav};
use crate::scope::Scope;
use crate::search::events_table;
use crate::{Context, UiError, format};

/// Writes per page.
const PAGE: usize = 100;

/// Renders `/history?resource=R&name=N[&namespace=NS]`.
pub fn render(ctx: &Context<'_>, query: &str) -> Result<Markup, UiError> {
    // An object's whole life, unless the link narrows it.
    let query = if ["range=", "from=", "to="].iter().any(|k| query.contains(k)) {
        query.to_string()
    } else {
        format!("{query}&range=custom&from=1970-01-01T00:00:00Z&to=9999-12-31T00:00:00Z")
    };
    let scope = Scope::parse(&query, &[], ctx.now_micros, ctx.viewer)?;
    let filter = report::history_filter(&scope.filter)
        .map_err(|e| UiError::BadRequest(format!("the history page: {e}")))?;
    let cursor = scope
        .extra("cursor")
        .map(|c| c.parse::<Cursor>())
        .transpose()
        .map_err(|e| UiError::BadRequest(format!("parameter cursor: {e}")))?;
    let page = ctx.store.query(&filter, cursor.as_ref(), PAGE)?;
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
            p.summary { (format::count(page.records.len() as u64)) @if page.next.is_some() { "+" } " writes" }
            (events_table(&scope, &page.records, false))
        }
        @if let Some(next) = &page.next {
            p.pager { a rel="next" href=(scope.href("/history", &[("cursor", &next.to_string())])) { "Older writes →" } }
        }
    };
    Ok(layout::page(ctx.viewer, "History", Nav::Search, None, body))
}
