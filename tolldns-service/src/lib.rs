//! The shared plumbing of the TollDNS daemons (`tolldns-miner`, `tolldns-issuer`) and the
//! `tolldns` command-line tool: one implementation of
//!
//! - [`files`]: key and secret files and file modes: owner-only (0600) files written
//!   atomically and synced, data directories with mode 0700, and [`files::FileError`] for a
//!   secret file that group or others may read;
//! - [`keyfile`]: ed25519 key files in the solana-keygen JSON format, on those rules;
//! - [`tls`]: a rustls server configuration from PEM certificate and key files, and a client
//!   configuration trusting the roots of a PEM file;
//! - [`http`]: a small HTTP/1.1 and HTTP/2 client over TCP or TLS (one request per
//!   connection), for issuers, audit APIs and DoH;
//! - [`issuer_client`]: buying toll tickets from an issuer (RFC 9578 issuance, the
//!   wallet-signed purchase header);
//! - [`signals`]: SIGTERM and SIGINT (stop), SIGHUP (reload) as [`signals::Signals`];
//! - [`metrics`]: the Prometheus and OpenMetrics text exposition of a registry;
//! - [`config`]: config-file loading ([`config::ConfigFile`]): optional TOML, errors naming
//!   the offending key, validation, `--data-dir` override, and the `log_level` names;
//! - [`cli`]: the options and habits the daemons' command lines share (`--config`,
//!   `--data-dir`, `init`, logging, exit codes).
//!
//! What a daemon does with these (which keys it keeps, what SIGHUP reloads, its metrics and
//! its config keys) stays in the daemon.
//!
//! ```
//! use tolldns_service::files::{FileError, read_private_string, write_private_file};
//!
//! let dir = std::env::temp_dir().join(format!("tolldns-service-doc-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! let path = dir.join("keys").join("secret.txt");
//! // Creates keys/ with mode 0700 and the file with mode 0600; never overwrites.
//! write_private_file(&path, b"s3cret")?;
//! assert!(write_private_file(&path, b"again").is_err());
//! assert_eq!(read_private_string(&path)?.as_str(), "s3cret");
//! #[cfg(unix)]
//! {
//!     use std::os::unix::fs::PermissionsExt as _;
//!     std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
//!     let e = read_private_string(&path).unwrap_err();
//!     assert!(matches!(e, FileError::Permissions { mode: 0o644, .. }));
//!     assert!(e.to_string().contains("chmod 600"));
//! }
//! # std::fs::remove_dir_all(dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Cargo features
//!
//! None.
#![forbid(unsafe_code)]

pub mod auditor;
pub mod cli;
pub mod config;
pub mod files;
pub mod http;
pub mod issuer_client;
pub mod keyfile;
pub mod metrics;
pub mod signals;
pub mod tls;
