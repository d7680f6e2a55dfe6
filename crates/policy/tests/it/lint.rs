//! Lint warnings a reviewer wants, and lint over the seed policy and its v1 conversion.

use kubetrail_model::ApiVersion;
use kubetrail_policy::convert::convert;
use kubetrail_policy::lint::lint_str;
use kubetrail_policy::{KubeVersion, LoadOptions};

use super::*;

const SEED: &str = include_str!("../../../../testdata/policy/seed-audit-policy.yaml");

fn warnings(text: &str) -> Vec<(String, String)> {
    let (_, report) = lint_str(text, LoadOptions::default());
    assert!(report.valid, "{:?}", report.errors);
    report
        .warnings
        .into_iter()
        .map(|w| (w.field, w.message))
        .collect()
}

const HEAD: &str =
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n";

#[test]
fn shadowed_rules_are_reported_with_the_rule_that_hides_them() {
    let text = format!(
        "{HEAD}  - level: None\n    users: [alice, bob]\n  - level: Metadata\n    users: [alice]\n    verbs: [get]\n  - level: None\n    nonResourceURLs: [\"/healthz*\"]\n  - level: None\n    nonResourceURLs: [/healthz/etcd]\n  - level: Metadata\n    resources: [{{group: \"\", resources: [\"pods/*\"]}}]\n  - level: Request\n    namespaces: [default]\n    resources: [{{group: \"\", resources: [pods/log]}}]\n  - level: Metadata\n"
    );
    let w = warnings(&text);
    let shadowed: Vec<&str> = w
        .iter()
        .filter(|(_, m)| m.starts_with("rule can never match"))
        .map(|(f, _)| f.as_str())
        .collect();
    assert_eq!(shadowed, ["rules[1]", "rules[3]", "rules[5]"]);
    let msg = &w.iter().find(|(f, _)| f == "rules[1]").unwrap().1;
    assert_eq!(
        msg,
        "rule can never match: every request it selects is matched first by rules[0] (line 5)"
    );
}

#[test]
fn rules_that_only_overlap_are_not_shadowed() {
    let text = format!(
        "{HEAD}  - level: None\n    users: [alice]\n  - level: Metadata\n    users: [alice, bob]\n  - level: None\n    resources: [{{group: \"\", resources: [pods]}}]\n  - level: Request\n    resources: [{{group: \"\", resources: [pods/log]}}]\n  - level: Metadata\n"
    );
    assert!(warnings(&text).is_empty(), "{:?}", warnings(&text));
}

#[test]
fn sensitive_resources_logged_with_bodies_are_flagged() {
    let text = format!("{HEAD}  - level: RequestResponse\n");
    let w = warnings(&text);
    let flagged: Vec<&str> = w
        .iter()
        .filter(|(_, m)| m.contains("secret values"))
        .map(|(_, m)| m.split(' ').next().unwrap())
        .collect();
    assert_eq!(flagged, ["secrets", "configmaps", "tokenreviews"]);

    let text = format!(
        "{HEAD}  - level: Metadata\n    resources: [{{group: \"\", resources: [secrets, configmaps]}}]\n  - level: Request\n"
    );
    let w = warnings(&text);
    let flagged: Vec<&str> = w
        .iter()
        .filter(|(_, m)| m.contains("secret values"))
        .map(|(_, m)| m.split(' ').next().unwrap())
        .collect();
    assert_eq!(flagged, ["tokenreviews"]);
    assert!(w[0].1.contains("can be logged at Request"), "{w:?}");

    // A Request rule for other groups cannot reach secrets.
    let text = format!(
        "{HEAD}  - level: Request\n    resources: [{{group: apps}}]\n  - level: Metadata\n"
    );
    assert!(warnings(&text).is_empty());
}

#[test]
fn a_missing_catch_all_is_flagged() {
    let text = format!("{HEAD}  - level: Metadata\n    verbs: [create]\n");
    let w = warnings(&text);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].0, "rules[0]");
    assert!(w[0].1.starts_with("no catch-all rule at the end"));
    // An explicit final `level: None` is a choice, not an omission.
    let text = format!("{HEAD}  - level: Metadata\n    verbs: [create]\n  - level: None\n");
    assert!(warnings(&text).is_empty());
}

#[test]
fn request_received_not_omitted_is_flagged() {
    let text = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: Metadata\n";
    let w = warnings(text);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].0, "omitStages");
    let text = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: None\n    users: [a]\n  - level: Metadata\n    omitStages: [RequestReceived]\n";
    assert!(warnings(text).is_empty());
}

#[test]
fn wildcard_group_is_flagged_without_a_target_release() {
    let text =
        format!("{HEAD}  - level: Metadata\n    resources: [{{group: \"*\"}}]\n  - level: None\n");
    let w = warnings(&text);
    assert_eq!(w[0].0, "rules[0].resources");
    let (_, report) = lint_str(
        &text,
        LoadOptions {
            kube_version: Some(KubeVersion::new(36)),
        },
    );
    assert!(report.warnings.is_empty());
}

#[test]
fn the_seed_policy_lints_with_only_its_deprecation() {
    let w = warnings(SEED);
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].0, "apiVersion");
}

#[test]
fn the_converted_seed_lints_clean_from_1_24_to_1_37() {
    let v1 = convert(SEED, ApiVersion::V1).unwrap();
    assert!(v1.starts_with("apiVersion: audit.k8s.io/v1\n"));
    assert_eq!(v1.lines().count(), SEED.lines().count());
    assert!(
        v1.contains("# Don't generate audit events for all requests in RequestReceived stage.")
    );
    for minor in 24..=37 {
        let (_, report) = lint_str(
            &v1,
            LoadOptions {
                kube_version: Some(KubeVersion::new(minor)),
            },
        );
        assert!(report.valid, "1.{minor}: {:?}", report.errors);
        assert!(
            report.warnings.is_empty(),
            "1.{minor}: {:?}",
            report.warnings
        );
    }
    // Same rules, same answers.
    let a = policy(SEED);
    let b = policy(&v1);
    assert_eq!(a, b);
    // Converting again changes nothing.
    assert_eq!(convert(&v1, ApiVersion::V1).unwrap(), v1);
}

#[test]
fn json_report_has_the_contract_shape() {
    let text = format!("{HEAD}  - level: None\n    nonResourceURLs: [healthz]\n");
    let (_, report) = lint_str(&text, LoadOptions::default());
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "valid": false,
            "errors": [{"field": "rules[0].nonResourceURLs[0]", "type": "Invalid", "detail": "non-resource URL rules must begin with a '/' character"}],
            "warnings": []
        })
    );
}

#[test]
fn convert_edits_the_right_bytes_after_non_ascii_text() {
    // The parser counts characters; the edit must land on bytes.
    let text = "# Prüfungsrichtlinie — für alle ☕\napiVersion: audit.k8s.io/v1beta1\nkind: Policy\nrules:\n  - level: Metadata\n";
    let v1 = convert(text, ApiVersion::V1).unwrap();
    assert_eq!(v1, text.replace("v1beta1", "v1"));
}

/// Selectors that load but can never match what they seem to: users and verbs are compared
/// exactly, verbs are lowercase, resources plural and lowercase.
#[test]
fn selectors_that_cannot_match_as_written_are_flagged() {
    let text = format!(
        "{HEAD}  - level: None\n    users: [\"system:*\"]\n  - level: None\n    userGroups: [\"dev*\"]\n    verbs: [GET, gett, \"*\", watch]\n  - level: Metadata\n    resources: [{{group: apps, resources: [Deployment, replicasets]}}]\n  - level: Metadata\n"
    );
    let w = warnings(&text);
    let find = |field: &str| {
        w.iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
            .unwrap_or_else(|| panic!("no warning for {field}: {w:?}"))
    };
    assert!(find("rules[0].users[0]").contains("matched literally"));
    assert!(find("rules[1].userGroups[0]").contains("without wildcards"));
    assert_eq!(
        find("rules[1].verbs[0]"),
        "\"GET\" never matches: requests carry lowercase verbs; write \"get\""
    );
    assert!(find("rules[1].verbs[1]").contains("(did you mean \"get\"?)"));
    assert!(find("rules[1].verbs[2]").contains("leave verbs out"));
    assert!(
        find("rules[2].resources[0].resources[0]").contains("(e.g. \"deployments\")"),
        "{w:?}"
    );
    // Correct values are not flagged.
    assert!(!w.iter().any(|(f, _)| f == "rules[1].verbs[3]"));
    assert!(
        !w.iter()
            .any(|(f, _)| f == "rules[2].resources[0].resources[1]")
    );
}

/// Warnings come in the order of the file, whichever check found them.
#[test]
fn warnings_follow_the_lines_of_the_file() {
    let text = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: Request\n    resources: [{group: \"\", resources: [secrets]}]\n  - level: None\n    verbs: [GET]\n    unknownKey: 1\n";
    let (_, report) = lint_str(text, LoadOptions::default());
    let lines: Vec<usize> = report.warnings.iter().map(|w| w.line.unwrap()).collect();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted, "{:?}", report.warnings);
    assert!(lines.len() >= 4, "{:?}", report.warnings);
}

/// A misspelt stage or level is an error, as kube-apiserver has it, with the value meant.
#[test]
fn misspelt_stages_and_levels_say_what_was_meant() {
    let (_, report) = lint_str(
        &format!(
            "{HEAD}  - level: Metadata\n    omitStages: [RequestRecieved]\n  - level: metadata\n"
        ),
        LoadOptions::default(),
    );
    let shown: Vec<String> = report.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        shown,
        [
            "rules[0].omitStages[0]: Invalid value: \"RequestRecieved\": allowed stages are RequestReceived,ResponseStarted,ResponseComplete,Panic (did you mean \"RequestReceived\"?)",
            "rules[1].level: Unsupported value: \"metadata\": supported values: \"None\", \"Metadata\", \"Request\", \"RequestResponse\" (did you mean \"Metadata\"?)",
        ]
    );
    // The JSON contract stays kube-apiserver's {field, type, detail}.
    let json = serde_json::to_value(&report.errors[0]).unwrap();
    assert_eq!(json.as_object().unwrap().len(), 3, "{json}");
}
