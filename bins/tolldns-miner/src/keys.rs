//! Key files: the solana-keygen JSON format (a JSON array of 64 numbers: the 32-byte secret
//! seed, then the 32-byte public key), created with mode 0600; a key file readable by group or
//! others is refused.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Reading or writing failed.
    #[error("{path}: {error}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The cause.
        error: std::io::Error,
    },
    /// Group or others may read the file.
    #[error(
        "{path} is readable by group or others (mode {mode:04o}); run `chmod 600 {path}` and check who could have read it"
    )]
    Permissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
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

/// Why a public key string was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a base58 ed25519 public key")]
pub struct PublicKeyError;

/// Parses a base58 ed25519 public key (strictly: 32 bytes, a valid curve point).
///
/// # Errors
///
/// [`PublicKeyError`].
pub fn parse_public_key(s: &str) -> Result<VerifyingKey, PublicKeyError> {
    let bytes = bs58::decode(s).into_vec().map_err(|_| PublicKeyError)?;
    let arr: [u8; 32] = bytes.try_into().map_err(|_| PublicKeyError)?;
    let key = VerifyingKey::from_bytes(&arr).map_err(|_| PublicKeyError)?;
    if key.is_weak() {
        return Err(PublicKeyError);
    }
    Ok(key)
}

/// Base58 of a public key (the Solana form).
pub fn public_key_string(key: &VerifyingKey) -> String {
    bs58::encode(key.as_bytes()).into_string()
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |error| KeyError::Io {
        path: path.to_owned(),
        error,
    }
}

/// Refuses a file that group or others may access.
///
/// # Errors
///
/// [`KeyError::Permissions`] or [`KeyError::Io`].
pub fn check_private_mode(path: &Path) -> Result<(), KeyError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)
            .map_err(io(path))?
            .permissions()
            .mode()
            & 0o7777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Permissions {
                path: path.to_owned(),
                mode,
            });
        }
    }
    Ok(())
}

/// Loads a keypair file after checking its mode and that its halves agree.
///
/// # Errors
///
/// Any [`KeyError`].
pub fn load_keypair(path: &Path) -> Result<SigningKey, KeyError> {
    check_private_mode(path)?;
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(io(path))?);
    let bytes: zeroize::Zeroizing<Vec<u8>> =
        zeroize::Zeroizing::new(serde_json::from_str(&text).map_err(|_| KeyError::Format {
            path: path.to_owned(),
        })?);
    if bytes.len() != 64 {
        return Err(KeyError::Format {
            path: path.to_owned(),
        });
    }
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    seed.copy_from_slice(&bytes[..32]);
    let key = SigningKey::from_bytes(&seed);
    if key.verifying_key().as_bytes()[..] != bytes[32..] {
        return Err(KeyError::Mismatch {
            path: path.to_owned(),
        });
    }
    Ok(key)
}

/// Writes a new keypair file with mode 0600 (never overwriting), synced to disk; the parent
/// directory is created with mode 0700 when missing.
///
/// # Errors
///
/// [`KeyError::Io`] (including "already exists").
pub fn write_keypair(path: &Path, key: &SigningKey) -> Result<(), KeyError> {
    let mut bytes = zeroize::Zeroizing::new(Vec::with_capacity(64));
    bytes.extend_from_slice(&key.to_bytes());
    bytes.extend_from_slice(key.verifying_key().as_bytes());
    let json =
        zeroize::Zeroizing::new(serde_json::to_string(&*bytes).map_err(|e| KeyError::Io {
            path: path.to_owned(),
            error: std::io::Error::other(e),
        })?);
    write_private_file(path, json.as_bytes())
}

/// Creates `path` with mode 0600 (failing if it exists), writes `data`, and syncs the file and
/// its directory.
///
/// # Errors
///
/// [`KeyError::Io`].
pub fn write_private_file(path: &Path, data: &[u8]) -> Result<(), KeyError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dir(parent).map_err(io(parent))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io(path))?;
    file.write_all(data).map_err(io(path))?;
    file.sync_all().map_err(io(path))?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(io(parent))?;
    }
    Ok(())
}

/// Creates a directory (and its parents) with mode 0700 when missing.
///
/// # Errors
///
/// The underlying I/O error.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir)
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
        Err(e) => Err(io(path)(e)),
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
                matches!(e, KeyError::Permissions { mode: 0o640, .. }),
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
