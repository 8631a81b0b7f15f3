-- Applied migrations are never edited (their checksums are recorded): a schema change is a
-- new file NNNN_name.sql, listed in src/store/db.rs (MIGRATIONS).
-- The watcher's store. One schema for SQLite and PostgreSQL: BIGINT columns hold u64 values
-- as i64 (the store refuses values >= 2^63), BYTEA columns hold keys and hashes (SQLite keeps
-- the blobs as they are), TEXT columns hold JSON documents and enumerations.

-- Receipt batches as received, with the verdict of ingest.
CREATE TABLE batches (
    batch_id        BYTEA   NOT NULL PRIMARY KEY,
    operator_key    BYTEA   NOT NULL,
    wallet          BYTEA,
    version         BIGINT  NOT NULL,
    epoch           BIGINT  NOT NULL,
    window_start_ms BIGINT  NOT NULL,
    window_end_ms   BIGINT  NOT NULL,
    receipt_json    TEXT    NOT NULL,
    arrival_ms      BIGINT  NOT NULL,
    arrival_slot    BIGINT  NOT NULL,
    verdict         TEXT    NOT NULL CHECK (verdict IN ('accepted', 'refused')),
    reason          TEXT
);
CREATE INDEX batches_by_epoch ON batches (epoch, arrival_slot);
CREATE INDEX batches_accepted_by_operator ON batches (operator_key, window_start_ms)
    WHERE verdict = 'accepted';

-- One audit per batch.
CREATE TABLE audits (
    batch_id      BYTEA   NOT NULL PRIMARY KEY REFERENCES batches (batch_id),
    seed_slot     BIGINT  NOT NULL,
    seed_hash     BYTEA   NOT NULL,
    k             BIGINT  NOT NULL,
    outcome       TEXT    NOT NULL CHECK (outcome IN ('passed', 'failed', 'error')),
    reason        TEXT,
    evidence_json TEXT    NOT NULL,
    audited_ms    BIGINT  NOT NULL
);

-- Probes sent to miners.
CREATE TABLE probes (
    probe_id      BYTEA   NOT NULL PRIMARY KEY,
    wallet        BYTEA   NOT NULL,
    transport     BIGINT  NOT NULL,
    epoch         BIGINT  NOT NULL,
    sent_ms       BIGINT  NOT NULL,
    send_slot     BIGINT  NOT NULL,
    latency_us    BIGINT,
    outcome       TEXT    NOT NULL
        CHECK (outcome IN ('answered', 'timeout', 'wrong_answer', 'refused', 'error')),
    ticket        BYTEA   NOT NULL,
    qname         TEXT    NOT NULL,
    evidence_json TEXT    NOT NULL
);
CREATE INDEX probes_by_epoch ON probes (epoch, wallet);
CREATE INDEX probes_by_ticket ON probes (ticket);

-- The tickets the watcher's probes used, and whether the miner's receipts carry them.
CREATE TABLE probe_tickets (
    ticket       BYTEA   NOT NULL PRIMARY KEY,
    wallet       BYTEA   NOT NULL,
    epoch        BIGINT  NOT NULL,
    probes_sent  BIGINT  NOT NULL,
    leaves_found BIGINT,
    status       TEXT    NOT NULL CHECK (status IN ('open', 'found', 'missing', 'error')),
    reason       TEXT,
    updated_ms   BIGINT  NOT NULL
);
CREATE INDEX probe_tickets_by_epoch ON probe_tickets (epoch, wallet);

-- Published, content-addressed objects: sha256 of the bytes.
CREATE TABLE objects (
    sha256 BYTEA NOT NULL PRIMARY KEY,
    kind   TEXT  NOT NULL,
    bytes  BYTEA NOT NULL
);

-- The watcher's report of each miner's epoch stats to the score program.
CREATE TABLE epoch_reports (
    epoch        BIGINT NOT NULL,
    wallet       BYTEA  NOT NULL,
    stats_json   TEXT   NOT NULL,
    inputs_hash  BYTEA,
    tx_signature BYTEA,
    status       TEXT   NOT NULL
        CHECK (status IN ('pending', 'submitted', 'confirmed', 'failed', 'withheld')),
    reason       TEXT,
    updated_ms   BIGINT NOT NULL,
    PRIMARY KEY (epoch, wallet)
);

-- Named progress markers of the worker loops.
CREATE TABLE cursors (
    name  TEXT   NOT NULL PRIMARY KEY,
    value BIGINT NOT NULL
);
