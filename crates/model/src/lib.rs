//! The `audit.k8s.io` data model: audit [`Event`]s and [`EventList`]s as kube-apiserver writes
//! them (v1, v1beta1 and v1alpha1), the enums they are built from ([`Level`], [`Stage`]), and the
//! raw [`policy`] types that audit policy files decode into; and the [`Gap`], a stretch of
//! audit log known lost on its way to the store.
//!
//! Decoding is lossless: fields this crate does not know are kept and written back on encoding,
//! so a round trip through [`Event`] changes nothing but the version-specific fields that have a
//! v1 equivalent. Everything is encoded as `audit.k8s.io/v1`.
//!
//! What decodes can be encoded and parsed again: an event nesting deeper than [`MAX_DEPTH`] is
//! refused when it is decoded, and encoding writes bodies back as their text, never parsing
//! them.
//!
//! This crate does no I/O and knows nothing of policies' semantics, storage or HTTP.

mod decode;
mod depth;
mod duration;
mod encode;
mod error;
mod event;
mod gap;
mod hex;
mod level;
pub mod policy;
mod query;
mod raw;
mod request;
mod resources;
pub mod secret_file;
mod stream;
mod time;
mod version;

pub use decode::{
    ListItem, decode_event, decode_event_list, decode_event_list_items, decode_event_value,
};
pub use depth::MAX_DEPTH;
pub use duration::parse_duration;
pub use error::{Error, Result};
pub use event::{Event, EventList, ObjectReference, ResponseStatus, UserInfo};
pub use gap::{Gap, GapReason};
pub use hex::{hex, unhex};
pub use level::{Level, Stage};
pub use query::parse_query;
pub use raw::RawJson;
pub use request::{KNOWN_VERBS, is_long_running, is_verb_token};
pub use resources::{ApiResource, BUILTIN_RESOURCES};
pub use stream::{StreamKind, StreamRequest, is_invisible_format};
pub use time::MicroTime;
pub use version::ApiVersion;
