//! The internal event type: one shape for every `audit.k8s.io` version, laid out like v1.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{ApiVersion, Level, MicroTime, Stage};

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
    /// `requestObject`: the request body (level Request and above).
    pub request_object: Option<Value>,
    /// `responseObject`: the response body (level RequestResponse).
    pub response_object: Option<Value>,
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
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
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
