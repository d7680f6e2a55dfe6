//! One event, whole: who, what, where from and the outcome; its annotations decoded (RBAC
//! decision and reason, admission webhooks and policies, pod security); the request's other
//! stages; and the original JSON as a collapsible tree.

use kubetrail_model::Stage;
use kubetrail_store::{Filter, Record, TimeRange};
use maud::{Markup, html};
use serde_json::Value;

use crate::layout::{self, Nav};
use crate::scope::with_query;
use crate::search::event_href;
use crate::{Context, UiError, format};

/// How far around the given time the request's other stages are looked for: a watch's
/// ResponseComplete comes up to an hour (the apiserver's longest request timeout) after its
/// ResponseStarted.
const STAGE_WINDOW_MICROS: i64 = 2 * 3600 * 1_000_000;

/// Levels of the JSON tree open at first.
const OPEN_DEPTH: usize = 2;

/// What an annotation means, by its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// What kind of note it is.
    pub kind: &'static str,
    /// What it says, in words.
    pub text: String,
}

fn webhook_text(what: &str, key: &str, value: &str) -> String {
    let place = key
        .rsplit('/')
        .next()
        .and_then(|s| s.strip_prefix("round_"))
        .and_then(|s| s.split_once("_index_"))
        .map(|(r, i)| format!(" (round {r}, webhook {i})"))
        .unwrap_or_default();
    match serde_json::from_str::<Value>(value) {
        Ok(v) => {
            let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("?").to_string();
            let mut s = format!(
                "{what}: webhook {} of configuration {}{place}",
                field("webhook"),
                field("configuration")
            );
            if let Some(m) = v.get("mutated").and_then(Value::as_bool) {
                s.push_str(if m {
                    ", changed the object"
                } else {
                    ", left the object unchanged"
                });
            }
            if let Some(p) = v.get("patchType").and_then(Value::as_str) {
                s.push_str(&format!(", patch type {p}"));
            }
            s
        }
        Err(_) => format!("{what}{place}: {value}"),
    }
}

/// Decodes an annotation the apiserver writes; `None` for ones it does not know.
pub fn decode(key: &str, value: &str) -> Option<Decoded> {
    let d = |kind: &'static str, text: String| Some(Decoded { kind, text });
    match key {
        "authorization.k8s.io/decision" => d(
            "Authorization",
            match value {
                "allow" => "allowed".into(),
                "forbid" => "forbidden".into(),
                other => format!("decision {other}"),
            },
        ),
        "authorization.k8s.io/reason" => d("Authorization", format!("reason: {value}")),
        "pod-security.kubernetes.io/enforce-policy" => {
            d("Pod security", format!("enforced policy: {value}"))
        }
        "pod-security.kubernetes.io/audit-violations" => d(
            "Pod security",
            format!("would violate the audit policy: {value}"),
        ),
        "pod-security.kubernetes.io/exempt" => d("Pod security", format!("exempt by {value}")),
        "validation.policy.admission.k8s.io/validation_failure" => {
            let text = match serde_json::from_str::<Vec<Value>>(value) {
                Ok(failures) => failures
                    .iter()
                    .map(|f| {
                        let s = |k: &str| f.get(k).and_then(Value::as_str).unwrap_or("?");
                        format!(
                            "policy {} (binding {}) failed: {}",
                            s("policy"),
                            s("binding"),
                            s("message")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
                Err(_) => value.to_string(),
            };
            d("Admission policy", text)
        }
        _ if key.starts_with("mutation.webhook.admission.k8s.io/") => {
            d("Admission webhook", webhook_text("mutating", key, value))
        }
        _ if key.starts_with("patch.webhook.admission.k8s.io/") => {
            d("Admission webhook", webhook_text("patched", key, value))
        }
        _ if key.starts_with("apiserver.latency.k8s.io/") => d(
            "Latency",
            format!(
                "{}: {value}",
                key.trim_start_matches("apiserver.latency.k8s.io/")
            ),
        ),
        _ if key.starts_with("missing-san.invalid-cert.kubernetes.io/")
            || key.starts_with("insecure-sha1.invalid-cert.kubernetes.io/") =>
        {
            d("Certificate", format!("{key}: {value}"))
        }
        _ => None,
    }
}

/// The JSON tree: objects and arrays are `<details>`, open for the first levels.
fn tree(key: Option<&str>, value: &Value, depth: usize) -> Markup {
    let label = html! { @if let Some(k) = key { span.k { (k) } ": " } };
    match value {
        Value::Object(map) => html! {
            li {
                details open[depth < OPEN_DEPTH] {
                    summary { (label) span.muted { "{" (map.len()) "}" } }
                    ul { @for (k, v) in map { (tree(Some(k), v, depth + 1)) } }
                }
            }
        },
        Value::Array(items) => html! {
            li {
                details open[depth < OPEN_DEPTH] {
                    summary { (label) span.muted { "[" (items.len()) "]" } }
                    ul { @for v in items { (tree(None, v, depth + 1)) } }
                }
            }
        },
        Value::String(s) => html! { li { (label) span.str { "\"" (s) "\"" } } },
        other => html! { li { (label) span.lit { (other.to_string()) } } },
    }
}

/// The event's time, marked when the event carries no timestamp of its own (then it is the
/// time kubetrail read the file or received the event).
fn time_cell(r: &Record) -> Markup {
    html! {
        (format::precise_time(r.ts_micros))
        @if r.time_inferred() {
            " " span.inferred title="The event carries no timestamp: this is when kubetrail read or received it" { "(inferred)" }
        }
    }
}

fn row(label: &str, value: Markup) -> Markup {
    html! { tr { th { (label) } td { (value) } } }
}

/// Renders `/event?cluster=C&auditID=ID[&stage=S][&ts=MICROS]`.
pub fn render(ctx: &Context<'_>, query: &str) -> Result<Markup, UiError> {
    let pairs = kubetrail_api::params::parse_query(query);
    let get = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    for (k, _) in &pairs {
        if !["cluster", "auditID", "stage", "ts", "hash"].contains(&k.as_str()) {
            return Err(UiError::BadRequest(format!(
                "unknown parameter {k:?}: expected cluster, auditID, stage, ts, hash"
            )));
        }
    }
    let audit_id = get("auditID")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| UiError::BadRequest("parameter auditID: required".into()))?;
    let cluster = get("cluster").filter(|s| !s.is_empty());
    let stage = get("stage").filter(|s| !s.is_empty());
    let ts: Option<i64> = get("ts")
        .map(|t| {
            t.parse()
                .map_err(|_| UiError::BadRequest(format!("parameter ts: invalid time {t:?}")))
        })
        .transpose()?;
    let hash: Option<i64> = get("hash")
        .map(|h| {
            h.parse().map_err(|_| {
                UiError::BadRequest(format!("parameter hash: invalid content hash {h:?}"))
            })
        })
        .transpose()?;
    let mut filter = Filter {
        audit_ids: vec![audit_id.clone()],
        clusters: cluster.iter().cloned().collect(),
        time: ts.map_or(TimeRange::default(), |t| TimeRange {
            from_micros: Some(t.saturating_sub(STAGE_WINDOW_MICROS)),
            to_micros: Some(t.saturating_add(STAGE_WINDOW_MICROS)),
        }),
        ..Filter::default()
    };
    ctx.viewer.restrict(&mut filter)?;
    let mut stages = ctx.store.query(&filter, None, 100)?.records;
    stages.reverse();
    let chosen = stages
        .iter()
        .rev()
        .find(|r| {
            (stage.is_none() || r.stage.map(Stage::as_str) == stage.as_deref())
                && ts.is_none_or(|t| r.ts_micros == t)
                && hash.is_none_or(|h| r.content_hash == h)
        })
        .ok_or_else(|| UiError::NotFound(format!("no event with auditID {audit_id:?}")))?;
    let stored = Stored::parse(&chosen.raw);
    let value = stored.value.as_ref().unwrap_or(&Value::Null);
    let annotations: Vec<(String, String)> = value
        .get("annotations")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().map_or_else(|| v.to_string(), str::to_string),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let raised = crate::alerts::of_event(ctx, &chosen.cluster, &chosen.audit_id)?;
    let changed = write_step(ctx, chosen)?;
    let body = event_body(chosen, &stages, &annotations, &stored);
    let body = html! {
        (crate::alerts::event_section(&raised))
        @if let Some(step) = &changed {
            section.panel.wide #event-changes {
                h2 { "What this write changed" }
                (crate::history::changes_cell(step))
            }
        }
        (body)
    };
    Ok(layout::page(ctx.viewer, "Event", Nav::Search, None, body))
}

/// What `r` changed, when it is a write to a named object: its step in the object's history
/// up to it.
fn write_step(ctx: &Context<'_>, r: &Record) -> Result<Option<kubetrail_diff::Step>, UiError> {
    if !kubetrail_report::WRITE_VERBS.contains(&r.verb.as_str()) {
        return Ok(None);
    }
    let Some(mut filter) = kubetrail_report::history_until(r)? else {
        return Ok(None);
    };
    ctx.viewer.restrict(&mut filter)?;
    let mut steps = crate::history::steps_by_event(ctx, &filter)?;
    Ok(steps.remove(&kubetrail_report::event_key(r)))
}

/// A stored event's text, and its tree when it has one.
struct Stored<'a> {
    /// The text as stored.
    raw: &'a str,
    /// The parsed event, or why the text has no tree: valid JSON can still hold what no
    /// parser's tree can (a lone UTF-16 surrogate escape, `"\ud800"`), and events stored
    /// before the nesting limit ([`kubetrail_model::MAX_DEPTH`]) may nest deeper than the
    /// parser goes.
    value: Result<Value, String>,
}

impl<'a> Stored<'a> {
    fn parse(raw: &'a str) -> Self {
        Stored {
            raw,
            value: serde_json::from_str(raw).map_err(|e| e.to_string()),
        }
    }

    /// The text to show: indented when there is a tree, else exactly as stored.
    fn pretty(&self) -> String {
        match &self.value {
            Ok(v) => serde_json::to_string_pretty(v).unwrap_or_else(|_| self.raw.to_string()),
            Err(_) => self.raw.to_string(),
        }
    }
}

fn event_body(
    r: &Record,
    stages: &[Record],
    annotations: &[(String, String)],
    stored: &Stored<'_>,
) -> Markup {
    let value = stored.value.as_ref().unwrap_or(&Value::Null);
    let resource = format::resource(r);
    let history = format::history_href(r);
    let user = with_query("/user", [("user", format::user(&r.user).to_string())]);
    let search = |k: &'static str, v: &str| with_query("/search", [(k, v.to_string())]);
    let strings = |v: Option<&Value>| {
        v.and_then(Value::as_array)
            .map(|g| {
                g.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    let groups = strings(value.pointer("/user/groups"));
    let sources = strings(value.get("sourceIPs"));
    let text = |p: &str| value.pointer(p).and_then(Value::as_str).unwrap_or("");
    let (status_reason, status_message) = (
        text("/responseStatus/reason"),
        text("/responseStatus/message"),
    );
    let uid = text("/objectRef/uid");
    let stream = kubetrail_model::StreamRequest::of(&r.resource, &r.subresource, &r.request_uri);
    // Distinct events that claim this one's identity: all are stored; the reader must know.
    let rivals: Vec<&Record> = stages
        .iter()
        .filter(|s| {
            s.cluster == r.cluster
                && s.stage == r.stage
                && s.ts_micros == r.ts_micros
                && s.content_hash != r.content_hash
        })
        .collect();
    html! {
        @if !rivals.is_empty() {
            p.conflict #event-conflict role="alert" {
                strong { "Conflict: " }
                (rivals.len())
                @if rivals.len() == 1 { " other event claims" } @else { " other events claim" }
                " this auditID, stage and time with different content. Both were stored; a \
                  sender reused the auditID, or a client set its own Audit-ID header. "
                @for (i, other) in rivals.iter().enumerate() {
                    a href=(event_href(other)) { "other event " (i + 1) }
                    " "
                }
            }
        }
        h1 { (r.verb) " " (if resource.is_empty() { r.request_uri.as_str() } else { resource.as_str() })
            @if !r.name.is_empty() { " " (r.name) } }
        @if stages.len() > 1 {
            nav.stages aria-label="stages of this request" {
                "Stages: "
                @for s in stages {
                    a href=(event_href(s)) aria-current=[(s.stage == r.stage && s.ts_micros == r.ts_micros && s.content_hash == r.content_hash).then_some("page")] {
                        (s.stage.map(Stage::as_str).unwrap_or("(none)"))
                    }
                    " "
                }
            }
        }
        section.panel.wide {
            table.facts {
                (row("Time", time_cell(r)))
                (row("Stage", html! { (r.stage.map(Stage::as_str).unwrap_or("")) " · level " (r.level.map(|l| l.as_str()).unwrap_or("")) }))
                (row("User", html! { a #event-user href=(user) { (format::user(&r.user)) } }))
                @if !groups.is_empty() { (row("Groups", html! { (groups) })) }
                @if !r.impersonated_user.is_empty() { (row("Impersonated user", html! { a href=(with_query("/user", [("user", r.impersonated_user.clone())])) { (r.impersonated_user) } })) }
                (row("Verb", html! { (r.verb) }))
                @if !resource.is_empty() {
                    (row("Object", html! {
                        (resource)
                        @if !r.namespace.is_empty() { " in " a href=(search("namespace", &r.namespace)) { (r.namespace) } }
                        @if !r.name.is_empty() { " · " a #event-history href=(history) { (r.name) " — history" } }
                    }))
                }
                @if !uid.is_empty() { (row("Object UID", html! { code #event-uid { (uid) } })) }
                @if let Some(s) = &stream {
                    @if !s.command.is_empty() { (row("Command", html! { code #event-command { (s.command_line()) } })) }
                    @if !s.ports.is_empty() { (row("Ports", html! { (s.ports.join(", ")) })) }
                    (row("Container", html! {
                        (s.container.as_deref().unwrap_or("(the pod's default)"))
                        @if s.tty { " · interactive terminal" } @else if s.stdin { " · with stdin" }
                    }))
                }
                (row("Request URI", html! { code { (r.request_uri) } }))
                (row("Response", html! {
                    span class=(format::code_class(r.code)) { (format::code(r.code)) }
                    @if !status_reason.is_empty() { " " (status_reason) }
                    @if !status_message.is_empty() { div #event-status-message { (status_message) } }
                }))
                (row("Source", html! { (sources) }))
                (row("User agent", html! { (r.user_agent) }))
                (row("Cluster", html! { (r.cluster) }))
                (row("auditID", html! { code #event-audit-id { (r.audit_id) } }))
            }
        }
        section.panel.wide #annotations {
            h2 { "Annotations" }
            @if annotations.is_empty() {
                p.empty { "None." }
            } @else {
                table {
                    thead { tr { th { "Meaning" } th { "Annotation" } } }
                    tbody {
                        @for (k, v) in annotations {
                            tr {
                                @match decode(k, v) {
                                    Some(d) => { td { strong { (d.kind) } ": " (d.text) } }
                                    None => { td.muted { "—" } }
                                }
                                td { code { (k) } " = " span.str { (v) } }
                            }
                        }
                    }
                }
            }
        }
        section.panel.wide {
            h2 { "Event" }
            @match &stored.value {
                Ok(value) => {
                    ul.json { (tree(None, value, 0)) }
                    details {
                        summary { "Original JSON" }
                        pre.raw { (stored.pretty()) }
                    }
                }
                Err(reason) => {
                    p.note #event-unparsed {
                        "This event's JSON has no tree to show (" (reason) "); its stored text:"
                    }
                    pre.raw { (stored.pretty()) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_are_decoded() {
        let d = decode("authorization.k8s.io/decision", "forbid").unwrap();
        assert_eq!((d.kind, d.text.as_str()), ("Authorization", "forbidden"));
        let d = decode(
            "mutation.webhook.admission.k8s.io/round_0_index_2",
            r#"{"configuration":"istio-sidecar-injector","webhook":"sidecar-injector.istio.io","mutated":true}"#,
        )
        .unwrap();
        assert_eq!(
            d.text,
            "mutating: webhook sidecar-injector.istio.io of configuration istio-sidecar-injector (round 0, webhook 2), changed the object"
        );
        let d = decode(
            "validation.policy.admission.k8s.io/validation_failure",
            r#"[{"message":"replicas must be at most 5","policy":"max-replicas","binding":"prod","expressionIndex":0,"validationActions":["Audit"]}]"#,
        )
        .unwrap();
        assert_eq!(
            d.text,
            "policy max-replicas (binding prod) failed: replicas must be at most 5"
        );
        assert_eq!(
            decode(
                "pod-security.kubernetes.io/enforce-policy",
                "restricted:latest"
            )
            .unwrap()
            .text,
            "enforced policy: restricted:latest"
        );
        assert!(decode("example.com/whatever", "x").is_none());
    }

    fn record(raw: &str) -> Record {
        let event = kubetrail_model::decode_event(raw.as_bytes()).unwrap();
        Record::from_event(event, raw, "c", 0)
    }

    fn body_html(raw: &str) -> String {
        let r = record(raw);
        let stored = Stored::parse(&r.raw);
        event_body(&r, std::slice::from_ref(&r), &[], &stored).into_string()
    }

    #[test]
    fn a_lone_surrogate_is_shown_as_its_stored_text_not_null() {
        let raw = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"s","verb":"create","requestObject":{"name":"\ud800<b>"}}"#;
        let html = body_html(raw);
        assert!(html.contains(r"\ud800&lt;b&gt;"), "{html}");
        assert!(html.contains("event-unparsed"), "{html}");
        assert!(!html.contains("<span class=\"lit\">null</span>"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
    }

    #[test]
    fn the_deepest_accepted_event_has_its_tree() {
        let depth = kubetrail_model::MAX_DEPTH;
        let body = format!("{}7{}", "[".repeat(depth - 1), "]".repeat(depth - 1));
        let raw = format!(r#"{{"auditID":"d","requestObject":{body}}}"#);
        let html = body_html(&raw);
        assert!(!html.contains("event-unparsed"), "{html}");
        assert!(html.contains("<span class=\"lit\">7</span>"), "{html}");
        // Deeper events are refused when decoded, so none is stored; one stored before the
        // limit, deeper than the parser goes, still shows its text.
        let deeper = format!("{}7{}", "[".repeat(200), "]".repeat(200));
        let r = Record {
            raw: format!(r#"{{"auditID":"d","requestObject":{deeper}}}"#),
            ..record(&raw)
        };
        let stored = Stored::parse(&r.raw);
        let html = event_body(&r, &[], &[], &stored).into_string();
        assert!(html.contains("recursion limit exceeded"), "{html}");
        assert!(html.contains(&deeper), "{html}");
    }

    #[test]
    fn events_that_claim_one_identity_are_marked_and_linked() {
        let a = record(
            r#"{"auditID":"abc-123","stage":"ResponseComplete","verb":"get","stageTimestamp":"2023-11-14T22:13:20Z"}"#,
        );
        let b = record(
            r#"{"auditID":"abc-123","stage":"ResponseComplete","verb":"delete","stageTimestamp":"2023-11-14T22:13:20Z"}"#,
        );
        let both = [a.clone(), b.clone()];
        let html = event_body(&a, &both, &[], &Stored::parse(&a.raw)).into_string();
        assert!(html.contains("event-conflict"), "{html}");
        assert!(html.contains("1 other event claims"), "{html}");
        assert!(
            html.contains(&format!("hash={}", b.content_hash)),
            "links to the other: {html}"
        );
        let alone = event_body(&a, std::slice::from_ref(&a), &[], &Stored::parse(&a.raw));
        assert!(!alone.into_string().contains("event-conflict"));
    }

    #[test]
    fn a_time_the_event_does_not_carry_is_marked_inferred() {
        let none = time_cell(&record(r#"{"auditID":"a","verb":"get"}"#)).into_string();
        assert!(none.contains("(inferred)"), "{none}");
        let own = time_cell(&record(
            r#"{"auditID":"a","verb":"get","stageTimestamp":"2023-11-14T22:13:20Z"}"#,
        ))
        .into_string();
        assert!(!own.contains("(inferred)"), "{own}");
    }

    #[test]
    fn the_tree_escapes_keys_and_values() {
        let v: Value =
            serde_json::from_str(r#"{"<k>":"<script>alert(1)</script>","n":[1,true]}"#).unwrap();
        let html = tree(None, &v, 0).into_string();
        assert!(html.contains("&lt;k&gt;"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("<span class=\"lit\">true</span>"));
    }
}
