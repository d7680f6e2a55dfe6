//! [`Level`] and [`Stage`]: the two closed enums of the audit API, with their exact spellings.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How much of a request is recorded. Ordered: `None < Metadata < Request < RequestResponse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Do not log events that match this rule.
    None,
    /// Request metadata (user, timestamp, resource, verb, ...) but not request or response body.
    Metadata,
    /// Metadata and the request body, but not the response body.
    Request,
    /// Metadata, request body and response body.
    RequestResponse,
}

impl Level {
    /// Every level, in order.
    pub const ALL: [Level; 4] = [
        Level::None,
        Level::Metadata,
        Level::Request,
        Level::RequestResponse,
    ];

    /// The spelling used on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::None => "None",
            Level::Metadata => "Metadata",
            Level::Request => "Request",
            Level::RequestResponse => "RequestResponse",
        }
    }
}

/// The point in a request's life an event describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// As soon as the audit handler receives the request, before it is handled.
    RequestReceived,
    /// Once the response headers are sent, before the body (long-running requests only).
    ResponseStarted,
    /// Once the response body has been completed.
    ResponseComplete,
    /// The handler panicked.
    Panic,
}

impl Stage {
    /// Every stage, in the order a request passes through them.
    pub const ALL: [Stage; 4] = [
        Stage::RequestReceived,
        Stage::ResponseStarted,
        Stage::ResponseComplete,
        Stage::Panic,
    ];

    /// The spelling used on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Stage::RequestReceived => "RequestReceived",
            Stage::ResponseStarted => "ResponseStarted",
            Stage::ResponseComplete => "ResponseComplete",
            Stage::Panic => "Panic",
        }
    }

    /// Position in [`Stage::ALL`], used for bit sets.
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// An unknown level or stage spelling (matching is case-sensitive, as upstream).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}: expected one of {expected}")]
pub struct UnknownVariant {
    what: &'static str,
    value: String,
    expected: &'static str,
}

macro_rules! string_enum {
    ($ty:ident, $what:literal, $expected:literal) => {
        impl FromStr for $ty {
            type Err = UnknownVariant;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $ty::ALL
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| UnknownVariant {
                        what: $what,
                        value: s.to_string(),
                        expected: $expected,
                    })
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

string_enum!(Level, "level", "None, Metadata, Request, RequestResponse");
string_enum!(
    Stage,
    "stage",
    "RequestReceived, ResponseStarted, ResponseComplete, Panic"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_ordered_and_case_sensitive() {
        assert!(Level::None < Level::Metadata);
        assert!(Level::Request < Level::RequestResponse);
        assert_eq!("Metadata".parse::<Level>(), Ok(Level::Metadata));
        let err = "metadata".parse::<Level>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown level \"metadata\": expected one of None, Metadata, Request, RequestResponse"
        );
    }

    #[test]
    fn stages_round_trip_through_their_spelling() {
        for stage in Stage::ALL {
            assert_eq!(stage.as_str().parse::<Stage>(), Ok(stage));
            assert_eq!(Stage::ALL[stage.index()], stage);
        }
        assert!("Complete".parse::<Stage>().is_err());
    }
}
