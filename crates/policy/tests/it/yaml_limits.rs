//! Hostile YAML: alias bombs and deep nesting are refused with an error that names the place and
//! the limit (what `kubetrail policy lint` prints), while ordinary anchors and aliases expand.

use kubetrail_policy::lint::lint_str;
use kubetrail_policy::{ErrorType, LoadOptions};

use super::*;

/// Nine anchors, each naming the one before nine times: 9^9 scalars once expanded.
const ALIAS_BOMB: &str = include_str!("../../../../testdata/policy/alias-bomb.yaml");
/// `rules:` holding ten thousand nested block sequences.
const DEEP_NESTING: &str = include_str!("../../../../testdata/policy/deep-nesting.yaml");

#[test]
fn policy_lint_refuses_a_billion_laughs_alias_bomb() {
    let (loaded, report) = lint_str(ALIAS_BOMB, LoadOptions::default());
    assert!(!report.valid);
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    let err = &report.errors[0];
    assert_eq!(err.error_type, ErrorType::Decode);
    // The first alias of `f` (line 11, column 8) is the one that takes expansion past the limit.
    assert_eq!(err.line, Some(11), "{err}");
    assert_eq!(
        err.to_string(),
        "failed decoding: yaml: line 11, column 8: document contains excessive aliasing: \
         aliases would expand to more than 100000 nodes"
    );
    assert!(loaded.tree.is_none() && loaded.policy.is_none());
}

#[test]
fn policy_lint_refuses_deep_nesting_without_overflowing_the_stack() {
    let (_, report) = lint_str(DEEP_NESTING, LoadOptions::default());
    assert!(!report.valid);
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    let err = &report.errors[0];
    assert_eq!(err.error_type, ErrorType::Decode);
    // Under the top-level mapping, the 128th `- ` (column 3 + 2 × 127) opens level 129.
    assert_eq!(err.line, Some(6), "{err}");
    assert_eq!(
        err.to_string(),
        "failed decoding: yaml: line 6, column 257: document nests too deeply: \
         more than 128 levels of sequences and mappings"
    );
}

#[test]
fn anchors_and_aliases_in_a_policy_still_expand() {
    let text = v1(concat!(
        "  - level: None\n",
        "    users: &bots [\"system:kube-proxy\", \"system:kube-scheduler\"]\n",
        "    verbs: &read [get, list, watch]\n",
        "  - level: Metadata\n",
        "    verbs: *read\n",
        "    resources: &core [{group: \"\", resources: [pods, services]}]\n",
        "  - level: Request\n",
        "    users: *bots\n",
        "    resources: *core\n",
        "  - level: Metadata\n",
    ));
    let loaded = load(&text);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let raw = serde_json::to_value(loaded.raw.as_ref().unwrap()).unwrap();
    assert_eq!(
        raw["rules"][1]["verbs"],
        serde_json::json!(["get", "list", "watch"])
    );
    assert_eq!(raw["rules"][2]["users"], raw["rules"][0]["users"]);
    assert_eq!(raw["rules"][2]["resources"], raw["rules"][1]["resources"]);
    // An alias is reported where it is written, not where its anchor is.
    assert_eq!(loaded.line_of("rules[1].verbs"), Some(8));
    assert_eq!(loaded.line_of("rules[2].resources"), Some(12));

    let p = loaded.policy.unwrap();
    let pods = res(
        Some("system:kube-scheduler"),
        &[],
        "create",
        "",
        "pods",
        "ns",
        "",
    );
    assert_eq!(
        p.evaluate(&pods.as_attributes()).level,
        kubetrail_model::Level::Request
    );
}

#[test]
fn a_large_legitimate_expansion_stays_under_the_limit() {
    // The bomb's first five anchors: 9^5 = 59,049 scalars and 74,718 nodes from aliases.
    let text: String = ALIAS_BOMB
        .lines()
        .filter(|l| !l.starts_with(['f', 'g', 'h', 'i', 'r', ' ']))
        .map(|l| format!("{l}\n"))
        .collect();
    let root = kubetrail_policy::yaml::parse(&text).unwrap().unwrap();
    let e = root.to_json()["e"].clone();
    let scalars = e
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d.as_array().unwrap())
        .flat_map(|c| c.as_array().unwrap())
        .flat_map(|b| b.as_array().unwrap())
        .flat_map(|a| a.as_array().unwrap())
        .filter(|s| *s == "lol")
        .count();
    assert_eq!(scalars, 59_049);
}
