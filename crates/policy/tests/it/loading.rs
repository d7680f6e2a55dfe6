//! The loader: decoding, group versions per release, rules required, unknown fields dropped.

use kubetrail_model::ApiVersion;
use kubetrail_policy::{ErrorType, KubeVersion, LoadOptions, load_str};

use super::*;

fn at(text: &str, minor: u32) -> Loaded {
    load_str(
        text,
        LoadOptions {
            kube_version: Some(KubeVersion::new(minor)),
        },
    )
}

fn with_version(version: &str) -> String {
    format!("apiVersion: {version}\nkind: Policy\nrules:\n  - level: Metadata\n")
}

#[test]
fn all_three_versions_load_without_a_target_release() {
    for v in ApiVersion::ALL {
        let loaded = load(&with_version(v.as_str()));
        assert!(loaded.errors.is_empty(), "{v}: {:?}", loaded.errors);
        assert_eq!(loaded.api_version, Some(v));
    }
}

#[test]
fn beta_and_alpha_are_rejected_from_1_24() {
    for v in [ApiVersion::V1Beta1, ApiVersion::V1Alpha1] {
        let old = at(&with_version(v.as_str()), 23);
        assert!(old.errors.is_empty(), "{v} loads in 1.23");
        assert!(
            old.warnings
                .iter()
                .any(|w| w.field == "apiVersion" && w.message.contains("deprecated")),
            "{:?}",
            old.warnings
        );
        for minor in [24, 30, 36] {
            let new = at(&with_version(v.as_str()), minor);
            assert_eq!(new.errors.len(), 1, "{v} in 1.{minor}");
            assert_eq!(new.errors[0].field, "apiVersion");
            assert_eq!(new.errors[0].error_type, ErrorType::NotSupported);
            assert!(new.errors[0].detail.starts_with(&format!(
                "unknown group version field {v}, Kind=Policy in policy"
            )));
        }
    }
    assert!(at(&with_version("audit.k8s.io/v1"), 24).errors.is_empty());
    assert!(
        !at(&with_version("audit.k8s.io/v1"), 11).errors.is_empty(),
        "v1 arrived in 1.12"
    );
}

#[test]
fn a_policy_without_rules_is_rejected() {
    for text in [
        "",
        "# nothing but a comment\n",
        "apiVersion: audit.k8s.io/v1\nkind: Policy\n",
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n",
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\n",
    ] {
        let loaded = load(text);
        assert!(loaded.policy.is_none(), "{text:?}");
        let e = loaded.errors.last().unwrap();
        assert_eq!(
            (e.field.as_str(), e.detail.as_str()),
            ("rules", "loaded illegal policy with 0 rules"),
            "{text:?}"
        );
    }
}

#[test]
fn type_meta_is_required_and_checked() {
    let no_kind = load("apiVersion: audit.k8s.io/v1\nrules:\n  - level: None\n");
    assert_eq!(no_kind.errors[0].field, "kind");
    assert_eq!(no_kind.errors[0].detail, "Object 'Kind' is missing");
    let no_version = load("kind: Policy\nrules:\n  - level: None\n");
    assert_eq!(no_version.errors[0].field, "apiVersion");
    let wrong_kind = load("apiVersion: audit.k8s.io/v1\nkind: Event\nrules:\n  - level: None\n");
    assert_eq!(
        wrong_kind.errors[0].to_string(),
        "kind: Unsupported value: \"Event\": supported values: \"Policy\""
    );
    let unknown_group =
        load("apiVersion: audit.k8s.io/v2\nkind: Policy\nrules:\n  - level: None\n");
    assert_eq!(unknown_group.errors[0].field, "apiVersion");
    assert_eq!(unknown_group.errors[0].error_type, ErrorType::NotSupported);
}

#[test]
fn unknown_fields_are_warned_about_and_dropped() {
    let text = "apiVersion: audit.k8s.io/v1\nkind: Policy\nspec: {}\nrules:\n  - level: Metadata\n    user: [alice]\n    resources:\n      - group: \"\"\n        resource: [pods]\n";
    let loaded = load(text);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let warned: Vec<(&str, Option<usize>)> = loaded
        .warnings
        .iter()
        .map(|w| (w.field.as_str(), w.line))
        .collect();
    assert_eq!(
        warned,
        [
            ("spec", Some(3)),
            ("rules[0].user", Some(6)),
            ("rules[0].resources[0].resource", Some(9))
        ]
    );
    // `user` (a typo of `users`) is dropped: the rule selects every user.
    let p = loaded.policy.unwrap();
    assert!(p.rules()[0].users.is_empty());
    assert!(p.rules()[0].resources[0].resources.is_empty());
}

#[test]
fn duplicate_fields_warn_and_the_last_wins() {
    let loaded = load(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: None\n    level: Metadata\n",
    );
    assert!(loaded.errors.is_empty());
    assert_eq!(loaded.warnings[0].field, "rules[0].level");
    assert_eq!(loaded.warnings[0].line, Some(5));
    assert_eq!(
        loaded.policy.unwrap().rules()[0].level,
        kubetrail_model::Level::Metadata
    );
}

#[test]
fn omit_managed_fields_is_unknown_before_1_23() {
    let text = "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitManagedFields: true\nrules:\n  - level: Request\n    omitManagedFields: true\n";
    let old = at(text, 22);
    assert!(old.errors.is_empty());
    let fields: Vec<&str> = old.warnings.iter().map(|w| w.field.as_str()).collect();
    assert_eq!(fields, ["omitManagedFields", "rules[0].omitManagedFields"]);
    let d = old
        .policy
        .unwrap()
        .evaluate(&nonres(None, "get", "/").as_attributes());
    assert!(!d.omit_managed_fields);
    let new = at(text, 23).policy.unwrap();
    assert!(
        new.evaluate(&nonres(None, "get", "/").as_attributes())
            .omit_managed_fields
    );
}

#[test]
fn decoding_errors_name_the_field() {
    let loaded = load(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: None\n    users: alice\n",
    );
    assert_eq!(loaded.errors.len(), 1);
    assert_eq!(loaded.errors[0].error_type, ErrorType::Decode);
    assert_eq!(loaded.errors[0].field, "rules[0].users");
    assert!(
        loaded.errors[0]
            .detail
            .contains("invalid type: string \"alice\""),
        "{}",
        loaded.errors[0].detail
    );
    // go-yaml v2 reads `no` as a boolean, which does not decode into a namespace string.
    let loaded = load(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: None\n    namespaces: [no]\n",
    );
    assert_eq!(loaded.errors[0].field, "rules[0].namespaces[0]");
    assert!(
        loaded.errors[0]
            .detail
            .contains("invalid type: boolean `false`")
    );
}

/// kube-apiserver stops at the first decoding error; lint names every one, each at its line.
#[test]
fn every_decoding_error_is_named_not_only_the_first() {
    let loaded = load(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: RequestReceived\nrules:\n  - level: None\n    users: alice\n  - level: Metadata\n  - level: None\n    verbs: {get: true}\n",
    );
    let found: Vec<(&str, Option<usize>)> = loaded
        .errors
        .iter()
        .map(|e| (e.field.as_str(), e.line))
        .collect();
    assert_eq!(
        found,
        [
            ("rules[0].users", Some(6)),
            ("rules[2].verbs", Some(9)),
            ("omitStages", Some(3)),
        ]
    );
    assert!(
        loaded
            .errors
            .iter()
            .all(|e| e.error_type == ErrorType::Decode)
    );
    assert!(loaded.policy.is_none());
}

#[test]
fn yaml_syntax_errors_have_a_line() {
    let loaded = load(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: None\n    users: [alice\n",
    );
    assert_eq!(loaded.errors.len(), 1);
    assert_eq!(loaded.errors[0].error_type, ErrorType::Decode);
    assert!(loaded.errors[0].line.unwrap() >= 5);
    assert!(
        loaded.errors[0]
            .to_string()
            .starts_with("failed decoding: yaml: line")
    );
}

#[test]
fn json_policies_load_too() {
    let p = policy(
        r#"{"apiVersion":"audit.k8s.io/v1","kind":"Policy","omitStages":["RequestReceived"],"rules":[{"level":"None","nonResourceURLs":["/healthz*"]},{"level":"Metadata"}]}"#,
    );
    assert_eq!(p.rules().len(), 2);
    assert_eq!(
        p.evaluate(&nonres(None, "get", "/healthz").as_attributes())
            .rule,
        Some(0)
    );
}

#[test]
fn null_lists_are_empty_as_in_go() {
    let p = policy(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages:\nrules:\n  - level: Metadata\n    users:\n    resources: ~\n",
    );
    assert!(p.rules()[0].users.is_empty());
    assert!(p.rules()[0].is_catch_all());
}
