//! Configuration files: a daemon's `config.toml` is optional TOML whose sections deny unknown
//! keys; a parse error names the file and, when it can be located, the dotted key
//! (``c.toml: key `tls.certt`: unknown field ...``). A daemon describes its file by
//! implementing [`ConfigFile`].

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Why a configuration file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        error: std::io::Error,
    },
    /// The file is not valid TOML, has an unknown key or a bad value.
    #[error("{path}: {key_hint}{error}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// ``key `a.b`: `` when the offending key could be located.
        key_hint: KeyHint,
        /// toml's error, with the line and a caret.
        error: Box<toml::de::Error>,
    },
    /// A value parsed but is not acceptable.
    #[error("invalid value for `{key}`: {reason}")]
    Invalid {
        /// Dotted key.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// The dotted key a parse error points at, if any (displayed as ``key `a.b`: ``).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyHint(pub Option<String>);

impl fmt::Display for KeyHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(k) => write!(f, "key `{k}`: "),
            None => Ok(()),
        }
    }
}

/// A daemon's configuration file: its defaults, its TOML form and its validation. Reading
/// and parsing are provided.
pub trait ConfigFile: DeserializeOwned + Default {
    /// The daemon's configuration error; every [`ConfigError`] converts into it.
    type Error: From<ConfigError>;

    /// Checks values that parse but cannot work.
    ///
    /// # Errors
    ///
    /// The daemon's error, naming the key (usually [`ConfigError::Invalid`]).
    fn validate(&self) -> Result<(), Self::Error>;

    /// The data directory (the `data_dir` key), which `--data-dir` overrides.
    fn data_dir_mut(&mut self) -> &mut PathBuf;

    /// Reads and validates a configuration file.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Read`], [`ConfigError::Parse`] (naming the key) or what
    /// [`ConfigFile::validate`] returns.
    fn load(path: &Path) -> Result<Self, Self::Error> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_owned(),
            error,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates configuration text; `path` is only used in messages.
    ///
    /// # Errors
    ///
    /// As [`ConfigFile::load`].
    fn parse(text: &str, path: &Path) -> Result<Self, Self::Error> {
        let config: Self = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            key_hint: KeyHint(e.span().and_then(|s| key_at(text, s.start))),
            error: Box::new(e),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// The file at `path` ([`ConfigFile::load`]), or the defaults without one; then
    /// `data_dir` replaced by `data_dir` when given.
    ///
    /// # Errors
    ///
    /// As [`ConfigFile::load`].
    fn load_or_default(path: Option<&Path>, data_dir: Option<&Path>) -> Result<Self, Self::Error> {
        let mut config = match path {
            Some(path) => Self::load(path)?,
            None => Self::default(),
        };
        if let Some(d) = data_dir {
            *config.data_dir_mut() = d.to_owned();
        }
        Ok(config)
    }
}

/// The dotted key whose line contains byte `offset` of a TOML text: the last `[table]` header
/// before it, then the key on that line.
pub fn key_at(text: &str, offset: usize) -> Option<String> {
    let before = text.get(..offset)?;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line_end = text
        .get(line_start..)?
        .find('\n')
        .map_or(text.len(), |i| line_start + i);
    let line = text.get(line_start..line_end)?.trim();
    let mut table = String::new();
    for l in text.get(..line_start)?.lines() {
        let l = l.trim();
        if l.starts_with('[') && !l.starts_with("[[") {
            table = l.trim_matches(['[', ']']).trim().to_owned();
        }
    }
    if line.starts_with('[') {
        return Some(line.trim_matches(['[', ']']).trim().to_owned());
    }
    let key = line.split('=').next()?.trim().trim_matches('"');
    if key.is_empty() || line.starts_with('#') {
        return None;
    }
    Some(if table.is_empty() {
        key.to_owned()
    } else {
        format!("{table}.{key}")
    })
}

/// A log level name (the `log_level` key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    /// The `tracing` level filter.
    pub fn filter(self) -> tracing_subscriber::filter::LevelFilter {
        use tracing_subscriber::filter::LevelFilter;
        match self {
            Self::Error => LevelFilter::ERROR,
            Self::Warn => LevelFilter::WARN,
            Self::Info => LevelFilter::INFO,
            Self::Debug => LevelFilter::DEBUG,
            Self::Trace => LevelFilter::TRACE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Demo {
        data_dir: PathBuf,
        log_level: LogLevel,
        port: u16,
        tls: DemoTls,
    }

    #[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct DemoTls {
        cert: Option<PathBuf>,
    }

    impl Default for Demo {
        fn default() -> Self {
            Self {
                data_dir: PathBuf::from("./data"),
                log_level: LogLevel::Info,
                port: 53,
                tls: DemoTls::default(),
            }
        }
    }

    impl ConfigFile for Demo {
        type Error = ConfigError;

        fn validate(&self) -> Result<(), ConfigError> {
            if self.port == 0 {
                return Err(ConfigError::Invalid {
                    key: "port",
                    reason: "must be positive".to_owned(),
                });
            }
            Ok(())
        }

        fn data_dir_mut(&mut self) -> &mut PathBuf {
            &mut self.data_dir
        }
    }

    fn parse_err(text: &str) -> String {
        Demo::parse(text, Path::new("c.toml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn unknown_and_bad_keys_are_named() {
        assert_eq!(
            Demo::parse("", Path::new("c.toml")).unwrap(),
            Demo::default()
        );
        let e = parse_err("[tls]\ncert = \"a\"\ncertt = \"b\"\n");
        assert!(e.starts_with("c.toml: key `tls.certt`: "), "{e}");
        let e = parse_err("prot = 5\n");
        assert!(e.contains("key `prot`"), "{e}");
        let e = parse_err("port = \"x\"\n");
        assert!(e.contains("key `port`"), "{e}");
        let e = parse_err("log_level = \"loud\"\n");
        assert!(e.contains("key `log_level`"), "{e}");
        let e = parse_err("[tlss]\n");
        assert!(e.contains("key `tlss`"), "{e}");
        assert_eq!(
            parse_err("port = 0\n"),
            "invalid value for `port`: must be positive"
        );
    }

    #[test]
    fn key_at_lines() {
        let text = "a = 1\n# c = 2\n[t]\n\"b\" = 3\n[[arr]]\nx = 4\n";
        assert_eq!(key_at(text, 0).as_deref(), Some("a"));
        assert_eq!(key_at(text, 8), None);
        assert_eq!(key_at(text, 16).as_deref(), Some("t"));
        assert_eq!(key_at(text, 20).as_deref(), Some("t.b"));
        // An array-of-tables header does not change the table.
        assert_eq!(key_at(text, 36).as_deref(), Some("t.x"));
        assert_eq!(key_at(text, 1000), None);
    }

    #[test]
    fn load_or_default_reads_and_overrides() {
        let dir =
            std::env::temp_dir().join(format!("tolldns-service-config-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.toml");
        std::fs::write(&path, "port = 5300\ndata_dir = \"/var/x\"\n").unwrap();
        let c = Demo::load_or_default(Some(&path), None).unwrap();
        assert_eq!((c.port, c.data_dir.as_path()), (5300, Path::new("/var/x")));
        let c = Demo::load_or_default(Some(&path), Some(Path::new("/tmp/y"))).unwrap();
        assert_eq!(c.data_dir, Path::new("/tmp/y"));
        let c = Demo::load_or_default(None, Some(Path::new("/tmp/z"))).unwrap();
        assert_eq!(
            c,
            Demo {
                data_dir: "/tmp/z".into(),
                ..Demo::default()
            }
        );
        let e = Demo::load_or_default(Some(&dir.join("nope.toml")), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("cannot read ") && e.contains("nope.toml"),
            "{e}"
        );
        std::fs::remove_dir_all(dir).unwrap();
        assert_eq!(
            LogLevel::Debug.filter(),
            tracing_subscriber::filter::LevelFilter::DEBUG
        );
    }
}
