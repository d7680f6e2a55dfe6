//! The default pack loads, holds the rules of DETECTION-PACK.md, and every example passes.

use kubetrail_detect::{Kind, Runtime, load, run_examples};

fn pack() -> Vec<kubetrail_detect::Rule> {
    load(&Runtime::new(), true, &[], &Default::default()).unwrap_or_else(|e| {
        panic!(
            "the default pack loads: {}",
            e.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

#[test]
fn the_pack_has_the_35_specified_rules() {
    let rules = pack();
    let ids: Vec<&str> = rules.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(rules.len(), 35, "{ids:?}");
    let stateful: Vec<&str> = rules
        .iter()
        .filter(|r| r.kind != Kind::Stateless)
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(
        stateful,
        [
            "forbidden-burst",
            "secret-enumeration",
            "exec-into-privileged-pod",
            "rbac-then-workload"
        ]
    );
    for id in [
        "privileged-pod",
        "sensitive-hostpath-mount",
        "host-network-pod",
        "host-pid-pod",
        "host-ipc-pod",
        "dangerous-capabilities",
        "pod-in-kube-namespace",
        "ephemeral-container",
        "nodeport-service",
        "pod-exec",
        "pod-portforward",
        "exec-credential-access",
        "exec-reverse-shell",
        "kubectl-cp-from-pod",
        "node-proxy",
        "cluster-admin-binding",
        "wildcard-role",
        "role-wildcard-elevation",
        "pod-exec-role",
        "node-proxy-role",
        "escalation-verbs-role",
        "system-role-modified",
        "anonymous-allowed",
        "impersonation",
        "token-request-for-sa",
        "csr-approved",
        "client-cert-csr",
        "secret-read-by-user",
        "secret-list-cluster-wide",
        "admission-webhook-change",
        "critical-configmap-modified",
    ] {
        assert!(ids.contains(&id), "{id} missing");
    }
}

#[test]
fn every_example_of_the_pack_passes() {
    let rules = pack();
    let report = run_examples(&rules);
    let failures: Vec<String> = report
        .failures
        .iter()
        .map(|f| format!("{}: {}: {}", f.rule, f.example, f.message))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        report.run,
        failures.join("\n")
    );
    assert!(report.run >= 105, "{}", report.run);
}

#[test]
fn every_rule_has_two_positive_examples_and_a_negative_one() {
    for rule in pack() {
        let positive = rule
            .examples
            .iter()
            .filter(|e| e.fires == Some(true) || e.alerts.is_some_and(|n| n > 0))
            .count();
        let negative = rule
            .examples
            .iter()
            .filter(|e| e.fires == Some(false) || e.alerts == Some(0))
            .count();
        assert!(
            positive >= 2 && negative >= 1,
            "{}: {positive} positive, {negative} negative",
            rule.id
        );
    }
}
