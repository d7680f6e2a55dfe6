//! Behaviour of the policy engine, case by case from the semantics of kube-apiserver's audit
//! policy (matching, validation, loading, RequestInfo), on the seed policy our first users run,
//! and as properties over generated policies and requests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod explain;
mod lint;
mod loading;
mod matching;
mod properties;
mod requestinfo;
mod seed;
mod validation;
mod yaml_limits;

use kubetrail_policy::{LoadOptions, Loaded, Policy, RequestAttributes, load_str};

/// Loads a policy that must be valid.
pub fn policy(yaml: &str) -> Policy {
    let loaded = load_str(yaml, LoadOptions::default());
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    loaded.policy.unwrap()
}

/// Loads with defaults.
pub fn load(yaml: &str) -> Loaded {
    load_str(yaml, LoadOptions::default())
}

/// A v1 policy document from its rules (YAML list items, indented by two spaces).
pub fn v1(rules: &str) -> String {
    format!("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n{rules}")
}

/// A resource request.
pub fn res(
    user: Option<&str>,
    groups: &[&str],
    verb: &str,
    group: &str,
    resource: &str,
    ns: &str,
    name: &str,
) -> RequestAttributes {
    let (r, s) = resource.split_once('/').unwrap_or((resource, ""));
    RequestAttributes {
        user: user.map(str::to_string),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        verb: verb.into(),
        resource_request: true,
        api_group: group.into(),
        api_version: "v1".into(),
        namespace: ns.into(),
        resource: r.into(),
        subresource: s.into(),
        name: name.into(),
        path: String::new(),
    }
}

/// A non-resource request.
pub fn nonres(user: Option<&str>, verb: &str, path: &str) -> RequestAttributes {
    RequestAttributes {
        user: user.map(str::to_string),
        verb: verb.into(),
        path: path.into(),
        ..RequestAttributes::default()
    }
}
