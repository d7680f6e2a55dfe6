//! The audit event store: the narrow [`Store`] trait (append a batch idempotently, query with a
//! typed filter and a cursor, aggregate, retention, schema version), the typed query model every
//! backend compiles to its own SQL ([`sql`]), and how arriving events become records
//! ([`intake`]). The conformance suite every backend passes is test support, in
//! `kubetrail-testsuite`. The backends live in their own crates (`kubetrail-store-duckdb`, ...), so that only what
//! needs a database engine compiles and links one.
//!
//! The store knows events and the query model; what a report means (which requests count as
//! failed, as RBAC changes, ...) belongs to the callers.

pub mod alerts;
pub mod chain;
mod error;
pub mod intake;
mod intersect;
pub mod metered;
mod query;
mod record;
mod scope;
pub mod sql;
mod store;
pub mod text;

pub use alerts::{AlertField, AlertFilter, AlertRecord};
pub use error::{Cause, Error, ErrorKind, Result};
pub use intersect::Unrepresentable;
pub use kubetrail_model::is_long_running;
pub use query::{
    Aggregation, AggregationResult, CodeFilter, Cursor, Decision, Field, Filter, GroupCount,
    HistogramBucket, Page, ResourceSelector, SectionCount, SectionSpec, StageSelection, TimeRange,
};
pub use record::{
    Record, content_hash, counted_flags, identity_of, same_content, stands_for_request,
};
pub use scope::{OutOfScope, ReadScope};
pub use store::{
    AppendOutcome, AppendPlan, BulkAppend, RecoveryReport, Retention, RetentionOutcome, Store,
    StoredIdentity, Strays, plan_append, stored_identity,
};
