//! Store errors, with the kind callers branch on (the server maps kinds to HTTP status codes).
//!
//! A message names what the store was doing and the cause the database or the file system gave
//! (`database error while committing an append: IO Error: No space left on device`), so a log
//! line or a 503 says why. The cause is part of the message rather than a `source()`, so that
//! printing the whole chain does not say it twice. It is cut to its first line and a few hundred
//! characters: engines add the statement and context on later lines, and nothing of an event's
//! body belongs in a message.

use std::sync::Arc;

/// What kind of failure, for callers that branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed (a bad cursor, an impossible filter).
    Invalid,
    /// The store cannot answer now (I/O, a busy or unreachable database, a damaged store);
    /// retrying, later or elsewhere, may work.
    Unavailable,
    /// A bug or corrupted data.
    Internal,
}

/// The cause of a failure, as the engine or the file system gave it.
pub type Cause = Arc<dyn std::error::Error + Send + Sync>;

/// Longest cause kept in a message, in characters.
const MAX_CAUSE_CHARS: usize = 400;

/// A store failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// A query or cursor that cannot be answered as asked.
    #[error("invalid query: {0}")]
    Invalid(String),
    /// The database failed.
    #[error("database error while {context}: {}", summary(.cause.as_ref()))]
    Database {
        /// What the store was doing.
        context: String,
        /// The database's error.
        cause: Cause,
    },
    /// The store found its data damaged, or its engine failed in a way it does not recover
    /// from (a corrupt block, a failed checkpoint, a database the engine invalidated). Nothing
    /// more is stored until an operator repairs it and restarts kubetrail: an acknowledged
    /// write could not be read back.
    #[error("the store is damaged (found while {context}): {}", summary(.cause.as_ref()))]
    Damaged {
        /// What the store was doing, and the file when there is one.
        context: String,
        /// What the engine said.
        cause: Cause,
    },
    /// The data directory or database file could not be used.
    #[error("data directory {path}: {}", summary(.cause.as_ref()))]
    Io {
        /// The path.
        path: String,
        /// The I/O error.
        cause: Arc<std::io::Error>,
    },
    /// A bug in kubetrail: SQL it compiled that does not hold together. Never answered as
    /// anything else (an empty condition would answer more than was asked).
    #[error("internal error: {0}")]
    Internal(String),
    /// Another process holds the database open for writing (the embedded store allows one):
    /// usually a running `kubetrail serve` over the same data directory.
    #[error(
        "the store {path} is in use by another process{}: the embedded store is opened by one process at a time; ask the running server with --server URL (and a read token), or stop it first",
        .pid.map(|p| format!(" (PID {p}, a running kubetrail serve?)")).unwrap_or_default()
    )]
    InUse {
        /// The database file.
        path: String,
        /// The process holding it, when the engine says.
        pid: Option<u32>,
    },
    /// The database was written by a newer kubetrail.
    #[error(
        "the store's schema version {found} is newer than this kubetrail supports ({supported})"
    )]
    SchemaTooNew {
        /// Version in the database.
        found: u32,
        /// Newest version this build knows.
        supported: u32,
    },
}

/// The first line of `cause`, at most [`MAX_CAUSE_CHARS`] characters.
fn summary(cause: &dyn std::error::Error) -> String {
    let text = cause.to_string();
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    match line.char_indices().nth(MAX_CAUSE_CHARS) {
        Some((end, _)) => format!("{}…", &line[..end]),
        None => line.to_string(),
    }
}

impl Error {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid(_) => ErrorKind::Invalid,
            Error::Database { .. }
            | Error::Damaged { .. }
            | Error::Io { .. }
            | Error::InUse { .. } => ErrorKind::Unavailable,
            Error::SchemaTooNew { .. } | Error::Internal(_) => ErrorKind::Internal,
        }
    }

    /// Whether retrying the same call may succeed. A damaged store is retryable for the
    /// sender (it keeps the batch and tries again later or elsewhere), not for this store
    /// until it is repaired.
    pub fn is_retryable(&self) -> bool {
        self.kind() == ErrorKind::Unavailable
    }

    /// Whether the store is damaged ([`Error::Damaged`]): it must not acknowledge writes, nor
    /// be reported ready, until it is repaired.
    pub fn is_damaged(&self) -> bool {
        matches!(self, Error::Damaged { .. })
    }

    /// A database failure while doing `context`.
    pub fn db(
        context: impl Into<String>,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Database {
            context: context.into(),
            cause: Arc::new(cause),
        }
    }

    /// Damage found while doing `context` (see [`Error::Damaged`]).
    pub fn damaged(
        context: impl Into<String>,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Damaged {
            context: context.into(),
            cause: Arc::new(cause),
        }
    }

    /// The data directory or a file of the store could not be used.
    pub fn io(path: impl Into<String>, cause: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            cause: Arc::new(cause),
        }
    }
}

/// `Result` with the store's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_their_cause() {
        let e = Error::db(
            "committing an append",
            std::io::Error::other("IO Error: No space left on device\nLINE 1: INSERT ..."),
        );
        assert_eq!(
            e.to_string(),
            "database error while committing an append: IO Error: No space left on device"
        );
        assert!(
            std::error::Error::source(&e).is_none(),
            "said once, not twice"
        );
        let e = Error::io("/data", std::io::Error::other("permission denied"));
        assert_eq!(e.to_string(), "data directory /data: permission denied");
        let e = Error::damaged(
            "reading /data/kubetrail.duckdb",
            std::io::Error::other("Data Corruption Error: Corrupt database file"),
        );
        assert!(e.is_damaged() && e.is_retryable());
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.to_string().contains("Corrupt database file"), "{e}");
        assert!(e.clone().is_damaged());
    }

    #[test]
    fn long_causes_are_cut() {
        let e = Error::db("x", std::io::Error::other("é".repeat(1000)));
        let shown = e.to_string();
        assert!(shown.chars().count() < 450, "{}", shown.len());
        assert!(shown.ends_with('…'));
    }
}
