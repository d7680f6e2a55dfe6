//! What the detection rules raised: the Alerts page (newest first, filtered by the scope bar's
//! range, cluster, namespace and user, and by rule and severity; each alert links to its
//! events, its user and its rule), the rule catalogue (what each rule detects, the upstream
//! rules it covers, the audit level it needs, its parameters and how often it fired), and the
//! alerts one event raised, for the event page.

use kubetrail_api::params::{SEVERITIES, alert_filter_from_pairs};
use kubetrail_api::wire::RuleItem;
use kubetrail_store::{AlertField, AlertFilter, AlertRecord, Filter};
use maud::{Markup, html};
use serde_json::Value;

use crate::layout::{self, Nav};
use crate::scope::{Scope, with_query};
use crate::{Context, UiError, format};

/// Alerts a page lists at most.
pub const MAX_LISTED: usize = 500;

/// The alert filter of a page's scope: its range and scope-bar filters, with `rule`,
/// `severity` and `minSeverity` read as the API reads them. Filters alerts do not have (verb,
/// resource, ...) are refused by name rather than ignored.
fn alert_filter(scope: &Scope, now_micros: i64) -> Result<AlertFilter, UiError> {
    let f = &scope.filter;
    let unsupported = [
        ("group", f.groups.is_empty()),
        ("impersonated", f.impersonated_users.is_empty()),
        ("identity", f.identities.is_empty()),
        (
            "user (a !name that leaves users out)",
            f.excluded_users.is_empty(),
        ),
        ("verb", f.verbs.is_empty()),
        ("resource", f.resources.is_empty()),
        ("name", f.names.is_empty()),
        ("sourceIP", f.source_ips.is_empty()),
        ("code", f.codes.is_empty()),
        ("decision", f.decision.is_none()),
        ("text", f.text.is_none()),
    ];
    if let Some((key, _)) = unsupported.iter().find(|(_, empty)| !empty) {
        return Err(UiError::BadRequest(format!(
            "parameter {key}: alerts are filtered by cluster, namespace, user, auditID, rule, severity and minSeverity"
        )));
    }
    let pairs: Vec<(String, String)> = scope
        .extra
        .iter()
        .filter(|(k, _)| k != "cursor")
        .cloned()
        .collect();
    let (mut filter, _) =
        alert_filter_from_pairs(&pairs, &[], now_micros).map_err(UiError::BadRequest)?;
    filter.clusters = f.clusters.clone();
    filter.namespaces = f.namespaces.clone();
    filter.users = f.users.clone();
    filter.audit_ids = f.audit_ids.clone();
    filter.time = f.time;
    Ok(filter)
}

/// A rule id the viewer names that no rule has and no stored alert carries.
fn check_rules(ctx: &Context<'_>, filter: &AlertFilter) -> Result<(), UiError> {
    if filter.rules.is_empty() {
        return Ok(());
    }
    let mut known: Vec<String> = ctx
        .rules
        .unwrap_or(&[])
        .iter()
        .map(|r| r.id.clone())
        .collect();
    let all = AlertFilter {
        clusters: filter.clusters.clone(),
        ..AlertFilter::default()
    };
    known.extend(
        ctx.store
            .count_alerts(&all, AlertField::Rule)?
            .into_iter()
            .map(|(r, _)| r),
    );
    for r in &filter.rules {
        if !known.contains(r) {
            return Err(UiError::BadRequest(
                match kubetrail_report::closest(r, known.iter().map(String::as_str)) {
                    Some(k) => format!("parameter rule: unknown rule {r:?}: did you mean {k:?}?"),
                    None => format!("parameter rule: unknown rule {r:?}"),
                },
            ));
        }
    }
    Ok(())
}

/// The alert's JSON, or an empty object when it does not read back.
fn json(a: &AlertRecord) -> Value {
    serde_json::from_str(&a.json).unwrap_or(Value::Null)
}

fn severity_badge(severity: &str) -> Markup {
    html! { span class=(format!("sev sev-{severity}")) { (severity) } }
}

/// "pods/exec prod/web", from an alert's objectRef.
fn object(v: &Value) -> String {
    let o = &v["objectRef"];
    let text = |k: &str| o[k].as_str().unwrap_or("").to_string();
    let mut s = text("resource");
    if !text("subresource").is_empty() {
        s = format!("{s}/{}", text("subresource"));
    }
    match (text("namespace"), text("name")) {
        (ns, name) if !ns.is_empty() => format!("{s} {ns}/{name}"),
        (_, name) if !name.is_empty() => format!("{s} {name}"),
        _ => s,
    }
}

/// The link to the triggering event's page.
fn event_link(a: &AlertRecord) -> String {
    with_query(
        "/event",
        [
            ("cluster", a.cluster.clone()),
            ("auditID", a.audit_id.clone()),
        ],
    )
}

/// The table of alerts; `scope` builds the user and rule links.
pub fn alerts_table(scope: &Scope, alerts: &[AlertRecord]) -> Markup {
    html! {
        table.events.alerts {
            thead {
                tr {
                    th { "Time (UTC)" } th { "Severity" } th { "Rule" } th { "Cluster" }
                    th { "User" } th { "Object" } th { "Events" }
                }
            }
            tbody {
                @for a in alerts {
                    @let v = json(a);
                    @let related = v["relatedAuditIDs"].as_array().map_or(0, Vec::len);
                    tr data-rule=(a.rule) data-audit-id=(a.audit_id) {
                        td.time { (format::time(a.ts_micros)) }
                        td { (severity_badge(&a.severity)) }
                        td { a href=(scope.scoped("/alerts", &[("rule", &a.rule)])) { (a.rule) } " " a.muted href=(format!("/rules#rule-{}", a.rule)) title="the rule" { "ⓘ" } }
                        td { (a.cluster) }
                        td { a href=(scope.scoped("/user", &[("user", format::user(&a.user))])) { (format::user(&a.user)) } }
                        td { (object(&v)) }
                        td {
                            a href=(event_link(a)) { "event" }
                            @if related > 0 { " " span.muted { "+" (related) " related" } }
                        }
                    }
                }
            }
        }
    }
}

/// Renders `/alerts`.
pub fn render(ctx: &Context<'_>, query: &str) -> Result<Markup, UiError> {
    let scope = Scope::parse(
        query,
        &["rule", "severity", "minSeverity"],
        ctx.now_micros,
        ctx.viewer,
    )?;
    let filter = alert_filter(&scope, ctx.now_micros)?;
    check_rules(ctx, &filter)?;
    let alerts = ctx.store.query_alerts(&filter, MAX_LISTED)?;
    let by_severity = ctx.store.count_alerts(
        &AlertFilter {
            severities: Vec::new(),
            ..filter.clone()
        },
        AlertField::Severity,
    )?;
    let count = |s: &str| {
        by_severity
            .iter()
            .find(|(k, _)| k == s)
            .map_or(0, |(_, n)| *n)
    };
    let rules: Vec<&str> = ctx
        .rules
        .unwrap_or(&[])
        .iter()
        .map(|r| r.id.as_str())
        .collect();
    let least = scope.extra("minSeverity").unwrap_or("");
    let body = html! {
        h1 { "Alerts" }
        @if ctx.rules.is_none() {
            p.notice { "Live detection is off on this server (" code { "noDetection" } "); the alerts listed were stored by " code { "kubetrail import --detect" } "." }
        }
        (layout::scope_bar(&scope, "/alerts", &["rule", "severity", "minSeverity"]))
        div.tiles {
            @for s in SEVERITIES.iter().rev() {
                (layout::tile(s, count(s), &scope.without("/alerts", &["severity", "minSeverity"], &[("severity", s)]), &format!("sev-{s}"), matches!(*s, "critical" | "high")))
            }
        }
        form.filter method="get" action="/alerts" {
            @for k in ["range", "from", "to", "cluster", "namespace", "user"] {
                @for v in scope.all(k) { input type="hidden" name=(k) value=(v); }
            }
            label { "Rule "
                input type="text" name="rule" list="rule-ids" value=[scope.extra("rule")] placeholder="all";
                datalist #rule-ids { @for r in &rules { option value=(r) {} } }
            }
            label { "At least "
                select name="minSeverity" {
                    option value="" selected[least.is_empty()] { "any severity" }
                    @for s in SEVERITIES { option value=(s) selected[least == s] { (s) } }
                }
            }
            button type="submit" { "Filter" }
        }
        section.panel.wide {
            h2 { "Newest first" @if alerts.len() == MAX_LISTED { span.muted { " (the latest " (MAX_LISTED) ")" } } }
            @if alerts.is_empty() { p.empty { "No alerts in this range." } }
            @else { (alerts_table(&scope, &alerts)) }
        }
    };
    Ok(layout::page(
        ctx.viewer,
        "Alerts",
        Nav::Alerts,
        Some(&scope),
        body,
    ))
}

fn references(r: &RuleItem) -> Markup {
    html! {
        @for (source, names) in &r.references {
            @if let Some(names) = names.as_array() {
                div.refs { span.muted { (source) ": " } (names.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; ")) }
            }
        }
    }
}

fn parameter_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Renders `/rules`: the catalogue, with alert counts in the scope's range.
pub fn render_rules(ctx: &Context<'_>, query: &str) -> Result<Markup, UiError> {
    let scope = Scope::of(ctx, query, &[])?;
    let filter = alert_filter(&scope, ctx.now_micros)?;
    let counts = ctx.store.count_alerts(&filter, AlertField::Rule)?;
    let count = |id: &str| counts.iter().find(|(k, _)| k == id).map_or(0, |(_, n)| *n);
    let body = html! {
        h1 { "Detection rules" }
        (layout::scope_bar(&scope, "/rules", &[]))
        @match ctx.rules {
            None => p.notice { "Live detection is off on this server (" code { "noDetection" } ")." }
            Some(rules) => {
                p.muted { (rules.len()) " rules run on every committed event. Alerts are counted in the range above." }
                table.events.rules {
                    thead { tr { th { "Rule" } th { "Severity" } th { "Needs" } th { "Kind" } th.num { "Alerts" } th { "What it detects" } } }
                    tbody {
                        @for r in rules {
                            tr id=(format!("rule-{}", r.id)) data-rule=(r.id) {
                                td { strong { (r.id) } br; span.muted { (r.title) } }
                                td { (severity_badge(&r.severity)) }
                                td { (r.level) }
                                td { (r.kind) }
                                td.num { a href=(scope.scoped("/alerts", &[("rule", &r.id)])) { (format::count(count(&r.id))) } }
                                td {
                                    details {
                                        summary { (r.description.split(". ").next().unwrap_or("")) }
                                        p { (r.description) }
                                        (references(r))
                                        @if !r.parameters.is_empty() {
                                            table.params {
                                                @for (k, v) in &r.parameters { tr { th { (k) } td { code { (parameter_text(v)) } } } }
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
    };
    Ok(layout::page(
        ctx.viewer,
        "Rules",
        Nav::Alerts,
        Some(&scope),
        body,
    ))
}

/// The alerts an event raised, for its page.
pub fn of_event(
    ctx: &Context<'_>,
    cluster: &str,
    audit_id: &str,
) -> Result<Vec<AlertRecord>, UiError> {
    let mut filter = AlertFilter {
        clusters: vec![cluster.to_string()],
        audit_ids: vec![audit_id.to_string()],
        ..AlertFilter::default()
    };
    let mut scoped = Filter {
        clusters: filter.clusters.clone(),
        ..Filter::default()
    };
    ctx.viewer.restrict(&mut scoped)?;
    filter.clusters = scoped.clusters;
    Ok(ctx.store.query_alerts(&filter, 50)?)
}

/// The section of the event page listing the alerts the event raised.
pub fn event_section(alerts: &[AlertRecord]) -> Markup {
    html! {
        @if !alerts.is_empty() {
            section.panel.wide #event-alerts {
                h2 { "Alerts this request raised" }
                ul {
                    @for a in alerts {
                        li data-rule=(a.rule) { (severity_badge(&a.severity)) " " a href=(format!("/rules#rule-{}", a.rule)) { (a.rule) } }
                    }
                }
            }
        }
    }
}

/// The overview's panel: alerts by severity and the rules that fired most, in the scope; each
/// count links to the Alerts page. Absent when the scope filters by what alerts do not carry.
pub fn overview_panel(ctx: &Context<'_>, scope: &Scope) -> Result<Option<Markup>, UiError> {
    let Ok(filter) = alert_filter(scope, ctx.now_micros) else {
        return Ok(None);
    };
    let by_severity = ctx.store.count_alerts(&filter, AlertField::Severity)?;
    let top = ctx.store.count_alerts(&filter, AlertField::Rule)?;
    let count = |s: &str| {
        by_severity
            .iter()
            .find(|(k, _)| k == s)
            .map_or(0, |(_, n)| *n)
    };
    Ok(Some(html! {
        section.panel #alerts-by-severity {
            h2 { "Alerts by severity " a.more href=(scope.scoped("/alerts", &[])) { "all alerts →" } }
            table {
                tbody {
                    @for s in SEVERITIES.iter().rev() {
                        tr data-severity=(s) {
                            td { (severity_badge(s)) }
                            td.num { a href=(scope.scoped("/alerts", &[("severity", s)])) { (format::count(count(s))) } }
                        }
                    }
                }
            }
            h2 { "Top rules" }
            @if top.is_empty() { p.empty { "No alerts in this range." } }
            @else {
                table #top-rules {
                    tbody {
                        @for (rule, n) in top.iter().take(5) {
                            tr data-rule=(rule) {
                                td { a href=(format!("/rules#rule-{rule}")) { (rule) } }
                                td.num { a href=(scope.scoped("/alerts", &[("rule", rule)])) { (format::count(*n)) } }
                            }
                        }
                    }
                }
            }
        }
    }))
}
