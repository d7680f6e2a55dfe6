//! The embedded default backend: one DuckDB file under the data directory, no setup.
//!
//! Appends go through one transaction per batch. When the batch's time span holds no stored
//! events (the usual case when importing or ingesting in time order), rows are appended
//! directly; otherwise they go through a staging table and an anti-join on the identity
//! (cluster, auditID, stage, time) restricted to that time span, which DuckDB's zone maps keep
//! cheap. A replayed event has the same time (its stageTimestamp), so it falls in the span.

mod rollup;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Mutex, MutexGuard};

use duckdb::types::Value;
use duckdb::{Connection, ToSql, params_from_iter};
use kubetrail_model::{Level, Stage};

use kubetrail_store::sql::{self, Dialect, GROUP_SEP, Param};
use kubetrail_store::{
    Aggregation, AggregationResult, AppendOutcome, Cursor, Error, Filter, GroupCount,
    HistogramBucket, Page, Record, Result, Retention, RetentionOutcome, SectionSpec, Store,
    counted_flags, identity_of,
};

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
}

/// A bounded set, oldest forgotten first.
#[derive(Default)]
struct RecentStarts {
    set: HashSet<(String, String)>,
    order: std::collections::VecDeque<(String, String)>,
}

/// How many recent starts are remembered (a few MB).
const RECENT_STARTS: usize = 65_536;

impl RecentStarts {
    fn contains(&self, cluster: &str, audit_id: &str) -> bool {
        self.set
            .contains(&(cluster.to_string(), audit_id.to_string()))
    }

    fn insert(&mut self, key: (String, String)) {
        if self.set.insert(key.clone()) {
            self.order.push_back(key);
            while self.order.len() > RECENT_STARTS {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }
}

impl DuckDbStore {
    /// Opens (creating if needed) the store in `data_dir`, migrating its schema.
    pub fn open(data_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(data_dir).map_err(|source| Error::Io {
            path: data_dir.display().to_string(),
            source,
        })?;
        let path = data_dir.join(DATABASE_FILE);
        let conn = Connection::open(&path)
            .map_err(|e| Error::db(format!("opening {}", path.display()), e))?;
        Self::init(conn, Some(path))
    }

    /// A store in memory, for tests.
    pub fn open_in_memory() -> Result<Self> {
        let conn = Connection::open_in_memory().map_err(|e| Error::db("opening in memory", e))?;
        Self::init(conn, None)
    }

    fn init(conn: Connection, path: Option<PathBuf>) -> Result<Self> {
        // Checkpoints compress whole row groups; with DuckDB's 16 MB default a steady stream of
        // batches pays that again and again. Commits stay durable through the WAL either way.
        conn.execute_batch(
            "SET checkpoint_threshold = '256MB';
             CREATE TABLE IF NOT EXISTS kubetrail_meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);",
        )
        .map_err(|e| Error::db("creating the metadata table", e))?;
        let readers = (0..READERS)
            .map(|_| conn.try_clone().map(Mutex::new))
            .collect::<duckdb::Result<Vec<_>>>()
            .map_err(|e| Error::db("opening reader connections", e))?;
        let store = DuckDbStore {
            readers,
            next_reader: std::sync::atomic::AtomicUsize::new(0),
            conn: Mutex::new(conn),
            path,
            started: Mutex::new(RecentStarts::default()),
            rollup_through: std::sync::atomic::AtomicI64::new(0),
            rollup_rows: std::sync::atomic::AtomicU64::new(0),
            rollup_compacted: std::sync::atomic::AtomicU64::new(0),
        };
        store.migrate()?;
        let conn = store.lock();
        let through = rollup::through(&conn).map_err(|e| Error::db("reading the rollup", e))?;
        let rows = rollup::rows(&conn).map_err(|e| Error::db("reading the rollup", e))?;
        drop(conn);
        store.rollup_through.store(through, Relaxed);
        store.rollup_rows.store(rows, Relaxed);
        store.rollup_compacted.store(rows, Relaxed);
        Ok(store)
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
                .map_err(|e| Error::db(format!("migrating to schema version {version}"), e))?;
        }
        Ok(())
    }

    fn append_rows(
        appender: &mut duckdb::Appender<'_>,
        rows: &[&Record],
        counted: &[bool],
    ) -> duckdb::Result<()> {
        let mut groups = String::new();
        for (r, c) in rows.iter().zip(counted) {
            encode_groups(&r.groups, &mut groups);
            let stage = r.stage.map(Stage::as_str).unwrap_or("");
            let level = r.level.map(Level::as_str).unwrap_or("");
            let code = r.code.unwrap_or(0);
            // Borrowed values: the appender copies them into its own buffers.
            let row: [&dyn ToSql; 25] = [
                &r.cluster,
                &r.audit_id,
                &stage,
                &level,
                &r.ts_micros,
                &r.request_ts_micros,
                &r.received_micros,
                &r.verb,
                &r.user,
                &groups,
                &r.impersonated_user,
                &r.source_ip,
                &r.user_agent,
                &r.api_group,
                &r.api_version,
                &r.resource,
                &r.subresource,
                &r.namespace,
                &r.name,
                &code,
                &r.decision,
                &r.reason,
                &r.request_uri,
                &r.raw,
                c,
            ];
            appender.append_row(row.as_slice())?;
        }
        appender.flush()
    }

    /// For each row, whether it stands for its request in counts: starts are looked for in
    /// memory first, then in the table.
    fn counted_flags(
        conn: &Connection,
        rows: &[&Record],
        recent: &RecentStarts,
    ) -> duckdb::Result<Vec<bool>> {
        counted_flags(
            rows,
            |cluster, audit_id| recent.contains(cluster, audit_id),
            |open, lo, hi| {
                let sql = format!(
                    "SELECT DISTINCT cluster, audit_id FROM events WHERE stage = 'ResponseStarted' AND ts >= ? AND ts <= ? AND audit_id IN ({})",
                    vec!["?"; open.len()].join(", ")
                );
                let mut params = vec![Value::BigInt(lo), Value::BigInt(hi)];
                params.extend(open.iter().map(|r| Value::Text(r.audit_id.clone())));
                let mut stmt = conn.prepare(&sql)?;
                stmt.query_map(params_from_iter(params), |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })?
                .collect()
            },
        )
    }

    /// Appends each batch's unique rows and counts them in the rollup; returns how many of
    /// each were new, and the rollup rows written.
    fn append_in_transaction(
        conn: &Connection,
        batches: &[Vec<&Record>],
        recent: &RecentStarts,
        through: i64,
    ) -> duckdb::Result<(Vec<u64>, u64)> {
        let rows: Vec<&Record> = batches.iter().flatten().copied().collect();
        let counted = Self::counted_flags(conn, &rows, recent)?;
        let min = rows.iter().map(|r| r.ts_micros).min().unwrap_or(0);
        let max = rows.iter().map(|r| r.ts_micros).max().unwrap_or(0);
        let overlapping: i64 = conn.query_row(
            "SELECT count(*) FROM events WHERE ts >= ? AND ts <= ?",
            [min, max],
            |row| row.get(0),
        )?;
        if overlapping == 0 {
            let mut appender = conn.appender("events")?;
            Self::append_rows(&mut appender, &rows, &counted)?;
            let added = rollup::add(conn, &rows, &counted, through)?;
            return Ok((batches.iter().map(|b| b.len() as u64).collect(), added));
        }
        let mut added = 0;
        conn.execute_batch(
            "CREATE TEMP TABLE IF NOT EXISTS staging AS SELECT * FROM events LIMIT 0; DELETE FROM staging;",
        )?;
        // Batch by batch, so each one's count is its own.
        let mut stored = Vec::with_capacity(batches.len());
        let mut at = 0;
        for batch in batches {
            let flags = &counted[at..at + batch.len()];
            at += batch.len();
            if batch.is_empty() {
                stored.push(0);
                continue;
            }
            let lo = batch.iter().map(|r| r.ts_micros).min().unwrap_or(0);
            let hi = batch.iter().map(|r| r.ts_micros).max().unwrap_or(0);
            {
                let mut appender = conn.appender_to_catalog_and_db("staging", "temp", "main")?;
                Self::append_rows(&mut appender, batch, flags)?;
            }
            if lo < through {
                added += conn.execute(rollup::ADD_NEW_FROM_STAGING, [through, lo, hi])? as u64;
            }
            let inserted = conn.execute(
                "INSERT INTO events SELECT s.* FROM staging s WHERE NOT EXISTS (
                    SELECT 1 FROM events e
                    WHERE e.ts >= ? AND e.ts <= ?
                      AND e.ts = s.ts AND e.cluster = s.cluster AND e.audit_id = s.audit_id AND e.stage = s.stage)",
                [lo, hi],
            )?;
            conn.execute_batch("DELETE FROM staging;")?;
            stored.push(inserted as u64);
        }
        Ok((stored, added))
    }

    /// Moves the rollup's watermark up to the hour of the newest event appended, and merges
    /// its rows when they have doubled (inside the append's transaction). Returns the new
    /// watermark, to publish once committed.
    fn maintain_rollup(
        &self,
        conn: &Connection,
        batches: &[Vec<&Record>],
        mut added: u64,
    ) -> duckdb::Result<i64> {
        let through = self.rollup_through.load(Relaxed);
        let newest = batches
            .iter()
            .flatten()
            .map(|r| r.ts_micros)
            .max()
            .unwrap_or(0);
        let hour = newest - newest.rem_euclid(rollup::HOUR);
        let through = if hour > through {
            added += rollup::advance(conn, through, hour)?;
            hour
        } else {
            through
        };
        let rows = self.rollup_rows.fetch_add(added, Relaxed) + added;
        let limit = rollup::COMPACT_AT.max(2 * self.rollup_compacted.load(Relaxed));
        if rows > limit {
            let left = rollup::compact(conn)?;
            self.rollup_rows.store(left, Relaxed);
            self.rollup_compacted.store(left, Relaxed);
        }
        Ok(through)
    }
}

/// Groups as stored: `"\u{1f}dev\u{1f}ops\u{1f}"`, or `""` for none.
fn encode_groups(groups: &[String], out: &mut String) {
    out.clear();
    if groups.is_empty() {
        return;
    }
    out.push(GROUP_SEP);
    for g in groups {
        out.push_str(g);
        out.push(GROUP_SEP);
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
                .map_err(|e| Error::db("aggregating sections", e));
        }
        let sql = sql::select_aggregation(dialect, table, filter, aggregation);
        let conn = self.read();
        let mut stmt = conn
            .prepare(&sql.text)
            .map_err(|e| Error::db("preparing an aggregation", e))?;
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
        result.map_err(|e| Error::db("aggregating events", e))
    }

    /// Deletes events up to `cutoff` with `delete` and counts the hours it touched again, in
    /// one transaction: no reader sees the rollup disagree with the events.
    fn delete_and_recount(
        &self,
        conn: &Connection,
        delete: &str,
        cutoff: i64,
    ) -> duckdb::Result<u64> {
        conn.execute_batch("BEGIN TRANSACTION;")?;
        let done = conn.execute(delete, [cutoff]).and_then(|n| {
            rollup::rebuild_through(conn, cutoff)?;
            Ok(n as u64)
        });
        match done {
            Ok(n) => {
                conn.execute_batch("COMMIT;")?;
                let rows = rollup::rows(conn)?;
                self.rollup_rows.store(rows, Relaxed);
                self.rollup_compacted.store(rows, Relaxed);
                Ok(n)
            }
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK;");
                Err(e)
            }
        }
    }

    fn retain(&self, retention: &Retention) -> Result<RetentionOutcome> {
        let mut deleted = 0u64;
        if let Some(age) = retention.max_age {
            let cutoff = chrono::Utc::now().timestamp_micros() - age.as_micros() as i64;
            let conn = self.lock();
            deleted += self
                .delete_and_recount(&conn, "DELETE FROM events WHERE ts < ?", cutoff)
                .map_err(|e| Error::db("deleting old events", e))?;
        }
        if let Some(max_bytes) = retention.max_bytes {
            let size = self.size_bytes()?;
            let total = self.count()?;
            if size > max_bytes && total > 0 {
                // Delete the oldest share of events that brings the size under the limit,
                // assuming bytes are spread evenly over events.
                let keep = ((total as f64) * (max_bytes as f64 / size as f64)).floor() as i64;
                let conn = self.lock();
                let cutoff: Option<i64> = conn
                    .query_row(
                        "SELECT ts FROM events ORDER BY ts DESC LIMIT 1 OFFSET ?",
                        [keep.max(0)],
                        |row| row.get(0),
                    )
                    .ok();
                if let Some(cutoff) = cutoff {
                    deleted += self
                        .delete_and_recount(&conn, "DELETE FROM events WHERE ts <= ?", cutoff)
                        .map_err(|e| Error::db("deleting events over the size limit", e))?;
                }
            }
        }
        if deleted > 0 {
            let conn = self.lock();
            conn.execute_batch("CHECKPOINT;")
                .map_err(|e| Error::db("checkpointing after retention", e))?;
        }
        Ok(RetentionOutcome {
            deleted,
            bytes_after: self.size_bytes()?,
        })
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
        // Unique identities per batch, earlier batches first.
        let mut seen = HashSet::new();
        let uniques: Vec<Vec<&Record>> = batches
            .iter()
            .map(|b| b.iter().filter(|r| seen.insert(identity_of(r))).collect())
            .collect();
        let mut outcomes: Vec<AppendOutcome> = batches
            .iter()
            .map(|b| AppendOutcome {
                stored: 0,
                duplicates: b.len() as u64,
            })
            .collect();
        if uniques.iter().all(Vec::is_empty) {
            return Ok(outcomes);
        }
        let conn = self.lock();
        conn.execute_batch("BEGIN TRANSACTION;")
            .map_err(|e| Error::db("beginning an append", e))?;
        let mut recent = self
            .started
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let through = self.rollup_through.load(Relaxed);
        let appended = Self::append_in_transaction(&conn, &uniques, &recent, through).and_then(
            |(stored, added)| {
                let through = self.maintain_rollup(&conn, &uniques, added)?;
                Ok((stored, through))
            },
        );
        match appended {
            Ok((stored, through)) => {
                conn.execute_batch("COMMIT;")
                    .map_err(|e| Error::db("committing an append", e))?;
                self.rollup_through.store(through, Relaxed);
                // Only committed starts are remembered.
                for r in uniques.iter().flatten() {
                    if r.stage == Some(Stage::ResponseStarted) {
                        recent.insert((r.cluster.clone(), r.audit_id.clone()));
                    }
                }
                for (o, s) in outcomes.iter_mut().zip(stored) {
                    o.stored = s;
                    o.duplicates -= s;
                }
                Ok(outcomes)
            }
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK;");
                Err(Error::db("appending a batch", e))
            }
        }
    }

    fn query(&self, filter: &Filter, cursor: Option<&Cursor>, limit: usize) -> Result<Page> {
        filter.validate().map_err(Error::Invalid)?;
        let conn = self.read();
        // Newest first in time slices that widen (1 h, 6 h, 1 d, 7 d, 30 d, then the rest):
        // a page of recent events then reads only the row groups of its slice, which DuckDB's
        // zone maps on `ts` select, instead of sorting every match of the whole table.
        let newest: Option<i64> = match cursor {
            Some(c) => Some(c.ts_micros),
            None => conn
                .query_row("SELECT max(ts) FROM events", [], |row| row.get(0))
                .map_err(|e| Error::db("finding the newest event", e))?,
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
            let sql = sql::select_page(Dialect::DuckDb, "events", &slice, cursor, want);
            let mut stmt = conn
                .prepare(&sql.text)
                .map_err(|e| Error::db("preparing a query", e))?;
            let found: Vec<Record> = stmt
                .query_map(params_from_iter(bind(&sql.params)), record_from_row)
                .and_then(|rows| rows.collect())
                .map_err(|e| Error::db("querying events", e))?;
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
        let next = if records.len() > limit {
            records.truncate(limit);
            records.last().map(Cursor::after)
        } else {
            None
        };
        Ok(Page { records, next })
    }

    fn aggregate(&self, filter: &Filter, aggregation: &Aggregation) -> Result<AggregationResult> {
        self.aggregate_from(filter, aggregation, true)
    }

    fn apply_retention(&self, retention: &Retention) -> Result<RetentionOutcome> {
        self.retain(retention)
    }
    fn count(&self) -> Result<u64> {
        let conn = self.read();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM events", [], |row| row.get(0))
            .map_err(|e| Error::db("counting events", e))?;
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
                    .map_err(|e| Error::db("measuring the database", e))?;
                Ok(used as u64)
            }
        }
    }

    fn schema_version(&self) -> Result<u32> {
        let conn = self.lock();
        let v: Option<String> = conn
            .query_row(
                "SELECT value FROM kubetrail_meta WHERE key = 'schema_version'",
                [],
                |row| row.get(0),
            )
            .ok();
        Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubetrail_store::sql::COLUMNS;

    #[test]
    fn the_table_has_every_record_column_and_counted() {
        for column in COLUMNS {
            assert!(
                MIGRATIONS[0].1.contains(&format!("        {column} ")),
                "{column}"
            );
        }
        assert!(MIGRATIONS[0].1.contains("counted BOOLEAN NOT NULL"));
        // Every column but request_ts is NOT NULL, and the table has `counted` besides.
        assert_eq!(MIGRATIONS[0].1.matches(" NOT NULL").count(), COLUMNS.len());
    }

    #[test]
    fn groups_are_delimited_on_both_sides() {
        let mut out = String::from("stale");
        encode_groups(&["a".into(), "b".into()], &mut out);
        assert_eq!(out, "\u{1f}a\u{1f}b\u{1f}");
        encode_groups(&[], &mut out);
        assert_eq!(out, "");
    }
}
