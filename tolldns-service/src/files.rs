//! Owner-only files and directories: key and secret files are created with mode 0600 in
//! directories with mode 0700, written atomically and synced, and a secret file that group or
//! others may access is refused with an error that names it and says how to fix it.
//!
//! On platforms without Unix permissions the mode checks pass and files get the default
//! permissions.

use std::io::Write as _;
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
    /// Group or others may read the file.
    #[error(
        "{path} is readable by group or others (mode {mode:04o}); run `chmod 600 {path}` and check who could have read it"
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
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
}

/// Refuses a file that group or others may access.
///
/// # Errors
///
/// [`FileError::Permissions`] or [`FileError::Io`].
pub fn check_private_mode(path: &Path) -> Result<(), FileError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)
            .map_err(FileError::io(path))?
            .permissions()
            .mode()
            & 0o7777;
        if mode & 0o077 != 0 {
            return Err(FileError::Permissions {
                path: path.to_owned(),
                mode,
            });
        }
    }
    Ok(())
}

/// Reads a secret text file after [`check_private_mode`]; the text is zeroed when dropped.
///
/// # Errors
///
/// [`FileError::Permissions`] or [`FileError::Io`].
pub fn read_private_string(path: &Path) -> Result<Zeroizing<String>, FileError> {
    check_private_mode(path)?;
    std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(FileError::io(path))
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

fn sync_parent(path: &Path) -> Result<(), FileError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(FileError::io(parent))?;
    }
    Ok(())
}

/// Creates `path` with mode 0600 (failing if it exists), writes `data`, and syncs the file and
/// its directory; the directory is created with mode 0700 when missing.
///
/// # Errors
///
/// [`FileError::Io`] (including "already exists").
pub fn write_private_file(path: &Path, data: &[u8]) -> Result<(), FileError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dir(parent).map_err(FileError::io(parent))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(FileError::io(path))?;
    file.write_all(data).map_err(FileError::io(path))?;
    file.sync_all().map_err(FileError::io(path))?;
    sync_parent(path)
}

/// Replaces `path` atomically with a new owner-only file holding `data` (written to
/// `<path>.tmp`, synced, renamed).
///
/// # Errors
///
/// [`FileError::Io`].
pub fn replace_private_file(path: &Path, data: &[u8]) -> Result<(), FileError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(FileError::io(&tmp)(e)),
    }
    write_private_file(&tmp, data)?;
    std::fs::rename(&tmp, path).map_err(FileError::io(path))?;
    sync_parent(path)
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
        // A leftover temporary file of an interrupted replacement is overwritten.
        std::fs::write(dir.join("secrets").join("s.key.tmp"), b"stale").unwrap();
        replace_private_file(&path, b"four").unwrap();
        assert_eq!(&read_private_string(&path).unwrap()[..], "four");
        assert!(!dir.join("secrets").join("s.key.tmp").exists());
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
}
