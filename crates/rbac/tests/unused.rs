//! Granted versus used over a hand-written snapshot (`testdata/rbac/snapshot.yaml`): aggregated
//! ClusterRoles, group bindings, a service account bound without a namespace, wildcards.
#![allow(clippy::unwrap_used, missing_docs)]

use kubetrail_rbac::{
    Authorizer, RbacObjects, Request, Subject, SubjectReport, UnusedOptions, subjects_of, unused,
};

fn read(path: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/rbac")
        .join(path);
    std::fs::read_to_string(p).unwrap()
}

fn setup() -> (Authorizer, Vec<Request>) {
    let mut objects = RbacObjects::default();
    objects
        .read("snapshot.yaml", &read("snapshot.yaml"))
        .unwrap();
    assert_eq!(objects.len(), 10);
    let requests = read("snapshot-requests.jsonl")
        .lines()
        .map(|l| Request::from_event(&kubetrail_model::decode_event(l.as_bytes()).unwrap()))
        .collect();
    (Authorizer::new(&objects), requests)
}

/// Each atom as `describe() uses`.
fn table(report: &SubjectReport) -> Vec<String> {
    report
        .atoms
        .iter()
        .map(|a| format!("{} {}", a.atom.describe(), a.uses))
        .collect()
}

#[test]
fn a_group_member_sees_the_aggregated_grants_in_the_bound_namespace() {
    let (authorizer, requests) = setup();
    let r = unused(
        &authorizer,
        &Subject::user("alice"),
        &requests,
        &UnusedOptions::default(),
    );
    assert_eq!(
        table(&r),
        vec![
            "get configmaps name=app-config -n dev 0",
            "get pods -n dev 2",
            "list pods -n dev 0",
        ]
    );
    assert_eq!(r.unused(), 2);
    assert_eq!(
        r.atoms[1].last,
        Some(("a2".to_string(), 1_793_530_800_100_000))
    );
    assert_eq!(
        r.atoms[1].via,
        vec!["RoleBinding/dev/dev-readers → ClusterRole/reader"]
    );
    assert_eq!(r.denied.len(), 1);
    assert_eq!(r.denied[0].request.describe(), "list configmaps -n dev");
    assert_eq!(r.denied[0].last.0, "a3");
    assert!(!r.cluster_admin());
}

#[test]
fn wildcards_are_atoms_of_their_own_and_urls_are_cluster_wide() {
    let (authorizer, requests) = setup();
    let r = unused(
        &authorizer,
        &Subject::user("carol"),
        &requests,
        &UnusedOptions::default(),
    );
    assert_eq!(
        table(&r),
        vec!["* deployments.apps (cluster) 1", "get /metrics (cluster) 0"]
    );
    assert!(r.atoms[0].atom.is_wildcard());
    assert!(!r.atoms[1].atom.is_wildcard());
}

#[test]
fn a_service_account_bound_without_a_namespace_gets_the_binding_s() {
    let (authorizer, requests) = setup();
    let subjects = subjects_of(&authorizer);
    let sa = subjects
        .iter()
        .find(|s| s.kind == "ServiceAccount")
        .unwrap();
    assert_eq!(
        (sa.namespace.as_str(), sa.name.as_str()),
        ("kube-system", "leader")
    );
    let r = unused(&authorizer, sa, &requests, &UnusedOptions::default());
    assert_eq!(
        table(&r),
        vec![
            "get leases.coordination.k8s.io name=lock -n kube-system 0",
            "update leases.coordination.k8s.io name=lock -n kube-system 1",
        ]
    );
}

/// A request's RequestReceived event says nothing of its outcome: it is not a use.
#[test]
fn only_final_events_count() {
    let (authorizer, requests) = setup();
    let received: Vec<Request> = requests
        .iter()
        .map(|r| Request {
            complete: false,
            ..r.clone()
        })
        .collect();
    let r = unused(
        &authorizer,
        &Subject::user("alice"),
        &received,
        &UnusedOptions::default(),
    );
    assert_eq!(r.requests, 0);
    assert_eq!(r.unused(), 3);
    assert!(r.denied.is_empty());
}

#[test]
fn every_subject_and_the_cluster_admin_group() {
    let (authorizer, requests) = setup();
    let names: Vec<String> = subjects_of(&authorizer)
        .iter()
        .map(Subject::display)
        .collect();
    assert_eq!(
        names,
        vec![
            "Group/devs",
            "Group/system:masters",
            "ServiceAccount/kube-system:leader",
            "User/carol"
        ]
    );
    let masters = unused(
        &authorizer,
        &Subject::group("system:masters"),
        &requests,
        &UnusedOptions::default(),
    );
    assert!(masters.cluster_admin());
    assert_eq!(masters.unused(), 2);
    // A group's report counts the requests of its members.
    let devs = unused(
        &authorizer,
        &Subject::group("devs"),
        &requests,
        &UnusedOptions::default(),
    );
    assert_eq!(devs.requests, 2);
    assert_eq!(devs.unused(), 2);
}
