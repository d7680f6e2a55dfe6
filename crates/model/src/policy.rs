//! Raw `audit.k8s.io` Policy types, exactly as written in a policy file (v1, v1beta1 and
//! v1alpha1 share these fields). Values are kept as strings so that validation can report
//! unknown levels and stages the way kube-apiserver does; the `policy` crate validates and
//! compiles them.

use serde::{Deserialize, Deserializer, Serialize};

/// `Policy`: an ordered list of rules plus policy-wide defaults.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    /// `apiVersion`, e.g. `audit.k8s.io/v1`.
    #[serde(default, deserialize_with = "null_default")]
    pub api_version: String,
    /// `kind`: `Policy`.
    #[serde(default, deserialize_with = "null_default")]
    pub kind: String,
    /// `metadata` (ignored by kube-apiserver).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
    /// Rules, evaluated in order: the first match wins.
    #[serde(default, deserialize_with = "null_default")]
    pub rules: Vec<PolicyRule>,
    /// Stages never recorded, for any request.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub omit_stages: Vec<String>,
    /// Policy-wide default for dropping `metadata.managedFields` from logged objects.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub omit_managed_fields: bool,
}

/// `PolicyRule`: selectors (AND-ed) and the level for the requests they select.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    /// `None`, `Metadata`, `Request` or `RequestResponse`.
    #[serde(default, deserialize_with = "null_default")]
    pub level: String,
    /// User names this rule applies to; empty means every user.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub users: Vec<String>,
    /// Groups this rule applies to (any one of the user's groups); empty means every group.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub user_groups: Vec<String>,
    /// Verbs this rule applies to; empty means every verb.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub verbs: Vec<String>,
    /// Resources this rule applies to; empty means every resource.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub resources: Vec<GroupResources>,
    /// Namespaces this rule applies to; `""` selects non-namespaced requests.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub namespaces: Vec<String>,
    /// Non-resource URL paths (exact, or a prefix ending in `*`).
    #[serde(
        default,
        rename = "nonResourceURLs",
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub non_resource_urls: Vec<String>,
    /// Stages not recorded for requests this rule matches (added to the policy's).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub omit_stages: Vec<String>,
    /// Overrides the policy's `omitManagedFields` when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub omit_managed_fields: Option<bool>,
}

/// `GroupResources`: resources of one API group.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupResources {
    /// API group; `""` is the core group.
    #[serde(default, deserialize_with = "null_default")]
    pub group: String,
    /// Resource patterns: `pods`, `pods/log`, `*`, `pods/*`, `*/scale`. Empty means all.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub resources: Vec<String>,
    /// Object names; empty means any name.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub resource_names: Vec<String>,
}

/// Go's JSON decoding leaves a field at its zero value when the input holds `null` (as an empty
/// YAML value does); serde's `default` alone would reject the `null`.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}
