//! Encoding: [`Event`] → `audit.k8s.io/v1` JSON, in kube-apiserver's field order, followed by
//! the fields the event was read with that v1 does not define.
//!
//! Bodies are written back as their text, so encoding to text cannot fail whatever they hold;
//! only [`Event::to_v1_value`], which must parse them into a tree, can.

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::{Map, Value};

use crate::{ApiVersion, Error, Event, EventList, Result};

impl Event {
    /// The event as an `audit.k8s.io/v1` JSON object. Absent fields stay absent.
    ///
    /// Fails only when a body cannot be held in a [`Value`]: JSON text with a lone UTF-16
    /// surrogate escape (`"\ud800"`) is valid JSON, and decodes, but is no Rust string.
    /// [`Event::to_v1_json`] has no such limit.
    pub fn to_v1_value(&self) -> Result<Value> {
        serde_json::to_value(V1(self)).map_err(Error::Json)
    }

    /// The event as one line of `audit.k8s.io/v1` JSON (no trailing newline), its bodies
    /// byte for byte as they were read.
    pub fn to_v1_json(&self) -> String {
        serde_json::to_string(&V1(self))
            .expect("an event serializes to text: its keys are strings, its bodies JSON text")
    }
}

impl EventList {
    /// The list as the `audit.k8s.io/v1` `EventList` the webhook backend sends. Fails as
    /// [`Event::to_v1_value`] does.
    pub fn to_v1_value(&self) -> Result<Value> {
        let mut m = Map::new();
        m.insert("kind".into(), "EventList".into());
        m.insert("apiVersion".into(), ApiVersion::V1.as_str().into());
        m.insert("metadata".into(), Value::Object(Map::new()));
        let items = self
            .items
            .iter()
            .map(Event::to_v1_value)
            .collect::<Result<Vec<_>>>()?;
        m.insert("items".into(), Value::Array(items));
        Ok(Value::Object(m))
    }
}

/// An event, serialized as v1.
struct V1<'a>(&'a Event);

/// The keys written so far: an unknown field of the same name is not written again.
#[derive(Default)]
struct Written {
    keys: [&'static str; 20],
    len: usize,
}

impl Written {
    fn contains(&self, key: &str) -> bool {
        self.keys[..self.len].contains(&key)
    }
}

fn put<M: SerializeMap, T: Serialize + ?Sized>(
    m: &mut M,
    written: &mut Written,
    key: &'static str,
    value: Option<&T>,
) -> Result<(), M::Error> {
    if let Some(v) = value {
        m.serialize_entry(key, v)?;
        if written.len < written.keys.len() {
            written.keys[written.len] = key;
            written.len += 1;
        }
    }
    Ok(())
}

impl Serialize for V1<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        let mut m = s.serialize_map(None)?;
        let w = &mut Written::default();
        put(&mut m, w, "kind", Some("Event"))?;
        put(&mut m, w, "apiVersion", Some(ApiVersion::V1.as_str()))?;
        put(&mut m, w, "level", e.level.map(|l| l.as_str()))?;
        put(&mut m, w, "auditID", e.audit_id.as_deref())?;
        put(&mut m, w, "stage", e.stage.map(|s| s.as_str()))?;
        put(&mut m, w, "requestURI", e.request_uri.as_deref())?;
        put(&mut m, w, "verb", e.verb.as_deref())?;
        put(&mut m, w, "user", e.user.as_ref())?;
        put(&mut m, w, "impersonatedUser", e.impersonated_user.as_ref())?;
        put(
            &mut m,
            w,
            "authenticationMetadata",
            e.authentication_metadata.as_ref(),
        )?;
        if !e.source_ips.is_empty() {
            put(&mut m, w, "sourceIPs", Some(&e.source_ips))?;
        }
        put(&mut m, w, "userAgent", e.user_agent.as_deref())?;
        put(&mut m, w, "objectRef", e.object_ref.as_ref())?;
        put(&mut m, w, "responseStatus", e.response_status.as_ref())?;
        put(&mut m, w, "requestObject", e.request_object.as_ref())?;
        put(&mut m, w, "responseObject", e.response_object.as_ref())?;
        put(
            &mut m,
            w,
            "requestReceivedTimestamp",
            e.request_received_timestamp
                .map(|t| t.to_string())
                .as_deref(),
        )?;
        put(
            &mut m,
            w,
            "stageTimestamp",
            e.stage_timestamp.map(|t| t.to_string()).as_deref(),
        )?;
        if !e.annotations.is_empty() {
            put(&mut m, w, "annotations", Some(&e.annotations))?;
        }
        for (k, v) in &e.unknown {
            if !w.contains(k) {
                m.serialize_entry(k, v)?;
            }
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use crate::{RawJson, decode_event};

    #[test]
    fn bodies_are_written_back_as_text_even_when_no_tree_can_hold_them() {
        let line = br#"{"apiVersion":"audit.k8s.io/v1beta1","auditID":"a","requestObject":{"s":"\ud800"}}"#;
        let e = decode_event(line).unwrap();
        let json = e.to_v1_json();
        assert_eq!(
            json,
            r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a","requestObject":{"s":"\ud800"}}"#
        );
        let err = e.to_v1_value().unwrap_err();
        assert!(err.to_string().contains("escape"), "{err}");
        let body: &RawJson = e.request_object.as_ref().unwrap();
        assert!(body.to_value().is_err());
    }

    #[test]
    fn unknown_fields_never_repeat_a_written_key() {
        let mut e = decode_event(br#"{"auditID":"a","x":1}"#).unwrap();
        e.unknown.insert("kind".into(), "Other".into());
        e.unknown.insert("auditID".into(), "b".into());
        e.unknown.insert("verb".into(), "get".into());
        assert_eq!(
            e.to_v1_json(),
            r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a","x":1,"verb":"get"}"#
        );
    }
}
