//! Decoding: JSON → [`Event`] / [`EventList`], for every `audit.k8s.io` version.
//!
//! Tolerant where real files vary (a missing `apiVersion`, missing `auditID`/`stage`/`level` in
//! hand-written fixtures, v1beta1's `timestamp` and `metadata.creationTimestamp`, fields this
//! crate does not know), strict where a value is simply wrong (`{"kind":0}`, an unknown stage).

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::{ApiVersion, Error, Event, EventList, MicroTime, ObjectReference, Result};

/// Decodes one event from JSON text (one line of a log backend file).
pub fn decode_event(json: &[u8]) -> Result<Event> {
    let value: Value = serde_json::from_slice(json).map_err(Error::Json)?;
    decode_event_value(value, None)
}

/// Decodes a webhook body: an `EventList` whose items take the list's `apiVersion` when they do
/// not carry their own.
pub fn decode_event_list(json: &[u8]) -> Result<EventList> {
    let value: Value = serde_json::from_slice(json).map_err(Error::Json)?;
    let mut map = into_object(value)?;
    expect_kind(&mut map, "EventList")?;
    let source_version = take_version(&mut map)?;
    let items = match map.remove("items") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(Error::field(
                "items",
                format!("expected an array, found {}", describe(&other)),
            ));
        }
    };
    let items = items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            decode_event_value(item, source_version).map_err(|e| e.within(&format!("items[{i}]")))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(EventList {
        source_version,
        items,
    })
}

/// Decodes one event from an already parsed JSON value. `default_version` applies when the
/// value has no `apiVersion` of its own (items of an `EventList`).
pub fn decode_event_value(value: Value, default_version: Option<ApiVersion>) -> Result<Event> {
    let mut map = into_object(value)?;
    expect_kind(&mut map, "Event")?;
    let source_version = take_version(&mut map)?.or(default_version);
    let legacy = matches!(
        source_version,
        Some(ApiVersion::V1Alpha1 | ApiVersion::V1Beta1)
    );

    let mut event = Event {
        source_version,
        level: take(&mut map, "level")?,
        audit_id: take(&mut map, "auditID")?,
        stage: take(&mut map, "stage")?,
        request_uri: take(&mut map, "requestURI")?,
        verb: take(&mut map, "verb")?,
        user: take(&mut map, "user")?,
        impersonated_user: take(&mut map, "impersonatedUser")?,
        source_ips: take(&mut map, "sourceIPs")?.unwrap_or_default(),
        user_agent: take(&mut map, "userAgent")?,
        object_ref: take(&mut map, "objectRef")?,
        response_status: take(&mut map, "responseStatus")?,
        request_object: take_raw(&mut map, "requestObject"),
        response_object: take_raw(&mut map, "responseObject"),
        request_received_timestamp: take_time(&mut map, "requestReceivedTimestamp")?,
        stage_timestamp: take_time(&mut map, "stageTimestamp")?,
        annotations: take(&mut map, "annotations")?.unwrap_or_default(),
        authentication_metadata: take_raw(&mut map, "authenticationMetadata"),
        unknown: Map::new(),
    };

    // v1beta1 and v1alpha1 carry `timestamp` (requestReceivedTimestamp, seconds) and
    // `metadata.creationTimestamp` (stageTimestamp, seconds); kube-apiserver fills empty v1
    // timestamps from them. In other versions they are unknown fields: used the same way, kept.
    if event.request_received_timestamp.is_none()
        && let Some(Value::String(s)) = map.get("timestamp")
    {
        event.request_received_timestamp = Some(parse_time("timestamp", s)?);
    }
    if event.stage_timestamp.is_none()
        && let Some(Value::String(s)) = map.get("metadata").and_then(|m| m.get("creationTimestamp"))
    {
        event.stage_timestamp = Some(parse_time("metadata.creationTimestamp", s)?);
    }
    if legacy {
        map.remove("timestamp");
        map.remove("metadata");
    }
    if source_version == Some(ApiVersion::V1Alpha1)
        && let Some(object_ref) = event.object_ref.as_mut()
    {
        split_v1alpha1_group_version(object_ref);
    }
    event.unknown = map;
    Ok(event)
}

/// v1alpha1 `objectRef.apiVersion` holds `group/version` (just `version` for core) and there is
/// no `apiGroup`.
fn split_v1alpha1_group_version(object_ref: &mut ObjectReference) {
    if object_ref.api_group.is_some() {
        return;
    }
    if let Some(gv) = object_ref.api_version.take() {
        match gv.split_once('/') {
            Some((group, version)) => {
                object_ref.api_group = Some(group.to_string());
                object_ref.api_version = Some(version.to_string());
            }
            None => object_ref.api_version = Some(gv),
        }
    }
}

fn into_object(value: Value) -> Result<Map<String, Value>> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(Error::NotAnObject {
            found: describe(&other),
        }),
    }
}

fn expect_kind(map: &mut Map<String, Value>, kind: &str) -> Result<()> {
    match map.remove("kind") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(k)) if k == kind => Ok(()),
        Some(Value::String(k)) => Err(Error::field(
            "kind",
            format!("expected {kind:?}, found {k:?}"),
        )),
        Some(other) => Err(Error::field(
            "kind",
            format!("expected the string {kind:?}, found {}", describe(&other)),
        )),
    }
}

fn take_version(map: &mut Map<String, Value>) -> Result<Option<ApiVersion>> {
    match map.remove("apiVersion") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(v)) if v.is_empty() => Ok(None),
        Some(Value::String(v)) => v
            .parse()
            .map(Some)
            .map_err(|e| Error::field("apiVersion", e)),
        Some(other) => Err(Error::field(
            "apiVersion",
            format!("expected a string, found {}", describe(&other)),
        )),
    }
}

fn take<T: DeserializeOwned>(map: &mut Map<String, Value>, key: &str) -> Result<Option<T>> {
    match map.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v)
            .map(Some)
            .map_err(|e| Error::field(key, e)),
    }
}

fn take_raw(map: &mut Map<String, Value>, key: &str) -> Option<Value> {
    map.remove(key).filter(|v| !v.is_null())
}

fn take_time(map: &mut Map<String, Value>, key: &str) -> Result<Option<MicroTime>> {
    match take::<String>(map, key)? {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => parse_time(key, &s).map(Some),
    }
}

fn parse_time(key: &str, s: &str) -> Result<MicroTime> {
    s.parse().map_err(|e| Error::field(key, e))
}

pub(crate) fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Level, Stage};

    #[test]
    fn kind_zero_is_a_field_error_not_a_panic() {
        let err = decode_event(br#"{"kind": 0}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "field `kind`: expected the string \"Event\", found a number"
        );
    }

    #[test]
    fn truncated_line_reports_malformed_json_with_position() {
        let err = decode_event(br#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Meta"#)
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("malformed JSON: EOF while parsing"),
            "{msg}"
        );
        assert!(msg.ends_with("at line 1 column 60"), "{msg}");
    }

    #[test]
    fn non_objects_are_rejected_by_name() {
        for (input, found) in [
            ("[1,2]", "an array"),
            ("\"x\"", "a string"),
            ("42", "a number"),
            ("null", "null"),
        ] {
            let err = decode_event(input.as_bytes()).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("expected a JSON object, found {found}")
            );
        }
    }

    #[test]
    fn unknown_stage_names_the_field() {
        let err = decode_event(br#"{"stage":"Done"}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "field `stage`: unknown stage \"Done\": expected one of RequestReceived, ResponseStarted, ResponseComplete, Panic"
        );
    }

    #[test]
    fn v1beta1_timestamps_fill_the_v1_ones() {
        let e = decode_event(
            br#"{"kind":"Event","apiVersion":"audit.k8s.io/v1beta1","metadata":{"creationTimestamp":"2017-09-11T15:34:22Z"},"level":"Metadata","timestamp":"2017-09-11T15:34:21Z","auditID":"a","stage":"ResponseComplete"}"#,
        )
        .unwrap();
        assert_eq!(e.source_version, Some(ApiVersion::V1Beta1));
        assert_eq!(e.level, Some(Level::Metadata));
        assert_eq!(e.stage, Some(Stage::ResponseComplete));
        assert_eq!(
            e.request_received_timestamp.unwrap().to_string(),
            "2017-09-11T15:34:21.000000Z"
        );
        assert_eq!(
            e.stage_timestamp.unwrap().to_string(),
            "2017-09-11T15:34:22.000000Z"
        );
        assert!(
            e.unknown.is_empty(),
            "v1beta1 fields are known: {:?}",
            e.unknown
        );
    }

    #[test]
    fn v1alpha1_object_ref_group_version_is_split() {
        let e = decode_event(
            br#"{"apiVersion":"audit.k8s.io/v1alpha1","objectRef":{"resource":"deployments","apiVersion":"apps/v1beta1"}}"#,
        )
        .unwrap();
        let r = e.object_ref.unwrap();
        assert_eq!(r.api_group.as_deref(), Some("apps"));
        assert_eq!(r.api_version.as_deref(), Some("v1beta1"));
    }

    #[test]
    fn event_list_items_inherit_the_list_version_and_errors_name_the_item() {
        let list = decode_event_list(
            br#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1beta1","items":[{"auditID":"a"},{"auditID":"b","apiVersion":"audit.k8s.io/v1"}]}"#,
        )
        .unwrap();
        assert_eq!(list.items.len(), 2);
        assert_eq!(list.items[0].source_version, Some(ApiVersion::V1Beta1));
        assert_eq!(list.items[1].source_version, Some(ApiVersion::V1));

        let err = decode_event_list(br#"{"kind":"EventList","items":[{},{"level":"Loud"}]}"#)
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("field `items[1].level`: unknown level"),
            "{err}"
        );
        let err = decode_event_list(br#"{"kind":"EventList","items":[{},7]}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "field `items[1]`: expected a JSON object, found a number"
        );
        let err = decode_event_list(br#"{"kind":"Event"}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "field `kind`: expected \"EventList\", found \"Event\""
        );
    }
}
