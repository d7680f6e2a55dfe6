//! Encoding: [`Event`] → `audit.k8s.io/v1` JSON, in kube-apiserver's field order, followed by
//! the fields the event was read with that v1 does not define.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::{ApiVersion, Event, EventList};

impl Event {
    /// The event as an `audit.k8s.io/v1` JSON object. Absent fields stay absent.
    pub fn to_v1_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("kind".into(), "Event".into());
        m.insert("apiVersion".into(), ApiVersion::V1.as_str().into());
        put(&mut m, "level", self.level.map(|l| l.as_str()));
        put(&mut m, "auditID", self.audit_id.as_ref());
        put(&mut m, "stage", self.stage.map(|s| s.as_str()));
        put(&mut m, "requestURI", self.request_uri.as_ref());
        put(&mut m, "verb", self.verb.as_ref());
        put(&mut m, "user", self.user.as_ref());
        put(&mut m, "impersonatedUser", self.impersonated_user.as_ref());
        put(
            &mut m,
            "authenticationMetadata",
            self.authentication_metadata.as_ref(),
        );
        if !self.source_ips.is_empty() {
            put(&mut m, "sourceIPs", Some(&self.source_ips));
        }
        put(&mut m, "userAgent", self.user_agent.as_ref());
        put(&mut m, "objectRef", self.object_ref.as_ref());
        put(&mut m, "responseStatus", self.response_status.as_ref());
        put(&mut m, "requestObject", self.request_object.as_ref());
        put(&mut m, "responseObject", self.response_object.as_ref());
        put(
            &mut m,
            "requestReceivedTimestamp",
            self.request_received_timestamp.map(|t| t.to_string()),
        );
        put(
            &mut m,
            "stageTimestamp",
            self.stage_timestamp.map(|t| t.to_string()),
        );
        if !self.annotations.is_empty() {
            put(&mut m, "annotations", Some(&self.annotations));
        }
        for (k, v) in &self.unknown {
            m.entry(k.clone()).or_insert_with(|| v.clone());
        }
        Value::Object(m)
    }

    /// The event as one line of `audit.k8s.io/v1` JSON (no trailing newline).
    pub fn to_v1_json(&self) -> String {
        self.to_v1_value().to_string()
    }
}

impl EventList {
    /// The list as the `audit.k8s.io/v1` `EventList` the webhook backend sends.
    pub fn to_v1_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("kind".into(), "EventList".into());
        m.insert("apiVersion".into(), ApiVersion::V1.as_str().into());
        m.insert("metadata".into(), Value::Object(Map::new()));
        m.insert(
            "items".into(),
            Value::Array(self.items.iter().map(Event::to_v1_value).collect()),
        );
        Value::Object(m)
    }
}

fn put<T: Serialize>(m: &mut Map<String, Value>, key: &str, value: Option<T>) {
    if let Some(v) = value {
        let v = serde_json::to_value(v).expect("audit event fields serialize to JSON");
        m.insert(key.to_string(), v);
    }
}
