//! Explain: which rule decides a request, and why each earlier rule did not.

use crate::checker::{Decision, Policy};
use crate::rule::{Attributes, Mismatch, Rule};

/// One rule's verdict on a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleVerdict {
    /// 0-based rule index.
    pub index: usize,
    /// 1-based line of the rule in its file, when known.
    pub line: Option<usize>,
    /// `None` when the rule matched; otherwise why it did not.
    pub reason: Option<String>,
}

/// The decision and the verdict of every rule up to the one that decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// What kube-apiserver would do.
    pub decision: Decision,
    /// Rules in order, up to and including the matching one.
    pub rules: Vec<RuleVerdict>,
}

/// Explains how `policy` treats a request.
pub fn explain(policy: &Policy, attrs: &Attributes<'_>) -> Explanation {
    let decision = policy.evaluate(attrs);
    let last = decision
        .rule
        .unwrap_or(policy.rules().len().saturating_sub(1));
    let rules = policy
        .rules()
        .iter()
        .enumerate()
        .take(last + 1)
        .map(|(index, rule)| RuleVerdict {
            index,
            line: rule.line,
            reason: rule.check(attrs).err().map(|m| describe(m, rule, attrs)),
        })
        .collect();
    Explanation { decision, rules }
}

fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

/// A sentence for a mismatch, naming the request's value and the rule's list.
pub fn describe(m: Mismatch, rule: &Rule, a: &Attributes<'_>) -> String {
    match m {
        Mismatch::NoUser => format!(
            "no authenticated user, and the rule selects users {}",
            list(&rule.users)
        ),
        Mismatch::User => format!(
            "user {:?} is not in users {}",
            a.user.unwrap_or(""),
            list(&rule.users)
        ),
        Mismatch::NoUserForGroups => format!(
            "no authenticated user, and the rule selects userGroups {}",
            list(&rule.user_groups)
        ),
        Mismatch::Group => format!(
            "none of the groups {} is in userGroups {}",
            list(a.groups),
            list(&rule.user_groups)
        ),
        Mismatch::Verb => format!("verb {:?} is not in verbs {}", a.verb, list(&rule.verbs)),
        Mismatch::NotResourceRequest => format!(
            "the rule selects resources or namespaces, and {:?} is a non-resource request",
            a.path
        ),
        Mismatch::Namespace => format!(
            "namespace {:?} is not in namespaces {}",
            a.namespace,
            list(&rule.namespaces)
        ),
        Mismatch::Resource => {
            let group = if a.api_group.is_empty() {
                "core"
            } else {
                a.api_group
            };
            let mut what = format!("{group} {}", a.resource);
            if !a.subresource.is_empty() {
                what.push('/');
                what.push_str(a.subresource);
            }
            if !a.name.is_empty() {
                what.push_str(&format!(" named {:?}", a.name));
            }
            let entries: Vec<String> = rule
                .resources
                .iter()
                .map(|g| {
                    let group = if g.group.is_empty() { "\"\"" } else { &g.group };
                    let mut s = format!("group {group}");
                    if !g.resources.is_empty() {
                        s.push_str(&format!(" resources {}", list(&g.resources)));
                    }
                    if !g.resource_names.is_empty() {
                        s.push_str(&format!(" resourceNames {}", list(&g.resource_names)));
                    }
                    s
                })
                .collect();
            format!("no resources entry selects {what} ({})", entries.join("; "))
        }
        Mismatch::NotNonResourceRequest => {
            "the rule selects nonResourceURLs, and this is a resource request".to_string()
        }
        Mismatch::Path => format!(
            "path {:?} matches none of nonResourceURLs {}",
            a.path,
            list(&rule.non_resource_urls)
        ),
    }
}
