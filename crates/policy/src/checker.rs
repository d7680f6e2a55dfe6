//! Evaluation: which level and stages a request gets, exactly as kube-apiserver's policy checker
//! (`pkg/audit/policy/checker.go`) decides. The first matching rule wins, even at level None.
//!
//! The hot path ([`Policy::evaluate`]) borrows everything and allocates nothing.

use kubetrail_model::Level;
use serde::{Deserialize, Serialize};

use crate::matcher::Matcher;
use crate::rule::{Attributes, Rule, StageSet};

/// A loaded, valid policy.
#[derive(Debug, Clone)]
pub struct Policy {
    rules: Vec<Rule>,
    omit_stages: StageSet,
    omit_managed_fields: bool,
    matcher: Matcher,
}

impl PartialEq for Policy {
    fn eq(&self, other: &Self) -> bool {
        self.rules == other.rules
            && self.omit_stages == other.omit_stages
            && self.omit_managed_fields == other.omit_managed_fields
    }
}

impl Policy {
    /// A policy from validated rules. Each rule's `omit_stages` must already include the
    /// policy's (the loader does this, as kube-apiserver's `NewChecker` does).
    pub fn new(rules: Vec<Rule>, omit_stages: StageSet, omit_managed_fields: bool) -> Self {
        let matcher = Matcher::new(&rules);
        Policy {
            rules,
            omit_stages,
            omit_managed_fields,
            matcher,
        }
    }

    /// The rules, in evaluation order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Policy-level omitStages.
    pub fn omit_stages(&self) -> StageSet {
        self.omit_stages
    }
}

/// Owned request attributes, in the key names `policy eval` reads and writes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestAttributes {
    /// User name; absent means no authenticated user.
    #[serde(default)]
    pub user: Option<String>,
    /// Groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Verb.
    #[serde(default)]
    pub verb: String,
    /// Resource request or not.
    #[serde(default)]
    pub resource_request: bool,
    /// API group.
    #[serde(default)]
    pub api_group: String,
    /// API version.
    #[serde(default)]
    pub api_version: String,
    /// Namespace.
    #[serde(default)]
    pub namespace: String,
    /// Resource.
    #[serde(default)]
    pub resource: String,
    /// Subresource.
    #[serde(default)]
    pub subresource: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Path.
    #[serde(default)]
    pub path: String,
}

impl RequestAttributes {
    /// The attributes of a request RequestInfo resolved, made by `user` (None: no
    /// authenticated user) with `groups`.
    pub fn from_request_info(
        info: crate::requestinfo::RequestInfo,
        user: Option<String>,
        groups: Vec<String>,
    ) -> Self {
        RequestAttributes {
            user,
            groups,
            verb: info.verb,
            resource_request: info.is_resource_request,
            api_group: info.api_group,
            api_version: info.api_version,
            namespace: info.namespace,
            resource: info.resource,
            subresource: info.subresource,
            name: info.name,
            path: info.path,
        }
    }

    /// Attributes from the JSON object of a `policy eval` line. `resourceRequest` may be left
    /// out: a line that names a `resource` is a resource request, one that does not is not. A
    /// line that says `resourceRequest: false` and names a resource contradicts itself, and
    /// is refused rather than evaluated as the non-resource request it did not mean.
    pub fn from_json(mut value: serde_json::Value) -> Result<Self, String> {
        let names_resource = value
            .get("resource")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|r| !r.is_empty());
        if let Some(obj) = value.as_object_mut() {
            match obj.get("resourceRequest") {
                None => {
                    obj.insert("resourceRequest".into(), names_resource.into());
                }
                Some(serde_json::Value::Bool(false)) if names_resource => {
                    return Err(
                        "\"resourceRequest\": false but a \"resource\" is named: leave resourceRequest out, or give a non-resource \"path\" instead".into(),
                    );
                }
                Some(_) => {}
            }
        }
        serde_json::from_value(value).map_err(|e| e.to_string())
    }

    /// Borrowed view for evaluation.
    pub fn as_attributes(&self) -> Attributes<'_> {
        Attributes {
            user: self.user.as_deref(),
            groups: &self.groups,
            verb: &self.verb,
            resource_request: self.resource_request,
            api_group: &self.api_group,
            api_version: &self.api_version,
            namespace: &self.namespace,
            resource: &self.resource,
            subresource: &self.subresource,
            name: &self.name,
            path: &self.path,
        }
    }
}

/// The groups kube-apiserver's authentication gives a request of `user` that authenticated
/// with `groups` (`AuthenticatedGroupAdder`): `system:authenticated` is added unless the user
/// is `system:anonymous` or the groups already hold `system:authenticated` or
/// `system:unauthenticated`. The anonymous user, given no groups, has the anonymous
/// authenticator's `system:unauthenticated`. No user: no groups are added.
pub fn authenticated_groups(user: Option<&str>, mut groups: Vec<String>) -> Vec<String> {
    const AUTHENTICATED: &str = "system:authenticated";
    const UNAUTHENTICATED: &str = "system:unauthenticated";
    let anonymous = user == Some("system:anonymous");
    if anonymous && groups.is_empty() {
        groups.push(UNAUTHENTICATED.into());
    } else if user.is_some()
        && !anonymous
        && !groups
            .iter()
            .any(|g| g == AUTHENTICATED || g == UNAUTHENTICATED)
    {
        groups.push(AUTHENTICATED.into());
    }
    groups
}

/// The outcome of evaluating a request against a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// The audit level; `None` means no event is recorded.
    pub level: Level,
    /// Stages for which no event is produced.
    pub omit_stages: StageSet,
    /// Whether managedFields are dropped from logged objects.
    pub omit_managed_fields: bool,
    /// Index of the matching rule; `None` when no rule matched.
    pub rule: Option<usize>,
}

impl Policy {
    /// The level, omitted stages and managed-fields setting for a request.
    pub fn evaluate(&self, attrs: &Attributes<'_>) -> Decision {
        match self.matcher.first_match(attrs) {
            Some(hit) => Decision {
                level: hit.level,
                omit_stages: hit.omit_stages,
                omit_managed_fields: hit.omit_managed_fields.unwrap_or(self.omit_managed_fields),
                rule: Some(hit.index),
            },
            None => Decision {
                level: Level::None,
                omit_stages: self.omit_stages,
                omit_managed_fields: self.omit_managed_fields,
                rule: None,
            },
        }
    }

    /// The same decision as [`Policy::evaluate`], reached by comparing strings rule by rule
    /// ([`Rule::check`]); kept as the reference the compiled form is tested against.
    pub fn evaluate_reference(&self, attrs: &Attributes<'_>) -> Decision {
        for (i, rule) in self.rules.iter().enumerate() {
            if rule.check(attrs).is_ok() {
                return Decision {
                    level: rule.level,
                    omit_stages: rule.omit_stages,
                    omit_managed_fields: rule
                        .omit_managed_fields
                        .unwrap_or(self.omit_managed_fields),
                    rule: Some(i),
                };
            }
        }
        Decision {
            level: Level::None,
            omit_stages: self.omit_stages,
            omit_managed_fields: self.omit_managed_fields,
            rule: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::{path_matches, resource_matches};
    use kubetrail_model::Stage;

    #[test]
    fn authentication_adds_the_all_users_group_once() {
        let g = |user: Option<&str>, groups: &[&str]| {
            let groups = groups.iter().map(|s| s.to_string()).collect();
            authenticated_groups(user, groups)
        };
        assert_eq!(g(Some("alice"), &["dev"]), ["dev", "system:authenticated"]);
        assert_eq!(
            g(Some("alice"), &["system:authenticated", "dev"]),
            ["system:authenticated", "dev"]
        );
        assert_eq!(
            g(Some("x"), &["system:unauthenticated"]),
            ["system:unauthenticated"]
        );
        assert_eq!(g(Some("system:anonymous"), &[]), ["system:unauthenticated"]);
        assert_eq!(g(Some("system:anonymous"), &["custom"]), ["custom"]);
        assert!(g(None, &[]).is_empty());
    }

    #[test]
    fn resource_patterns() {
        let cases = [
            ("pods", "pods", "", true),
            ("pods", "pods", "log", false),
            ("pods/log", "pods", "log", true),
            ("pods/log", "pods", "", false),
            ("*", "pods", "exec", true),
            ("*", "secrets", "", true),
            ("pods/*", "pods", "", true),
            ("pods/*", "pods", "status", true),
            ("pods/*", "podsx", "", false),
            ("*/status", "deployments", "status", true),
            ("*/status", "deployments", "", false),
            ("*/log", "pods", "", false),
            ("*/scale", "deployments", "status", false),
            ("deployments/status", "deployments", "status", true),
            ("pods/exec", "pod", "s/exec", false),
        ];
        for (pattern, res, sub, want) in cases {
            assert_eq!(
                resource_matches(pattern, res, sub),
                want,
                "{pattern} vs {res}/{sub}"
            );
        }
    }

    #[test]
    fn path_specs() {
        let cases = [
            ("/healthz", "/healthz", true),
            ("/healthz*", "/healthz", true),
            ("/healthz*", "/healthzfoo", true),
            ("/healthz*", "/healthz/etcd", true),
            ("/healthz/*", "/healthz", false),
            ("/healthz/*", "/healthz/etcd", true),
            ("*", "/anything", true),
            ("/version", "/version/", false),
            ("/api**", "/apis", true),
            ("/metrics", "/metrics2", false),
        ];
        for (spec, path, want) in cases {
            assert_eq!(path_matches(path, spec), want, "{spec} vs {path}");
        }
    }

    #[test]
    fn stage_sets_iterate_in_stage_order() {
        let set: StageSet = [Stage::Panic, Stage::RequestReceived].into_iter().collect();
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            [Stage::RequestReceived, Stage::Panic]
        );
        assert_eq!(
            serde_json::to_string(&set).unwrap(),
            r#"["RequestReceived","Panic"]"#
        );
    }
}
