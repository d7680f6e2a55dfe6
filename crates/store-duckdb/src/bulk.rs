//! Bulk loads ([`Store::bulk`](kubetrail_store::Store::bulk)): an import's batches written by
//! two connections at once, each keeping one transaction open over many batches.
//!
//! A transaction that appends whole row groups (122,880 rows) has DuckDB write them compressed
//! into the database file as they fill, instead of every row going to the WAL and being
//! compressed again at the next checkpoint; two writers compress on both cores. Each record
//! goes to the writer its (cluster, auditID) hashes to, so a repeat of an event, and every
//! stage of one request, always meet the same writer: its own uncommitted rows, the store's
//! committed ones and its memory of starts are all it needs to find repeats and decide
//! `counted`, as a single writer would.
//!
//! The rollup is not kept in step batch by batch (two open transactions cannot both move its
//! watermark): the load marks it stale, committed, before its first row, and counts the hours
//! it touched again when it finishes. A load that is killed leaves the mark, and the next open
//! counts everything again. Until a load ends, reports in the same process may miss its events in
//! hours that were already counted; `import`, the one user, asks nothing meanwhile.

use std::sync::MutexGuard;
use std::sync::atomic::Ordering::Relaxed;

use duckdb::Connection;
use kubetrail_store::{AppendOutcome, BulkAppend, Error, Record, Result};

use kubetrail_store::chain::Pending;

use crate::write::{RecentStarts, link_pending, starts_of};
use crate::{DuckDbStore, rollup};

/// Rows a writer appends before it commits: four of DuckDB's row groups. Committing now and
/// then bounds what an interrupted import loses.
pub const BULK_COMMIT_ROWS: u64 = 4 * 122_880;

/// Connections writing at once.
const WRITERS: usize = 2;

/// DuckDB's settings while a load runs (they are the database's, not a connection's):
/// each writer runs its inserts itself, instead of handing them to DuckDB's worker threads
/// and waiting on them (a sixth less CPU for an import, as the two writers already keep both
/// cores busy); and each full row group is written as it fills rather than five at a time
/// (half the memory: 1 GB rather than 2 for 1M events, no slower).
const LOAD_SETTINGS: &str = "SET threads = 1; SET write_buffer_row_group_count = 1;";

/// What the load's settings return to.
const USUAL_SETTINGS: &str = "RESET threads; RESET write_buffer_row_group_count;";

/// The `kubetrail_meta` key that marks the rollup stale.
pub(crate) const STALE: &str = "rollup_stale";

/// At open: if a bulk load was interrupted, counts every hour again and clears its mark.
pub(crate) fn recount_if_stale(conn: &Connection) -> duckdb::Result<()> {
    let stale: bool = conn.query_row(
        "SELECT count(*) > 0 FROM kubetrail_meta WHERE key = ?",
        [STALE],
        |r| r.get(0),
    )?;
    if stale {
        recount_and_unmark(conn, Some(0))?;
    }
    Ok(())
}

/// In one transaction: counts the hours from `from` again (none when `None`) and clears the
/// mark; returns the new watermark and the rollup's rows, when it counted.
fn recount_and_unmark(conn: &Connection, from: Option<i64>) -> duckdb::Result<Option<(i64, u64)>> {
    let tx = conn.unchecked_transaction()?;
    let counted = match from {
        Some(from) => {
            let through = rollup::recount_from(conn, from)?;
            Some((through, rollup::rows(conn)?))
        }
        None => None,
    };
    conn.execute("DELETE FROM kubetrail_meta WHERE key = ?", [STALE])?;
    tx.commit()?;
    Ok(counted)
}

/// One writing connection and its open transaction.
struct Writer {
    conn: Connection,
    open: bool,
    /// Rows the open transaction has appended.
    rows: u64,
    /// ResponseStarted events of the open transaction, remembered by the store once it commits.
    starts: RecentStarts,
    /// Whether it has committed anything.
    committed: bool,
    /// The open transaction's events, for its links (when the store keeps a chain).
    pending: Option<Pending>,
}

impl Writer {
    /// Appends `rows` (every record of the load's batch with their (cluster, auditID)); returns
    /// their outcome.
    fn append(
        &mut self,
        store: &DuckDbStore,
        rows: Vec<&Record>,
        commit_rows: u64,
    ) -> Result<AppendOutcome> {
        if rows.is_empty() {
            return Ok(AppendOutcome::default());
        }
        if !self.open {
            self.conn
                .execute_batch("BEGIN TRANSACTION;")
                .map_err(|e| store.fail("beginning a bulk load", e))?;
            self.open = true;
            self.rows = 0;
            self.pending = store.chain.get().map(|_| Pending::default());
        }
        let newest = store.newest.load(Relaxed);
        let max = rows.iter().map(|r| r.ts_micros).max().unwrap_or(i64::MIN);
        let batches = [rows];
        let written = {
            let session = &self.starts;
            let known = |cluster: &str, audit_id: &str| {
                session.contains(cluster, audit_id)
                    || store.recent_starts().contains(cluster, audit_id)
            };
            // No watermark: the rollup is counted again when the load finishes.
            DuckDbStore::append_in_transaction(
                &self.conn,
                &batches,
                &known,
                i64::MIN,
                newest,
                self.pending.as_mut(),
            )
        };
        let outcome = match written {
            Ok((outcomes, _)) => outcomes.into_iter().next().unwrap_or_default(),
            Err(e) => {
                self.rollback();
                return Err(store.fail("appending a batch of a bulk load", e));
            }
        };
        store.newest.fetch_max(max, Relaxed);
        for key in starts_of(&batches) {
            self.starts.insert(key);
        }
        self.rows += outcome.stored;
        if self.rows >= commit_rows {
            self.commit(store)?;
        }
        Ok(outcome)
    }

    fn commit(&mut self, store: &DuckDbStore) -> Result<()> {
        if !self.open {
            return Ok(());
        }
        self.open = false;
        // The transaction's links, numbered under the chain's lock held until it commits: the
        // two writers' commits take turns.
        let mut chain = store.chain.get().map(|c| c.lock());
        let linked = link_pending(&self.conn, chain.as_ref(), self.pending.take());
        // As for an append: a COMMIT of an invalidated transaction would report success.
        let committed = linked.and_then(|links| {
            self.conn.execute_batch("SELECT 1;")?;
            self.conn.execute_batch("COMMIT;")?;
            Ok(links)
        });
        let links = match committed {
            Ok(links) => links,
            Err(e) => {
                self.starts = RecentStarts::default();
                let _ = self.conn.execute_batch("ROLLBACK;");
                return Err(store.fail("committing a bulk load", e));
            }
        };
        if let Some(chain) = &mut chain {
            chain.advance(&links);
        }
        self.committed = true;
        store.recent_starts().take_all(&mut self.starts);
        Ok(())
    }

    fn rollback(&mut self) {
        if self.open {
            self.open = false;
            self.starts = RecentStarts::default();
            self.pending = None;
            let _ = self.conn.execute_batch("ROLLBACK;");
        }
    }
}

/// A bulk load into the embedded store (see the module's text). It holds the store's writing
/// connection while it lasts, so other appends wait.
pub struct DuckDbBulk<'s> {
    store: &'s DuckDbStore,
    conn: MutexGuard<'s, Connection>,
    writers: Vec<Writer>,
    commit_rows: u64,
    /// Whether the rollup is marked stale.
    marked: bool,
    /// The oldest time stored by the load.
    oldest: i64,
}

impl<'s> DuckDbBulk<'s> {
    pub(crate) fn new(store: &'s DuckDbStore, commit_rows: u64) -> Result<DuckDbBulk<'s>> {
        store.failed()?;
        let conn = store.lock();
        let writers = (0..WRITERS)
            .map(|_| {
                let conn = conn.try_clone()?;
                Ok(Writer {
                    conn,
                    open: false,
                    rows: 0,
                    starts: RecentStarts::default(),
                    committed: false,
                    pending: None,
                })
            })
            .collect::<duckdb::Result<Vec<_>>>()
            .map_err(|e| store.fail("opening the bulk load's connections", e))?;
        // Last, so that a load that could not start leaves the settings as they were.
        conn.execute_batch(LOAD_SETTINGS)
            .map_err(|e| store.fail("setting up a bulk load", e))?;
        Ok(DuckDbBulk {
            store,
            conn,
            writers,
            commit_rows,
            marked: false,
            oldest: i64::MAX,
        })
    }

    /// Restores DuckDB's settings, counts the hours the load touched again and clears the
    /// mark.
    fn end(&mut self) -> Result<()> {
        self.conn
            .execute_batch(USUAL_SETTINGS)
            .map_err(|e| self.store.fail("ending a bulk load", e))?;
        if !self.marked {
            return Ok(());
        }
        let committed = self.writers.iter().any(|w| w.committed);
        let counted = recount_and_unmark(&self.conn, committed.then_some(self.oldest))
            .map_err(|e| self.store.fail("counting the loaded hours", e))?;
        self.marked = false;
        if let Some((through, rows)) = counted {
            self.store.rollup_through.store(through, Relaxed);
            self.store.rollup_rows.store(rows, Relaxed);
            self.store.rollup_compacted.store(rows, Relaxed);
        }
        Ok(())
    }
}

/// The writer a record goes to: by its (cluster, auditID), so that repeats and the stages of
/// one request meet.
fn writer_of(r: &Record) -> usize {
    let h = r
        .cluster
        .bytes()
        .chain([0x1f])
        .chain(r.audit_id.bytes())
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
    (h % WRITERS as u64) as usize
}

impl BulkAppend for DuckDbBulk<'_> {
    fn append(&mut self, batch: &[Record]) -> Result<AppendOutcome> {
        self.store.failed()?;
        if batch.is_empty() {
            return Ok(AppendOutcome::default());
        }
        let rows = batch;
        if !self.marked {
            self.conn
                .execute(
                    "INSERT OR REPLACE INTO kubetrail_meta VALUES (?, '1')",
                    [STALE],
                )
                .map_err(|e| self.store.fail("marking the rollup for a bulk load", e))?;
            self.marked = true;
        }
        self.oldest = rows.iter().map(|r| r.ts_micros).fold(self.oldest, i64::min);
        let mut parts: Vec<Vec<&Record>> = vec![Vec::new(); WRITERS];
        for r in rows {
            parts[writer_of(r)].push(r);
        }
        let (store, commit_rows) = (self.store, self.commit_rows);
        let results: Vec<Result<AppendOutcome>> = std::thread::scope(|scope| {
            let mut pairs = self.writers.iter_mut().zip(parts);
            let first = pairs.next();
            let others: Vec<_> = pairs
                .map(|(w, part)| scope.spawn(move || w.append(store, part, commit_rows)))
                .collect();
            let mut results = Vec::with_capacity(WRITERS);
            if let Some((w, part)) = first {
                results.push(w.append(store, part, commit_rows));
            }
            for handle in others {
                results.push(handle.join().unwrap_or_else(|_| {
                    Err(Error::db(
                        "appending a batch of a bulk load",
                        std::io::Error::other("the writer panicked"),
                    ))
                }));
            }
            results
        });
        if results.iter().any(Result::is_err) {
            // Also a writer that panicked, or whose part went in: after an error the load
            // holds nothing uncommitted, whatever is appended next.
            for w in &mut self.writers {
                w.rollback();
            }
        }
        let mut outcome = AppendOutcome::default();
        for result in results {
            let part = result?;
            outcome.stored += part.stored;
            outcome.duplicates += part.duplicates;
            outcome.conflicts += part.conflicts;
        }
        Ok(outcome)
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        for w in &mut self.writers {
            w.commit(self.store)?;
        }
        self.end()
    }
}

impl Drop for DuckDbBulk<'_> {
    /// An unfinished load's open transactions are rolled back, and what its writers committed
    /// is counted; if that fails, the mark stays for the next open. A finished load has ended
    /// already, and ending again changes nothing.
    fn drop(&mut self) {
        for w in &mut self.writers {
            w.rollback();
        }
        let _ = self.end();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::Relaxed;

    use kubetrail_model::Stage;
    use kubetrail_store::{Aggregation, Field, Record, Store};
    use kubetrail_testsuite::conformance;

    use crate::{DuckDbStore, rollup};

    /// What a killed load leaves (events stored but not counted, and the mark) is counted when
    /// the store is next opened.
    #[test]
    fn an_interrupted_load_is_counted_at_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        let start = 1_764_000_000_000_000;
        let batch: Vec<Record> = (0..2000)
            .map(|i| {
                let mut r = conformance::record(
                    "c",
                    &format!("id-{i}"),
                    Some(Stage::ResponseComplete),
                    start + i * 20 * 1_000_000,
                );
                r.user = ["alice", "bob", "carol"][i as usize % 3].into();
                r
            })
            .collect();
        let store = DuckDbStore::open(dir.path()).unwrap();
        store.append(&batch).unwrap();
        store
            .lock()
            .execute_batch(
                "DELETE FROM rollup; UPDATE kubetrail_meta SET value = '0' WHERE key = 'rollup_through';
                 INSERT INTO kubetrail_meta VALUES ('rollup_stale', '1');",
            )
            .unwrap();
        drop(store);

        let store = DuckDbStore::open(dir.path()).unwrap();
        let marks: i64 = store
            .lock()
            .query_row(
                "SELECT count(*) FROM kubetrail_meta WHERE key = 'rollup_stale'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(marks, 0);
        let through = store.rollup_through.load(Relaxed);
        assert_eq!(through, {
            let newest = batch.last().unwrap().ts_micros;
            newest - newest % rollup::HOUR
        });
        let f = rollup::tests::final_since(start);
        let by_user = Aggregation::CountBy {
            fields: vec![Field::User],
            limit: None,
        };
        assert!(rollup::source(&f, &by_user, through).is_some());
        let counted = store.aggregate_from(&f, &by_user, true).unwrap();
        assert_eq!(counted, store.aggregate_from(&f, &by_user, false).unwrap());
        assert_eq!(store.count().unwrap(), 2000);
    }
}
