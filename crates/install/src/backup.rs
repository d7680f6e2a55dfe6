//! Backups of what an install replaces, kept outside the manifests directory (the kubelet
//! starts a static pod from every manifest in that directory, copies included), and the
//! revert that puts them back byte for byte.
//!
//! Each install that changes something writes `<backup-dir>/<stamp>/`: the manifest as it was,
//! each other file as it was (or a note that it did not exist), and `install.json` listing them.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A file an install wrote, and what it held before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    /// The file.
    pub path: PathBuf,
    /// Its copy in the backup, or `None` when the install created it.
    pub copy: Option<PathBuf>,
}

/// What one install changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// When (UTC, `YYYYMMDDTHHMMSS.mmmZ`).
    pub stamp: String,
    /// The files, manifest first.
    pub files: Vec<Saved>,
}

/// A backup could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// I/O on a path.
    #[error("{path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The backup directory is where the kubelet would run a copy from.
    #[error(
        "the backup directory {0} is inside the manifests directory: the kubelet would start a second apiserver from the copy"
    )]
    InsideManifests(PathBuf),
    /// Nothing to revert.
    #[error("no kubetrail backup of {manifest} in {dir}")]
    NothingToRevert {
        /// The manifest.
        manifest: PathBuf,
        /// Where backups were looked for.
        dir: PathBuf,
    },
    /// A record that is not ours.
    #[error("{path}: {reason}")]
    Invalid {
        /// The record.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Refuses a backup directory inside the manifest's directory.
pub fn check_location(backup_dir: &Path, manifest: &Path) -> Result<(), BackupError> {
    let dir = absolute(backup_dir);
    if let Some(manifests) = absolute(manifest).parent()
        && dir.starts_with(manifests)
    {
        return Err(BackupError::InsideManifests(dir));
    }
    Ok(())
}

/// Saves the current content of `paths` (the manifest first) under a new stamp.
pub fn save(backup_dir: &Path, paths: &[&Path]) -> Result<Record, BackupError> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string();
    let dir = backup_dir.join(&stamp);
    // Owner-only: the copies may hold credentials (a webhook kubeconfig).
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(io(&dir))?;
    }
    let mut files = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let copy = match std::fs::read(path) {
            Ok(bytes) => {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let copy = dir.join(format!("{i}-{name}"));
                write_private(&copy, &bytes)?;
                Some(copy)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(path)(e)),
        };
        files.push(Saved {
            path: absolute(path),
            copy,
        });
    }
    let record = Record { stamp, files };
    let json = dir.join("install.json");
    let text =
        serde_json::to_string_pretty(&record).map_err(|e| io(&json)(std::io::Error::other(e)))?;
    write_private(&json, text.as_bytes())?;
    Ok(record)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), BackupError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io(path))?;
    f.write_all(bytes).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

/// The newest backup of `manifest` in `backup_dir`.
pub fn latest(backup_dir: &Path, manifest: &Path) -> Result<(PathBuf, Record), BackupError> {
    let target = absolute(manifest);
    let mut found: Option<(PathBuf, Record)> = None;
    let entries = match std::fs::read_dir(backup_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(BackupError::NothingToRevert {
                manifest: manifest.to_path_buf(),
                dir: backup_dir.to_path_buf(),
            });
        }
        Err(e) => return Err(io(backup_dir)(e)),
    };
    for entry in entries.flatten() {
        let json = entry.path().join("install.json");
        let Ok(text) = std::fs::read_to_string(&json) else {
            continue;
        };
        let record: Record = serde_json::from_str(&text).map_err(|e| BackupError::Invalid {
            path: json.clone(),
            reason: e.to_string(),
        })?;
        if record.files.first().map(|f| &f.path) != Some(&target) {
            continue;
        }
        if found.as_ref().is_none_or(|(_, r)| r.stamp < record.stamp) {
            found = Some((entry.path(), record));
        }
    }
    found.ok_or_else(|| BackupError::NothingToRevert {
        manifest: manifest.to_path_buf(),
        dir: backup_dir.to_path_buf(),
    })
}

/// Puts every file of `record` back as it was (removing the ones the install created), then
/// marks the backup as reverted so that a second revert goes one install further back.
pub fn restore(dir: &Path, record: &Record) -> Result<(), BackupError> {
    // The manifest last: the kubelet restarts the apiserver when it changes, and by then the
    // files it mounts should be back too.
    for saved in record.files.iter().rev() {
        match &saved.copy {
            Some(copy) => {
                let bytes = std::fs::read(copy).map_err(io(copy))?;
                write_atomically(&saved.path, &bytes)?;
            }
            None => match std::fs::remove_file(&saved.path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&saved.path)(e)),
            },
        }
    }
    let json = dir.join("install.json");
    std::fs::rename(&json, dir.join("install.json.reverted")).map_err(io(&json))?;
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file beside it and a rename, so the kubelet
/// never sees half a manifest. The temporary name does not end in `.yaml`, so the kubelet
/// ignores it. The file is created owner-only (what it holds may be a credential) and then
/// given the permissions of the file it replaces, if there was one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), BackupError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_file_name(format!(
        ".{}.kubetrail-tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    // Keep the original's permissions (manifests are 0600 under kubeadm).
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(&tmp, meta.permissions());
    }
    std::fs::rename(&tmp, path).map_err(io(path))?;
    Ok(())
}
