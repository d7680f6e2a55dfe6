//! `ValidatePolicy`: field paths, error types and messages, case by case.

use kubetrail_policy::{ErrorType, KubeVersion, LoadOptions, load_str};

use super::*;

const STAGES_MSG: &str =
    "allowed stages are RequestReceived,ResponseStarted,ResponseComplete,Panic";
const DNS_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

/// An expected error: (field, type, detail).
type Expected = (&'static str, ErrorType, &'static str);

/// (rules, expected errors)
fn cases() -> Vec<(&'static str, Vec<Expected>)> {
    use ErrorType::*;
    vec![
        ("  - level: Metadata\n", vec![]),
        ("  - level: \"\"\n", vec![("rules[0].level", Required, "")]),
        (
            "  - users: [alice]\n",
            vec![("rules[0].level", Required, "")],
        ),
        (
            "  - level: metadata\n",
            vec![(
                "rules[0].level",
                NotSupported,
                "supported values: \"None\", \"Metadata\", \"Request\", \"RequestResponse\"",
            )],
        ),
        (
            "  - level: Metadata\n    omitStages: [RequestReceived, requestreceived]\n",
            vec![("rules[0].omitStages[1]", Invalid, STAGES_MSG)],
        ),
        (
            "  - level: Metadata\n    omitStages: [Done]\n",
            vec![("rules[0].omitStages[0]", Invalid, STAGES_MSG)],
        ),
        (
            "  - level: None\n    nonResourceURLs: [healthz]\n",
            vec![(
                "rules[0].nonResourceURLs[0]",
                Invalid,
                "non-resource URL rules must begin with a '/' character",
            )],
        ),
        (
            "  - level: None\n    nonResourceURLs: [\"/a*b\"]\n",
            vec![(
                "rules[0].nonResourceURLs[0]",
                Invalid,
                "non-resource URL wildcards '*' must be the final character of the rule",
            )],
        ),
        (
            "  - level: None\n    nonResourceURLs: [\"a*b\"]\n",
            vec![
                (
                    "rules[0].nonResourceURLs[0]",
                    Invalid,
                    "non-resource URL rules must begin with a '/' character",
                ),
                (
                    "rules[0].nonResourceURLs[0]",
                    Invalid,
                    "non-resource URL wildcards '*' must be the final character of the rule",
                ),
            ],
        ),
        (
            "  - level: None\n    nonResourceURLs: [\"\"]\n",
            vec![(
                "rules[0].nonResourceURLs[0]",
                Invalid,
                "non-resource URL rules must begin with a '/' character",
            )],
        ),
        (
            "  - level: None\n    nonResourceURLs: [\"*\", \"/*\", \"/healthz*\"]\n",
            vec![],
        ),
        // Only the final character may be `*`: a doubled trailing star is rejected.
        (
            "  - level: None\n    nonResourceURLs: [\"/healthz**\"]\n",
            vec![(
                "rules[0].nonResourceURLs[0]",
                Invalid,
                "non-resource URL wildcards '*' must be the final character of the rule",
            )],
        ),
        (
            "  - level: None\n    nonResourceURLs: [\"**\"]\n",
            vec![
                (
                    "rules[0].nonResourceURLs[0]",
                    Invalid,
                    "non-resource URL rules must begin with a '/' character",
                ),
                (
                    "rules[0].nonResourceURLs[0]",
                    Invalid,
                    "non-resource URL wildcards '*' must be the final character of the rule",
                ),
            ],
        ),
        (
            "  - level: None\n    resources: [{group: rbac.authorization.k8s.io/v1beta1}]\n",
            vec![("rules[0].resources.group", Invalid, DNS_MSG)],
        ),
        (
            "  - level: None\n    resources: [{group: Apps}]\n",
            vec![("rules[0].resources.group", Invalid, DNS_MSG)],
        ),
        (
            "  - level: None\n    resources: [{group: \"\"}, {group: apps}, {group: rbac.authorization.k8s.io}]\n",
            vec![],
        ),
        (
            "  - level: None\n    resources: [{group: \"\", resourceNames: [x]}]\n",
            vec![(
                "rules[0].resources.resourceNames",
                Invalid,
                "using resourceNames requires at least one resource",
            )],
        ),
        (
            "  - level: None\n    resources: [{group: \"\"}]\n    nonResourceURLs: [/healthz]\n",
            vec![(
                "rules[0].nonResourceURLs",
                Invalid,
                "rules cannot apply to both regular resources and non-resource URLs",
            )],
        ),
        (
            "  - level: None\n    namespaces: [\"\"]\n    nonResourceURLs: [/healthz]\n",
            vec![(
                "rules[0].nonResourceURLs",
                Invalid,
                "rules cannot apply to both regular resources and non-resource URLs",
            )],
        ),
        // Not validated: resource patterns, verbs, users, groups, namespaces, duplicates.
        (
            "  - level: None\n    verbs: [GET, \"*\", get, get]\n    users: [\"\"]\n    userGroups: [\"*\"]\n    namespaces: [\"*\", Bad_NS]\n    resources: [{group: \"\", resources: [\"**/x/y\", \"\"]}]\n",
            vec![],
        ),
        // Errors are aggregated over rules, in order.
        (
            "  - level: Loud\n  - level: None\n    nonResourceURLs: [x]\n  - level: Metadata\n    omitStages: [x]\n",
            vec![
                (
                    "rules[0].level",
                    NotSupported,
                    "supported values: \"None\", \"Metadata\", \"Request\", \"RequestResponse\"",
                ),
                (
                    "rules[1].nonResourceURLs[0]",
                    Invalid,
                    "non-resource URL rules must begin with a '/' character",
                ),
                ("rules[2].omitStages[0]", Invalid, STAGES_MSG),
            ],
        ),
    ]
}

#[test]
fn every_validation_case() {
    for (i, (rules, want)) in cases().into_iter().enumerate() {
        let loaded = load(&v1(rules));
        let got: Vec<(&str, ErrorType, &str)> = loaded
            .errors
            .iter()
            .map(|e| (e.field.as_str(), e.error_type, e.detail.as_str()))
            .collect();
        assert_eq!(got, want, "case {i}:\n{rules}");
        assert_eq!(loaded.policy.is_some(), want.is_empty(), "case {i}");
    }
}

#[test]
fn policy_level_omit_stages_are_validated() {
    let loaded = load(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived, Sometimes]\nrules:\n  - level: None\n",
    );
    assert_eq!(loaded.errors.len(), 1);
    assert_eq!(loaded.errors[0].field, "omitStages[1]");
    assert_eq!(loaded.errors[0].detail, STAGES_MSG);
    assert_eq!(
        loaded.errors[0].to_string(),
        format!("omitStages[1]: Invalid value: \"Sometimes\": {STAGES_MSG}")
    );
}

#[test]
fn wildcard_group_is_a_1_36_feature() {
    let text = v1("  - level: Metadata\n    resources: [{group: \"*\", resources: [secrets]}]\n");
    let at = |v: Option<u32>| {
        load_str(
            &text,
            LoadOptions {
                kube_version: v.map(KubeVersion::new),
            },
        )
    };
    assert!(at(None).errors.is_empty());
    assert!(at(Some(36)).errors.is_empty());
    assert!(at(Some(37)).errors.is_empty());
    let old = at(Some(35));
    assert_eq!(old.errors.len(), 1);
    assert_eq!(old.errors[0].field, "rules[0].resources.group");
    assert_eq!(old.errors[0].detail, DNS_MSG);
}

#[test]
fn errors_point_at_their_line() {
    let text = v1(
        "  - level: None\n    users: [a]\n  - level: None\n    nonResourceURLs:\n      - /ok\n      - bad\n  - level: Metadata\n    resources:\n      - group: \"\"\n      - group: Bad\n",
    );
    let loaded = load(&text);
    let lines: Vec<(String, Option<usize>)> = loaded
        .errors
        .iter()
        .map(|e| (e.field.clone(), e.line))
        .collect();
    assert_eq!(
        lines,
        [
            ("rules[1].nonResourceURLs[1]".to_string(), Some(9)),
            ("rules[2].resources.group".to_string(), Some(13)),
        ]
    );
}
