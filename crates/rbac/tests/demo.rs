//! audit2rbac's demo capture (`testdata/real-audit/audit2rbac-*.jsonl`): the objects its
//! README publishes, and for every subject in it, generated RBAC that allows every request.
#![allow(clippy::unwrap_used, missing_docs)]

use kubetrail_rbac::{
    Authorizer, Naming, Options, RbacObjects, Request, SubjectSelector, compact_string,
    default_existing, suggest, to_yaml, yaml_documents,
};

fn requests(file: &str) -> Vec<Request> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/real-audit")
        .join(file);
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| Request::from_event(&kubetrail_model::decode_event(l.as_bytes()).unwrap()))
        .collect()
}

fn audit2rbac_naming() -> Naming {
    Naming {
        name: "audit2rbac:${user}".into(),
        labels: vec![
            ("audit2rbac.liggitt.net/user".into(), "${user}".into()),
            ("audit2rbac.liggitt.net/generated".into(), "true".into()),
        ],
        annotations: vec![],
    }
}

/// audit2rbac's README, step 4, verbatim.
fn readme_alice() -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/rbac/audit2rbac-readme-alice.yaml");
    std::fs::read_to_string(p).unwrap()
}

#[test]
fn alice_gets_the_bytes_audit2rbac_s_readme_shows() {
    let existing = Authorizer::new(&default_existing());
    for file in ["audit2rbac-v1.jsonl", "audit2rbac-v1beta1.jsonl"] {
        let g = suggest(
            &requests(file),
            &SubjectSelector::User("alice".into()),
            &existing,
            &Options::default(),
            &audit2rbac_naming(),
        )
        .unwrap();
        let docs = yaml_documents(&g.objects(), |_, _| Default::default());
        assert_eq!(to_yaml(&docs), readme_alice(), "{file}");
    }
}

#[test]
fn bob_and_the_service_account_get_cluster_wide_reads_of_nodes_and_pods() {
    let existing = Authorizer::new(&default_existing());
    for (subject, kind) in [
        (SubjectSelector::User("bob".into()), "User"),
        (
            SubjectSelector::service_account("ns1:sa1").unwrap(),
            "ServiceAccount",
        ),
    ] {
        let g = suggest(
            &requests("audit2rbac-v1.jsonl"),
            &subject,
            &existing,
            &Options::default(),
            &Naming::default(),
        )
        .unwrap();
        let objects = g.objects();
        assert!(objects.roles.is_empty(), "{subject:?}");
        let rules: Vec<String> = objects.cluster_roles[0]
            .rules
            .iter()
            .map(compact_string)
            .collect();
        assert_eq!(
            rules,
            vec![r#"{APIGroups:[""], Resources:["nodes" "pods"], Verbs:["get" "list" "watch"]}"#]
        );
        let binding = &objects.cluster_role_bindings[0];
        assert_eq!(binding.subjects[0].kind, kind);
        if kind == "ServiceAccount" {
            assert_eq!(
                (
                    binding.subjects[0].namespace.as_str(),
                    binding.subjects[0].name.as_str()
                ),
                ("ns1", "sa1")
            );
            assert_eq!(binding.subjects[0].api_group, "");
        }
    }
}

/// For every user and service account of both captures: the discovery roles plus the
/// generated objects allow every one of the subject's requests, and the generated bindings
/// give nothing to another identity (one with no groups, so discovery does not count).
#[test]
fn generated_rbac_allows_every_observed_request_of_every_subject() {
    let existing_objects = default_existing();
    let existing = Authorizer::new(&existing_objects);
    for file in ["audit2rbac-v1.jsonl", "audit2rbac-v1beta1.jsonl"] {
        let all = requests(file);
        let mut users: Vec<String> = all.iter().map(|r| r.user.name.clone()).collect();
        users.sort();
        users.dedup();
        assert!(users.len() >= 3, "{users:?}");
        for user in users {
            let g = suggest(
                &all,
                &SubjectSelector::User(user.clone()),
                &existing,
                &Options::default(),
                &Naming::default(),
            )
            .unwrap();
            let mut granted = existing_objects.clone();
            let generated = g.objects();
            granted.roles.extend(generated.roles);
            granted.cluster_roles.extend(generated.cluster_roles);
            granted.role_bindings.extend(generated.role_bindings);
            granted
                .cluster_role_bindings
                .extend(generated.cluster_role_bindings);
            let authorizer = Authorizer::new(&granted);
            for r in all.iter().filter(|r| r.user.name == user) {
                assert!(
                    authorizer.allows(r),
                    "{file}: {user}: {} not allowed",
                    r.describe()
                );
            }
            // Another identity with the same groups gets nothing from the bindings.
            let stranger = Request {
                user: kubetrail_rbac::UserInfo {
                    name: "mallory".into(),
                    groups: vec![],
                },
                ..Request::default()
            };
            for r in all
                .iter()
                .filter(|r| r.user.name == user && !existing.allows(r))
            {
                let as_stranger = Request {
                    user: stranger.user.clone(),
                    ..r.clone()
                };
                assert!(
                    !authorizer.allows(&as_stranger),
                    "{file}: {} allowed to a stranger",
                    r.describe()
                );
            }
        }
    }
}

#[test]
fn no_event_of_the_subject_is_an_error_naming_it() {
    let err = suggest(
        &requests("audit2rbac-v1.jsonl"),
        &SubjectSelector::User("system:admin".into()),
        &Authorizer::new(&RbacObjects::default()),
        &Options {
            namespace: Some("ns1".into()),
            ..Options::default()
        },
        &Naming::default(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no audit events matched user system:admin in namespace ns1"
    );
}

/// `--audit-ids`: each rule names auditIDs of requests it was needed for, and each named
/// request is one the rule allows.
#[test]
fn each_rule_names_the_requests_that_needed_it() {
    let all = requests("audit2rbac-v1.jsonl");
    let g = suggest(
        &all,
        &SubjectSelector::User("bob".into()),
        &Authorizer::new(&default_existing()),
        &Options {
            audit_ids_per_rule: 3,
            ..Options::default()
        },
        &Naming::default(),
    )
    .unwrap();
    let docs = g.documents(true);
    let note = docs[0]["metadata"]["annotations"]["kubetrail.io/rule-audit-ids"]
        .as_str()
        .unwrap();
    let ids: Vec<Vec<String>> = serde_json::from_str(note).unwrap();
    assert_eq!(ids.len(), g.roles[0].rules.len());
    assert!(!ids[0].is_empty() && ids[0].len() <= 3, "{ids:?}");
    for id in &ids[0] {
        let r = all.iter().find(|r| r.audit_id == *id).unwrap();
        assert!(kubetrail_rbac::rule_allows(r, &g.roles[0].rules[0]), "{id}");
        assert!(r.user.name == "bob");
    }
    assert!(
        docs[1]["metadata"].get("annotations").is_none(),
        "bindings carry no rule list"
    );
}
