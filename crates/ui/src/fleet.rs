//! `/fleet`: every cluster kubetrail hears from, its requests in the range, its newest event
//! (a cluster silent for more than ten minutes is flagged), the agents that report for it and
//! the gaps they reported.

use kubetrail_report as report;
use maud::{Markup, html};

use crate::layout::{self, Nav};
use crate::scope::Scope;
use crate::{Context, UiError, format};

/// When an agent last reported, as pages write times (the text as sent if it is no time).
fn seen(at: &str) -> String {
    kubetrail_store::text::parse_time(at)
        .map(|t| format::time(t.timestamp_micros()))
        .unwrap_or_else(|_| at.to_string())
}

/// Renders `/fleet`.
pub fn render(ctx: &Context<'_>, query: &str) -> Result<Markup, UiError> {
    let scope = Scope::of(ctx, query, &[])?;
    let clusters = report::fleet(ctx.store, &scope.filter, ctx.clusters)?;
    let in_range = |t: &str| {
        kubetrail_store::text::parse_time(t)
            .map(|t| {
                let t = t.timestamp_micros();
                t >= scope.from_micros && t < scope.to_micros
            })
            .unwrap_or(true)
    };
    let body = html! {
        h1 { "Fleet" }
        (layout::scope_bar(&scope, "/fleet", &[]))
        @if clusters.is_empty() {
            p.empty { "No cluster has sent events yet." }
        } @else {
            section.panel.wide #clusters {
                table {
                    thead { tr {
                        th { "Cluster" } th.num { "Requests" } th { "Newest event" }
                        th { "Agents" } th.num { "Gaps in range" }
                    } }
                    tbody {
                        @for c in &clusters {
                            @let agents: Vec<_> = ctx.agents.iter().filter(|a| a.cluster == c.cluster).collect();
                            @let gaps = ctx.gaps.iter().filter(|g| g.cluster == c.cluster && in_range(&g.detected_at)).count();
                            @let silent = c.silent(ctx.now_micros);
                            tr.silent[silent] data-cluster=(c.cluster) {
                                td { a href=(scope.scoped("/", &[("cluster", c.cluster.as_str())])) { (format::breakable(&c.cluster)) } }
                                td.num { (format::count(c.requests)) }
                                td {
                                    @match c.newest_micros {
                                        Some(t) => {
                                            (format::time(t))
                                            @if silent { " " strong.warn { "silent for " (format::age(ctx.now_micros - t)) } }
                                        }
                                        None => span.muted { "none stored" },
                                    }
                                }
                                td {
                                    @if agents.is_empty() { span.muted { "none report (webhook only?)" } }
                                    @for a in &agents {
                                        div {
                                            (a.status.node) " · lag " (format::count(a.status.lag_bytes)) " B"
                                            @if a.status.dropped_bytes > 0 { " · " strong.warn { (format::count(a.status.dropped_bytes)) " B lost" } }
                                            span.muted { " · reported " (seen(&a.seen_at)) }
                                        }
                                    }
                                }
                                td.num { @if gaps > 0 { a.warn href="/#gaps" { (gaps) } } @else { "0" } }
                            }
                        }
                    }
                }
                p.note { "A cluster is flagged silent when its newest stored event is more than "
                    (report::SILENT_AFTER_SECONDS / 60) " minutes old; alert on it with "
                    code { "kubetrail_last_event_timestamp_seconds" } "." }
            }
        }
    };
    Ok(layout::page(
        ctx.viewer,
        "Fleet",
        Nav::Fleet,
        Some(&scope),
        body,
    ))
}
