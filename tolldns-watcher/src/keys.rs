//! The watcher key: an ed25519 key file in the solana-keygen JSON format
//! ([`tolldns_service::keyfile`]), generated with mode 0600 on first start and refused when
//! group or others may read it. It signs audit requests (as the miners' auditor key) and the
//! score program's report transactions, so it must be on the program's watcher list.

use std::path::Path;

use ed25519_dalek::{SigningKey, VerifyingKey};
use tolldns_service::files::{FileError, create_private_dir};
use tolldns_service::keyfile::{self, KeyFileError};

/// Loads the key at `path`, generating it (and its directory, mode 0700) when missing.
/// Returns the key and whether it was created now.
///
/// # Errors
///
/// [`KeyFileError`]: unreadable, malformed, or readable by group or others.
pub fn load_or_create(path: &Path) -> Result<(SigningKey, bool), KeyFileError> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok((keyfile::load(path)?, false)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                create_private_dir(parent)
                    .map_err(|e| KeyFileError::File(FileError::io(parent)(e)))?;
            }
            let key = SigningKey::generate(&mut rand::rngs::OsRng);
            keyfile::write(path, &key, false)?;
            Ok((key, true))
        }
        Err(e) => Err(KeyFileError::File(FileError::io(path)(e))),
    }
}

/// Base58 of a public key (the Solana form).
pub fn public_key_string(key: &VerifyingKey) -> String {
    bs58::encode(key.as_bytes()).into_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_owner_only() {
        let dir = std::env::temp_dir().join(format!("tolldns-watcher-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("keys").join("w.json");
        let (a, created) = load_or_create(&path).unwrap();
        assert!(created);
        let (b, created) = load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(a.to_bytes(), b.to_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = load_or_create(&path).unwrap_err().to_string();
            assert!(e.contains("chmod 600"), "{e}");
        }
        assert!(public_key_string(&a.verifying_key()).len() >= 32);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
