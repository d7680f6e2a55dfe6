//! Panther's Kubernetes rule tests (panther-labs/panther-analysis), replayed through the
//! default pack: for every test of a Panther rule a pack rule covers (its
//! `references.panther`), the pack alerts exactly when Panther does, except where
//! DETECTION-PACK.md records another choice (each listed below with its reason).

use kubetrail_detect::{Engine, Runtime, load};
use kubetrail_model::{ApiVersion, decode_event_value};
use serde_json::Value;

const TESTS: &str = include_str!("../data/panther/panther-rule-tests.jsonl");

/// Tests where the pack deliberately differs, by (rule id, test name), and why.
const EXCEPTIONS: &[(&str, &str, &str)] = &[
    (
        "Kubernetes.API.AnonymousAccess",
        "Localhost Access",
        "§3 anonymous-allowed adopts the path exclusions only; an anonymous grant is as open from loopback",
    ),
    (
        "Kubernetes.ClusterRoleBinding.Privileged",
        "AKS ClusterRoleBinding to system:masters",
        "§3 cluster-admin-binding: Panther's wider role list is the parameter privileged_roles, default [cluster-admin]",
    ),
    (
        "Kubernetes.ClusterRoleBinding.Privileged",
        "EKS ClusterRoleBinding to controller-manager role",
        "§3 cluster-admin-binding: Panther's wider role list is the parameter privileged_roles, default [cluster-admin]",
    ),
    (
        "Kubernetes.ClusterRoleBinding.Privileged",
        "RoleBinding (not ClusterRoleBinding)",
        "§3 cluster-admin-binding covers namespaced bindings to cluster-admin too (Elastic)",
    ),
    (
        "Kubernetes.API.Multiple403.PublicIP",
        "EKS 403 from Public IP",
        "a single event cannot reach the threshold: §4 counts distinct events in a window (Panther alerts per event and deduplicates)",
    ),
    (
        "Kubernetes.API.Multiple403.PublicIP",
        "AKS 403 from Public IP",
        "a single event cannot reach the threshold: §4 counts distinct events in a window (Panther alerts per event and deduplicates)",
    ),
    (
        "Kubernetes.Pod.HostPath.Volume",
        "AKS Pod With HostPath",
        "§3/§5: only sensitive host paths fire; /mnt/data is not one, and the any-hostPath rule is left out",
    ),
    (
        "Kubernetes.Pod.Privileged.Created",
        "Run-As-Root Pod Created",
        "§6.5: runAsUser 0 is root in the container, not a privileged container (Falco and Elastic agree)",
    ),
    (
        "Kubernetes.Pod.Privileged.Created",
        "Pod with runAsUser=0 (root)",
        "§6.5: runAsUser 0 is root in the container, not a privileged container (Falco and Elastic agree)",
    ),
    (
        "Kubernetes.BulkSecretAccess",
        "User Gets a Secret",
        "a single event cannot reach the threshold: §4 counts distinct events in a window (Panther alerts per event and deduplicates)",
    ),
    (
        "Kubernetes.BulkSecretAccess",
        "User Lists Secrets",
        "a single event cannot reach the threshold: §4 counts distinct events in a window (Panther alerts per event and deduplicates)",
    ),
    (
        "Kubernetes.BulkSecretAccess",
        "User Watches Secrets",
        "a single event cannot reach the threshold: §4 counts distinct events in a window (Panther alerts per event and deduplicates)",
    ),
    (
        "Kubernetes.BulkSecretAccess",
        "User Gets Secret - Access Denied",
        "a single event cannot reach the threshold: §4 counts distinct events in a window (Panther alerts per event and deduplicates)",
    ),
    (
        "Kubernetes.ServiceAccount.TokenCreated",
        "System principal in user namespace (alert)",
        "§6.9: token requests by the controller-manager and kubelets are excluded (Elastic)",
    ),
];

#[test]
fn the_pack_agrees_with_panthers_rule_tests() {
    let rt = Runtime::new();
    let pack = load(&rt, true, &[], &Default::default()).expect("the pack loads");
    let mut checked = 0;
    let mut agreed = 0;
    let mut disagreements = Vec::new();
    for line in TESTS.lines() {
        let t: Value = serde_json::from_str(line).expect("a test");
        let rule_id = t["rule_id"].as_str().unwrap_or("");
        let name = t["test_name"].as_str().unwrap_or("");
        let expected = t["expected_result"].as_bool().unwrap_or(false);
        let ids: Vec<&str> = pack
            .iter()
            .filter(|r| r.references.panther.iter().any(|p| p == rule_id))
            .map(|r| r.id.as_str())
            .collect();
        if ids.is_empty() {
            continue;
        }
        let rules = pack
            .iter()
            .filter(|r| ids.contains(&r.id.as_str()))
            .map(|r| {
                r.with_parameters(&rt, &Default::default())
                    .expect("recompiles")
            })
            .collect();
        let mut engine = Engine::new(Runtime::new(), rules);
        let mut alerts = Vec::new();
        match decode_event_value(t["event"].clone(), Some(ApiVersion::V1)) {
            Ok(e) => engine.observe(&e, "panther", &mut alerts),
            Err(e) => panic!("{rule_id} / {name}: the event does not decode: {e}"),
        }
        checked += 1;
        let fired = !alerts.is_empty();
        let exception = EXCEPTIONS
            .iter()
            .find(|(r, n, _)| *r == rule_id && *n == name);
        match exception {
            Some((_, _, why)) => assert!(
                fired != expected,
                "{rule_id} / {name} is listed as an exception ({why}) but the pack agrees"
            ),
            None if fired == expected => agreed += 1,
            None => disagreements.push(format!(
                "{rule_id} / {name}: Panther {expected}, pack {fired} ({ids:?})"
            )),
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
    assert_eq!((checked, agreed + EXCEPTIONS.len()), (checked, checked));
    eprintln!(
        "panther: {agreed} of {checked} agree, {} exceptions",
        EXCEPTIONS.len()
    );
}
