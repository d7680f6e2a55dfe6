//! The hash chain in ClickHouse ([`kubetrail_store::chain`]): links in the `chain` table and
//! their manifests' entries in `chain_entries`, the public keys in `chain_keys`, each event's
//! link in its `chain_batch` column.
//!
//! ClickHouse has no transactions: a commit inserts its events, then its links' entries and
//! the links, so a failure
//! between the two leaves events whose link is missing (the batch is not acknowledged, and
//! `verify` names them as outside the chain); retention inserts its prune links before it
//! deletes, so a prune that did not finish claims more than was taken, never less.

use kubetrail_model::hex;
use kubetrail_store::chain::{Entry, Link, LinkKind, LinkRow, parse_hash};
use kubetrail_store::sql::COLUMNS;
use kubetrail_store::{Record, Result, Strays};
use serde_json::Value;

use crate::client::int;
use crate::{ClickHouseStore, record_from_row, sql, text};

/// Batch ids one statement names.
const BATCHES_PER_QUERY: usize = 50;

const LINK_COLUMNS: &str = "cluster, key_id, seq, kind, batch, prev, digest, events, first_ts, last_ts, pruned_before, created, signature";

impl ClickHouseStore {
    pub(crate) fn chain_table(&self) -> String {
        format!("{}.chain", sql::ident(self.ch.database()))
    }

    fn entries_table(&self) -> String {
        format!("{}.chain_entries", sql::ident(self.ch.database()))
    }

    fn keys_table(&self) -> String {
        format!("{}.chain_keys", sql::ident(self.ch.database()))
    }

    /// Schema version 4: the chain's tables and the events' `chain_batch` (0: outside any
    /// chain). Another server may migrate at the same time: an ALTER that fails because the
    /// column is there now is that server's.
    pub(crate) fn migrate_chain(&self) -> Result<()> {
        let has_batch = || -> Result<bool> {
            Ok(self.ch.scalar(&format!(
                "SELECT count() FROM system.columns WHERE database = {} AND table = 'events' AND name = 'chain_batch'",
                sql::literal(self.ch.database())
            ))? > 0)
        };
        if !has_batch()? {
            let altered = self.ch.execute(&format!(
                "ALTER TABLE {} ADD COLUMN chain_batch Int64",
                self.table
            ));
            if let Err(e) = altered
                && !has_batch()?
            {
                return Err(e);
            }
        }
        self.ch.execute(&format!(
            "CREATE TABLE IF NOT EXISTS {} (
                cluster String, key_id String, seq Int64, kind String, batch Int64,
                prev String, digest String, events Int64, first_ts Int64, last_ts Int64,
                pruned_before Int64, created Int64, signature String
            ) ENGINE = MergeTree ORDER BY (cluster, key_id, seq)",
            self.chain_table()
        ))?;
        self.ch.execute(&format!(
            "CREATE TABLE IF NOT EXISTS {} (
                cluster String, batch Int64, ts Int64, audit_id String, stage String, digest String
            ) ENGINE = MergeTree ORDER BY (cluster, batch)",
            self.entries_table()
        ))?;
        self.ch.execute(&format!(
            "CREATE TABLE IF NOT EXISTS {} (key_id String, public_key String) ENGINE = ReplacingMergeTree ORDER BY key_id",
            self.keys_table()
        ))
    }

    /// Stores the manifest entries of `rows` (each record with its batch id and digest), after
    /// their events and before their links: a link is stored only with its manifest.
    pub(crate) fn insert_entries(
        &self,
        rows: &[(&Record, i64, kubetrail_store::chain::Hash)],
    ) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut body = String::new();
        for (r, batch, digest) in rows {
            let row = serde_json::json!({
                "cluster": r.cluster, "batch": batch, "ts": r.ts_micros, "audit_id": r.audit_id,
                "stage": r.stage.map(kubetrail_model::Stage::as_str).unwrap_or(""),
                "digest": hex(digest),
            });
            body.push_str(&row.to_string());
            body.push('\n');
        }
        self.ch.insert(
            &format!("INSERT INTO {} FORMAT JSONEachRow", self.entries_table()),
            body,
        )
    }

    pub(crate) fn insert_links(&self, rows: &[LinkRow]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut body = String::new();
        for r in rows {
            let l = &r.link;
            let row = serde_json::json!({
                "cluster": l.cluster, "key_id": l.key_id, "seq": l.seq, "kind": l.kind.as_str(),
                "batch": l.batch, "prev": hex(&l.prev), "digest": hex(&l.digest),
                "events": l.events, "first_ts": l.first_micros, "last_ts": l.last_micros,
                "pruned_before": l.pruned_before, "created": l.created_micros,
                "signature": hex(&l.signature),
            });
            body.push_str(&row.to_string());
            body.push('\n');
        }
        self.ch.insert(
            &format!("INSERT INTO {} FORMAT JSONEachRow", self.chain_table()),
            body,
        )
    }

    pub(crate) fn chained_clusters(&self) -> Result<Vec<String>> {
        let q = format!("SELECT DISTINCT cluster FROM {}", self.chain_table());
        Ok(self.ch.rows(&q)?.iter().map(|r| text(&r[0])).collect())
    }

    pub(crate) fn links(&self) -> Result<Vec<Link>> {
        let q = format!("SELECT {LINK_COLUMNS} FROM {}", self.chain_table());
        Ok(self.ch.rows(&q)?.iter().map(|r| link_from_row(r)).collect())
    }

    pub(crate) fn public_keys(&self) -> Result<Vec<String>> {
        let q = format!(
            "SELECT DISTINCT public_key FROM {} ORDER BY public_key",
            self.keys_table()
        );
        Ok(self.ch.rows(&q)?.iter().map(|r| text(&r[0])).collect())
    }

    pub(crate) fn keep_public_key(&self, key_id: &str, pem: &str) -> Result<()> {
        let row = serde_json::json!({"key_id": key_id, "public_key": pem});
        self.ch.insert(
            &format!("INSERT INTO {} FORMAT JSONEachRow", self.keys_table()),
            format!("{row}\n"),
        )
    }

    pub(crate) fn entries(&self, cluster: &str, batches: &[i64]) -> Result<Vec<(i64, Entry)>> {
        let mut out = Vec::new();
        for chunk in batches.chunks(BATCHES_PER_QUERY) {
            let q = format!(
                "SELECT batch, ts, audit_id, stage, digest FROM {} WHERE cluster = {} AND batch IN ({})",
                self.entries_table(),
                sql::literal(cluster),
                ids(chunk)
            );
            out.extend(self.ch.rows(&q)?.iter().map(|r| {
                (
                    int(&r[0]),
                    Entry {
                        ts_micros: int(&r[1]),
                        audit_id: text(&r[2]),
                        stage: text(&r[3]),
                        // A digest that does not parse is no event's: it matches nothing.
                        digest: parse_hash(&text(&r[4])).unwrap_or([0; 32]),
                    },
                )
            }));
        }
        Ok(out)
    }

    pub(crate) fn chained_events(
        &self,
        cluster: &str,
        batches: &[i64],
        each: &mut dyn FnMut(i64, Record),
    ) -> Result<()> {
        for chunk in batches.chunks(BATCHES_PER_QUERY) {
            // Without FINAL: every physical row, a second copy too.
            let q = format!(
                "SELECT {}, chain_batch FROM {} WHERE cluster = {} AND chain_batch IN ({})",
                COLUMNS.join(", "),
                self.table,
                sql::literal(cluster),
                ids(chunk)
            );
            for row in self.ch.rows(&q)? {
                each(int(&row[COLUMNS.len()]), record_from_row(&row));
            }
        }
        Ok(())
    }

    pub(crate) fn strays(&self, limit: usize, settled_before: i64) -> Result<Strays> {
        let outside = format!(
            "FROM {} WHERE (cluster, chain_batch) NOT IN (SELECT cluster, batch FROM {} WHERE kind = 'batch') AND (chain_batch = 0 OR received < {settled_before} OR received >= {})",
            self.table,
            self.chain_table(),
            settled_before.saturating_add(kubetrail_store::chain::SETTLING_MICROS)
        );
        let counts = self
            .ch
            .rows(&format!(
                "SELECT cluster, count() {outside} GROUP BY cluster ORDER BY cluster"
            ))?
            .iter()
            .map(|r| (text(&r[0]), int(&r[1]) as u64))
            .collect();
        let first = self
            .ch
            .rows(&format!(
                "SELECT {}, chain_batch {outside} ORDER BY ts LIMIT {limit}",
                COLUMNS.join(", ")
            ))?
            .iter()
            .map(|r| (int(&r[COLUMNS.len()]), record_from_row(r)))
            .collect();
        Ok(Strays { counts, first })
    }
}

fn ids(batches: &[i64]) -> String {
    batches
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A stored link. A field that does not parse (a damaged or forged row) reads as zeros or
/// empty, which no signature covers: `verify` reports the link instead of failing to read.
fn link_from_row(row: &[Value]) -> Link {
    let t = |i: usize| row.get(i).map(text).unwrap_or_default();
    let n = |i: usize| row.get(i).map(int).unwrap_or(0);
    Link {
        cluster: t(0),
        key_id: t(1),
        seq: n(2).max(0) as u64,
        kind: LinkKind::parse(&t(3)).unwrap_or(LinkKind::Batch),
        batch: n(4),
        prev: parse_hash(&t(5)).unwrap_or([0; 32]),
        digest: parse_hash(&t(6)).unwrap_or([0; 32]),
        events: n(7).max(0) as u64,
        first_micros: n(8),
        last_micros: n(9),
        pruned_before: n(10),
        created_micros: n(11),
        signature: kubetrail_model::unhex(&t(12)).unwrap_or_default(),
    }
}
