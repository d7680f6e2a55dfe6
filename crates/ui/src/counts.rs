//! Tables of counts, and the link from each count to exactly the events behind it: a row's
//! keys become the filter that selects what it counted ([`report::group_filter`]), narrowed
//! by what the table counts within (a drill-down, the page's scope), and a row no page link
//! can express (a non-resource request, a cluster-scoped one, a user agent) is shown but not
//! linked rather than linked to more than it counts.

use kubetrail_report::{self as report, Section};
use kubetrail_store::{Field, Filter, GroupCount};
use maud::{Markup, html};

use crate::format;
use crate::scope::Scope;

/// A key as shown.
fn shown(field: Field, key: &str) -> &str {
    match (field, key) {
        (Field::User, k) => format::user(k),
        (Field::Namespace, k) => format::namespace(k),
        (Field::Resource, "") => "(non-resource)",
        (_, "") => "(none)",
        (_, k) => k,
    }
}

/// The link to the events of one group (`keys` of `fields`) counted within `within`.
fn group_link(scope: &Scope, fields: &[Field], keys: &[String], within: &Filter) -> Option<String> {
    let group = report::group_filter(fields, keys)?;
    let events = within.and(&group).ok()??;
    scope.filter_link("/search", &events)
}

/// One key: a link to its user's page, to the events it selects, or plain text.
fn key_cell(scope: &Scope, field: Field, key: &str, within: &Filter) -> Markup {
    let text = shown(field, key);
    let href = match field {
        Field::User | Field::ImpersonatedUser => scope.filter_link(
            "/user",
            &Filter {
                users: vec![key.to_string()],
                clusters: scope.filter.clusters.clone(),
                namespaces: scope.filter.namespaces.clone(),
                ..Filter::default()
            },
        ),
        _ => group_link(scope, &[field], &[key.to_string()], within),
    };
    let text = format::breakable(text);
    html! {
        @match href {
            Some(h) => { a href=(h) { (text) } }
            None if key.is_empty() => { span.muted { (text) } }
            None => { (text) }
        }
    }
}

/// A list of one-field groups counted within `within`, largest first, at most `rows` of
/// them; each key links to what it selects.
pub fn key_table(
    scope: &Scope,
    id: &str,
    title: &str,
    groups: &[GroupCount],
    field: Field,
    within: &Filter,
    rows: usize,
) -> Markup {
    html! {
        section.panel #(id) {
            h2 { (title) }
            @if groups.is_empty() { p.empty { "None in this range." } }
            @else {
                table {
                    tbody {
                        @for g in groups.iter().take(rows) {
                            tr {
                                td { (key_cell(scope, field, &g.keys[0], within)) }
                                td.num { (format::count(g.count)) }
                            }
                        }
                    }
                }
                @if groups.len() > rows { p.muted { "and " (groups.len() - rows) " more" } }
            }
        }
    }
}

/// A section's largest groups (by `fields`, headed `columns`), each count a link to its
/// events within `within` (the section's filter; `None` when the section can hold nothing).
pub fn section_table(
    scope: &Scope,
    id: &str,
    title: &str,
    section: &Section,
    columns: &[&str],
    fields: &[Field],
    within: Option<&Filter>,
) -> Markup {
    html! {
        section.panel #(id) {
            h2 { (title) " " span.muted { (format::count(section.total)) } }
            @if section.top.is_empty() {
                p.empty { "None in this range." }
            } @else {
                table {
                    thead { tr { @for c in columns { th { (c) } } th.num { "Requests" } } }
                    tbody {
                        @for g in &section.top {
                            tr {
                                @for (k, field) in g.keys.iter().zip(fields) {
                                    td {
                                        @match (field, within) {
                                            (Field::User, Some(w)) => { (key_cell(scope, Field::User, k, w)) }
                                            _ => { (format::breakable(shown(*field, k))) }
                                        }
                                    }
                                }
                                td.num {
                                    @match within.and_then(|w| group_link(scope, fields, &g.keys, w)) {
                                        Some(h) => { a href=(h) { (format::count(g.count)) } }
                                        None => { (format::count(g.count)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
