//! The embedded default backend: one DuckDB file under the data directory, no setup.
//!
//! Appends go through one transaction per batch. When the batch's time span holds no stored
//! events (the usual case when importing or ingesting in time order), rows are appended
//! directly; otherwise the batch's identities (cluster, auditID, stage, time) go to a probe
//! table, joined with the events in that time span (which DuckDB's zone maps keep cheap) to
//! find the stored events that claim them; a replayed event has the same time (its
//! stageTimestamp), so it falls in the span. What is stored then is decided by
//! [`kubetrail_store::plan_append`]: the same identity and content is a duplicate, the same
//! identity with other content a conflict that is stored too.
//! Imports go through [`DuckDbBulk`] instead: two connections, each with a transaction open
//! over many batches.

mod alerts;
mod bulk;
mod chain;
mod rollup;
pub mod testing;
mod wal;
mod write;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Mutex, MutexGuard, OnceLock};

pub use bulk::{BULK_COMMIT_ROWS, DuckDbBulk};
use duckdb::types::Value;
use duckdb::{Connection, params_from_iter};
use kubetrail_store::sql::{self, Dialect, GROUP_SEP, Param};
use kubetrail_store::{
    Aggregation, AggregationResult, AlertField, AlertFilter, AlertRecord, AppendOutcome,
    BulkAppend, Cursor, Error, Filter, GroupCount, HistogramBucket, Page, Record, RecoveryReport,
    Result, Retention, RetentionOutcome, SectionSpec, Store,
};
use write::RecentStarts;

/// File name of the database inside the data directory.
pub const DATABASE_FILE: &str = "kubetrail.duckdb";

/// Schema migrations, in order; the store is at the version of the last one applied.
const MIGRATIONS: &[(u32, &str)] = &[
    (
        1,
        "CREATE TABLE events (
        cluster VARCHAR NOT NULL,
        audit_id VARCHAR NOT NULL,
        stage VARCHAR NOT NULL,
        level VARCHAR NOT NULL,
        ts BIGINT NOT NULL,
        request_ts BIGINT,
        received BIGINT NOT NULL,
        verb VARCHAR NOT NULL,
        username VARCHAR NOT NULL,
        groups VARCHAR NOT NULL,
        impersonated_user VARCHAR NOT NULL,
        source_ip VARCHAR NOT NULL,
        user_agent VARCHAR NOT NULL,
        api_group VARCHAR NOT NULL,
        api_version VARCHAR NOT NULL,
        resource VARCHAR NOT NULL,
        subresource VARCHAR NOT NULL,
        namespace VARCHAR NOT NULL,
        name VARCHAR NOT NULL,
        code INTEGER NOT NULL,
        decision VARCHAR NOT NULL,
        reason VARCHAR NOT NULL,
        request_uri VARCHAR NOT NULL,
        raw VARCHAR NOT NULL USING COMPRESSION zstd,
        counted BOOLEAN NOT NULL
    );",
    ),
    (2, rollup::MIGRATION),
    // Distinct events that claim one identity are told apart by their content hash; events
    // stored before have 0, and are compared by their text when a record claims their identity.
    (
        3,
        "ALTER TABLE events ADD COLUMN content_hash BIGINT DEFAULT 0;",
    ),
    (4, alerts::MIGRATION),
    (5, rollup::MIGRATION_IMPERSONATED),
    (6, chain::MIGRATION),
];

/// Connections that answer queries, besides the one that writes.
const READERS: usize = 2;

/// The DuckDB store.
pub struct DuckDbStore {
    conn: Mutex<Connection>,
    /// Connections to the same database for queries: a long report neither waits for nor holds
    /// up a commit, and several questions of one page can run at once.
    readers: Vec<Mutex<Connection>>,
    next_reader: std::sync::atomic::AtomicUsize,
    path: Option<PathBuf>,
    /// Recently committed ResponseStarted events (cluster, auditID): a long-running request's
    /// completion usually finds its start here instead of in a query.
    started: Mutex<RecentStarts>,
    /// The rollup's watermark: hours before it are counted there.
    rollup_through: std::sync::atomic::AtomicI64,
    /// Rows in `rollup`, and how many there were after the last compaction.
    rollup_rows: std::sync::atomic::AtomicU64,
    rollup_compacted: std::sync::atomic::AtomicU64,
    /// At least the time of the newest stored event (`i64::MIN` when empty): a batch entirely
    /// newer needs no look for repeats.
    newest: std::sync::atomic::AtomicI64,
    /// The damage found while working, if any: every later append is refused with it.
    failure: OnceLock<Error>,
    /// What was set aside at open.
    recovery: Option<RecoveryReport>,
    /// The chain appends extend, once [`Store::set_chain`] gave one.
    chain: OnceLock<std::sync::Arc<kubetrail_store::chain::Chain>>,
}

/// The store error for a DuckDB failure: [`Error::Damaged`], naming the file, when DuckDB says
/// the data is damaged or the database unusable; else a database error.
fn classify(path: Option<&Path>, context: &str, e: duckdb::Error) -> Error {
    if wal::is_damage(&e) {
        let context = match path {
            Some(p) => format!("{context} in {}", p.display()),
            None => context.to_string(),
        };
        Error::damaged(context, e)
    } else {
        Error::db(context, e)
    }
}

impl DuckDbStore {
    /// Opens (creating if needed) the store in `data_dir`, migrating its schema. A write-ahead
    /// log left by a crash is replayed; one that does not replay to its end is kept aside,
    /// logged at ERROR and reported by [`Store::recovery_report`] (see the `wal` module).
    pub fn open(data_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| Error::io(data_dir.display().to_string(), e))?;
        let path = data_dir.join(DATABASE_FILE);
        let (conn, recovery) = wal::open(&path)?;
        if let Some(r) = &recovery {
            tracing::error!(
                wal = %r.damaged.display(),
                backup = %r.backup.display(),
                bytes = r.bytes,
                reason = %r.reason,
                "the write-ahead log of {} could not be replayed to its end: events committed in \
                 its unreadable part are not in the store; its bytes as found are kept in the backup",
                path.display()
            );
        }
        let mut store = Self::init(conn, Some(path))?;
        store.recovery = recovery;
        Ok(store)
    }

    /// A store in memory, for tests.
    pub fn open_in_memory() -> Result<Self> {
        let conn = Connection::open_in_memory().map_err(|e| Error::db("opening in memory", e))?;
        Self::init(conn, None)
    }

    fn init(conn: Connection, path: Option<PathBuf>) -> Result<Self> {
        let early = |context: &str, e: duckdb::Error| classify(path.as_deref(), context, e);
        // Checkpoints compress whole row groups; with DuckDB's 16 MB default a steady stream of
        // batches pays that again and again. Commits stay durable through the WAL either way.
        conn.execute_batch(
            "SET checkpoint_threshold = '256MB';
             CREATE TABLE IF NOT EXISTS kubetrail_meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);",
        )
        .map_err(|e| early("creating the metadata table", e))?;
        let readers = (0..READERS)
            .map(|_| conn.try_clone().map(Mutex::new))
            .collect::<duckdb::Result<Vec<_>>>()
            .map_err(|e| early("opening reader connections", e))?;
        let store = DuckDbStore {
            readers,
            next_reader: std::sync::atomic::AtomicUsize::new(0),
            conn: Mutex::new(conn),
            path,
            started: Mutex::new(RecentStarts::default()),
            rollup_through: std::sync::atomic::AtomicI64::new(0),
            rollup_rows: std::sync::atomic::AtomicU64::new(0),
            rollup_compacted: std::sync::atomic::AtomicU64::new(0),
            newest: std::sync::atomic::AtomicI64::new(i64::MAX),
            failure: OnceLock::new(),
            recovery: None,
            chain: OnceLock::new(),
        };
        store.migrate()?;
        let conn = store.lock();
        bulk::recount_if_stale(&conn)
            .map_err(|e| store.fail("counting the hours of an interrupted import", e))?;
        let through = rollup::through(&conn).map_err(|e| store.fail("reading the rollup", e))?;
        let rows = rollup::rows(&conn).map_err(|e| store.fail("reading the rollup", e))?;
        let newest: Option<i64> = conn
            .query_row("SELECT max(ts) FROM events", [], |row| row.get(0))
            .map_err(|e| store.fail("reading the newest event", e))?;
        drop(conn);
        store.newest.store(newest.unwrap_or(i64::MIN), Relaxed);
        store.rollup_through.store(through, Relaxed);
        store.rollup_rows.store(rows, Relaxed);
        store.rollup_compacted.store(rows, Relaxed);
        Ok(store)
    }

    /// The store error for a DuckDB failure while doing `context`. Damage (see
    /// [`wal::is_damage`]) is remembered: from then on appends are refused with it and
    /// [`Store::check`] answers it, since what is acknowledged could not be read back.
    pub(crate) fn fail(&self, context: impl Into<String>, e: duckdb::Error) -> Error {
        let error = classify(self.path.as_deref(), &context.into(), e);
        if error.is_damaged() && self.failure.set(error.clone()).is_ok() {
            tracing::error!(
                error = %error,
                "the store is damaged: batches are refused until it is repaired and kubetrail restarted"
            );
        }
        error
    }

    /// The damage found earlier, if any.
    pub(crate) fn failed(&self) -> Result<()> {
        match self.failure.get() {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable: DuckDB rolls back an
        // unfinished transaction when the next one begins.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A reader connection: a free one if there is, else the next in turn.
    fn read(&self) -> MutexGuard<'_, Connection> {
        for reader in &self.readers {
            if let Ok(guard) = reader.try_lock() {
                return guard;
            }
        }
        let i = self
            .next_reader
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            % self.readers.len();
        self.readers[i]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn migrate(&self) -> Result<()> {
        let current = self.schema_version()?;
        let newest = MIGRATIONS.last().map_or(0, |m| m.0);
        if current > newest {
            return Err(Error::SchemaTooNew {
                found: current,
                supported: newest,
            });
        }
        let conn = self.lock();
        for (version, ddl) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
            let script = format!(
                "BEGIN TRANSACTION;\n{ddl}\nINSERT OR REPLACE INTO kubetrail_meta VALUES ('schema_version', '{version}');\nCOMMIT;"
            );
            conn.execute_batch(&script)
                .map_err(|e| self.fail(format!("migrating to schema version {version}"), e))?;
        }
        Ok(())
    }
}

fn bind(params: &[Param]) -> Vec<Value> {
    params
        .iter()
        .map(|p| match p {
            Param::Int(i) => Value::BigInt(*i),
            Param::Text(s) => Value::Text(s.clone()),
        })
        .collect()
}

fn record_from_row(row: &duckdb::Row<'_>) -> duckdb::Result<Record> {
    let text = |i: usize| row.get::<_, String>(i);
    let stage: String = text(2)?;
    let level: String = text(3)?;
    let groups: String = text(9)?;
    let code: i32 = row.get(19)?;
    Ok(Record {
        cluster: text(0)?,
        audit_id: text(1)?,
        stage: stage.parse().ok(),
        level: level.parse().ok(),
        ts_micros: row.get(4)?,
        request_ts_micros: row.get(5)?,
        received_micros: row.get(6)?,
        verb: text(7)?,
        user: text(8)?,
        groups: groups
            .split(GROUP_SEP)
            .filter(|g| !g.is_empty())
            .map(str::to_string)
            .collect(),
        impersonated_user: text(10)?,
        source_ip: text(11)?,
        user_agent: text(12)?,
        api_group: text(13)?,
        api_version: text(14)?,
        resource: text(15)?,
        subresource: text(16)?,
        namespace: text(17)?,
        name: text(18)?,
        code: (code != 0).then_some(code),
        decision: text(20)?,
        reason: text(21)?,
        request_uri: text(22)?,
        raw: text(23)?,
        content_hash: row.get::<_, Option<i64>>(24)?.unwrap_or(0),
    })
}

impl DuckDbStore {
    /// Sections: every section's total and top groups from one scan.
    fn sections(
        &self,
        dialect: Dialect,
        table: &str,
        filter: &Filter,
        specs: &[SectionSpec],
    ) -> duckdb::Result<AggregationResult> {
        if specs.is_empty() {
            return Ok(AggregationResult::Sections(Vec::new()));
        }
        let (q, fields) = sql::select_sections(dialect, table, filter, specs);
        let conn = self.read();
        let mut stmt = conn.prepare(&q.text)?;
        let rows: Vec<(Vec<String>, Vec<u64>)> = stmt
            .query_map(params_from_iter(bind(&q.params)), |row| {
                let keys = (0..fields.len())
                    .map(|j| {
                        row.get::<_, Option<String>>(j)
                            .map(Option::unwrap_or_default)
                    })
                    .collect::<duckdb::Result<Vec<_>>>()?;
                let counts = (0..specs.len())
                    .map(|i| row.get::<_, i64>(fields.len() + i).map(|n| n as u64))
                    .collect::<duckdb::Result<Vec<_>>>()?;
                Ok((keys, counts))
            })?
            .collect::<duckdb::Result<_>>()?;
        Ok(AggregationResult::Sections(sql::sections_from_groups(
            specs, &fields, &rows,
        )))
    }
}

impl DuckDbStore {
    /// A page of events newest first; with `heads`, the text only of impersonated requests.
    fn page(
        &self,
        filter: &Filter,
        cursor: Option<&Cursor>,
        limit: usize,
        heads: bool,
    ) -> Result<Page> {
        filter.validate().map_err(Error::Invalid)?;
        let columns = sql::page_columns(heads);
        let conn = self.read();
        // Newest first in time slices that widen (1 h, 6 h, 1 d, 7 d, 30 d, then the rest):
        // a page of recent events then reads only the row groups of its slice, which DuckDB's
        // zone maps on `ts` select, instead of sorting every match of the whole table.
        let newest: Option<i64> = match cursor {
            Some(c) => Some(c.ts_micros),
            None => conn
                .query_row("SELECT max(ts) FROM events", [], |row| row.get(0))
                .map_err(|e| self.fail("finding the newest event", e))?,
        };
        let Some(newest) = newest else {
            return Ok(Page::default());
        };
        let floor = filter.time.from_micros;
        let mut hi = filter
            .time
            .to_micros
            .map_or(newest + 1, |to| to.min(newest + 1));
        let mut records: Vec<Record> = Vec::new();
        const HOUR: i64 = 3_600_000_000;
        for width in [
            HOUR,
            6 * HOUR,
            24 * HOUR,
            7 * 24 * HOUR,
            30 * 24 * HOUR,
            i64::MAX,
        ] {
            let lo = hi.checked_sub(width).filter(|_| width != i64::MAX);
            let lo = match (lo, floor) {
                (Some(l), Some(f)) => Some(l.max(f)),
                (l, f) => l.or(f),
            };
            let mut slice = filter.clone();
            slice.time = kubetrail_store::TimeRange {
                from_micros: lo,
                to_micros: Some(hi),
            };
            let want = limit + 1 - records.len();
            let sql = sql::select_page(Dialect::DuckDb, "events", &slice, cursor, want, &columns);
            let mut stmt = conn
                .prepare(&sql.text)
                .map_err(|e| self.fail("preparing a query", e))?;
            let found: Vec<Record> = stmt
                .query_map(params_from_iter(bind(&sql.params)), record_from_row)
                .and_then(|rows| rows.collect())
                .map_err(|e| self.fail("querying events", e))?;
            records.extend(found);
            let exhausted = match (lo, floor) {
                (None, _) => true,
                (Some(l), Some(f)) => l <= f,
                _ => false,
            };
            if records.len() > limit || exhausted {
                break;
            }
            hi = lo.unwrap_or(i64::MIN);
        }
        Ok(Page::from_overfetch(records, limit))
    }
}

impl DuckDbStore {
    /// An aggregation, from the rollup where it can answer and `rollup_allowed`.
    fn aggregate_from(
        &self,
        filter: &Filter,
        aggregation: &Aggregation,
        rollup_allowed: bool,
    ) -> Result<AggregationResult> {
        filter.validate().map_err(Error::Invalid)?;
        // Whole hours from the rollup where it can answer.
        let counted = rollup::source(filter, aggregation, self.rollup_through.load(Relaxed))
            .filter(|_| rollup_allowed);

        let (dialect, table, filter) = match &counted {
            Some((table, rest)) => (Dialect::DuckDbCounted, table.as_str(), rest),
            None => (Dialect::DuckDb, "events", filter),
        };
        if let Aggregation::Sections(specs) = aggregation {
            for spec in specs {
                spec.filter.validate().map_err(Error::Invalid)?;
            }
            let specs = match counted {
                Some(_) => rollup::sections_for(specs),
                None => specs.clone(),
            };
            return self
                .sections(dialect, table, filter, &specs)
                .map_err(|e| self.fail("aggregating sections", e));
        }
        let sql = sql::select_aggregation(dialect, table, filter, aggregation);
        let conn = self.read();
        let mut stmt = conn
            .prepare(&sql.text)
            .map_err(|e| self.fail("preparing an aggregation", e))?;
        let params = params_from_iter(bind(&sql.params));
        let result = match aggregation {
            Aggregation::CountBy { fields, .. } => {
                let n = fields.len();
                let groups = stmt
                    .query_map(params, |row| {
                        let keys = (0..n)
                            .map(|i| row.get::<_, String>(i))
                            .collect::<duckdb::Result<Vec<_>>>()?;
                        let count: i64 = row.get(n)?;
                        Ok(GroupCount {
                            keys,
                            count: count as u64,
                        })
                    })
                    .and_then(|rows| rows.collect::<duckdb::Result<Vec<_>>>());
                groups.map(AggregationResult::Groups)
            }
            Aggregation::CountEach { fields } => {
                let n = fields.len();
                let rows = stmt
                    .query_map(params, |row| {
                        let keys = (0..n)
                            .map(|i| row.get::<_, Option<String>>(i))
                            .collect::<duckdb::Result<Vec<_>>>()?;
                        let marks = (0..n)
                            .map(|i| row.get::<_, i64>(n + i))
                            .collect::<duckdb::Result<Vec<_>>>()?;
                        let count: i64 = row.get(2 * n)?;
                        Ok((keys, marks, count as u64))
                    })
                    .and_then(|rows| rows.collect::<duckdb::Result<Vec<_>>>());
                rows.map(|rows| {
                    let mut total = 0;
                    let mut groups: Vec<Vec<GroupCount>> = vec![Vec::new(); n];
                    for (keys, marks, count) in rows {
                        match marks.iter().position(|m| *m == 0) {
                            Some(i) => groups[i].push(GroupCount {
                                keys: vec![keys[i].clone().unwrap_or_default()],
                                count,
                            }),
                            None => total = count,
                        }
                    }
                    for g in &mut groups {
                        g.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.keys.cmp(&b.keys)));
                    }
                    AggregationResult::Each { total, groups }
                })
            }
            Aggregation::Sections(_) => unreachable!("answered above"),
            Aggregation::Histogram { by, .. } => {
                let split = by.is_some();
                stmt.query_map(params, |row| {
                    let key: String = row.get(1)?;
                    let count: i64 = row.get(2)?;
                    Ok(HistogramBucket {
                        start_micros: row.get(0)?,
                        key: split.then_some(key),
                        count: count as u64,
                    })
                })
                .and_then(|rows| rows.collect::<duckdb::Result<Vec<_>>>())
                .map(AggregationResult::Histogram)
            }
        };
        result.map_err(|e| self.fail("aggregating events", e))
    }
}

impl Store for DuckDbStore {
    fn append(&self, batch: &[Record]) -> Result<AppendOutcome> {
        let mut outcomes = self.append_all(&[batch])?;
        Ok(outcomes.pop().unwrap_or_default())
    }

    /// One transaction for all batches (group commit: the server hands over the batches of
    /// concurrent requests together), so the fixed cost of a commit is paid once.
    fn append_all(&self, batches: &[&[Record]]) -> Result<Vec<AppendOutcome>> {
        self.append_batches(batches)
    }

    fn bulk(&self) -> Result<Box<dyn BulkAppend + '_>> {
        Ok(Box::new(DuckDbBulk::new(self, BULK_COMMIT_ROWS)?))
    }

    fn query(&self, filter: &Filter, cursor: Option<&Cursor>, limit: usize) -> Result<Page> {
        self.page(filter, cursor, limit, false)
    }

    fn query_heads(&self, filter: &Filter, cursor: Option<&Cursor>, limit: usize) -> Result<Page> {
        self.page(filter, cursor, limit, true)
    }

    fn aggregate(&self, filter: &Filter, aggregation: &Aggregation) -> Result<AggregationResult> {
        self.aggregate_from(filter, aggregation, true)
    }

    fn apply_retention(&self, retention: &Retention) -> Result<RetentionOutcome> {
        self.retain(retention)
    }
    fn append_alerts(&self, alerts: &[AlertRecord]) -> Result<usize> {
        self.store_alerts(alerts)
    }
    fn query_alerts(&self, filter: &AlertFilter, limit: usize) -> Result<Vec<AlertRecord>> {
        self.alerts(filter, limit)
    }
    fn count_alerts(&self, filter: &AlertFilter, field: AlertField) -> Result<Vec<(String, u64)>> {
        self.alert_counts(filter, field)
    }
    fn set_chain(&self, chain: std::sync::Arc<kubetrail_store::chain::Chain>) -> Result<()> {
        self.keep_public_key(chain.key_id(), &chain.public_key_pem())?;
        // Under the writing lock: no append runs between reading the heads and using them.
        let _writing = self.lock();
        chain.resume(&self.links()?);
        self.chain
            .set(chain)
            .map_err(|_| Error::Invalid("the store is linked into a chain already".into()))
    }
    fn chain_links(&self) -> Result<Vec<kubetrail_store::chain::Link>> {
        self.links()
    }
    fn chain_public_keys(&self) -> Result<Vec<String>> {
        self.public_keys()
    }
    fn chain_entries(
        &self,
        cluster: &str,
        batches: &[i64],
    ) -> Result<Vec<(i64, kubetrail_store::chain::Entry)>> {
        self.entries(cluster, batches)
    }
    fn chain_events(
        &self,
        cluster: &str,
        batches: &[i64],
        each: &mut dyn FnMut(i64, Record),
    ) -> Result<()> {
        self.chained_events(cluster, batches, each)
    }
    fn chain_strays(&self, limit: usize, settled_before: i64) -> Result<kubetrail_store::Strays> {
        self.strays(limit, settled_before)
    }
    fn count(&self) -> Result<u64> {
        let conn = self.read();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM events", [], |row| row.get(0))
            .map_err(|e| self.fail("counting events", e))?;
        Ok(n as u64)
    }

    fn size_bytes(&self) -> Result<u64> {
        match &self.path {
            Some(path) => {
                let mut total = 0;
                let wal = path.with_extension("duckdb.wal");
                for p in [path.clone(), wal] {
                    if let Ok(meta) = std::fs::metadata(&p) {
                        total += meta.len();
                    }
                }
                Ok(total)
            }
            None => {
                // In memory there is no file: count the stored JSON, the bulk of the data.
                let conn = self.lock();
                let used: i64 = conn
                    .query_row(
                        "SELECT coalesce(sum(strlen(raw)), 0)::BIGINT FROM events",
                        [],
                        |row| row.get(0),
                    )
                    .map_err(|e| self.fail("measuring the database", e))?;
                Ok(used as u64)
            }
        }
    }

    fn schema_version(&self) -> Result<u32> {
        let conn = self.lock();
        let v: Option<String> = match conn.query_row(
            "SELECT value FROM kubetrail_meta WHERE key = 'schema_version'",
            [],
            |row| row.get(0),
        ) {
            Ok(v) => Some(v),
            Err(duckdb::Error::QueryReturnedNoRows) => None,
            Err(e) => return Err(self.fail("reading the schema version", e)),
        };
        Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    /// The damage found earlier, else the newest event read back (its row group is the one
    /// appends write to) and the events counted.
    fn check(&self) -> Result<()> {
        self.failed()?;
        self.query(&Filter::default(), None, 1)?;
        self.count()?;
        self.failed()
    }

    fn recovery_report(&self) -> Option<RecoveryReport> {
        self.recovery.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubetrail_store::sql::COLUMNS;

    #[test]
    fn the_table_has_every_record_column_and_counted() {
        let ddl: String = MIGRATIONS.iter().map(|(_, sql)| *sql).collect();
        for column in COLUMNS {
            assert!(
                ddl.contains(&format!("        {column} "))
                    || ddl.contains(&format!("ADD COLUMN {column} ")),
                "{column}"
            );
        }
        assert!(MIGRATIONS[0].1.contains("counted BOOLEAN NOT NULL"));
        // Every column of the first schema but request_ts is NOT NULL, and it has `counted`
        // besides; content_hash came later.
        assert_eq!(
            MIGRATIONS[0].1.matches(" NOT NULL").count(),
            COLUMNS.len() - 1
        );
    }
}
