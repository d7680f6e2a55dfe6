//! The `rbac.authorization.k8s.io/v1` objects: rules, subjects, roles, bindings, and a snapshot
//! of a cluster's RBAC read from `kubectl get ... -o yaml` (or `-o json`) output.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Error, Result};

/// The RBAC API group.
pub const GROUP: &str = "rbac.authorization.k8s.io";

/// One rule of a Role or ClusterRole (`rbacv1.PolicyRule`); fields in the Go struct's order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    /// Verbs (`*` for all).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "list"
    )]
    pub verbs: Vec<String>,
    /// API groups (`""` core, `*` all).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "list"
    )]
    pub api_groups: Vec<String>,
    /// Resources, `resource/subresource`, `*`, `*/subresource`.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "list"
    )]
    pub resources: Vec<String>,
    /// Object names; empty: every name.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "list"
    )]
    pub resource_names: Vec<String>,
    /// Non-resource URLs (`/healthz`, `/api/*`, `*`).
    #[serde(
        default,
        rename = "nonResourceURLs",
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "list"
    )]
    pub non_resource_urls: Vec<String>,
}

/// `null` reads as an empty list, as Go's decoder leaves a nil slice.
fn list<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// Who a binding grants to (`rbacv1.Subject`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subject {
    /// `User`, `Group` or `ServiceAccount`.
    pub kind: String,
    /// `rbac.authorization.k8s.io` for users and groups, empty for service accounts.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_group: String,
    /// The user, group or service account name.
    pub name: String,
    /// The service account's namespace.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

impl Subject {
    /// A user subject.
    pub fn user(name: &str) -> Subject {
        Subject {
            kind: "User".into(),
            api_group: GROUP.into(),
            name: name.into(),
            namespace: String::new(),
        }
    }

    /// A group subject.
    pub fn group(name: &str) -> Subject {
        Subject {
            kind: "Group".into(),
            api_group: GROUP.into(),
            name: name.into(),
            namespace: String::new(),
        }
    }

    /// A service account subject (no apiGroup, as Kubernetes writes it).
    pub fn service_account(namespace: &str, name: &str) -> Subject {
        Subject {
            kind: "ServiceAccount".into(),
            api_group: String::new(),
            name: name.into(),
            namespace: namespace.into(),
        }
    }

    /// `kind/name` (`ServiceAccount/ns:name`), for tables and messages.
    pub fn display(&self) -> String {
        if self.kind == "ServiceAccount" {
            format!("ServiceAccount/{}:{}", self.namespace, self.name)
        } else {
            format!("{}/{}", self.kind, self.name)
        }
    }
}

/// The role a binding refers to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleRef {
    /// `rbac.authorization.k8s.io`.
    #[serde(default)]
    pub api_group: String,
    /// `Role` or `ClusterRole`.
    pub kind: String,
    /// The role's name.
    pub name: String,
}

/// The object metadata RBAC evaluation reads.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Meta {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Namespace (Roles and RoleBindings).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Labels (aggregation selects ClusterRoles by them).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// A label selector of an aggregation rule.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    /// Labels that must all be present with these values.
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    /// Expressions that must all hold.
    #[serde(default)]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

/// One expression of a label selector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelSelectorRequirement {
    /// The label key.
    pub key: String,
    /// `In`, `NotIn`, `Exists`, `DoesNotExist`.
    pub operator: String,
    /// Values for `In` and `NotIn`.
    #[serde(default)]
    pub values: Vec<String>,
}

impl LabelSelector {
    /// Whether `labels` are selected (metav1.LabelSelectorAsSelector semantics: an empty
    /// selector selects everything; an unknown operator selects nothing, as an invalid
    /// selector does).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|e| {
                let value = labels.get(&e.key);
                match e.operator.as_str() {
                    "In" => value.is_some_and(|v| e.values.contains(v)),
                    "NotIn" => value.is_none_or(|v| !e.values.contains(v)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    _ => false,
                }
            })
    }
}

/// `aggregationRule` of a ClusterRole.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AggregationRule {
    /// ClusterRoles whose labels match any selector lend their rules.
    #[serde(default)]
    pub cluster_role_selectors: Vec<LabelSelector>,
}

/// A Role (namespaced) or ClusterRole.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Role {
    /// Name, namespace (Roles), labels.
    #[serde(default)]
    pub metadata: Meta,
    /// The rules.
    #[serde(default, deserialize_with = "rules")]
    pub rules: Vec<PolicyRule>,
    /// ClusterRoles only: the roles aggregated into this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregation_rule: Option<AggregationRule>,
}

fn rules<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<PolicyRule>, D::Error> {
    Ok(Option::<Vec<PolicyRule>>::deserialize(d)?.unwrap_or_default())
}

/// A RoleBinding (namespaced) or ClusterRoleBinding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Binding {
    /// Name, namespace (RoleBindings).
    #[serde(default)]
    pub metadata: Meta,
    /// Who is granted.
    #[serde(default, deserialize_with = "subjects")]
    pub subjects: Vec<Subject>,
    /// What is granted.
    pub role_ref: RoleRef,
}

fn subjects<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<Subject>, D::Error> {
    Ok(Option::<Vec<Subject>>::deserialize(d)?.unwrap_or_default())
}

/// A cluster's RBAC objects.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RbacObjects {
    /// Roles.
    pub roles: Vec<Role>,
    /// ClusterRoles.
    pub cluster_roles: Vec<Role>,
    /// RoleBindings.
    pub role_bindings: Vec<Binding>,
    /// ClusterRoleBindings.
    pub cluster_role_bindings: Vec<Binding>,
}

/// What [`RbacObjects::read`] skipped: objects of other kinds, by kind.
pub type Skipped = BTreeMap<String, usize>;

impl RbacObjects {
    /// How many objects.
    pub fn len(&self) -> usize {
        self.roles.len()
            + self.cluster_roles.len()
            + self.role_bindings.len()
            + self.cluster_role_bindings.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds every object of `other`.
    pub fn extend(&mut self, other: &RbacObjects) {
        self.roles.extend(other.roles.iter().cloned());
        self.cluster_roles
            .extend(other.cluster_roles.iter().cloned());
        self.role_bindings
            .extend(other.role_bindings.iter().cloned());
        self.cluster_role_bindings
            .extend(other.cluster_role_bindings.iter().cloned());
    }

    /// Adds the RBAC objects of one file: `kubectl get clusterroles,clusterrolebindings,roles,
    /// rolebindings -A -o yaml` output (a `List`), `-o json`, multi-document YAML, or single
    /// objects. Objects of other kinds are counted in the answer, not refused. `source` names
    /// the file in errors.
    pub fn read(&mut self, source: &str, text: &str) -> Result<Skipped> {
        let mut skipped = Skipped::new();
        let documents = if text.trim_start().starts_with(['{', '[']) {
            let mut values = Vec::new();
            for v in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
                values.push(v.map_err(|e| Error::Snapshot {
                    file: source.to_string(),
                    message: e.to_string(),
                })?);
            }
            values
        } else {
            let mut values = Vec::new();
            for doc in serde_norway::Deserializer::from_str(text) {
                let v = Value::deserialize(doc).map_err(|e| Error::Snapshot {
                    file: source.to_string(),
                    message: e.to_string(),
                })?;
                if !v.is_null() {
                    values.push(v);
                }
            }
            values
        };
        for (i, doc) in documents.into_iter().enumerate() {
            let place = format!("document {}", i + 1);
            match doc {
                // A JSON array of objects reads as its items.
                Value::Array(items) => {
                    for (j, item) in items.into_iter().enumerate() {
                        self.add(
                            source,
                            &format!("{place} item {}", j + 1),
                            item,
                            &mut skipped,
                        )?;
                    }
                }
                doc => self.add(source, &place, doc, &mut skipped)?,
            }
        }
        Ok(skipped)
    }

    fn add(
        &mut self,
        source: &str,
        place: &str,
        value: Value,
        skipped: &mut Skipped,
    ) -> Result<()> {
        let kind = value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let fail = |message: String| Error::Snapshot {
            file: source.to_string(),
            message: format!("{place} ({kind}): {message}"),
        };
        if kind == "List" || (kind.ends_with("List") && value.get("items").is_some()) {
            let Value::Array(items) = value.get("items").cloned().unwrap_or(Value::Null) else {
                return Err(fail("items is not a list".into()));
            };
            let item_kind = kind.strip_suffix("List").filter(|k| !k.is_empty());
            for (i, mut item) in items.into_iter().enumerate() {
                // `kubectl get roles -o yaml` writes a RoleList whose items may omit kind.
                if let (Some(k), Some(obj)) = (item_kind, item.as_object_mut()) {
                    obj.entry("kind")
                        .or_insert_with(|| Value::String(k.to_string()));
                }
                self.add(source, &format!("{place} item {}", i + 1), item, skipped)?;
            }
            return Ok(());
        }
        let group_ok = value
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_none_or(|v| v.starts_with(GROUP));
        let parse_role =
            |v: Value| serde_json::from_value::<Role>(v).map_err(|e| fail(e.to_string()));
        let parse_binding =
            |v: Value| serde_json::from_value::<Binding>(v).map_err(|e| fail(e.to_string()));
        match kind.as_str() {
            "Role" if group_ok => self.roles.push(parse_role(value)?),
            "ClusterRole" if group_ok => self.cluster_roles.push(parse_role(value)?),
            "RoleBinding" if group_ok => self.role_bindings.push(parse_binding(value)?),
            "ClusterRoleBinding" if group_ok => {
                self.cluster_role_bindings.push(parse_binding(value)?)
            }
            _ => *skipped.entry(kind).or_default() += 1,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_kubectl_lists_multi_document_yaml_and_json() {
        let yaml = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: rbac.authorization.k8s.io/v1\n  kind: ClusterRole\n  metadata: {name: view, labels: {a: b}}\n  rules:\n  - apiGroups: ['']\n    resources: [pods]\n    verbs: [get]\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: x}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: rb, namespace: ns1}\nsubjects: null\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}\n";
        let mut objects = RbacObjects::default();
        let skipped = objects.read("a.yaml", yaml).unwrap();
        assert_eq!(skipped.get("ConfigMap"), Some(&1));
        assert_eq!(objects.cluster_roles.len(), 1);
        assert_eq!(objects.cluster_roles[0].rules[0].api_groups, vec![""]);
        assert_eq!(objects.cluster_roles[0].metadata.labels["a"], "b");
        assert_eq!(objects.role_bindings[0].metadata.namespace, "ns1");
        assert!(objects.role_bindings[0].subjects.is_empty());

        let json = r#"{"kind":"RoleList","apiVersion":"rbac.authorization.k8s.io/v1","items":[{"metadata":{"name":"r","namespace":"n"},"rules":null}]}"#;
        objects.read("b.json", json).unwrap();
        assert_eq!(objects.roles[0].metadata.name, "r");
        assert!(objects.roles[0].rules.is_empty());
    }

    #[test]
    fn a_malformed_object_is_an_error_naming_the_file_and_document() {
        let mut objects = RbacObjects::default();
        let err = objects
            .read("snap.yaml", "kind: RoleBinding\nmetadata: {name: x}\n---\nkind: ClusterRoleBinding\nmetadata: {name: y}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("snap.yaml"), "{err}");
        assert!(err.contains("document 1 (RoleBinding)"), "{err}");
        assert!(err.contains("roleRef"), "{err}");
    }

    #[test]
    fn label_selectors_follow_kubernetes() {
        let labels: BTreeMap<String, String> = [(
            "rbac.example.com/aggregate-to-view".to_string(),
            "true".to_string(),
        )]
        .into();
        let by_label = LabelSelector {
            match_labels: labels.clone(),
            match_expressions: vec![],
        };
        assert!(by_label.matches(&labels));
        assert!(!by_label.matches(&BTreeMap::new()));
        let not_in = LabelSelector {
            match_labels: BTreeMap::new(),
            match_expressions: vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "NotIn".into(),
                values: vec!["x".into()],
            }],
        };
        assert!(not_in.matches(&labels));
        assert!(
            LabelSelector::default().matches(&BTreeMap::new()),
            "{{}} selects everything"
        );
    }
}
