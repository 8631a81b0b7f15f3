//! The two backends behind one set of SQL statements.
//!
//! Every statement is written once, with `$1…` placeholders (both SQLite and PostgreSQL read
//! them) and only the types both share (BIGINT, BYTEA, TEXT). A statement's arguments are
//! [`Arg`]s and a row is read through [`RowExt`], so the code above this module never names a
//! backend.

use std::borrow::Cow;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::str::FromStr;
use std::time::Duration;

use sqlx::Row;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};

use super::types::{Backend, StoreError};

/// The schema migrations, embedded at compile time (no database is needed to build).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "schema",
        include_str!("../../migrations/0001_schema.sql"),
    ),
    (
        2,
        "peer_probe_tickets",
        include_str!("../../migrations/0002_peer_probe_tickets.sql"),
    ),
];

/// How long a SQLite connection waits for another writer before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an operation waits for a free pooled connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections to a SQLite file (readers run in parallel under WAL; writers take turns).
const SQLITE_MAX_CONNECTIONS: u32 = 4;
/// Connections to PostgreSQL.
const POSTGRES_MAX_CONNECTIONS: u32 = 8;

/// [`MIGRATIONS`] as a migration source.
#[derive(Debug)]
struct Embedded;

impl MigrationSource<'static> for Embedded {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 'static>> {
        Box::pin(async {
            Ok(MIGRATIONS
                .iter()
                .map(|&(version, description, sql)| {
                    Migration::new(
                        version,
                        Cow::Borrowed(description),
                        MigrationType::Simple,
                        Cow::Borrowed(sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

/// A statement argument.
#[derive(Debug, Clone)]
pub(super) enum Arg {
    I64(i64),
    OptI64(Option<i64>),
    Bytes(Vec<u8>),
    OptBytes(Option<Vec<u8>>),
    Text(String),
    OptText(Option<String>),
}

/// A statement and its arguments.
#[derive(Debug, Clone)]
pub(super) struct Stmt {
    pub(super) sql: &'static str,
    pub(super) args: Vec<Arg>,
}

impl Stmt {
    pub(super) fn new(sql: &'static str, args: Vec<Arg>) -> Self {
        Self { sql, args }
    }
}

/// One logical write: `first`, and when it changed no row, `otherwise` (an update of the row
/// that made `first` a no-op).
#[derive(Debug, Clone)]
pub(super) struct Plan {
    pub(super) first: Stmt,
    pub(super) otherwise: Option<Stmt>,
}

/// Which statement of a [`Plan`] changed a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Effect {
    /// `first` did (typically: the row is new).
    First,
    /// `first` did not, `otherwise` did (typically: the existing row was updated).
    Otherwise,
    /// Neither did.
    Nothing,
}

/// Column reads shared by both backends' rows.
pub(super) trait RowExt {
    fn i64(&self, col: &'static str) -> Result<i64, sqlx::Error>;
    fn opt_i64(&self, col: &'static str) -> Result<Option<i64>, sqlx::Error>;
    fn bytes(&self, col: &'static str) -> Result<Vec<u8>, sqlx::Error>;
    fn opt_bytes(&self, col: &'static str) -> Result<Option<Vec<u8>>, sqlx::Error>;
    fn text(&self, col: &'static str) -> Result<String, sqlx::Error>;
    fn opt_text(&self, col: &'static str) -> Result<Option<String>, sqlx::Error>;
}

macro_rules! impl_row_ext {
    ($row:ty) => {
        impl RowExt for $row {
            fn i64(&self, col: &'static str) -> Result<i64, sqlx::Error> {
                self.try_get(col)
            }
            fn opt_i64(&self, col: &'static str) -> Result<Option<i64>, sqlx::Error> {
                self.try_get(col)
            }
            fn bytes(&self, col: &'static str) -> Result<Vec<u8>, sqlx::Error> {
                self.try_get(col)
            }
            fn opt_bytes(&self, col: &'static str) -> Result<Option<Vec<u8>>, sqlx::Error> {
                self.try_get(col)
            }
            fn text(&self, col: &'static str) -> Result<String, sqlx::Error> {
                self.try_get(col)
            }
            fn opt_text(&self, col: &'static str) -> Result<Option<String>, sqlx::Error> {
                self.try_get(col)
            }
        }
    };
}
impl_row_ext!(SqliteRow);
impl_row_ext!(PgRow);

/// Binds `args` to `query` (the same code for both backends).
macro_rules! bind_args {
    ($query:expr, $args:expr) => {{
        let mut query = $query;
        for arg in $args {
            query = match arg {
                Arg::I64(v) => query.bind(v),
                Arg::OptI64(v) => query.bind(v),
                Arg::Bytes(v) => query.bind(v),
                Arg::OptBytes(v) => query.bind(v),
                Arg::Text(v) => query.bind(v),
                Arg::OptText(v) => query.bind(v),
            };
        }
        query
    }};
}

/// Runs `plans` in `tx` (the same code for both backends).
macro_rules! run_plans {
    ($tx:expr, $plans:expr) => {{
        let mut changed = Vec::new();
        for plan in $plans {
            let first = bind_args!(sqlx::query(plan.first.sql), plan.first.args)
                .execute(&mut *$tx)
                .await?
                .rows_affected();
            let effect = if first > 0 {
                Effect::First
            } else if let Some(otherwise) = plan.otherwise {
                let n = bind_args!(sqlx::query(otherwise.sql), otherwise.args)
                    .execute(&mut *$tx)
                    .await?
                    .rows_affected();
                if n > 0 {
                    Effect::Otherwise
                } else {
                    Effect::Nothing
                }
            } else {
                Effect::Nothing
            };
            changed.push(effect);
        }
        changed
    }};
}

/// A connection pool of either backend.
#[derive(Debug, Clone)]
pub(super) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Pool {
    /// Connects to `url` (see [`super::Store::open`]).
    pub(super) async fn connect(url: &str) -> Result<Self, StoreError> {
        let shown = redact(url);
        if url.starts_with("sqlite:") {
            let options =
                SqliteConnectOptions::from_str(url).map_err(|source| StoreError::InvalidUrl {
                    url: shown.clone(),
                    source,
                })?;
            let in_memory = url.starts_with("sqlite::memory:") || url.contains("mode=memory");
            Self::connect_sqlite(options, in_memory, shown).await
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options =
                PgConnectOptions::from_str(url).map_err(|source| StoreError::InvalidUrl {
                    url: shown.clone(),
                    source,
                })?;
            let pool = PgPoolOptions::new()
                .max_connections(POSTGRES_MAX_CONNECTIONS)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await
                .map_err(|source| StoreError::Open {
                    backend: Backend::Postgres,
                    url: shown,
                    source,
                })?;
            Ok(Self::Postgres(pool))
        } else {
            Err(StoreError::UnsupportedUrl { url: shown })
        }
    }

    /// Opens the SQLite file at `path` (created when missing).
    pub(super) async fn connect_sqlite_path(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new().filename(path);
        Self::connect_sqlite(options, false, path.display().to_string()).await
    }

    async fn connect_sqlite(
        options: SqliteConnectOptions,
        in_memory: bool,
        shown: String,
    ) -> Result<Self, StoreError> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = if in_memory {
            // An in-memory database lives as long as its connection: exactly one, kept open
            // for the life of the pool.
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(SQLITE_MAX_CONNECTIONS)
        }
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(|source| StoreError::Open {
            backend: Backend::Sqlite,
            url: shown,
            source,
        })?;
        Ok(Self::Sqlite(pool))
    }

    pub(super) fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies the migrations not applied yet (each in its own transaction).
    pub(super) async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = Migrator::new(Embedded).await?;
        match self {
            Self::Sqlite(p) => migrator.run(p).await?,
            Self::Postgres(p) => migrator.run(p).await?,
        }
        Ok(())
    }

    pub(super) async fn close(&self) {
        match self {
            Self::Sqlite(p) => p.close().await,
            Self::Postgres(p) => p.close().await,
        }
    }

    /// Runs `plans` in one transaction; per plan, which statement changed a row.
    pub(super) async fn write(&self, plans: Vec<Plan>) -> Result<Vec<Effect>, sqlx::Error> {
        match self {
            Self::Sqlite(p) => {
                // IMMEDIATE takes the write lock up front, so two writers queue on the busy
                // timeout instead of one failing when upgrading a read transaction.
                let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
                let changed = run_plans!(tx, plans);
                tx.commit().await?;
                Ok(changed)
            }
            Self::Postgres(p) => {
                let mut tx = p.begin().await?;
                let changed = run_plans!(tx, plans);
                tx.commit().await?;
                Ok(changed)
            }
        }
    }

    /// Runs a query and decodes every row with `decode`.
    pub(super) async fn fetch<T>(
        &self,
        stmt: Stmt,
        decode: fn(&dyn RowExt) -> Result<T, StoreError>,
    ) -> Result<Result<Vec<T>, StoreError>, sqlx::Error> {
        Ok(match self {
            Self::Sqlite(p) => bind_args!(sqlx::query(stmt.sql), stmt.args)
                .fetch_all(p)
                .await?
                .iter()
                .map(|row| decode(row))
                .collect(),
            Self::Postgres(p) => bind_args!(sqlx::query(stmt.sql), stmt.args)
                .fetch_all(p)
                .await?
                .iter()
                .map(|row| decode(row))
                .collect(),
        })
    }
}

/// `url` with the password (if any) replaced by `***`, for messages and logs.
pub(super) fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &authority[..at];
    match userinfo.find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &url[..scheme_end + 3],
            &userinfo[..colon],
            &rest[at..]
        ),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file of `migrations/` is embedded, under its version and name, byte for byte.
    #[test]
    fn every_migration_file_is_embedded() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<(i64, String, String)> = std::fs::read_dir(&dir)
            .expect("migrations directory")
            .map(|entry| {
                let path = entry.expect("entry").path();
                let name = path
                    .file_stem()
                    .expect("name")
                    .to_string_lossy()
                    .into_owned();
                let (version, description) = name.split_once('_').expect("VERSION_NAME.sql");
                (
                    version.parse().expect("numeric version"),
                    description.to_owned(),
                    std::fs::read_to_string(&path).expect("read migration"),
                )
            })
            .collect();
        files.sort();
        let embedded: Vec<(i64, String, String)> = MIGRATIONS
            .iter()
            .map(|&(v, d, sql)| (v, d.to_owned(), sql.to_owned()))
            .collect();
        assert_eq!(embedded, files);
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db?x=1"),
            "postgres://u:***@h:5432/db?x=1"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact("postgres://h/db?user=a@b"),
            "postgres://h/db?user=a@b"
        );
        assert_eq!(redact("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
        assert_eq!(redact("sqlite::memory:"), "sqlite::memory:");
    }
}
