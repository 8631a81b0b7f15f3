//! Operator and wallet key files: an ed25519 key in the Solana keypair JSON format (as
//! written by `solana-keygen`), created owner-only and refused when others can reach it. One
//! implementation for the CLI (`tolldns keygen`, auditor and wallet keys) and the miner's
//! signing key.
//!
//! # Format
//!
//! A JSON array of exactly 64 integers in `0..=255`: the 32-byte secret seed followed by the
//! 32-byte public key, e.g. `[12,201,…,77]`. Whitespace around tokens is allowed; nothing else
//! (no sign, no leading zeros, no fraction, no trailing data). The public key must be the one
//! the seed derives. [`write()`] writes the array without spaces, then a newline.
//!
//! # Rules
//!
//! The owner-only file rules of [`crate::files`]:
//!
//! - [`write()`] creates the file with mode `0600` and refuses to replace an existing file
//!   unless asked to; a replacement is written to a temporary file in the same directory and
//!   renamed over the target, so the result is `0600` whatever the old mode was. The directory
//!   must exist.
//! - [`load()`] refuses anything but a regular file, a file larger than [`MAX_KEY_FILE_LEN`],
//!   and on Unix a file whose mode grants any permission to group or others
//!   (`mode & 0o077 != 0`, as OpenSSH does for private keys), checked on the opened file. The
//!   fix it suggests is `chmod 600 FILE`.
//! - Secret bytes are kept in zeroizing buffers and never printed.
//!
//! ```
//! use tolldns_service::keyfile;
//!
//! let dir = std::env::temp_dir().join(format!("tolldns-service-keyfile-doc-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! std::fs::create_dir_all(&dir)?;
//! let path = dir.join("key.json");
//! let key = ed25519_dalek::SigningKey::from_bytes(&[0; 32]);
//! keyfile::write(&path, &key, false)?;
//! assert!(keyfile::write(&path, &key, false).is_err());
//! assert_eq!(keyfile::load(&path)?.to_bytes(), key.to_bytes());
//! # std::fs::remove_dir_all(dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::iter::Peekable;
use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};
use zeroize::Zeroizing;

use crate::files::{self, FileError};

/// Bytes in a key file's array: seed then public key.
pub const KEYPAIR_LEN: usize = 64;

/// The longest key file accepted, in bytes (64 × `"255, "` plus brackets and a newline fit
/// easily).
pub const MAX_KEY_FILE_LEN: usize = 4096;

/// Why a key file could not be written or loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The file could not be opened, read, written or renamed, is not a regular file, is too
    /// large, or group or others have some permission on it.
    // Not a `#[source]`: the message already includes the file error's, and `{:#}` would
    // print it twice.
    #[error("key file {0}")]
    File(FileError),
    /// The file exists and replacing it was not asked for.
    #[error("key file {} already exists; refusing to overwrite it", path.display())]
    Exists {
        /// The key file.
        path: PathBuf,
    },
    /// The content is not a JSON array of 64 bytes.
    #[error(
        "key file {}: {reason} (expected a JSON array of 64 numbers 0..=255: secret seed, then public key)",
        path.display()
    )]
    Malformed {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
    /// The stored public key is not the one the seed derives.
    #[error("key file {}: the public key does not match the secret key", path.display())]
    PublicKeyMismatch {
        /// The key file.
        path: PathBuf,
    },
}

impl From<FileError> for KeyFileError {
    fn from(e: FileError) -> Self {
        Self::File(e)
    }
}

/// The key-file text of `key`: `[seed bytes…, public key bytes…]`, no spaces, no newline.
pub fn to_json(key: &SigningKey) -> Zeroizing<String> {
    use std::fmt::Write as _;
    let bytes = Zeroizing::new(key.to_keypair_bytes());
    // At most "255," per byte plus the brackets: no reallocation leaves secret copies behind.
    let mut text = Zeroizing::new(String::with_capacity(KEYPAIR_LEN * 4 + 2));
    text.push('[');
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        // Writing to a `String` cannot fail.
        let _ = write!(text, "{b}");
    }
    text.push(']');
    text
}

/// Parses key-file text (see the module docs for the format).
///
/// # Errors
///
/// [`KeyFileError::Malformed`] or [`KeyFileError::PublicKeyMismatch`], naming `path`.
pub fn from_json(text: &[u8], path: &Path) -> Result<SigningKey, KeyFileError> {
    let malformed = |reason| KeyFileError::Malformed {
        path: path.to_owned(),
        reason,
    };
    let mut bytes = Zeroizing::new([0u8; KEYPAIR_LEN]);
    let mut s = text.iter().copied().peekable();
    skip_ws(&mut s);
    if s.next() != Some(b'[') {
        return Err(malformed("not a JSON array"));
    }
    for (i, slot) in bytes.iter_mut().enumerate() {
        skip_ws(&mut s);
        if i > 0 {
            match s.next() {
                Some(b',') => skip_ws(&mut s),
                Some(b']') => return Err(malformed("fewer than 64 numbers")),
                _ => return Err(malformed("numbers must be separated by commas")),
            }
        }
        let mut value: u16 = 0;
        let mut digits = 0usize;
        while let Some(d) = s.next_if(u8::is_ascii_digit) {
            if digits == 1 && value == 0 {
                return Err(malformed("a number has a leading zero"));
            }
            value = value * 10 + u16::from(d - b'0');
            digits += 1;
            if value > 255 {
                return Err(malformed("a number is above 255"));
            }
        }
        if digits == 0 {
            return Err(malformed("an element is not a non-negative integer"));
        }
        *slot = u8::try_from(value).map_err(|_| malformed("a number is above 255"))?;
    }
    skip_ws(&mut s);
    match s.next() {
        Some(b']') => {}
        Some(b',') => return Err(malformed("more than 64 numbers")),
        _ => return Err(malformed("an element is not a non-negative integer")),
    }
    skip_ws(&mut s);
    if s.next().is_some() {
        return Err(malformed("data after the array"));
    }
    SigningKey::from_keypair_bytes(&bytes).map_err(|_| KeyFileError::PublicKeyMismatch {
        path: path.to_owned(),
    })
}

/// Skips JSON whitespace.
fn skip_ws(s: &mut Peekable<impl Iterator<Item = u8>>) {
    while s
        .next_if(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .is_some()
    {}
}

/// Loads a key file, refusing one that group or others can access (see the module docs).
///
/// # Errors
///
/// [`KeyFileError::File`] if it cannot be opened or read, is not a regular file, is larger
/// than [`MAX_KEY_FILE_LEN`] or has an open mode, then the errors of [`from_json`].
pub fn load(path: &Path) -> Result<SigningKey, KeyFileError> {
    let text = files::read_private_file(path, MAX_KEY_FILE_LEN as u64)?;
    from_json(&text, path)
}

/// Writes `key` to a key file at `path` with mode `0600`, in a directory that exists.
///
/// Without `overwrite`, an existing `path` is an error and is left untouched. With it, the key
/// is written to a temporary file next to `path` and renamed over it
/// ([`files::swap_private_file`]).
///
/// # Errors
///
/// [`KeyFileError::Exists`], or [`KeyFileError::File`] naming the file that failed.
pub fn write(path: &Path, key: &SigningKey, overwrite: bool) -> Result<(), KeyFileError> {
    let json = to_json(key);
    // Capacity for the newline up front: no reallocation leaves a secret copy behind.
    let mut text = Zeroizing::new(String::with_capacity(json.len() + 1));
    text.push_str(&json);
    text.push('\n');
    if overwrite {
        return Ok(files::swap_private_file(path, text.as_bytes())?);
    }
    files::create_private_file(path, text.as_bytes()).map_err(|e| {
        if e.is_already_exists() {
            KeyFileError::Exists {
                path: path.to_owned(),
            }
        } else {
            KeyFileError::File(e)
        }
    })
}

/// The base58 (Bitcoin alphabet) public key of `key`, as Solana tools print it.
pub fn public_key_base58(key: &SigningKey) -> String {
    bs58::encode(key.verifying_key().as_bytes()).into_string()
}

/// Why a public key string was refused by [`parse_public_key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a base58 ed25519 public key (32 bytes, a valid curve point, not of small order)")]
pub struct PublicKeyError;

/// Parses a base58 ed25519 public key strictly: exactly 32 bytes, a valid curve point, and not
/// a weak (small-order) key, which would let any signature verify. Surrounding whitespace is
/// ignored. One rule for every key given as text (config files and command-line options).
///
/// # Errors
///
/// [`PublicKeyError`].
pub fn parse_public_key(s: &str) -> Result<VerifyingKey, PublicKeyError> {
    let bytes = bs58::decode(s.trim())
        .into_vec()
        .map_err(|_| PublicKeyError)?;
    let arr: [u8; 32] = bytes.try_into().map_err(|_| PublicKeyError)?;
    let key = VerifyingKey::from_bytes(&arr).map_err(|_| PublicKeyError)?;
    if key.is_weak() {
        return Err(PublicKeyError);
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_keys_are_parsed_strictly() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let text = public_key_base58(&key);
        assert_eq!(
            parse_public_key(&format!(" {text}\n")).unwrap(),
            key.verifying_key()
        );
        // The identity point is a valid encoding but of small order: any signature verifies.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let weak = bs58::encode(identity).into_string();
        assert_eq!(parse_public_key(&weak), Err(PublicKeyError));
        assert_eq!(parse_public_key("0OIl"), Err(PublicKeyError));
        assert_eq!(
            parse_public_key(&bs58::encode([1u8; 31]).into_string()),
            Err(PublicKeyError)
        );
    }

    /// The numbers of a JSON array of integers (test helper; no serde_json here).
    fn numbers(text: &str) -> Vec<u8> {
        let inner = text
            .trim()
            .strip_prefix('[')
            .unwrap()
            .strip_suffix(']')
            .unwrap();
        inner
            .split(',')
            .map(|n| n.trim().parse().unwrap())
            .collect()
    }

    fn array(numbers: &[u8]) -> String {
        let items: Vec<String> = numbers.iter().map(u8::to_string).collect();
        format!("[{}]", items.join(","))
    }

    fn key() -> SigningKey {
        let mut seed = [0u8; 32];
        for (i, b) in seed.iter_mut().enumerate() {
            *b = i as u8;
        }
        SigningKey::from_bytes(&seed)
    }

    #[test]
    fn json_round_trip_and_layout() {
        let k = key();
        let text = to_json(&k);
        assert!(text.starts_with("[0,1,2,3,"));
        let numbers = numbers(&text);
        assert_eq!(numbers.len(), 64);
        assert_eq!(&numbers[32..], k.verifying_key().as_bytes());
        let back = from_json(text.as_bytes(), Path::new("k.json")).unwrap();
        assert_eq!(back.to_bytes(), k.to_bytes());
        // The RFC 8032 / receipts test-vector key: seed 0x00..=0x1f.
        assert_eq!(
            public_key_base58(&k),
            "FAe4sisG95oZ42w7buUn5qEE4TAnfTTFPiguZUHmhiF"
        );
        // Whitespace is allowed around tokens.
        let spaced = format!(" \n{}\n", text.replace(',', " , "));
        assert!(from_json(spaced.as_bytes(), Path::new("k")).is_ok());
    }

    #[test]
    fn malformed_files_are_refused() {
        let p = Path::new("k.json");
        let good = to_json(&key()).to_string();
        let reason = |text: &str| match from_json(text.as_bytes(), p) {
            Err(KeyFileError::Malformed { reason, .. }) => reason,
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("accepted {text}"),
        };
        assert_eq!(reason("{}"), "not a JSON array");
        assert_eq!(reason("[1,2]"), "fewer than 64 numbers");
        assert_eq!(
            reason(&good.replacen(']', ",1]", 1)),
            "more than 64 numbers"
        );
        assert_eq!(
            reason(&good.replacen("[0,", "[256,", 1)),
            "a number is above 255"
        );
        assert_eq!(
            reason(&good.replacen("[0,1,", "[0,01,", 1)),
            "a number has a leading zero"
        );
        assert_eq!(
            reason(&good.replacen("[0,", "[-0,", 1)),
            "an element is not a non-negative integer"
        );
        assert_eq!(reason(&format!("{good}x")), "data after the array");
        // Flip one bit of the stored public key.
        let mut numbers = numbers(&good);
        numbers[40] ^= 1;
        let tampered = array(&numbers);
        assert!(matches!(
            from_json(tampered.as_bytes(), p),
            Err(KeyFileError::PublicKeyMismatch { .. })
        ));
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "tolldns-service-keyfile-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        files::create_private_dir(&d).unwrap();
        d
    }

    #[test]
    fn write_load_overwrite_and_refusals() {
        let dir = tmp("a");
        let path = dir.join("k.json");
        write(&path, &key(), false).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("{}\n", to_json(&key()).as_str()));
        assert_eq!(load(&path).unwrap().to_bytes(), key().to_bytes());
        // No overwrite without asking; the file is untouched.
        let other = SigningKey::from_bytes(&[7; 32]);
        let e = write(&path, &other, false).unwrap_err();
        assert!(matches!(&e, KeyFileError::Exists { .. }), "{e}");
        assert!(e.to_string().contains("already exists"), "{e}");
        assert_eq!(load(&path).unwrap().to_bytes(), key().to_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = load(&path).unwrap_err();
            assert!(
                matches!(
                    &e,
                    KeyFileError::File(FileError::Permissions { mode: 0o644, .. })
                ),
                "{e}"
            );
            let text = e.to_string();
            assert!(text.starts_with("key file "), "{text}");
            assert!(
                text.contains("(mode 0644)") && text.contains("chmod 600"),
                "{text}"
            );
            // Overwriting replaces the file, owner-only, and leaves no temporary file.
            write(&path, &other, true).unwrap();
            assert_eq!(mode(&path), 0o600);
        }
        #[cfg(not(unix))]
        write(&path, &other, true).unwrap();
        assert_eq!(load(&path).unwrap().to_bytes(), other.to_bytes());
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        // Too large, not a regular file, missing, missing directory.
        let big = dir.join("big.json");
        files::create_private_file(&big, &vec![b' '; MAX_KEY_FILE_LEN + 1]).unwrap();
        let e = load(&big).unwrap_err();
        assert!(
            matches!(&e, KeyFileError::File(FileError::TooLarge { .. })),
            "{e}"
        );
        let e = load(&dir).unwrap_err();
        assert!(e.to_string().contains("is not a regular file"), "{e}");
        let e = load(&dir.join("missing.json")).unwrap_err();
        assert!(e.to_string().starts_with("key file "), "{e}");
        assert!(write(&dir.join("no").join("k.json"), &key(), false).is_err());
        assert!(!dir.join("no").exists());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
