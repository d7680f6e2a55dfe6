//! A [`Store`] decorator that times every operation and tells an [`Observer`] how long it took
//! and how it ended: the server wraps its store in one, so the pages, the API and ingest are
//! all measured in one place (`kubetrail_store_operation_seconds`) instead of each handler
//! timing its own calls.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{
    Aggregation, AggregationResult, AlertField, AlertFilter, AlertRecord, AppendOutcome,
    BulkAppend, Cursor, ErrorKind, Filter, Page, Record, RecoveryReport, Result, Retention,
    RetentionOutcome, Store,
};

/// A store operation, as metrics name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// [`Store::append`] and [`Store::append_all`].
    Append,
    /// [`Store::bulk`]: starting a bulk load.
    Bulk,
    /// [`Store::query`].
    Query,
    /// [`Store::aggregate`].
    Aggregate,
    /// [`Store::apply_retention`].
    Retention,
    /// [`Store::count`], [`Store::size_bytes`], [`Store::schema_version`].
    Stats,
    /// [`Store::check`].
    Check,
}

impl Operation {
    /// Every operation.
    pub const ALL: [Operation; 7] = [
        Operation::Append,
        Operation::Bulk,
        Operation::Query,
        Operation::Aggregate,
        Operation::Retention,
        Operation::Stats,
        Operation::Check,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Append => "append",
            Operation::Bulk => "bulk",
            Operation::Query => "query",
            Operation::Aggregate => "aggregate",
            Operation::Retention => "retention",
            Operation::Stats => "stats",
            Operation::Check => "check",
        }
    }
}

/// Told of every operation a [`Metered`] store ran.
pub trait Observer: Send + Sync {
    /// `op` took `elapsed` and ended well (`Ok`) or with an error of that kind.
    fn observe(
        &self,
        op: Operation,
        elapsed: Duration,
        outcome: std::result::Result<(), ErrorKind>,
    );
}

/// `inner`, with every operation timed and reported to the observer.
pub struct Metered {
    inner: Arc<dyn Store>,
    observer: Arc<dyn Observer>,
}

impl Metered {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Store>, observer: Arc<dyn Observer>) -> Metered {
        Metered { inner, observer }
    }

    fn timed<T>(&self, op: Operation, f: impl FnOnce(&dyn Store) -> Result<T>) -> Result<T> {
        let started = Instant::now();
        let result = f(self.inner.as_ref());
        let outcome = match &result {
            Ok(_) => Ok(()),
            Err(e) => Err(e.kind()),
        };
        self.observer.observe(op, started.elapsed(), outcome);
        result
    }
}

impl Store for Metered {
    fn append(&self, batch: &[Record]) -> Result<AppendOutcome> {
        self.timed(Operation::Append, |s| s.append(batch))
    }
    fn append_all(&self, batches: &[&[Record]]) -> Result<Vec<AppendOutcome>> {
        self.timed(Operation::Append, |s| s.append_all(batches))
    }
    fn bulk(&self) -> Result<Box<dyn BulkAppend + '_>> {
        let started = Instant::now();
        let result = self.inner.bulk();
        let outcome = result.as_ref().map(|_| ()).map_err(|e| e.kind());
        self.observer
            .observe(Operation::Bulk, started.elapsed(), outcome);
        result
    }
    fn query(&self, filter: &Filter, cursor: Option<&Cursor>, limit: usize) -> Result<Page> {
        self.timed(Operation::Query, |s| s.query(filter, cursor, limit))
    }
    fn query_heads(&self, filter: &Filter, cursor: Option<&Cursor>, limit: usize) -> Result<Page> {
        self.timed(Operation::Query, |s| s.query_heads(filter, cursor, limit))
    }
    fn aggregate(&self, filter: &Filter, aggregation: &Aggregation) -> Result<AggregationResult> {
        self.timed(Operation::Aggregate, |s| s.aggregate(filter, aggregation))
    }
    fn apply_retention(&self, retention: &Retention) -> Result<RetentionOutcome> {
        self.timed(Operation::Retention, |s| s.apply_retention(retention))
    }
    fn count(&self) -> Result<u64> {
        self.timed(Operation::Stats, |s| s.count())
    }
    fn size_bytes(&self) -> Result<u64> {
        self.timed(Operation::Stats, |s| s.size_bytes())
    }
    fn schema_version(&self) -> Result<u32> {
        self.timed(Operation::Stats, |s| s.schema_version())
    }
    fn check(&self) -> Result<()> {
        self.timed(Operation::Check, |s| s.check())
    }
    fn recovery_report(&self) -> Option<RecoveryReport> {
        self.inner.recovery_report()
    }
    fn append_alerts(&self, alerts: &[AlertRecord]) -> Result<usize> {
        self.timed(Operation::Append, |s| s.append_alerts(alerts))
    }
    fn query_alerts(&self, filter: &AlertFilter, limit: usize) -> Result<Vec<AlertRecord>> {
        self.timed(Operation::Query, |s| s.query_alerts(filter, limit))
    }
    fn count_alerts(&self, filter: &AlertFilter, field: AlertField) -> Result<Vec<(String, u64)>> {
        self.timed(Operation::Aggregate, |s| s.count_alerts(filter, field))
    }
    fn set_chain(&self, chain: std::sync::Arc<crate::chain::Chain>) -> Result<()> {
        self.inner.set_chain(chain)
    }
    fn chain_links(&self) -> Result<Vec<crate::chain::Link>> {
        self.timed(Operation::Query, |s| s.chain_links())
    }
    fn chain_public_keys(&self) -> Result<Vec<String>> {
        self.timed(Operation::Query, |s| s.chain_public_keys())
    }
    fn chain_entries(
        &self,
        cluster: &str,
        batches: &[i64],
    ) -> Result<Vec<(i64, crate::chain::Entry)>> {
        self.timed(Operation::Query, |s| s.chain_entries(cluster, batches))
    }
    fn chain_events(
        &self,
        cluster: &str,
        batches: &[i64],
        each: &mut dyn FnMut(i64, Record),
    ) -> Result<()> {
        self.timed(Operation::Query, |s| s.chain_events(cluster, batches, each))
    }
    fn chain_strays(&self, limit: usize, settled_before: i64) -> Result<crate::Strays> {
        self.timed(Operation::Query, |s| s.chain_strays(limit, settled_before))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::Error;

    #[derive(Default)]
    struct Seen(Mutex<Vec<(Operation, std::result::Result<(), ErrorKind>)>>);

    impl Observer for Seen {
        fn observe(&self, op: Operation, _: Duration, outcome: std::result::Result<(), ErrorKind>) {
            self.0.lock().unwrap().push((op, outcome));
        }
    }

    /// Answers queries with nothing and refuses everything else as unavailable.
    struct Empty;

    impl Store for Empty {
        fn append(&self, _: &[Record]) -> Result<AppendOutcome> {
            Err(Error::db("appending", std::io::Error::other("down")))
        }
        fn query(&self, _: &Filter, _: Option<&Cursor>, _: usize) -> Result<Page> {
            Ok(Page {
                records: Vec::new(),
                next: None,
            })
        }
        fn aggregate(&self, _: &Filter, _: &Aggregation) -> Result<AggregationResult> {
            Err(Error::Invalid("no".into()))
        }
        fn apply_retention(&self, _: &Retention) -> Result<RetentionOutcome> {
            Ok(RetentionOutcome::default())
        }
        fn count(&self) -> Result<u64> {
            Ok(0)
        }
        fn size_bytes(&self) -> Result<u64> {
            Ok(0)
        }
        fn schema_version(&self) -> Result<u32> {
            Ok(1)
        }
    }

    #[test]
    fn every_operation_is_reported_with_how_it_ended() {
        let seen = Arc::new(Seen::default());
        let store = Metered::new(Arc::new(Empty), seen.clone());
        assert!(store.query(&Filter::default(), None, 1).is_ok());
        assert!(store.append(&[]).is_err());
        assert!(
            store
                .aggregate(
                    &Filter::default(),
                    &Aggregation::CountBy {
                        fields: vec![],
                        limit: None
                    }
                )
                .is_err()
        );
        // The default check is a query of the inner store, reported once, as a check.
        assert!(store.check().is_ok());
        assert_eq!(
            *seen.0.lock().unwrap(),
            [
                (Operation::Query, Ok(())),
                (Operation::Append, Err(ErrorKind::Unavailable)),
                (Operation::Aggregate, Err(ErrorKind::Invalid)),
                (Operation::Check, Ok(())),
            ]
        );
    }
}
