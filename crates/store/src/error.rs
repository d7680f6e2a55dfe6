//! Store errors, with the kind callers branch on (the server maps kinds to HTTP status codes).

/// What kind of failure, for callers that branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed (a bad cursor, an impossible filter).
    Invalid,
    /// The store cannot answer now (I/O, a busy or unreachable database); retrying may work.
    Unavailable,
    /// A bug or corrupted data.
    Internal,
}

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A query or cursor that cannot be answered as asked.
    #[error("invalid query: {0}")]
    Invalid(String),
    /// The database failed.
    #[error("database error while {context}")]
    Database {
        /// What the store was doing.
        context: String,
        /// The database's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The data directory or database file could not be used.
    #[error("data directory {path}")]
    Io {
        /// The path.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
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

impl Error {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid(_) => ErrorKind::Invalid,
            Error::Database { .. } | Error::Io { .. } => ErrorKind::Unavailable,
            Error::SchemaTooNew { .. } => ErrorKind::Internal,
        }
    }

    /// Whether retrying the same call may succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind() == ErrorKind::Unavailable
    }

    /// A database failure while doing `context`.
    pub fn db(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Database {
            context: context.into(),
            source: Box::new(source),
        }
    }
}

/// `Result` with the store's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
