//! Resource operations: creates, updates, patches and deletes per resource kind, as a chart of
//! the busiest kinds and a table where every count drills down to its operations.

use kubetrail_report::{self as report, ResourceWrites};
use kubetrail_store::Filter;
use maud::{Markup, html};

use crate::chart::{self, Series};
use crate::layout::{self, Nav};
use crate::scope::Scope;
use crate::{Context, UiError, format};

/// Rows in the chart.
const CHART_ROWS: usize = 15;

/// The verbs of each column, as search parameters.
const COLUMNS: [(&str, &[&str]); 4] = [
    ("Create", &["create"]),
    ("Update", &["update"]),
    ("Patch", &["patch"]),
    ("Delete", &["delete", "deletecollection"]),
];

fn counts(r: &ResourceWrites) -> [u64; 4] {
    [r.create, r.update, r.patch, r.delete]
}

/// Renders `/resources`.
pub fn render(ctx: &Context<'_>, query: &str) -> Result<Markup, UiError> {
    let scope = Scope::of(ctx, query, &[])?;
    let rows = report::resources(ctx.store, &scope.filter)?;
    // A count's link lists the writes it counted: the resource's, of the column's verbs.
    let link = |resource: &str, verbs: &[&str]| {
        // Non-resource writes (an HTTP DELETE on a path) have no resource to link to.
        let Some(selector) = report::resource_of_key(resource) else {
            return "#".to_string();
        };
        let counted = Filter {
            resources: vec![selector],
            verbs: verbs.iter().map(|v| v.to_string()).collect(),
            ..Filter::default()
        };
        report::narrow(&scope.filter, &counted)
            .ok()
            .flatten()
            .and_then(|f| scope.filter_link("/search", &f))
            .unwrap_or_else(|| "#".to_string())
    };
    let shown = &rows[..rows.len().min(CHART_ROWS)];
    let labels: Vec<(String, String)> = shown
        .iter()
        .map(|r| (r.resource.clone(), link(&r.resource, &report::WRITE_VERBS)))
        .collect();
    let series: Vec<Series> = COLUMNS
        .iter()
        .enumerate()
        .map(|(i, (name, _))| Series {
            name: name.to_lowercase(),
            values: shown.iter().map(|r| counts(r)[i]).collect(),
        })
        .collect();
    let totals: [u64; 4] = std::array::from_fn(|i| rows.iter().map(|r| counts(r)[i]).sum());
    let body = html! {
        h1 { "Resource operations" }
        (layout::scope_bar(&scope, "/resources", &[]))
        @if rows.is_empty() {
            p.empty { "No writes in this range." }
        } @else {
            section.panel.wide {
                h2 {
                    "Writes per resource kind"
                    @if rows.len() > CHART_ROWS { " " span.muted { "(the " (CHART_ROWS) " busiest of " (rows.len()) ")" } }
                }
                (chart::row_bars("Writes per resource kind", &labels, &series))
            }
            section.panel.wide {
                table #resources {
                    thead {
                        tr {
                            th { "Resource" }
                            @for (name, _) in COLUMNS { th.num { (name) } }
                            th.num { "All writes" }
                        }
                    }
                    tbody {
                        @for r in &rows {
                            tr data-resource=(r.resource) {
                                td { (r.resource) }
                                @for (i, (_, verbs)) in COLUMNS.iter().enumerate() {
                                    td.num {
                                        @if counts(r)[i] > 0 {
                                            a href=(link(&r.resource, verbs)) { (format::count(counts(r)[i])) }
                                        } @else { span.muted { "0" } }
                                    }
                                }
                                td.num { a href=(link(&r.resource, &report::WRITE_VERBS)) { (format::count(r.total)) } }
                            }
                        }
                    }
                    tfoot {
                        tr {
                            th { "All kinds" }
                            @for t in totals { th.num { (format::count(t)) } }
                            th.num { (format::count(totals.iter().sum())) }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(
        ctx.viewer,
        "Resource operations",
        Nav::Resources,
        Some(&scope),
        body,
    ))
}
