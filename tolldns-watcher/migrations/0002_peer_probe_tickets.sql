-- Other watchers' probe tickets (their published lists), each looked up by this watcher at
-- the probed miner: the leaves found are discounted from the miner's client ticketed work.
-- A peer's list is never trusted for counts: only this watcher's own lookups fill
-- leaves_found.
CREATE TABLE peer_probe_tickets (
    watcher      BYTEA   NOT NULL,
    ticket       BYTEA   NOT NULL,
    wallet       BYTEA   NOT NULL,
    epoch        BIGINT  NOT NULL,
    sent_ms      BIGINT  NOT NULL,
    leaves_found BIGINT,
    status       TEXT    NOT NULL CHECK (status IN ('open', 'found', 'missing', 'error')),
    reason       TEXT,
    updated_ms   BIGINT  NOT NULL,
    PRIMARY KEY (watcher, ticket)
);
CREATE INDEX peer_probe_tickets_by_epoch ON peer_probe_tickets (epoch, wallet);

-- The overlap ledger is keyed by wallet (an operator's receipt-signing keys around a rotation
-- are one operator): accepted windows by wallet.
CREATE INDEX batches_accepted_by_wallet ON batches (wallet, window_start_ms)
    WHERE verdict = 'accepted';
