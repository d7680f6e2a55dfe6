//! What is not a change: the fields the server maintains on every write. An object is
//! [`normalize`]d before it is compared, so a controller that rewrites an unchanged object
//! makes an empty diff (a no-op).

use serde_json::Value;

/// The annotation `kubectl apply` keeps the whole applied object in: it repeats the object, so
/// a change to it is already a change elsewhere.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// `metadata` fields the server sets on writes.
pub const SERVER_METADATA: [&str; 5] = [
    "managedFields",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "selfLink",
];

/// `object` without the server's bookkeeping: [`SERVER_METADATA`], the last-applied
/// annotation (and `annotations` when nothing else is left in it), and `status` unless
/// `with_status` (writes to the `status` subresource, whose point it is).
pub fn normalize(object: &mut Value, with_status: bool) {
    let Value::Object(map) = object else {
        return;
    };
    if !with_status {
        map.shift_remove("status");
    }
    if let Some(Value::Object(meta)) = map.get_mut("metadata") {
        for field in SERVER_METADATA {
            meta.shift_remove(field);
        }
        if let Some(Value::Object(annotations)) = meta.get_mut("annotations") {
            annotations.shift_remove(LAST_APPLIED);
            if annotations.is_empty() {
                meta.shift_remove("annotations");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bookkeeping_goes_and_what_people_set_stays() {
        let mut o = json!({"metadata": {"name": "web", "resourceVersion": "9", "generation": 3,
            "creationTimestamp": "2024-05-01T10:00:00Z", "managedFields": [{"manager": "kubectl"}],
            "annotations": {LAST_APPLIED: "{}"}, "labels": {"app": "web"}, "uid": "u"},
            "spec": {"replicas": 2}, "status": {"readyReplicas": 2}});
        let mut with_status = o.clone();
        normalize(&mut o, false);
        assert_eq!(
            o,
            json!({"metadata": {"name": "web", "labels": {"app": "web"}, "uid": "u"}, "spec": {"replicas": 2}})
        );
        normalize(&mut with_status, true);
        assert_eq!(with_status["status"]["readyReplicas"], 2);
    }
}
