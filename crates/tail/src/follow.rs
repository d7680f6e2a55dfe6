//! Following a live audit log and its rotated backups, as kube-apiserver's log backend
//! (lumberjack) writes them, without losing or repeating a line.
//!
//! Files are identified by a fingerprint of their first bytes — not by name or inode, since
//! rotation renames the active file, compression turns a backup into a `.gz` with the same
//! content, and inodes are reused after deletion. For each fingerprint the [`Checkpoint`]
//! holds how far the content has been delivered; the caller advances it with
//! [`Follower::commit`] only once a chunk is acknowledged, so a crash re-sends at most the
//! chunk in flight (which the store deduplicates) and never skips one.
//!
//! What cannot be delivered is recorded as a gap: a file that disappears (deleted by the
//! apiserver's `--audit-log-maxbackup`/`maxage`, or truncated in place) before it was read to
//! its end, or data skipped to keep the backlog within a configured limit.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use crate::checkpoint::{Checkpoint, CheckpointError, FileState};
use crate::rotation::parse_backup_name;
use kubetrail_model::{Gap, GapReason};

/// How many first bytes identify a file (less when its first line is shorter).
pub const FINGERPRINT_BYTES: usize = 1024;

/// Scans a file must be missing from before it counts as gone (a backup being compressed
/// vanishes as `.log` an instant before, or after, it appears as `.log.gz`).
const MISSING_SCANS: u32 = 2;

/// Following failed.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// The checkpoint.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// Listing the log directory.
    #[error("listing {path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Options.
#[derive(Debug, Clone, Copy, Default)]
pub struct FollowOptions {
    /// When the undelivered bytes exceed this, the oldest rotated files are skipped (and
    /// recorded as gaps) rather than letting the backlog grow without end.
    pub max_backlog_bytes: Option<u64>,
}

/// A piece of one file's content, ending at a line boundary (or at the end of a rotated file
/// whose last line was never finished).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The file's fingerprint.
    pub fingerprint: String,
    /// Where it was read.
    pub path: PathBuf,
    /// Offset of the first byte (in the uncompressed content).
    pub start: u64,
    /// Offset after the last byte.
    pub end: u64,
    /// The lines, each ending in `\n` except perhaps a rotated file's unfinished last one.
    pub data: Vec<u8>,
    /// Whether this chunk ends a rotated file.
    pub finishes: bool,
}

/// One file found by a scan, in reading order.
#[derive(Debug, Clone)]
struct Seen {
    fingerprint: String,
    path: PathBuf,
    compressed: bool,
    backup: bool,
}

/// An open file being read.
struct OpenFile {
    fingerprint: String,
    pos: u64,
    source: Source,
}

/// An open file's content.
enum Source {
    /// Read directly; seekable.
    Plain(File),
    /// Decompressed as read.
    Compressed(Box<dyn Read + Send>),
}

impl Source {
    fn read_full(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Source::Plain(f) => read_full(f, buf),
            Source::Compressed(r) => read_full(r, buf),
        }
    }
}

/// Follows one active log file and its backups.
pub struct Follower {
    active: PathBuf,
    dir: PathBuf,
    active_name: String,
    checkpoint_path: PathBuf,
    state: Checkpoint,
    missing: HashMap<String, u32>,
    order: Vec<Seen>,
    open: Option<OpenFile>,
    options: FollowOptions,
    gap_seq: u64,
    /// Fingerprints of files as last identified, with the inode, length and modification time
    /// they had: a scan re-reads a file's first bytes only when one of those changed.
    fingerprints: HashMap<PathBuf, (FileStamp, String)>,
}

/// What tells that a file is still the one identified: inode, length, modification time.
type FileStamp = (u64, u64, Option<std::time::SystemTime>);

fn stamp(meta: &std::fs::Metadata) -> FileStamp {
    use std::os::unix::fs::MetadataExt;
    (meta.ino(), meta.len(), meta.modified().ok())
}

/// Reads until `buf` is full or the end; returns the bytes read.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The fingerprint of content starting with `head`: a hash of the first line, or of the first
/// [`FINGERPRINT_BYTES`] when the line is longer; `None` until either is available.
pub fn fingerprint_of(head: &[u8]) -> Option<String> {
    let head = &head[..head.len().min(FINGERPRINT_BYTES)];
    let end = match head.iter().position(|b| *b == b'\n') {
        Some(i) => i + 1,
        None if head.len() == FINGERPRINT_BYTES => head.len(),
        None => return None,
    };
    // FNV-1a 64 (the `fnv` crate's), stable across releases: checkpoints keep it.
    let mut hash = fnv::FnvHasher::default();
    std::hash::Hasher::write(&mut hash, &head[..end]);
    Some(format!("{:016x}-{end}", std::hash::Hasher::finish(&hash)))
}

/// The fingerprint of an open file, read from its start; the handle is left at an unknown
/// position.
fn fingerprint_handle(file: &mut File, compressed: bool) -> std::io::Result<Option<String>> {
    file.seek(SeekFrom::Start(0))?;
    let mut head = vec![0u8; FINGERPRINT_BYTES];
    let n = if compressed {
        let mut d = MultiGzDecoder::new(BufReader::new(&*file));
        // A .gz still being written ends early: whatever decompressed so far may do.
        match read_full(&mut d, &mut head) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(e),
        }
    } else {
        read_full(file, &mut head)?
    };
    Ok(fingerprint_of(&head[..n]))
}

/// Opens `path` and tells its fingerprint and (uncompressed files) size, both from the same
/// handle: a rotation between two opens of one name must not mix two files.
fn identify(path: &Path, compressed: bool) -> std::io::Result<(File, Option<String>, Option<u64>)> {
    let mut file = File::open(path)?;
    let size = if compressed {
        None
    } else {
        Some(file.metadata()?.len())
    };
    let fp = fingerprint_handle(&mut file, compressed)?;
    Ok((file, fp, size))
}

impl Follower {
    /// Follows `active` (e.g. `/var/log/kubernetes/kubernetes.audit`), keeping state in
    /// `checkpoint_path`.
    pub fn open(
        active: &Path,
        checkpoint_path: &Path,
        options: FollowOptions,
    ) -> Result<Follower, FollowError> {
        let state = Checkpoint::load(checkpoint_path)?;
        let dir = match active.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let active_name = active
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let gap_seq = state.pending_gaps.len() as u64;
        Ok(Follower {
            active: active.to_path_buf(),
            dir,
            active_name,
            checkpoint_path: checkpoint_path.to_path_buf(),
            state,
            missing: HashMap::new(),
            order: Vec::new(),
            open: None,
            options,
            gap_seq,
            fingerprints: HashMap::new(),
        })
    }

    fn entry_index(&self, fingerprint: &str) -> Option<usize> {
        self.state
            .files
            .iter()
            .position(|f| f.fingerprint == fingerprint)
    }

    fn gap(&mut self, file: &FileState, bytes: u64, reason: GapReason) {
        self.gap_seq += 1;
        let now = chrono::Utc::now();
        self.state.dropped_bytes += bytes;
        self.state.pending_gaps.push(Gap {
            id: format!(
                "{}-{}-{}",
                file.fingerprint,
                file.offset,
                now.timestamp_micros()
            ),
            cluster: String::new(),
            node: String::new(),
            file: file.path.display().to_string(),
            fingerprint: file.fingerprint.clone(),
            from_offset: file.offset,
            bytes,
            detected_at: now.to_rfc3339(),
            reason,
        });
    }

    /// The fingerprint of the file at `path` and, uncompressed, its size: from the last scan
    /// when the file is unchanged since, else read through one handle.
    fn fingerprint(&mut self, path: &Path, compressed: bool) -> Option<(String, Option<u64>)> {
        let meta = std::fs::metadata(path).ok()?;
        if let Some((s, fp)) = self.fingerprints.get(path)
            && *s == stamp(&meta)
        {
            return Some((fp.clone(), (!compressed).then_some(meta.len())));
        }
        let (file, fp, size) = identify(path, compressed).ok()?;
        let fp = fp?;
        let meta = file.metadata().ok()?;
        self.fingerprints
            .insert(path.to_path_buf(), (stamp(&meta), fp.clone()));
        Some((fp, size))
    }

    /// Looks at the directory: new files, rotations, compressions, deletions, truncations.
    /// Saves the checkpoint when something durable changed (a gap).
    pub fn scan(&mut self) -> Result<(), FollowError> {
        // A directory not created yet (the apiserver creates it on its first write) holds
        // nothing, and every file followed so far is gone.
        let names: Vec<std::ffi::OsString> = match std::fs::read_dir(&self.dir) {
            Ok(listing) => listing.flatten().map(|e| e.file_name()).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                return Err(FollowError::Io {
                    path: self.dir.clone(),
                    source,
                });
            }
        };
        // (rotation time or None for the active file, compressed, path)
        let mut candidates = Vec::new();
        for name in &names {
            let Some(name) = name.to_str() else { continue };
            let path = self.dir.join(name);
            if name == self.active_name {
                candidates.push((None, false, path));
            } else if let Some((active, at, compressed)) = parse_backup_name(name)
                && active == self.active_name
            {
                candidates.push((Some(at), compressed, path));
            }
        }
        // Backups oldest first (the plain one before its .gz twin), the active file last.
        candidates
            .sort_by(|a, b| (a.0.is_none(), a.0, a.1, &a.2).cmp(&(b.0.is_none(), b.0, b.1, &b.2)));
        let mut order: Vec<Seen> = Vec::new();
        let mut changed = false;
        for (at, compressed, path) in candidates {
            let Some((fp, size)) = self.fingerprint(&path, compressed) else {
                // Vanished since the listing, unreadable, or too short to identify yet.
                continue;
            };
            if order.iter().any(|s| s.fingerprint == fp) {
                continue; // The .gz twin of a backup already listed.
            }
            match self.entry_index(&fp) {
                Some(i) => {
                    let e = &mut self.state.files[i];
                    e.path = path.clone();
                    if let Some(size) = size {
                        if size < e.offset {
                            // Truncated in place and rewritten with the same first bytes:
                            // start again (the store drops what it already has).
                            e.offset = 0;
                            e.finished = false;
                            changed = true;
                        }
                        e.size_seen = size;
                    }
                }
                None => {
                    self.state.files.push(FileState {
                        fingerprint: fp.clone(),
                        path: path.clone(),
                        offset: 0,
                        size_seen: size.unwrap_or(0),
                        finished: false,
                    });
                    changed = true;
                }
            }
            self.missing.remove(&fp);
            order.push(Seen {
                fingerprint: fp,
                path,
                compressed,
                backup: at.is_some(),
            });
        }
        self.fingerprints
            .retain(|p, _| order.iter().any(|s| &s.path == p));
        // Files no longer there.
        let mut gone = Vec::new();
        for f in &self.state.files {
            if order.iter().any(|s| s.fingerprint == f.fingerprint) {
                continue;
            }
            let n = self.missing.entry(f.fingerprint.clone()).or_insert(0);
            *n += 1;
            if *n >= MISSING_SCANS {
                gone.push(f.fingerprint.clone());
            }
        }
        for fp in gone {
            self.missing.remove(&fp);
            if let Some(i) = self.entry_index(&fp) {
                let f = self.state.files.remove(i);
                // Unfinished: its end was never read, so something may be lost even when no
                // unread byte was seen (it grew after the last scan). `bytes` is a lower bound.
                if !f.finished {
                    let reason = if f.path == self.active {
                        GapReason::RotatedAway
                    } else {
                        GapReason::Deleted
                    };
                    self.gap(&f, f.size_seen.saturating_sub(f.offset), reason);
                }
                changed = true;
            }
        }
        // Keep the backlog within its limit by skipping the oldest rotated files.
        if let Some(limit) = self.options.max_backlog_bytes {
            for s in &order {
                if self.lag_bytes() <= limit || !s.backup {
                    break;
                }
                if let Some(i) = self.entry_index(&s.fingerprint)
                    && !self.state.files[i].finished
                {
                    let f = self.state.files[i].clone();
                    self.gap(
                        &f,
                        f.size_seen.saturating_sub(f.offset),
                        GapReason::BacklogSkipped,
                    );
                    let e = &mut self.state.files[i];
                    e.offset = e.size_seen.max(e.offset);
                    e.finished = true;
                    changed = true;
                }
            }
        }
        self.order = order;
        if changed {
            self.state.save(&self.checkpoint_path)?;
        }
        Ok(())
    }

    /// The next chunk of at most about `max_bytes` (more only for a single longer line), from
    /// the oldest file not yet delivered; `None` when everything complete has been delivered.
    pub fn next_chunk(&mut self, max_bytes: usize) -> Result<Option<Chunk>, FollowError> {
        let targets: Vec<Seen> = self.order.clone();
        for seen in targets {
            let Some(i) = self.entry_index(&seen.fingerprint) else {
                continue;
            };
            if self.state.files[i].finished {
                continue;
            }
            let offset = self.state.files[i].offset;
            match self.read_at(&seen, offset, max_bytes) {
                Ok(Some(chunk)) => return Ok(Some(chunk)),
                Ok(None) if seen.backup => {
                    // A rotated file read to its end: nothing more will come.
                    self.state.files[i].finished = true;
                    self.state.save(&self.checkpoint_path)?;
                    self.open = None;
                }
                Ok(None) => return Ok(None),
                Err(_) => {
                    // Gone or not readable yet (a .gz being written): look again next scan.
                    self.open = None;
                    continue;
                }
            }
        }
        Ok(None)
    }

    /// Reads from `seen` at `offset`; `None` at its end (or before an unfinished last line of
    /// the active file).
    fn read_at(
        &mut self,
        seen: &Seen,
        offset: u64,
        max_bytes: usize,
    ) -> std::io::Result<Option<Chunk>> {
        let reuse =
            matches!(&self.open, Some(o) if o.fingerprint == seen.fingerprint && o.pos == offset);
        if !reuse {
            self.open = None;
            // Identify and read through one handle: the name may meanwhile be another file.
            let (mut file, fp, _) = identify(&seen.path, seen.compressed)?;
            if fp.as_deref() != Some(seen.fingerprint.as_str()) {
                return Err(std::io::Error::other("the file changed since the scan"));
            }
            file.seek(SeekFrom::Start(0))?;
            let source = if seen.compressed {
                let mut reader: Box<dyn Read + Send> =
                    Box::new(MultiGzDecoder::new(BufReader::with_capacity(1 << 16, file)));
                let skipped = std::io::copy(&mut (&mut reader).take(offset), &mut std::io::sink())?;
                if skipped < offset {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the compressed file is shorter than the checkpoint",
                    ));
                }
                Source::Compressed(reader)
            } else {
                file.seek(SeekFrom::Start(offset))?;
                Source::Plain(file)
            };
            self.open = Some(OpenFile {
                fingerprint: seen.fingerprint.clone(),
                pos: offset,
                source,
            });
        }
        let Some(open) = self.open.as_mut() else {
            return Ok(None);
        };
        let mut data = vec![0u8; max_bytes.max(1)];
        let mut n = open.source.read_full(&mut data)?;
        // A line longer than max_bytes: keep reading to its end.
        while n == data.len() && !data[..n].contains(&b'\n') {
            data.resize(data.len() * 2, 0);
            let k = open.source.read_full(&mut data[n..])?;
            if k == 0 {
                break;
            }
            n += k;
        }
        let at_end = n < data.len();
        data.truncate(n);
        open.pos += n as u64;
        if data.is_empty() {
            return Ok(None);
        }
        let cut = match data.iter().rposition(|b| *b == b'\n') {
            Some(i) => i + 1,
            None if seen.backup && at_end => data.len(),
            None => 0,
        };
        // Give back what follows the last newline: it is read again next time.
        let unread = (data.len() - cut) as u64;
        if unread > 0
            && let Some(o) = self.open.as_mut()
        {
            o.pos -= unread;
            match &mut o.source {
                Source::Plain(f) => {
                    f.seek(SeekFrom::Start(o.pos))?;
                }
                // A gzip stream cannot seek back: reopen next time.
                Source::Compressed(_) => self.open = None,
            }
        }
        data.truncate(cut);
        if data.is_empty() {
            return Ok(None);
        }
        Ok(Some(Chunk {
            fingerprint: seen.fingerprint.clone(),
            path: seen.path.clone(),
            start: offset,
            end: offset + cut as u64,
            finishes: seen.backup && at_end && unread == 0,
            data,
        }))
    }

    /// Records that `chunk` was delivered, durably.
    pub fn commit(&mut self, chunk: &Chunk) -> Result<(), FollowError> {
        if let Some(i) = self.entry_index(&chunk.fingerprint) {
            let e = &mut self.state.files[i];
            if chunk.start == e.offset {
                e.offset = chunk.end;
                e.size_seen = e.size_seen.max(chunk.end);
                e.finished |= chunk.finishes;
            }
        }
        self.state.save(&self.checkpoint_path)?;
        Ok(())
    }

    /// Bytes seen but not yet delivered.
    pub fn lag_bytes(&self) -> u64 {
        self.state
            .files
            .iter()
            .filter(|f| !f.finished)
            .map(|f| f.size_seen.saturating_sub(f.offset))
            .sum()
    }

    /// Files not yet delivered to their end.
    pub fn pending_files(&self) -> u64 {
        self.state.files.iter().filter(|f| !f.finished).count() as u64
    }

    /// Bytes lost so far.
    pub fn dropped_bytes(&self) -> u64 {
        self.state.dropped_bytes
    }

    /// Gaps not yet reported.
    pub fn pending_gaps(&self) -> &[Gap] {
        &self.state.pending_gaps
    }

    /// Forgets gaps a server acknowledged.
    pub fn ack_gaps(&mut self, ids: &[String]) -> Result<(), FollowError> {
        let before = self.state.pending_gaps.len();
        self.state.pending_gaps.retain(|g| !ids.contains(&g.id));
        if self.state.pending_gaps.len() != before {
            self.state.save(&self.checkpoint_path)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(path: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn fingerprints_need_a_first_line_or_enough_bytes() {
        assert_eq!(fingerprint_of(b""), None);
        assert_eq!(fingerprint_of(b"{\"partial"), None);
        let a = fingerprint_of(b"{\"a\":1}\nmore").unwrap();
        // Checkpoints keep fingerprints: the value is FNV-1a 64 of the first line, forever.
        assert_eq!(a, "49211944f5c975c1-8");
        assert_eq!(Some(a.clone()), fingerprint_of(b"{\"a\":1}\nmore and more"));
        assert_ne!(Some(a), fingerprint_of(b"{\"a\":2}\n"));
        assert!(fingerprint_of(&[b'x'; FINGERPRINT_BYTES]).is_some());
    }

    #[test]
    fn an_unfinished_last_line_waits_in_the_active_file_and_ends_a_rotated_one() {
        let dir = tempfile::tempdir().unwrap();
        let active = dir.path().join("kubernetes.audit");
        write(&active, "{\"n\":1}\n{\"n\":2");
        let cp = dir.path().join("cp.json");
        let mut f = Follower::open(&active, &cp, FollowOptions::default()).unwrap();
        f.scan().unwrap();
        let c = f.next_chunk(1 << 20).unwrap().unwrap();
        assert_eq!(c.data, b"{\"n\":1}\n");
        assert!(!c.finishes);
        f.commit(&c).unwrap();
        assert_eq!(
            f.next_chunk(1 << 20).unwrap(),
            None,
            "the partial line waits"
        );
        assert_eq!(f.lag_bytes(), 6);
        // The writer died mid-line and the file was rotated: the fragment is delivered as is.
        let backup = dir.path().join("kubernetes-2024-01-01T00-00-00.000.audit");
        std::fs::rename(&active, &backup).unwrap();
        write(&active, "{\"n\":3}\n");
        f.scan().unwrap();
        let c = f.next_chunk(1 << 20).unwrap().unwrap();
        assert_eq!(c.data, b"{\"n\":2");
        assert!(c.finishes);
        f.commit(&c).unwrap();
        let c = f.next_chunk(1 << 20).unwrap().unwrap();
        assert_eq!(c.data, b"{\"n\":3}\n");
        f.commit(&c).unwrap();
        assert_eq!(f.pending_files(), 1);
        assert_eq!(f.lag_bytes(), 0);
    }

    #[test]
    fn the_backlog_limit_skips_the_oldest_backups_and_records_gaps() {
        let dir = tempfile::tempdir().unwrap();
        let active = dir.path().join("kubernetes.audit");
        for (i, ts) in ["2024-01-01T00-00-00.000", "2024-01-01T00-01-00.000"]
            .iter()
            .enumerate()
        {
            let backup = dir.path().join(format!("kubernetes-{ts}.audit"));
            write(&backup, &format!("{{\"b\":{i}}}\n{}\n", "x".repeat(1000)));
        }
        write(&active, "{\"a\":0}\n");
        let cp = dir.path().join("cp.json");
        let options = FollowOptions {
            max_backlog_bytes: Some(1100),
        };
        let mut f = Follower::open(&active, &cp, options).unwrap();
        f.scan().unwrap();
        assert_eq!(f.pending_gaps().len(), 1);
        let gap = &f.pending_gaps()[0];
        assert!(
            gap.file
                .ends_with("kubernetes-2024-01-01T00-00-00.000.audit")
        );
        assert_eq!(gap.bytes, 1009);
        assert_eq!(gap.reason, GapReason::BacklogSkipped);
        assert_eq!(f.dropped_bytes(), 1009);
        let c = f.next_chunk(1 << 20).unwrap().unwrap();
        assert!(
            c.data.starts_with(b"{\"b\":1}"),
            "the newer backup is still read"
        );
        // Gaps survive a restart until acknowledged.
        drop(f);
        let mut f = Follower::open(&active, &cp, options).unwrap();
        assert_eq!(f.pending_gaps().len(), 1);
        let id = f.pending_gaps()[0].id.clone();
        f.ack_gaps(&[id]).unwrap();
        assert!(f.pending_gaps().is_empty());
    }
}
