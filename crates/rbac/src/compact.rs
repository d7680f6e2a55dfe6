//! Rule compaction as audit2rbac does it (its `compactRules`): rules broken into atoms
//! (`BreakdownRule`), atoms of one (group, resource, name) merged (`CompactRules`), then rules
//! that differ only by names, or only by resources, folded together, and the result sorted by
//! API group and `CompactString`.
//!
//! Two differences, both documented in `docs/rbac.md`: the merge is done in a canonical order
//! (audit2rbac walks a Go map, so the same input can come out in two shapes), and a rule with
//! names never absorbs one without (audit2rbac's fold turns an unnamed rule into a named one
//! when their verbs agree, which silently drops a permission).

use std::collections::BTreeMap;

use crate::objects::PolicyRule;

/// `BreakdownRule`: one rule per (group, resource, verb[, name]) and per (URL, verb).
pub fn breakdown(rule: &PolicyRule) -> Vec<PolicyRule> {
    let mut out = Vec::new();
    let one = |s: &String| vec![s.clone()];
    for group in &rule.api_groups {
        for resource in &rule.resources {
            for verb in &rule.verbs {
                if rule.resource_names.is_empty() {
                    out.push(PolicyRule {
                        verbs: one(verb),
                        api_groups: one(group),
                        resources: one(resource),
                        ..PolicyRule::default()
                    });
                } else {
                    for name in &rule.resource_names {
                        out.push(PolicyRule {
                            verbs: one(verb),
                            api_groups: one(group),
                            resources: one(resource),
                            resource_names: one(name),
                            ..PolicyRule::default()
                        });
                    }
                }
            }
        }
    }
    for url in &rule.non_resource_urls {
        for verb in &rule.verbs {
            out.push(PolicyRule {
                verbs: one(verb),
                non_resource_urls: one(url),
                ..PolicyRule::default()
            });
        }
    }
    out
}

/// The smallest equivalent set of rules for one role, in audit2rbac's order.
pub fn compact_rules(rules: &[PolicyRule]) -> Vec<PolicyRule> {
    // Atoms of one (group, resource, name) share a rule; URL atoms pass through in order.
    let mut passthrough = Vec::new();
    let mut simple: BTreeMap<(String, String, Option<String>), Vec<String>> = BTreeMap::new();
    for atom in rules.iter().flat_map(breakdown) {
        if atom.non_resource_urls.is_empty() {
            let key = (
                atom.api_groups[0].clone(),
                atom.resources[0].clone(),
                atom.resource_names.first().cloned(),
            );
            simple.entry(key).or_default().extend(atom.verbs);
        } else if !passthrough.contains(&atom) {
            passthrough.push(atom);
        }
    }
    let mut compacted = passthrough;
    for ((group, resource, name), mut verbs) in simple {
        verbs.sort();
        verbs.dedup();
        compacted.push(PolicyRule {
            verbs,
            api_groups: vec![group],
            resources: vec![resource],
            resource_names: name.into_iter().collect(),
            non_resource_urls: vec![],
        });
    }

    // Names first: rules of one (verbs, group, resource) merge their names, never a named rule
    // with an unnamed one. Then resources: rules of one (verbs, group, names) merge their
    // resources. Each pass keeps the first rule's place.
    let by_names = fold(
        compacted,
        |a, b| {
            a.verbs == b.verbs
                && a.api_groups == b.api_groups
                && a.resources == b.resources
                && !a.resource_names.is_empty()
                && !b.resource_names.is_empty()
        },
        |acc, r| {
            acc.resource_names.extend(r.resource_names);
            acc.resource_names.sort();
            acc.resource_names.dedup();
        },
    );
    let mut folded = fold(
        by_names,
        |a, b| {
            a.verbs == b.verbs
                && a.api_groups == b.api_groups
                && a.resource_names == b.resource_names
        },
        |acc, r| acc.resources.extend(r.resources),
    );
    for r in &mut folded {
        r.resources.sort();
        r.resources.dedup();
    }
    folded.sort_by(|a, b| {
        a.api_groups
            .join(",")
            .cmp(&b.api_groups.join(","))
            .then_with(|| compact_string(a).cmp(&compact_string(b)))
    });
    folded
}

/// Folds resource rules that `same` pairs into the first of them with `merge`; URL rules pass.
fn fold(
    rules: Vec<PolicyRule>,
    same: impl Fn(&PolicyRule, &PolicyRule) -> bool,
    merge: impl Fn(&mut PolicyRule, PolicyRule),
) -> Vec<PolicyRule> {
    let mut out: Vec<PolicyRule> = Vec::new();
    for rule in rules {
        let into = (!rule.resources.is_empty())
            .then(|| {
                out.iter()
                    .position(|acc| !acc.resources.is_empty() && same(acc, &rule))
            })
            .flatten();
        match into {
            Some(i) => merge(&mut out[i], rule),
            None => out.push(rule),
        }
    }
    out
}

/// `rbacv1helpers.CompactString`: `{APIGroups:["apps"], Resources:["deployments"],
/// Verbs:["get"]}`, the fields that are set, each list as Go's `%q` writes it.
pub fn compact_string(rule: &PolicyRule) -> String {
    let mut parts = Vec::new();
    for (label, list) in [
        ("APIGroups", &rule.api_groups),
        ("Resources", &rule.resources),
        ("NonResourceURLs", &rule.non_resource_urls),
        ("ResourceNames", &rule.resource_names),
        ("Verbs", &rule.verbs),
    ] {
        if !list.is_empty() {
            let quoted: Vec<String> = list.iter().map(|s| go_quote(s)).collect();
            parts.push(format!("{label}:[{}]", quoted.join(" ")));
        }
    }
    format!("{{{}}}", parts.join(", "))
}

/// Go's `strconv.Quote` for the characters names can hold: `"` and `\` escaped, control
/// characters as `\x..`/`\u....`.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::BTreeSet;

    fn rule(verbs: &[&str], group: &str, resources: &[&str], names: &[&str]) -> PolicyRule {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect();
        PolicyRule {
            verbs: v(verbs),
            api_groups: vec![group.to_string()],
            resources: v(resources),
            resource_names: v(names),
            non_resource_urls: vec![],
        }
    }

    fn atoms(rules: &[PolicyRule]) -> BTreeSet<String> {
        rules
            .iter()
            .flat_map(breakdown)
            .map(|a| compact_string(&a))
            .collect()
    }

    #[test]
    fn resources_with_the_same_verbs_share_a_rule_in_group_order() {
        let rules = vec![
            rule(&["get", "list", "watch"], "", &["secrets"], &[]),
            rule(&["get", "list", "watch"], "apps", &["deployments"], &[]),
            rule(&["list", "get", "watch"], "", &["configmaps"], &[]),
            rule(&["watch", "get", "list"], "", &["pods"], &[]),
        ];
        let out = compact_rules(&rules);
        assert_eq!(
            out,
            vec![
                rule(
                    &["get", "list", "watch"],
                    "",
                    &["configmaps", "pods", "secrets"],
                    &[]
                ),
                rule(&["get", "list", "watch"], "apps", &["deployments"], &[]),
            ]
        );
        assert_eq!(atoms(&out), atoms(&rules));
    }

    #[test]
    fn an_unnamed_rule_never_becomes_a_named_one() {
        // audit2rbac's defect: a cluster-wide list with fieldSelector=metadata.name=foo (named)
        // and unnamed lists would fold into `pods [foo]` alone.
        let rules = vec![
            rule(&["get", "list", "watch"], "", &["pods"], &["foo"]),
            rule(&["get", "list", "watch"], "", &["pods"], &[]),
        ];
        let out = compact_rules(&rules);
        assert_eq!(atoms(&out), atoms(&rules));
        assert!(out.iter().any(|r| r.resource_names.is_empty()));
    }

    #[test]
    fn the_same_input_in_any_order_gives_the_same_rules() {
        let rules = vec![
            rule(&["get"], "", &["pods"], &["a"]),
            rule(&["get"], "", &["pods"], &["b"]),
            rule(&["get"], "", &["configmaps"], &["a"]),
        ];
        let mut reversed = rules.clone();
        reversed.reverse();
        assert_eq!(compact_rules(&rules), compact_rules(&reversed));
        assert_eq!(atoms(&compact_rules(&rules)), atoms(&rules));
    }

    fn arb_rule() -> impl proptest::strategy::Strategy<Value = PolicyRule> {
        use proptest::prelude::*;
        let pick = |xs: &'static [&'static str]| {
            proptest::sample::subsequence(xs, 1..=xs.len())
                .prop_map(|v| v.into_iter().map(String::from).collect::<Vec<_>>())
        };
        (
            pick(&["get", "list", "watch", "update", "*"]),
            pick(&["", "apps", "*"]),
            pick(&["pods", "configmaps", "pods/log", "*/scale"]),
            proptest::option::of(pick(&["a", "b", "c"])),
            proptest::option::of(pick(&["/healthz", "/api/*"])),
        )
            .prop_map(|(verbs, groups, resources, names, urls)| match urls {
                Some(urls) => PolicyRule {
                    verbs,
                    non_resource_urls: urls,
                    ..PolicyRule::default()
                },
                None => PolicyRule {
                    verbs,
                    api_groups: groups,
                    resources,
                    resource_names: names.unwrap_or_default(),
                    non_resource_urls: vec![],
                },
            })
    }

    proptest::proptest! {
        /// Compaction grants exactly what it was given: the same atoms, in any input order.
        #[test]
        fn compaction_keeps_exactly_the_atoms(rules in proptest::collection::vec(arb_rule(), 0..8)) {
            let out = compact_rules(&rules);
            proptest::prop_assert_eq!(atoms(&out), atoms(&rules));
            let mut reversed = rules.clone();
            reversed.reverse();
            proptest::prop_assert_eq!(compact_rules(&reversed), out);
        }
    }

    #[test]
    fn compact_string_is_go_s() {
        assert_eq!(
            compact_string(&rule(&["get"], "", &["pods"], &["a"])),
            r#"{APIGroups:[""], Resources:["pods"], ResourceNames:["a"], Verbs:["get"]}"#
        );
    }
}
