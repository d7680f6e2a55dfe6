//! Lines of a finished audit log file, plain or gzip-compressed, with their numbers. A last
//! line without its newline (the writer was interrupted, or is still writing) is returned
//! marked as such, so callers can report it instead of silently dropping or trusting it.
//!
//! A file that cannot be read to its end (a `.gz` cut short or corrupt, an I/O error part way)
//! ends where reading failed: every complete line before that point is returned, the partial
//! one after it marked incomplete, and [`LineReader::damage`] says where and why, so that a
//! caller reports it and goes on with its other files.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

/// Reading a file failed.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {cause}")]
pub struct Error {
    /// The file.
    pub path: PathBuf,
    /// What went wrong (in the message, not chained: `{:#}` names it once).
    pub cause: std::io::Error,
}

/// One line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line<'a> {
    /// 1-based line number.
    pub number: u64,
    /// The text, without its newline; invalid UTF-8 replaced.
    pub text: &'a str,
    /// False for a last line that ended without a newline.
    pub complete: bool,
}

/// Reads lines of one file.
pub struct LineReader {
    reader: Box<dyn BufRead + Send>,
    buf: Vec<u8>,
    text: String,
    number: u64,
    damage: Option<Damage>,
    /// Bytes read from the file so far (compressed bytes for `.gz`).
    pub bytes_read: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// Where and why a file could not be read to its end.
#[derive(Debug)]
pub struct Damage {
    /// Bytes of the file read when it failed (compressed bytes for `.gz`).
    pub offset: u64,
    /// Lines returned before the failure, the incomplete one included.
    pub lines: u64,
    /// What failed.
    pub error: std::io::Error,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "unreadable after byte {} (line {}): {}",
            self.offset, self.lines, self.error
        )
    }
}

struct Counting<R> {
    inner: R,
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

impl LineReader {
    /// Opens `path`; `.gz` files are decompressed.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let file = File::open(path).map_err(|cause| Error {
            path: path.to_path_buf(),
            cause,
        })?;
        let bytes_read = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = Counting {
            inner: file,
            count: bytes_read.clone(),
        };
        let reader: Box<dyn BufRead + Send> = if path.extension().is_some_and(|e| e == "gz") {
            Box::new(BufReader::with_capacity(
                1 << 16,
                MultiGzDecoder::new(BufReader::new(counted)),
            ))
        } else {
            Box::new(BufReader::with_capacity(1 << 16, counted))
        };
        Ok(LineReader {
            reader,
            buf: Vec::with_capacity(4096),
            text: String::new(),
            number: 0,
            damage: None,
            bytes_read,
        })
    }

    /// Why the file ended before its end, once [`LineReader::next_line`] has met it.
    pub fn damage(&self) -> Option<&Damage> {
        self.damage.as_ref()
    }

    /// The next line, or `None` at the end (or after damage: see [`LineReader::damage`]).
    pub fn next_line(&mut self) -> Option<Line<'_>> {
        self.buf.clear();
        if self.damage.is_some() {
            return None;
        }
        // On an error `read_until` leaves in `buf` what it read before it: the partial line.
        let failed = self.reader.read_until(b'\n', &mut self.buf).err();
        let damaged = failed.is_some();
        if let Some(error) = failed {
            self.damage = Some(Damage {
                offset: self.bytes_read.load(std::sync::atomic::Ordering::Relaxed),
                lines: self.number + u64::from(!self.buf.is_empty()),
                error,
            });
        }
        if self.buf.is_empty() {
            return None;
        }
        self.number += 1;
        let complete = !damaged && self.buf.last() == Some(&b'\n');
        let mut end = self.buf.len();
        while end > 0 && matches!(self.buf[end - 1], b'\n' | b'\r') {
            end -= 1;
        }
        // Valid UTF-8 (the normal case) is lent as it is; only invalid input is copied with
        // its bad bytes replaced.
        let text = match std::str::from_utf8(&self.buf[..end]) {
            Ok(text) => text,
            Err(_) => {
                self.text = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                &self.text
            }
        };
        Some(Line {
            number: self.number,
            text,
            complete,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// The message names the file and the cause, and the cause is not chained too: an
    /// `anyhow` report (`{:#}`) would print it twice.
    #[test]
    fn an_error_names_its_cause_once() {
        let e = LineReader::open(Path::new("/nonexistent/kubetrail.audit"))
            .err()
            .unwrap();
        let text = e.to_string();
        assert!(text.starts_with("/nonexistent/kubetrail.audit: "), "{text}");
        assert!(std::error::Error::source(&e).is_none());
    }

    #[test]
    fn reads_plain_and_gzip_and_marks_a_truncated_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("a.log");
        std::fs::write(&plain, "one\r\ntwo\n{\"trunc").unwrap();
        let mut r = LineReader::open(&plain).unwrap();
        let mut got = Vec::new();
        while let Some(l) = r.next_line() {
            got.push((l.number, l.text.to_string(), l.complete));
        }
        assert_eq!(
            got,
            [
                (1, "one".into(), true),
                (2, "two".into(), true),
                (3, "{\"trunc".into(), false)
            ]
        );

        let gz = dir.path().join("b.log.gz");
        let mut enc =
            flate2::write::GzEncoder::new(File::create(&gz).unwrap(), flate2::Compression::fast());
        enc.write_all(b"x\ny\n").unwrap();
        enc.finish().unwrap();
        let mut r = LineReader::open(&gz).unwrap();
        assert_eq!(r.next_line().unwrap().text, "x");
        assert_eq!(r.next_line().unwrap().text, "y");
        assert!(r.next_line().is_none());
        assert!(r.bytes_read.load(std::sync::atomic::Ordering::Relaxed) > 0);
        assert!(LineReader::open(&dir.path().join("missing")).is_err());

        let bad = dir.path().join("c.log");
        std::fs::write(&bad, b"ok\n\xffbad\nok again\n").unwrap();
        let mut r = LineReader::open(&bad).unwrap();
        assert_eq!(r.next_line().unwrap().text, "ok");
        assert_eq!(r.next_line().unwrap().text, "\u{fffd}bad");
        assert_eq!(r.next_line().unwrap().text, "ok again");
    }

    #[test]
    fn a_cut_gzip_gives_every_complete_line_and_says_where_it_ends() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::new();
        for i in 0..20_000 {
            text.push_str(&format!("{{\"n\":{i},\"pad\":\"{:x}\"}}\n", i * 7919));
        }
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(text.as_bytes()).unwrap();
        let full = enc.finish().unwrap();
        let cut = dir.path().join("audit-2024-05-01T10-00-00.000.log.gz");
        std::fs::write(&cut, &full[..full.len() / 2]).unwrap();

        let mut r = LineReader::open(&cut).unwrap();
        let mut complete = 0u64;
        let mut partial = 0;
        while let Some(l) = r.next_line() {
            if l.complete {
                assert_eq!(l.text, text.lines().nth(complete as usize).unwrap());
                complete += 1;
            } else {
                partial += 1;
            }
        }
        assert!(
            complete > 5_000,
            "lines before the cut are read: {complete}"
        );
        assert!(complete < 20_000);
        assert!(partial <= 1);
        let damage = r.damage().expect("the cut is reported");
        assert_eq!(damage.lines, complete + partial);
        assert!(damage.offset > 0 && damage.offset <= full.len() as u64 / 2);
        assert!(
            damage.to_string().contains("unreadable after byte"),
            "{damage}"
        );
        assert!(r.next_line().is_none(), "nothing after the damage");

        let whole = dir.path().join("whole.log.gz");
        std::fs::write(&whole, &full).unwrap();
        let mut r = LineReader::open(&whole).unwrap();
        let mut n = 0;
        while r.next_line().is_some() {
            n += 1;
        }
        assert_eq!(n, 20_000);
        assert!(r.damage().is_none());
    }
}
