//! Secret values taken out of audit events before anything stores, shows or forwards them.
//!
//! A [`Redactor`] replaces, in an event's text:
//! - a Secret's `data` and `stringData` values, in request and response objects, in Secret
//!   lists, watch events, Secrets nested by `kind` in any object, the
//!   `kubectl.kubernetes.io/last-applied-configuration` annotation that repeats them, and the
//!   operations of a JSON patch of a Secret;
//! - a TokenReview's `spec.token`, a TokenRequest's (`serviceaccounts/token`) `status.token`;
//! - the values of credential parameters in the `requestURI` query ([`SECRET_PARAMETERS`]);
//! - the values at configured paths of other resources ([`ExtraPaths`]).
//!
//! Each value becomes a marker, `redacted:hmac-sha256:` and 32 hex digits: the first 128 bits
//! of HMAC-SHA256 under the installation's [`Key`] of the value's bytes (for a Secret's `data`,
//! the bytes its base64 stands for, so `data` and `stringData` of one value give one marker).
//! Equal values give equal markers, so a diff can still say "changed"; telling what a marker
//! stands for needs the key. Everything else in the event keeps its text; a body that had
//! something redacted is written back compactly, its keys in their order.
//!
//! This crate does no I/O but reading and making the key file.

mod body;
mod key;
mod paths;
mod uri;

use std::borrow::Cow;
use std::fmt;

use kubetrail_model::{Event, RawJson};
use ring::hmac;
use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use serde_json::value::RawValue;

use body::{Builtin, Context, Sensitive};
pub use key::{KEY_FILE, Key, KeyError, LoadedKey};
use paths::ExtraTable;
pub use paths::{ExtraPaths, PathError};
pub use uri::SECRET_PARAMETERS;

/// How every marker starts.
pub const MARKER_PREFIX: &str = "redacted:hmac-sha256:";

/// Whether `s` is a marker (so it is not redacted again).
pub fn is_marker(s: &str) -> bool {
    s.strip_prefix(MARKER_PREFIX)
        .is_some_and(|h| h.len() == 32 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// An event whose text could not be rewritten.
#[derive(Debug, thiserror::Error)]
#[error("the event could not be redacted: {0}")]
pub struct Error(#[from] serde_json::Error);

/// Replaces secret values in events by keyed-hash markers.
pub struct Redactor {
    key: hmac::Key,
    builtin: Builtin,
    extra: ExtraTable,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("extra", &self.extra)
            .finish_non_exhaustive()
    }
}

impl Redactor {
    /// A redactor under `key`, with `extra` paths for other resources.
    pub fn new(key: &Key, extra: &[ExtraPaths]) -> Result<Redactor, PathError> {
        Ok(Redactor {
            key: hmac::Key::new(hmac::HMAC_SHA256, &key.0),
            builtin: Builtin::new(),
            extra: ExtraTable::new(extra)?,
        })
    }

    /// The marker of `bytes`.
    pub fn marker(&self, bytes: &[u8]) -> String {
        let tag = hmac::sign(&self.key, bytes);
        format!(
            "{MARKER_PREFIX}{}",
            kubetrail_model::hex(&tag.as_ref()[..16])
        )
    }

    /// The text of `event` (decoded from `text`) with its secrets replaced, or `None` when it
    /// holds none, which is most events: those without bodies or a query cost a few
    /// comparisons. The event's own `requestURI` and bodies are replaced too, so it matches the
    /// text returned.
    pub fn redact_event(&self, event: &mut Event, text: &str) -> Result<Option<String>, Error> {
        let uri = event
            .request_uri
            .as_deref()
            .and_then(|u| self.redact_uri(u));
        let (group, resource, subresource) = match &event.object_ref {
            Some(o) => (
                o.api_group.as_deref().unwrap_or(""),
                o.resource.as_deref().unwrap_or(""),
                o.subresource.as_deref().unwrap_or(""),
            ),
            None => ("", "", ""),
        };
        let implied = match (group, resource, subresource) {
            ("", "secrets", _) => Some(Sensitive::Secret),
            ("authentication.k8s.io", "tokenreviews", "") => Some(Sensitive::TokenReview),
            ("", "serviceaccounts", "token") => Some(Sensitive::TokenRequest),
            _ => None,
        };
        let extra = if self.extra.is_empty() || resource.is_empty() {
            Vec::new()
        } else {
            self.extra.for_resource(group, resource)
        };
        let cx = Context {
            implied,
            extra: &extra,
        };
        let body = |raw: Option<&kubetrail_model::RawJson>| {
            let raw = raw?.get();
            let worth_a_look = cx.implied.is_some()
                || !cx.extra.is_empty()
                || raw.contains("Secret")
                || raw.contains("TokenRe");
            if !worth_a_look {
                return None;
            }
            match serde_json::from_str::<serde_json::Value>(raw) {
                Ok(mut value) => self.body(&mut value, cx).then(|| value.to_string()),
                // JSON no tree can hold (a lone surrogate escape): all of it goes.
                Err(_) => serde_json::to_string(&self.marker(raw.as_bytes())).ok(),
            }
        };
        let request = body(event.request_object.as_ref())
            .map(RawJson::from_text)
            .transpose()?;
        let response = body(event.response_object.as_ref())
            .map(RawJson::from_text)
            .transpose()?;
        if uri.is_none() && request.is_none() && response.is_none() {
            return Ok(None);
        }
        let TopLevel(fields) = serde_json::from_str(text)?;
        let mut out = String::with_capacity(text.len() + 64);
        out.push('{');
        for (i, (name, value)) in fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&serde_json::to_string(name)?);
            out.push(':');
            match (name.as_ref(), &uri, &request, &response) {
                ("requestURI", Some(uri), _, _) => out.push_str(&serde_json::to_string(uri)?),
                ("requestObject", _, Some(body), _) | ("responseObject", _, _, Some(body)) => {
                    out.push_str(body.get())
                }
                _ => out.push_str(value.get()),
            }
        }
        out.push('}');
        if uri.is_some() {
            event.request_uri = uri;
        }
        if request.is_some() {
            event.request_object = request;
        }
        if response.is_some() {
            event.response_object = response;
        }
        Ok(Some(out))
    }
}

/// An event's top-level fields in their order, each value as its text.
struct TopLevel<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for TopLevel<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TopLevel<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an audit event object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = Vec::new();
                while let Some(entry) = map.next_entry::<Cow<'de, str>, &'de RawValue>()? {
                    fields.push(entry);
                }
                Ok(TopLevel(fields))
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests;
