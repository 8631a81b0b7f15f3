//! Operator key files: an ed25519 key in the Solana keypair JSON format (as written by
//! `solana-keygen`), created owner-only and refused when others can reach it.
//!
//! # Format
//!
//! A JSON array of exactly 64 integers in `0..=255`: the 32-byte secret seed followed by the
//! 32-byte public key, e.g. `[12,201,…,77]`. Whitespace around tokens is allowed; nothing else
//! (no sign, no leading zeros, no fraction, no trailing data). The public key must be the one
//! the seed derives.
//!
//! # Rules
//!
//! - [`write()`] creates the file with mode `0600` (owner read/write only) and refuses to replace
//!   an existing file unless asked to; a replacement is written to a temporary file in the same
//!   directory and renamed over the target, so the result is `0600` whatever the old mode was.
//! - [`load()`] refuses anything but a regular file, and on Unix a file whose mode grants any
//!   permission to group or others (`mode & 0o077 != 0`, as OpenSSH does for private keys).
//!   The fix it suggests is `chmod 600 FILE`.
//! - Secret bytes are kept in zeroizing buffers and never printed.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::iter::Peekable;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use zeroize::Zeroizing;

/// Bytes in a key file's array: seed then public key.
pub const KEYPAIR_LEN: usize = 64;

/// The longest key file accepted, in bytes (64 × `"255, "` plus brackets and a newline fit
/// easily).
pub const MAX_KEY_FILE_LEN: usize = 4096;

/// Permission bits a key file must not have: any access by group or others.
pub const FORBIDDEN_MODE_BITS: u32 = 0o077;

/// The mode key files are created with.
pub const KEY_FILE_MODE: u32 = 0o600;

/// Why a key file could not be written or loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The file could not be opened, read, written or renamed.
    #[error("key file {}: {source}", path.display())]
    Io {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The file exists and replacing it was not asked for.
    #[error("key file {} already exists; refusing to overwrite it (pass --force to replace it)", path.display())]
    Exists {
        /// The key file.
        path: PathBuf,
    },
    /// The path is not a regular file.
    #[error("key file {} is not a regular file", path.display())]
    NotAFile {
        /// The key file.
        path: PathBuf,
    },
    /// Group or others have some permission on the file.
    #[error(
        "key file {} is accessible by group or others (mode {mode:04o}); refusing to use it; \
         run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    InsecurePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
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

/// Loads a key file, refusing one that group or others can access.
///
/// # Errors
///
/// [`KeyFileError::Io`] if it cannot be opened or read, [`KeyFileError::NotAFile`],
/// [`KeyFileError::InsecurePermissions`], then the errors of [`from_json`].
pub fn load(path: &Path) -> Result<SigningKey, KeyFileError> {
    let io_err = |source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    // The checks are on the opened file, so the file read is the file checked.
    let meta = file.metadata().map_err(io_err)?;
    if !meta.is_file() {
        return Err(KeyFileError::NotAFile {
            path: path.to_owned(),
        });
    }
    check_mode(&meta, path)?;
    // Capacity for the whole bound up front: reading never reallocates secret bytes.
    let mut text = Zeroizing::new(Vec::with_capacity(MAX_KEY_FILE_LEN + 1));
    file.take(MAX_KEY_FILE_LEN as u64 + 1)
        .read_to_end(&mut text)
        .map_err(io_err)?;
    if text.len() > MAX_KEY_FILE_LEN {
        return Err(KeyFileError::Malformed {
            path: path.to_owned(),
            reason: "the file is too large",
        });
    }
    from_json(&text, path)
}

#[cfg(unix)]
fn check_mode(meta: &fs::Metadata, path: &Path) -> Result<(), KeyFileError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & FORBIDDEN_MODE_BITS != 0 {
        return Err(KeyFileError::InsecurePermissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_meta: &fs::Metadata, _path: &Path) -> Result<(), KeyFileError> {
    // Permission bits are a Unix notion; elsewhere the file system's ACLs apply.
    Ok(())
}

/// Creates `path` for writing with mode `0600`, failing if it exists.
fn create_new(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(KEY_FILE_MODE);
    }
    options.open(path)
}

/// Writes `parts` to a new file at `path` (mode `0600`) and syncs it; removes it on failure.
/// An existing `path` is an [`io::ErrorKind::AlreadyExists`] error.
fn write_new_file(path: &Path, parts: &[&[u8]]) -> io::Result<()> {
    let mut file = create_new(path)?;
    let written = parts
        .iter()
        .try_for_each(|part| file.write_all(part))
        .and_then(|()| file.sync_all());
    if let Err(e) = written {
        drop(file);
        let _ = fs::remove_file(path);
        return Err(e);
    }
    Ok(())
}

/// Replaces (or creates) `path` with `parts`, owner-only (mode `0600`) whatever the old mode
/// was: the bytes go to a temporary file `.NAME.tmpPID` next to `path`, which is synced and
/// renamed over `path`, so a reader sees the old file or the new one, never a mix.
///
/// Every secret file the CLI writes goes through here or [`write()`] (key files, toll-ticket
/// token files).
///
/// # Errors
///
/// The I/O error with the file it concerns (`path`, or the temporary file).
pub(crate) fn replace_owner_only(path: &Path, parts: &[&[u8]]) -> Result<(), (PathBuf, io::Error)> {
    let Some(name) = path.file_name() else {
        return Err((
            path.to_owned(),
            io::Error::new(io::ErrorKind::InvalidInput, "not a file name"),
        ));
    };
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    // A temporary file left by an earlier run of this process id is ours to replace.
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err((tmp, e)),
        _ => {}
    }
    write_new_file(&tmp, parts).map_err(|e| (tmp.clone(), e))?;
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        (path.to_owned(), e)
    })
}

/// Writes `key` to a new key file at `path` with mode `0600`.
///
/// Without `overwrite`, an existing `path` is an error and is left untouched. With it, the key
/// is written to a temporary file next to `path` and renamed over it.
///
/// # Errors
///
/// [`KeyFileError::Exists`], or [`KeyFileError::Io`] naming the file that failed.
pub fn write(path: &Path, key: &SigningKey, overwrite: bool) -> Result<(), KeyFileError> {
    let text = to_json(key);
    let parts: [&[u8]; 2] = [text.as_bytes(), b"\n"];
    if !overwrite {
        return write_new_file(path, &parts).map_err(|source| {
            if source.kind() == io::ErrorKind::AlreadyExists {
                KeyFileError::Exists {
                    path: path.to_owned(),
                }
            } else {
                KeyFileError::Io {
                    path: path.to_owned(),
                    source,
                }
            }
        });
    }
    if path.file_name().is_none() {
        return Err(KeyFileError::NotAFile {
            path: path.to_owned(),
        });
    }
    replace_owner_only(path, &parts).map_err(|(path, source)| KeyFileError::Io { path, source })
}

/// The base58 (Bitcoin alphabet) public key of `key`, as Solana tools print it.
pub fn public_key_base58(key: &SigningKey) -> String {
    bs58::encode(key.verifying_key().as_bytes()).into_string()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let numbers: Vec<u8> = serde_json::from_str(&text).unwrap();
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
        let mut numbers: Vec<u8> = serde_json::from_str(&good).unwrap();
        numbers[40] ^= 1;
        let tampered = serde_json::to_string(&numbers).unwrap();
        assert!(matches!(
            from_json(tampered.as_bytes(), p),
            Err(KeyFileError::PublicKeyMismatch { .. })
        ));
    }
}
