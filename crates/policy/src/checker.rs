//! Evaluation: which level and stages a request gets, exactly as kube-apiserver's policy checker
//! (`pkg/audit/policy/checker.go`) decides. The first matching rule wins, even at level None.
//!
//! The hot path ([`Policy::evaluate`]) borrows everything and allocates nothing.

use kubetrail_model::{Level, Stage};
use serde::{Deserialize, Serialize};

use crate::matcher::Matcher;

/// A set of stages, printed in stage order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct StageSet(u8);

impl StageSet {
    /// The empty set.
    pub const EMPTY: StageSet = StageSet(0);

    /// Adds a stage.
    pub fn insert(&mut self, stage: Stage) {
        self.0 |= 1 << stage.index();
    }

    /// Whether the set holds `stage`.
    pub fn contains(self, stage: Stage) -> bool {
        self.0 & (1 << stage.index()) != 0
    }

    /// Set union.
    pub fn union(self, other: StageSet) -> StageSet {
        StageSet(self.0 | other.0)
    }

    /// The stages, in stage order (RequestReceived, ResponseStarted, ResponseComplete, Panic).
    pub fn iter(self) -> impl Iterator<Item = Stage> {
        Stage::ALL.into_iter().filter(move |s| self.contains(*s))
    }
}

impl FromIterator<Stage> for StageSet {
    fn from_iter<I: IntoIterator<Item = Stage>>(iter: I) -> Self {
        let mut set = StageSet::EMPTY;
        for s in iter {
            set.insert(s);
        }
        set
    }
}

impl Serialize for StageSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter().map(Stage::as_str))
    }
}

/// One `GroupResources` entry of a rule.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupResources {
    /// API group (`""` core, `"*"` any group from 1.36).
    pub group: String,
    /// Resource patterns.
    pub resources: Vec<String>,
    /// Object names.
    pub resource_names: Vec<String>,
}

/// A validated rule, ready to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The level this rule assigns.
    pub level: Level,
    /// User names (empty: any).
    pub users: Vec<String>,
    /// Groups (empty: any).
    pub user_groups: Vec<String>,
    /// Verbs (empty: any).
    pub verbs: Vec<String>,
    /// Resources (empty: any).
    pub resources: Vec<GroupResources>,
    /// Namespaces (empty: any; `""` for cluster-scoped).
    pub namespaces: Vec<String>,
    /// Non-resource URL specs.
    pub non_resource_urls: Vec<String>,
    /// The rule's own omitStages, already united with the policy's.
    pub omit_stages: StageSet,
    /// Overrides the policy's omitManagedFields when set.
    pub omit_managed_fields: Option<bool>,
    /// 1-based line of the rule in its file, when loaded from a file.
    pub line: Option<usize>,
}

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

    /// Policy-level omitManagedFields.
    pub fn omit_managed_fields(&self) -> bool {
        self.omit_managed_fields
    }
}

/// The request attributes policy rules match on (authorizer.Attributes), borrowed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Attributes<'a> {
    /// The authenticated user's name; `None` when authentication failed.
    pub user: Option<&'a str>,
    /// The authenticated user's groups (ignored without a user).
    pub groups: &'a [String],
    /// Kubernetes verb, or lower-case HTTP method for non-resource requests.
    pub verb: &'a str,
    /// Whether this is a resource request.
    pub resource_request: bool,
    /// API group (`""` for core).
    pub api_group: &'a str,
    /// API version.
    pub api_version: &'a str,
    /// Namespace (`""` for cluster-scoped and all-namespace requests).
    pub namespace: &'a str,
    /// Resource.
    pub resource: &'a str,
    /// Subresource.
    pub subresource: &'a str,
    /// Object name.
    pub name: &'a str,
    /// URL path (consulted for non-resource requests only).
    pub path: &'a str,
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

/// Why a rule did not match a request: the first selector (in upstream's order) that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mismatch {
    /// The rule names users and the request has no authenticated user.
    NoUser,
    /// The user is not one of the rule's users.
    User,
    /// The rule names groups and the request has no authenticated user.
    NoUserForGroups,
    /// None of the user's groups is one of the rule's groups.
    Group,
    /// The verb is not one of the rule's verbs.
    Verb,
    /// The rule selects resources or namespaces; the request is a non-resource request.
    NotResourceRequest,
    /// The namespace is not one of the rule's namespaces.
    Namespace,
    /// No GroupResources entry selects the request's group, resource and name.
    Resource,
    /// The rule selects non-resource URLs; the request is a resource request.
    NotNonResourceRequest,
    /// No non-resource URL spec matches the path.
    Path,
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

impl Rule {
    /// `ruleMatches`: `Ok` when the rule selects the request, else the first failed selector.
    pub fn check(&self, attrs: &Attributes<'_>) -> Result<(), Mismatch> {
        if !self.users.is_empty() {
            let user = attrs.user.ok_or(Mismatch::NoUser)?;
            if !contains(&self.users, user) {
                return Err(Mismatch::User);
            }
        }
        if !self.user_groups.is_empty() {
            if attrs.user.is_none() {
                return Err(Mismatch::NoUserForGroups);
            }
            if !attrs.groups.iter().any(|g| contains(&self.user_groups, g)) {
                return Err(Mismatch::Group);
            }
        }
        if !self.verbs.is_empty() && !contains(&self.verbs, attrs.verb) {
            return Err(Mismatch::Verb);
        }
        if !self.namespaces.is_empty() || !self.resources.is_empty() {
            return self.check_resource(attrs);
        }
        if !self.non_resource_urls.is_empty() {
            if attrs.resource_request {
                return Err(Mismatch::NotNonResourceRequest);
            }
            if !self
                .non_resource_urls
                .iter()
                .any(|spec| path_matches(attrs.path, spec))
            {
                return Err(Mismatch::Path);
            }
        }
        Ok(())
    }

    fn check_resource(&self, attrs: &Attributes<'_>) -> Result<(), Mismatch> {
        if !attrs.resource_request {
            return Err(Mismatch::NotResourceRequest);
        }
        if !self.namespaces.is_empty() && !contains(&self.namespaces, attrs.namespace) {
            return Err(Mismatch::Namespace);
        }
        if self.resources.is_empty() {
            return Ok(());
        }
        for gr in &self.resources {
            if gr.group != attrs.api_group && gr.group != "*" {
                continue;
            }
            if gr.resources.is_empty() {
                return Ok(());
            }
            if !gr.resource_names.is_empty() && !contains(&gr.resource_names, attrs.name) {
                continue;
            }
            if gr
                .resources
                .iter()
                .any(|res| resource_matches(res, attrs.resource, attrs.subresource))
            {
                return Ok(());
            }
        }
        Err(Mismatch::Resource)
    }

    /// Whether the rule has no selectors at all (matches every request).
    pub fn is_catch_all(&self) -> bool {
        self.users.is_empty()
            && self.user_groups.is_empty()
            && self.verbs.is_empty()
            && self.resources.is_empty()
            && self.namespaces.is_empty()
            && self.non_resource_urls.is_empty()
    }
}

fn contains(list: &[String], value: &str) -> bool {
    list.iter().any(|s| s == value)
}

/// One resource pattern against a request's resource and subresource: `res == combined`,
/// `*`, `*/sub` (requests with that subresource), `res/*` (the resource and all its
/// subresources).
pub(crate) fn resource_matches(pattern: &str, resource: &str, subresource: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let combined_eq = if subresource.is_empty() {
        pattern == resource
    } else {
        pattern.len() == resource.len() + 1 + subresource.len()
            && pattern.starts_with(resource)
            && pattern.as_bytes()[resource.len()] == b'/'
            && pattern.ends_with(subresource)
    };
    if combined_eq {
        return true;
    }
    if !subresource.is_empty() && pattern.strip_prefix("*/") == Some(subresource) {
        return true;
    }
    pattern.strip_suffix("/*") == Some(resource)
}

/// `pathMatches`: `*`, an exact path, or a prefix spec ending in `*` (all trailing `*`s are
/// trimmed; a plain string prefix, not segment-aware).
pub(crate) fn path_matches(path: &str, spec: &str) -> bool {
    spec == "*"
        || spec == path
        || (spec.ends_with('*') && path.starts_with(spec.trim_end_matches('*')))
}

#[cfg(test)]
mod tests {
    use super::*;

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
