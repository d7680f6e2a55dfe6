//! The per-installation redaction [`Key`]: 32 random bytes in the data directory
//! ([`KEY_FILE`], owner-only), made on first use. Markers are keyed hashes under it, so a
//! dictionary attack on a stored marker needs this file as well as the store.

use kubetrail_model::secret_file::{Created, create_once, readable_by_others};
use std::fmt;
use std::path::{Path, PathBuf};

/// The key's file name in the data directory.
pub const KEY_FILE: &str = "redaction.key";

/// Why the key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing the key file failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file exists but does not hold a key.
    #[error("{}: not a redaction key (64 hex digits expected); restore it from a backup, or delete it to start a new key (markers made under the old key no longer compare equal to new ones)", path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
    },
    /// The system's random source failed.
    #[error("no random bytes for a new redaction key: {0}")]
    Random(String),
}

/// A redaction key.
#[derive(Clone, PartialEq, Eq)]
pub struct Key(pub(crate) [u8; 32]);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

/// A key read from its file, and whether this call made it.
#[derive(Debug)]
pub struct LoadedKey {
    /// The key.
    pub key: Key,
    /// Where it is kept.
    pub path: PathBuf,
    /// True when the file did not exist and was written now.
    pub created: bool,
    /// True when group or others may read the file (a volume's `fsGroup` can do that).
    pub readable_by_others: bool,
}

impl Key {
    /// A key from the given bytes (tests, and keys kept elsewhere).
    pub fn from_bytes(bytes: [u8; 32]) -> Key {
        Key(bytes)
    }

    /// A new random key.
    pub fn generate() -> Result<Key, KeyError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(Key(bytes))
    }

    fn parse(text: &str) -> Option<Key> {
        let bytes = kubetrail_model::unhex(text.trim())?;
        Some(Key(bytes.try_into().ok()?))
    }

    /// Reads `dir/`[`KEY_FILE`], or makes it (owner-only, written whole before it appears, so
    /// two processes starting at once agree on one key).
    pub fn load_or_create(dir: &Path) -> Result<LoadedKey, KeyError> {
        let path = dir.join(KEY_FILE);
        let io = |action, path: &Path| {
            let path = path.to_path_buf();
            move |source| KeyError::Io {
                action,
                path,
                source,
            }
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let key =
                    Key::parse(&text).ok_or_else(|| KeyError::Damaged { path: path.clone() })?;
                let readable_by_others = readable_by_others(&path);
                return Ok(LoadedKey {
                    key,
                    path,
                    created: false,
                    readable_by_others,
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("reading", &path)(e)),
        }
        std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
        let key = Key::generate()?;
        let tmp = dir.join(format!("{KEY_FILE}.{}.tmp", std::process::id()));
        let text = format!("{}\n", kubetrail_model::hex(&key.0));
        match create_once(&path, &tmp, text.as_bytes()) {
            Ok(Created::Made) => Ok(LoadedKey {
                key,
                path,
                created: true,
                readable_by_others: false,
            }),
            Ok(Created::Found) => Key::load_or_create(dir),
            Err((file, source)) => Err(KeyError::Io {
                action: "writing",
                path: file.into(),
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_made_once_owner_only_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let made = Key::load_or_create(&dir.path().join("data")).unwrap();
        assert!(made.created);
        assert!(!made.readable_by_others);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&made.path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = Key::load_or_create(&dir.path().join("data")).unwrap();
        assert!(!again.created);
        assert_eq!(again.key, made.key);
        assert_ne!(made.key, Key::generate().unwrap());
        assert_eq!(format!("{:?}", made.key), "Key(<redacted>)");
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("data"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [KEY_FILE]);
    }

    #[test]
    fn a_damaged_key_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(KEY_FILE), "abc\n").unwrap();
        let e = Key::load_or_create(dir.path()).unwrap_err().to_string();
        assert!(e.contains("not a redaction key"), "{e}");
        assert!(e.contains(KEY_FILE), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn a_key_others_can_read_is_reported() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let made = Key::load_or_create(dir.path()).unwrap();
        std::fs::set_permissions(&made.path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(Key::load_or_create(dir.path()).unwrap().readable_by_others);
    }
}
