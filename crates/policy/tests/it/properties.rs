//! Properties over generated policies and requests: first match wins, order after the match does
//! not matter, and lint's "covers" analysis never claims a rule is shadowed when it is not.

use kubetrail_model::{Level, Stage};
use kubetrail_policy::lint::covers;
use kubetrail_policy::{GroupResources, Policy, RequestAttributes, Rule, StageSet};
use proptest::prelude::*;
use proptest::sample::subsequence;

fn pick(options: &'static [&'static str], max: usize) -> impl Strategy<Value = Vec<String>> {
    subsequence(options, 0..=max).prop_map(|v| v.into_iter().map(str::to_string).collect())
}

fn level() -> impl Strategy<Value = Level> {
    prop::sample::select(Level::ALL.to_vec())
}

fn stages() -> impl Strategy<Value = StageSet> {
    subsequence(Stage::ALL.to_vec(), 0..=2).prop_map(|v| v.into_iter().collect())
}

fn group_resources() -> impl Strategy<Value = GroupResources> {
    (
        prop::sample::select(vec!["", "apps", "*"]),
        pick(
            &[
                "pods",
                "pods/log",
                "pods/*",
                "*/log",
                "*",
                "deployments",
                "deployments/status",
                "*/status",
            ],
            2,
        ),
        pick(&["a", "b"], 1),
    )
        .prop_map(|(group, resources, names)| GroupResources {
            group: group.to_string(),
            resource_names: if resources.is_empty() {
                Vec::new()
            } else {
                names
            },
            resources,
        })
}

fn rule() -> impl Strategy<Value = Rule> {
    let common = (
        level(),
        pick(&["alice", "bob"], 2),
        pick(&["dev", "ops"], 1),
        pick(&["get", "list", "create", "update"], 2),
        stages(),
        proptest::option::of(any::<bool>()),
    );
    let scope = prop_oneof![
        Just((Vec::new(), Vec::new(), Vec::new())),
        (
            prop::collection::vec(group_resources(), 0..3),
            pick(&["", "default", "kube-system"], 2)
        )
            .prop_map(|(r, n)| (r, n, Vec::new())),
        pick(&["/healthz", "/healthz*", "*", "/api*", "/metrics"], 2).prop_map(|u| (
            Vec::new(),
            Vec::new(),
            u
        )),
    ];
    (common, scope).prop_map(
        |(
            (level, users, user_groups, verbs, omit_stages, omf),
            (resources, namespaces, non_resource_urls),
        )| Rule {
            level,
            users,
            user_groups,
            verbs,
            resources,
            namespaces,
            non_resource_urls,
            omit_stages,
            omit_managed_fields: omf,
            line: None,
        },
    )
}

fn request() -> impl Strategy<Value = RequestAttributes> {
    let user = proptest::option::of(prop::sample::select(vec!["alice", "bob", "carol"]));
    let groups = pick(&["dev", "ops", "system:authenticated"], 2);
    let verb = prop::sample::select(vec!["get", "list", "create", "update", "watch"]);
    let resource = (
        prop::sample::select(vec!["", "apps", "batch"]),
        prop::sample::select(vec!["pods", "deployments", "secrets"]),
        prop::sample::select(vec!["", "log", "status"]),
        prop::sample::select(vec!["", "default", "kube-system"]),
        prop::sample::select(vec!["", "a", "b"]),
    );
    let path = prop::sample::select(vec![
        "/healthz",
        "/healthzfoo",
        "/api",
        "/apis/apps",
        "/metrics",
        "/version",
    ]);
    (user, groups, verb, any::<bool>(), resource, path).prop_map(
        |(user, groups, verb, is_res, (group, res, sub, ns, name), path)| {
            if is_res {
                RequestAttributes {
                    user: user.map(str::to_string),
                    groups,
                    verb: verb.into(),
                    resource_request: true,
                    api_group: group.into(),
                    api_version: "v1".into(),
                    namespace: ns.into(),
                    resource: res.into(),
                    subresource: sub.into(),
                    name: name.into(),
                    path: String::new(),
                }
            } else {
                RequestAttributes {
                    user: user.map(str::to_string),
                    groups,
                    verb: verb.into(),
                    path: path.into(),
                    ..RequestAttributes::default()
                }
            }
        },
    )
}

fn policy_of(rules: Vec<Rule>, omit: StageSet) -> Policy {
    let rules = rules
        .into_iter()
        .map(|mut r| {
            r.omit_stages = r.omit_stages.union(omit);
            r
        })
        .collect();
    Policy::new(rules, omit, false)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_first_rule_without_selectors_always_wins(
        level in level(), rest in prop::collection::vec(rule(), 0..6), req in request(),
    ) {
        let mut rules = vec![Rule {
            level, users: vec![], user_groups: vec![], verbs: vec![], resources: vec![],
            namespaces: vec![], non_resource_urls: vec![], omit_stages: StageSet::EMPTY,
            omit_managed_fields: None, line: None,
        }];
        rules.extend(rest);
        let p = policy_of(rules, StageSet::EMPTY);
        let d = p.evaluate(&req.as_attributes());
        prop_assert_eq!(d.rule, Some(0));
        prop_assert_eq!(d.level, level);
    }

    #[test]
    fn rules_after_the_match_never_change_the_decision(
        rules in prop::collection::vec(rule(), 1..8), req in request(), seed in any::<u64>(),
        omit in stages(),
    ) {
        let p = policy_of(rules.clone(), omit);
        let d = p.evaluate(&req.as_attributes());
        let k = d.rule.map_or(rules.len(), |k| k + 1);
        // Reverse and rotate the rules after the match by a seed-chosen amount.
        let mut tail = rules[k..].to_vec();
        tail.reverse();
        if !tail.is_empty() {
            let n = (seed % tail.len() as u64) as usize;
            tail.rotate_left(n);
        }
        let mut reordered = rules[..k].to_vec();
        reordered.extend(tail);
        let d2 = policy_of(reordered, omit).evaluate(&req.as_attributes());
        if d.rule.is_some() {
            prop_assert_eq!(d, d2);
        }
        // The decision is the first rule that matches, and omitStages include the policy's.
        let first = rules.iter().position(|r| r.check(&req.as_attributes()).is_ok());
        prop_assert_eq!(d, p.evaluate_reference(&req.as_attributes()));
        prop_assert_eq!(d.rule, first);
        prop_assert_eq!(d.omit_stages.union(omit), d.omit_stages);
        if first.is_none() {
            prop_assert_eq!(d.level, Level::None);
            prop_assert_eq!(d.omit_stages, omit);
        }
    }

    #[test]
    fn covers_is_sound(a in rule(), b in rule(), reqs in prop::collection::vec(request(), 32)) {
        if covers(&a, &b) {
            for req in &reqs {
                if b.check(&req.as_attributes()).is_ok() {
                    prop_assert!(a.check(&req.as_attributes()).is_ok(), "{:?} covers {:?} but not {:?}", a, b, req);
                }
            }
        }
    }
}
