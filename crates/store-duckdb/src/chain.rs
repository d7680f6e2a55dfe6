//! The hash chain in the embedded store ([`kubetrail_store::chain`]): links in the `chain`
//! table and their manifests' entries in `chain_entries`, written in the transaction of the
//! events they cover (or of retention's deletes); the public keys in `chain_keys`; each
//! event's link in its `chain_batch` column.

use std::sync::Arc;

use duckdb::arrow::array::{ArrayRef, BinaryArray, Int64Array, LargeStringBuilder, RecordBatch};
use duckdb::types::Value;
use duckdb::{Connection, params_from_iter};
use kubetrail_model::{Stage, hex};
use kubetrail_store::chain::{Entry, Hash, Link, LinkKind, LinkRow, parse_hash};
use kubetrail_store::sql::COLUMNS;
use kubetrail_store::{Record, Result, Strays};

use crate::{DuckDbStore, record_from_row};

/// Schema version 6: the chain's tables and the events' `chain_batch` (0: outside any chain).
pub(crate) const MIGRATION: &str = "ALTER TABLE events ADD COLUMN chain_batch BIGINT DEFAULT 0;
    CREATE TABLE chain (
        cluster VARCHAR NOT NULL,
        key_id VARCHAR NOT NULL,
        seq BIGINT NOT NULL,
        kind VARCHAR NOT NULL,
        batch BIGINT NOT NULL,
        prev VARCHAR NOT NULL,
        digest VARCHAR NOT NULL,
        events BIGINT NOT NULL,
        first_ts BIGINT NOT NULL,
        last_ts BIGINT NOT NULL,
        pruned_before BIGINT NOT NULL,
        created BIGINT NOT NULL,
        signature VARCHAR NOT NULL
    );
    CREATE TABLE chain_entries (
        cluster VARCHAR NOT NULL,
        batch BIGINT NOT NULL,
        ts BIGINT NOT NULL,
        audit_id VARCHAR NOT NULL,
        stage VARCHAR NOT NULL,
        digest BLOB NOT NULL
    );
    CREATE TABLE chain_keys (key_id VARCHAR PRIMARY KEY, public_key VARCHAR NOT NULL);";

const LINK_COLUMNS: &str = "cluster, key_id, seq, kind, batch, prev, digest, events, first_ts, last_ts, pruned_before, created, signature";

/// How long after `settled_before` a row's link may still be on its way: rows received later
/// than that (a time in the future) are counted all the same.
const SETTLING_MICROS: i64 = kubetrail_store::chain::SETTLING_MICROS;

/// Batch ids one statement names.
const BATCHES_PER_QUERY: usize = 500;

/// Appends the manifest entries of `rows` (with their batch ids) inside the open
/// transaction (each row with its batch id and record digest), as the events are appended:
/// as columns, by the writer that appends the events (a bulk load's two at once), not later
/// under the chain's lock.
pub(crate) fn append_entries(
    conn: &Connection,
    rows: &[(&Record, i64, Hash)],
) -> duckdb::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut appender = conn.appender("chain_entries")?;
    for chunk in rows.chunks(crate::write::CHUNK_ROWS) {
        appender.append_record_batch(entry_columns(chunk)?)?;
    }
    appender.flush()
}

/// Stores `rows` inside the open transaction (their entries went in with their events).
pub(crate) fn insert_links(conn: &Connection, rows: &[LinkRow]) -> duckdb::Result<()> {
    let mut insert = conn.prepare_cached(&format!(
        "INSERT INTO chain ({LINK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))?;
    for r in rows {
        let l = &r.link;
        insert.execute(params_from_iter([
            Value::Text(l.cluster.clone()),
            Value::Text(l.key_id.clone()),
            Value::BigInt(l.seq as i64),
            Value::Text(l.kind.as_str().into()),
            Value::BigInt(l.batch),
            Value::Text(hex(&l.prev)),
            Value::Text(hex(&l.digest)),
            Value::BigInt(l.events as i64),
            Value::BigInt(l.first_micros),
            Value::BigInt(l.last_micros),
            Value::BigInt(l.pruned_before),
            Value::BigInt(l.created_micros),
            Value::Text(hex(&l.signature)),
        ]))?;
    }
    Ok(())
}

fn entry_columns(rows: &[(&Record, i64, Hash)]) -> duckdb::Result<RecordBatch> {
    let text = |value: fn(&Record) -> &str| -> ArrayRef {
        let mut b = LargeStringBuilder::with_capacity(rows.len(), 0);
        for (r, _, _) in rows {
            b.append_value(value(r));
        }
        Arc::new(b.finish())
    };
    let columns: [ArrayRef; 6] = [
        text(|r| r.cluster.as_str()),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|(_, b, _)| *b),
        )),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|(r, _, _)| r.ts_micros),
        )),
        text(|r| r.audit_id.as_str()),
        text(|r| r.stage.map(Stage::as_str).unwrap_or("")),
        Arc::new(BinaryArray::from_iter_values(
            rows.iter().map(|(_, _, d)| d),
        )),
    ];
    crate::write::record_batch(columns)
}

/// Deletes the manifest entries of the links whose every event is older than `before`, once a
/// prune link says retention took them: `verify` counts such a link's events as taken.
pub(crate) fn drop_pruned_entries(conn: &Connection, before: i64) -> duckdb::Result<()> {
    conn.execute(
        "DELETE FROM chain_entries WHERE (cluster, batch) IN (SELECT cluster, batch FROM chain WHERE kind = 'batch' AND last_ts < ?)",
        [before],
    )
    .map(|_| ())
}

/// The clusters that have links.
pub(crate) fn chained_clusters(conn: &Connection) -> duckdb::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached("SELECT DISTINCT cluster FROM chain")?;
    stmt.query_map([], |row| row.get(0))?.collect()
}

/// A stored link. A field that does not parse (a damaged or forged row) reads as zeros or
/// empty, which no signature covers: `verify` reports the link instead of failing to read.
fn link_from_row(row: &duckdb::Row<'_>) -> duckdb::Result<Link> {
    let text = |i: usize| -> duckdb::Result<String> {
        Ok(row.get::<_, Option<String>>(i)?.unwrap_or_default())
    };
    let int = |i: usize| -> duckdb::Result<i64> { Ok(row.get::<_, Option<i64>>(i)?.unwrap_or(0)) };
    Ok(Link {
        cluster: text(0)?,
        key_id: text(1)?,
        seq: int(2)?.max(0) as u64,
        kind: LinkKind::parse(&text(3)?).unwrap_or(LinkKind::Batch),
        batch: int(4)?,
        prev: parse_hash(&text(5)?).unwrap_or([0; 32]),
        digest: parse_hash(&text(6)?).unwrap_or([0; 32]),
        events: int(7)?.max(0) as u64,
        first_micros: int(8)?,
        last_micros: int(9)?,
        pruned_before: int(10)?,
        created_micros: int(11)?,
        signature: kubetrail_model::unhex(&text(12)?).unwrap_or_default(),
    })
}

impl DuckDbStore {
    pub(crate) fn links(&self) -> Result<Vec<Link>> {
        let conn = self.read();
        let mut stmt = conn
            .prepare(&format!("SELECT {LINK_COLUMNS} FROM chain"))
            .map_err(|e| self.fail("reading the chain", e))?;
        stmt.query_map([], link_from_row)
            .and_then(|rows| rows.collect::<duckdb::Result<Vec<_>>>())
            .map_err(|e| self.fail("reading the chain", e))
    }

    pub(crate) fn public_keys(&self) -> Result<Vec<String>> {
        let conn = self.read();
        let mut stmt = conn
            .prepare("SELECT public_key FROM chain_keys ORDER BY key_id")
            .map_err(|e| self.fail("reading the chain's keys", e))?;
        stmt.query_map([], |row| row.get(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.fail("reading the chain's keys", e))
    }

    pub(crate) fn keep_public_key(&self, key_id: &str, pem: &str) -> Result<()> {
        self.lock()
            .execute(
                "INSERT OR IGNORE INTO chain_keys VALUES (?, ?)",
                [key_id, pem],
            )
            .map(|_| ())
            .map_err(|e| self.fail("keeping the chain's public key", e))
    }

    pub(crate) fn entries(&self, cluster: &str, batches: &[i64]) -> Result<Vec<(i64, Entry)>> {
        let conn = self.read();
        let mut out = Vec::new();
        let fail = |e| self.fail("reading the chain's manifests", e);
        for chunk in batches.chunks(BATCHES_PER_QUERY) {
            let sql = format!(
                "SELECT batch, ts, audit_id, stage, digest FROM chain_entries WHERE cluster = ? AND batch IN ({})",
                vec!["?"; chunk.len()].join(", ")
            );
            let mut params = vec![Value::Text(cluster.into())];
            params.extend(chunk.iter().map(|b| Value::BigInt(*b)));
            let mut stmt = conn.prepare(&sql).map_err(fail)?;
            let rows = stmt
                .query_map(params_from_iter(params), |row| {
                    let digest: Vec<u8> = row.get(4)?;
                    Ok((
                        row.get(0)?,
                        Entry {
                            ts_micros: row.get(1)?,
                            audit_id: row.get(2)?,
                            stage: row.get(3)?,
                            // A digest of another length is no event's: it matches nothing.
                            digest: digest.try_into().unwrap_or([0; 32]),
                        },
                    ))
                })
                .and_then(|rows| rows.collect::<duckdb::Result<Vec<_>>>())
                .map_err(fail)?;
            out.extend(rows);
        }
        Ok(out)
    }

    pub(crate) fn chained_events(
        &self,
        cluster: &str,
        batches: &[i64],
        each: &mut dyn FnMut(i64, Record),
    ) -> Result<()> {
        let conn = self.read();
        for chunk in batches.chunks(BATCHES_PER_QUERY) {
            let sql = format!(
                "SELECT {}, coalesce(chain_batch, 0) FROM events WHERE cluster = ? AND chain_batch IN ({})",
                COLUMNS.join(", "),
                vec!["?"; chunk.len()].join(", ")
            );
            let mut params = vec![Value::Text(cluster.into())];
            params.extend(chunk.iter().map(|b| Value::BigInt(*b)));
            let mut stmt = conn
                .prepare(&sql)
                .map_err(|e| self.fail("reading the chained events", e))?;
            let mut rows = stmt
                .query(params_from_iter(params))
                .map_err(|e| self.fail("reading the chained events", e))?;
            while let Some(row) = rows
                .next()
                .map_err(|e| self.fail("reading the chained events", e))?
            {
                let record =
                    record_from_row(row).map_err(|e| self.fail("reading the chained events", e))?;
                let batch: i64 = row
                    .get(COLUMNS.len())
                    .map_err(|e| self.fail("reading the chained events", e))?;
                each(batch, record);
            }
        }
        Ok(())
    }

    pub(crate) fn strays(&self, limit: usize, settled_before: i64) -> Result<Strays> {
        let conn = self.read();
        let outside = format!(
            "FROM events e WHERE NOT EXISTS (SELECT 1 FROM chain c WHERE c.kind = 'batch' AND c.cluster = e.cluster AND c.batch = coalesce(e.chain_batch, 0)) AND (coalesce(e.chain_batch, 0) = 0 OR e.received < {settled_before} OR e.received >= {})",
            settled_before.saturating_add(SETTLING_MICROS)
        );
        let fail = |e| self.fail("reading the events outside the chain", e);
        let mut stmt = conn
            .prepare(&format!(
                "SELECT cluster, count(*) {outside} GROUP BY cluster ORDER BY cluster"
            ))
            .map_err(fail)?;
        let counts = stmt
            .query_map([], |row| Ok((row.get(0)?, row.get::<_, i64>(1)? as u64)))
            .and_then(|rows| rows.collect::<duckdb::Result<Vec<_>>>())
            .map_err(fail)?;
        let columns: Vec<String> = COLUMNS.iter().map(|c| format!("e.{c}")).collect();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {}, coalesce(e.chain_batch, 0) {outside} ORDER BY e.ts LIMIT ?",
                columns.join(", ")
            ))
            .map_err(fail)?;
        let first = stmt
            .query_map([limit as i64], |row| {
                Ok((row.get(COLUMNS.len())?, record_from_row(row)?))
            })
            .and_then(|rows| rows.collect::<duckdb::Result<Vec<_>>>())
            .map_err(fail)?;
        Ok(Strays { counts, first })
    }
}
