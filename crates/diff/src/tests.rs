//! A deployment's life, write by write, as the apiserver's events record it.

use kubetrail_model::{Event, decode_event};
use serde_json::{Value, json};

use super::*;

fn write(
    verb: &str,
    uri: &str,
    code: i32,
    request: Option<Value>,
    response: Option<Value>,
) -> Event {
    let mut e = json!({"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
        "auditID": "x", "stage": "ResponseComplete", "verb": verb, "requestURI": uri,
        "objectRef": {"resource": "deployments", "apiGroup": "apps", "namespace": "shop", "name": "web"},
        "responseStatus": {"code": code}});
    if let Some(r) = request {
        e["requestObject"] = r;
    }
    if let Some(r) = response {
        e["responseObject"] = r;
    }
    decode_event(e.to_string().as_bytes()).unwrap()
}

fn deployment(rv: &str, replicas: i64, image: &str) -> Value {
    json!({"kind": "Deployment", "apiVersion": "apps/v1",
        "metadata": {"name": "web", "namespace": "shop", "uid": "u1", "resourceVersion": rv, "generation": 1,
            "creationTimestamp": "2024-05-01T10:00:00Z", "managedFields": [{"manager": "kubectl", "time": rv}]},
        "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "web", "image": image}]}}},
        "status": {"observedGeneration": 1, "replicas": replicas}})
}

fn paths(step: &Step) -> Vec<(&str, Option<&Value>, Option<&Value>)> {
    step.changes
        .iter()
        .map(|c| (c.path.as_str(), c.old.as_ref(), c.new.as_ref()))
        .collect()
}

#[test]
fn a_deployments_writes_each_show_what_they_changed() {
    let uri = "/apis/apps/v1/namespaces/shop/deployments/web";
    let mut t = Trail::new();

    let created = t.step(&write(
        "create",
        "/apis/apps/v1/namespaces/shop/deployments",
        201,
        None,
        Some(deployment("1", 2, "nginx:1.25")),
    ));
    assert_eq!(created.basis, Basis::Created);
    let added: Vec<&str> = created.changes.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(
        added,
        ["/kind", "/apiVersion", "/metadata", "/spec"],
        "status and bookkeeping are not changes"
    );
    assert_eq!(
        created.changes[2].new,
        Some(json!({"name": "web", "namespace": "shop", "uid": "u1"}))
    );

    // A Request-level merge patch: decoded, applied (no lists), so the next diff is exact.
    let mut patched = write(
        "patch",
        uri,
        200,
        Some(json!({"spec": {"replicas": 5}})),
        None,
    );
    patched.level = Some(kubetrail_model::Level::Request);
    let patched = t.step(&patched);
    assert_eq!(
        (patched.basis, patched.patch),
        (Basis::Patch, Some(PatchKind::Merge))
    );
    assert_eq!(
        paths(&patched),
        [("/spec/replicas", Some(&json!(2)), Some(&json!(5)))]
    );
    assert!(!patched.noop);

    let updated = t.step(&write(
        "update",
        uri,
        200,
        Some(deployment("2", 5, "nginx:1.27")),
        Some(deployment("3", 5, "nginx:1.27")),
    ));
    assert_eq!(updated.basis, Basis::Diff);
    assert_eq!(
        paths(&updated),
        [(
            "/spec/template/spec/containers/0/image",
            Some(&json!("nginx:1.25")),
            Some(&json!("nginx:1.27"))
        )]
    );

    // A controller rewrites the object unchanged but for its bookkeeping and status.
    let mut same = deployment("4", 5, "nginx:1.27");
    same["status"]["replicas"] = json!(4);
    let noop = t.step(&write("update", uri, 200, Some(same.clone()), Some(same)));
    assert!(noop.noop && noop.changes.is_empty());

    // The status subresource: status is the point.
    let mut status = deployment("5", 5, "nginx:1.27");
    status["status"]["readyReplicas"] = json!(5);
    let status_write = t.step(
        &write("update", &format!("{uri}/status"), 200, None, Some(status))
            .with_subresource("status"),
    );
    assert_eq!(
        paths(&status_write),
        [
            ("/status/replicas", Some(&json!(4)), Some(&json!(5))),
            ("/status/readyReplicas", None, Some(&json!(5)))
        ]
    );

    let refused = t.step(&write(
        "patch",
        uri,
        422,
        Some(json!({"spec": {"replicas": -1}})),
        None,
    ));
    assert_eq!(refused.basis, Basis::Failed);

    let dry = t.step(&write(
        "delete",
        &format!("{uri}?dryRun=All"),
        200,
        None,
        None,
    ));
    assert!(dry.dry_run);
    assert_eq!(dry.basis, Basis::Deleted);
    assert!(t.state().is_some(), "a dry run changes nothing");
    let deleted = t.step(&write("delete", uri, 200, None, None));
    assert!(!deleted.dry_run);
    assert!(t.state().is_none());
}

#[test]
fn an_unknown_state_makes_a_baseline_not_a_wrong_diff() {
    let uri = "/apis/apps/v1/namespaces/shop/deployments/web";
    let mut t = Trail::new();
    let first = t.step(&write(
        "update",
        uri,
        200,
        None,
        Some(deployment("7", 2, "a")),
    ));
    assert_eq!(first.basis, Basis::Baseline);
    assert!(first.changes.is_empty() && !first.noop);
    // A patch with a list cannot be applied exactly (merge and strategic merge disagree).
    let listed = t.step(&write("patch", uri, 200, Some(json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "b"}]}}}})), None));
    assert_eq!(
        (listed.basis, listed.patch),
        (Basis::Patch, Some(PatchKind::Merge))
    );
    assert_eq!(listed.changes[0].path, "/spec/template/spec/containers");
    assert_eq!(t.state(), None);
    let next = t.step(&write(
        "update",
        uri,
        200,
        None,
        Some(deployment("9", 2, "b")),
    ));
    assert_eq!(next.basis, Basis::Baseline);
    // A scale is a subresource write: shown by its body, and the object's state is then not known.
    let scale = json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": {"name": "web"}, "spec": {"replicas": 9}});
    let scaled = t.step(
        &write("update", &format!("{uri}/scale"), 200, Some(scale), None).with_subresource("scale"),
    );
    assert_eq!(scaled.basis, Basis::Subresource);
    assert!(
        scaled
            .changes
            .iter()
            .any(|c| c.path == "/spec" && c.new == Some(json!({"replicas": 9})))
    );
    assert_eq!(t.state(), None);
}

#[test]
fn dry_run_is_read_from_the_query() {
    assert!(is_dry_run("/api/v1/namespaces/a/pods/b?dryRun=All"));
    assert!(is_dry_run("/api/v1/pods?fieldManager=x&dryRun=All"));
    assert!(!is_dry_run("/api/v1/pods?dryRun=None"));
    assert!(!is_dry_run("/api/v1/pods/dryRun=All"));
}

trait WithSubresource {
    fn with_subresource(self, sub: &str) -> Self;
}

impl WithSubresource for Event {
    fn with_subresource(mut self, sub: &str) -> Event {
        if let Some(o) = self.object_ref.as_mut() {
            o.subresource = Some(sub.to_string());
        }
        self
    }
}

mod properties {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::write;
    use crate::{Basis, Trail};

    fn spec() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            any::<bool>().prop_map(Value::Bool),
            (0i64..4).prop_map(|n| json!(n)),
            "[a-c]{0,2}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 20, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::btree_map("[a-c]{1,2}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn object(spec: &Value, rv: u32, status: &Value) -> Value {
        json!({"kind": "Deployment", "metadata": {"name": "web", "resourceVersion": rv.to_string(),
            "generation": rv, "managedFields": [{"time": rv.to_string()}]}, "spec": spec, "status": status})
    }

    proptest! {
        /// A write is a no-op exactly when the objects are equal but for the noise, and its
        /// changes, applied to the state before, give the state after (noise aside).
        #[test]
        fn no_op_iff_equal_modulo_noise(a in spec(), b in spec(), s1 in spec(), s2 in spec(), rv in 1u32..9) {
            let uri = "/apis/apps/v1/namespaces/shop/deployments/web";
            let (before, after) = (object(&a, rv, &s1), object(&b, rv + 1, &s2));
            let mut t = Trail::new();
            t.step(&write("update", uri, 200, None, Some(before.clone())));
            let step = t.step(&write("update", uri, 200, None, Some(after.clone())));
            prop_assert_eq!(step.basis, Basis::Diff);
            prop_assert_eq!(step.noop, a == b);
            let (mut nb, mut na) = (before, after);
            crate::normalize(&mut nb, false);
            crate::normalize(&mut na, false);
            prop_assert_eq!(crate::apply(&nb, &step.changes).unwrap(), na);
        }
    }
}
