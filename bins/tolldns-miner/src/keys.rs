//! Key files: the solana-keygen JSON format (a JSON array of 64 numbers: the 32-byte secret
//! seed, then the 32-byte public key), created with mode 0600; a key file readable by group or
//! others is refused. The format and its rules are [`tolldns_service::keyfile`]'s (shared with
//! the `tolldns` CLI); the owner-only file helpers are [`tolldns_service::files`], re-exported
//! here.

use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};
use tolldns_service::keyfile::{self, KeyFileError};

pub use tolldns_service::files::{
    FileError, check_private_mode, create_private_dir, write_private_file,
};

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Reading or writing failed, or group or others may read the file.
    #[error(transparent)]
    File(#[from] FileError),
    /// Not a JSON array of 64 numbers in 0..=255.
    #[error("{path}: not a solana-keygen key file (expected a JSON array of 64 bytes)")]
    Format {
        /// The key file.
        path: PathBuf,
    },
    /// The public half does not belong to the secret half.
    #[error("{path}: the public key does not match the secret key")]
    Mismatch {
        /// The key file.
        path: PathBuf,
    },
}

/// Public keys given as text: one strict rule for the miner, the CLI and the watcher.
pub use tolldns_service::keyfile::{PublicKeyError, parse_public_key};

/// Base58 of a public key (the Solana form).
pub fn public_key_string(key: &VerifyingKey) -> String {
    bs58::encode(key.as_bytes()).into_string()
}

/// Loads a keypair file after checking it ([`tolldns_service::keyfile::load`]: an owner-only
/// regular file of at most 4096 bytes) and that its halves agree.
///
/// # Errors
///
/// Any [`KeyError`].
pub fn load_keypair(path: &Path) -> Result<SigningKey, KeyError> {
    keyfile::load(path).map_err(|e| key_error(e, path))
}

/// Writes a new keypair file with mode 0600 (never overwriting), synced to disk; the parent
/// directory is created with mode 0700 when missing.
///
/// # Errors
///
/// [`KeyError::File`] (including "already exists").
pub fn write_keypair(path: &Path, key: &SigningKey) -> Result<(), KeyError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dir(parent).map_err(FileError::io(parent))?;
    }
    keyfile::write(path, key, false).map_err(|e| key_error(e, path))
}

/// The miner's error for a shared key-file error (its messages are the miner's own).
fn key_error(e: KeyFileError, path: &Path) -> KeyError {
    match e {
        KeyFileError::File(e) => KeyError::File(e),
        KeyFileError::Exists { .. } => KeyError::File(FileError::Io {
            path: path.to_owned(),
            error: std::io::ErrorKind::AlreadyExists.into(),
        }),
        KeyFileError::PublicKeyMismatch { .. } => KeyError::Mismatch {
            path: path.to_owned(),
        },
        _ => KeyError::Format {
            path: path.to_owned(),
        },
    }
}

/// Loads the signing key, generating it on first start. Returns the key and whether it was
/// created now.
///
/// # Errors
///
/// Any [`KeyError`].
pub fn load_or_create_keypair(path: &Path) -> Result<(SigningKey, bool), KeyError> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok((load_keypair(path)?, false)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SigningKey::generate(&mut rand::rngs::OsRng);
            write_keypair(path, &key)?;
            Ok((key, true))
        }
        Err(e) => Err(FileError::io(path)(e).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("tolldns-miner-keys-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn create_load_and_refuse_open_modes() {
        let dir = tmp("a");
        let path = dir.join("keys").join("k.json");
        let (k1, created) = load_or_create_keypair(&path).unwrap();
        assert!(created);
        let (k2, created) = load_or_create_keypair(&path).unwrap();
        assert!(!created);
        assert_eq!(k1.to_bytes(), k2.to_bytes());
        // The file is a JSON array of 64 numbers: seed then public key.
        let v: Vec<u8> = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(v.len(), 64);
        assert_eq!(&v[..32], &k1.to_bytes());
        assert_eq!(&v[32..], k1.verifying_key().as_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
            let e = load_keypair(&path).unwrap_err();
            assert!(
                matches!(
                    e,
                    KeyError::File(FileError::Permissions { mode: 0o640, .. })
                ),
                "{e}"
            );
            assert!(e.to_string().contains("chmod 600"));
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        // A tampered public half is refused.
        let mut bad = v;
        bad[40] ^= 1;
        std::fs::remove_file(&path).unwrap();
        write_private_file(&path, serde_json::to_string(&bad).unwrap().as_bytes()).unwrap();
        assert!(matches!(
            load_keypair(&path),
            Err(KeyError::Mismatch { .. })
        ));
        std::fs::remove_file(&path).unwrap();
        write_private_file(&path, b"[1,2,3]").unwrap();
        assert!(matches!(load_keypair(&path), Err(KeyError::Format { .. })));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn public_keys() {
        let k = SigningKey::from_bytes(&[3; 32]).verifying_key();
        assert_eq!(parse_public_key(&public_key_string(&k)).unwrap(), k);
        assert!(parse_public_key("not base58 0OIl").is_err());
        assert!(parse_public_key("11111111111111111111111111111111").is_err());
    }
}
