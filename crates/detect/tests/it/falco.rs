//! Falco's own k8saudit rule tests (falcosecurity/falco `test/falco_k8s_audit_tests.yaml`),
//! replayed through the default pack: for every test whose rule a pack rule covers (its
//! `references.falco`), the pack fires exactly when Falco does.

use std::collections::BTreeMap;

use kubetrail_detect::{Engine, Runtime, load};
use kubetrail_model::{Event, decode_event};
use serde_json::Value;

const TESTS: &str = include_str!("../data/falco/falco-k8saudit-rule-tests.jsonl");
const EVENTS: &str = include_str!("../data/falco/falco-k8saudit.jsonl");
const EVENTS_TSV: &str = include_str!("../data/falco/falco-k8saudit.tsv");
const VARIANTS: &str = include_str!("../data/falco/falco-k8saudit-variants.jsonl");
const VARIANTS_TSV: &str = include_str!("../data/falco/falco-k8saudit-variants.tsv");

/// The trace events of a trace file: its own lines, or its hand-edited variant.
fn trace(file: &str) -> Vec<Event> {
    let pick = |jsonl: &str, tsv: &str| -> Vec<Event> {
        let lines: Vec<&str> = jsonl.lines().collect();
        tsv.lines()
            .skip(1)
            .filter(|row| row.ends_with(&format!(":{file}")))
            .map(|row| {
                let n: usize = row
                    .split('\t')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("line number");
                decode_event(lines[n - 1].as_bytes()).expect("trace events decode")
            })
            .collect()
    };
    let variant = pick(VARIANTS, VARIANTS_TSV);
    if variant.is_empty() {
        pick(EVENTS, EVENTS_TSV)
    } else {
        variant
    }
}

/// Tests where Falco stays silent name no rule; the rule they are about is in their name.
/// The allow-list files they load are reproduced as parameters.
fn negative_rule(test: &str) -> Option<&'static str> {
    Some(match test {
        "compat_engine_v4_create_privileged_trusted_pod"
        | "compat_engine_v4_create_unprivileged_pod"
        | "create_privileged_trusted_pod"
        | "create_unprivileged_pod"
        | "create_unprivileged_trusted_pod" => "Create Privileged Pod",
        "compat_engine_v4_create_hostnetwork_trusted_pod"
        | "create_hostnetwork_trusted_pod"
        | "create_nohostnetwork_pod"
        | "create_nohostnetwork_trusted_pod" => "Create HostNetwork Pod",
        "create_sensitive_mount_trusted_pod"
        | "create_unsensitive_mount_pod"
        | "create_unsensitive_mount_trusted_pod" => "Create Sensitive Mount Pod",
        "create_nonodeport_service" => "Create NodePort Service",
        // Allow-list-only and activity rules, left out of the pack (DETECTION-PACK.md §5).
        _ => return None,
    })
}

/// Where DETECTION-PACK.md chose otherwise than Falco, and why.
const EXCEPTIONS: &[(&str, &str)] = &[
    (
        "create_pod_in_kube_system_namespace",
        "the pod is created by the replicaset controller, a system principal: §3 pod-in-kube-namespace excludes controller-created replicas (Panther)",
    ),
    (
        "create_pod_in_kube_public_namespace",
        "the pod is created by the replicaset controller, a system principal: §3 pod-in-kube-namespace excludes controller-created replicas (Panther)",
    ),
];

#[test]
fn the_pack_agrees_with_falcos_rule_tests() {
    let rt = Runtime::new();
    let base = load(&rt, true, &[], &Default::default()).expect("the pack loads");
    let mut checked = 0;
    let mut disagreements = Vec::new();
    let mut skipped = Vec::new();
    for line in TESTS.lines() {
        let t: Value = serde_json::from_str(line).expect("a test");
        let name = t["test"].as_str().unwrap_or("");
        let detect = t["detect"].as_bool().unwrap_or(false);
        let expected: Option<String> = match t["detect_counts"].as_array() {
            Some(counts) => counts
                .first()
                .and_then(|c| c.as_object())
                .and_then(|c| c.keys().next().cloned()),
            None => negative_rule(name).map(String::from),
        };
        let Some(falco_rule) = expected else {
            skipped.push(name.to_string());
            continue;
        };
        let ids: Vec<&str> = base
            .iter()
            .filter(|r| r.references.falco.contains(&falco_rule))
            .map(|r| r.id.as_str())
            .collect();
        if ids.is_empty() {
            skipped.push(name.to_string());
            continue;
        }
        // trust_nginx_container.yaml trusts the nginx image: the pack's image allow-lists.
        let trusted = t["rules_files"].as_array().is_some_and(|f| {
            f.iter().any(|f| {
                f.as_str()
                    .is_some_and(|f| f.ends_with("trust_nginx_container.yaml"))
            })
        });
        let rules = base
            .iter()
            .filter(|r| ids.contains(&r.id.as_str()))
            .map(|r| {
                let mut set = BTreeMap::new();
                if trusted && let Some(Value::Array(list)) = r.parameters.get("allowed_images") {
                    let mut list = list.clone();
                    list.push("nginx".into());
                    set.insert("allowed_images".to_string(), Value::Array(list));
                }
                r.with_parameters(&rt, &set).expect("parameters apply")
            })
            .collect();
        let mut engine = Engine::new(Runtime::new(), rules);
        let mut alerts = Vec::new();
        let events = trace(t["trace_file"].as_str().unwrap_or(""));
        assert!(!events.is_empty(), "{name}: no trace events");
        for e in events {
            engine.observe(&e, "falco", &mut alerts);
        }
        checked += 1;
        if let Some((_, why)) = EXCEPTIONS.iter().find(|(t, _)| *t == name) {
            assert!(
                alerts.is_empty() == detect,
                "{name} is listed as an exception ({why}) but the pack agrees with Falco"
            );
            continue;
        }
        if alerts.is_empty() == detect {
            disagreements.push(format!(
                "{name} ({falco_rule} → {ids:?}): Falco {detect}, pack {:?}",
                alerts.iter().map(|a| &a.rule).collect::<Vec<_>>()
            ));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    assert_eq!(checked, 33, "skipped: {skipped:?}");
}

#[test]
fn the_kind_zero_case_is_refused_without_a_crash() {
    let text = include_str!("../data/falco/falco-fal_01_003.json");
    let err = decode_event(text.as_bytes()).expect_err("{\"kind\": 0} is not an audit event");
    assert!(!err.to_string().is_empty());
}
