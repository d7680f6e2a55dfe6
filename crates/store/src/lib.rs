//! The audit event store: the narrow [`Store`] trait (append a batch idempotently, query with a
//! typed filter and a cursor, aggregate, retention, schema version), the typed query model every
//! backend compiles to its own SQL, the conformance suite every backend passes, and the embedded
//! default backend on DuckDB.
//!
//! The store knows events and the query model; what a report means (which requests count as
//! failed, as RBAC changes, ...) belongs to the callers.

pub mod conformance;
mod duck;
mod error;
mod query;
mod record;
mod sql;
mod store;

pub use duck::{DATABASE_FILE, DuckDbStore};
pub use error::{Error, ErrorKind, Result};
pub use query::{
    Aggregation, AggregationResult, CodeFilter, Cursor, Decision, Field, Filter, GroupCount,
    HistogramBucket, Page, ResourceSelector, SectionCount, SectionSpec, StageSelection, TimeRange,
};
pub use record::{Record, identity_of};
pub use store::{AppendOutcome, Retention, RetentionOutcome, Store};
