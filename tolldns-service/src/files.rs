//! Owner-only files and directories: key and secret files are created with mode 0600 in
//! directories with mode 0700, written atomically and synced, and a secret file that group or
//! others may access is refused with an error that names it and says how to fix it.
//!
//! # Rules
//!
//! - Reading ([`read_private_file`], [`read_private_string`]) opens the file first and checks
//!   the opened file, so the file checked is the file read: it must be a regular file, and on
//!   Unix no permission bit of group or others may be set (`mode & 0o077 == 0`, as OpenSSH
//!   requires of private keys).
//! - Creating ([`create_private_file`], [`write_private_file`]) never replaces an existing file,
//!   creates it with mode 0600, syncs it and its directory, and removes it again when writing
//!   fails, so no partial secret file is left behind.
//! - Replacing ([`swap_private_file`], [`replace_private_file`]) writes a temporary file
//!   `.NAME.tmpPID` next to the target (hidden, and per process, so two processes replacing
//!   the same file never write into each other's temporary file), syncs it and renames it over
//!   the target: a reader sees the old file or the new one, never a mix, and the result has
//!   mode 0600 whatever the old mode was.
//! - [`write_private_file`] and [`replace_private_file`] create a missing parent directory
//!   with mode 0700 (a daemon's data directory); [`create_private_file`] and
//!   [`swap_private_file`] require it to exist (a path a user named).
//!
//! On platforms without Unix permissions the mode checks pass and files get the default
//! permissions.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// Why an owner-only file could not be read, written or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// Reading or writing failed.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        error: std::io::Error,
    },
    /// Group or others have some permission on the file (`mode & 0o077 != 0`).
    #[error(
        "{path} is {} by group or others (mode {mode:04o}); run `chmod 600 {path}` and check who could have read it",
        if mode & 0o044 != 0 { "readable" } else { "accessible" }
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The path is not a regular file (a directory, a device, a FIFO, …).
    #[error("{path} is not a regular file")]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// The file is larger than the caller accepts.
    #[error("{path}: larger than {limit} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The largest size accepted, in bytes.
        limit: u64,
    },
}

impl FileError {
    /// A function that turns an I/O error on `path` into [`FileError::Io`] (for `map_err`).
    pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |error| Self::Io {
            path: path.to_owned(),
            error,
        }
    }

    /// Whether this is the error of creating a file that exists already.
    pub fn is_already_exists(&self) -> bool {
        matches!(self, Self::Io { error, .. } if error.kind() == std::io::ErrorKind::AlreadyExists)
    }
}

/// Refuses a file that group or others may access.
///
/// Prefer [`read_private_file`] or [`read_private_string`] to read a secret: they check the
/// file they read.
///
/// # Errors
///
/// [`FileError::Permissions`] or [`FileError::Io`].
pub fn check_private_mode(path: &Path) -> Result<(), FileError> {
    let meta = std::fs::metadata(path).map_err(FileError::io(path))?;
    check_mode(&meta, path)
}

#[cfg(unix)]
fn check_mode(meta: &std::fs::Metadata, path: &Path) -> Result<(), FileError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(FileError::Permissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_meta: &std::fs::Metadata, _path: &Path) -> Result<(), FileError> {
    // Permission bits are a Unix notion; elsewhere the file system's ACLs apply.
    Ok(())
}

/// Opens a secret file for reading and checks the opened file: a regular file that group and
/// others cannot access.
fn open_private(path: &Path) -> Result<File, FileError> {
    let file = File::open(path).map_err(FileError::io(path))?;
    let meta = file.metadata().map_err(FileError::io(path))?;
    if !meta.is_file() {
        return Err(FileError::NotAFile {
            path: path.to_owned(),
        });
    }
    check_mode(&meta, path)?;
    Ok(file)
}

/// Reads a secret file of at most `max_len` bytes (see the module docs for the checks); the
/// bytes are zeroed when dropped, and for files up to 64 KiB the buffer is allocated once, so
/// no copy of them is left behind by a reallocation.
///
/// # Errors
///
/// [`FileError::Io`], [`FileError::NotAFile`], [`FileError::Permissions`], or
/// [`FileError::TooLarge`].
pub fn read_private_file(path: &Path, max_len: u64) -> Result<Zeroizing<Vec<u8>>, FileError> {
    let file = open_private(path)?;
    // Up to 64 KiB (every key file) the buffer never grows.
    let capacity = usize::try_from(max_len.saturating_add(1).min(64 << 10)).unwrap_or(64 << 10);
    let mut bytes = Zeroizing::new(Vec::with_capacity(capacity));
    file.take(max_len.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(FileError::io(path))?;
    if bytes.len() as u64 > max_len {
        return Err(FileError::TooLarge {
            path: path.to_owned(),
            limit: max_len,
        });
    }
    Ok(bytes)
}

/// Reads a secret text file (see the module docs for the checks); the text is zeroed when
/// dropped.
///
/// # Errors
///
/// [`FileError::Io`] (also for text that is not UTF-8), [`FileError::NotAFile`] or
/// [`FileError::Permissions`].
pub fn read_private_string(path: &Path) -> Result<Zeroizing<String>, FileError> {
    let mut file = open_private(path)?;
    let mut text = Zeroizing::new(String::new());
    file.read_to_string(&mut text)
        .map_err(FileError::io(path))?;
    Ok(text)
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

fn create_parent(path: &Path) -> Result<(), FileError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dir(parent).map_err(FileError::io(parent))?;
    }
    Ok(())
}

fn sync_parent(path: &Path) -> Result<(), FileError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(FileError::io(parent))?;
    }
    Ok(())
}

/// Creates `path` with mode 0600 (failing if it exists), writes `data`, and syncs the file and
/// its directory, which must exist. When writing fails the new file is removed.
///
/// # Errors
///
/// [`FileError::Io`] (including "already exists", see [`FileError::is_already_exists`]).
pub fn create_private_file(path: &Path, data: &[u8]) -> Result<(), FileError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(FileError::io(path))?;
    if let Err(error) = file.write_all(data).and_then(|()| file.sync_all()) {
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(FileError::io(path)(error));
    }
    sync_parent(path)
}

/// [`create_private_file`], creating the parent directory with mode 0700 when missing.
///
/// # Errors
///
/// [`FileError::Io`] (including "already exists", see [`FileError::is_already_exists`]).
pub fn write_private_file(path: &Path, data: &[u8]) -> Result<(), FileError> {
    create_parent(path)?;
    create_private_file(path, data)
}

/// Replaces (or creates) `path` atomically with a new owner-only file holding `data`: written
/// to the temporary file `.NAME.tmpPID` in the same directory (which must exist), synced, and
/// renamed over `path`. A temporary file left by an earlier process with the same id is
/// replaced; the temporary file is removed when the replacement fails.
///
/// # Errors
///
/// [`FileError::Io`] naming the file it concerns (`path` or the temporary file), or
/// [`FileError::NotAFile`] when `path` has no file name.
pub fn swap_private_file(path: &Path, data: &[u8]) -> Result<(), FileError> {
    let Some(name) = path.file_name() else {
        return Err(FileError::NotAFile {
            path: path.to_owned(),
        });
    };
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(FileError::io(&tmp)(e)),
    }
    create_private_file(&tmp, data)?;
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(FileError::io(path)(e));
    }
    sync_parent(path)
}

/// [`swap_private_file`], creating the parent directory with mode 0700 when missing.
///
/// # Errors
///
/// As [`swap_private_file`].
pub fn replace_private_file(path: &Path, data: &[u8]) -> Result<(), FileError> {
    create_parent(path)?;
    swap_private_file(path, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "tolldns-service-files-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn write_read_replace_and_refuse_open_modes() {
        let dir = tmp("a");
        let path = dir.join("secrets").join("s.key");
        write_private_file(&path, b"one").unwrap();
        assert_eq!(&read_private_string(&path).unwrap()[..], "one");
        let e = write_private_file(&path, b"two").unwrap_err();
        assert!(
            matches!(&e, FileError::Io { error, .. } if error.kind() == std::io::ErrorKind::AlreadyExists),
            "{e}"
        );
        replace_private_file(&path, b"three").unwrap();
        assert_eq!(&read_private_string(&path).unwrap()[..], "three");
        // A leftover temporary file of an interrupted replacement by this process id is
        // overwritten, and none is left behind.
        let leftover = dir
            .join("secrets")
            .join(format!(".s.key.tmp{}", std::process::id()));
        std::fs::write(&leftover, b"stale").unwrap();
        replace_private_file(&path, b"four").unwrap();
        assert_eq!(&read_private_string(&path).unwrap()[..], "four");
        assert!(!leftover.exists());
        assert_eq!(std::fs::read_dir(dir.join("secrets")).unwrap().count(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(&dir.join("secrets")), 0o700);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
            let e = read_private_string(&path).unwrap_err();
            assert!(
                matches!(&e, FileError::Permissions { mode: 0o640, path: p } if *p == path),
                "{e}"
            );
            let text = e.to_string();
            assert!(
                text.contains("s.key is readable by group or others (mode 0640)")
                    && text.contains("chmod 600"),
                "{text}"
            );
            let e = check_private_mode(&dir.join("nope")).unwrap_err();
            assert!(matches!(&e, FileError::Io { .. }), "{e}");
            assert!(e.to_string().contains("nope"), "{e}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bounded_reads_regular_files_and_existing_directories() {
        let dir = tmp("b");
        create_private_dir(&dir).unwrap();
        let path = dir.join("k");
        create_private_file(&path, b"12345").unwrap();
        assert_eq!(&read_private_file(&path, 5).unwrap()[..], b"12345");
        let e = read_private_file(&path, 4).unwrap_err();
        assert!(matches!(&e, FileError::TooLarge { limit: 4, .. }), "{e}");
        assert!(e.to_string().contains("larger than 4 bytes"), "{e}");
        let e = create_private_file(&path, b"x").unwrap_err();
        assert!(e.is_already_exists(), "{e}");
        // A directory is not a secret file, whatever its mode.
        let sub = dir.join("sub");
        create_private_dir(&sub).unwrap();
        for e in [
            read_private_file(&sub, 10).unwrap_err(),
            read_private_string(&sub).unwrap_err(),
        ] {
            assert!(matches!(&e, FileError::NotAFile { .. }), "{e}");
            assert!(e.to_string().contains("sub is not a regular file"), "{e}");
        }
        // create_ and swap_ do not create a missing directory; write_ and replace_ do.
        let deep = dir.join("missing").join("k");
        assert!(matches!(
            create_private_file(&deep, b"x"),
            Err(FileError::Io { .. })
        ));
        assert!(matches!(
            swap_private_file(&deep, b"x"),
            Err(FileError::Io { .. })
        ));
        assert!(!dir.join("missing").exists());
        swap_private_file(&path, b"new").unwrap();
        assert_eq!(&read_private_file(&path, 100).unwrap()[..], b"new");
        assert!(matches!(
            swap_private_file(Path::new("/"), b"x"),
            Err(FileError::NotAFile { .. })
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            // Any bit of group or others is refused; the message says "readable" only when
            // a read bit is set.
            for (mode, word) in [
                (0o604, "readable"),
                (0o610, "accessible"),
                (0o620, "accessible"),
            ] {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
                let e = read_private_file(&path, 100).unwrap_err();
                let text = e.to_string();
                assert!(
                    text.contains(&format!("is {word} by group or others (mode {mode:04o})")),
                    "{text}"
                );
            }
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
            assert_eq!(&read_private_file(&path, 100).unwrap()[..], b"new");
            // A replacement is owner-only whatever the old mode was.
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            swap_private_file(&path, b"newer").unwrap();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
