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

#[test]
fn lint_finds_nothing_in_the_pack_and_finds_unguarded_reads_and_type_errors() {
    let rules = pack();
    let errors = kubetrail_detect::lint(&rules);
    assert!(
        errors.is_empty(),
        "{}",
        errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );

    let text = "rules:\n  - id: careless\n    title: t\n    severity: low\n    level: Request\n    match: {verbs: [create], resources: [pods]}\n    condition: requestObject.spec.hostPID == true\n  - id: typed\n    title: t\n    severity: low\n    level: Metadata\n    match: {resources: [secrets]}\n    condition: verb + 1 == 2\n";
    let rt = Runtime::new();
    let rules =
        kubetrail_detect::load_file(&rt, "mine.yaml", text, &Default::default()).expect("loads");
    let errors: Vec<String> = kubetrail_detect::lint(&rules)
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.iter().any(|e| e.starts_with(
            "mine.yaml:2: rule careless: the condition fails on a create pods event without bodies"
        )),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("mine.yaml:8: rule typed: the condition fails")),
        "{errors:?}"
    );
}

#[test]
fn load_errors_name_the_file_line_and_rule() {
    let rt = Runtime::new();
    let text = "rules:\n  - id: ok-rule\n    title: t\n    severity: low\n    level: Metadata\n  - id: bad\n    title: t\n    severity: low\n    level: Metadata\n    condition: containres.exists(c, true)\n";
    let errors =
        kubetrail_detect::load_file(&rt, "r.yaml", text, &Default::default()).expect_err("refused");
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].to_string(),
        "r.yaml:6: rule bad: condition: unknown name \"containres\" (did you mean \"containers\"?)"
    );
    let errors = kubetrail_detect::load_file(
        &rt,
        "r.yaml",
        "rules:\n  - id: x\n    title: t\n    severity: urgent\n    level: Metadata\n",
        &Default::default(),
    )
    .expect_err("refused");
    assert!(
        errors[0].to_string().starts_with("r.yaml:4:"),
        "{}",
        errors[0]
    );
    let mut set = kubetrail_detect::Overrides::new();
    set.entry("forbiden-burst".into())
        .or_default()
        .insert("threshold".into(), 5.into());
    let errors = load(&rt, true, &[], &set).expect_err("an unknown rule");
    assert_eq!(
        errors[0].to_string(),
        "--set:0: no rule \"forbiden-burst\" (did you mean \"forbidden-burst\"?)"
    );
    let mut set = kubetrail_detect::Overrides::new();
    set.entry("forbidden-burst".into())
        .or_default()
        .insert("treshold".into(), 5.into());
    let errors = load(&rt, true, &[], &set).expect_err("an unknown parameter");
    assert!(
        errors[0]
            .message
            .starts_with("no parameter \"treshold\" (it has"),
        "{}",
        errors[0]
    );
}

#[test]
fn an_example_that_is_wrong_fails_with_what_happened() {
    let rt = Runtime::new();
    let text = "rules:\n  - id: reads\n    title: t\n    severity: low\n    level: Metadata\n    match: {verbs: [get], resources: [secrets]}\n    examples:\n      - name: claims silence\n        fires: false\n        event: {auditID: a, verb: get, objectRef: {resource: secrets}}\n";
    let rules =
        kubetrail_detect::load_file(&rt, "r.yaml", text, &Default::default()).expect("loads");
    let report = run_examples(&rules);
    assert_eq!(report.run, 1);
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].message, "expected 0 alert(s), got 1");
}
