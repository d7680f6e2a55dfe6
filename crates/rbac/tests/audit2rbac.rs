//! audit2rbac's own test tables (ported as data in `testdata/rbac/`) through [`suggest`]:
//! the same Roles, ClusterRoles and bindings, rule for rule.
#![allow(clippy::unwrap_used, missing_docs)]

use kubetrail_rbac::{
    Authorizer, Naming, Options, PolicyRule, RbacObjects, Request, SubjectSelector, UserInfo,
    compact_string, suggest,
};
use serde_json::Value;

fn testdata(path: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn cases() -> Value {
    serde_norway::from_str(&testdata("rbac/audit2rbac-process-cases.yaml")).unwrap()
}

fn s(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_string()
}

fn requests_of(case: &Value, users: &Value) -> Vec<Request> {
    case["requests"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let u = &users[s(r, "user")];
            Request {
                user: UserInfo {
                    name: s(u, "name"),
                    groups: serde_json::from_value(u["groups"].clone()).unwrap(),
                },
                verb: s(r, "verb"),
                resource_request: r["resourceRequest"].as_bool().unwrap(),
                api_group: s(r, "apiGroup"),
                api_version: s(r, "apiVersion"),
                resource: s(r, "resource"),
                subresource: s(r, "subresource"),
                namespace: s(r, "namespace"),
                name: s(r, "name"),
                path: s(r, "path"),
                audit_id: format!("req-{i}"),
                ..Request::default()
            }
        })
        .collect()
}

fn options_of(case: &Value) -> Options {
    let o = &case["options"];
    Options {
        expand_multi_namespace: o["expandMultiNamespace"].as_bool().unwrap(),
        expand_multi_name: o["expandMultiName"].as_bool().unwrap(),
        verb_expansions: serde_json::from_value(o["verbExpansions"].clone()).unwrap(),
        ..Options::default()
    }
}

fn existing(doc: &Value) -> Authorizer {
    let mut objects = RbacObjects::default();
    objects
        .read(
            "existing",
            &serde_json::to_string(&doc["existing"]).unwrap(),
        )
        .unwrap();
    Authorizer::new(&objects)
}

fn audit2rbac_naming() -> Naming {
    Naming {
        name: "audit2rbac".into(),
        labels: vec![],
        annotations: vec![],
    }
}

fn rules(v: &Value) -> Vec<PolicyRule> {
    serde_json::from_value(v["rules"].clone()).unwrap()
}

#[test]
fn every_case_of_audit2rbac_s_process_test_gives_its_objects() {
    let doc = cases();
    let existing = existing(&doc);
    let mut checked = 0;
    for case in doc["cases"].as_array().unwrap() {
        let name = s(case, "name");
        let expected = &case["expected"];
        if expected.is_null() {
            continue;
        }
        let requests = requests_of(case, &doc["users"]);
        let subject = SubjectSelector::User("bob".into());
        let generated = match suggest(
            &requests,
            &subject,
            &existing,
            &options_of(case),
            &audit2rbac_naming(),
        ) {
            Ok(g) => g,
            // "empty": no request at all is an error here, as the command line says.
            Err(e) => {
                assert!(requests.is_empty(), "{name}: {e}");
                checked += 1;
                continue;
            }
        };
        let objects = generated.objects();
        let list = |key: &str| {
            expected
                .get(key)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let want_roles = list("roles");
        assert_eq!(objects.roles.len(), want_roles.len(), "{name}: roles");
        for (got, want) in objects.roles.iter().zip(&want_roles) {
            assert_eq!(got.metadata.namespace, s(want, "namespace"), "{name}");
            assert_eq!(
                got.rules,
                rules(want),
                "{name}: rules of the Role in {}",
                got.metadata.namespace
            );
            assert_eq!(got.metadata.name, "audit2rbac");
        }
        let want_cluster = list("clusterRoles");
        assert_eq!(
            objects.cluster_roles.len(),
            want_cluster.len(),
            "{name}: cluster roles"
        );
        for (got, want) in objects.cluster_roles.iter().zip(&want_cluster) {
            assert_eq!(got.rules, rules(want), "{name}: ClusterRole rules");
        }
        for (key, got) in [
            ("roleBindings", &objects.role_bindings),
            ("clusterRoleBindings", &objects.cluster_role_bindings),
        ] {
            let want = list(key);
            assert_eq!(got.len(), want.len(), "{name}: {key}");
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(g.metadata.namespace, s(w, "namespace"), "{name}: {key}");
                assert_eq!(
                    serde_json::to_value(&g.role_ref).unwrap(),
                    w["roleRef"],
                    "{name}: {key}"
                );
                assert_eq!(
                    serde_json::to_value(&g.subjects).unwrap(),
                    w["subjects"],
                    "{name}: {key}"
                );
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 13, "every case with an expectation was checked");
}

/// TestProcess has no expected output in audit2rbac (it prints the YAML); its comments say what
/// each group of requests must become.
#[test]
fn test_process_s_requests_become_what_its_comments_say() {
    let doc = cases();
    let case = doc["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "TestProcess")
        .unwrap();
    let requests = requests_of(case, &doc["users"]);
    let g = suggest(
        &requests,
        &SubjectSelector::User("bob".into()),
        &existing(&doc),
        &options_of(case),
        &audit2rbac_naming(),
    )
    .unwrap();
    let objects = g.objects();
    let cluster: Vec<String> = objects.cluster_roles[0]
        .rules
        .iter()
        .map(compact_string)
        .collect();
    assert_eq!(
        cluster,
        vec![
            r#"{APIGroups:[""], Resources:["nodes"], Verbs:["create" "get" "list" "patch" "update" "watch"]}"#,
            r#"{APIGroups:[""], Resources:["pods"], Verbs:["get" "list" "watch"]}"#,
            r#"{APIGroups:[""], Resources:["pods/status"], Verbs:["get" "patch" "update"]}"#,
            r#"{NonResourceURLs:["/ui"], Verbs:["get"]}"#,
        ]
    );
    // "configmap write permissions for a lock, should only end up in a namespaced role"
    assert_eq!(objects.roles.len(), 1);
    assert_eq!(objects.roles[0].metadata.namespace, "kube-system");
    let lock: Vec<String> = objects.roles[0].rules.iter().map(compact_string).collect();
    assert_eq!(
        lock,
        vec![
            // The lock's writes stay on its name; create, list and watch cannot be named.
            r#"{APIGroups:[""], Resources:["configmaps"], ResourceNames:["mylock"], Verbs:["get" "patch" "update"]}"#,
            r#"{APIGroups:[""], Resources:["configmaps"], Verbs:["create" "get" "list" "watch"]}"#,
        ]
    );
    assert_eq!(g.already_allowed, 2, "/api and /apis are discovery's");
}

#[test]
fn event_to_attributes_as_audit2rbac_s_test_says() {
    let doc = cases();
    for case in doc["eventToAttributes"].as_array().unwrap() {
        let mut event = case["event"].clone();
        event["apiVersion"] = "audit.k8s.io/v1".into();
        event["kind"] = "Event".into();
        event["level"] = "Metadata".into();
        let event = kubetrail_model::decode_event(event.to_string().as_bytes()).unwrap();
        let r = Request::from_event(&event);
        let want = &case["expected"];
        assert_eq!(r.verb, s(want, "verb"));
        assert_eq!(r.namespace, s(want, "namespace"));
        assert_eq!(r.api_group, s(want, "apiGroup"));
        assert_eq!(r.api_version, s(want, "apiVersion"));
        assert_eq!(r.resource, s(want, "resource"));
        assert_eq!(r.name, s(want, "name"), "{}", s(case, "name"));
        assert_eq!(
            r.resource_request,
            want["resourceRequest"].as_bool().unwrap()
        );
        assert_eq!(r.user, UserInfo::default());
    }
}
