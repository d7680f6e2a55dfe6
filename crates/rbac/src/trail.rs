//! RBAC rebuilt from the trail: where the audit policy logs RBAC writes with their bodies (the
//! seed and recommended policies do), the Roles, ClusterRoles and bindings as of a time are
//! the last known state of each object its creates, updates, patches and deletes leave.

use std::collections::BTreeMap;

use kubetrail_diff::Trail;
use kubetrail_model::Event;
use serde_json::Value;

use crate::objects::{GROUP, RbacObjects};

/// The four RBAC resources.
pub const RBAC_RESOURCES: [&str; 4] = [
    "roles",
    "clusterroles",
    "rolebindings",
    "clusterrolebindings",
];

/// What [`from_trail`] made.
#[derive(Debug, Clone, Default)]
pub struct Rebuilt {
    /// The objects that exist at the end of the trail, as last written.
    pub objects: RbacObjects,
    /// `resource namespace/name`s whose state the trail does not hold (written at Metadata
    /// level, a patch that could not be applied exactly): left out.
    pub unknown: Vec<String>,
    /// How many write events were read.
    pub writes: usize,
}

/// The RBAC objects a trail of write events (oldest first) leaves. Events of other resources
/// and reads are passed over.
pub fn from_trail<'e>(events: impl IntoIterator<Item = &'e Event>) -> Rebuilt {
    let mut trails: BTreeMap<(String, String, String), Trail> = BTreeMap::new();
    let mut rebuilt = Rebuilt::default();
    for e in events {
        // Only a request's final event says whether the write happened (a RequestReceived
        // event carries the body of a write that may then be refused).
        if !crate::request::is_final(e) {
            continue;
        }
        let Some(o) = &e.object_ref else { continue };
        let resource = o.resource.as_deref().unwrap_or("");
        if o.api_group.as_deref() != Some(GROUP)
            || !RBAC_RESOURCES.contains(&resource)
            || o.subresource.as_deref().is_some_and(|s| !s.is_empty())
        {
            continue;
        }
        let verb = e.verb.as_deref().unwrap_or("");
        if !matches!(
            verb,
            "create" | "update" | "patch" | "delete" | "deletecollection"
        ) {
            continue;
        }
        rebuilt.writes += 1;
        let namespace = o.namespace.clone().unwrap_or_default();
        if verb == "deletecollection" {
            // Which objects went depends on the selectors and on what existed: the objects it
            // may have deleted are no longer known.
            if e.code().is_none_or(|c| (200..300).contains(&c)) {
                for (key, trail) in trails.iter_mut() {
                    if key.0 == resource && (namespace.is_empty() || key.1 == namespace) {
                        *trail = Trail::new();
                    }
                }
            }
            continue;
        }
        // A create's objectRef may lack the name (generateName): the body has it.
        let name = o.name.clone().filter(|n| !n.is_empty()).or_else(|| {
            e.response_object
                .as_ref()
                .or(e.request_object.as_ref())
                .and_then(|b| b.to_value().ok())
                .and_then(|v| {
                    v.pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
        });
        let Some(name) = name else { continue };
        trails
            .entry((resource.to_string(), namespace, name))
            .or_default()
            .step(e);
    }
    for ((resource, namespace, name), trail) in &trails {
        let place = if namespace.is_empty() {
            format!("{resource} {name}")
        } else {
            format!("{resource} {namespace}/{name}")
        };
        match trail.known() {
            Some(Some(state)) => {
                let mut v = state.clone();
                if let Some(obj) = v.as_object_mut() {
                    obj.insert("kind".into(), Value::String(kind_of(resource).into()));
                }
                let text = v.to_string();
                if rebuilt.objects.read(&place, &text).is_err() {
                    rebuilt.unknown.push(place);
                }
            }
            Some(None) => {}
            None => rebuilt.unknown.push(place),
        }
    }
    rebuilt
}

fn kind_of(resource: &str) -> &'static str {
    match resource {
        "roles" => "Role",
        "clusterroles" => "ClusterRole",
        "rolebindings" => "RoleBinding",
        _ => "ClusterRoleBinding",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ev(
        verb: &str,
        resource: &str,
        ns: &str,
        name: &str,
        body: Option<&str>,
        level: &str,
    ) -> Event {
        let ns_field = if ns.is_empty() {
            String::new()
        } else {
            format!(r#","namespace":"{ns}""#)
        };
        let body = body
            .map(|b| format!(r#","responseObject":{b}"#))
            .unwrap_or_default();
        let json = format!(
            r#"{{"apiVersion":"audit.k8s.io/v1","kind":"Event","level":"{level}","auditID":"x","stage":"ResponseComplete","requestURI":"/apis/rbac.authorization.k8s.io/v1/{resource}","verb":"{verb}","user":{{"username":"admin"}},"objectRef":{{"resource":"{resource}","name":"{name}","apiGroup":"rbac.authorization.k8s.io","apiVersion":"v1"{ns_field}}},"responseStatus":{{"code":200}}{body}}}"#
        );
        kubetrail_model::decode_event(json.as_bytes()).unwrap()
    }

    #[test]
    fn a_refused_write_changes_nothing_even_with_its_request_received_event() {
        let body = r#"{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":"evil"},"subjects":[{"kind":"User","name":"mallory","apiGroup":"rbac.authorization.k8s.io"}],"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cluster-admin"}}"#;
        let received = r#"{"apiVersion":"audit.k8s.io/v1","kind":"Event","level":"RequestResponse","auditID":"x","stage":"RequestReceived","requestURI":"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings","verb":"create","user":{"username":"mallory"},"objectRef":{"resource":"clusterrolebindings","name":"evil","apiGroup":"rbac.authorization.k8s.io","apiVersion":"v1"},"requestObject":BODY}"#.replace("BODY", body);
        let refused = received
            .replace("RequestReceived", "ResponseComplete")
            .replace(
                r#""requestObject""#,
                r#""responseStatus":{"code":403},"requestObject""#,
            );
        let events: Vec<Event> = [received, refused]
            .iter()
            .map(|j| kubetrail_model::decode_event(j.as_bytes()).unwrap())
            .collect();
        let rebuilt = from_trail(&events);
        assert!(rebuilt.objects.is_empty(), "{:?}", rebuilt.objects);
        assert_eq!(rebuilt.writes, 1);
    }

    #[test]
    fn the_last_write_of_each_object_wins_and_deletes_remove() {
        let role = |verbs: &str| {
            format!(
                r#"{{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","metadata":{{"name":"r"}},"rules":[{{"apiGroups":[""],"resources":["pods"],"verbs":{verbs}}}]}}"#
            )
        };
        let binding = r#"{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"b","namespace":"dev"},"subjects":[{"kind":"User","name":"alice","apiGroup":"rbac.authorization.k8s.io"}],"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"r"}}"#;
        let events = vec![
            ev(
                "create",
                "clusterroles",
                "",
                "r",
                Some(&role(r#"["get"]"#)),
                "RequestResponse",
            ),
            ev(
                "update",
                "clusterroles",
                "",
                "r",
                Some(&role(r#"["get","list"]"#)),
                "RequestResponse",
            ),
            ev(
                "create",
                "rolebindings",
                "dev",
                "b",
                Some(binding),
                "RequestResponse",
            ),
            ev(
                "create",
                "clusterroles",
                "",
                "gone",
                Some(&role("[]").replace("\"r\"", "\"gone\"")),
                "RequestResponse",
            ),
            ev(
                "delete",
                "clusterroles",
                "",
                "gone",
                None,
                "RequestResponse",
            ),
            ev("create", "clusterroles", "", "meta", None, "Metadata"),
            ev("get", "clusterroles", "", "r", None, "Metadata"),
        ];
        let rebuilt = from_trail(&events);
        assert_eq!(rebuilt.writes, 6);
        assert_eq!(rebuilt.objects.cluster_roles.len(), 1);
        assert_eq!(
            rebuilt.objects.cluster_roles[0].rules[0].verbs,
            vec!["get", "list"]
        );
        assert_eq!(rebuilt.objects.role_bindings[0].subjects[0].name, "alice");
        assert_eq!(rebuilt.unknown, vec!["clusterroles meta"]);
    }
}
