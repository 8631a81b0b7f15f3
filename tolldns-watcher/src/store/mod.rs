//! The watcher's store: receipts and verdicts, audits, probes, probe tickets, published
//! objects, epoch reports and cursors, in SQLite or PostgreSQL with one schema and one set of
//! SQL statements (`tolldns-watcher/migrations/`, embedded in the binary).
//!
//! Inserts are idempotent and say whether the row was new. Every change made by one call
//! (and every [`Write`] of one [`Store::write_all`]) lands in one transaction, so a crash
//! leaves either all of it or none of it.
//!
//! Durability: SQLite runs in WAL mode with `synchronous = FULL`. WAL alone (with `NORMAL`)
//! survives a killed process, but a power loss may drop the last commits; the watcher answers
//! a miner's POST with 2xx only after the receipt is stored, and the miner then forgets the
//! receipt, so a commit must survive power loss too: `FULL` syncs the WAL on every commit.
//! PostgreSQL keeps its default `synchronous_commit = on` for the same reason.
//!
//! u64 values are stored in signed 64-bit columns: values of 2^63 and more are refused with
//! [`StoreError::OutOfRange`] rather than wrapped.

mod db;
mod types;

use std::fmt;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use db::{Arg, Effect, Plan, Pool, RowExt, Stmt};
pub use types::{
    AuditRecord, AuditStatus, Backend, BatchRecord, EpochReport, PeerTicketRecord, ProbeRecord,
    ProbeStatus, ProbeTicketRecord, ReportStatus, StoreError, StoredObject, TicketStatus, Verdict,
    Write,
};

/// Receives the duration of every store operation (for example, to feed a histogram).
/// The first argument names the operation (the method's name).
pub type StoreObserver = Arc<dyn Fn(&'static str, Duration) + Send + Sync>;

/// Like [`StoreObserver`], and also told whether the operation succeeded.
pub type StoreResultObserver = Arc<dyn Fn(&'static str, Duration, bool) + Send + Sync>;

/// Whether an operation's output is a success.
trait Outcome {
    fn succeeded(&self) -> bool;
}

impl<T> Outcome for Result<T, StoreError> {
    fn succeeded(&self) -> bool {
        self.is_ok()
    }
}

impl Outcome for () {
    fn succeeded(&self) -> bool {
        true
    }
}

/// The sha256 of `bytes`: the address of a published object.
pub fn object_hash(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The watcher's store. Cheap to clone: clones share the connection pool.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    observer: Option<StoreResultObserver>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.pool.backend())
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

impl Store {
    /// Opens the store at `url` and applies the schema migrations not applied yet.
    ///
    /// - `sqlite://PATH` (or `sqlite:PATH`): a SQLite file, created when missing (its directory
    ///   must exist), in WAL mode with a busy timeout;
    /// - `sqlite::memory:`: a private in-memory SQLite database (tests);
    /// - `postgres://…` / `postgresql://…`: PostgreSQL (the database must exist).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::migrated(Pool::connect(url).await?).await
    }

    /// Opens the SQLite file at `path` (created when missing; its directory must exist), like
    /// [`Store::open`] with a `sqlite://` URL but for any path (no URL escaping).
    pub async fn open_sqlite(path: &Path) -> Result<Self, StoreError> {
        Self::migrated(Pool::connect_sqlite_path(path).await?).await
    }

    async fn migrated(pool: Pool) -> Result<Self, StoreError> {
        if let Err(e) = pool.migrate().await {
            pool.close().await;
            return Err(e);
        }
        Ok(Self {
            pool,
            observer: None,
        })
    }

    /// This store, reporting the duration of every operation (failed ones too) to
    /// `observer` (replacing any observer set before).
    pub fn with_observer(self, observer: StoreObserver) -> Self {
        self.with_result_observer(Arc::new(move |op, elapsed, _| observer(op, elapsed)))
    }

    /// This store, reporting the duration of every operation and whether it succeeded to
    /// `observer` (replacing any observer set before).
    pub fn with_result_observer(mut self, observer: StoreResultObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.pool.backend()
    }

    /// Applies the schema migrations not applied yet ([`Store::open`] already does; applying
    /// them again is a no-op).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.timed("migrate", self.pool.migrate()).await
    }

    /// The highest applied schema version.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        const OP: &str = "schema_version";
        self.timed(OP, async {
            let rows = self
                .fetch(
                    OP,
                    Stmt::new(
                        "SELECT COALESCE(MAX(version), 0) AS v FROM _sqlx_migrations \
                         WHERE success",
                        vec![],
                    ),
                    |r| col("_sqlx_migrations", "v", r.i64("v")),
                )
                .await?;
            Ok(rows.into_iter().next().unwrap_or(0))
        })
        .await
    }

    /// Closes every connection; pending operations finish first. Operations after `close`
    /// fail.
    pub async fn close(&self) {
        self.timed("close", self.pool.close()).await;
    }

    /// Applies `writes` in one transaction: all of them or none. Per write, what its
    /// single-write method returns (whether the row is new; for an audit, whether it was
    /// written; for a cursor, whether it was set; for an object, whether it is new).
    pub async fn write_all(&self, writes: &[Write]) -> Result<Vec<bool>, StoreError> {
        const OP: &str = "write_all";
        self.timed(OP, async {
            let plans = writes.iter().map(plan).collect::<Result<Vec<_>, _>>()?;
            let effects = self.write(OP, plans).await?;
            Ok(effects.into_iter().map(|e| e == Effect::First).collect())
        })
        .await
    }

    // ---- batches ----

    /// Stores a received batch. Returns `true` when it is new, `false` when a batch with the
    /// same id is already stored (which is then left unchanged).
    pub async fn insert_batch(&self, batch: &BatchRecord) -> Result<bool, StoreError> {
        self.write_one("insert_batch", plan_batch(batch)).await
    }

    /// The batch with id `batch_id`.
    pub async fn batch(&self, batch_id: &[u8; 32]) -> Result<Option<BatchRecord>, StoreError> {
        const OP: &str = "batch";
        self.timed(OP, async {
            let rows = self
                .fetch(
                    OP,
                    Stmt::new(
                        "SELECT * FROM batches WHERE batch_id = $1",
                        vec![Arg::Bytes(batch_id.to_vec())],
                    ),
                    decode_batch,
                )
                .await?;
            Ok(rows.into_iter().next())
        })
        .await
    }

    /// Every batch (accepted or refused) of `epoch`, by arrival (slot, ms, id).
    pub async fn batches_in_epoch(&self, epoch: u64) -> Result<Vec<BatchRecord>, StoreError> {
        const OP: &str = "batches_in_epoch";
        self.timed(OP, async {
            self.fetch(
                OP,
                Stmt::new(
                    "SELECT * FROM batches WHERE epoch = $1 \
                     ORDER BY arrival_slot, arrival_ms, batch_id",
                    vec![Arg::I64(to_i64("epoch", epoch)?)],
                ),
                decode_batch,
            )
            .await
        })
        .await
    }

    /// Up to `limit` accepted batches without an audit, oldest arrival first. A batch whose
    /// audit was recorded (even with [`AuditStatus::Error`]) is no longer awaiting.
    pub async fn batches_awaiting_audit(&self, limit: u32) -> Result<Vec<BatchRecord>, StoreError> {
        const OP: &str = "batches_awaiting_audit";
        self.timed(OP, async {
            self.fetch(
                OP,
                Stmt::new(
                    "SELECT * FROM batches b WHERE b.verdict = 'accepted' \
                     AND NOT EXISTS (SELECT 1 FROM audits a WHERE a.batch_id = b.batch_id) \
                     ORDER BY b.arrival_slot, b.arrival_ms, b.batch_id LIMIT $1",
                    vec![Arg::I64(i64::from(limit))],
                ),
                decode_batch,
            )
            .await
        })
        .await
    }

    /// The windows `[start_ms, end_ms)` of every accepted receipt signed with
    /// `operator_key`, by start (the overlap ledger of receipt verification).
    pub async fn accepted_windows(
        &self,
        operator_key: &[u8; 32],
    ) -> Result<Vec<(u64, u64)>, StoreError> {
        const OP: &str = "accepted_windows";
        self.timed(OP, async {
            self.fetch(
                OP,
                Stmt::new(
                    "SELECT window_start_ms, window_end_ms FROM batches \
                     WHERE operator_key = $1 AND verdict = 'accepted' \
                     ORDER BY window_start_ms, window_end_ms",
                    vec![Arg::Bytes(operator_key.to_vec())],
                ),
                |r| {
                    Ok((
                        u64_col(r, "batches", "window_start_ms")?,
                        u64_col(r, "batches", "window_end_ms")?,
                    ))
                },
            )
            .await
        })
        .await
    }

    /// `[start_ms, end_ms)` of the accepted batches attributed to `wallet` (whatever key
    /// signed them), ordered by start: the overlap ledger of an operator across its key
    /// rotations.
    ///
    /// # Errors
    ///
    /// [`StoreError`].
    pub async fn accepted_windows_of_wallet(
        &self,
        wallet: &[u8; 32],
    ) -> Result<Vec<(u64, u64)>, StoreError> {
        const OP: &str = "accepted_windows_of_wallet";
        self.timed(OP, async {
            self.fetch(
                OP,
                Stmt::new(
                    "SELECT window_start_ms, window_end_ms FROM batches \
                     WHERE wallet = $1 AND verdict = 'accepted' \
                     ORDER BY window_start_ms, window_end_ms",
                    vec![Arg::Bytes(wallet.to_vec())],
                ),
                |r| {
                    Ok((
                        u64_col(r, "batches", "window_start_ms")?,
                        u64_col(r, "batches", "window_end_ms")?,
                    ))
                },
            )
            .await
        })
        .await
    }

    // ---- audits ----

    /// Records the audit of a stored batch. Returns `true` when written: the batch had no
    /// audit, or only one with [`AuditStatus::Error`] (which this one replaces); `false` when
    /// a passed or failed audit is already stored (it is final and left unchanged).
    /// [`StoreError::UnknownBatch`] when the batch is not stored.
    pub async fn record_audit(&self, audit: &AuditRecord) -> Result<bool, StoreError> {
        const OP: &str = "record_audit";
        self.timed(OP, async {
            let plan = plan_audit(audit)?;
            self.write(OP, vec![plan])
                .await
                .map(first)
                .map_err(|e| match e {
                    StoreError::Database { source, .. } if is_foreign_key_violation(&source) => {
                        StoreError::UnknownBatch {
                            op: OP,
                            batch_id: hex::encode(audit.batch_id),
                        }
                    }
                    other => other,
                })
        })
        .await
    }

    /// The audit of `batch_id`.
    pub async fn audit(&self, batch_id: &[u8; 32]) -> Result<Option<AuditRecord>, StoreError> {
        const OP: &str = "audit";
        self.timed(OP, async {
            let rows = self
                .fetch(
                    OP,
                    Stmt::new(
                        "SELECT * FROM audits WHERE batch_id = $1",
                        vec![Arg::Bytes(batch_id.to_vec())],
                    ),
                    decode_audit,
                )
                .await?;
            Ok(rows.into_iter().next())
        })
        .await
    }

    /// The audits of the batches of `epoch`, in the order of [`Store::batches_in_epoch`].
    pub async fn audits_in_epoch(&self, epoch: u64) -> Result<Vec<AuditRecord>, StoreError> {
        const OP: &str = "audits_in_epoch";
        self.timed(OP, async {
            self.fetch(
                OP,
                Stmt::new(
                    "SELECT a.* FROM audits a JOIN batches b ON b.batch_id = a.batch_id \
                     WHERE b.epoch = $1 ORDER BY b.arrival_slot, b.arrival_ms, b.batch_id",
                    vec![Arg::I64(to_i64("epoch", epoch)?)],
                ),
                decode_audit,
            )
            .await
        })
        .await
    }

    // ---- probes ----

    /// Records a probe. Returns `true` when it is new, `false` when a probe with the same id
    /// is already stored (left unchanged).
    pub async fn record_probe(&self, probe: &ProbeRecord) -> Result<bool, StoreError> {
        const OP: &str = "record_probe";
        self.timed(OP, async {
            self.write(OP, vec![plan_probe(probe)?]).await.map(first)
        })
        .await
    }

    /// Every probe of `epoch`, by (send slot, sent ms, id).
    pub async fn probes_in_epoch(&self, epoch: u64) -> Result<Vec<ProbeRecord>, StoreError> {
        const OP: &str = "probes_in_epoch";
        self.timed(OP, async {
            self.fetch(
                OP,
                Stmt::new(
                    "SELECT * FROM probes WHERE epoch = $1 \
                     ORDER BY send_slot, sent_ms, probe_id",
                    vec![Arg::I64(to_i64("epoch", epoch)?)],
                ),
                decode_probe,
            )
            .await
        })
        .await
    }

    // ---- probe tickets ----

    /// Stores a probe ticket, replacing the stored one with the same ticket id. Returns
    /// `true` when it is new.
    pub async fn upsert_probe_ticket(
        &self,
        ticket: &ProbeTicketRecord,
    ) -> Result<bool, StoreError> {
        const OP: &str = "upsert_probe_ticket";
        self.timed(OP, async {
            self.write(OP, vec![plan_probe_ticket(ticket)?])
                .await
                .map(first)
        })
        .await
    }

    /// The probe ticket `ticket`.
    pub async fn probe_ticket(
        &self,
        ticket: &[u8; 16],
    ) -> Result<Option<ProbeTicketRecord>, StoreError> {
        const OP: &str = "probe_ticket";
        self.timed(OP, async {
            let rows = self
                .fetch(
                    OP,
                    Stmt::new(
                        "SELECT * FROM probe_tickets WHERE ticket = $1",
                        vec![Arg::Bytes(ticket.to_vec())],
                    ),
                    decode_probe_ticket,
                )
                .await?;
            Ok(rows.into_iter().next())
        })
        .await
    }

    /// Every probe ticket of `epoch`, by (wallet, ticket).
    pub async fn probe_tickets_in_epoch(
        &self,
        epoch: u64,
    ) -> Result<Vec<ProbeTicketRecord>, StoreError> {
        const OP: &str = "probe_tickets_in_epoch";
        self.timed(OP, async {
            self.fetch(
                OP,
                Stmt::new(
                    "SELECT * FROM probe_tickets WHERE epoch = $1 ORDER BY wallet, ticket",
                    vec![Arg::I64(to_i64("epoch", epoch)?)],
                ),
                decode_probe_ticket,
            )
            .await
        })
        .await
    }

    // ---- other watchers' probe tickets ----

    /// Stores a peer's probe ticket, replacing the stored one with the same (watcher,
    /// ticket). Returns `true` when it is new.
    pub async fn upsert_peer_ticket(&self, ticket: &PeerTicketRecord) -> Result<bool, StoreError> {
        const OP: &str = "upsert_peer_ticket";
        self.write_one(OP, plan_peer_ticket(ticket)).await
    }

    /// Every peer probe ticket of `epoch`, by (wallet, ticket, watcher).
    pub async fn peer_tickets_in_epoch(
        &self,
        epoch: u64,
    ) -> Result<Vec<PeerTicketRecord>, StoreError> {
        const OP: &str = "peer_tickets_in_epoch";
        self.timed(OP, async {
            self.fetch(
                OP,
                Stmt::new(
                    "SELECT * FROM peer_probe_tickets WHERE epoch = $1 \
                     ORDER BY wallet, ticket, watcher",
                    vec![Arg::I64(to_i64("epoch", epoch)?)],
                ),
                decode_peer_ticket,
            )
            .await
        })
        .await
    }

    // ---- published objects ----

    /// Stores `bytes` as a published object of `kind` and returns its address, the sha256 of
    /// the bytes. Idempotent: storing the same bytes again changes nothing (the first kind
    /// stays).
    pub async fn put_object(&self, kind: &str, bytes: &[u8]) -> Result<[u8; 32], StoreError> {
        const OP: &str = "put_object";
        self.timed(OP, async {
            let hash = object_hash(bytes);
            self.write(OP, vec![plan_object(kind, bytes)]).await?;
            Ok(hash)
        })
        .await
    }

    /// The published object with address `sha256`.
    pub async fn object(&self, sha256: &[u8; 32]) -> Result<Option<StoredObject>, StoreError> {
        const OP: &str = "object";
        self.timed(OP, async {
            let rows = self
                .fetch(
                    OP,
                    Stmt::new(
                        "SELECT * FROM objects WHERE sha256 = $1",
                        vec![Arg::Bytes(sha256.to_vec())],
                    ),
                    decode_object,
                )
                .await?;
            Ok(rows.into_iter().next())
        })
        .await
    }

    // ---- epoch reports ----

    /// Stores the report of `(report.epoch, report.wallet)`, replacing the stored one.
    /// Returns `true` when it is new.
    pub async fn upsert_epoch_report(&self, report: &EpochReport) -> Result<bool, StoreError> {
        const OP: &str = "upsert_epoch_report";
        self.timed(OP, async {
            self.write(OP, vec![plan_epoch_report(report)?])
                .await
                .map(first)
        })
        .await
    }

    /// Every report of `epoch`, by wallet.
    pub async fn epoch_reports(&self, epoch: u64) -> Result<Vec<EpochReport>, StoreError> {
        const OP: &str = "epoch_reports";
        self.timed(OP, async {
            self.fetch(
                OP,
                Stmt::new(
                    "SELECT * FROM epoch_reports WHERE epoch = $1 ORDER BY wallet",
                    vec![Arg::I64(to_i64("epoch", epoch)?)],
                ),
                decode_epoch_report,
            )
            .await
        })
        .await
    }

    // ---- cursors ----

    /// The value of cursor `name`, if set.
    pub async fn get_cursor(&self, name: &str) -> Result<Option<u64>, StoreError> {
        const OP: &str = "get_cursor";
        self.timed(OP, async {
            let rows = self
                .fetch(
                    OP,
                    Stmt::new(
                        "SELECT value FROM cursors WHERE name = $1",
                        vec![Arg::Text(name.to_owned())],
                    ),
                    |r| u64_col(r, "cursors", "value"),
                )
                .await?;
            Ok(rows.into_iter().next())
        })
        .await
    }

    /// Sets cursor `name` to `value`.
    pub async fn set_cursor(&self, name: &str, value: u64) -> Result<(), StoreError> {
        const OP: &str = "set_cursor";
        self.timed(OP, async {
            self.write(OP, vec![plan_cursor(name, value)?]).await?;
            Ok(())
        })
        .await
    }

    // ---- internals ----

    async fn timed<T: Outcome>(&self, op: &'static str, fut: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let out = fut.await;
        if let Some(observer) = &self.observer {
            observer(op, started.elapsed(), out.succeeded());
        }
        out
    }

    async fn write(&self, op: &'static str, plans: Vec<Plan>) -> Result<Vec<Effect>, StoreError> {
        self.pool
            .write(plans)
            .await
            .map_err(|source| StoreError::Database { op, source })
    }

    async fn write_one(
        &self,
        op: &'static str,
        plan: Result<Plan, StoreError>,
    ) -> Result<bool, StoreError> {
        self.timed(op, async { self.write(op, vec![plan?]).await.map(first) })
            .await
    }

    async fn fetch<T>(
        &self,
        op: &'static str,
        stmt: Stmt,
        decode: fn(&dyn RowExt) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        self.pool
            .fetch(stmt, decode)
            .await
            .map_err(|source| StoreError::Database { op, source })?
    }
}

/// Whether the first plan's first statement changed a row (the row is new, or for audits
/// written).
fn first(changed: Vec<Effect>) -> bool {
    changed.first() == Some(&Effect::First)
}

fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::ForeignKeyViolation)
}

// ---- conversions ----

fn to_i64(field: &'static str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange { field, value })
}

fn opt_i64(field: &'static str, value: Option<u64>) -> Result<Option<i64>, StoreError> {
    value.map(|v| to_i64(field, v)).transpose()
}

fn col<T>(
    table: &'static str,
    column: &'static str,
    read: Result<T, sqlx::Error>,
) -> Result<T, StoreError> {
    read.map_err(|e| StoreError::Corrupt {
        table,
        column,
        detail: e.to_string(),
    })
}

fn u64_of(table: &'static str, column: &'static str, v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt {
        table,
        column,
        detail: format!("negative value {v}"),
    })
}

fn u64_col(row: &dyn RowExt, table: &'static str, column: &'static str) -> Result<u64, StoreError> {
    u64_of(table, column, col(table, column, row.i64(column))?)
}

fn opt_u64_col(
    row: &dyn RowExt,
    table: &'static str,
    column: &'static str,
) -> Result<Option<u64>, StoreError> {
    col(table, column, row.opt_i64(column))?
        .map(|v| u64_of(table, column, v))
        .transpose()
}

fn narrow<T: TryFrom<u64>>(
    row: &dyn RowExt,
    table: &'static str,
    column: &'static str,
) -> Result<T, StoreError> {
    let v = u64_col(row, table, column)?;
    T::try_from(v).map_err(|_| StoreError::Corrupt {
        table,
        column,
        detail: format!("{v} is out of range"),
    })
}

fn array_of<const N: usize>(
    table: &'static str,
    column: &'static str,
    v: Vec<u8>,
) -> Result<[u8; N], StoreError> {
    <[u8; N]>::try_from(v.as_slice()).map_err(|_| StoreError::Corrupt {
        table,
        column,
        detail: format!("{} bytes, expected {N}", v.len()),
    })
}

fn array_col<const N: usize>(
    row: &dyn RowExt,
    table: &'static str,
    column: &'static str,
) -> Result<[u8; N], StoreError> {
    array_of(table, column, col(table, column, row.bytes(column))?)
}

fn opt_array_col<const N: usize>(
    row: &dyn RowExt,
    table: &'static str,
    column: &'static str,
) -> Result<Option<[u8; N]>, StoreError> {
    col(table, column, row.opt_bytes(column))?
        .map(|v| array_of(table, column, v))
        .transpose()
}

fn text_col(
    row: &dyn RowExt,
    table: &'static str,
    column: &'static str,
) -> Result<String, StoreError> {
    col(table, column, row.text(column))
}

fn opt_text_col(
    row: &dyn RowExt,
    table: &'static str,
    column: &'static str,
) -> Result<Option<String>, StoreError> {
    col(table, column, row.opt_text(column))
}

fn unknown(table: &'static str, column: &'static str, v: &str) -> StoreError {
    StoreError::Corrupt {
        table,
        column,
        detail: format!("unknown value {v:?}"),
    }
}

// ---- enumerations as text ----

fn audit_status_str(s: AuditStatus) -> &'static str {
    match s {
        AuditStatus::Passed => "passed",
        AuditStatus::Failed => "failed",
        AuditStatus::Error => "error",
    }
}

fn parse_audit_status(v: &str) -> Option<AuditStatus> {
    Some(match v {
        "passed" => AuditStatus::Passed,
        "failed" => AuditStatus::Failed,
        "error" => AuditStatus::Error,
        _ => return None,
    })
}

fn probe_status_str(s: ProbeStatus) -> &'static str {
    match s {
        ProbeStatus::Answered => "answered",
        ProbeStatus::Timeout => "timeout",
        ProbeStatus::WrongAnswer => "wrong_answer",
        ProbeStatus::Refused => "refused",
        ProbeStatus::Error => "error",
    }
}

fn parse_probe_status(v: &str) -> Option<ProbeStatus> {
    Some(match v {
        "answered" => ProbeStatus::Answered,
        "timeout" => ProbeStatus::Timeout,
        "wrong_answer" => ProbeStatus::WrongAnswer,
        "refused" => ProbeStatus::Refused,
        "error" => ProbeStatus::Error,
        _ => return None,
    })
}

fn ticket_status_str(s: TicketStatus) -> &'static str {
    match s {
        TicketStatus::Open => "open",
        TicketStatus::Found => "found",
        TicketStatus::Missing => "missing",
        TicketStatus::Error => "error",
    }
}

fn parse_ticket_status(v: &str) -> Option<TicketStatus> {
    Some(match v {
        "open" => TicketStatus::Open,
        "found" => TicketStatus::Found,
        "missing" => TicketStatus::Missing,
        "error" => TicketStatus::Error,
        _ => return None,
    })
}

fn report_status_str(s: ReportStatus) -> &'static str {
    match s {
        ReportStatus::Pending => "pending",
        ReportStatus::Submitted => "submitted",
        ReportStatus::Confirmed => "confirmed",
        ReportStatus::Failed => "failed",
        ReportStatus::Withheld => "withheld",
    }
}

fn parse_report_status(v: &str) -> Option<ReportStatus> {
    Some(match v {
        "pending" => ReportStatus::Pending,
        "submitted" => ReportStatus::Submitted,
        "confirmed" => ReportStatus::Confirmed,
        "failed" => ReportStatus::Failed,
        "withheld" => ReportStatus::Withheld,
        _ => return None,
    })
}

// ---- writes ----

fn plan(write: &Write) -> Result<Plan, StoreError> {
    match write {
        Write::Batch(b) => plan_batch(b),
        Write::Audit(a) => plan_audit(a),
        Write::Probe(p) => plan_probe(p),
        Write::ProbeTicket(t) => plan_probe_ticket(t),
        Write::PeerTicket(t) => plan_peer_ticket(t),
        Write::Object { kind, bytes } => Ok(plan_object(kind, bytes)),
        Write::EpochReport(r) => plan_epoch_report(r),
        Write::Cursor { name, value } => plan_cursor(name, *value),
    }
}

fn plan_batch(b: &BatchRecord) -> Result<Plan, StoreError> {
    let (verdict, reason) = match &b.verdict {
        Verdict::Accepted => ("accepted", None),
        Verdict::Refused { reason } => ("refused", Some(reason.clone())),
    };
    Ok(Plan {
        first: Stmt::new(
            "INSERT INTO batches (batch_id, operator_key, wallet, version, epoch, \
             window_start_ms, window_end_ms, receipt_json, arrival_ms, arrival_slot, verdict, \
             reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (batch_id) DO NOTHING",
            vec![
                Arg::Bytes(b.batch_id.to_vec()),
                Arg::Bytes(b.operator_key.to_vec()),
                Arg::OptBytes(b.wallet.map(|w| w.to_vec())),
                Arg::I64(i64::from(b.version)),
                Arg::I64(to_i64("epoch", b.epoch)?),
                Arg::I64(to_i64("window_start_ms", b.window_start_ms)?),
                Arg::I64(to_i64("window_end_ms", b.window_end_ms)?),
                Arg::Text(b.receipt_json.clone()),
                Arg::I64(to_i64("arrival_ms", b.arrival_ms)?),
                Arg::I64(to_i64("arrival_slot", b.arrival_slot)?),
                Arg::Text(verdict.to_owned()),
                Arg::OptText(reason),
            ],
        ),
        otherwise: None,
    })
}

fn plan_audit(a: &AuditRecord) -> Result<Plan, StoreError> {
    Ok(Plan {
        first: Stmt::new(
            "INSERT INTO audits (batch_id, seed_slot, seed_hash, k, outcome, reason, \
             evidence_json, audited_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (batch_id) DO UPDATE SET seed_slot = excluded.seed_slot, \
             seed_hash = excluded.seed_hash, k = excluded.k, outcome = excluded.outcome, \
             reason = excluded.reason, evidence_json = excluded.evidence_json, \
             audited_ms = excluded.audited_ms WHERE audits.outcome = 'error'",
            vec![
                Arg::Bytes(a.batch_id.to_vec()),
                Arg::I64(to_i64("seed_slot", a.seed_slot)?),
                Arg::Bytes(a.seed_hash.to_vec()),
                Arg::I64(i64::from(a.k)),
                Arg::Text(audit_status_str(a.status).to_owned()),
                Arg::OptText(a.reason.clone()),
                Arg::Text(a.evidence_json.clone()),
                Arg::I64(to_i64("audited_ms", a.audited_ms)?),
            ],
        ),
        otherwise: None,
    })
}

fn plan_probe(p: &ProbeRecord) -> Result<Plan, StoreError> {
    Ok(Plan {
        first: Stmt::new(
            "INSERT INTO probes (probe_id, wallet, transport, epoch, sent_ms, send_slot, \
             latency_us, outcome, ticket, qname, evidence_json) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (probe_id) DO NOTHING",
            vec![
                Arg::Bytes(p.probe_id.to_vec()),
                Arg::Bytes(p.wallet.to_vec()),
                Arg::I64(i64::from(p.transport)),
                Arg::I64(to_i64("epoch", p.epoch)?),
                Arg::I64(to_i64("sent_ms", p.sent_ms)?),
                Arg::I64(to_i64("send_slot", p.send_slot)?),
                Arg::OptI64(opt_i64("latency_us", p.latency_us)?),
                Arg::Text(probe_status_str(p.status).to_owned()),
                Arg::Bytes(p.ticket.to_vec()),
                Arg::Text(p.qname.clone()),
                Arg::Text(p.evidence_json.clone()),
            ],
        ),
        otherwise: None,
    })
}

fn plan_probe_ticket(t: &ProbeTicketRecord) -> Result<Plan, StoreError> {
    let args = vec![
        Arg::Bytes(t.ticket.to_vec()),
        Arg::Bytes(t.wallet.to_vec()),
        Arg::I64(to_i64("epoch", t.epoch)?),
        Arg::I64(to_i64("probes_sent", t.probes_sent)?),
        Arg::OptI64(opt_i64("leaves_found", t.leaves_found)?),
        Arg::Text(ticket_status_str(t.status).to_owned()),
        Arg::OptText(t.reason.clone()),
        Arg::I64(to_i64("updated_ms", t.updated_ms)?),
    ];
    Ok(Plan {
        first: Stmt::new(
            "INSERT INTO probe_tickets (ticket, wallet, epoch, probes_sent, leaves_found, \
             status, reason, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (ticket) DO NOTHING",
            args.clone(),
        ),
        otherwise: Some(Stmt::new(
            "UPDATE probe_tickets SET wallet = $2, epoch = $3, probes_sent = $4, \
             leaves_found = $5, status = $6, reason = $7, updated_ms = $8 WHERE ticket = $1",
            args,
        )),
    })
}

fn plan_peer_ticket(t: &PeerTicketRecord) -> Result<Plan, StoreError> {
    let args = vec![
        Arg::Bytes(t.watcher.to_vec()),
        Arg::Bytes(t.ticket.to_vec()),
        Arg::Bytes(t.wallet.to_vec()),
        Arg::I64(to_i64("epoch", t.epoch)?),
        Arg::I64(to_i64("sent_ms", t.sent_ms)?),
        Arg::OptI64(opt_i64("leaves_found", t.leaves_found)?),
        Arg::Text(ticket_status_str(t.status).to_owned()),
        Arg::OptText(t.reason.clone()),
        Arg::I64(to_i64("updated_ms", t.updated_ms)?),
    ];
    Ok(Plan {
        first: Stmt::new(
            "INSERT INTO peer_probe_tickets (watcher, ticket, wallet, epoch, sent_ms, \
             leaves_found, status, reason, updated_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (watcher, ticket) DO NOTHING",
            args.clone(),
        ),
        otherwise: Some(Stmt::new(
            "UPDATE peer_probe_tickets SET wallet = $3, epoch = $4, sent_ms = $5, \
             leaves_found = $6, status = $7, reason = $8, updated_ms = $9 \
             WHERE watcher = $1 AND ticket = $2",
            args,
        )),
    })
}

fn plan_object(kind: &str, bytes: &[u8]) -> Plan {
    Plan {
        first: Stmt::new(
            "INSERT INTO objects (sha256, kind, bytes) VALUES ($1, $2, $3) \
             ON CONFLICT (sha256) DO NOTHING",
            vec![
                Arg::Bytes(object_hash(bytes).to_vec()),
                Arg::Text(kind.to_owned()),
                Arg::Bytes(bytes.to_vec()),
            ],
        ),
        otherwise: None,
    }
}

fn plan_epoch_report(r: &EpochReport) -> Result<Plan, StoreError> {
    let args = vec![
        Arg::I64(to_i64("epoch", r.epoch)?),
        Arg::Bytes(r.wallet.to_vec()),
        Arg::Text(r.stats_json.clone()),
        Arg::OptBytes(r.inputs_hash.map(|h| h.to_vec())),
        Arg::OptBytes(r.tx_signature.map(|s| s.to_vec())),
        Arg::Text(report_status_str(r.status).to_owned()),
        Arg::OptText(r.reason.clone()),
        Arg::I64(to_i64("updated_ms", r.updated_ms)?),
    ];
    Ok(Plan {
        first: Stmt::new(
            "INSERT INTO epoch_reports (epoch, wallet, stats_json, inputs_hash, tx_signature, \
             status, reason, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (epoch, wallet) DO NOTHING",
            args.clone(),
        ),
        otherwise: Some(Stmt::new(
            "UPDATE epoch_reports SET stats_json = $3, inputs_hash = $4, tx_signature = $5, \
             status = $6, reason = $7, updated_ms = $8 WHERE epoch = $1 AND wallet = $2",
            args,
        )),
    })
}

fn plan_cursor(name: &str, value: u64) -> Result<Plan, StoreError> {
    Ok(Plan {
        first: Stmt::new(
            "INSERT INTO cursors (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            vec![
                Arg::Text(name.to_owned()),
                Arg::I64(to_i64("cursor value", value)?),
            ],
        ),
        otherwise: None,
    })
}

// ---- reads ----

fn decode_batch(r: &dyn RowExt) -> Result<BatchRecord, StoreError> {
    const T: &str = "batches";
    let verdict = match text_col(r, T, "verdict")?.as_str() {
        "accepted" => Verdict::Accepted,
        "refused" => Verdict::Refused {
            reason: opt_text_col(r, T, "reason")?.unwrap_or_default(),
        },
        other => return Err(unknown(T, "verdict", other)),
    };
    Ok(BatchRecord {
        batch_id: array_col(r, T, "batch_id")?,
        operator_key: array_col(r, T, "operator_key")?,
        wallet: opt_array_col(r, T, "wallet")?,
        version: narrow(r, T, "version")?,
        epoch: u64_col(r, T, "epoch")?,
        window_start_ms: u64_col(r, T, "window_start_ms")?,
        window_end_ms: u64_col(r, T, "window_end_ms")?,
        receipt_json: text_col(r, T, "receipt_json")?,
        arrival_ms: u64_col(r, T, "arrival_ms")?,
        arrival_slot: u64_col(r, T, "arrival_slot")?,
        verdict,
    })
}

fn decode_audit(r: &dyn RowExt) -> Result<AuditRecord, StoreError> {
    const T: &str = "audits";
    let status = text_col(r, T, "outcome")?;
    Ok(AuditRecord {
        batch_id: array_col(r, T, "batch_id")?,
        seed_slot: u64_col(r, T, "seed_slot")?,
        seed_hash: array_col(r, T, "seed_hash")?,
        k: narrow(r, T, "k")?,
        status: parse_audit_status(&status).ok_or_else(|| unknown(T, "outcome", &status))?,
        reason: opt_text_col(r, T, "reason")?,
        evidence_json: text_col(r, T, "evidence_json")?,
        audited_ms: u64_col(r, T, "audited_ms")?,
    })
}

fn decode_probe(r: &dyn RowExt) -> Result<ProbeRecord, StoreError> {
    const T: &str = "probes";
    let status = text_col(r, T, "outcome")?;
    Ok(ProbeRecord {
        probe_id: array_col(r, T, "probe_id")?,
        wallet: array_col(r, T, "wallet")?,
        transport: narrow(r, T, "transport")?,
        epoch: u64_col(r, T, "epoch")?,
        sent_ms: u64_col(r, T, "sent_ms")?,
        send_slot: u64_col(r, T, "send_slot")?,
        latency_us: opt_u64_col(r, T, "latency_us")?,
        status: parse_probe_status(&status).ok_or_else(|| unknown(T, "outcome", &status))?,
        ticket: array_col(r, T, "ticket")?,
        qname: text_col(r, T, "qname")?,
        evidence_json: text_col(r, T, "evidence_json")?,
    })
}

fn decode_probe_ticket(r: &dyn RowExt) -> Result<ProbeTicketRecord, StoreError> {
    const T: &str = "probe_tickets";
    let status = text_col(r, T, "status")?;
    Ok(ProbeTicketRecord {
        ticket: array_col(r, T, "ticket")?,
        wallet: array_col(r, T, "wallet")?,
        epoch: u64_col(r, T, "epoch")?,
        probes_sent: u64_col(r, T, "probes_sent")?,
        leaves_found: opt_u64_col(r, T, "leaves_found")?,
        status: parse_ticket_status(&status).ok_or_else(|| unknown(T, "status", &status))?,
        reason: opt_text_col(r, T, "reason")?,
        updated_ms: u64_col(r, T, "updated_ms")?,
    })
}

fn decode_peer_ticket(r: &dyn RowExt) -> Result<PeerTicketRecord, StoreError> {
    const T: &str = "peer_probe_tickets";
    let status = text_col(r, T, "status")?;
    Ok(PeerTicketRecord {
        watcher: array_col(r, T, "watcher")?,
        ticket: array_col(r, T, "ticket")?,
        wallet: array_col(r, T, "wallet")?,
        epoch: u64_col(r, T, "epoch")?,
        sent_ms: u64_col(r, T, "sent_ms")?,
        leaves_found: opt_u64_col(r, T, "leaves_found")?,
        status: parse_ticket_status(&status).ok_or_else(|| unknown(T, "status", &status))?,
        reason: opt_text_col(r, T, "reason")?,
        updated_ms: u64_col(r, T, "updated_ms")?,
    })
}

fn decode_object(r: &dyn RowExt) -> Result<StoredObject, StoreError> {
    const T: &str = "objects";
    Ok(StoredObject {
        sha256: array_col(r, T, "sha256")?,
        kind: text_col(r, T, "kind")?,
        bytes: col(T, "bytes", r.bytes("bytes"))?,
    })
}

fn decode_epoch_report(r: &dyn RowExt) -> Result<EpochReport, StoreError> {
    const T: &str = "epoch_reports";
    let status = text_col(r, T, "status")?;
    Ok(EpochReport {
        epoch: u64_col(r, T, "epoch")?,
        wallet: array_col(r, T, "wallet")?,
        stats_json: text_col(r, T, "stats_json")?,
        inputs_hash: opt_array_col(r, T, "inputs_hash")?,
        tx_signature: opt_array_col(r, T, "tx_signature")?,
        status: parse_report_status(&status).ok_or_else(|| unknown(T, "status", &status))?,
        reason: opt_text_col(r, T, "reason")?,
        updated_ms: u64_col(r, T, "updated_ms")?,
    })
}
