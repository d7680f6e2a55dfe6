//! The write side of the DuckDB store: appends (stored claims on the batch's identities looked
//! up through a probe table, `counted` flags, the rollup kept in step), the memory of recent
//! ResponseStarted events, and retention.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use duckdb::arrow::array::{
    ArrayRef, BooleanArray, Int32Array, Int64Array, LargeStringBuilder, RecordBatch,
};
use duckdb::types::Value;
use duckdb::{Connection, params_from_iter};
use kubetrail_model::{Level, Stage};
use kubetrail_store::chain::{ChainLock, LinkRow, Pending};
use kubetrail_store::sql::GROUP_SEP;
use kubetrail_store::{
    AppendOutcome, Record, Result, Retention, RetentionOutcome, Store, StoredIdentity,
    counted_flags, plan_append,
};

use crate::{DuckDbStore, rollup};

/// A bounded set of (cluster, auditID), oldest forgotten first.
#[derive(Default)]
pub(crate) struct RecentStarts {
    /// Audit IDs by cluster: looked up without building a key.
    set: HashMap<String, HashSet<String>>,
    order: std::collections::VecDeque<(String, String)>,
}

/// How many recent starts are remembered (a few MB).
const RECENT_STARTS: usize = 65_536;

impl RecentStarts {
    pub(crate) fn contains(&self, cluster: &str, audit_id: &str) -> bool {
        self.set
            .get(cluster)
            .is_some_and(|ids| ids.contains(audit_id))
    }

    pub(crate) fn insert(&mut self, (cluster, audit_id): (String, String)) {
        if self.contains(&cluster, &audit_id) {
            return;
        }
        self.set
            .entry(cluster.clone())
            .or_default()
            .insert(audit_id.clone());
        self.order.push_back((cluster, audit_id));
        while self.order.len() > RECENT_STARTS {
            if let Some((cluster, audit_id)) = self.order.pop_front()
                && let Some(ids) = self.set.get_mut(&cluster)
            {
                ids.remove(&audit_id);
            }
        }
    }

    /// Moves every start of `other` in here, oldest first.
    pub(crate) fn take_all(&mut self, other: &mut RecentStarts) {
        other.set.clear();
        for key in other.order.drain(..) {
            self.insert(key);
        }
    }
}

impl DuckDbStore {
    /// One transaction for all batches (group commit), see [`Store::append_all`].
    pub(crate) fn append_batches(&self, batches: &[&[Record]]) -> Result<Vec<AppendOutcome>> {
        // A damaged store acknowledges nothing: what it stored could not be read back.
        self.failed()?;
        if batches.iter().all(|b| b.is_empty()) {
            return Ok(vec![AppendOutcome::default(); batches.len()]);
        }
        let batches: Vec<Vec<&Record>> = batches.iter().map(|b| b.iter().collect()).collect();
        let conn = self.lock();
        // Held until the commit is done: links are numbered in the order they are committed.
        let mut chain = self.chain.get().map(|c| c.lock());
        conn.execute_batch("BEGIN TRANSACTION;")
            .map_err(|e| self.fail("beginning an append", e))?;
        let mut recent = self.recent_starts();
        let through = self.rollup_through.load(Relaxed);
        let known = |cluster: &str, audit_id: &str| recent.contains(cluster, audit_id);
        // DuckDB turns the COMMIT of a transaction an earlier error invalidated into a rollback
        // that reports success: a statement before it makes sure the transaction is still good.
        let written = self
            .write_in_transaction(&conn, &batches, &known, through, chain.as_ref())
            .and_then(|done| conn.execute_batch("SELECT 1;").map(|()| done));
        match written {
            Ok((outcomes, through, links)) => {
                if let Err(e) = conn.execute_batch("COMMIT;") {
                    // Whatever state the failed commit left, the next append starts afresh.
                    let _ = conn.execute_batch("ROLLBACK;");
                    return Err(self.fail("committing an append", e));
                }
                if let Some(chain) = &mut chain {
                    chain.advance(&links);
                }
                self.rollup_through.store(through, Relaxed);
                // Only committed starts are remembered (a repeat's start is stored already).
                for key in starts_of(&batches) {
                    recent.insert(key);
                }
                Ok(outcomes)
            }
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK;");
                Err(self.fail("appending a batch", e))
            }
        }
    }

    pub(crate) fn recent_starts(&self) -> std::sync::MutexGuard<'_, RecentStarts> {
        self.started
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends the batches inside the open transaction, with their links when `chain` is held,
    /// and keeps the rollup in step; returns each batch's outcome, the rollup's new watermark
    /// and the links (to publish once committed). `known` tells the ResponseStarted events
    /// stored recently.
    fn write_in_transaction(
        &self,
        conn: &Connection,
        batches: &[Vec<&Record>],
        known: &dyn Fn(&str, &str) -> bool,
        through: i64,
        chain: Option<&ChainLock<'_>>,
    ) -> duckdb::Result<(Vec<AppendOutcome>, i64, Vec<LinkRow>)> {
        let newest = self.newest.load(Relaxed);
        let mut pending = chain.map(|_| Pending::default());
        let (outcomes, added) =
            Self::append_in_transaction(conn, batches, known, through, newest, pending.as_mut())?;
        let links = link_pending(conn, chain, pending)?;
        // Raised before the commit: if it fails, the mark is only too high, which costs a query.
        let max = batches.iter().flatten().map(|r| r.ts_micros).max();
        self.newest.fetch_max(max.unwrap_or(i64::MIN), Relaxed);
        let through = self.maintain_rollup(conn, batches, added, through)?;
        Ok((outcomes, through, links))
    }

    /// Appends rows as columns (Arrow arrays, one DuckDB chunk per 2,048 rows) rather than
    /// value by value: the appender's per-row path allocates and checks every value through
    /// several calls.
    fn append_rows(
        appender: &mut duckdb::Appender<'_>,
        rows: &[&Record],
        counted: &[bool],
        batches: &[i64],
    ) -> duckdb::Result<()> {
        // A record batch per DuckDB chunk: the copy is never more than 2,048 rows.
        for ((rows, counted), batches) in rows
            .chunks(CHUNK_ROWS)
            .zip(counted.chunks(CHUNK_ROWS))
            .zip(batches.chunks(CHUNK_ROWS))
        {
            appender.append_record_batch(columns(rows, counted, batches)?)?;
        }
        appender.flush()
    }

    /// For each row, whether it stands for its request in counts: starts are looked for in
    /// memory first, then in the table.
    fn counted_flags(
        conn: &Connection,
        rows: &[&Record],
        known: &dyn Fn(&str, &str) -> bool,
    ) -> duckdb::Result<Vec<bool>> {
        counted_flags(rows, known, |open, lo, hi| {
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
        })
    }

    /// Appends what [`plan_append`] keeps of `batches` and counts it in the rollup; returns
    /// each batch's outcome, and the rollup rows written.
    ///
    /// When the batches' time span holds no stored event (newer than everything stored, the
    /// usual case, is known without asking), nothing stored can share an identity with them.
    /// Otherwise their identities go to a temporary table and one join finds the stored events
    /// that claim them, by content hash; a stored event's text is read only when the hashes
    /// differ.
    pub(crate) fn append_in_transaction(
        conn: &Connection,
        batches: &[Vec<&Record>],
        known: &dyn Fn(&str, &str) -> bool,
        through: i64,
        newest: i64,
        pending: Option<&mut Pending>,
    ) -> duckdb::Result<(Vec<AppendOutcome>, u64)> {
        let plan = plan_append(
            batches,
            |rows| Self::stored_claims(conn, rows, newest),
            |identity, hash| Self::stored_text(conn, identity, hash),
        )?;
        let rows: Vec<&Record> = plan.rows.iter().flatten().copied().collect();
        if rows.is_empty() {
            return Ok((plan.outcomes, 0));
        }
        let counted = Self::counted_flags(conn, &rows, known)?;
        let linked: Vec<(i64, kubetrail_store::chain::Hash)> = match pending {
            Some(p) => rows.iter().map(|r| p.add(r)).collect(),
            None => Vec::new(),
        };
        let chain_batches: Vec<i64> = if linked.is_empty() {
            vec![0; rows.len()]
        } else {
            linked.iter().map(|(b, _)| *b).collect()
        };
        let mut appender = conn.appender("events")?;
        Self::append_rows(&mut appender, &rows, &counted, &chain_batches)?;
        drop(appender);
        let linked: Vec<(&Record, i64, kubetrail_store::chain::Hash)> = rows
            .iter()
            .zip(&linked)
            .map(|(r, (b, d))| (*r, *b, *d))
            .collect();
        crate::chain::append_entries(conn, &linked)?;
        let added = rollup::add(conn, &rows, &counted, through)?;
        Ok((plan.outcomes, added))
    }

    /// The stored events that share an identity with any of `rows`: their identity and
    /// content hash.
    fn stored_claims(
        conn: &Connection,
        rows: &[&Record],
        newest: i64,
    ) -> duckdb::Result<Vec<(StoredIdentity, i64)>> {
        let min = rows.iter().map(|r| r.ts_micros).min().unwrap_or(0);
        let max = rows.iter().map(|r| r.ts_micros).max().unwrap_or(0);
        let overlapping = min <= newest
            && conn
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM events WHERE ts >= ? AND ts <= ?)")?
                .query_row([min, max], |row| row.get::<_, bool>(0))?;
        if !overlapping {
            return Ok(Vec::new());
        }
        conn.execute_batch(
            "CREATE TEMP TABLE IF NOT EXISTS probe (cluster VARCHAR, audit_id VARCHAR, stage VARCHAR, ts BIGINT); DELETE FROM probe;",
        )?;
        {
            let mut appender = conn.appender_to_catalog_and_db("probe", "temp", "main")?;
            for chunk in rows.chunks(CHUNK_ROWS) {
                appender.append_record_batch(identity_columns(chunk)?)?;
            }
            appender.flush()?;
        }
        let mut stmt = conn.prepare_cached(
            "SELECT DISTINCT e.cluster, e.audit_id, e.stage, e.ts, coalesce(e.content_hash, 0)
             FROM events e JOIN probe p
               ON e.ts = p.ts AND e.cluster = p.cluster AND e.audit_id = p.audit_id AND e.stage = p.stage
             WHERE e.ts >= ? AND e.ts <= ?",
        )?;
        let found = stmt
            .query_map([min, max], |row| {
                Ok((
                    (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?),
                    row.get(4)?,
                ))
            })?
            .collect::<duckdb::Result<Vec<_>>>()?;
        conn.execute_batch("DELETE FROM probe;")?;
        Ok(found)
    }

    /// The text of the stored event with this identity and content hash.
    fn stored_text(
        conn: &Connection,
        (cluster, audit_id, stage, ts): &StoredIdentity,
        hash: i64,
    ) -> duckdb::Result<Option<String>> {
        let mut stmt = conn.prepare_cached(
            "SELECT raw FROM events WHERE ts = ? AND cluster = ? AND audit_id = ? AND stage = ? AND coalesce(content_hash, 0) = ? LIMIT 1",
        )?;
        let mut rows = stmt.query(params_from_iter([
            Value::BigInt(*ts),
            Value::Text(cluster.clone()),
            Value::Text(audit_id.clone()),
            Value::Text(stage.clone()),
            Value::BigInt(hash),
        ]))?;
        match rows.next()? {
            Some(row) => row.get(0).map(Some),
            None => Ok(None),
        }
    }

    /// Moves the rollup's watermark up to the hour of the newest event appended, and merges
    /// its rows when they have doubled (inside the append's transaction). Returns the new
    /// watermark, to publish once committed.
    fn maintain_rollup(
        &self,
        conn: &Connection,
        batches: &[Vec<&Record>],
        mut added: u64,
        through: i64,
    ) -> duckdb::Result<i64> {
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

    /// Deletes events up to `cutoff` with `delete` and counts the hours it touched again, in
    /// one transaction: no reader sees the rollup disagree with the events.
    fn delete_and_recount(
        &self,
        conn: &Connection,
        delete: &str,
        cutoff: i64,
        pruned_before: i64,
    ) -> duckdb::Result<u64> {
        let mut chain = self.chain.get().map(|c| c.lock());
        conn.execute_batch("BEGIN TRANSACTION;")?;
        let done = conn.execute(delete, [cutoff]).and_then(|n| {
            rollup::rebuild_through(conn, cutoff)?;
            // What retention took is said in the chains, in the same commit.
            let links = match &chain {
                Some(chain) if n > 0 => {
                    let clusters = crate::chain::chained_clusters(conn)?;
                    let now = chrono::Utc::now().timestamp_micros();
                    let links = chain.prune(&clusters, pruned_before, now);
                    crate::chain::insert_links(conn, &links)?;
                    crate::chain::drop_pruned_entries(conn, pruned_before)?;
                    links
                }
                _ => Vec::new(),
            };
            Ok((n as u64, links))
        });
        // As for an append: a statement first, since DuckDB turns the COMMIT of an
        // invalidated transaction into a rollback that reports success.
        let done = done.and_then(|d| {
            conn.execute_batch("SELECT 1;")?;
            conn.execute_batch("COMMIT;")?;
            Ok(d)
        });
        match done {
            Ok((n, links)) => {
                if let Some(chain) = &mut chain {
                    chain.advance(&links);
                }
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

    pub(crate) fn retain(&self, retention: &Retention) -> Result<RetentionOutcome> {
        let mut deleted = 0u64;
        if let Some(age) = retention.max_age {
            let cutoff = chrono::Utc::now().timestamp_micros() - age.as_micros() as i64;
            let conn = self.lock();
            deleted += self
                .delete_and_recount(&conn, "DELETE FROM events WHERE ts < ?", cutoff, cutoff)
                .map_err(|e| self.fail("deleting old events", e))?;
            // Alerts go with the events they rest on.
            conn.execute("DELETE FROM alerts WHERE ts < ?", [cutoff])
                .map_err(|e| self.fail("deleting old alerts", e))?;
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
                        .delete_and_recount(
                            &conn,
                            "DELETE FROM events WHERE ts <= ?",
                            cutoff,
                            cutoff.saturating_add(1),
                        )
                        .map_err(|e| self.fail("deleting events over the size limit", e))?;
                }
            }
        }
        if deleted > 0 {
            let conn = self.lock();
            conn.execute_batch("CHECKPOINT;")
                .map_err(|e| self.fail("checkpointing after retention", e))?;
        }
        Ok(RetentionOutcome {
            deleted,
            bytes_after: self.size_bytes()?,
        })
    }
}

/// The links of a commit's `pending` events, stored inside its transaction.
pub(crate) fn link_pending(
    conn: &Connection,
    chain: Option<&ChainLock<'_>>,
    pending: Option<Pending>,
) -> duckdb::Result<Vec<LinkRow>> {
    let (Some(chain), Some(pending)) = (chain, pending) else {
        return Ok(Vec::new());
    };
    if pending.is_empty() {
        return Ok(Vec::new());
    }
    let links = chain.links(pending, chrono::Utc::now().timestamp_micros());
    crate::chain::insert_links(conn, &links)?;
    Ok(links)
}

/// The ResponseStarted events among rows, as (cluster, auditID).
pub(crate) fn starts_of(rows: &[Vec<&Record>]) -> impl Iterator<Item = (String, String)> {
    rows.iter()
        .flatten()
        .filter(|r| r.stage == Some(Stage::ResponseStarted))
        .map(|r| (r.cluster.clone(), r.audit_id.clone()))
}

/// Rows in one of DuckDB's chunks (its vector size).
pub(crate) const CHUNK_ROWS: usize = 2048;

/// The `events` table's columns for `rows`, in table order. Text columns have 64-bit offsets:
/// 2,048 events of a few MB each (bodies at RequestResponse level) pass 2 GiB.
fn columns(rows: &[&Record], counted: &[bool], batches: &[i64]) -> duckdb::Result<RecordBatch> {
    let mut groups = LargeStringBuilder::with_capacity(rows.len(), 0);
    let mut buf = String::new();
    for r in rows {
        encode_groups(&r.groups, &mut buf);
        groups.append_value(&buf);
    }
    let int64 = |value: fn(&Record) -> i64| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| value(r))))
    };
    let columns: [ArrayRef; 27] = [
        text_column(rows, |r| &r.cluster),
        text_column(rows, |r| &r.audit_id),
        text_column(rows, |r| r.stage.map(Stage::as_str).unwrap_or("")),
        text_column(rows, |r| r.level.map(Level::as_str).unwrap_or("")),
        int64(|r| r.ts_micros),
        Arc::new(Int64Array::from_iter(
            rows.iter().map(|r| r.request_ts_micros),
        )),
        int64(|r| r.received_micros),
        text_column(rows, |r| &r.verb),
        text_column(rows, |r| &r.user),
        Arc::new(groups.finish()),
        text_column(rows, |r| &r.impersonated_user),
        text_column(rows, |r| &r.source_ip),
        text_column(rows, |r| &r.user_agent),
        text_column(rows, |r| &r.api_group),
        text_column(rows, |r| &r.api_version),
        text_column(rows, |r| &r.resource),
        text_column(rows, |r| &r.subresource),
        text_column(rows, |r| &r.namespace),
        text_column(rows, |r| &r.name),
        Arc::new(Int32Array::from_iter_values(
            rows.iter().map(|r| r.code.unwrap_or(0)),
        )),
        text_column(rows, |r| &r.decision),
        text_column(rows, |r| &r.reason),
        text_column(rows, |r| &r.request_uri),
        text_column(rows, |r| &r.raw),
        Arc::new(BooleanArray::from(counted.to_vec())),
        int64(|r| r.content_hash),
        Arc::new(Int64Array::from_iter_values(batches.iter().copied())),
    ];
    record_batch(columns)
}

/// One text column of `rows`, with 64-bit offsets.
fn text_column<'r>(rows: &[&'r Record], value: impl Fn(&'r Record) -> &'r str) -> ArrayRef {
    let bytes = rows.iter().map(|r| value(r).len()).sum();
    let mut column = LargeStringBuilder::with_capacity(rows.len(), bytes);
    for r in rows {
        column.append_value(value(r));
    }
    Arc::new(column.finish())
}

/// Columns in table order as one Arrow batch (the appender matches them by position).
pub(crate) fn record_batch<const N: usize>(columns: [ArrayRef; N]) -> duckdb::Result<RecordBatch> {
    RecordBatch::try_from_iter(
        columns
            .into_iter()
            .enumerate()
            .map(|(i, column)| (format!("c{i}"), column)),
    )
    .map_err(|e| duckdb::Error::ToSqlConversionFailure(Box::new(e)))
}

/// The identity columns of the `probe` table for `rows`.
fn identity_columns(rows: &[&Record]) -> duckdb::Result<RecordBatch> {
    let text = |value: fn(&Record) -> &str| text_column(rows, value);
    let columns: [ArrayRef; 4] = [
        text(|r| &r.cluster),
        text(|r| &r.audit_id),
        text(|r| r.stage.map(Stage::as_str).unwrap_or("")),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| r.ts_micros),
        )),
    ];
    record_batch(columns)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_delimited_on_both_sides() {
        let mut out = String::from("stale");
        encode_groups(&["a".into(), "b".into()], &mut out);
        assert_eq!(out, "\u{1f}a\u{1f}b\u{1f}");
        encode_groups(&[], &mut out);
        assert_eq!(out, "");
    }
}
