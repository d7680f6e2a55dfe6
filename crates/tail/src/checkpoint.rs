//! The follower's durable state: per file (by fingerprint) how far its content has been
//! delivered, and the gaps not yet reported. Written atomically — to a temporary file that is
//! synced, renamed over the old one, and the directory synced — so a crash leaves either the
//! old or the new state, never a torn one. The format carries a version; a newer version than
//! this build knows is refused rather than misread.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The format version this build writes and reads.
pub const VERSION: u32 = 1;

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

/// A stretch of log that could not be delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GapRecord {
    /// Unique among this follower's gaps.
    pub id: String,
    /// The file as last seen.
    pub path: PathBuf,
    /// Its fingerprint.
    pub fingerprint: String,
    /// First byte not delivered.
    pub from_offset: u64,
    /// Bytes known lost.
    pub bytes: u64,
    /// When it was noticed (RFC 3339).
    pub detected_at: String,
    /// Why.
    pub reason: String,
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
    pub pending_gaps: Vec<GapRecord>,
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
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let version = value.get("version").and_then(|v| v.as_u64()).unwrap_or(0);
        if version != u64::from(VERSION) {
            return Err(format!(
                "format version {version}; this kubetrail reads version {VERSION}"
            ));
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
        std::fs::write(&path, r#"{"version":2,"files":[]}"#).unwrap();
        let e = Checkpoint::load(&path).unwrap_err().to_string();
        assert!(e.contains("format version 2"), "{e}");
        std::fs::write(&path, "{\"vers").unwrap();
        assert!(Checkpoint::load(&path).is_err());
    }
}
