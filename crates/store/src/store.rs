//! The [`Store`] trait: what every backend provides, and nothing more.

use std::path::PathBuf;
use std::time::Duration;

use crate::{Aggregation, AggregationResult, Cursor, Filter, Page, Record, Result, identity_of};

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AppendOutcome {
    /// Records newly stored.
    pub stored: u64,
    /// Records already present (same identity), or repeated within the batch.
    pub duplicates: u64,
}

/// The batches of an `append_all` with every identity kept once, in its first batch
/// (a record repeated within or across batches is a duplicate of the first), and each batch's
/// outcome before anything is stored: all its records counted as duplicates, for the backend to
/// move the stored ones over.
pub fn first_of_each<'r>(batches: &[&'r [Record]]) -> (Vec<Vec<&'r Record>>, Vec<AppendOutcome>) {
    // Every event of every batch is hashed here once: foldhash rather than SipHash, whose
    // resistance to chosen keys a set that lives for one call does not need.
    let mut seen = foldhash::HashSet::default();
    let uniques = batches
        .iter()
        .map(|b| b.iter().filter(|r| seen.insert(identity_of(r))).collect())
        .collect();
    let outcomes = batches
        .iter()
        .map(|b| AppendOutcome {
            stored: 0,
            duplicates: b.len() as u64,
        })
        .collect();
    (uniques, outcomes)
}

/// What to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    /// Delete events older than this (by event time).
    pub max_age: Option<Duration>,
    /// Delete the oldest events until the store is at most this large.
    pub max_bytes: Option<u64>,
}

/// What retention removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionOutcome {
    /// Events deleted.
    pub deleted: u64,
    /// Store size afterwards, in bytes.
    pub bytes_after: u64,
}

/// What a backend found damaged when it opened, and set aside for recovery instead of letting
/// the engine overwrite it: today, a DuckDB write-ahead log that could not be replayed to its
/// end (events committed in its lost part are not in the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The damaged file.
    pub damaged: PathBuf,
    /// Its bytes as they were found, copied before the engine touched them.
    pub backup: PathBuf,
    /// Its size as it was found, in bytes.
    pub bytes: u64,
    /// What the engine said about it.
    pub reason: String,
}

/// An audit event store. Implementations are safe to share between threads.
pub trait Store: Send + Sync {
    /// Stores a batch. Idempotent: a record is unique by (cluster, auditID, stage) and its time
    /// ([`identity_of`](crate::identity_of)), and storing it again changes nothing. When this
    /// returns `Ok`, the batch is durable.
    fn append(&self, batch: &[Record]) -> Result<AppendOutcome>;

    /// Stores several batches at once (one commit where the backend can), with each batch's
    /// own outcome, as if they were appended one after the other in this order: an event in
    /// two of them counts as stored in the first and as a duplicate in the later one. Either
    /// all are durable when this returns `Ok`, or none is acknowledged.
    fn append_all(&self, batches: &[&[Record]]) -> Result<Vec<AppendOutcome>> {
        batches.iter().map(|b| self.append(b)).collect()
    }

    /// Starts a bulk load (an import): batches appended one after another as with
    /// [`Store::append`], except that they are durable only once [`BulkAppend::finish`]
    /// returns `Ok` — a backend may keep one transaction open over many batches and commit now
    /// and then, which lets it write whole compressed blocks instead of logging every row. An
    /// error, or dropping the load unfinished, may lose the batches since the last commit:
    /// appending them again is safe, as every append is idempotent. The default appends batch
    /// by batch.
    fn bulk(&self) -> Result<Box<dyn BulkAppend + '_>> {
        Ok(Box::new(EachBatch(self)))
    }

    /// Events matching `filter`, newest first, at most `limit`, continuing after `cursor`.
    fn query(&self, filter: &Filter, cursor: Option<&Cursor>, limit: usize) -> Result<Page>;

    /// Counts, top-N and time histograms over the events matching `filter`.
    fn aggregate(&self, filter: &Filter, aggregation: &Aggregation) -> Result<AggregationResult>;

    /// Applies a retention policy.
    fn apply_retention(&self, retention: &Retention) -> Result<RetentionOutcome>;

    /// Number of stored events.
    fn count(&self) -> Result<u64>;

    /// Bytes the store occupies.
    fn size_bytes(&self) -> Result<u64>;

    /// The schema version the store is at.
    fn schema_version(&self) -> Result<u32>;

    /// Whether the store can store and give back events now, for readiness: reads stored data
    /// (the newest event), not only a ping, and answers the [`Error::Damaged`](crate::Error)
    /// a backend remembers once it found its data damaged. The default reads one page of one
    /// event.
    fn check(&self) -> Result<()> {
        self.query(&Filter::default(), None, 1).map(|_| ())
    }

    /// What the backend found damaged and set aside when it opened (`None`: nothing), for
    /// the operator and a metric. The default has nothing to report.
    fn recovery_report(&self) -> Option<RecoveryReport> {
        None
    }
}

/// A bulk load in progress, from [`Store::bulk`].
pub trait BulkAppend {
    /// Appends a batch; its outcome is final, but the batch is durable only after
    /// [`BulkAppend::finish`].
    fn append(&mut self, batch: &[Record]) -> Result<AppendOutcome>;

    /// Makes everything appended durable.
    fn finish(self: Box<Self>) -> Result<()>;
}

/// The default bulk load: every batch its own append, durable at once.
struct EachBatch<'s, S: Store + ?Sized>(&'s S);

impl<S: Store + ?Sized> BulkAppend for EachBatch<'_, S> {
    fn append(&mut self, batch: &[Record]) -> Result<AppendOutcome> {
        self.0.append(batch)
    }

    fn finish(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}
