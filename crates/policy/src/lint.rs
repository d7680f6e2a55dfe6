//! Lint: everything [`load_str`](crate::load_str) reports, plus what a reviewer of an audit
//! policy wants to know: rules that can never match, sensitive resources logged with their
//! bodies, a missing catch-all rule, `RequestReceived` not omitted, features the target
//! release lacks.

use kubetrail_model::{KNOWN_VERBS, Level, Stage};
use serde::Serialize;

use crate::checker::Policy;
use crate::field::FieldError;
use crate::load::{LoadOptions, Loaded, Warning, load_str};
use crate::rule::{GroupResources, Rule, resource_matches};

/// The answer of `kubetrail policy lint`, in its JSON shape.
#[derive(Debug, Clone, Serialize)]
pub struct LintReport {
    /// Whether kube-apiserver would load the policy.
    pub valid: bool,
    /// Why it would not.
    pub errors: Vec<FieldError>,
    /// What is worth fixing anyway.
    pub warnings: Vec<Warning>,
}

/// Resources whose bodies carry secret values: logging them at Request or RequestResponse
/// writes those values into the audit log.
const SENSITIVE: [(&str, &str); 3] = [
    ("", "secrets"),
    ("", "configmaps"),
    ("authentication.k8s.io", "tokenreviews"),
];

/// Loads and lints policy text.
pub fn lint_str(text: &str, options: LoadOptions) -> (Loaded, LintReport) {
    let loaded = load_str(text, options);
    let mut warnings = loaded.warnings.clone();
    if let Some(policy) = &loaded.policy {
        warnings.extend(policy_warnings(policy, options));
    }
    for w in &mut warnings {
        if w.line.is_none() {
            w.line = loaded.line_of(&w.field);
        }
    }
    // In the order of the file; those without a line (none, when the file parsed) last.
    warnings.sort_by_key(|w| w.line.unwrap_or(usize::MAX));
    let report = LintReport {
        valid: loaded.is_valid(),
        errors: loaded.errors.clone(),
        warnings,
    };
    (loaded, report)
}

/// The semantic warnings for a valid policy.
pub fn policy_warnings(policy: &Policy, options: LoadOptions) -> Vec<Warning> {
    let mut out = Vec::new();
    let warn = |field: String, message: String| Warning {
        field,
        message,
        line: None,
    };

    for (j, rule) in policy.rules().iter().enumerate() {
        out.extend(selector_warnings(j, rule));
        if let Some(i) = (0..j).find(|&i| covers(&policy.rules()[i], rule)) {
            out.push(warn(
                format!("rules[{j}]"),
                format!(
                    "rule can never match: every request it selects is matched first by rules[{i}]{}",
                    line_suffix(policy.rules()[i].line)
                ),
            ));
            continue;
        }
        if rule.level >= Level::Request {
            for (group, resource) in SENSITIVE {
                if let Some(restricted) = restrict_to(rule, group, resource)
                    && !(0..j).any(|i| covers(&policy.rules()[i], &restricted))
                {
                    let g = if group.is_empty() { "core" } else { group };
                    out.push(warn(
                            format!("rules[{j}]"),
                            format!(
                                "{resource} ({g}) can be logged at {}: their bodies hold secret values that end up in the audit log; log them at Metadata in an earlier rule",
                                rule.level
                            ),
                        ));
                }
            }
        }
        if options.kube_version.is_none() && rule.resources.iter().any(|g| g.group == "*") {
            out.push(warn(
                format!("rules[{j}].resources"),
                "group \"*\" needs kube-apiserver 1.36 or later: older releases reject the policy"
                    .into(),
            ));
        }
    }

    match policy.rules().last() {
        Some(last) if !last.is_catch_all() => out.push(warn(
            format!("rules[{}]", policy.rules().len() - 1),
            "no catch-all rule at the end: requests that no rule matches are not audited at all; end with a rule without selectors, e.g. `- level: Metadata`".into(),
        )),
        _ => {}
    }

    let logs_request_received = !policy.omit_stages().contains(Stage::RequestReceived)
        && policy
            .rules()
            .iter()
            .any(|r| r.level != Level::None && !r.omit_stages.contains(Stage::RequestReceived));
    if logs_request_received {
        out.push(warn(
            "omitStages".into(),
            "RequestReceived is not omitted: most requests are then logged twice (RequestReceived and ResponseComplete), doubling the volume; add `omitStages: [RequestReceived]`".into(),
        ));
    }
    out
}

/// Selector values that are valid but can never match what they look like they match: the
/// policy compares users, groups and verbs exactly (no wildcards), and requests carry
/// lowercase verbs and plural lowercase resource names.
fn selector_warnings(j: usize, rule: &Rule) -> Vec<Warning> {
    let mut out = Vec::new();
    let mut warn = |field: String, message: String| {
        out.push(Warning {
            field,
            message,
            line: None,
        })
    };
    for (key, values) in [("users", &rule.users), ("userGroups", &rule.user_groups)] {
        for (k, v) in values.iter().enumerate() {
            if v.contains('*') {
                warn(
                    format!("rules[{j}].{key}[{k}]"),
                    format!(
                        "{v:?} is matched literally: audit policies compare {key} exactly, without wildcards, so it matches only a name that is exactly {v:?}"
                    ),
                );
            }
        }
    }
    for (k, v) in rule.verbs.iter().enumerate() {
        if KNOWN_VERBS.contains(&v.as_str()) {
            continue;
        }
        let lower = v.to_lowercase();
        let message = if KNOWN_VERBS.contains(&lower.as_str()) {
            format!("{v:?} never matches: requests carry lowercase verbs; write {lower:?}")
        } else if v == "*" {
            "\"*\" is matched literally: audit policies compare verbs exactly; leave verbs out to match every verb".to_string()
        } else {
            let hint = crate::field::closest(&lower, KNOWN_VERBS)
                .map_or(String::new(), |c| format!(" (did you mean {c:?}?)"));
            format!(
                "{v:?} is no verb kube-apiserver records{hint}: the verbs are {}",
                KNOWN_VERBS.join(", ")
            )
        };
        warn(format!("rules[{j}].verbs[{k}]"), message);
    }
    for (g, group) in rule.resources.iter().enumerate() {
        for (k, r) in group.resources.iter().enumerate() {
            let (resource, _) = r.split_once('/').unwrap_or((r, ""));
            if resource.chars().any(|c| c.is_ascii_uppercase()) {
                warn(
                    format!("rules[{j}].resources[{g}].resources[{k}]"),
                    format!(
                        "{r:?} never matches: resources are named in lowercase plural, as in URLs (e.g. {:?}), not by kind",
                        plural_guess(&resource.to_lowercase())
                    ),
                );
            }
        }
    }
    out
}

/// The URL form English pluralisation gives a kind (`Deployment` → `deployments`, `Policy` →
/// `policies`), for the hint only.
fn plural_guess(lower: &str) -> String {
    if let Some(stem) = lower.strip_suffix('y')
        && !stem.ends_with(['a', 'e', 'o', 'u'])
    {
        return format!("{stem}ies");
    }
    if lower.ends_with('s') || lower.ends_with("ch") || lower.ends_with('x') {
        return format!("{lower}es");
    }
    format!("{lower}s")
}

fn line_suffix(line: Option<usize>) -> String {
    line.map(|l| format!(" (line {l})")).unwrap_or_default()
}

/// The part of `rule` that selects `group`/`resource` itself, or `None` when the
/// rule cannot select it.
fn restrict_to(rule: &Rule, group: &str, resource: &str) -> Option<Rule> {
    if !rule.non_resource_urls.is_empty() {
        return None;
    }
    let mut names = Vec::new();
    if !rule.resources.is_empty() {
        let entry = rule.resources.iter().find(|g| {
            (g.group == group || g.group == "*")
                && (g.resources.is_empty()
                    || g.resources.iter().any(|p| {
                        resource_matches(p, resource, "") || p.strip_suffix("/*") == Some(resource)
                    }))
        })?;
        names = entry.resource_names.clone();
    }
    let mut restricted = rule.clone();
    restricted.resources = vec![GroupResources {
        group: group.to_string(),
        resources: vec![resource.to_string()],
        resource_names: names,
    }];
    Some(restricted)
}

/// Whether rule `a` matches every request rule `b` matches (a sound, not complete, check).
pub fn covers(a: &Rule, b: &Rule) -> bool {
    list_covers(&a.users, &b.users)
        && list_covers(&a.user_groups, &b.user_groups)
        && list_covers(&a.verbs, &b.verbs)
        && scope_covers(a, b)
}

/// An empty list selects everything; otherwise `b` must select a subset.
fn list_covers(a: &[String], b: &[String]) -> bool {
    a.is_empty() || (!b.is_empty() && b.iter().all(|x| a.contains(x)))
}

#[derive(PartialEq)]
enum Scope {
    All,
    Resource,
    NonResource,
}

fn scope(r: &Rule) -> Scope {
    if !r.namespaces.is_empty() || !r.resources.is_empty() {
        Scope::Resource
    } else if !r.non_resource_urls.is_empty() {
        Scope::NonResource
    } else {
        Scope::All
    }
}

fn scope_covers(a: &Rule, b: &Rule) -> bool {
    match scope(a) {
        Scope::All => true,
        Scope::Resource => {
            scope(b) == Scope::Resource
                && list_covers(&a.namespaces, &b.namespaces)
                && (a.resources.is_empty()
                    || (!b.resources.is_empty()
                        && b.resources.iter().all(|g| group_covered(&a.resources, g))))
        }
        Scope::NonResource => {
            scope(b) == Scope::NonResource
                && b.non_resource_urls.iter().all(|p| {
                    a.non_resource_urls.iter().any(|q| {
                        q == "*"
                            || q == p
                            || (q.ends_with('*') && p.starts_with(q.trim_end_matches('*')))
                    })
                })
        }
    }
}

fn group_covered(a: &[GroupResources], b: &GroupResources) -> bool {
    let candidates: Vec<&GroupResources> = a
        .iter()
        .filter(|g| g.group == "*" || (g.group == b.group && b.group != "*"))
        .collect();
    if candidates.iter().any(|g| g.resources.is_empty()) {
        return true;
    }
    if b.resources.is_empty() {
        return false;
    }
    b.resources.iter().all(|p| {
        candidates.iter().any(|g| {
            list_covers(&g.resource_names, &b.resource_names)
                && g.resources.iter().any(|q| pattern_covers(q, p))
        })
    })
}

/// Whether resource pattern `q` matches every request pattern `p` matches.
fn pattern_covers(q: &str, p: &str) -> bool {
    if q == "*" || q == p {
        return true;
    }
    if p == "*" {
        return false;
    }
    if let Some(r) = q.strip_suffix("/*") {
        return p == r || p.strip_prefix(r).is_some_and(|rest| rest.starts_with('/'));
    }
    if let Some(sub) = q.strip_prefix("*/") {
        return p
            .split_once('/')
            .is_some_and(|(res, s)| !res.is_empty() && s == sub);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_coverage() {
        assert!(pattern_covers("*", "pods/log"));
        assert!(pattern_covers("pods/*", "pods"));
        assert!(pattern_covers("pods/*", "pods/log"));
        assert!(!pattern_covers("pods/*", "podsx"));
        assert!(pattern_covers("*/status", "deployments/status"));
        assert!(pattern_covers("*/status", "*/status"));
        assert!(!pattern_covers("*/status", "deployments"));
        assert!(!pattern_covers("pods", "pods/log"));
        assert!(!pattern_covers("pods", "*"));
    }
}
