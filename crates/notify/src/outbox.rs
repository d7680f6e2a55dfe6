//! A sink's durable outbox: notices appended to a JSON-lines file (synced before `push`
//! returns) and a delivered-offset file replaced atomically after each delivery, so an outage
//! or a restart loses nothing and a delivered notice is not sent again (a crash between the
//! delivery and the offset's write sends that batch once more: at least once). When every
//! notice is delivered the file is emptied. The outbox is bounded: past `max` pending
//! notices, new ones are refused and counted by the caller.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::Notice;

/// A sink's outbox.
#[derive(Debug)]
pub struct Outbox {
    path: PathBuf,
    offset_path: PathBuf,
    file: File,
    /// Bytes of `path` delivered.
    delivered: u64,
    /// Bytes of `path` written.
    len: u64,
    /// Notices written and not delivered.
    pending: usize,
    max: usize,
}

fn read_offset(path: &Path) -> std::io::Result<u64> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.trim().parse().unwrap_or(0)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

impl Outbox {
    /// Opens (or creates) the outbox `NAME.jsonl` in `dir`. A last line cut short by a crash
    /// is dropped: it was never acknowledged as queued.
    pub fn open(dir: &Path, name: &str, max: usize) -> std::io::Result<Outbox> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{name}.jsonl"));
        let offset_path = dir.join(format!("{name}.offset"));
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)?;
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut text)?;
        let whole = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        if whole < text.len() {
            file.set_len(whole as u64)?;
        }
        let len = whole as u64;
        let delivered = read_offset(&offset_path)?.min(len);
        let pending = text[delivered as usize..whole]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        Ok(Outbox {
            path,
            offset_path,
            file,
            delivered,
            len,
            pending,
            max,
        })
    }

    /// Notices waiting for delivery.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Appends notices, durably; returns how many were refused because the outbox is full.
    pub fn push(&mut self, notices: &[Notice]) -> std::io::Result<usize> {
        let room = self.max.saturating_sub(self.pending);
        let taken = notices.len().min(room);
        if taken == 0 {
            return Ok(notices.len());
        }
        let mut text = Vec::new();
        for n in &notices[..taken] {
            serde_json::to_writer(&mut text, n).map_err(std::io::Error::other)?;
            text.push(b'\n');
        }
        self.file.write_all(&text)?;
        self.file.sync_data()?;
        self.len += text.len() as u64;
        self.pending += taken;
        Ok(notices.len() - taken)
    }

    /// Up to `n` notices from the first undelivered one, and the offset after them. A line
    /// that does not read back as a notice is skipped (and logged).
    pub fn peek(&mut self, n: usize) -> std::io::Result<(Vec<Notice>, u64, usize)> {
        let mut reader = BufReader::new(&self.file);
        reader.seek(SeekFrom::Start(self.delivered))?;
        let mut out = Vec::new();
        let mut end = self.delivered;
        let mut lines = 0;
        let mut line = String::new();
        while lines < n && end < self.len {
            line.clear();
            let read = reader.read_line(&mut line)?;
            if read == 0 {
                break;
            }
            end += read as u64;
            lines += 1;
            match serde_json::from_str::<Notice>(line.trim_end()) {
                Ok(notice) => out.push(notice),
                Err(e) => tracing::error!(
                    outbox = %self.path.display(),
                    "an outbox line is not a notice, skipped: {e}"
                ),
            }
        }
        Ok((out, end, lines))
    }

    /// Marks everything before `end` (`lines` notices) delivered.
    pub fn ack(&mut self, end: u64, lines: usize) -> std::io::Result<()> {
        self.pending = self.pending.saturating_sub(lines);
        if end >= self.len {
            // All delivered: start the file over (offset first, so that a crash in between
            // leaves an offset past the end, which `open` clamps).
            self.write_offset(0)?;
            self.file.set_len(0)?;
            self.file.sync_data()?;
            self.len = 0;
            self.delivered = 0;
            self.pending = 0;
            return Ok(());
        }
        self.write_offset(end)?;
        self.delivered = end;
        Ok(())
    }

    fn write_offset(&self, offset: u64) -> std::io::Result<()> {
        let tmp = self.offset_path.with_extension("offset.tmp");
        {
            let mut f = File::create(&tmp)?;
            write!(f, "{offset}")?;
            f.sync_data()?;
        }
        std::fs::rename(&tmp, &self.offset_path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(id: &str) -> Notice {
        Notice {
            rule: "pod-exec".into(),
            audit_id: id.into(),
            ..Notice::default()
        }
    }

    #[test]
    fn what_is_pushed_survives_a_reopen_until_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(dir.path(), "am", 10).unwrap();
        assert_eq!(o.push(&[notice("a"), notice("b"), notice("c")]).unwrap(), 0);
        let (first, end, lines) = o.peek(2).unwrap();
        assert_eq!(
            first
                .iter()
                .map(|n| n.audit_id.as_str())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        o.ack(end, lines).unwrap();
        drop(o);
        let mut o = Outbox::open(dir.path(), "am", 10).unwrap();
        assert_eq!(o.pending(), 1);
        let (rest, end, lines) = o.peek(10).unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].audit_id, "c");
        o.ack(end, lines).unwrap();
        assert_eq!(o.pending(), 0);
        assert_eq!(
            std::fs::metadata(dir.path().join("am.jsonl"))
                .unwrap()
                .len(),
            0,
            "emptied"
        );
        // Nothing more to deliver after a reopen.
        let mut o = Outbox::open(dir.path(), "am", 10).unwrap();
        assert_eq!(o.peek(10).unwrap().0.len(), 0);
    }

    #[test]
    fn a_full_outbox_refuses_the_excess_and_a_torn_line_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(dir.path(), "hook", 2).unwrap();
        assert_eq!(o.push(&[notice("a"), notice("b"), notice("c")]).unwrap(), 1);
        assert_eq!(o.pending(), 2);
        drop(o);
        // A crash in the middle of a write.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join("hook.jsonl"))
            .unwrap();
        f.write_all(b"{\"rule\":\"cut").unwrap();
        let mut o = Outbox::open(dir.path(), "hook", 5).unwrap();
        assert_eq!(o.pending(), 2);
        let (all, _, lines) = o.peek(10).unwrap();
        assert_eq!((all.len(), lines), (2, 2));
        assert_eq!(o.push(&[notice("d")]).unwrap(), 0);
        assert_eq!(o.peek(10).unwrap().0[2].audit_id, "d");
    }
}
