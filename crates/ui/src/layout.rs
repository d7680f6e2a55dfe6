//! The page shell: header and navigation, the scope bar (time range, cluster, namespace,
//! user), the sign-in page and error pages.

use kubetrail_store::{Filter, TimeRange};
use maud::{DOCTYPE, Markup, html};

use crate::scope::{PRESETS, Range, Scope};
use crate::{Context, ICON_PATH, STYLE_PATH, UiError, Viewer, format};

/// Which navigation entry is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// Overview.
    Overview,
    /// Resource operations.
    Resources,
    /// Search (and event, user, history pages reached from it).
    Search,
    /// What the newest writes changed.
    Changes,
    /// Alerts and the rule catalogue.
    Alerts,
    /// Every cluster's activity.
    Fleet,
    /// Not one of the above.
    None,
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="referrer" content="same-origin";
            title { (title) " · kubetrail" }
            link rel="stylesheet" href=(STYLE_PATH);
            link rel="icon" href=(ICON_PATH) type="image/svg+xml";
        }
    }
}

fn header(viewer: Option<&Viewer>, nav: Nav, scope: Option<&Scope>) -> Markup {
    let link = |path: &str| match scope {
        Some(s) => s.scoped(path, &[]),
        None => path.to_string(),
    };
    let entries = [
        (Nav::Overview, "/", "Overview"),
        (Nav::Resources, "/resources", "Resource operations"),
        (Nav::Search, "/search", "Search"),
        (Nav::Changes, "/changes", "Changes"),
        (Nav::Alerts, "/alerts", "Alerts"),
        (Nav::Fleet, "/fleet", "Fleet"),
    ];
    html! {
        header.top {
            a.brand href="/" { img src=(ICON_PATH) alt="" width="22" height="22"; "kubetrail" }
            nav {
                @for (n, path, label) in entries {
                    a href=(link(path)) aria-current=[(n == nav).then_some("page")] { (label) }
                }
            }
            @if let Some(v) = viewer {
                div.viewer {
                    span title="signed in as" { (v.name) }
                    @if let Some(c) = &v.cluster { " · cluster " strong { (c) } }
                    @if v.session {
                        form method="post" action="/logout" {
                            button type="submit" { "Sign out" }
                        }
                    }
                }
            }
        }
    }
}

/// The scope bar's "hide system identities" value: every `system:` user left out
/// (controllers, nodes, service accounts, the apiserver itself).
pub const HIDE_SYSTEM: &str = "!system:*";

/// The scope bar: range presets, a custom range, and cluster / namespace / user filters.
/// `hidden` are page keys kept across a change of scope (e.g. the search page's own filter).
pub fn scope_bar(scope: &Scope, path: &str, hidden: &[&str]) -> Markup {
    let preset = |name: &str| scope.without(path, &["range", "from", "to"], &[("range", name)]);
    let current = match scope.range {
        Range::Last(n) => n,
        Range::Custom => "custom",
    };
    let kept: Vec<(&str, &str)> = hidden
        .iter()
        .flat_map(|k| scope.all(k).into_iter().map(move |v| (*k, v)))
        .collect();
    html! {
        div.scope {
            div.ranges role="group" aria-label="time range" {
                @for (name, _) in PRESETS {
                    a.range href=(preset(name)) aria-current=[(current == name).then_some("true")] { (name) }
                }
            }
            form.scopeform method="get" action=(path) {
                @for (k, v) in &kept { input type="hidden" name=(k) value=(v); }
                input type="hidden" name="range" value="custom";
                label { "From (UTC) " input type="datetime-local" name="from" value=(format::input_time(scope.from_micros)); }
                label { "To (UTC) " input type="datetime-local" name="to" value=(format::input_time(scope.to_micros)); }
                @if scope.clusters.is_empty() {
                    label { "Cluster " input type="text" name="cluster" value=[scope.get("cluster")] placeholder="all"; }
                } @else {
                    label { "Cluster "
                        select name="cluster" {
                            option value="" selected[scope.get("cluster").is_none()] { "all" }
                            @for c in &scope.clusters {
                                option value=(c) selected[scope.get("cluster") == Some(c.as_str())] { (c) }
                            }
                            // A cluster asked for that the store has no events of stays shown.
                            @for (c, _) in scope.unknown_clusters() {
                                option value=(c) selected[scope.get("cluster") == Some(c)] { (c) " (no events)" }
                            }
                        }
                    }
                }
                label { "Namespace " input type="text" name="namespace" value=[scope.get("namespace")] placeholder="all"; }
                @let shown_user = scope.all("user").into_iter().find(|u| *u != HIDE_SYSTEM);
                label { "User " input type="text" name="user" value=[shown_user] placeholder="all (!name excludes)"; }
                // Alerts are not filtered by exclusion (their page refuses it by name).
                @if !matches!(path, "/alerts" | "/rules") {
                    label.check { input type="checkbox" name="user" value=(HIDE_SYSTEM) checked[scope.all("user").contains(&HIDE_SYSTEM)]; " Hide system identities" }
                }
                button type="submit" { "Apply" }
            }
            @for (c, closest) in scope.unknown_clusters() {
                p.notice.unknown-cluster role="status" {
                    "No events from cluster " strong { (c) } " in the store"
                    @if let Some(n) = closest { " — did you mean " a href=(scope.without(path, &["cluster"], &[("cluster", n)])) { (n) } "?" }
                    "."
                }
            }
            p.window {
                "Showing " (format::time(scope.from_micros)) " – " (format::time(scope.to_micros)) " UTC"
                @if current != "custom" { " (last " (current) ")" }
            }
        }
    }
}

/// For a range that holds none of the scope's events: where the newest one is, with a link to
/// the day before it (an imported incident of last month leaves today's pages empty); or that
/// the store holds none for this scope at all.
pub fn empty_range(ctx: &Context<'_>, scope: &Scope, path: &str) -> Result<Markup, UiError> {
    let anytime = Filter {
        time: TimeRange::default(),
        ..scope.filter.clone()
    };
    let newest = ctx
        .store
        .query(&anytime, None, 1)?
        .records
        .into_iter()
        .next();
    Ok(html! {
        p.notice #empty-range role="status" {
            @match newest {
                Some(r) => {
                    "Nothing in this range. The newest event for this scope is from "
                    (crate::format::time(r.ts_micros)) " UTC: "
                    a href=(scope.without(path, &["range", "from", "to", "cursor"], &[
                        ("range", "custom"),
                        ("from", &kubetrail_store::text::format_micros(r.ts_micros - 86_400_000_000)),
                        ("to", &kubetrail_store::text::format_micros(r.ts_micros + 60_000_000)),
                    ])) { "show the day up to it" } "."
                }
                None => { "The store holds no events for this scope, in any range." }
            }
        }
    })
}

/// A whole page.
pub fn page(viewer: &Viewer, title: &str, nav: Nav, scope: Option<&Scope>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                (header(Some(viewer), nav, scope))
                main { (body) }
            }
        }
    }
}

/// The sign-in page. `next` is where to go afterwards (a local path), `error` why the last
/// attempt failed.
pub fn login_page(next: &str, error: Option<&str>) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head("Sign in"))
            body.login {
                main {
                    form.login method="post" action="/login" {
                        h1 { img src=(ICON_PATH) alt="" width="32" height="32"; "kubetrail" }
                        p { "Sign in with an access token of role " code { "read" } " or " code { "admin" } "." }
                        @if let Some(e) = error { p.error role="alert" { (e) } }
                        input type="hidden" name="next" value=(next);
                        label for="token" { "Token" }
                        input #token type="password" name="token" autocomplete="current-password" required autofocus;
                        button type="submit" { "Sign in" }
                    }
                }
            }
        }
    }
    .into_string()
}

/// A page saying what went wrong.
pub fn error_page(viewer: Option<&Viewer>, error: &UiError) -> Markup {
    let title = match error.status() {
        400 => "Bad request",
        403 => "Forbidden",
        404 => "Not found",
        503 => "Store unavailable",
        _ => "Error",
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                (header(viewer, Nav::None, None))
                main {
                    h1 { (title) }
                    p.error role="alert" { (error) }
                    p { a href="/" { "Back to the overview" } }
                }
            }
        }
    }
}

/// A count that links to the events behind it.
pub fn tile(label: &str, value: u64, href: &str, id: &str, alert: bool) -> Markup {
    html! {
        a.tile.alert[alert && value > 0] href=(href) data-tile=(id) {
            span.value { (format::count(value)) }
            span.label { (label) }
        }
    }
}
