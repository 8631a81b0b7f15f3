//! The issuer's signing keys on disk, and the owner-only file helpers.
//!
//! # Layout (in the data directory)
//!
//! - `issuer-key.pem`: the current key, an RSA private key in PKCS#8 PEM (mode 0600). New
//!   tokens are signed with it and it is listed first in the directory.
//! - `issuer-key.not-before`: its `not-before` (decimal Unix seconds), what the directory
//!   publishes. Written when the key is generated; when missing (a key file brought by the
//!   operator) it is written with the time of the first start that finds it missing.
//! - `issuer-keys/<not-before>-<key id prefix>.pem`: retired keys, still published (newest
//!   first, after the current key) and still accepted for issuance, so that clients holding
//!   an older directory and edges verifying older tokens keep working. `<not-before>` is the
//!   key's own not-before (decimal Unix seconds), `<key id prefix>` the first 8 hex digits of
//!   its key id. Deleting a file unpublishes that key at the next start (or SIGHUP).
//!
//! Every key file must be readable by its owner only: a file that group or others may read is
//! refused with an error naming it. Key files are written with mode 0600 in directories with
//! mode 0700 ([`tolldns_service::files`], re-exported here).
//!
//! # Rotation
//!
//! [`KeyStore::rotate`] copies the current key to `issuer-keys/`, then replaces
//! `issuer-key.pem` atomically (rename) with a new key, then its `not-before`. A crash between
//! the steps leaves every key published: a retired copy of the current key is skipped when
//! loading, and a stale `not-before` only makes the new key's date earlier.

use std::path::{Path, PathBuf};

use tolldns_tickets::{IssuerSecretKey, IssuingKey};

pub use tolldns_service::files::{
    FileError, check_private_mode, create_private_dir, replace_private_file, write_private_file,
};

/// File name of the current key in the data directory.
pub const CURRENT_KEY_FILE: &str = "issuer-key.pem";
/// File name of the current key's not-before in the data directory.
pub const CURRENT_NOT_BEFORE_FILE: &str = "issuer-key.not-before";
/// Directory (in the data directory) of the retired keys that are still published.
pub const RETIRED_KEYS_DIR: &str = "issuer-keys";

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Reading or writing failed, or group or others may read the file.
    #[error(transparent)]
    File(#[from] FileError),
    /// The file is not a usable RSA private key.
    #[error("{path}: {error}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// Why.
        error: tolldns_tickets::KeyError,
    },
    /// A key could not be generated.
    #[error("generating an issuer key: {0}")]
    Generate(tolldns_tickets::KeyError),
    /// A not-before file or a retired key's name does not hold a Unix time.
    #[error("{path}: {what}")]
    Name {
        /// The file.
        path: PathBuf,
        /// What is expected.
        what: &'static str,
    },
    /// There is no current key.
    #[error(
        "no issuer key at {path}; `tolldns-issuer run` or `tolldns-issuer key rotate` creates one"
    )]
    Missing {
        /// Where it was looked for.
        path: PathBuf,
    },
}

/// The signing keys of an issuer in its data directory (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStore {
    dir: PathBuf,
}

/// What [`KeyStore::rotate`] did.
#[derive(Debug)]
pub struct Rotation {
    /// The new current key.
    pub current: IssuingKey,
    /// The previous key and the file it is kept in, if there was one.
    pub retired: Option<(IssuingKey, PathBuf)>,
}

fn read_key(path: &Path) -> Result<IssuerSecretKey, KeyError> {
    let pem = tolldns_service::files::read_private_string(path)?;
    IssuerSecretKey::from_pem(&pem).map_err(|error| KeyError::Key {
        path: path.to_owned(),
        error,
    })
}

fn generate(bits: usize) -> Result<IssuerSecretKey, KeyError> {
    IssuerSecretKey::generate(bits).map_err(KeyError::Generate)
}

fn pem(key: &IssuerSecretKey) -> Result<zeroize::Zeroizing<String>, KeyError> {
    key.to_pem().map_err(KeyError::Generate)
}

impl KeyStore {
    /// The keys in `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.to_owned(),
        }
    }

    /// `<data_dir>/issuer-key.pem`.
    pub fn current_path(&self) -> PathBuf {
        self.dir.join(CURRENT_KEY_FILE)
    }

    fn not_before_path(&self) -> PathBuf {
        self.dir.join(CURRENT_NOT_BEFORE_FILE)
    }

    /// `<data_dir>/issuer-keys`.
    pub fn retired_dir(&self) -> PathBuf {
        self.dir.join(RETIRED_KEYS_DIR)
    }

    /// The path a retired key is kept at.
    pub fn retired_path(&self, key: &IssuingKey) -> PathBuf {
        let id = hex::encode(key.key.public().key_id());
        self.retired_dir()
            .join(format!("{}-{}.pem", key.not_before, &id[..8]))
    }

    /// Every published key: the current one first, then the retired ones, newest first.
    ///
    /// # Errors
    ///
    /// [`KeyError::Missing`] without a current key, or any other [`KeyError`] naming the file.
    pub fn load(&self, now_unix_s: u64) -> Result<Vec<IssuingKey>, KeyError> {
        let path = self.current_path();
        match std::fs::symlink_metadata(&path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(KeyError::Missing { path });
            }
            Err(e) => return Err(FileError::io(&path)(e).into()),
        }
        let key = read_key(&path)?;
        let current = IssuingKey {
            key,
            not_before: self.current_not_before(now_unix_s)?,
        };
        let mut keys = vec![current];
        let mut retired = self.load_retired()?;
        retired.retain(|r| r.key.public().key_id() != keys[0].key.public().key_id());
        retired.sort_by_key(|k| std::cmp::Reverse(k.not_before));
        keys.extend(retired);
        Ok(keys)
    }

    /// [`KeyStore::load`], generating a `bits`-bit current key first when there is none.
    /// Returns the keys and whether the current one was generated now.
    ///
    /// # Errors
    ///
    /// Any [`KeyError`].
    pub fn load_or_create(
        &self,
        bits: usize,
        now_unix_s: u64,
    ) -> Result<(Vec<IssuingKey>, bool), KeyError> {
        match self.load(now_unix_s) {
            Err(KeyError::Missing { .. }) => {
                let key = generate(bits)?;
                self.write_not_before(now_unix_s)?;
                write_private_file(&self.current_path(), pem(&key)?.as_bytes())?;
                Ok((self.load(now_unix_s)?, true))
            }
            other => other.map(|keys| (keys, false)),
        }
    }

    /// Generates a new current key of `bits` bits; the previous one (if any) is kept in
    /// `issuer-keys/` and stays published.
    ///
    /// # Errors
    ///
    /// Any [`KeyError`]; the previous key is then still the current one.
    pub fn rotate(&self, bits: usize, now_unix_s: u64) -> Result<Rotation, KeyError> {
        let previous = match self.load(now_unix_s) {
            Ok(keys) => keys.into_iter().next(),
            Err(KeyError::Missing { .. }) => None,
            Err(e) => return Err(e),
        };
        let key = generate(bits)?;
        let retired = match previous {
            Some(old) => {
                let path = self.retired_path(&old);
                let text = pem(&old.key)?;
                match write_private_file(&path, text.as_bytes()) {
                    Ok(()) => {}
                    // Left by an interrupted rotation: the same key under the same name.
                    Err(FileError::Io { error, .. })
                        if error.kind() == std::io::ErrorKind::AlreadyExists
                            && read_key(&path)?.public() == old.key.public() => {}
                    Err(e) => return Err(e.into()),
                }
                Some((old, path))
            }
            None => None,
        };
        replace_private_file(&self.current_path(), pem(&key)?.as_bytes())?;
        self.write_not_before(now_unix_s)?;
        Ok(Rotation {
            current: IssuingKey {
                key,
                not_before: now_unix_s,
            },
            retired,
        })
    }

    fn write_not_before(&self, t: u64) -> Result<(), KeyError> {
        Ok(replace_private_file(
            &self.not_before_path(),
            format!("{t}\n").as_bytes(),
        )?)
    }

    fn current_not_before(&self, now_unix_s: u64) -> Result<u64, KeyError> {
        let path = self.not_before_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().parse().map_err(|_| KeyError::Name {
                path,
                what: "expected the key's not-before in decimal Unix seconds",
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.write_not_before(now_unix_s)?;
                Ok(now_unix_s)
            }
            Err(e) => Err(FileError::io(&path)(e).into()),
        }
    }

    fn load_retired(&self) -> Result<Vec<IssuingKey>, KeyError> {
        let dir = self.retired_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(FileError::io(&dir)(e).into()),
        };
        let mut keys = Vec::new();
        for entry in entries {
            let path = entry.map_err(FileError::io(&dir))?.path();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".pem"))
            else {
                // `.tmp` files of an interrupted write and anything else that is not a key.
                continue;
            };
            let not_before = name
                .split('-')
                .next()
                .and_then(|t| t.parse::<u64>().ok())
                .ok_or_else(|| KeyError::Name {
                    path: path.clone(),
                    what:
                        "retired key files are named <not-before unix seconds>-<key id prefix>.pem",
                })?;
            keys.push(IssuingKey {
                key: read_key(&path)?,
                not_before,
            });
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("tolldns-issuer-keys-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn ids(keys: &[IssuingKey]) -> Vec<([u8; 32], u64)> {
        keys.iter()
            .map(|k| (k.key.public().key_id(), k.not_before))
            .collect()
    }

    #[test]
    fn create_load_rotate_and_refuse_open_modes() {
        let dir = tmp("a");
        let store = KeyStore::new(&dir);
        assert!(matches!(store.load(1), Err(KeyError::Missing { .. })));
        let (first, created) = store.load_or_create(2048, 1_000).unwrap();
        assert!(created);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].not_before, 1_000);
        let (again, created) = store.load_or_create(2048, 2_000).unwrap();
        assert!(!created);
        assert_eq!(ids(&again), ids(&first));

        let r = store.rotate(2048, 3_000).unwrap();
        let (old, path) = r.retired.unwrap();
        assert_eq!(old.key.public(), first[0].key.public());
        assert!(path.starts_with(store.retired_dir()));
        let keys = store.load(4_000).unwrap();
        assert_eq!(
            ids(&keys),
            vec![
                (r.current.key.public().key_id(), 3_000),
                (first[0].key.public().key_id(), 1_000)
            ]
        );
        let r2 = store.rotate(2048, 5_000).unwrap();
        let keys = store.load(6_000).unwrap();
        assert_eq!(
            keys.iter().map(|k| k.not_before).collect::<Vec<_>>(),
            vec![5_000, 3_000, 1_000]
        );
        assert_eq!(keys[0].key.public(), r2.current.key.public());

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            for p in [store.current_path(), path.clone()] {
                let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{}", p.display());
            }
            let mode = std::fs::metadata(store.retired_dir())
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o700);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
            let e = store.load(7_000).unwrap_err();
            assert!(
                matches!(&e, KeyError::File(FileError::Permissions { mode: 0o640, path: p }) if *p == path),
                "{e}"
            );
            assert!(e.to_string().contains("chmod 600"), "{e}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn interrupted_rotation_keeps_every_key_once() {
        let dir = tmp("b");
        let store = KeyStore::new(&dir);
        let (keys, _) = store.load_or_create(2048, 10).unwrap();
        // Crash after copying the current key to issuer-keys/ but before replacing it.
        let path = store.retired_path(&keys[0]);
        write_private_file(&path, keys[0].key.to_pem().unwrap().as_bytes()).unwrap();
        assert_eq!(ids(&store.load(20).unwrap()), ids(&keys));
        // The rotation then completes over the leftover copy.
        let r = store.rotate(2048, 30).unwrap();
        assert_eq!(r.retired.unwrap().1, path);
        assert_eq!(store.load(40).unwrap().len(), 2);
        // A badly named key file is named in the error.
        std::fs::copy(&path, store.retired_dir().join("old.pem")).unwrap();
        let e = store.load(50).unwrap_err().to_string();
        assert!(e.contains("old.pem") && e.contains("<not-before"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn operator_key_without_not_before_gets_one() {
        let dir = tmp("c");
        create_private_dir(&dir).unwrap();
        let store = KeyStore::new(&dir);
        let key = IssuerSecretKey::generate(2048).unwrap();
        write_private_file(&store.current_path(), key.to_pem().unwrap().as_bytes()).unwrap();
        let keys = store.load(77).unwrap();
        assert_eq!(keys[0].not_before, 77);
        assert_eq!(store.load(99).unwrap()[0].not_before, 77);
        std::fs::write(dir.join(CURRENT_NOT_BEFORE_FILE), "soon").unwrap();
        assert!(matches!(store.load(1), Err(KeyError::Name { .. })));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
