//! Files that hold a secret (the redaction key, the chain's signing key): written owner-only
//! and whole before they appear, made once even when two processes start at the same time.

use std::io::Write;
use std::path::Path;

/// What [`create_once`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// This call made the file.
    Made,
    /// Another process made it first: theirs stays, to be read.
    Found,
}

/// Writes `bytes` to `path`, owner-only (0600), through `tmp` (which must be unique to the
/// caller) and a hard link, which never replaces: whoever links first made the file everyone
/// uses. The error names the file it concerns.
pub fn create_once(
    path: &Path,
    tmp: &Path,
    bytes: &[u8],
) -> Result<Created, (String, std::io::Error)> {
    fn at(p: &Path) -> impl FnOnce(std::io::Error) -> (String, std::io::Error) + '_ {
        move |e| (p.display().to_string(), e)
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(tmp).map_err(at(tmp))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(at(tmp))?;
    drop(file);
    let linked = std::fs::hard_link(tmp, path);
    let _ = std::fs::remove_file(tmp);
    match linked {
        Ok(()) => {
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
            if let Some(d) = dir.and_then(|d| std::fs::File::open(d).ok()) {
                let _ = d.sync_all();
            }
            Ok(Created::Made)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(Created::Found),
        Err(e) => Err(at(path)(e)),
    }
}

/// Whether group or others may read `path`.
#[cfg(unix)]
pub fn readable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
}

/// Whether group or others may read `path` (never said off Unix).
#[cfg(not(unix))]
pub fn readable_by_others(_: &Path) -> bool {
    false
}
