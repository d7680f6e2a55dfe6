//! Decoding: JSON → [`Event`] / [`EventList`], for every `audit.k8s.io` version.
//!
//! Tolerant where real files vary (a missing `apiVersion`, missing `auditID`/`stage`/`level` in
//! hand-written fixtures, v1beta1's `timestamp` and `metadata.creationTimestamp`, fields this
//! crate does not know), strict where a value is simply wrong (`{"kind":0}`, an unknown stage).
//!
//! Events are decoded in one pass straight into their fields (no intermediate JSON tree);
//! bodies stay as text ([`RawJson`]); unknown fields are kept as JSON values.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use serde::Deserialize;

use crate::depth;
use crate::{
    ApiVersion, Error, Event, EventList, Level, MicroTime, ObjectReference, RawJson, Result, Stage,
};

/// Decodes one event from JSON text (one line of a log backend file).
pub fn decode_event(json: &[u8]) -> Result<Event> {
    check_object(json)?;
    decode_text(json, None)?.finish()
}

/// Decodes one event's text. Valid input (nearly all of it) takes the fast path; only input
/// that fails is decoded a second time, tracking the field path, to say where it is wrong.
fn decode_text(json: &[u8], default_version: Option<ApiVersion>) -> Result<Partial> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let fast = (EventSeed { default_version })
        .deserialize(&mut de)
        .and_then(|partial| de.end().map(|()| partial));
    if let Ok(partial) = fast {
        return Ok(partial);
    }
    let mut de = serde_json::Deserializer::from_slice(json);
    let partial = decode_with(&mut de, default_version).map_err(from_path_error)?;
    de.end().map_err(Error::Json)?;
    Ok(partial)
}

/// Checks an `EventList`'s `kind`: absent, null or `"EventList"`.
fn check_list_kind(kind: Option<Value>) -> Result<()> {
    match kind {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(k)) if k == "EventList" => Ok(()),
        Some(Value::String(k)) => Err(Error::field(
            "kind",
            format!("expected \"EventList\", found {k:?}"),
        )),
        Some(other) => Err(Error::field(
            "kind",
            format!(
                "expected the string \"EventList\", found {}",
                describe(&other)
            ),
        )),
    }
}

/// An `EventList`'s `apiVersion`, if it gives one.
fn list_version(version: Option<Value>) -> Result<Option<ApiVersion>> {
    match version {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(v)) if v.is_empty() => Ok(None),
        Some(Value::String(v)) => Ok(Some(v.parse().map_err(|e| Error::field("apiVersion", e))?)),
        Some(other) => Err(Error::field(
            "apiVersion",
            format!("expected a string, found {}", describe(&other)),
        )),
    }
}

/// Decodes a webhook body: an `EventList` whose items take the list's `apiVersion` when they do
/// not carry their own.
///
/// The body must be a JSON object whose `items` is an array (`[]` is an empty batch); `kind`
/// may be absent (the apiserver always sends it) but must otherwise be `EventList`. Each item
/// is decoded on its own, so its errors name it (`items[3].stage`) and the nesting limit
/// ([`MAX_DEPTH`](crate::MAX_DEPTH)) applies to each item as to an event on its own.
pub fn decode_event_list(json: &[u8]) -> Result<EventList> {
    let (source_version, items) = list_items(json)?;
    let items = items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let mut event = decode_item(item.get(), source_version)
                .map_err(|e| e.within(&format!("items[{i}]")))?;
            event.source_version = event.source_version.or(source_version);
            Ok(event)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(EventList {
        source_version,
        items,
    })
}

/// One item of a list whose version is `list_version`. Its `source_version` is still its own
/// (or the list's, when that is an older version than v1): the caller gives it the list's.
fn decode_item(text: &str, list_version: Option<ApiVersion>) -> Result<Event> {
    check_object(text.as_bytes())?;
    let legacy = !matches!(list_version, None | Some(ApiVersion::V1));
    let default = if legacy { list_version } else { None };
    decode_text(text.as_bytes(), default)?.finish()
}

/// An item of a webhook `EventList`, decoded, with JSON text that stands on its own.
#[derive(Debug, Clone, PartialEq)]
pub struct ListItem {
    /// The event.
    pub event: Event,
    /// The item's own text when it is v1 (with `kind` and `apiVersion` added, which list
    /// items leave to their list), or its v1 encoding when it was written in an older version.
    pub json: String,
}

#[derive(Deserialize)]
struct RawList<'a> {
    #[serde(default)]
    kind: Option<Value>,
    #[serde(default, rename = "apiVersion")]
    api_version: Option<Value>,
    /// `None` only when absent: `null` is kept, to be refused by name.
    #[serde(default, borrow, deserialize_with = "present")]
    items: Option<&'a serde_json::value::RawValue>,
}

fn present<'de: 'a, 'a, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<&'a serde_json::value::RawValue>, D::Error> {
    <&'a serde_json::value::RawValue>::deserialize(d).map(Some)
}

/// The keys of an object, for the error about a missing `items` (only on that path).
#[derive(Deserialize)]
struct Keys(BTreeMap<String, de::IgnoredAny>);

/// A list's version and its items' text, after checking that `json` is an `EventList`.
fn list_items(json: &[u8]) -> Result<(Option<ApiVersion>, Vec<&serde_json::value::RawValue>)> {
    check_object(json)?;
    let list: RawList<'_> = serde_json::from_slice(json).map_err(Error::Json)?;
    check_list_kind(list.kind)?;
    let version = list_version(list.api_version)?;
    let items = match list.items {
        Some(raw) if raw.get() == "null" => {
            return Err(Error::field(
                "items",
                "expected an array of events, found null",
            ));
        }
        Some(raw) => serde_json::from_str(raw.get())
            .map_err(|_| Error::field("items", "expected an array of events"))?,
        None => return Err(missing_items(json)),
    };
    Ok((version, items))
}

/// The error for a list without `items`, naming a key that differs only in case (`Items`).
fn missing_items(json: &[u8]) -> Error {
    let near = serde_json::from_slice::<Keys>(json)
        .ok()
        .and_then(|keys| keys.0.into_keys().find(|k| k.eq_ignore_ascii_case("items")));
    let reason = match near {
        Some(k) => format!(
            "required: an EventList carries its events in `items` (found {k:?}; keys are case-sensitive)"
        ),
        None => "required: an EventList carries its events in `items`".to_string(),
    };
    Error::field("items", reason)
}

/// Decodes a webhook body like [`decode_event_list`], in one pass per item, keeping each
/// item's text instead of re-encoding it where it is already v1.
pub fn decode_event_list_items(json: &[u8]) -> Result<Vec<ListItem>> {
    let (list_version, items) = list_items(json)?;
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let text = item.get();
            let mut event =
                decode_item(text, list_version).map_err(|e| e.within(&format!("items[{i}]")))?;
            let json = match (event.source_version, text.strip_prefix('{')) {
                // A v1 item without its own type: add the list's, unless it might hold a
                // `kind` of its own somewhere (then re-encoding is the safe way).
                (None, Some(rest)) if !text.contains("\"kind\"") => {
                    let rest = rest.trim_start();
                    let sep = if rest.starts_with('}') { "" } else { "," };
                    format!("{{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\"{sep}{rest}")
                }
                (Some(ApiVersion::V1), _) => text.to_string(),
                _ => event.to_v1_json(),
            };
            // As decode_event_list: an item without a version of its own has the list's.
            event.source_version = event.source_version.or(list_version);
            Ok(ListItem { event, json })
        })
        .collect()
}

/// Decodes one event from an already parsed JSON value. `default_version` applies when the
/// value has no `apiVersion` of its own (items of an `EventList`).
pub fn decode_event_value(value: Value, default_version: Option<ApiVersion>) -> Result<Event> {
    if !value.is_object() {
        return Err(Error::NotAnObject {
            found: describe(&value),
        });
    }
    decode_with(value, default_version)
        .map_err(from_path_error)?
        .finish()
}

fn decode_with<'de, D: Deserializer<'de, Error = serde_json::Error>>(
    de: D,
    default_version: Option<ApiVersion>,
) -> std::result::Result<Partial, serde_path_to_error::Error<serde_json::Error>> {
    let mut track = serde_path_to_error::Track::new();
    let wrapped = serde_path_to_error::Deserializer::new(de, &mut track);
    match (EventSeed { default_version }).deserialize(wrapped) {
        Ok(e) => Ok(e),
        Err(e) => Err(serde_path_to_error::Error::new(track.path(), e)),
    }
}

fn from_path_error(e: serde_path_to_error::Error<serde_json::Error>) -> Error {
    let field = e.path().to_string();
    let top_field = e.path().iter().next().map(|s| s.to_string());
    let inner = e.into_inner();
    // serde_json stops at 128 levels: deeper than any event may be, so the same complaint.
    if inner.is_syntax() && inner.to_string().starts_with("recursion limit exceeded") {
        return depth::too_deep(top_field.unwrap_or_default());
    }
    if !inner.is_data() {
        return Error::Json(inner);
    }
    let message = inner.to_string();
    // serde_json appends the position; the field path says more.
    let reason = match message.rfind(" at line ") {
        Some(i) if message[i..].contains(" column ") => message[..i].to_string(),
        _ => message,
    };
    Error::field(if field == "." { String::new() } else { field }, reason)
}

/// The first non-space byte tells whether the input is an object at all.
fn check_object(json: &[u8]) -> Result<()> {
    let found = match json.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') | None => return Ok(()),
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        Some(b'-' | b'0'..=b'9') => "a number",
        Some(_) => return Ok(()), // not JSON at all: let the parser say where
    };
    // Only when the whole input is valid JSON is "not an object" the right complaint.
    match serde_json::from_slice::<de::IgnoredAny>(json) {
        Ok(_) => Err(Error::NotAnObject { found }),
        Err(e) => Err(Error::Json(e)),
    }
}

struct EventSeed {
    default_version: Option<ApiVersion>,
}

/// An event as read, before the version-specific fields are applied.
struct Partial {
    event: Event,
    unknown: Map<String, Value>,
}

impl<'de> DeserializeSeed<'de> for EventSeed {
    type Value = Partial;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Partial, D::Error> {
        d.deserialize_map(self)
    }
}

/// An optional `apiVersion`, parsed while its field is being read (so errors name it).
struct VersionField(Option<ApiVersion>);

impl<'de> Deserialize<'de> for VersionField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        match Option::<Cow<'de, str>>::deserialize(d)? {
            None => Ok(VersionField(None)),
            Some(v) if v.is_empty() => Ok(VersionField(None)),
            Some(v) => v
                .parse()
                .map(|v| VersionField(Some(v)))
                .map_err(de::Error::custom),
        }
    }
}

/// An optional timestamp; an empty string is no timestamp.
struct TimeField(Option<MicroTime>);

impl<'de> Deserialize<'de> for TimeField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        match Option::<Cow<'de, str>>::deserialize(d)? {
            None => Ok(TimeField(None)),
            Some(s) if s.is_empty() => Ok(TimeField(None)),
            Some(s) => s
                .parse()
                .map(|t| TimeField(Some(t)))
                .map_err(de::Error::custom),
        }
    }
}

/// `kind` must be `"Event"` when present.
struct Kind;

impl<'de> de::Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(Kind),
            Value::String(k) if k == "Event" => Ok(Kind),
            Value::String(k) => Err(de::Error::custom(format!(
                "expected \"Event\", found {k:?}"
            ))),
            other => Err(de::Error::custom(format!(
                "expected the string \"Event\", found {}",
                describe(&other)
            ))),
        }
    }
}

impl<'de> Visitor<'de> for EventSeed {
    type Value = Partial;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an audit event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Partial, A::Error> {
        let mut e = Event::default();
        let mut version: Option<ApiVersion> = None;
        let mut unknown = Map::new();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match key.as_ref() {
                "kind" => {
                    map.next_value::<Kind>()?;
                }
                "apiVersion" => version = map.next_value::<VersionField>()?.0,
                "level" => e.level = map.next_value::<Option<Level>>()?,
                "auditID" => e.audit_id = map.next_value()?,
                "stage" => e.stage = map.next_value::<Option<Stage>>()?,
                "requestURI" => e.request_uri = map.next_value()?,
                "verb" => e.verb = map.next_value()?,
                "user" => e.user = map.next_value()?,
                "impersonatedUser" => e.impersonated_user = map.next_value()?,
                "sourceIPs" => {
                    e.source_ips = map.next_value::<Option<Vec<String>>>()?.unwrap_or_default()
                }
                "userAgent" => e.user_agent = map.next_value()?,
                "objectRef" => e.object_ref = map.next_value()?,
                "responseStatus" => e.response_status = map.next_value()?,
                "requestObject" => {
                    e.request_object = map
                        .next_value::<Option<RawJson>>()?
                        .filter(|r| !r.is_null())
                }
                "responseObject" => {
                    e.response_object = map
                        .next_value::<Option<RawJson>>()?
                        .filter(|r| !r.is_null())
                }
                "requestReceivedTimestamp" => {
                    e.request_received_timestamp = map.next_value::<TimeField>()?.0
                }
                "stageTimestamp" => e.stage_timestamp = map.next_value::<TimeField>()?.0,
                "annotations" => {
                    e.annotations = map
                        .next_value::<Option<BTreeMap<String, String>>>()?
                        .unwrap_or_default()
                }
                "authenticationMetadata" => {
                    e.authentication_metadata =
                        map.next_value::<Option<Value>>()?.filter(|v| !v.is_null())
                }
                _ => {
                    let value: Value = map.next_value()?;
                    unknown.insert(key.into_owned(), value);
                }
            }
        }
        e.source_version = version.or(self.default_version);
        Ok(Partial { event: e, unknown })
    }
}

impl Partial {
    /// Applies the version-specific fields: v1beta1 and v1alpha1 carry `timestamp`
    /// (requestReceivedTimestamp, seconds) and `metadata.creationTimestamp` (stageTimestamp,
    /// seconds), from which kube-apiserver fills empty v1 timestamps. In other versions they are
    /// unknown fields: used the same way, and kept. Last, the event's depth is checked
    /// ([`MAX_DEPTH`](crate::MAX_DEPTH)).
    fn finish(self) -> Result<Event> {
        let Partial {
            event: mut e,
            unknown,
        } = self;
        finish_versions(&mut e, unknown)?;
        depth::check(&e)?;
        Ok(e)
    }
}

fn finish_versions(e: &mut Event, mut unknown: Map<String, Value>) -> Result<()> {
    let legacy = matches!(
        e.source_version,
        Some(ApiVersion::V1Alpha1 | ApiVersion::V1Beta1)
    );
    if e.request_received_timestamp.is_none()
        && let Some(Value::String(s)) = unknown.get("timestamp")
    {
        e.request_received_timestamp =
            Some(s.parse().map_err(|err| Error::field("timestamp", err))?);
    }
    if e.stage_timestamp.is_none()
        && let Some(Value::String(s)) = unknown
            .get("metadata")
            .and_then(|m| m.get("creationTimestamp"))
    {
        e.stage_timestamp = Some(
            s.parse()
                .map_err(|err| Error::field("metadata.creationTimestamp", err))?,
        );
    }
    if legacy {
        unknown.remove("timestamp");
        unknown.remove("metadata");
    }
    if e.source_version == Some(ApiVersion::V1Alpha1)
        && let Some(object_ref) = e.object_ref.as_mut()
    {
        split_v1alpha1_group_version(object_ref);
    }
    e.unknown = unknown;
    Ok(())
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
