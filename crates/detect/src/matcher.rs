//! A rule's `match` blocks compiled to comparisons that dismiss most events before any
//! expression runs: verbs as a bit set over the known verbs, codes as integers, names as
//! exact strings or `*` patterns.

use kubetrail_model::{Event, KNOWN_VERBS};

use crate::facts::Facts;
use crate::glob::glob;
use crate::spec::{MatchSpec, Outcome};

/// The verbs a block allows: a bit per known verb, and the unknown ones spelled out.
#[derive(Debug, Clone, Default)]
struct Verbs {
    any: bool,
    known: u32,
    other: Vec<String>,
}

impl Verbs {
    fn new(verbs: &[String]) -> Verbs {
        let mut v = Verbs {
            any: verbs.is_empty() || verbs.iter().any(|x| x == "*"),
            ..Verbs::default()
        };
        for verb in verbs {
            match verb_bit(verb) {
                Some(bit) => v.known |= bit,
                None => v.other.push(verb.clone()),
            }
        }
        v
    }

    fn allows(&self, verb: &str, bit: Option<u32>) -> bool {
        self.any
            || match bit {
                Some(bit) => self.known & bit != 0,
                None => self.other.iter().any(|v| v == verb),
            }
    }
}

/// The bit of a known verb.
pub(crate) fn verb_bit(verb: &str) -> Option<u32> {
    KNOWN_VERBS
        .iter()
        .position(|v| *v == verb)
        .map(|i| 1u32 << i)
}

/// One resource pattern, as audit policies write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ResourcePattern {
    /// `*`: everything, subresources included.
    Any,
    /// `pods`: the resource itself, not its subresources.
    Exact(String),
    /// `pods/exec`.
    Sub(String, String),
    /// `pods/*`: any subresource of the resource.
    AnySub(String),
    /// `*/scale`: that subresource of any resource.
    SubOfAny(String),
}

impl ResourcePattern {
    pub(crate) fn parse(s: &str) -> ResourcePattern {
        match s.split_once('/') {
            None if s == "*" => ResourcePattern::Any,
            None => ResourcePattern::Exact(s.to_string()),
            Some(("*", sub)) => ResourcePattern::SubOfAny(sub.to_string()),
            Some((res, "*")) => ResourcePattern::AnySub(res.to_string()),
            Some((res, sub)) => ResourcePattern::Sub(res.to_string(), sub.to_string()),
        }
    }

    fn matches(&self, resource: &str, sub: &str) -> bool {
        match self {
            ResourcePattern::Any => true,
            ResourcePattern::Exact(r) => r == resource && sub.is_empty(),
            ResourcePattern::Sub(r, s) => r == resource && s == sub,
            ResourcePattern::AnySub(r) => r == resource && !sub.is_empty(),
            ResourcePattern::SubOfAny(s) => s == sub,
        }
    }

    /// The resource name an event must have to match, when there is exactly one.
    pub(crate) fn resource(&self) -> Option<&str> {
        match self {
            ResourcePattern::Exact(r) | ResourcePattern::Sub(r, _) | ResourcePattern::AnySub(r) => {
                Some(r)
            }
            ResourcePattern::Any | ResourcePattern::SubOfAny(_) => None,
        }
    }
}

/// What is known of an event before it is decoded: the columns a store keeps. `impersonated`
/// is `None` when it cannot be told (a store keeps the impersonated user's name, not groups).
#[derive(Debug, Clone, Copy)]
pub struct Head<'a> {
    /// The verb.
    pub verb: &'a str,
    /// `objectRef.resource`, `""` when none.
    pub resource: &'a str,
    /// `objectRef.subresource`.
    pub subresource: &'a str,
    /// `objectRef.apiGroup`.
    pub api_group: &'a str,
    /// `objectRef.namespace`.
    pub namespace: &'a str,
    /// `user.username`.
    pub user: &'a str,
    /// `user.groups`.
    pub groups: &'a [String],
    /// `responseStatus.code`.
    pub code: Option<i32>,
    /// The `authorization.k8s.io/decision` annotation, `""` when absent.
    pub decision: &'a str,
    /// Whether somebody was impersonated, when known.
    pub impersonated: Option<bool>,
}

/// One compiled `match` block.
#[derive(Debug, Clone)]
pub struct Block {
    verbs: Verbs,
    verb_names: Vec<String>,
    api_groups: Vec<String>,
    pub(crate) resources: Vec<ResourcePattern>,
    namespaces: Vec<String>,
    users: Vec<String>,
    exclude_users: Vec<String>,
    groups: Vec<String>,
    codes: Vec<i32>,
    outcome: Outcome,
    impersonated: Option<bool>,
}

impl Block {
    /// Compiles a block as written.
    pub fn new(spec: &MatchSpec) -> Block {
        Block {
            verbs: Verbs::new(&spec.verbs),
            verb_names: spec.verbs.clone(),
            api_groups: spec.api_groups.clone(),
            resources: spec
                .resources
                .iter()
                .map(|r| ResourcePattern::parse(r))
                .collect(),
            namespaces: spec.namespaces.clone(),
            users: spec.users.clone(),
            exclude_users: spec.exclude_users.clone(),
            groups: spec.groups.clone(),
            codes: spec.codes.clone(),
            outcome: spec.outcome,
            impersonated: spec.impersonated,
        }
    }

    /// Whether the event passes every key of the block.
    pub fn matches(&self, event: &Event, facts: &Facts) -> bool {
        let verb = event.verb.as_deref().unwrap_or("");
        if !self.verbs.allows(verb, facts.verb_bit) {
            return false;
        }
        let object = event.object_ref.as_ref();
        if !self.resources.is_empty() {
            let resource = object.and_then(|o| o.resource.as_deref()).unwrap_or("");
            let sub = object.and_then(|o| o.subresource.as_deref()).unwrap_or("");
            if !self.resources.iter().any(|p| p.matches(resource, sub)) {
                return false;
            }
        }
        if !self.api_groups.is_empty() {
            let group = object.and_then(|o| o.api_group.as_deref()).unwrap_or("");
            if !self.api_groups.iter().any(|g| g == group || g == "*") {
                return false;
            }
        }
        if !self.namespaces.is_empty() {
            let ns = object.and_then(|o| o.namespace.as_deref()).unwrap_or("");
            if !self.namespaces.iter().any(|n| n == ns || n == "*") {
                return false;
            }
        }
        if !self.codes.is_empty() && !facts.code.is_some_and(|c| self.codes.contains(&c)) {
            return false;
        }
        let ok = match self.outcome {
            Outcome::Any => true,
            Outcome::Succeeded => facts.succeeded,
            Outcome::Ok => facts.ok(),
            Outcome::Failed => !facts.ok(),
        };
        if !ok {
            return false;
        }
        if let Some(want) = self.impersonated
            && facts.impersonated != want
        {
            return false;
        }
        let user = facts.user;
        if !self.users.is_empty() && !self.users.iter().any(|p| glob(user, p)) {
            return false;
        }
        if self.exclude_users.iter().any(|p| glob(user, p)) {
            return false;
        }
        if !self.groups.is_empty() {
            let groups = event
                .user
                .as_ref()
                .map(|u| u.groups.as_slice())
                .unwrap_or(&[]);
            if !groups.iter().any(|g| self.groups.contains(g)) {
                return false;
            }
        }
        true
    }

    /// Whether an event with this head may pass the block: [`Block::matches`] on the columns
    /// alone, passing what they cannot tell. False means it does not match.
    pub fn may_match(&self, h: &Head<'_>) -> bool {
        if !self.verbs.allows(h.verb, verb_bit(h.verb)) {
            return false;
        }
        if !self.resources.is_empty()
            && !self
                .resources
                .iter()
                .any(|p| p.matches(h.resource, h.subresource))
        {
            return false;
        }
        if !self.api_groups.is_empty()
            && !self.api_groups.iter().any(|g| g == h.api_group || g == "*")
        {
            return false;
        }
        if !self.namespaces.is_empty()
            && !self.namespaces.iter().any(|n| n == h.namespace || n == "*")
        {
            return false;
        }
        if !self.codes.is_empty() && !h.code.is_some_and(|c| self.codes.contains(&c)) {
            return false;
        }
        let succeeded = h.code.is_none_or(|c| c < 400);
        let ok = succeeded && h.decision != "forbid";
        let passes = match self.outcome {
            Outcome::Any => true,
            Outcome::Succeeded => succeeded,
            Outcome::Ok => ok,
            Outcome::Failed => !ok,
        };
        if !passes {
            return false;
        }
        if let (Some(want), Some(is)) = (self.impersonated, h.impersonated)
            && want != is
        {
            return false;
        }
        if !self.users.is_empty() && !self.users.iter().any(|p| glob(h.user, p)) {
            return false;
        }
        if self.exclude_users.iter().any(|p| glob(h.user, p)) {
            return false;
        }
        if !self.groups.is_empty() && !h.groups.iter().any(|g| self.groups.contains(g)) {
            return false;
        }
        true
    }

    /// The resource names an event must have for this block to match; `None` when any may.
    pub(crate) fn required_resources(&self) -> Option<Vec<&str>> {
        if self.resources.is_empty() {
            return None;
        }
        self.resources.iter().map(|p| p.resource()).collect()
    }
}

/// A rule's blocks: any one must match (no block: every event matches).
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    pub(crate) blocks: Vec<Block>,
}

impl Matcher {
    /// Compiles the blocks as written.
    pub fn new(specs: &[MatchSpec]) -> Matcher {
        Matcher {
            blocks: specs.iter().map(Block::new).collect(),
        }
    }

    /// Whether any block matches.
    pub fn matches(&self, event: &Event, facts: &Facts) -> bool {
        self.blocks.is_empty() || self.blocks.iter().any(|b| b.matches(event, facts))
    }

    /// Whether an event with this head may match ([`Block::may_match`]).
    pub fn may_match(&self, head: &Head<'_>) -> bool {
        self.blocks.is_empty() || self.blocks.iter().any(|b| b.may_match(head))
    }

    /// The resource names an event must have to match; `None` when any may.
    pub(crate) fn required_resources(&self) -> Option<Vec<&str>> {
        if self.blocks.is_empty() {
            return None;
        }
        let mut all = Vec::new();
        for b in &self.blocks {
            all.extend(b.required_resources()?);
        }
        Some(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_patterns_follow_audit_policy_spelling() {
        let p = ResourcePattern::parse;
        assert!(p("pods").matches("pods", ""));
        assert!(!p("pods").matches("pods", "exec"));
        assert!(p("pods/exec").matches("pods", "exec"));
        assert!(!p("pods/exec").matches("pods", "attach"));
        assert!(p("pods/*").matches("pods", "log"));
        assert!(!p("pods/*").matches("pods", ""));
        assert!(p("*/scale").matches("deployments", "scale"));
        assert!(p("*").matches("secrets", ""));
        assert!(p("*").matches("pods", "exec"));
    }

    #[test]
    fn unknown_verbs_are_compared_by_name() {
        let v = Verbs::new(&["create".into(), "frobnicate".into()]);
        assert!(v.allows("create", verb_bit("create")));
        assert!(v.allows("frobnicate", verb_bit("frobnicate")));
        assert!(!v.allows("get", verb_bit("get")));
        assert!(Verbs::new(&[]).allows("anything", verb_bit("anything")));
    }
}

/// A request a match block lets through, as a policy sees it: what `rules list --policy`
/// asks the policy about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// The verb.
    pub verb: String,
    /// The API group.
    pub api_group: String,
    /// The resource.
    pub resource: String,
    /// The subresource, `""` for none.
    pub subresource: String,
    /// The namespace, `""` for cluster-scoped resources.
    pub namespace: String,
    /// A user the block lets through.
    pub user: String,
    /// A group the block asks for, if it asks.
    pub group: Option<String>,
    /// A response code the block lets through.
    pub code: i32,
    /// Whether the request impersonates somebody.
    pub impersonated: bool,
}

/// The API group of built-in resources rules name without one.
fn builtin_group(resource: &str) -> &'static str {
    match resource {
        "deployments" | "daemonsets" | "statefulsets" | "replicasets" => "apps",
        "cronjobs" | "jobs" => "batch",
        "roles" | "clusterroles" | "rolebindings" | "clusterrolebindings" => {
            "rbac.authorization.k8s.io"
        }
        "certificatesigningrequests" => "certificates.k8s.io",
        "mutatingwebhookconfigurations" | "validatingwebhookconfigurations" => {
            "admissionregistration.k8s.io"
        }
        _ => "",
    }
}

/// Whether a built-in resource is cluster-scoped.
fn cluster_scoped(resource: &str) -> bool {
    matches!(
        resource,
        "nodes"
            | "namespaces"
            | "clusterroles"
            | "clusterrolebindings"
            | "certificatesigningrequests"
            | "mutatingwebhookconfigurations"
            | "validatingwebhookconfigurations"
            | "persistentvolumes"
    )
}

impl Block {
    /// The requests the block lets through, one per verb and named resource; none when the
    /// block names no resource (it lets any through).
    pub fn samples(&self) -> Vec<Sample> {
        let verbs: Vec<String> = if self.verb_names.is_empty() {
            vec!["get".into()]
        } else {
            self.verb_names.clone()
        };
        let namespaces = &self.namespaces;
        let mut out = Vec::new();
        for p in &self.resources {
            let (resource, sub) = match p {
                ResourcePattern::Exact(r) => (r.as_str(), ""),
                ResourcePattern::Sub(r, s) => (r.as_str(), s.as_str()),
                _ => continue,
            };
            for verb in &verbs {
                let api_group = self
                    .api_groups
                    .first()
                    .cloned()
                    .unwrap_or_else(|| builtin_group(resource).to_string());
                let namespace = if cluster_scoped(resource) {
                    String::new()
                } else {
                    namespaces
                        .first()
                        .cloned()
                        .unwrap_or_else(|| "default".into())
                };
                out.push(Sample {
                    verb: verb.clone(),
                    api_group,
                    resource: resource.to_string(),
                    subresource: sub.to_string(),
                    namespace,
                    user: self
                        .users
                        .iter()
                        .find(|u| !u.contains('*'))
                        .cloned()
                        .unwrap_or_else(|| "alice".into()),
                    group: self.groups.first().cloned(),
                    code: self.codes.first().copied().unwrap_or(match self.outcome {
                        Outcome::Failed => 403,
                        _ => 200,
                    }),
                    impersonated: self.impersonated == Some(true),
                });
            }
        }
        out
    }
}
