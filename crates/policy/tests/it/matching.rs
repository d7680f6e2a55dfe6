//! Rule matching (`ruleMatches`) and evaluation (`LevelAndStages`), case by case.

use kubetrail_model::{Level, Stage};

use super::*;

/// (rule as YAML, request, matches)
fn cases() -> Vec<(&'static str, RequestAttributes, bool)> {
    let alice = Some("alice");
    vec![
        // users: exact names, `*` is no wildcard, no user never matches.
        (
            "users: [alice]",
            res(alice, &[], "get", "", "pods", "default", "x"),
            true,
        ),
        (
            "users: [alice]",
            res(Some("bob"), &[], "get", "", "pods", "default", "x"),
            false,
        ),
        (
            "users: [alice]",
            res(None, &[], "get", "", "pods", "default", "x"),
            false,
        ),
        (
            "users: [\"*\"]",
            res(alice, &[], "get", "", "pods", "default", "x"),
            false,
        ),
        (
            "users: [Alice]",
            res(alice, &[], "get", "", "pods", "default", "x"),
            false,
        ),
        // userGroups: any of the user's groups; no user never matches.
        (
            "userGroups: [dev]",
            res(alice, &["ops", "dev"], "get", "", "pods", "", ""),
            true,
        ),
        (
            "userGroups: [dev]",
            res(alice, &["ops"], "get", "", "pods", "", ""),
            false,
        ),
        (
            "userGroups: [dev]",
            res(None, &["dev"], "get", "", "pods", "", ""),
            false,
        ),
        ("userGroups: [dev]", nonres(alice, "get", "/healthz"), false),
        // verbs: exact and case-sensitive, `*` is no wildcard.
        (
            "verbs: [get]",
            res(alice, &[], "get", "", "pods", "", "x"),
            true,
        ),
        (
            "verbs: [get]",
            res(alice, &[], "list", "", "pods", "", ""),
            false,
        ),
        (
            "verbs: [GET]",
            res(alice, &[], "get", "", "pods", "", "x"),
            false,
        ),
        (
            "verbs: [\"*\"]",
            res(alice, &[], "get", "", "pods", "", "x"),
            false,
        ),
        ("verbs: [get]", nonres(alice, "get", "/healthz"), true),
        // namespaces: "" selects cluster-scoped and all-namespace requests, never non-resource.
        (
            "namespaces: [\"\"]",
            res(alice, &[], "get", "", "nodes", "", "n1"),
            true,
        ),
        (
            "namespaces: [\"\"]",
            res(alice, &[], "list", "", "pods", "", ""),
            true,
        ),
        (
            "namespaces: [\"\"]",
            res(alice, &[], "get", "", "pods", "default", "x"),
            false,
        ),
        (
            "namespaces: [\"\"]",
            nonres(alice, "get", "/healthz"),
            false,
        ),
        (
            "namespaces: [default]",
            res(alice, &[], "get", "apps", "deployments", "default", "x"),
            true,
        ),
        (
            "namespaces: [default]",
            res(alice, &[], "get", "apps", "deployments", "kube-system", "x"),
            false,
        ),
        // resources: group "" is core; a group without resources selects everything in it.
        (
            "resources: [{group: \"\", resources: [pods]}]",
            res(alice, &[], "get", "", "pods", "d", "x"),
            true,
        ),
        (
            "resources: [{group: \"\", resources: [pods]}]",
            res(alice, &[], "get", "", "pods/log", "d", "x"),
            false,
        ),
        (
            "resources: [{group: \"\", resources: [pods]}]",
            res(alice, &[], "get", "apps", "pods", "d", "x"),
            false,
        ),
        (
            "resources: [{group: \"\"}]",
            res(alice, &[], "get", "", "pods/exec", "d", "x"),
            true,
        ),
        (
            "resources: [{group: \"\"}]",
            res(alice, &[], "get", "apps", "deployments", "d", "x"),
            false,
        ),
        (
            "resources: [{group: \"\"}]",
            nonres(alice, "get", "/api/v1"),
            false,
        ),
        // patterns: `*`, `pods/*`, `*/status`, `pods/log`.
        (
            "resources: [{group: \"\", resources: [\"*\"]}]",
            res(alice, &[], "get", "", "secrets", "d", "x"),
            true,
        ),
        (
            "resources: [{group: \"\", resources: [\"*\"]}]",
            res(alice, &[], "get", "", "pods/log", "d", "x"),
            true,
        ),
        (
            "resources: [{group: \"\", resources: [\"*\"]}]",
            res(alice, &[], "get", "apps", "deployments", "d", "x"),
            false,
        ),
        (
            "resources: [{group: \"\", resources: [\"pods/*\"]}]",
            res(alice, &[], "get", "", "pods", "d", "x"),
            true,
        ),
        (
            "resources: [{group: \"\", resources: [\"pods/*\"]}]",
            res(alice, &[], "create", "", "pods/exec", "d", "x"),
            true,
        ),
        (
            "resources: [{group: \"\", resources: [\"pods/*\"]}]",
            res(alice, &[], "get", "", "podtemplates", "d", "x"),
            false,
        ),
        (
            "resources: [{group: apps, resources: [\"*/status\"]}]",
            res(alice, &[], "update", "apps", "deployments/status", "d", "x"),
            true,
        ),
        (
            "resources: [{group: apps, resources: [\"*/status\"]}]",
            res(alice, &[], "update", "apps", "deployments", "d", "x"),
            false,
        ),
        (
            "resources: [{group: \"\", resources: [\"*/log\"]}]",
            res(alice, &[], "get", "", "pods", "d", "x"),
            false,
        ),
        (
            "resources: [{group: \"\", resources: [pods/log]}]",
            res(alice, &[], "get", "", "pods/log", "d", "x"),
            true,
        ),
        // resourceNames: name must be listed; name-less requests never match.
        (
            "resources: [{group: \"\", resources: [configmaps], resourceNames: [cfg]}]",
            res(alice, &[], "get", "", "configmaps", "d", "cfg"),
            true,
        ),
        (
            "resources: [{group: \"\", resources: [configmaps], resourceNames: [cfg]}]",
            res(alice, &[], "get", "", "configmaps", "d", "other"),
            false,
        ),
        (
            "resources: [{group: \"\", resources: [configmaps], resourceNames: [cfg]}]",
            res(alice, &[], "list", "", "configmaps", "d", ""),
            false,
        ),
        (
            "resources: [{group: \"\", resources: [configmaps], resourceNames: [cfg]}]",
            res(alice, &[], "create", "", "configmaps", "d", ""),
            false,
        ),
        // A group that matches but whose resources do not: later entries are still tried.
        (
            "resources: [{group: \"\", resources: [pods], resourceNames: [a]}, {group: \"\", resources: [pods]}]",
            res(alice, &[], "get", "", "pods", "d", "b"),
            true,
        ),
        (
            "resources: [{group: \"\", resources: [secrets]}, {group: apps}]",
            res(alice, &[], "get", "apps", "deployments", "d", "x"),
            true,
        ),
        // group "*" (1.36+): any group.
        (
            "resources: [{group: \"*\", resources: [deployments]}]",
            res(alice, &[], "get", "apps", "deployments", "d", "x"),
            true,
        ),
        (
            "resources: [{group: \"*\"}]",
            res(
                alice,
                &[],
                "get",
                "cert-manager.io",
                "certificates",
                "d",
                "x",
            ),
            true,
        ),
        (
            "resources: [{group: \"*\"}]",
            nonres(alice, "get", "/metrics"),
            false,
        ),
        // namespaces and resources together are AND-ed.
        (
            "namespaces: [kube-system]\n    resources: [{group: \"\", resources: [configmaps]}]",
            res(alice, &[], "get", "", "configmaps", "kube-system", "x"),
            true,
        ),
        (
            "namespaces: [kube-system]\n    resources: [{group: \"\", resources: [configmaps]}]",
            res(alice, &[], "get", "", "configmaps", "default", "x"),
            false,
        ),
        // nonResourceURLs: exact, or a plain string prefix ending in `*`.
        (
            "nonResourceURLs: [/healthz]",
            nonres(alice, "get", "/healthz"),
            true,
        ),
        (
            "nonResourceURLs: [/healthz]",
            nonres(alice, "get", "/healthz/etcd"),
            false,
        ),
        (
            "nonResourceURLs: [\"/healthz*\"]",
            nonres(alice, "get", "/healthzfoo"),
            true,
        ),
        (
            "nonResourceURLs: [\"/healthz*\"]",
            nonres(alice, "get", "/healthz/etcd"),
            true,
        ),
        (
            "nonResourceURLs: [\"/healthz/*\"]",
            nonres(alice, "get", "/healthz"),
            false,
        ),
        (
            "nonResourceURLs: [\"*\"]",
            nonres(None, "get", "/anything"),
            true,
        ),
        (
            "nonResourceURLs: [\"*\"]",
            res(alice, &[], "get", "", "pods", "d", "x"),
            false,
        ),
        // A rule without selectors matches everything, with or without a user.
        ("{}", nonres(None, "get", "/healthz"), true),
        ("{}", res(None, &[], "get", "", "pods", "d", "x"), true),
    ]
}

#[test]
fn every_matching_rule_case() {
    for (i, (selectors, request, want)) in cases().into_iter().enumerate() {
        let rule = if selectors == "{}" {
            "  - level: Metadata\n".to_string()
        } else {
            format!("  - level: Metadata\n    {selectors}\n")
        };
        let p = policy(&v1(&rule));
        let got = p.evaluate(&request.as_attributes()).rule == Some(0);
        assert_eq!(got, want, "case {i}: {selectors} vs {request:?}");
    }
}

#[test]
fn first_match_wins_even_at_level_none() {
    let p = policy(&v1(
        "  - level: None\n    users: [alice]\n  - level: RequestResponse\n",
    ));
    let d = p.evaluate(&res(Some("alice"), &[], "get", "", "secrets", "d", "x").as_attributes());
    assert_eq!((d.level, d.rule), (Level::None, Some(0)));
    let d = p.evaluate(&res(Some("bob"), &[], "get", "", "secrets", "d", "x").as_attributes());
    assert_eq!((d.level, d.rule), (Level::RequestResponse, Some(1)));
}

#[test]
fn no_match_means_level_none_with_the_policy_stages() {
    let p = policy(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [ResponseStarted]\nomitManagedFields: true\nrules:\n  - level: Metadata\n    users: [alice]\n",
    );
    let d = p.evaluate(&nonres(Some("bob"), "get", "/healthz").as_attributes());
    assert_eq!(d.level, Level::None);
    assert_eq!(d.rule, None);
    assert_eq!(
        d.omit_stages.iter().collect::<Vec<_>>(),
        [Stage::ResponseStarted]
    );
    assert!(d.omit_managed_fields);
}

#[test]
fn omit_stages_are_the_union_in_stage_order() {
    let p = policy(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [Panic, RequestReceived]\nrules:\n  - level: Metadata\n    omitStages: [ResponseStarted, RequestReceived]\n",
    );
    let d = p.evaluate(&nonres(None, "get", "/").as_attributes());
    assert_eq!(
        d.omit_stages.iter().collect::<Vec<_>>(),
        [Stage::RequestReceived, Stage::ResponseStarted, Stage::Panic]
    );
}

#[test]
fn omit_managed_fields_rule_overrides_policy() {
    let p = policy(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitManagedFields: true\nrules:\n  - level: Request\n    users: [alice]\n    omitManagedFields: false\n  - level: Request\n    users: [bob]\n  - level: Request\n    omitManagedFields: true\n",
    );
    let eval = |user| p.evaluate(&nonres(Some(user), "get", "/").as_attributes());
    assert!(!eval("alice").omit_managed_fields, "false overrides true");
    assert!(eval("bob").omit_managed_fields, "unset inherits true");
    assert!(eval("carol").omit_managed_fields);
    let p = policy(&v1(
        "  - level: Request\n    users: [alice]\n    omitManagedFields: true\n  - level: Request\n",
    ));
    assert!(
        p.evaluate(&nonres(Some("alice"), "get", "/").as_attributes())
            .omit_managed_fields
    );
    assert!(
        !p.evaluate(&nonres(Some("bob"), "get", "/").as_attributes())
            .omit_managed_fields
    );
}
