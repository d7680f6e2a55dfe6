//! Tables of counts, and the link from each count to exactly the events behind it: a key is
//! written as the filter parameter that selects what was counted (a resource as its exact
//! selector, "no user" as `(none)`), and a key no parameter can express (a non-resource
//! request, a cluster-scoped one) is shown but not linked.

use kubetrail_report::Section;
use kubetrail_store::GroupCount;
use maud::{Markup, html};

use crate::format;
use crate::scope::{NO_USER, Scope};

/// The value of filter parameter `param` that selects exactly `key`, if there is one.
pub fn param_value(param: &str, key: &str) -> Option<String> {
    match (param, key) {
        ("user", "") => Some(NO_USER.to_string()),
        (_, "") => None,
        ("resource", k) => Some(format::exact_resource(k)),
        (_, k) => Some(k.to_string()),
    }
}

/// A key as shown.
fn shown<'k>(param: Option<&str>, key: &'k str) -> &'k str {
    match (param, key) {
        (Some("user"), k) => format::user(k),
        (Some("namespace"), k) => format::namespace(k),
        (Some("resource"), "") => "(non-resource)",
        (_, "") => "(none)",
        (_, k) => k,
    }
}

/// One key: a link to its user's page, to the search it selects, or plain text.
fn key_cell(scope: &Scope, param: Option<&str>, key: &str) -> Markup {
    let text = shown(param, key);
    let value = param.and_then(|p| Some((p, param_value(p, key)?)));
    html! {
        @match value {
            Some(("user", v)) => { a href=(scope.scoped("/user", &[("user", &v)])) { (text) } }
            Some((p, v)) => { a href=(scope.scoped("/search", &[(p, &v), ("stages", "final")])) { (text) } }
            None if key.is_empty() => { span.muted { (text) } }
            None => { (text) }
        }
    }
}

/// A list of one-field groups, largest first, at most `rows` of them; each key links to what
/// it selects (`param`: the filter parameter of the field, `None` when it has none).
pub fn key_table(
    scope: &Scope,
    id: &str,
    title: &str,
    groups: &[GroupCount],
    param: Option<&str>,
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
                                td { (key_cell(scope, param, &g.keys[0])) }
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

/// A section's largest groups, each count a link to its events: `link` (the section's own
/// conditions) plus each key as its parameter (`params`, `None` for a key that is not one).
pub fn section_table(
    scope: &Scope,
    id: &str,
    title: &str,
    section: &Section,
    columns: &[&str],
    params: &[Option<&str>],
    link: &[(&str, &str)],
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
                            tr { (group_cells(scope, g, params, link)) }
                        }
                    }
                }
            }
        }
    }
}

fn group_cells(
    scope: &Scope,
    g: &GroupCount,
    params: &[Option<&str>],
    link: &[(&str, &str)],
) -> Markup {
    // A key with a parameter but no value for it: the count is not a link, rather than a link
    // to more than it counts.
    let keys: Option<Vec<(&str, String)>> = g
        .keys
        .iter()
        .zip(params)
        .filter_map(|(k, p)| p.map(|p| param_value(p, k).map(|v| (p, v))))
        .collect();
    let href = keys.map(|keys| {
        let mut add: Vec<(&str, &str)> = link.to_vec();
        add.extend(keys.iter().map(|(p, v)| (*p, v.as_str())));
        // A row that names users replaces the scope's user filter (within which it was
        // counted) rather than widening it with an OR.
        if add.iter().any(|(k, _)| *k == "user") {
            scope.without("/search", &["user", "by"], &add)
        } else {
            scope.scoped("/search", &add)
        }
    });
    html! {
        @for (k, p) in g.keys.iter().zip(params) {
            td {
                @if *p == Some("user") { (key_cell(scope, Some("user"), k)) }
                @else { (shown(*p, k)) }
            }
        }
        td.num {
            @match href {
                Some(h) => { a href=(h) { (format::count(g.count)) } }
                None => { (format::count(g.count)) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_become_the_parameters_that_select_them() {
        assert_eq!(
            param_value("resource", "pods").as_deref(),
            Some("pods.core/")
        );
        assert_eq!(param_value("user", "").as_deref(), Some(NO_USER));
        assert_eq!(param_value("namespace", ""), None);
        assert_eq!(param_value("resource", ""), None);
        assert_eq!(param_value("code", "403").as_deref(), Some("403"));
    }
}
