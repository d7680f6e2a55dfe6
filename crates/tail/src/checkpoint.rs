//! The follower's durable state: per file (by fingerprint) how far its content has been
//! delivered, and the gaps not yet reported. Written atomically — to a temporary file that is
//! synced, renamed over the old one, and the directory synced — so a crash leaves either the
//! old or the new state, never a torn one. The format carries a version; a newer version than
//! this build knows is refused rather than misread.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use kubetrail_model::Gap;
use serde::{Deserialize, Serialize};

/// The format version this build writes. Version 1 (whose gaps named their file `path`) is
/// still read.
pub const VERSION: u32 = 2;

/// One followed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileState {
    /// Fingerprint of the file's first bytes.
    pub fingerprint: String,
    /// Where it was last seen.
    pub path: PathBuf,
    /// Bytes of its (uncompressed) content delivered and acknowledged.
    pub offset: u64,
    /// Its size when last seen (uncompressed files only; the offset for compressed ones).
    pub size_seen: u64,
    /// Read to the end of a rotated file, which will not change again.
    pub finished: bool,
}

/// Everything the follower keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    /// Format version.
    pub version: u32,
    /// Followed files.
    pub files: Vec<FileState>,
    /// Gaps not yet acknowledged by a server.
    pub pending_gaps: Vec<Gap>,
    /// Bytes lost so far, over the follower's life.
    pub dropped_bytes: u64,
}

/// The state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// I/O.
    #[error("checkpoint {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not a checkpoint, or one of a newer format.
    #[error("checkpoint {path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Version 1 to 2: a pending gap's file was `path`; it is `file`, as on the wire.
fn upgrade_from_1(value: &mut serde_json::Value) {
    if let Some(gaps) = value.get_mut("pendingGaps").and_then(|g| g.as_array_mut()) {
        for gap in gaps.iter_mut().filter_map(|g| g.as_object_mut()) {
            if let Some(path) = gap.remove("path") {
                gap.insert("file".into(), path);
            }
        }
    }
    value["version"] = VERSION.into();
}

impl Checkpoint {
    /// Reads the state at `path`; a missing file is a fresh start.
    pub fn load(path: &Path) -> Result<Checkpoint, CheckpointError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Checkpoint {
                    version: VERSION,
                    ..Checkpoint::default()
                });
            }
            Err(source) => {
                return Err(CheckpointError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        Checkpoint::parse(&text).map_err(|reason| CheckpointError::Invalid {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Reads the state from a checkpoint file's text; the error says why it is unusable.
    pub fn parse(text: &str) -> Result<Checkpoint, String> {
        let mut value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let version = value.get("version").and_then(|v| v.as_u64()).unwrap_or(0);
        match version {
            1 => upgrade_from_1(&mut value),
            v if v == u64::from(VERSION) => {}
            _ => {
                return Err(format!(
                    "format version {version}; this kubetrail reads versions 1 to {VERSION}"
                ));
            }
        }
        serde_json::from_value(value).map_err(|e| e.to_string())
    }

    /// The text [`Checkpoint::save`] writes.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a checkpoint serializes to JSON")
    }

    /// Writes the state atomically.
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        let io = |source| CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        };
        let tmp = path.with_extension("tmp");
        let text = self.to_json();
        let mut f = File::create(&tmp).map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(io)?;
        if let Some(dir) = path.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_atomically_and_refuses_other_versions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint.json");
        let fresh = Checkpoint::load(&path).unwrap();
        assert_eq!(fresh.version, VERSION);
        assert!(fresh.files.is_empty());
        let mut c = fresh;
        c.files.push(FileState {
            fingerprint: "fp".into(),
            path: "/x".into(),
            offset: 7,
            size_seen: 9,
            finished: false,
        });
        c.save(&path).unwrap();
        assert_eq!(Checkpoint::load(&path).unwrap(), c);
        assert!(!path.with_extension("tmp").exists());
        std::fs::write(&path, r#"{"version":3,"files":[]}"#).unwrap();
        let e = Checkpoint::load(&path).unwrap_err().to_string();
        assert!(e.contains("format version 3"), "{e}");
        std::fs::write(&path, "{\"vers").unwrap();
        assert!(Checkpoint::load(&path).is_err());
    }

    /// A checkpoint an earlier agent wrote keeps its files and its unreported gaps.
    #[test]
    fn reads_version_1() {
        let v1 = r#"{"version":1,"files":[{"fingerprint":"fp","path":"/var/log/a.audit","offset":5,"sizeSeen":9,"finished":false}],"pendingGaps":[{"id":"g1","path":"/var/log/a-2024.audit","fingerprint":"f2","fromOffset":10,"bytes":90,"detectedAt":"2024-01-01T00:00:01Z","reason":"deleted before it was read to its end"}],"droppedBytes":90}"#;
        let c = Checkpoint::parse(v1).unwrap();
        assert_eq!(c.version, VERSION);
        assert_eq!(c.files[0].path, PathBuf::from("/var/log/a.audit"));
        assert_eq!(c.files[0].offset, 5);
        let gap = &c.pending_gaps[0];
        assert_eq!(gap.file, "/var/log/a-2024.audit");
        assert_eq!(gap.reason, kubetrail_model::GapReason::Deleted);
        assert_eq!((gap.from_offset, gap.bytes), (10, 90));
        assert_eq!(c.dropped_bytes, 90);
        // Written again, it is version 2 and reads back the same.
        assert_eq!(Checkpoint::parse(&c.to_json()).unwrap(), c);
        assert!(c.to_json().contains(r#""version":2"#));
    }
}
