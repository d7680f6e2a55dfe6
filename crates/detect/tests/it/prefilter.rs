//! [`Engine::may_concern`] never dismisses an event that matters: over the real samples, the
//! upstream rule tests' events and a generated day, an engine fed only the events whose head
//! (the columns a store keeps) may concern a rule raises exactly the alerts of an engine fed
//! every event — and the prefilter does dismiss most generated traffic.

#![allow(clippy::unwrap_used)]

use kubetrail_detect::{Alert, Engine, Head, Overrides, Runtime, load};
use kubetrail_model::{ApiVersion, Event, decode_event, decode_event_value};
use serde_json::Value;

fn engine() -> Engine {
    let rt = Runtime::new();
    let rules = load(&rt, true, &[], &Overrides::new()).unwrap();
    Engine::new(rt, rules)
}

fn head(e: &Event) -> Head<'_> {
    let o = e.object_ref.as_ref();
    let field = |f: fn(&kubetrail_model::ObjectReference) -> &Option<String>| {
        o.and_then(|o| f(o).as_deref()).unwrap_or("")
    };
    let impersonated = e
        .impersonated_user
        .as_ref()
        .and_then(|u| u.username.as_deref())
        .is_some_and(|n| !n.is_empty());
    Head {
        verb: e.verb.as_deref().unwrap_or(""),
        resource: field(|o| &o.resource),
        subresource: field(|o| &o.subresource),
        api_group: field(|o| &o.api_group),
        namespace: field(|o| &o.namespace),
        user: e
            .user
            .as_ref()
            .and_then(|u| u.username.as_deref())
            .unwrap_or(""),
        groups: e.user.as_ref().map(|u| u.groups.as_slice()).unwrap_or(&[]),
        code: e.response_status.as_ref().and_then(|s| s.code),
        decision: e
            .annotations
            .get("authorization.k8s.io/decision")
            .map_or("", String::as_str),
        // As a store's columns and text tell it: a name says yes; no impersonatedUser at all
        // says no; one without a name (groups alone) cannot be told.
        impersonated: match (&e.impersonated_user, impersonated) {
            (None, _) => Some(false),
            (Some(_), true) => Some(true),
            (Some(_), false) => None,
        },
    }
}

/// An alert's identity: cluster, rule, auditID.
type Key = (String, String, String);

fn key(a: &Alert) -> Key {
    (a.cluster.clone(), a.rule.clone(), a.audit_id.clone())
}

/// Alerts of every event, and of the events the prefilter keeps; and how many it kept.
fn both(events: &[Event]) -> (Vec<Key>, Vec<Key>, usize) {
    let (mut all, mut kept) = (engine(), engine());
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let mut passed = 0;
    for e in events {
        all.observe(e, "c", &mut a);
        if kept.may_concern(&head(e)) {
            passed += 1;
            kept.observe(e, "c", &mut b);
        } else {
            kept.pass();
        }
    }
    (
        a.iter().map(key).collect(),
        b.iter().map(key).collect(),
        passed,
    )
}

fn lines(text: &str) -> Vec<Event> {
    text.lines()
        .filter_map(|l| decode_event(l.as_bytes()).ok())
        .collect()
}

#[test]
fn the_prefilter_keeps_every_alert_of_the_samples_and_upstream_tests() {
    let mut events = lines(include_str!("../data/falco/falco-k8saudit.jsonl"));
    events.extend(lines(include_str!(
        "../data/falco/falco-k8saudit-variants.jsonl"
    )));
    for l in include_str!("../data/panther/panther-rule-tests.jsonl").lines() {
        let t: Value = serde_json::from_str(l).unwrap();
        if let Ok(e) = decode_event_value(t["event"].clone(), Some(ApiVersion::V1)) {
            events.push(e);
        }
    }
    let (all, kept, _) = both(&events);
    assert!(all.len() > 50, "the samples raise alerts: {}", all.len());
    assert_eq!(kept, all);
}

#[test]
fn the_prefilter_keeps_every_alert_of_a_generated_day_and_dismisses_most_of_it() {
    let text = include_str!("../../../../testdata/policy/seed-audit-policy.yaml");
    let policy = kubetrail_policy::load_str(text, Default::default())
        .policy
        .unwrap();
    let config = kubetrail_traffic::Config {
        seed: 3,
        start: "2026-11-01T00:00:00Z".parse().unwrap(),
        rate: 2.0,
        cluster: 0,
    };
    let mut generator = kubetrail_traffic::Generator::new(&policy, &config);
    let mut out = Vec::new();
    while out.len() < 100_000 {
        generator.next_request(&mut out);
    }
    let events: Vec<Event> = out
        .iter()
        .map(|l| decode_event(l.json.as_bytes()).unwrap())
        .collect();
    let (all, kept, passed) = both(&events);
    assert!(!all.is_empty());
    assert_eq!(kept, all);
    let share = passed as f64 / events.len() as f64;
    eprintln!(
        "the prefilter keeps {:.1} % of generated events",
        share * 100.0
    );
    assert!(share < 0.5, "the prefilter keeps {:.1} %", share * 100.0);
}
