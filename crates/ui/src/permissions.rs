//! The user page's RBAC panels: "Permissions" (what the server's RBAC snapshot grants the
//! identity, each permission used or not in the page's range, and the refused requests nothing
//! grants) and "Least-privilege role" (the objects `kubetrail rbac suggest` would print for
//! the requests in range, with a download).

use kubetrail_rbac::{Authorizer, Naming, Options, SubjectReport, SubjectSelector};
use kubetrail_store::Filter;
use maud::{Markup, html};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use crate::scope::Scope;
use crate::{Context, UiError, format};

/// The most requests the panels read (the newest, when the range holds more).
const MAX_REQUESTS: usize = 20_000;

/// Both panels for `name` over `scope`'s range and clusters.
pub fn panels(ctx: &Context<'_>, scope: &Scope, name: &str) -> Result<Markup, UiError> {
    let selector = SubjectSelector::User(name.to_string());
    let filter = Filter {
        time: scope.filter.time,
        clusters: scope.filter.clusters.clone(),
        ..Filter::default()
    };
    let trailed =
        kubetrail_report::rbac_requests(&filter, Some(&selector), MAX_REQUESTS, |f, c, n| {
            ctx.store.query_heads(f, c, n)
        })?;
    let capped = trailed.capped;
    let mixed = trailed.one_cluster().err();
    let requests = &trailed.requests;
    let report = match (ctx.rbac, &mixed) {
        (Some(Ok(objects)), None) => Some(Ok(kubetrail_rbac::unused(
            &Authorizer::new(objects),
            &selector.subject(),
            requests,
            &Default::default(),
        ))),
        (Some(Err(e)), _) => Some(Err(e.to_string())),
        (Some(Ok(_)), Some(e)) => Some(Err(format!("{e}: pick a cluster in the scope bar"))),
        (None, _) => None,
    };
    let suggested = match &mixed {
        Some(e) => Err(format!("{e}: pick a cluster in the scope bar")),
        None => Ok(kubetrail_rbac::suggest(
            requests,
            &selector,
            &Authorizer::new(&kubetrail_rbac::default_existing()),
            &Options::default(),
            &Naming::default(),
        )
        .ok()
        .map(|g| kubetrail_rbac::to_yaml(&g.documents(false)))),
    };
    Ok(html! {
        @if capped {
            p.muted { "The RBAC panels read the newest " (format::count(MAX_REQUESTS as u64)) " requests of this range." }
        }
        section.panel.wide #permissions {
            h2 { "Permissions" }
            @match &report {
                None => p.muted { "The server knows no RBAC to compare with: start serve with --rbac FILE or --rbac-from-trail." },
                Some(Err(e)) => p.muted { (e) },
                Some(Ok(r)) => (permissions_table(scope, r)),
            }
        }
        section.panel.wide #least-privilege {
            h2 { "Least-privilege role" }
            @match &suggested {
                Err(e) => p.muted { (e) },
                Ok(None) => p.empty { "No request of this identity in this range." },
                Ok(Some(yaml)) if yaml.is_empty() => p.muted { "Everything this identity did is allowed to every authenticated user." },
                Ok(Some(yaml)) => {
                    p.muted { "What allows exactly the requests of this range (kubetrail rbac suggest): apply with kubectl apply -f." }
                    a.more download=(format!("{}-rbac.yaml", file_name(name)))
                        href=(format!("data:application/yaml;charset=utf-8,{}", utf8_percent_encode(yaml, NON_ALPHANUMERIC))) { "download YAML" }
                    pre.yaml { (yaml) }
                }
            }
        }
    })
}

/// A file name for `name`: letters, digits, `.` and `-` kept.
fn file_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn permissions_table(scope: &Scope, r: &SubjectReport) -> Markup {
    html! {
        p {
            (r.atoms.len()) " granted, " strong { (r.unused()) " unused" } " in this range"
            @if r.cluster_admin() { ", " strong.bad { "cluster-admin equivalent" } }
            " (groups assumed: " (r.user.groups.join(", ")) ")."
        }
        @if r.atoms.is_empty() { p.empty { "No binding grants anything to this identity." } }
        @else {
            table.permissions {
                thead { tr { th { "Status" } th { "Permission" } th.num { "Uses" } th { "Last" } th { "Granted by" } } }
                tbody {
                    @for a in &r.atoms {
                        tr class=(if a.uses > 0 { "used" } else { "unused" }) {
                            td {
                                (if a.uses > 0 { "used" } else { "unused" })
                                @if a.atom.is_wildcard() { " (wildcard)" }
                            }
                            td { (format::breakable(&a.atom.describe())) }
                            td.num { (format::count(a.uses)) }
                            td {
                                @if let Some((id, t)) = &a.last {
                                    a href=(scope.href("/search", &[("auditID", id.as_str())])) { (format::time(*t)) }
                                }
                            }
                            td { (format::breakable(&a.via.join(", "))) }
                        }
                    }
                }
            }
        }
        @if !r.denied.is_empty() {
            h3 { "Refused, and not granted" }
            table.permissions {
                thead { tr { th { "Request" } th.num { "Times" } th { "Last" } } }
                tbody {
                    @for d in &r.denied {
                        tr {
                            td { (format::breakable(&d.request.describe())) }
                            td.num { (format::count(d.count)) }
                            td { a href=(scope.href("/search", &[("auditID", d.last.0.as_str())])) { (format::time(d.last.1)) } }
                        }
                    }
                }
            }
        }
    }
}
