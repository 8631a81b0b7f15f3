//! The store's typed records, their enumerations and its error type.

use std::fmt;

/// Which database a [`Store`](super::Store) runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// SQLite (a file, or an in-memory database for tests).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        })
    }
}

/// Every failure of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no supported database.
    #[error(
        "unsupported store URL {url:?}: expected sqlite://PATH, sqlite::memory: or postgres://…"
    )]
    UnsupportedUrl {
        /// The URL, with any password removed.
        url: String,
    },
    /// The URL could not be parsed by the database driver.
    #[error("invalid store URL {url:?}: {source}")]
    InvalidUrl {
        /// The URL, with any password removed.
        url: String,
        /// The driver's reason.
        #[source]
        source: sqlx::Error,
    },
    /// The database could not be opened or reached.
    #[error("cannot open the {backend} store {url:?}: {source}")]
    Open {
        /// The backend.
        backend: Backend,
        /// The URL, with any password removed.
        url: String,
        /// The driver's reason.
        #[source]
        source: sqlx::Error,
    },
    /// The schema migrations failed.
    #[error("store schema migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A database operation failed.
    #[error("store operation {op} failed: {source}")]
    Database {
        /// The store operation.
        op: &'static str,
        /// The driver's reason.
        #[source]
        source: sqlx::Error,
    },
    /// An audit was recorded for a batch the store does not hold.
    #[error("store operation {op}: no batch {batch_id} is stored")]
    UnknownBatch {
        /// The store operation.
        op: &'static str,
        /// The batch id, hex.
        batch_id: String,
    },
    /// A u64 value does not fit the store's signed 64-bit columns (values >= 2^63 are refused).
    #[error("{field} = {value} is out of the store's range (at most {max})", max = i64::MAX)]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// The refused value.
        value: u64,
    },
    /// A stored value does not decode into its typed field (the database was altered outside
    /// the store).
    #[error("stored {table}.{column} is invalid: {detail}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The column.
        column: &'static str,
        /// What is wrong with it.
        detail: String,
    },
}

/// The verdict of ingest on a batch.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// The receipt verified and counts.
    Accepted,
    /// The receipt was refused; `reason` says why.
    Refused {
        /// Why it was refused.
        reason: String,
    },
}

impl Verdict {
    /// Whether the batch was accepted.
    pub fn is_accepted(&self) -> bool {
        matches!(self, Self::Accepted)
    }
}

/// A receipt batch as the watcher received it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BatchRecord {
    /// The batch id (primary key).
    pub batch_id: [u8; 32],
    /// The operator's receipt-signing (delegate) key that signed the receipt.
    pub operator_key: [u8; 32],
    /// The operator's wallet, when the signing key maps to a registered operator.
    pub wallet: Option<[u8; 32]>,
    /// The receipt format version.
    pub version: u8,
    /// The chain epoch containing the arrival slot.
    pub epoch: u64,
    /// Start of the receipt's window, Unix ms.
    pub window_start_ms: u64,
    /// End of the receipt's window (exclusive), Unix ms.
    pub window_end_ms: u64,
    /// The receipt JSON, as received.
    pub receipt_json: String,
    /// Arrival time, Unix ms.
    pub arrival_ms: u64,
    /// The chain slot at arrival.
    pub arrival_slot: u64,
    /// The verdict of ingest.
    pub verdict: Verdict,
}

/// The outcome of an audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditStatus {
    /// Every sampled proof, neighbour and token checked out.
    Passed,
    /// The miner's answers contradict its receipt (the evidence says how).
    Failed,
    /// The audit could not be completed; a later [`Store::record_audit`](super::Store::record_audit)
    /// replaces it.
    Error,
}

/// The audit of one batch.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AuditRecord {
    /// The audited batch (primary key).
    pub batch_id: [u8; 32],
    /// The slot whose hash seeded the sample.
    pub seed_slot: u64,
    /// That slot's hash.
    pub seed_hash: [u8; 32],
    /// The number of sampled leaves.
    pub k: u32,
    /// The outcome.
    pub status: AuditStatus,
    /// Why it failed or errored.
    pub reason: Option<String>,
    /// What was asked and what came back (JSON).
    pub evidence_json: String,
    /// When the audit finished, Unix ms.
    pub audited_ms: u64,
}

/// The outcome of a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeStatus {
    /// Answered, and the answer matched the watcher's own resolution.
    Answered,
    /// No answer in time.
    Timeout,
    /// Answered with something other than the watcher's own resolution.
    WrongAnswer,
    /// The miner refused the query (REFUSED, or the ticket was not accepted).
    Refused,
    /// The probe failed on the watcher's side or on the transport.
    Error,
}

/// One probe sent to a miner.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProbeRecord {
    /// The probe id (primary key).
    pub probe_id: [u8; 32],
    /// The probed miner's wallet.
    pub wallet: [u8; 32],
    /// The transport (registry endpoint transport code).
    pub transport: u8,
    /// The chain epoch containing the send slot.
    pub epoch: u64,
    /// When it was sent, Unix ms.
    pub sent_ms: u64,
    /// The chain slot when it was sent.
    pub send_slot: u64,
    /// The latency of the answer in µs, when one came.
    pub latency_us: Option<u64>,
    /// The outcome.
    pub status: ProbeStatus,
    /// The ticket the probe carried.
    pub ticket: [u8; 16],
    /// The queried name.
    pub qname: String,
    /// What was sent and what came back (JSON).
    pub evidence_json: String,
}

/// Whether a probe ticket's leaves were found in the miner's receipts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TicketStatus {
    /// Not checked yet.
    Open,
    /// The miner's receipts carry the ticket's leaves.
    Found,
    /// The leaves are missing.
    Missing,
    /// The lookup could not be completed.
    Error,
}

/// A ticket the watcher's probes used, checked later against the miner's receipts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProbeTicketRecord {
    /// The ticket id (primary key).
    pub ticket: [u8; 16],
    /// The probed miner's wallet.
    pub wallet: [u8; 32],
    /// The epoch of the probes.
    pub epoch: u64,
    /// How many probes carried the ticket.
    pub probes_sent: u64,
    /// How many leaves carrying the ticket were found, once checked.
    pub leaves_found: Option<u64>,
    /// The status of the check.
    pub status: TicketStatus,
    /// Why the check failed or errored.
    pub reason: Option<String>,
    /// When the record last changed, Unix ms.
    pub updated_ms: u64,
}

/// Another watcher's probe ticket (from its published list), looked up by this watcher in
/// the probed miner's receipts. Only this watcher's own lookup sets `leaves_found`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerTicketRecord {
    /// The peer watcher's public key (with `ticket`, the primary key).
    pub watcher: [u8; 32],
    /// The ticket id.
    pub ticket: [u8; 16],
    /// The probed miner's wallet.
    pub wallet: [u8; 32],
    /// The epoch of the probe.
    pub epoch: u64,
    /// When the peer says it sent the probe, Unix ms (where to look).
    pub sent_ms: u64,
    /// How many leaves carrying the ticket this watcher found, once looked up.
    pub leaves_found: Option<u64>,
    /// The status of the lookup (`Found`: leaves found; `Missing`: none; neither gates).
    pub status: TicketStatus,
    /// Why the lookup found nothing or failed.
    pub reason: Option<String>,
    /// When the record last changed, Unix ms.
    pub updated_ms: u64,
}

/// A published, content-addressed object.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StoredObject {
    /// sha256 of `bytes`.
    pub sha256: [u8; 32],
    /// What it is (for example `receipt`, `audit`, `probes`, `inputs`).
    pub kind: String,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// Where the watcher's report of a miner's epoch stats stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportStatus {
    /// Computed, not yet submitted.
    Pending,
    /// Submitted to the score program, not yet confirmed.
    Submitted,
    /// Confirmed on chain.
    Confirmed,
    /// Submission failed (the reason says why).
    Failed,
    /// Deliberately not reported: the miner earns nothing this epoch (the reason says why).
    Withheld,
}

/// The watcher's report of one miner's stats for one epoch.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EpochReport {
    /// The epoch (primary key, with `wallet`).
    pub epoch: u64,
    /// The miner's wallet.
    pub wallet: [u8; 32],
    /// The stats (JSON).
    pub stats_json: String,
    /// The published inputs object these stats derive from.
    pub inputs_hash: Option<[u8; 32]>,
    /// The report transaction's signature.
    pub tx_signature: Option<[u8; 64]>,
    /// Where the report stands.
    pub status: ReportStatus,
    /// Why it failed or was withheld.
    pub reason: Option<String>,
    /// When the record last changed, Unix ms.
    pub updated_ms: u64,
}

/// A write of [`Store::write_all`](super::Store::write_all): several land in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// [`Store::insert_batch`](super::Store::insert_batch).
    Batch(BatchRecord),
    /// [`Store::record_audit`](super::Store::record_audit).
    Audit(AuditRecord),
    /// [`Store::record_probe`](super::Store::record_probe).
    Probe(ProbeRecord),
    /// [`Store::upsert_probe_ticket`](super::Store::upsert_probe_ticket).
    ProbeTicket(ProbeTicketRecord),
    /// [`Store::upsert_peer_ticket`](super::Store::upsert_peer_ticket).
    PeerTicket(PeerTicketRecord),
    /// [`Store::put_object`](super::Store::put_object).
    Object {
        /// The kind.
        kind: String,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// [`Store::upsert_epoch_report`](super::Store::upsert_epoch_report).
    EpochReport(EpochReport),
    /// [`Store::set_cursor`](super::Store::set_cursor).
    Cursor {
        /// The cursor's name.
        name: String,
        /// Its value.
        value: u64,
    },
}
