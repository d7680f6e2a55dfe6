//! Decoding errors. Each names the problem and, where there is one, the field it was found in.

/// Why a line, object or list could not be decoded as an audit event.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is not JSON, or not complete JSON (a truncated line).
    #[error("malformed JSON: {0}")]
    Json(serde_json::Error),
    /// The input is JSON but not an object.
    #[error("expected a JSON object, found {found}")]
    NotAnObject {
        /// What was found instead, e.g. "an array".
        found: &'static str,
    },
    /// A known field holds a value of the wrong type or an unknown enum value.
    #[error("field `{field}`: {reason}")]
    Field {
        /// The field path, e.g. `objectRef` or `items[3].stage`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl Error {
    pub(crate) fn field(field: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Error::Field {
            field: field.into(),
            reason: reason.to_string(),
        }
    }

    /// Prefixes the field path of a [`Error::Field`] (used for list items).
    pub(crate) fn within(self, prefix: &str) -> Self {
        match self {
            Error::Field { field, reason } => Error::Field {
                field: format!("{prefix}.{field}"),
                reason,
            },
            Error::NotAnObject { found } => Error::Field {
                field: prefix.to_string(),
                reason: format!("expected a JSON object, found {found}"),
            },
            other => other,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
