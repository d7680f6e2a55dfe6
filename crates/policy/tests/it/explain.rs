//! Explain: the deciding rule and why earlier rules did not match.

use kubetrail_model::Level;
use kubetrail_policy::explain::explain;

use super::*;

#[test]
fn each_earlier_rule_says_why_it_did_not_match() {
    let p = policy(&v1(
        "  - level: None\n    users: [system:kube-proxy]\n  - level: None\n    userGroups: [system:nodes]\n  - level: None\n    verbs: [watch]\n  - level: None\n    nonResourceURLs: [\"/healthz*\"]\n  - level: None\n    namespaces: [kube-system]\n  - level: None\n    resources: [{group: \"\", resources: [pods]}]\n  - level: Metadata\n    resources: [{group: \"\", resources: [secrets]}]\n  - level: Request\n",
    ));
    let req = res(
        Some("alice"),
        &["dev"],
        "get",
        "",
        "secrets",
        "default",
        "db",
    );
    let e = explain(&p, &req.as_attributes());
    assert_eq!(e.decision.level, Level::Metadata);
    assert_eq!(e.decision.rule, Some(6));
    let reasons: Vec<Option<String>> = e.rules.iter().map(|r| r.reason.clone()).collect();
    assert_eq!(
        reasons,
        [
            Some("user \"alice\" is not in users [\"system:kube-proxy\"]".to_string()),
            Some("none of the groups [\"dev\"] is in userGroups [\"system:nodes\"]".to_string()),
            Some("verb \"get\" is not in verbs [\"watch\"]".to_string()),
            Some("the rule selects nonResourceURLs, and this is a resource request".to_string()),
            Some("namespace \"default\" is not in namespaces [\"kube-system\"]".to_string()),
            Some("no resources entry selects core secrets named \"db\" (group \"\" resources [\"pods\"])".to_string()),
            None,
        ]
    );
    assert_eq!(e.rules[6].line, Some(16));

    let anon = nonres(None, "get", "/metrics");
    let e = explain(&p, &anon.as_attributes());
    assert_eq!(e.decision.rule, Some(7));
    assert_eq!(
        e.rules[0].reason.as_deref(),
        Some("no authenticated user, and the rule selects users [\"system:kube-proxy\"]")
    );
    assert_eq!(
        e.rules[3].reason.as_deref(),
        Some("path \"/metrics\" matches none of nonResourceURLs [\"/healthz*\"]")
    );
    assert_eq!(
        e.rules[4].reason.as_deref(),
        Some(
            "the rule selects resources or namespaces, and \"/metrics\" is a non-resource request"
        )
    );
}

#[test]
fn without_a_match_every_rule_is_listed() {
    let p = policy(&v1(
        "  - level: None\n    users: [a]\n  - level: None\n    users: [b]\n",
    ));
    let e = explain(&p, &nonres(Some("c"), "get", "/").as_attributes());
    assert_eq!(e.decision.rule, None);
    assert_eq!(e.rules.len(), 2);
    assert!(e.rules.iter().all(|r| r.reason.is_some()));
}
