//! The watcher store against real databases: every test runs on a SQLite file and, when
//! `TOLLDNS_TEST_POSTGRES_URL` is set, on PostgreSQL (each test in a fresh schema, so tests run
//! in parallel). With `CI` set and no PostgreSQL URL, the PostgreSQL variants fail.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::Connection;
use tolldns_watcher::store::{
    AuditRecord, AuditStatus, Backend, BatchRecord, EpochReport, ProbeRecord, ProbeStatus,
    ProbeTicketRecord, ReportStatus, Store, StoreError, TicketStatus, Verdict, Write, object_hash,
};

const POSTGRES_ENV: &str = "TOLLDNS_TEST_POSTGRES_URL";

/// A fresh database for one test: a SQLite file in a new directory, or a new PostgreSQL
/// schema.
struct Fixture {
    url: String,
    dir: Option<PathBuf>,
    pg: Option<(String, String)>,
}

fn unique(name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .subsec_nanos();
    format!("{name}_{}_{nanos}", std::process::id())
}

impl Fixture {
    fn sqlite(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("tolldns-store-{}", unique(name)));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        let url = format!("sqlite://{}", dir.join("store.db").display());
        Self {
            url,
            dir: Some(dir),
            pg: None,
        }
    }

    /// `None` (after saying so) when PostgreSQL is not configured and this is not CI.
    async fn postgres(name: &str) -> Option<Self> {
        let Ok(base) = std::env::var(POSTGRES_ENV) else {
            assert!(
                std::env::var_os("CI").is_none(),
                "{POSTGRES_ENV} is not set but CI is: the PostgreSQL store tests must run in CI"
            );
            eprintln!("{POSTGRES_ENV} is not set: PostgreSQL variant of {name} not run");
            return None;
        };
        let schema = format!("t_{}", unique(name)).to_lowercase();
        let mut conn = sqlx::PgConnection::connect(&base)
            .await
            .expect("connect to TOLLDNS_TEST_POSTGRES_URL");
        sqlx::query(&format!("CREATE SCHEMA \"{schema}\""))
            .execute(&mut conn)
            .await
            .expect("create test schema");
        conn.close().await.expect("close");
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
        Some(Self {
            url,
            dir: None,
            pg: Some((base, schema)),
        })
    }

    /// Runs `sql` on the database directly, bypassing the store.
    async fn raw(&self, sql: &str) {
        if self.pg.is_some() {
            let mut conn = sqlx::PgConnection::connect(&self.url)
                .await
                .expect("connect");
            sqlx::query(sql)
                .execute(&mut conn)
                .await
                .expect("raw statement");
            conn.close().await.expect("close");
        } else {
            let mut conn = sqlx::SqliteConnection::connect(&self.url)
                .await
                .expect("connect");
            sqlx::query(sql)
                .execute(&mut conn)
                .await
                .expect("raw statement");
            conn.close().await.expect("close");
        }
    }

    async fn open(&self) -> Store {
        Store::open(&self.url).await.expect("open store")
    }

    async fn cleanup(self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some((base, schema)) = &self.pg
            && let Ok(mut conn) = sqlx::PgConnection::connect(base).await
        {
            let _ = sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
                .execute(&mut conn)
                .await;
            let _ = conn.close().await;
        }
    }
}

/// Runs `$test(fixture)` once on SQLite and once on PostgreSQL.
macro_rules! on_both {
    ($($test:ident),* $(,)?) => {$(
        mod $test {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let fixture = super::Fixture::sqlite(stringify!($test));
                super::$test(&fixture).await;
                fixture.cleanup().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(fixture) = super::Fixture::postgres(stringify!($test)).await else {
                    return;
                };
                super::$test(&fixture).await;
                fixture.cleanup().await;
            }
        }
    )*};
}

on_both!(
    batches_round_trip_and_idempotency,
    u64_range_is_checked,
    audits,
    probes_and_probe_tickets,
    objects_are_content_addressed,
    epoch_reports_and_cursors,
    write_all_is_atomic,
    reopen_keeps_data_and_migrations_are_idempotent,
    concurrent_inserts_of_one_batch,
    observer_sees_every_operation,
    killed_writer_leaves_whole_transactions,
    altered_rows_are_typed_errors,
);

fn batch(id: u8, operator: u8, epoch: u64, start_ms: u64, verdict: Verdict) -> BatchRecord {
    BatchRecord {
        batch_id: [id; 32],
        operator_key: [operator; 32],
        wallet: verdict.is_accepted().then_some([operator ^ 0xff; 32]),
        version: 2,
        epoch,
        window_start_ms: start_ms,
        window_end_ms: start_ms + 60_000,
        receipt_json: format!("{{\"batch\":{id}}}"),
        arrival_ms: start_ms + 61_000,
        arrival_slot: 1000 + u64::from(id),
        verdict,
    }
}

fn audit(id: u8, status: AuditStatus) -> AuditRecord {
    AuditRecord {
        batch_id: [id; 32],
        seed_slot: 5000,
        seed_hash: [0xab; 32],
        k: 16,
        status,
        reason: (status != AuditStatus::Passed).then(|| format!("{status:?}")),
        evidence_json: "{\"asked\":[1,2]}".to_owned(),
        audited_ms: 1_700_000_000_000,
    }
}

fn probe(id: u8, epoch: u64, status: ProbeStatus) -> ProbeRecord {
    ProbeRecord {
        probe_id: [id; 32],
        wallet: [7; 32],
        transport: 3,
        epoch,
        sent_ms: 1_700_000_000_000 + u64::from(id),
        send_slot: 2000 + u64::from(id),
        latency_us: (status == ProbeStatus::Answered).then_some(1234),
        status,
        ticket: [id; 16],
        qname: "probe.example.".to_owned(),
        evidence_json: "{}".to_owned(),
    }
}

async fn batches_round_trip_and_idempotency(f: &Fixture) {
    let store = f.open().await;
    let accepted = batch(1, 10, 4, 1_000_000, Verdict::Accepted);
    let refused = batch(
        2,
        10,
        4,
        2_000_000,
        Verdict::Refused {
            reason: "bad signature".to_owned(),
        },
    );
    let other_epoch = batch(3, 10, 5, 3_000_000, Verdict::Accepted);
    let other_operator = batch(4, 11, 4, 500_000, Verdict::Accepted);
    for b in [&accepted, &refused, &other_epoch, &other_operator] {
        assert!(store.insert_batch(b).await.unwrap(), "first insert is new");
    }
    assert!(
        !store.insert_batch(&accepted).await.unwrap(),
        "second insert is not new"
    );
    let mut changed = accepted.clone();
    changed.receipt_json = "{\"other\":true}".to_owned();
    assert!(!store.insert_batch(&changed).await.unwrap());
    assert_eq!(
        store.batch(&[1; 32]).await.unwrap(),
        Some(accepted.clone()),
        "unchanged"
    );
    assert_eq!(store.batch(&[2; 32]).await.unwrap(), Some(refused.clone()));
    assert_eq!(refused.wallet, None);
    assert_eq!(store.batch(&[9; 32]).await.unwrap(), None);

    assert_eq!(
        store.batches_in_epoch(4).await.unwrap(),
        vec![accepted.clone(), refused.clone(), other_operator.clone()]
    );
    assert_eq!(store.batches_in_epoch(6).await.unwrap(), vec![]);
    assert_eq!(
        store.accepted_windows(&[10; 32]).await.unwrap(),
        vec![(1_000_000, 1_060_000), (3_000_000, 3_060_000)],
        "accepted receipts only, by start"
    );
    // The wallet's ledger holds the windows of every key attributed to it (a rotated key's
    // receipt of the same wallet is one more row).
    let mut rotated = batch(5, 12, 4, 4_000_000, Verdict::Accepted);
    rotated.wallet = Some([10 ^ 0xff; 32]);
    assert!(store.insert_batch(&rotated).await.unwrap());
    assert_eq!(
        store
            .accepted_windows_of_wallet(&[10 ^ 0xff; 32])
            .await
            .unwrap(),
        vec![
            (1_000_000, 1_060_000),
            (3_000_000, 3_060_000),
            (4_000_000, 4_060_000)
        ],
        "every key of the wallet, accepted receipts only, by start"
    );
    assert_eq!(
        store.accepted_windows_of_wallet(&[0; 32]).await.unwrap(),
        vec![]
    );
    assert_eq!(
        store.batches_awaiting_audit(10).await.unwrap(),
        vec![accepted, other_epoch.clone(), other_operator, rotated],
        "accepted batches only, by arrival slot"
    );
    assert_eq!(store.batches_awaiting_audit(1).await.unwrap().len(), 1);
    store.close().await;
}

async fn u64_range_is_checked(f: &Fixture) {
    let store = f.open().await;
    let max = i64::MAX as u64;
    let mut b = batch(1, 1, max, max - 60_000, Verdict::Accepted);
    b.arrival_ms = max;
    b.arrival_slot = max;
    assert!(store.insert_batch(&b).await.unwrap());
    assert_eq!(store.batch(&b.batch_id).await.unwrap(), Some(b.clone()));
    assert_eq!(store.batches_in_epoch(max).await.unwrap(), vec![b]);

    let mut too_big = batch(2, 1, 1, 0, Verdict::Accepted);
    too_big.arrival_slot = 1 << 63;
    match store.insert_batch(&too_big).await {
        Err(StoreError::OutOfRange { field, value }) => {
            assert_eq!((field, value), ("arrival_slot", 1 << 63));
        }
        other => panic!("expected OutOfRange, got {other:?}"),
    }
    assert_eq!(store.batch(&too_big.batch_id).await.unwrap(), None);
    assert!(matches!(
        store.batches_in_epoch(u64::MAX).await,
        Err(StoreError::OutOfRange { field: "epoch", .. })
    ));
    assert!(matches!(
        store.set_cursor("c", u64::MAX).await,
        Err(StoreError::OutOfRange { .. })
    ));
    store.set_cursor("c", max).await.unwrap();
    assert_eq!(store.get_cursor("c").await.unwrap(), Some(max));
    let mut p = probe(1, 1, ProbeStatus::Answered);
    p.latency_us = Some(u64::MAX);
    assert!(matches!(
        store.record_probe(&p).await,
        Err(StoreError::OutOfRange {
            field: "latency_us",
            ..
        })
    ));
    store.close().await;
}

async fn audits(f: &Fixture) {
    let store = f.open().await;
    match store.record_audit(&audit(1, AuditStatus::Passed)).await {
        Err(StoreError::UnknownBatch { batch_id, .. }) => {
            assert_eq!(batch_id, hex::encode([1; 32]))
        }
        other => panic!("expected UnknownBatch, got {other:?}"),
    }
    store
        .insert_batch(&batch(1, 1, 3, 0, Verdict::Accepted))
        .await
        .unwrap();
    store
        .insert_batch(&batch(2, 1, 3, 60_000, Verdict::Accepted))
        .await
        .unwrap();
    store
        .insert_batch(&batch(3, 1, 4, 120_000, Verdict::Accepted))
        .await
        .unwrap();
    assert_eq!(store.batches_awaiting_audit(10).await.unwrap().len(), 3);

    // An error is replaced by a later audit; a passed or failed audit is final.
    assert!(
        store
            .record_audit(&audit(1, AuditStatus::Error))
            .await
            .unwrap()
    );
    assert_eq!(
        store.audit(&[1; 32]).await.unwrap(),
        Some(audit(1, AuditStatus::Error))
    );
    assert!(
        store
            .record_audit(&audit(1, AuditStatus::Failed))
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_audit(&audit(1, AuditStatus::Passed))
            .await
            .unwrap()
    );
    assert_eq!(
        store.audit(&[1; 32]).await.unwrap(),
        Some(audit(1, AuditStatus::Failed))
    );
    assert!(
        store
            .record_audit(&audit(2, AuditStatus::Passed))
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_audit(&audit(2, AuditStatus::Error))
            .await
            .unwrap()
    );
    assert!(
        store
            .record_audit(&audit(3, AuditStatus::Passed))
            .await
            .unwrap()
    );

    assert_eq!(
        store.audits_in_epoch(3).await.unwrap(),
        vec![audit(1, AuditStatus::Failed), audit(2, AuditStatus::Passed)]
    );
    assert_eq!(
        store.audits_in_epoch(4).await.unwrap(),
        vec![audit(3, AuditStatus::Passed)]
    );
    assert_eq!(store.batches_awaiting_audit(10).await.unwrap(), vec![]);
    assert_eq!(store.audit(&[9; 32]).await.unwrap(), None);
    store.close().await;
}

async fn probes_and_probe_tickets(f: &Fixture) {
    let store = f.open().await;
    let probes = [
        probe(1, 7, ProbeStatus::Answered),
        probe(2, 7, ProbeStatus::Timeout),
        probe(3, 7, ProbeStatus::WrongAnswer),
        probe(4, 7, ProbeStatus::Refused),
        probe(5, 8, ProbeStatus::Error),
    ];
    for p in &probes {
        assert!(store.record_probe(p).await.unwrap());
        assert!(!store.record_probe(p).await.unwrap());
    }
    assert_eq!(
        store.probes_in_epoch(7).await.unwrap(),
        probes[..4].to_vec()
    );
    assert_eq!(
        store.probes_in_epoch(8).await.unwrap(),
        probes[4..].to_vec()
    );
    assert_eq!(store.probes_in_epoch(8).await.unwrap()[0].latency_us, None);

    let mut ticket = ProbeTicketRecord {
        ticket: [0x11; 16],
        wallet: [7; 32],
        epoch: 7,
        probes_sent: 3,
        leaves_found: None,
        status: TicketStatus::Open,
        reason: None,
        updated_ms: 1,
    };
    assert!(store.upsert_probe_ticket(&ticket).await.unwrap(), "new");
    assert_eq!(
        store.probe_ticket(&[0x11; 16]).await.unwrap(),
        Some(ticket.clone())
    );
    ticket.probes_sent = 4;
    ticket.leaves_found = Some(2);
    ticket.status = TicketStatus::Missing;
    ticket.reason = Some("2 of 4 leaves".to_owned());
    ticket.updated_ms = 2;
    assert!(
        !store.upsert_probe_ticket(&ticket).await.unwrap(),
        "updated, not new"
    );
    let other = ProbeTicketRecord {
        ticket: [0x01; 16],
        wallet: [8; 32],
        status: TicketStatus::Found,
        leaves_found: Some(1),
        ..ticket.clone()
    };
    assert!(store.upsert_probe_ticket(&other).await.unwrap());
    let third = ProbeTicketRecord {
        ticket: [0x02; 16],
        epoch: 8,
        status: TicketStatus::Error,
        ..ticket.clone()
    };
    assert!(store.upsert_probe_ticket(&third).await.unwrap());
    assert_eq!(
        store.probe_tickets_in_epoch(7).await.unwrap(),
        vec![ticket, other],
        "by wallet"
    );
    assert_eq!(store.probe_tickets_in_epoch(8).await.unwrap(), vec![third]);
    assert_eq!(store.probe_ticket(&[0x99; 16]).await.unwrap(), None);
    store.close().await;
}

async fn objects_are_content_addressed(f: &Fixture) {
    let store = f.open().await;
    let bytes = b"{\"epoch\":1}".to_vec();
    let hash = store.put_object("inputs", &bytes).await.unwrap();
    assert_eq!(hash, object_hash(&bytes));
    assert_eq!(
        hex::encode(object_hash(b"")),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        store.put_object("other", &bytes).await.unwrap(),
        hash,
        "idempotent"
    );
    let got = store.object(&hash).await.unwrap().expect("stored");
    assert_eq!(
        (got.sha256, got.kind.as_str(), got.bytes),
        (hash, "inputs", bytes)
    );
    let empty = store.put_object("empty", b"").await.unwrap();
    assert_eq!(
        store.object(&empty).await.unwrap().expect("stored").bytes,
        b""
    );
    let binary: Vec<u8> = (0..=255).collect();
    let h = store.put_object("binary", &binary).await.unwrap();
    assert_eq!(
        store.object(&h).await.unwrap().expect("stored").bytes,
        binary
    );
    assert_eq!(store.object(&[0; 32]).await.unwrap(), None);
    store.close().await;
}

async fn epoch_reports_and_cursors(f: &Fixture) {
    let store = f.open().await;
    let mut report = EpochReport {
        epoch: 9,
        wallet: [5; 32],
        stats_json: "{\"uptime_score\":10000}".to_owned(),
        inputs_hash: Some([1; 32]),
        tx_signature: None,
        status: ReportStatus::Pending,
        reason: None,
        updated_ms: 10,
    };
    assert!(store.upsert_epoch_report(&report).await.unwrap());
    report.status = ReportStatus::Confirmed;
    report.tx_signature = Some([0xee; 64]);
    report.updated_ms = 11;
    assert!(!store.upsert_epoch_report(&report).await.unwrap());
    let withheld = EpochReport {
        wallet: [2; 32],
        stats_json: "{}".to_owned(),
        inputs_hash: None,
        tx_signature: None,
        status: ReportStatus::Withheld,
        reason: Some("audit failed".to_owned()),
        ..report.clone()
    };
    assert!(store.upsert_epoch_report(&withheld).await.unwrap());
    for status in [ReportStatus::Submitted, ReportStatus::Failed] {
        let r = EpochReport {
            epoch: 10,
            status,
            ..report.clone()
        };
        store.upsert_epoch_report(&r).await.unwrap();
        assert_eq!(store.epoch_reports(10).await.unwrap(), vec![r]);
    }
    assert_eq!(
        store.epoch_reports(9).await.unwrap(),
        vec![withheld, report]
    );
    assert_eq!(store.epoch_reports(11).await.unwrap(), vec![]);

    assert_eq!(store.get_cursor("closed_epoch").await.unwrap(), None);
    store.set_cursor("closed_epoch", 3).await.unwrap();
    store.set_cursor("closed_epoch", 4).await.unwrap();
    store.set_cursor("other", 0).await.unwrap();
    assert_eq!(store.get_cursor("closed_epoch").await.unwrap(), Some(4));
    assert_eq!(store.get_cursor("other").await.unwrap(), Some(0));
    store.close().await;
}

async fn write_all_is_atomic(f: &Fixture) {
    let store = f.open().await;
    // The audit refers to a batch that does not exist: the whole transaction is rolled back.
    let writes = [
        Write::Batch(batch(1, 1, 1, 0, Verdict::Accepted)),
        Write::Cursor {
            name: "n".to_owned(),
            value: 1,
        },
        Write::Audit(audit(2, AuditStatus::Passed)),
    ];
    assert!(matches!(
        store.write_all(&writes).await,
        Err(StoreError::Database {
            op: "write_all",
            ..
        })
    ));
    assert_eq!(store.batch(&[1; 32]).await.unwrap(), None);
    assert_eq!(store.get_cursor("n").await.unwrap(), None);

    let object = b"object".to_vec();
    let writes = [
        Write::Batch(batch(1, 1, 1, 0, Verdict::Accepted)),
        Write::Audit(audit(1, AuditStatus::Passed)),
        Write::Probe(probe(1, 1, ProbeStatus::Answered)),
        Write::Object {
            kind: "k".to_owned(),
            bytes: object.clone(),
        },
        Write::Cursor {
            name: "n".to_owned(),
            value: 1,
        },
        Write::Batch(batch(1, 1, 1, 0, Verdict::Accepted)),
    ];
    assert_eq!(
        store.write_all(&writes).await.unwrap(),
        vec![true, true, true, true, true, false]
    );
    assert_eq!(store.audits_in_epoch(1).await.unwrap().len(), 1);
    assert_eq!(store.probes_in_epoch(1).await.unwrap().len(), 1);
    assert!(store.object(&object_hash(&object)).await.unwrap().is_some());
    assert_eq!(store.get_cursor("n").await.unwrap(), Some(1));
    store.close().await;
}

async fn reopen_keeps_data_and_migrations_are_idempotent(f: &Fixture) {
    let store = f.open().await;
    assert_eq!(store.schema_version().await.unwrap(), 2);
    let b = batch(1, 1, 1, 0, Verdict::Accepted);
    store.insert_batch(&b).await.unwrap();
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(store.batch(&b.batch_id).await.unwrap(), Some(b.clone()));
    store.close().await;
    assert!(
        matches!(
            store.batch(&b.batch_id).await,
            Err(StoreError::Database { op: "batch", .. })
        ),
        "a closed store refuses operations"
    );

    let reopened = f.open().await;
    assert_eq!(reopened.schema_version().await.unwrap(), 2);
    assert_eq!(reopened.batch(&b.batch_id).await.unwrap(), Some(b.clone()));
    assert!(!reopened.insert_batch(&b).await.unwrap());
    reopened.close().await;
    // Two stores on one database at once (for example, a restarted watcher while the old
    // one still shuts down): both see the same rows.
    let (a, c) = (f.open().await, f.open().await);
    assert_eq!(
        a.batch(&b.batch_id).await.unwrap(),
        c.batch(&b.batch_id).await.unwrap()
    );
    a.close().await;
    c.close().await;
}

async fn concurrent_inserts_of_one_batch(f: &Fixture) {
    let store = f.open().await;
    let (first, second) = (f.open().await, store.clone());
    for id in 0..20u8 {
        let b = batch(id, 1, 1, u64::from(id) * 60_000, Verdict::Accepted);
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let tasks = [first.clone(), second.clone()].map(|s| {
            let (b, barrier) = (b.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                s.insert_batch(&b).await
            })
        });
        let mut new = 0;
        for t in tasks {
            if t.await.expect("task").expect("insert") {
                new += 1;
            }
        }
        assert_eq!(new, 1, "batch {id}: exactly one insert is new");
    }
    assert_eq!(store.batches_in_epoch(1).await.unwrap().len(), 20);
    first.close().await;
    store.close().await;
}

async fn observer_sees_every_operation(f: &Fixture) {
    type Seen = BTreeMap<(&'static str, bool), usize>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let sink = seen.clone();
    let store = f
        .open()
        .await
        .with_result_observer(Arc::new(move |op, _duration, ok| {
            *sink.lock().expect("lock").entry((op, ok)).or_default() += 1;
        }));
    store
        .insert_batch(&batch(1, 1, 1, 0, Verdict::Accepted))
        .await
        .unwrap();
    store
        .insert_batch(&batch(1, 1, 1, 0, Verdict::Accepted))
        .await
        .unwrap();
    store.batch(&[1; 32]).await.unwrap();
    store.put_object("k", b"x").await.unwrap();
    let _ = store.batches_in_epoch(u64::MAX).await;
    let _ = store.record_audit(&audit(9, AuditStatus::Passed)).await;
    store.close().await;
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(
        seen,
        BTreeMap::from([
            (("batch", true), 1),
            (("batches_in_epoch", false), 1),
            (("close", true), 1),
            (("insert_batch", true), 2),
            (("put_object", true), 1),
            (("record_audit", false), 1),
        ]),
        "failed operations are measured too"
    );

    // The duration-only observer.
    let count = Arc::new(Mutex::new(Vec::new()));
    let sink = count.clone();
    let store = f.open().await.with_observer(Arc::new(move |op, duration| {
        sink.lock().expect("lock").push((op, duration));
    }));
    store.get_cursor("x").await.unwrap();
    store.close().await;
    let count = count.lock().expect("lock").clone();
    assert_eq!(
        count.iter().map(|(op, _)| *op).collect::<Vec<_>>(),
        ["get_cursor", "close"]
    );
    assert!(count.iter().all(|(_, d)| *d > std::time::Duration::ZERO));
}

async fn altered_rows_are_typed_errors(f: &Fixture) {
    let store = f.open().await;
    store
        .insert_batch(&batch(1, 1, 1, 0, Verdict::Accepted))
        .await
        .unwrap();
    store
        .insert_batch(&batch(2, 1, 2, 0, Verdict::Accepted))
        .await
        .unwrap();
    store.set_cursor("c", 1).await.unwrap();
    // Altered behind the store's back: a negative u64, a short key.
    f.raw("UPDATE cursors SET value = -1").await;
    f.raw("UPDATE batches SET operator_key = wallet, wallet = batch_id WHERE epoch = 2")
        .await;
    f.raw("UPDATE batches SET operator_key = substr(operator_key, 1, 31) WHERE epoch = 1")
        .await;
    let corrupt = |r: Result<(), StoreError>| match r {
        Err(StoreError::Corrupt { table, column, .. }) => (table, column),
        other => panic!("expected Corrupt, got {other:?}"),
    };
    assert_eq!(
        corrupt(store.get_cursor("c").await.map(|_| ())),
        ("cursors", "value")
    );
    assert_eq!(
        corrupt(store.batches_in_epoch(1).await.map(|_| ())),
        ("batches", "operator_key")
    );
    let err = store.batch(&[1; 32]).await.unwrap_err();
    assert!(err.to_string().contains("31 bytes, expected 32"), "{err}");
    assert!(
        store.batch(&[2; 32]).await.unwrap().is_some(),
        "swapped keys still decode"
    );
    store.close().await;
}

const CRASH_URL_ENV: &str = "TOLLDNS_STORE_CRASH_URL";

/// Run by `killed_writer_leaves_whole_transactions` in a child process (ignored otherwise):
/// commits write groups (a batch, its audit, a probe and the cursor = group number) forever,
/// printing each group number after its commit.
#[tokio::test]
#[ignore = "child process of killed_writer_leaves_whole_transactions"]
async fn crash_writer() {
    let url = std::env::var(CRASH_URL_ENV).expect("run by killed_writer_leaves_whole_transactions");
    let store = Store::open(&url).await.expect("open");
    for n in 1u64.. {
        let id = n.to_be_bytes();
        let mut b = batch(0, 1, 1, n * 60_000, Verdict::Accepted);
        b.batch_id[..8].copy_from_slice(&id);
        let mut a = audit(0, AuditStatus::Passed);
        a.batch_id = b.batch_id;
        let mut p = probe(0, 1, ProbeStatus::Answered);
        p.probe_id[..8].copy_from_slice(&id);
        store
            .write_all(&[
                Write::Batch(b),
                Write::Audit(a),
                Write::Probe(p),
                Write::Cursor {
                    name: "groups".to_owned(),
                    value: n,
                },
            ])
            .await
            .expect("write group");
        println!("committed {n}");
    }
}

async fn killed_writer_leaves_whole_transactions(f: &Fixture) {
    // Create the schema first so the child starts writing at once.
    f.open().await.close().await;
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--ignored",
            "--exact",
            "crash_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_URL_ENV, &f.url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn writer");
    let stdout = child.stdout.take().expect("stdout");
    // Keep reading end open until the writer is killed, so it dies writing, not on a closed
    // pipe.
    let mut lines = BufReader::new(stdout).lines();
    let mut last = 0u64;
    for line in lines.by_ref() {
        let line = line.expect("read child output");
        if let Some(n) = line.strip_prefix("committed ") {
            last = n.parse().expect("group number");
            if last >= 40 {
                break;
            }
        }
    }
    assert!(last >= 40, "the writer stopped early after {last} groups");
    child.kill().expect("SIGKILL the writer");
    child.wait().expect("reap the writer");
    drop(lines);

    let store = f.open().await;
    let groups = store
        .get_cursor("groups")
        .await
        .unwrap()
        .expect("cursor set");
    assert!(
        groups >= last,
        "a committed group was lost ({groups} < {last})"
    );
    let n = usize::try_from(groups).expect("small");
    assert_eq!(store.batches_in_epoch(1).await.unwrap().len(), n);
    assert_eq!(store.audits_in_epoch(1).await.unwrap().len(), n);
    assert_eq!(store.probes_in_epoch(1).await.unwrap().len(), n);
    store.close().await;
}

#[tokio::test]
async fn sqlite_file_is_created_in_wal_mode() {
    let f = Fixture::sqlite("wal");
    let path = f.dir.as_ref().expect("dir").join("store.db");
    assert!(!path.exists());
    let store = f.open().await;
    assert_eq!(store.backend(), Backend::Sqlite);
    store.set_cursor("x", 1).await.unwrap();
    assert!(path.exists(), "database file created");
    assert!(
        path.with_extension("db-wal").exists(),
        "write-ahead log in use"
    );
    store.close().await;
    f.cleanup().await;
}

#[tokio::test]
async fn in_memory_store_is_one_database() {
    let store = Store::open("sqlite::memory:").await.expect("open");
    let clone = store.clone();
    store.set_cursor("x", 5).await.unwrap();
    assert_eq!(clone.get_cursor("x").await.unwrap(), Some(5));
    store.close().await;
}

#[tokio::test]
async fn bad_urls_are_typed_errors_without_passwords() {
    let err = Store::open("mysql://user:hunter2@localhost/db")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnsupportedUrl { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        !message.contains("hunter2") && message.contains("user:***@localhost"),
        "{message}"
    );
    let err = Store::open("sqlite:///nonexistent-dir/x/y/store.db")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Open {
                backend: Backend::Sqlite,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn postgres_backend_is_reported() {
    let Some(f) = Fixture::postgres("backend").await else {
        return;
    };
    let store = f.open().await;
    assert_eq!(store.backend(), Backend::Postgres);
    store.close().await;
    f.cleanup().await;
}

#[tokio::test]
async fn sqlite_opens_any_path() {
    let f = Fixture::sqlite("path");
    let path = f
        .dir
        .as_ref()
        .expect("dir")
        .join("a dir?#%")
        .join("store.db");
    std::fs::create_dir_all(path.parent().expect("parent")).expect("create dir");
    let store = Store::open_sqlite(&path).await.expect("open");
    store.set_cursor("x", 7).await.unwrap();
    store.close().await;
    assert!(path.exists());
    let store = Store::open_sqlite(&path).await.expect("reopen");
    assert_eq!(store.get_cursor("x").await.unwrap(), Some(7));
    store.close().await;
    f.cleanup().await;
}
