//! The ClickHouse store: the [`Store`] trait over ClickHouse's HTTP interface, for fleets that
//! outgrow one machine and for several `kubetrail serve` instances sharing one database.
//!
//! - One table, `events`, a `ReplacingMergeTree` partitioned by day and ordered by
//!   (cluster, ts, auditID, stage, content hash): an event's identity and the hash of its text
//!   are the sorting key, so replays collapse when parts merge while distinct events that claim
//!   one identity (conflicts) are both kept, and reads use `FINAL` so they are exact before
//!   that. Appends also skip what is already stored (by
//!   [`plan_append`](kubetrail_store::plan_append)), so a retried batch usually writes nothing.
//! - Works with the old server Debian ships (18.16: no window functions, grouping sets,
//!   server-side parameters or `CODEC`) and with current releases: the version is read on
//!   start, and `raw` gets `CODEC(ZSTD(3))` where the server has codecs. Values are bound on
//!   the client, escaped as ClickHouse string literals.
//! - Retention drops whole day partitions, and deletes the rest of a boundary day with a
//!   mutation it waits for.

mod alerts;
mod chain;
mod client;
mod sql;

use std::collections::HashSet;

use kubetrail_model::{Level, Stage};
use kubetrail_store::chain::Pending;
use kubetrail_store::sql::{Dialect, GROUP_SEP, PAGE_ORDER, where_clause};
use kubetrail_store::{
    Aggregation, AggregationResult, AlertField, AlertFilter, AlertRecord, AppendOutcome, Cursor,
    Error, Filter, GroupCount, HistogramBucket, Page, Record, Result, Retention, RetentionOutcome,
    SectionCount, Store, StoredIdentity, counted_flags, plan_append,
};
use serde_json::Value;

use client::int;
pub use client::{ClickHouse, Connection};

/// The schema version this build writes: 2 added `content_hash` to the sorting key, 3 the
/// alerts table, 4 the hash chain.
const SCHEMA_VERSION: u32 = 4;

/// The ClickHouse store.
pub struct ClickHouseStore {
    ch: ClickHouse,
    table: String,
    /// The chain appends extend, once [`Store::set_chain`] gave one.
    chain: std::sync::OnceLock<std::sync::Arc<kubetrail_store::chain::Chain>>,
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn record_from_row(row: &[Value]) -> Record {
    let t = |i: usize| row.get(i).map(text).unwrap_or_default();
    let groups = t(9);
    Record {
        cluster: t(0),
        audit_id: t(1),
        stage: t(2).parse::<Stage>().ok(),
        level: t(3).parse::<Level>().ok(),
        ts_micros: row.get(4).map(int).unwrap_or(0),
        request_ts_micros: row.get(5).filter(|v| !v.is_null()).map(int),
        received_micros: row.get(6).map(int).unwrap_or(0),
        verb: t(7),
        user: t(8),
        groups: groups
            .split(GROUP_SEP)
            .filter(|g| !g.is_empty())
            .map(str::to_string)
            .collect(),
        impersonated_user: t(10),
        source_ip: t(11),
        user_agent: t(12),
        api_group: t(13),
        api_version: t(14),
        resource: t(15),
        subresource: t(16),
        namespace: t(17),
        name: t(18),
        code: match row.get(19).map(int) {
            Some(0) | None => None,
            Some(c) => i32::try_from(c).ok(),
        },
        decision: t(20),
        reason: t(21),
        request_uri: t(22),
        raw: t(23),
        content_hash: row.get(24).map(int).unwrap_or(0),
    }
}

fn groups_text(groups: &[String]) -> String {
    if groups.is_empty() {
        return String::new();
    }
    let mut s = String::from(GROUP_SEP);
    for g in groups {
        s.push_str(g);
        s.push(GROUP_SEP);
    }
    s
}

impl ClickHouseStore {
    /// Connects, creates the database and table if needed, and migrates them.
    pub fn open(connection: Connection) -> Result<Self> {
        let ch = ClickHouse::new(connection)?;
        let db = ch.database().to_string();
        ch.execute(&format!(
            "CREATE DATABASE IF NOT EXISTS {}",
            sql::ident(&db)
        ))?;
        let store = ClickHouseStore {
            table: format!("{}.events", sql::ident(&db)),
            ch,
            chain: std::sync::OnceLock::new(),
        };
        store.migrate()?;
        Ok(store)
    }

    fn meta(&self) -> String {
        format!("{}.kubetrail_meta", sql::ident(self.ch.database()))
    }

    fn migrate(&self) -> Result<()> {
        self.ch.execute(&format!(
            "CREATE TABLE IF NOT EXISTS {} (key String, value String) ENGINE = TinyLog",
            self.meta()
        ))?;
        let found = self.schema_version()?;
        if found > SCHEMA_VERSION {
            return Err(Error::SchemaTooNew {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        if found < 1 {
            let codec = if self.ch.has_codecs() {
                " CODEC(ZSTD(3))"
            } else {
                ""
            };
            self.ch.execute(&format!(
                "CREATE TABLE IF NOT EXISTS {} (
                    cluster String, audit_id String, stage String, level String,
                    ts Int64, request_ts Nullable(Int64), received Int64,
                    verb String, username String, groups String, impersonated_user String,
                    source_ip String, user_agent String, api_group String, api_version String,
                    resource String, subresource String, namespace String, name String,
                    code Int32, decision String, reason String, request_uri String,
                    raw String{codec}, counted UInt8, content_hash Int64,
                    day Date MATERIALIZED toDate(toDateTime(intDiv(ts, 1000000)))
                ) ENGINE = ReplacingMergeTree PARTITION BY day ORDER BY (cluster, ts, audit_id, stage, content_hash)",
                self.table
            ))?;
            self.set_schema_version(2)?;
        } else if found < 2 {
            // Rows stored before have 0 and are compared by their text when claimed. The
            // sorting key may only grow by a column added in the same statement (without a
            // default expression, which ClickHouse forbids there).
            // Another server sharing the database may migrate at the same time (18.16 has no
            // `ADD COLUMN IF NOT EXISTS`): an ALTER that fails because the column is there now
            // is that server's migration.
            if !self.has_content_hash()? {
                let altered = self.ch.execute(&format!(
                    "ALTER TABLE {} ADD COLUMN content_hash Int64, MODIFY ORDER BY (cluster, ts, audit_id, stage, content_hash)",
                    self.table
                ));
                if let Err(e) = altered
                    && !self.has_content_hash()?
                {
                    return Err(e);
                }
            }
            self.set_schema_version(2)?;
        }
        if found < 3 {
            self.create_alerts()?;
            self.set_schema_version(3)?;
        }
        if found < 4 {
            self.migrate_chain()?;
            self.set_schema_version(4)?;
        }
        Ok(())
    }

    fn has_content_hash(&self) -> Result<bool> {
        let n = self.ch.scalar(&format!(
            "SELECT count() FROM system.columns WHERE database = {} AND table = 'events' AND name = 'content_hash'",
            sql::literal(self.ch.database())
        ))?;
        Ok(n > 0)
    }

    fn set_schema_version(&self, version: u32) -> Result<()> {
        self.ch.execute(&format!(
            "INSERT INTO {} (key, value) VALUES ('schema_version', '{version}')",
            self.meta()
        ))
    }

    /// The stored events that share an identity with any of `rows`: identity and content hash.
    fn claims(&self, rows: &[&Record]) -> Result<Vec<(StoredIdentity, i64)>> {
        let mut found = Vec::new();
        let clusters: HashSet<&str> = rows.iter().map(|r| r.cluster.as_str()).collect();
        for cluster in clusters {
            let of: Vec<&&Record> = rows.iter().filter(|r| r.cluster == cluster).collect();
            let lo = of.iter().map(|r| r.ts_micros).min().unwrap_or(0);
            let hi = of.iter().map(|r| r.ts_micros).max().unwrap_or(0);
            let ids: HashSet<String> = of.iter().map(|r| sql::literal(&r.audit_id)).collect();
            let ids: Vec<String> = ids.into_iter().collect();
            let q = format!(
                "SELECT DISTINCT audit_id, stage, ts, content_hash FROM {} WHERE cluster = {} AND ts >= {lo} AND ts <= {hi} AND audit_id IN ({})",
                self.table,
                sql::literal(cluster),
                ids.join(", ")
            );
            for row in self.ch.rows(&q)? {
                found.push((
                    (
                        cluster.to_string(),
                        text(&row[0]),
                        text(&row[1]),
                        int(&row[2]),
                    ),
                    int(&row[3]),
                ));
            }
        }
        Ok(found)
    }

    /// The text of the stored event with this identity and content hash.
    fn stored_text(
        &self,
        (cluster, audit_id, stage, ts): &StoredIdentity,
        hash: i64,
    ) -> Result<Option<String>> {
        let q = format!(
            "SELECT raw FROM {} WHERE cluster = {} AND ts = {ts} AND audit_id = {} AND stage = {} AND content_hash = {hash} LIMIT 1",
            self.table,
            sql::literal(cluster),
            sql::literal(audit_id),
            sql::literal(stage)
        );
        Ok(self.ch.rows(&q)?.first().and_then(|r| r.first()).map(text))
    }

    /// Whether each row stands for its request (see [`counted_flags`]).
    fn counted(&self, rows: &[&Record]) -> Result<Vec<bool>> {
        counted_flags(
            rows,
            |_, _| false,
            |open, lo, hi| {
                let ids: Vec<String> = open.iter().map(|r| sql::literal(&r.audit_id)).collect();
                let q = format!(
                    "SELECT DISTINCT cluster, audit_id FROM {} WHERE stage = 'ResponseStarted' AND ts >= {lo} AND ts <= {hi} AND audit_id IN ({})",
                    self.table,
                    ids.join(", ")
                );
                Ok(self
                    .ch
                    .rows(&q)?
                    .iter()
                    .map(|row| (text(&row[0]), text(&row[1])))
                    .collect())
            },
        )
    }

    fn insert(&self, rows: &[&Record], counted: &[bool], batches: &[i64]) -> Result<()> {
        let mut body = String::new();
        for ((r, c), batch) in rows.iter().zip(counted).zip(batches) {
            let row = serde_json::json!({
                "cluster": r.cluster, "audit_id": r.audit_id,
                "stage": r.stage.map(Stage::as_str).unwrap_or(""),
                "level": r.level.map(Level::as_str).unwrap_or(""),
                "ts": r.ts_micros, "request_ts": r.request_ts_micros, "received": r.received_micros,
                "verb": r.verb, "username": r.user, "groups": groups_text(&r.groups),
                "impersonated_user": r.impersonated_user, "source_ip": r.source_ip,
                "user_agent": r.user_agent, "api_group": r.api_group, "api_version": r.api_version,
                "resource": r.resource, "subresource": r.subresource, "namespace": r.namespace,
                "name": r.name, "code": r.code.unwrap_or(0), "decision": r.decision,
                "reason": r.reason, "request_uri": r.request_uri, "raw": r.raw,
                "counted": u8::from(*c), "content_hash": r.content_hash,
                "chain_batch": batch,
            });
            body.push_str(&row.to_string());
            body.push('\n');
        }
        self.ch.insert(
            &format!("INSERT INTO {} FORMAT JSONEachRow", self.table),
            body,
        )
    }

    fn total(&self, filter: &Filter, extra: Option<&Filter>) -> Result<u64> {
        let w = sql::conditions(filter, extra)?;
        let q = format!("SELECT count() FROM {} FINAL{w}", self.table);
        Ok(self.ch.scalar(&q)? as u64)
    }

    fn count_by(
        &self,
        filter: &Filter,
        extra: Option<&Filter>,
        fields: &[kubetrail_store::Field],
        limit: Option<usize>,
    ) -> Result<Vec<GroupCount>> {
        let q = sql::count_by(&self.table, filter, extra, fields, limit)?;
        Ok(self
            .ch
            .rows(&q)?
            .iter()
            .map(|row| GroupCount {
                keys: row[..fields.len()].iter().map(text).collect(),
                count: int(&row[fields.len()]) as u64,
            })
            .collect())
    }
}

impl ClickHouseStore {
    /// A page of events newest first; with `heads`, the text only of impersonated requests.
    fn page(
        &self,
        filter: &Filter,
        cursor: Option<&Cursor>,
        limit: usize,
        heads: bool,
    ) -> Result<Page> {
        filter.validate().map_err(Error::Invalid)?;
        let order = format!("{PAGE_ORDER} LIMIT 1 BY cluster, ts, audit_id, stage, content_hash");
        let w = where_clause(Dialect::ClickHouse, filter, cursor);
        let keys = self.ch.rows(&format!(
            "SELECT cluster, ts, audit_id, stage, content_hash FROM {}{} {order} LIMIT {}",
            self.table,
            sql::bind(&w)?,
            limit + 1
        ))?;
        let records: Vec<Record> = if keys.is_empty() {
            Vec::new()
        } else {
            let tuples: Vec<String> = keys
                .iter()
                .map(|k| {
                    format!(
                        "({}, {}, {}, {}, {})",
                        sql::literal(&text(&k[0])),
                        int(&k[1]),
                        sql::literal(&text(&k[2])),
                        sql::literal(&text(&k[3])),
                        int(&k[4])
                    )
                })
                .collect();
            self.ch
                .rows(&format!(
                    "SELECT {} FROM {} WHERE (cluster, ts, audit_id, stage, content_hash) IN ({}) {order}",
                    kubetrail_store::sql::page_columns(heads),
                    self.table,
                    tuples.join(", ")
                ))?
                .iter()
                .map(|r| record_from_row(r))
                .collect()
        };
        Ok(Page::from_overfetch(records, limit))
    }
}

impl Store for ClickHouseStore {
    fn append(&self, batch: &[Record]) -> Result<AppendOutcome> {
        let mut out = self.append_all(&[batch])?;
        Ok(out.pop().unwrap_or_default())
    }

    fn append_all(&self, batches: &[&[Record]]) -> Result<Vec<AppendOutcome>> {
        let batches: Vec<Vec<&Record>> = batches.iter().map(|b| b.iter().collect()).collect();
        // Held until the links are stored: they are numbered in the order they are written.
        let mut chain = self.chain.get().map(|c| c.lock());
        let plan = plan_append(
            &batches,
            |rows| self.claims(rows),
            |identity, hash| self.stored_text(identity, hash),
        )?;
        let fresh: Vec<&Record> = plan.rows.iter().flatten().copied().collect();
        if !fresh.is_empty() {
            let counted = self.counted(&fresh)?;
            let mut pending = chain.as_ref().map(|_| Pending::default());
            let linked: Vec<(&Record, i64, kubetrail_store::chain::Hash)> = match &mut pending {
                Some(p) => fresh
                    .iter()
                    .map(|r| {
                        let (batch, digest) = p.add(r);
                        (*r, batch, digest)
                    })
                    .collect(),
                None => Vec::new(),
            };
            let chain_batches: Vec<i64> = if linked.is_empty() {
                vec![0; fresh.len()]
            } else {
                linked.iter().map(|(_, b, _)| *b).collect()
            };
            self.insert(&fresh, &counted, &chain_batches)?;
            self.insert_entries(&linked)?;
            if let (Some(chain), Some(pending)) = (&mut chain, pending) {
                let links = chain.links(pending, chrono::Utc::now().timestamp_micros());
                self.store_links(chain, &links)?;
            }
        }
        Ok(plan.outcomes)
    }

    /// Two steps: the page's identities first, reading only the filtered columns (`LIMIT 1 BY`
    /// the identity drops rows stored twice, without `FINAL`'s merge of every column), then
    /// the whole rows of just those, found through the sorting key.
    fn query(&self, filter: &Filter, cursor: Option<&Cursor>, limit: usize) -> Result<Page> {
        self.page(filter, cursor, limit, false)
    }

    fn query_heads(&self, filter: &Filter, cursor: Option<&Cursor>, limit: usize) -> Result<Page> {
        self.page(filter, cursor, limit, true)
    }

    fn aggregate(&self, filter: &Filter, aggregation: &Aggregation) -> Result<AggregationResult> {
        filter.validate().map_err(Error::Invalid)?;
        match aggregation {
            Aggregation::CountBy { fields, limit } => {
                if fields.is_empty() {
                    let n = self.total(filter, None)?;
                    return Ok(AggregationResult::Groups(vec![GroupCount {
                        keys: Vec::new(),
                        count: n,
                    }]));
                }
                Ok(AggregationResult::Groups(
                    self.count_by(filter, None, fields, *limit)?,
                ))
            }
            Aggregation::CountEach { fields } => {
                let groups = fields
                    .iter()
                    .map(|f| self.count_by(filter, None, std::slice::from_ref(f), None))
                    .collect::<Result<Vec<_>>>()?;
                // Every event has a value for every field: one field's groups add up to the total.
                let total = match groups.first() {
                    Some(g) => g.iter().map(|g| g.count).sum(),
                    None => self.total(filter, None)?,
                };
                Ok(AggregationResult::Each { total, groups })
            }
            Aggregation::Sections(specs) => {
                for spec in specs {
                    spec.filter.validate().map_err(Error::Invalid)?;
                }
                // Every section's total in one scan; then the top groups of the non-empty ones.
                let conds: Vec<String> = specs
                    .iter()
                    .map(|spec| sql::condition(&spec.filter))
                    .collect::<Result<_>>()?;
                let counts: Vec<String> = conds.iter().map(|c| format!("countIf({c})")).collect();
                let row = self
                    .ch
                    .rows(&format!(
                        "SELECT {} FROM {} FINAL{}",
                        counts.join(", "),
                        self.table,
                        sql::conditions(filter, None)?
                    ))?
                    .into_iter()
                    .next()
                    .unwrap_or_default();
                let mut out = Vec::with_capacity(specs.len());
                for (i, spec) in specs.iter().enumerate() {
                    let total = row.get(i).map(int).unwrap_or(0) as u64;
                    let top = if spec.fields.is_empty() || total == 0 {
                        Vec::new()
                    } else {
                        self.count_by(filter, Some(&spec.filter), &spec.fields, Some(spec.limit))?
                    };
                    out.push(SectionCount { total, top });
                }
                Ok(AggregationResult::Sections(out))
            }
            Aggregation::Histogram { bucket, by } => {
                let q = sql::histogram(&self.table, filter, *bucket, *by)?;
                Ok(AggregationResult::Histogram(
                    self.ch
                        .rows(&q)?
                        .iter()
                        .map(|row| HistogramBucket {
                            start_micros: int(&row[0]),
                            key: by.map(|_| text(&row[1])),
                            count: int(&row[2]) as u64,
                        })
                        .collect(),
                ))
            }
        }
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

    fn apply_retention(&self, retention: &Retention) -> Result<RetentionOutcome> {
        let before = self.count()?;
        if let Some(age) = retention.max_age {
            let cutoff = chrono::Utc::now().timestamp_micros() - age.as_micros() as i64;
            let cutoff_day = chrono::DateTime::from_timestamp_micros(cutoff)
                .map(|t| t.date_naive())
                .unwrap_or_default();
            let old = format!("SELECT count() FROM {} WHERE ts < {cutoff}", self.table);
            let dropped: Vec<String> = self
                .partitions()?
                .into_iter()
                .filter(|(_, day)| *day < cutoff_day)
                .map(|(p, _)| p)
                .collect();
            // The prune link covers the dropped days whole, in the server's time zone.
            let mut before = cutoff;
            for p in &dropped {
                if let Some(newest) = self.newest_in(p)? {
                    before = before.max(newest.saturating_add(1));
                }
            }
            if !dropped.is_empty() || self.ch.scalar(&old)? > 0 {
                self.prune(before)?;
            }
            for partition in &dropped {
                self.drop_partition(partition)?;
            }
            self.delete_where(&format!("ts < {cutoff}"))?;
            self.delete_alerts_before(cutoff)?;
        }
        if let Some(max) = retention.max_bytes {
            for (partition, _) in self.partitions()? {
                if self.size_bytes()? <= max {
                    break;
                }
                if let Some(newest) = self.newest_in(&partition)? {
                    self.prune(newest.saturating_add(1))?;
                }
                self.drop_partition(&partition)?;
            }
        }
        let after = self.count()?;
        Ok(RetentionOutcome {
            deleted: before.saturating_sub(after),
            bytes_after: self.size_bytes()?,
        })
    }

    fn set_chain(&self, chain: std::sync::Arc<kubetrail_store::chain::Chain>) -> Result<()> {
        self.keep_public_key(chain.key_id(), &chain.public_key_pem())?;
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
        let q = format!("SELECT count() FROM {} FINAL", self.table);
        Ok(self.ch.scalar(&q)? as u64)
    }

    fn size_bytes(&self) -> Result<u64> {
        let q = format!(
            "SELECT sum(bytes) FROM system.parts WHERE active AND database = {} AND table = 'events'",
            sql::literal(self.ch.database())
        );
        Ok(self.ch.scalar(&q)? as u64)
    }

    fn schema_version(&self) -> Result<u32> {
        let q = format!(
            "SELECT max(toUInt32(value)) FROM {} WHERE key = 'schema_version'",
            self.meta()
        );
        Ok(self.ch.scalar(&q)? as u32)
    }

    /// Reads one stored row (one granule of one part, without `FINAL`): the events table
    /// answers, at the cost of a probe rather than a page over every part.
    fn check(&self) -> Result<()> {
        self.schema_version()?;
        self.ch
            .rows(&format!("SELECT ts, raw FROM {} LIMIT 1", self.table))
            .map(|_| ())
    }
}

impl ClickHouseStore {
    /// Says in every chain, before retention deletes, that events older than `before` go.
    fn prune(&self, before: i64) -> Result<()> {
        let Some(chain) = self.chain.get() else {
            return Ok(());
        };
        let mut chain = chain.lock();
        let clusters = self.chained_clusters()?;
        let links = chain.prune(&clusters, before, chrono::Utc::now().timestamp_micros());
        self.store_links(&mut chain, &links)
    }

    /// Inserts links and moves the heads past them. When the insert fails, ClickHouse may have
    /// stored them all the same (an answer lost on the way): the heads are read back from the
    /// store, so that the next links follow what is there instead of forking the chain.
    fn store_links(
        &self,
        chain: &mut kubetrail_store::chain::ChainLock<'_>,
        links: &[kubetrail_store::chain::LinkRow],
    ) -> Result<()> {
        match self.insert_links(links) {
            Ok(()) => {
                chain.advance(links);
                Ok(())
            }
            Err(e) => {
                if let Ok(stored) = self.links() {
                    chain.resume(&stored);
                }
                Err(e)
            }
        }
    }

    /// The newest event time in a partition (`day` as its literal), for the prune link that
    /// says it is dropped: partitions are days in the server's time zone, not UTC.
    fn newest_in(&self, partition: &str) -> Result<Option<i64>> {
        let day = partition.trim_matches('\'');
        let q = format!(
            "SELECT count(), max(ts) FROM {} WHERE day = toDate({})",
            self.table,
            sql::literal(day)
        );
        let rows = self.ch.rows(&q)?;
        Ok(rows
            .first()
            .filter(|r| r.first().map(client::int).unwrap_or(0) > 0)
            .and_then(|r| r.get(1).map(client::int)))
    }

    /// Active partitions of `events`, oldest first: (partition literal, day).
    fn partitions(&self) -> Result<Vec<(String, chrono::NaiveDate)>> {
        let q = format!(
            "SELECT DISTINCT partition FROM system.parts WHERE active AND database = {} AND table = 'events' ORDER BY partition",
            sql::literal(self.ch.database())
        );
        Ok(self
            .ch
            .rows(&q)?
            .iter()
            .filter_map(|r| {
                let p = text(&r[0]);
                let day =
                    chrono::NaiveDate::parse_from_str(p.trim_matches('\''), "%Y-%m-%d").ok()?;
                Some((p, day))
            })
            .collect())
    }

    fn drop_partition(&self, partition: &str) -> Result<()> {
        let literal = if partition.starts_with('\'') {
            partition.to_string()
        } else {
            sql::literal(partition)
        };
        self.ch.execute(&format!(
            "ALTER TABLE {} DROP PARTITION {literal}",
            self.table
        ))
    }

    /// Deletes rows and waits until the mutation is done.
    fn delete_where(&self, condition: &str) -> Result<()> {
        self.ch.execute(&format!(
            "ALTER TABLE {} DELETE WHERE {condition}",
            self.table
        ))?;
        for _ in 0..600 {
            let q = format!(
                "SELECT count() FROM system.mutations WHERE database = {} AND table = 'events' AND is_done = 0",
                sql::literal(self.ch.database())
            );
            if self.ch.scalar(&q)? == 0 {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Err(Error::db(
            "deleting old events",
            std::io::Error::other("the delete mutation did not finish within 30 s"),
        ))
    }
}
