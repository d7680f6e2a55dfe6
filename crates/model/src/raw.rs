//! [`RawJson`]: a JSON value kept as its original text (request and response bodies), so that
//! decoding an event does not build a tree for bodies nobody looks at, and encoding writes
//! them back byte for byte.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// A JSON value as text.
#[derive(Clone)]
pub struct RawJson(Box<RawValue>);

impl RawJson {
    /// `text` as a value, checked to be one JSON value.
    pub fn from_text(text: String) -> serde_json::Result<RawJson> {
        RawValue::from_string(text).map(RawJson)
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// Parses the value. Fails for valid JSON that no [`serde_json::Value`] can hold: a lone
    /// UTF-16 surrogate escape (`"\ud800"`), or nesting beyond serde_json's 128 levels (which
    /// no decoded event has: see [`MAX_DEPTH`](crate::MAX_DEPTH)).
    pub fn to_value(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::from_str(self.0.get())
    }

    /// Whether the value is JSON `null`.
    pub fn is_null(&self) -> bool {
        self.0.get() == "null"
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl fmt::Debug for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

impl Serialize for RawJson {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for RawJson {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Box::<RawValue>::deserialize(d).map(RawJson)
    }
}
