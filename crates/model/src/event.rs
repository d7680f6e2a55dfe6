//! The internal event type: one shape for every `audit.k8s.io` version, laid out like v1.

use std::collections::BTreeMap;

use std::borrow::Cow;
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::{ApiVersion, Level, MicroTime, RawJson, Stage};

/// One audit event, in the v1 shape, whatever version it was read from.
///
/// Fields that real files often lack (`auditID`, `stage`, `level` in hand-written fixtures, for
/// example) are `Option`s so that such events still decode; absent fields stay absent when
/// encoded again. Fields this type does not model are kept in [`Event::unknown`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Event {
    /// The version the event was read in; `None` when the input had no `apiVersion`.
    pub source_version: Option<ApiVersion>,
    /// `level`: the audit level the event was generated at.
    pub level: Option<Level>,
    /// `auditID`: unique per request; shared by the events of one request's stages.
    pub audit_id: Option<String>,
    /// `stage`: the stage of the request this event describes.
    pub stage: Option<Stage>,
    /// `requestURI`: path and raw query as sent by the client.
    pub request_uri: Option<String>,
    /// `verb`: the Kubernetes verb, or the lower-case HTTP method for non-resource requests.
    pub verb: Option<String>,
    /// `user`: the authenticated user.
    pub user: Option<UserInfo>,
    /// `impersonatedUser`: the user being impersonated, if any.
    pub impersonated_user: Option<UserInfo>,
    /// `sourceIPs`: client and intermediate proxy addresses.
    pub source_ips: Vec<String>,
    /// `userAgent` as reported by the client.
    pub user_agent: Option<String>,
    /// `objectRef`: the object the request is about (resource requests only).
    pub object_ref: Option<ObjectReference>,
    /// `responseStatus`: the response code and, for failures, the Status details.
    pub response_status: Option<ResponseStatus>,
    /// `requestObject`: the request body (level Request and above), as its original text.
    pub request_object: Option<RawJson>,
    /// `responseObject`: the response body (level RequestResponse), as its original text.
    pub response_object: Option<RawJson>,
    /// `requestReceivedTimestamp`.
    pub request_received_timestamp: Option<MicroTime>,
    /// `stageTimestamp`.
    pub stage_timestamp: Option<MicroTime>,
    /// `annotations`: authorization decision, admission and pod-security notes, ...
    pub annotations: BTreeMap<String, String>,
    /// `authenticationMetadata` (Kubernetes 1.35+), kept as JSON.
    pub authentication_metadata: Option<Value>,
    /// Every top-level field not modelled above, in input order.
    pub unknown: Map<String, Value>,
}

impl Event {
    /// The user name, or `""` for events without a user (failed authentication).
    pub fn username(&self) -> &str {
        self.user
            .as_ref()
            .and_then(|u| u.username.as_deref())
            .unwrap_or("")
    }

    /// The response code, if the event has one.
    pub fn code(&self) -> Option<i32> {
        self.response_status.as_ref().and_then(|s| s.code)
    }

    /// The `authorization.k8s.io/decision` annotation (`allow` or `forbid`).
    pub fn authorization_decision(&self) -> Option<&str> {
        self.annotations
            .get("authorization.k8s.io/decision")
            .map(String::as_str)
    }
}

/// `authentication.k8s.io/v1 UserInfo`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct UserInfo {
    /// The user's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// A unique value identifying the user across time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// The groups the user belongs to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Extra attributes provided by the authenticator.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Vec<String>>,
    /// Fields not modelled above.
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

/// The object a resource request is about.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference {
    /// Resource (plural, lower case), e.g. `pods`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Namespace, for namespaced resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Object name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Object UID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// API group; `""` or absent for the core group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_group: Option<String>,
    /// API version, e.g. `v1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Resource version of the object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// Subresource, e.g. `exec` or `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subresource: Option<String>,
    /// Fields not modelled above.
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

/// `metav1.Status` as recorded in `responseStatus`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ResponseStatus {
    /// List metadata (`{}` in practice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// `Success` or `Failure`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Human-readable description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Machine-readable reason, e.g. `Forbidden`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Extended data about the reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    /// The HTTP status code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    /// Fields not modelled above.
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

/// The body the webhook backend POSTs: a batch of events.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventList {
    /// The version the list was written in, if it said.
    pub source_version: Option<ApiVersion>,
    /// The events, in order.
    pub items: Vec<Event>,
}

/// A field that Go's JSON decoding leaves at its zero value when the input holds `null`.
struct NullDefault<T>(T);

impl<'de, T: Default + Deserialize<'de>> Deserialize<'de> for NullDefault<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(NullDefault(
            Option::<T>::deserialize(d)?.unwrap_or_default(),
        ))
    }
}

/// `Deserialize` for a struct of known fields plus an `unknown` map that keeps every other
/// field, in one pass (serde's `flatten` would buffer the whole object first).
macro_rules! lossless {
    ($ty:ident { $($field:ident: $json:literal),* $(,)? }) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str(concat!("a ", stringify!($ty), " object"))
                    }
                    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<$ty, A::Error> {
                        let mut out = $ty::default();
                        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                            match key.as_ref() {
                                $($json => out.$field = map.next_value::<NullDefault<_>>()?.0,)*
                                _ => {
                                    let value: Value = map.next_value()?;
                                    out.unknown.insert(key.into_owned(), value);
                                }
                            }
                        }
                        Ok(out)
                    }
                }
                d.deserialize_map(V)
            }
        }
    };
}

lossless!(UserInfo {
    username: "username",
    uid: "uid",
    groups: "groups",
    extra: "extra"
});
lossless!(ObjectReference {
    resource: "resource",
    namespace: "namespace",
    name: "name",
    uid: "uid",
    api_group: "apiGroup",
    api_version: "apiVersion",
    resource_version: "resourceVersion",
    subresource: "subresource",
});
lossless!(ResponseStatus {
    metadata: "metadata",
    status: "status",
    message: "message",
    reason: "reason",
    details: "details",
    code: "code",
});
