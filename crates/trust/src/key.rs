//! The chain's keys: an Ed25519 signing key in a PKCS#8 PEM file (made owner-only on first
//! use, readable by `openssl pkey`), and public keys as SubjectPublicKeyInfo PEM.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kubetrail_model::secret_file::{Created, create_once, readable_by_others};
use kubetrail_store::chain::{Sign, key_id};
use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo, before the key's 32 bytes.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// A key that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing the file failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file holds no key of the kind expected.
    #[error("{}: {what}", path.display())]
    Invalid {
        /// The file (or where the text came from).
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// The system's random generator failed.
    #[error("the system's random generator failed")]
    Random,
}

/// The writer's signing key.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    id: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({}, <redacted>)", self.id)
    }
}

/// A key read or made by [`SigningKey::load_or_create`].
#[derive(Debug)]
pub struct LoadedKey {
    /// The key.
    pub key: SigningKey,
    /// Its file.
    pub path: PathBuf,
    /// Whether it was made now.
    pub created: bool,
    /// Whether group or others may read the file.
    pub readable_by_others: bool,
}

impl SigningKey {
    fn from_pkcs8(der: &[u8], path: &Path) -> Result<SigningKey, KeyError> {
        let pair =
            Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(|e| KeyError::Invalid {
                path: path.to_path_buf(),
                what: format!("not an Ed25519 private key (PKCS#8): {e}"),
            })?;
        let id = key_id(pair.public_key().as_ref());
        Ok(SigningKey { pair, id })
    }

    /// A new random key, and its PKCS#8 document.
    pub fn generate() -> Result<(SigningKey, Vec<u8>), KeyError> {
        let doc =
            Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| KeyError::Random)?;
        let key = SigningKey::from_pkcs8(doc.as_ref(), Path::new("a new key"))?;
        Ok((key, doc.as_ref().to_vec()))
    }

    /// Reads the key in `path` (PEM `PRIVATE KEY`), or makes one there, owner-only and written
    /// whole before it appears, so that two processes starting at once agree on one key.
    pub fn load_or_create(path: &Path) -> Result<LoadedKey, KeyError> {
        let io = |action, path: &Path| {
            let path = path.to_path_buf();
            move |source| KeyError::Io {
                action,
                path,
                source,
            }
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let der = pem_decode(&text, "PRIVATE KEY").ok_or_else(|| KeyError::Invalid {
                    path: path.to_path_buf(),
                    what: "no PEM `PRIVATE KEY` block in the file".into(),
                })?;
                return Ok(LoadedKey {
                    key: SigningKey::from_pkcs8(&der, path)?,
                    path: path.to_path_buf(),
                    created: false,
                    readable_by_others: readable_by_others(path),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("reading", path)(e)),
        }
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        if let Some(dir) = dir {
            std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
        }
        let (key, der) = SigningKey::generate()?;
        // Named by process and at random: two containers that are both process 1 may share
        // the directory.
        let mut nonce = [0u8; 8];
        ring::rand::SecureRandom::fill(&SystemRandom::new(), &mut nonce)
            .map_err(|_| KeyError::Random)?;
        let tmp = path.with_extension(format!(
            "{}-{}.tmp",
            std::process::id(),
            kubetrail_model::hex(&nonce)
        ));
        match create_once(path, &tmp, pem_encode(&der, "PRIVATE KEY").as_bytes()) {
            Ok(Created::Made) => Ok(LoadedKey {
                key,
                path: path.to_path_buf(),
                created: true,
                readable_by_others: false,
            }),
            Ok(Created::Found) => SigningKey::load_or_create(path),
            Err((file, source)) => Err(KeyError::Io {
                action: "writing",
                path: file.into(),
                source,
            }),
        }
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        let bytes: [u8; 32] = self
            .pair
            .public_key()
            .as_ref()
            .try_into()
            .unwrap_or([0; 32]);
        PublicKey {
            id: self.id.clone(),
            bytes,
        }
    }
}

impl Sign for SigningKey {
    fn key_id(&self) -> &str {
        &self.id
    }

    fn public_key_pem(&self) -> String {
        self.public_key().to_pem()
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(message).as_ref().to_vec()
    }
}

/// An Ed25519 public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    id: String,
    bytes: [u8; 32],
}

impl PublicKey {
    /// The key in PEM text (`PUBLIC KEY`, as `openssl pkey -pubout` writes it); `place` names
    /// where the text came from in the error.
    pub fn from_pem(text: &str, place: &Path) -> Result<PublicKey, KeyError> {
        let invalid = |what: &str| KeyError::Invalid {
            path: place.to_path_buf(),
            what: what.into(),
        };
        let der =
            pem_decode(text, "PUBLIC KEY").ok_or_else(|| invalid("no PEM `PUBLIC KEY` block"))?;
        let key = der
            .strip_prefix(&SPKI_PREFIX)
            .ok_or_else(|| invalid("not an Ed25519 public key"))?;
        let bytes: [u8; 32] = key
            .try_into()
            .map_err(|_| invalid("not an Ed25519 public key"))?;
        Ok(PublicKey {
            id: key_id(&bytes),
            bytes,
        })
    }

    /// Reads a PEM file.
    pub fn read(path: &Path) -> Result<PublicKey, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            action: "reading",
            path: path.to_path_buf(),
            source,
        })?;
        PublicKey::from_pem(&text, path)
    }

    /// The key's id ([`key_id`]).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// PEM text.
    pub fn to_pem(&self) -> String {
        let mut der = SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.bytes);
        pem_encode(&der, "PUBLIC KEY")
    }

    /// Whether `signature` is this key's signature of `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.bytes)
            .verify(message, signature)
            .is_ok()
    }
}

fn pem_encode(der: &[u8], label: &str) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The bytes of the first `label` block of PEM text.
fn pem_decode(text: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let body: String = text[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD.decode(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_made_once_owner_only_and_signs_what_its_public_key_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/signing.key");
        let made = SigningKey::load_or_create(&path).unwrap();
        assert!(made.created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = SigningKey::load_or_create(&path).unwrap();
        assert!(!again.created);
        assert_eq!(again.key.key_id(), made.key.key_id());
        let public = PublicKey::from_pem(&made.key.public_key_pem(), &path).unwrap();
        assert_eq!(public.id(), made.key.key_id());
        let signature = again.key.sign(b"link");
        assert!(public.verifies(b"link", &signature));
        assert!(!public.verifies(b"linK", &signature));
        let (other, _) = SigningKey::generate().unwrap();
        assert!(!other.public_key().verifies(b"link", &signature));
        assert!(format!("{:?}", made.key).contains("<redacted>"));
        // Only the key is left in the directory.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["signing.key"]);
    }

    #[test]
    fn what_is_not_a_key_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        std::fs::write(&path, "hello").unwrap();
        let e = SigningKey::load_or_create(&path).unwrap_err().to_string();
        assert!(e.contains("k.pem") && e.contains("PRIVATE KEY"), "{e}");
        let e = PublicKey::read(&path).unwrap_err().to_string();
        assert!(e.contains("PUBLIC KEY"), "{e}");
        // An RSA-sized public key is not an Ed25519 one.
        let wrong = pem_encode(&[0x30, 0x82, 1, 2], "PUBLIC KEY");
        let e = PublicKey::from_pem(&wrong, &path).unwrap_err().to_string();
        assert!(e.contains("not an Ed25519"), "{e}");
    }
}
