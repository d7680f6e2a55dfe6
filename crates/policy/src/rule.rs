//! A validated rule and what it matches on: the request attributes (authorizer.Attributes),
//! the stage sets, and `ruleMatches` itself ([`Rule::check`]) with the resource and path
//! patterns, exactly as kube-apiserver's policy checker (`pkg/audit/policy/checker.go`) reads
//! them. The compiled hot path ([`crate::matcher`]) and the policy ([`crate::Policy`]) both
//! build on this module; neither is needed here.

use kubetrail_model::{Level, Stage};
use serde::Serialize;

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
