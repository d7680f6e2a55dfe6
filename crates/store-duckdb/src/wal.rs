//! The write-ahead log at open, and what counts as damage.
//!
//! DuckDB replays `kubetrail.duckdb.wal` when it opens the database, and by default it stops
//! quietly at an entry it cannot read (a torn tail) and then truncates the log there: a log
//! cut in half opens as a store with the second half's events missing, and the bytes that could
//! have helped recover them are gone. So before opening, a non-empty log is copied aside to
//! `kubetrail.duckdb.wal.<time>.bak` (and synced); the database is opened with
//! `debug_abort_on_wal_failure`, which makes DuckDB refuse such a log instead of skipping its
//! tail. If the log replays to its end, the copy is removed. If it does not, the store opens
//! again the default way (keeping what replays), logs the damage at ERROR with both file names,
//! and keeps the copy; [`RecoveryReport`] says so for metrics. A log DuckDB refuses either way
//! (a checksum that does not match) leaves the store closed, with the copy kept.
//!
//! This module must not decide anything about events; it only opens the file.

use std::fs::File;
use std::path::{Path, PathBuf};

use duckdb::{Config, Connection};
use kubetrail_store::{Error, RecoveryReport, Result};

/// The write-ahead log of the database at `db`.
pub(crate) fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_os_string();
    name.push(".wal");
    PathBuf::from(name)
}

/// Whether a DuckDB error means the database is damaged or unusable until it is reopened:
/// corrupt blocks or WAL entries, a fatal error (a failed checkpoint, a failed WAL write) or an
/// internal one (DuckDB invalidates the database after either), or a database already
/// invalidated by an earlier one.
pub(crate) fn is_damage(e: &duckdb::Error) -> bool {
    let message = e.to_string();
    [
        "FATAL Error",
        "INTERNAL Error",
        "Data Corruption Error",
        "Corrupt database file",
        "Corrupt WAL file",
        "database has been invalidated",
    ]
    .iter()
    .any(|marker| message.contains(marker))
}

/// Whether DuckDB refused a log because its end could not be read (what it skips by default).
fn is_torn_log(e: &duckdb::Error) -> bool {
    let message = e.to_string();
    message.contains("Failure while replaying WAL file") && message.contains("Serialization")
}

/// The database at `db`, opened with its log replayed, and what was set aside if the log did
/// not replay to its end.
pub(crate) fn open(db: &Path) -> Result<(Connection, Option<RecoveryReport>)> {
    let wal = wal_path(db);
    let found = match std::fs::metadata(&wal) {
        Ok(meta) if meta.len() > 0 => Some(meta.len()),
        _ => None,
    };
    let Some(bytes) = found else {
        let conn = Connection::open(db).map_err(|e| opening(db, e))?;
        return Ok((conn, None));
    };
    let backup = set_aside(&wal)?;
    let strict = Config::default()
        .with("debug_abort_on_wal_failure", "true")
        .and_then(|config| Connection::open_with_flags(db, config));
    match strict {
        Ok(conn) => {
            // Replayed to its end: nothing to keep. A copy that cannot be removed only wastes
            // space.
            let _ = std::fs::remove_file(&backup);
            Ok((conn, None))
        }
        Err(e) if is_torn_log(&e) => {
            let conn = Connection::open(db).map_err(|e| {
                Error::damaged(
                    format!(
                        "opening {} (its write-ahead log {} could not be replayed; a copy is kept at {})",
                        db.display(),
                        wal.display(),
                        backup.display()
                    ),
                    e,
                )
            })?;
            let report = RecoveryReport {
                damaged: wal,
                backup,
                bytes,
                reason: e.to_string().lines().next().unwrap_or("").to_string(),
            };
            Ok((conn, Some(report)))
        }
        Err(e) if is_damage(&e) || e.to_string().contains("replaying WAL") => Err(Error::damaged(
            format!(
                "opening {} with its write-ahead log {} (a copy of the log is kept at {})",
                db.display(),
                wal.display(),
                backup.display()
            ),
            e,
        )),
        Err(e) => {
            // Not about the files' contents (the database is locked by another process, ...):
            // the log is as it was, and the copy is not needed.
            let _ = std::fs::remove_file(&backup);
            Err(opening(db, e))
        }
    }
}

/// The error for a database that could not be opened: damage if DuckDB says so.
pub(crate) fn opening(db: &Path, e: duckdb::Error) -> Error {
    if let Some(pid) = held_by(&e) {
        return Error::InUse {
            path: db.display().to_string(),
            pid,
        };
    }
    let context = format!("opening {}", db.display());
    if is_damage(&e) {
        Error::damaged(context, e)
    } else {
        Error::db(context, e)
    }
}

/// Whether `e` says another process holds the database's lock, and that process's PID when it
/// names it (DuckDB: `Could not set lock on file "…": Conflicting lock is held in … (PID 1234)`).
fn held_by(e: &duckdb::Error) -> Option<Option<u32>> {
    let text = e.to_string();
    if !text.contains("Could not set lock") && !text.contains("Conflicting lock") {
        return None;
    }
    let pid = text
        .split("PID ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse().ok());
    Some(pid)
}

/// Copies `wal` to `<wal>.<time>.bak` (a new name if that exists) and syncs the copy.
fn set_aside(wal: &Path) -> Result<PathBuf> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let mut n = 0;
    let backup = loop {
        let mut name = wal.as_os_str().to_os_string();
        match n {
            0 => name.push(format!(".{stamp}.bak")),
            _ => name.push(format!(".{stamp}-{n}.bak")),
        }
        let candidate = PathBuf::from(name);
        if !candidate.exists() {
            break candidate;
        }
        n += 1;
    };
    let copy = |to: &Path| -> std::io::Result<()> {
        std::fs::copy(wal, to)?;
        File::open(to)?.sync_all()
    };
    copy(&backup).map_err(|e| {
        Error::io(
            format!(
                "{} (copying the write-ahead log aside to {} before replaying it)",
                wal.display(),
                backup.display()
            ),
            e,
        )
    })?;
    Ok(backup)
}
