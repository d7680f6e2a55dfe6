//! Test support: damaging a closed store's database file where DuckDB will notice, so that the
//! store's and the server's tests can check how damage is reported. Not for production use.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use duckdb::{AccessMode, Config, Connection};

use crate::DATABASE_FILE;

/// Where blocks start in a DuckDB file: after its three 4 KiB headers.
const BLOCK_START: u64 = 3 * 4096;
/// DuckDB's default block size.
const BLOCK_BYTES: u64 = 256 * 1024;

/// Overwrites half of the block that holds the newest data of `column` of `events`, in the
/// store closed in `data_dir`: reading that data then fails DuckDB's block checksum.
pub fn damage_newest_block(data_dir: &Path, column: &str) -> std::io::Result<()> {
    let db = data_dir.join(DATABASE_FILE);
    let block: i64 = {
        let config = Config::default()
            .access_mode(AccessMode::ReadOnly)
            .map_err(std::io::Error::other)?;
        let conn = Connection::open_with_flags(&db, config).map_err(std::io::Error::other)?;
        conn.query_row(
            "SELECT block_id FROM pragma_storage_info('events')
             WHERE column_name = ? AND persistent AND block_id >= 0
             ORDER BY row_group_id DESC, segment_id DESC LIMIT 1",
            [column],
            |r| r.get(0),
        )
        .map_err(std::io::Error::other)?
    };
    let at = BLOCK_START + u64::try_from(block).map_err(std::io::Error::other)? * BLOCK_BYTES;
    scribble(&db, at + 512, BLOCK_BYTES / 2)
}

/// Overwrites `len` bytes of `file` at `at` with a pattern, and syncs.
pub fn scribble(file: &Path, at: u64, len: u64) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().write(true).open(file)?;
    f.seek(SeekFrom::Start(at))?;
    f.write_all(&vec![
        0xA5;
        usize::try_from(len).map_err(std::io::Error::other)?
    ])?;
    f.sync_all()
}

/// Runs `sql` on the database of the store closed in `data_dir`, as someone with write access
/// to the file could: for tests of what `verify` finds.
pub fn execute(data_dir: &Path, sql: &str) -> std::io::Result<()> {
    let conn = Connection::open(data_dir.join(DATABASE_FILE)).map_err(std::io::Error::other)?;
    conn.execute_batch(sql).map_err(std::io::Error::other)
}

/// The first column of `sql`'s rows, as text, on the store closed in `data_dir`.
pub fn query_texts(data_dir: &Path, sql: &str) -> std::io::Result<Vec<String>> {
    let conn = Connection::open(data_dir.join(DATABASE_FILE)).map_err(std::io::Error::other)?;
    let mut stmt = conn.prepare(sql).map_err(std::io::Error::other)?;
    stmt.query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect())
        .map_err(std::io::Error::other)
}

/// Runs `sql` on an open store's writing connection, behind its back: for tests of what the
/// server's checks of the chain find.
pub fn execute_open(store: &crate::DuckDbStore, sql: &str) -> std::io::Result<()> {
    store
        .lock()
        .execute_batch(sql)
        .map_err(std::io::Error::other)
}

/// The first column of `sql`'s rows, as text, on an open store.
pub fn query_open(store: &crate::DuckDbStore, sql: &str) -> std::io::Result<Vec<String>> {
    let conn = store.lock();
    let mut stmt = conn.prepare(sql).map_err(std::io::Error::other)?;
    stmt.query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect())
        .map_err(std::io::Error::other)
}
