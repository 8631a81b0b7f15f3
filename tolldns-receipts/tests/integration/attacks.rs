//! Every attack of issue 10's "Why" against format v1, replayed against v2: each is refused
//! with its own error. Plus the other side of the bound: honest operators raise no alarm and
//! lose no work.
//!
//! The operator here is an adversary holding its own signing key: it signs whatever body it
//! likes over whatever tree it likes ([`Forged`]), and answers audits from that tree.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tolldns_core::{BackendId, WindowId, WindowLen};
use tolldns_receipts::*;

use crate::common::*;
use crate::vectors_gen::signing_key;
use crate::vectors_v2_gen::{
    Forged, RECEIPT_SLOT, RECEIPT_TIMESTAMP_MS, RECEIVED_MS, WINDOW_END_MS, WINDOW_START_MS, header,
};

/// The sample size of the deployment: 99 % confidence of catching 10 % fakes.
const K: u64 = 44;

/// What an honest window looks like.
#[derive(Clone, Copy, Debug)]
struct Shares {
    success: f64,
    cache: f64,
    ticketed: f64,
    mean_bytes: u32,
}

const TYPICAL: Shares = Shares {
    success: 0.8,
    cache: 0.6,
    ticketed: 0.9,
    mean_bytes: 300,
};

/// The tickets of the honest clients' tokens (a lookup finds a valid token for each).
fn token_tickets(rng: &mut StdRng, n: usize) -> Vec<[u8; 16]> {
    (0..n).map(|_| rng.r#gen()).collect()
}

/// `n` honest leaves in the vectors' window, in arrival order.
fn honest_leaves(rng: &mut StdRng, n: usize, s: Shares, tickets: &[[u8; 16]]) -> Vec<Leaf> {
    const ERRORS: [RcodeClass; 4] = [
        RcodeClass::Servfail,
        RcodeClass::Nxdomain,
        RcodeClass::Nodata,
        RcodeClass::Refused,
    ];
    (0..n)
        .map(|_| {
            let cache = rng.gen_bool(s.cache);
            Leaf {
                timestamp_ms: WINDOW_START_MS + rng.gen_range(0..60_000),
                transport: Transport::Udp,
                qtype: 1,
                rcode_class: if rng.gen_bool(s.success) {
                    RcodeClass::NoError
                } else {
                    ERRORS[rng.gen_range(0..ERRORS.len())]
                },
                work_class: if cache {
                    WorkClass::CacheHit
                } else {
                    WorkClass::CacheMiss
                },
                flags: LeafFlags {
                    cache_hit: cache,
                    ..LeafFlags::default()
                },
                latency: LatencyBucket::from_millis(rng.gen_range(0..300)),
                response_bytes: rng.gen_range(0..=2 * s.mean_bytes).min(MAX_RESPONSE_BYTES),
                name_hash: rng.r#gen(),
                ticket: if rng.gen_bool(s.ticketed) {
                    tickets[rng.gen_range(0..tickets.len())]
                } else {
                    [0; 16]
                },
                response_summary_hash: rng.r#gen(),
                repeat: 0,
            }
        })
        .collect()
}

fn seal(leaves: Vec<Leaf>) -> ClosedBatch {
    ClosedBatch::seal(
        &header(),
        leaves,
        crate::vectors_gen::name_key().commitment(),
        RECEIPT_TIMESTAMP_MS,
        &signing_key(),
    )
    .unwrap()
}

/// An audit seed for trial `i`.
fn seed(i: u64) -> [u8; 32] {
    let mut s = [0xa7; 32];
    s[..8].copy_from_slice(&i.to_le_bytes());
    s
}

fn sample_of(r: &Receipt, seed: &[u8; 32], k: u64) -> AuditSample {
    let i = &r.body.integrity;
    AuditSample::new(seed, &i.merkle_root, i.leaf_count, k)
}

fn resign(r: &Receipt, f: impl FnOnce(&mut ReceiptBody)) -> Receipt {
    let mut body = r.body.clone();
    f(&mut body);
    body.sign(&signing_key()).unwrap()
}

// ---------------------------------------------------------------------------------------------
// (a) A window of invented, well-formed leaves.

#[test]
fn invented_leaves_with_made_up_tickets_are_refused_by_the_token_lookup() {
    let mut rng = StdRng::seed_from_u64(0xa1);
    // The operator invents 1,000 leaves: random names, random "tickets" no client ever bought.
    let made_up = token_tickets(&mut rng, 1_000);
    let invented = honest_leaves(
        &mut rng,
        1_000,
        Shares {
            ticketed: 1.0,
            ..TYPICAL
        },
        &made_up,
    );
    let batch = seal(invented);
    let r = batch.receipt();
    let (registry, policies, ledger) = (active(), policy7(), Ledger::default());
    // The receipt itself is well-formed: every receipt-level rule passes.
    let v = Verifier::new(deployment(), &registry, &policies, &ledger);
    assert_eq!(v.verify(r, RECEIVED_MS), Ok(()));
    let sample = sample_of(r, &seed(0), K);
    let answers = batch.answer(&sample).unwrap();
    let first = sample.indices()[0];
    // The issuer never issued these tokens: the lookup finds none.
    let no_tokens = TicketCheckDouble::default();
    let v_lookup =
        Verifier::new(deployment(), &registry, &policies, &ledger).with_tickets(&no_tokens);
    assert_eq!(
        v_lookup.verify_with_audit(r, RECEIVED_MS, &sample, &answers),
        Err(VerifyError::TicketNotRedeemed { index: first })
    );
    // The operator made up tokens too: they do not verify under any issuer key.
    let forged_tokens = TicketCheckDouble {
        known: made_up
            .iter()
            .map(|t| (*t, TicketStatus::Invalid))
            .collect(),
    };
    let v_forged =
        Verifier::new(deployment(), &registry, &policies, &ledger).with_tickets(&forged_tokens);
    assert_eq!(
        v_forged.verify_with_audit(r, RECEIVED_MS, &sample, &answers),
        Err(VerifyError::TokenInvalid { index: first })
    );
    // Without a lookup, a ticketed sample cannot be accepted either.
    assert_eq!(
        v.verify_with_audit(r, RECEIVED_MS, &sample, &answers),
        Err(VerifyError::TicketNotChecked { index: first })
    );
    assert_eq!(
        VerifyError::TicketNotRedeemed { index: 0 }.name(),
        "ticket_not_redeemed"
    );
}

#[test]
fn invented_leaves_without_tickets_are_refused_when_the_deployment_requires_tickets() {
    let mut rng = StdRng::seed_from_u64(0xa2);
    let invented = honest_leaves(
        &mut rng,
        1_000,
        Shares {
            ticketed: 0.0,
            ..TYPICAL
        },
        &[[1; 16]],
    );
    let batch = seal(invented);
    let r = batch.receipt();
    assert_eq!(r.body.v2.as_ref().unwrap().ticketed_leaf_count, 0);
    let (registry, policies, ledger) = (active(), policy7(), Ledger::default());
    let strict = deployment().with_require_tickets(true);
    let v = Verifier::new(strict, &registry, &policies, &ledger).with_tickets(&AcceptAllTickets);
    for i in 0..20 {
        let sample = sample_of(r, &seed(i), K);
        let answers = batch.answer(&sample).unwrap();
        assert_eq!(
            v.verify_with_audit(r, RECEIVED_MS, &sample, &answers),
            Err(VerifyError::UnticketedLeaf {
                index: sample.indices()[0]
            })
        );
    }
    // This is the deployment switch that closes the hole: a deployment that accepts
    // unticketed leaves has nothing in a sample of them to refuse.
    let lax = Verifier::new(deployment(), &registry, &policies, &ledger);
    let sample = sample_of(r, &seed(0), K);
    assert!(
        lax.verify_with_audit(r, RECEIVED_MS, &sample, &batch.answer(&sample).unwrap())
            .is_ok()
    );
}

/// 10 % invented leaves (made-up tickets) among honest ones: k = 44 catches the window in
/// ≥ 98.5 % of audits (exactly 1 − C(900, 44)/C(1000, 44) ≈ 99.1 %).
#[test]
fn ten_percent_invented_leaves_are_caught_by_44_samples() {
    let mut rng = StdRng::seed_from_u64(0xa3);
    let real = token_tickets(&mut rng, 50);
    let made_up = token_tickets(&mut rng, 100);
    let mut leaves = honest_leaves(
        &mut rng,
        900,
        Shares {
            ticketed: 1.0,
            ..TYPICAL
        },
        &real,
    );
    leaves.extend(honest_leaves(
        &mut rng,
        100,
        Shares {
            ticketed: 1.0,
            ..TYPICAL
        },
        &made_up,
    ));
    let batch = seal(leaves);
    let r = batch.receipt();
    let lookup = TicketCheckDouble::valid(real);
    let (registry, policies, ledger) = (active(), policy7(), Ledger::default());
    let v = Verifier::new(deployment(), &registry, &policies, &ledger).with_tickets(&lookup);
    assert_eq!(v.verify(r, RECEIVED_MS), Ok(()));
    let trials = 400u64;
    let mut caught = 0u64;
    for i in 0..trials {
        let sample = sample_of(r, &seed(i), K);
        match v.check_audit(r, &sample, &batch.answer(&sample).unwrap()) {
            Err(VerifyError::TicketNotRedeemed { .. }) => caught += 1,
            Ok(_) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    let rate = caught as f64 / trials as f64;
    println!("invented 10 %: caught {caught}/{trials} = {rate:.4}");
    assert!(rate >= 0.985, "{rate}");
}

// ---------------------------------------------------------------------------------------------
// (b) Every real leaf committed three times.

fn tripled(leaves: &[Leaf], repeat_of_copy: impl Fn(&Leaf, u16) -> u16) -> Vec<Leaf> {
    let f = &repeat_of_copy;
    leaves
        .iter()
        .flat_map(|l| {
            (0..3u16).map(move |c| Leaf {
                repeat: f(l, c),
                ..*l
            })
        })
        .collect()
}

#[test]
fn every_leaf_committed_three_times_is_caught_by_every_audit() {
    let mut rng = StdRng::seed_from_u64(0xb1);
    let tickets = token_tickets(&mut rng, 50);
    let honest = seal(honest_leaves(&mut rng, 1_000, TYPICAL, &tickets));
    // Copies adjacent, each with the real leaf's repeat: a body consistent with the 3,000
    // leaves (summary, counts, sketch), signed by the operator.
    let f = Forged::new(
        &header(),
        tripled(honest.leaves(), |l, _| l.repeat),
        &signing_key(),
        |_| {},
    );
    let r = &f.receipt;
    assert_eq!(r.body.integrity.leaf_count, 3_000);
    assert_eq!(r.body.service_summary.request_count, 3_000);
    let (registry, policies, ledger) = (active(), policy7(), Ledger::default());
    let v =
        Verifier::new(deployment(), &registry, &policies, &ledger).with_tickets(&AcceptAllTickets);
    assert_eq!(v.verify(r, RECEIVED_MS), Ok(()));
    // Each sampled leaf is a first or second copy with probability 2/3, and its neighbour is
    // then an equal leaf: a sample of 44 misses with probability < (1/3)^44 ≈ 1e-21.
    for i in 0..200 {
        let sample = f.sample(&seed(i), K);
        let e = v.check_audit(r, &sample, &f.answer(&sample)).unwrap_err();
        assert!(
            matches!(e, VerifyError::LeavesOutOfOrder { index } if index % 3 != 2),
            "seed {i}: {e:?}"
        );
        assert_eq!(e.name(), "leaves_out_of_order");
    }
    // Without neighbours the copies would be invisible: the sampled leaves alone all verify.
    let sample = f.sample(&seed(0), K);
    for a in f.answer(&sample) {
        assert_eq!(verify_leaf_proof(r, &a.leaf), Ok(()));
    }
}

#[test]
fn copies_renumbered_inconsistently_are_caught_by_the_repeat_rule() {
    let mut rng = StdRng::seed_from_u64(0xb2);
    let tickets = token_tickets(&mut rng, 50);
    let honest = seal(honest_leaves(&mut rng, 1_000, TYPICAL, &tickets));
    // Copies numbered repeat r, r + 2, r + 4: strictly ordered, but not counted 0, 1, 2; the
    // body claims no repeats (counted honestly, 2,000 of 3,000 would exceed the bound).
    let f = Forged::new(
        &header(),
        tripled(honest.leaves(), |l, c| l.repeat + 2 * c),
        &signing_key(),
        |b| b.v2.as_mut().unwrap().ticketed_repeat_count = 0,
    );
    let (registry, policies, ledger) = (active(), policy7(), Ledger::default());
    let v =
        Verifier::new(deployment(), &registry, &policies, &ledger).with_tickets(&AcceptAllTickets);
    assert_eq!(v.verify(&f.receipt, RECEIVED_MS), Ok(()));
    for i in 0..200 {
        let sample = f.sample(&seed(i), K);
        let e = v
            .check_audit(&f.receipt, &sample, &f.answer(&sample))
            .unwrap_err();
        assert!(
            matches!(e, VerifyError::RepeatMismatch { .. }),
            "seed {i}: {e:?}"
        );
        assert_eq!(e.name(), "repeat_mismatch");
    }
    // Another answer's leaf with a non-zero repeat is refused the same way.
    let mut leaves = honest.leaves().to_vec();
    let at = leaves
        .windows(2)
        .position(|w| !w[0].same_answer(&w[1]))
        .unwrap()
        + 1;
    leaves[at].repeat = 1;
    let f = Forged::new(&header(), leaves, &signing_key(), |_| {});
    let sample = AuditSample::new(
        &seed(0),
        &f.receipt.body.integrity.merkle_root,
        1_000,
        1_000,
    );
    assert_eq!(
        v.check_audit(&f.receipt, &sample, &f.answer(&sample)),
        Err(VerifyError::RepeatMismatch {
            index: at as u64 - 1
        })
    );
}

/// Copies numbered like client retries (0, 1, 2, the honest numbering of identical answers in
/// one millisecond) pass the order and repeat rules; the ticketed repeat count catches them:
/// counted honestly, a tripled window is two-thirds repeats, over the deployment's bound;
/// counted low, the sample's repeats disagree with the claim.
#[test]
fn copies_numbered_like_retries_are_caught_by_the_repeat_count() {
    let mut rng = StdRng::seed_from_u64(0xb3);
    let tickets = token_tickets(&mut rng, 50);
    let honest = seal(honest_leaves(&mut rng, 1_000, TYPICAL, &tickets));
    assert!(honest.leaves().iter().all(|l| l.repeat == 0));
    let ticketed = honest.leaves().iter().filter(|l| l.is_ticketed()).count() as u64;
    let copies = tripled(honest.leaves(), |_, c| c);
    let (registry, policies, ledger) = (active(), policy7(), Ledger::default());
    let v =
        Verifier::new(deployment(), &registry, &policies, &ledger).with_tickets(&AcceptAllTickets);
    // Counted honestly: two ticketed repeats per ticketed leaf, far over 100 permille.
    let counted = Forged::new(&header(), copies.clone(), &signing_key(), |_| {});
    let c2 = counted.receipt.body.v2.as_ref().unwrap();
    assert_eq!(c2.ticketed_repeat_count, 2 * ticketed);
    assert_eq!(c2.ticketed_leaf_count, 3 * ticketed);
    let e = v.verify(&counted.receipt, RECEIVED_MS).unwrap_err();
    assert_eq!(e, VerifyError::TooManyRepeats);
    assert_eq!(e.name(), "too_many_repeats");
    // Counted as none: every audit samples ticketed repeats (a miss needs 44 leaves that are
    // first copies or unticketed, about 0.4^44).
    let hidden = Forged::new(&header(), copies.clone(), &signing_key(), |b| {
        b.v2.as_mut().unwrap().ticketed_repeat_count = 0;
    });
    assert_eq!(v.verify(&hidden.receipt, RECEIVED_MS), Ok(()));
    // Counted at the most the bound allows (100 permille of the ticketed leaves): the
    // sample's share of repeats, about 0.6, is far from the claimed 0.09.
    let at_bound = Forged::new(&header(), copies, &signing_key(), |b| {
        let v2 = b.v2.as_mut().unwrap();
        v2.ticketed_repeat_count = v2.ticketed_leaf_count / 10;
    });
    assert_eq!(v.verify(&at_bound.receipt, RECEIVED_MS), Ok(()));
    for f in [&hidden, &at_bound] {
        for i in 0..40 {
            let sample = f.sample(&seed(i), K);
            assert_eq!(
                v.check_audit(&f.receipt, &sample, &f.answer(&sample)),
                Err(VerifyError::SummaryDisagrees {
                    stat: SummaryStat::Repeat
                })
            );
        }
    }
}

/// What repeats still allow, by design: the bound covers ticketed leaves only (an unticketed
/// leaf proves nothing about a client: an operator could as well invent it), and up to
/// `max_repeat_permille` (100) of the ticketed leaves, or 16 per receipt, may be repeats. So
/// copying every unticketed leaf passes, and so does adding copies of a tenth of the ticketed
/// leaves; `AuditReport::repeats` shows them (0 for the honest window). This pins the residual
/// inflation the format accepts: +10 % of ticketed leaves at most.
#[test]
fn residual_repeats_within_the_bound_pass() {
    let mut rng = StdRng::seed_from_u64(0xb4);
    let tickets = token_tickets(&mut rng, 50);
    let honest = seal(honest_leaves(&mut rng, 1_000, TYPICAL, &tickets));
    let ticketed = honest.leaves().iter().filter(|l| l.is_ticketed()).count() as u64;
    let (registry, policies, ledger) = (active(), policy7(), Ledger::default());
    let v =
        Verifier::new(deployment(), &registry, &policies, &ledger).with_tickets(&AcceptAllTickets);
    // Every unticketed leaf twice, every tenth ticketed leaf twice.
    let mut nth_ticketed = 0u64;
    let padded: Vec<Leaf> = honest
        .leaves()
        .iter()
        .flat_map(|l| {
            let copy = if l.is_ticketed() {
                nth_ticketed += 1;
                nth_ticketed % 10 == 0
            } else {
                true
            };
            let mut v = vec![*l];
            if copy {
                v.push(Leaf { repeat: 1, ..*l });
            }
            v
        })
        .collect();
    let f = Forged::new(&header(), padded, &signing_key(), |_| {});
    let v2 = f.receipt.body.v2.as_ref().unwrap();
    assert_eq!(v2.ticketed_repeat_count, ticketed / 10);
    assert_eq!(v2.ticketed_leaf_count, ticketed + ticketed / 10);
    assert_eq!(v.verify(&f.receipt, RECEIVED_MS), Ok(()));
    let mut repeats = 0;
    for i in 0..30 {
        let sample = f.sample(&seed(i), K);
        let report = v
            .check_audit(&f.receipt, &sample, &f.answer(&sample))
            .unwrap();
        repeats += report.repeats;
        let honest_sample = sample_of(honest.receipt(), &seed(i), K);
        let honest_report = v
            .check_audit(
                honest.receipt(),
                &honest_sample,
                &honest.answer(&honest_sample).unwrap(),
            )
            .unwrap();
        assert_eq!(honest_report.repeats, 0);
    }
    // About (100 + 81) / 1,181 of 30 x 44 sampled leaves are repeats.
    assert!((120..300).contains(&repeats), "{repeats}");
    // A deployment that requires tickets leaves no room for the unticketed copies.
    let strict = deployment().with_require_tickets(true);
    let vs = Verifier::new(strict, &registry, &policies, &ledger).with_tickets(&AcceptAllTickets);
    let sample = f.sample(&seed(0), K);
    assert!(matches!(
        vs.check_audit(&f.receipt, &sample, &f.answer(&sample)),
        Err(VerifyError::UnticketedLeaf { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// (c) The same root re-signed under another backend or window length.

#[test]
fn the_same_root_under_another_backend_overlaps_the_accepted_receipt() {
    let mut rng = StdRng::seed_from_u64(0xc1);
    let tickets = token_tickets(&mut rng, 50);
    let batch = seal(honest_leaves(&mut rng, 200, TYPICAL, &tickets));
    let r = batch.receipt().clone();
    let registry = Registry {
        status: OperatorStatus::Active,
        backends: Some(vec!["edge-ingress".into(), "edge-ingress-2".into()]),
    };
    let (policies, ledger) = (policy7(), Ledger::default());
    let v = Verifier::new(deployment(), &registry, &policies, &ledger);
    assert_eq!(v.verify(&r, RECEIVED_MS), Ok(()));
    ledger.accept(&r);
    // Submitted again, or re-signed for the operator's other (registered) backend.
    assert_eq!(
        v.verify(&r, RECEIVED_MS),
        Err(VerifyError::OverlappingReceipt)
    );
    let other_backend = resign(&r, |b| {
        b.backend_id = BackendId::new("edge-ingress-2").unwrap()
    });
    assert_eq!(other_backend.verify_signature(), Ok(()));
    assert_eq!(
        v.verify(&other_backend, RECEIVED_MS),
        Err(VerifyError::OverlappingReceipt)
    );
    assert_eq!(
        VerifyError::OverlappingReceipt.name(),
        "overlapping_receipt"
    );
    // Under a backend that is not registered to the operator at all.
    let unregistered = resign(&r, |b| {
        b.backend_id = BackendId::new("edge-ingress-3").unwrap()
    });
    assert_eq!(
        v.verify(&unregistered, RECEIVED_MS),
        Err(VerifyError::UnregisteredBackend)
    );
    // The crate's own ledger (AcceptedWindows) has the same overlap semantics as this double.
    let mut accepted = AcceptedWindows::new();
    assert!(accepted.record(&r));
    let v_accepted = Verifier::new(deployment(), &registry, &policies, &accepted);
    assert_eq!(
        v_accepted.verify(&other_backend, RECEIVED_MS),
        Err(VerifyError::OverlappingReceipt)
    );
    // The next window of the operator does not overlap: honest receipts keep flowing.
    let next = resign(&r, |b| {
        b.window_id = WindowId(b.window_id.get() + 1);
        b.timestamp_ms += 60_000;
    });
    assert_eq!(v.verify(&next, RECEIVED_MS + 60_000), Ok(()));
    assert_eq!(v_accepted.verify(&next, RECEIVED_MS + 60_000), Ok(()));
}

#[test]
fn the_same_root_under_another_window_length_is_refused() {
    let mut rng = StdRng::seed_from_u64(0xc2);
    let tickets = token_tickets(&mut rng, 50);
    let batch = seal(honest_leaves(&mut rng, 200, TYPICAL, &tickets));
    let r = batch.receipt().clone();
    let (registry, policies, ledger) = (active(), policy7(), Ledger::default());
    let v = Verifier::new(deployment(), &registry, &policies, &ledger);
    ledger.accept(&r);
    for secs in [30u32, 120, 300, 3_600] {
        let len = WindowLen::new(secs).unwrap();
        let longer = resign(&r, |b| {
            b.window_len = len;
            b.window_id = WindowId::containing(WINDOW_START_MS, len);
        });
        assert_eq!(
            v.verify(&longer, RECEIVED_MS),
            Err(VerifyError::WindowLenNotDeployment { window_len_s: secs })
        );
    }
    // A ledger with time ranges refuses overlaps whatever the windows' lengths: a 120-second
    // receipt accepted under a deployment of 120-second windows covers this 60-second window.
    let ledger = Ledger::default();
    ledger.record_range(&r.body.operator_id, WINDOW_START_MS - 60_000, WINDOW_END_MS);
    let v = Verifier::new(deployment(), &registry, &policies, &ledger);
    assert_eq!(
        v.verify(&r, RECEIVED_MS),
        Err(VerifyError::OverlappingReceipt)
    );
}

// ---------------------------------------------------------------------------------------------
// (d) Summaries that claim more than the leaves hold.

#[test]
fn a_summary_claiming_two_to_the_64_bytes_is_refused() {
    let mut rng = StdRng::seed_from_u64(0xd1);
    let tickets = token_tickets(&mut rng, 50);
    let batch = seal(honest_leaves(&mut rng, 100, TYPICAL, &tickets));
    let r = batch.receipt();
    assert!(r.body.service_summary.bytes_served_total < 100 * 600);
    let (registry, policies, ledger) = (active(), policy7(), Ledger::default());
    let v = Verifier::new(deployment(), &registry, &policies, &ledger);
    let inflated = resign(r, |b| b.service_summary.bytes_served_total = u64::MAX);
    assert_eq!(
        v.verify(&inflated, RECEIVED_MS),
        Err(VerifyError::BytesExceedMaximum)
    );
    assert_eq!(
        VerifyError::BytesExceedMaximum.name(),
        "bytes_exceed_maximum"
    );
    // At the bound the receipt passes the count rules, and the audit's mean test refuses it.
    let at_bound = resign(r, |b| b.service_summary.bytes_served_total = 100 * 65_535);
    assert_eq!(v.verify(&at_bound, RECEIVED_MS), Ok(()));
    let v = v.with_tickets(&AcceptAllTickets);
    for i in 0..20 {
        let sample = sample_of(&at_bound, &seed(i), K);
        assert_eq!(
            v.check_audit(&at_bound, &sample, &batch.answer(&sample).unwrap()),
            Err(VerifyError::SummaryDisagrees {
                stat: SummaryStat::MeanBytes
            })
        );
    }
}

/// Inflated shares over honest leaves, each refused with the statistic it inflates.
#[test]
fn inflated_shares_are_refused_with_the_stat_named() {
    let mut rng = StdRng::seed_from_u64(0xd2);
    let tickets = token_tickets(&mut rng, 50);
    let real = Shares {
        success: 0.5,
        cache: 0.4,
        ticketed: 0.5,
        mean_bytes: 300,
    };
    let n = 2_000u64;
    let batch = seal(honest_leaves(&mut rng, n as usize, real, &tickets));
    let r = batch.receipt();
    let (registry, policies, ledger) = (active(), policy7(), Ledger::default());
    let v =
        Verifier::new(deployment(), &registry, &policies, &ledger).with_tickets(&AcceptAllTickets);
    type Edit = fn(&mut ReceiptBody, u64);
    let attacks: [(SummaryStat, Edit); 5] = [
        // 98 % successes claimed (errors lowered to match, error classes dropped).
        (SummaryStat::Success, |b, n| {
            b.service_summary.success_count = n * 98 / 100;
            b.service_summary.error_count = n - n * 98 / 100;
            b.service_summary.error_class_counts = ClassCounts::new();
        }),
        // 2 % errors claimed, successes left alone.
        (SummaryStat::Error, |b, n| {
            b.service_summary.error_count = n * 2 / 100;
            b.service_summary.error_class_counts = ClassCounts::new();
        }),
        // 95 % cache hits claimed.
        (SummaryStat::Cache, |b, n| {
            b.service_summary.served_from_cache_count = n * 95 / 100;
        }),
        // 99 % ticketed claimed (what the diversity score would reward).
        (SummaryStat::Ticketed, |b, n| {
            b.v2.as_mut().unwrap().ticketed_leaf_count = n * 99 / 100;
        }),
        // Mean response of 30,000 bytes claimed.
        (SummaryStat::MeanBytes, |b, n| {
            b.service_summary.bytes_served_total = n * 30_000;
        }),
    ];
    // With k = 44 and the 8e-8 tail bound, each of these escapes an audit with probability
    // < 2e-4 (exact binomial: 1.9e-4, 1.9e-4, 1.5e-4, 1.3e-5, 0): every trial must catch it.
    let trials = 60u64;
    for (stat, edit) in attacks {
        let forged = resign(r, |b| edit(b, n));
        assert_eq!(v.verify(&forged, RECEIVED_MS), Ok(()), "{stat:?}");
        for i in 0..trials {
            let sample = sample_of(&forged, &seed(i), K);
            let answers = batch.answer(&sample).unwrap();
            let e = v.check_audit(&forged, &sample, &answers).unwrap_err();
            assert_eq!(e, VerifyError::SummaryDisagrees { stat }, "seed {i}");
            assert_eq!(e.name(), "summary_disagrees");
            // The restated rule agrees with the verifier.
            let sampled: Vec<Leaf> = answers.iter().map(|a| a.leaf.leaf).collect();
            assert_eq!(summary_alarm(&forged, &sampled), Some(stat));
        }
    }
}

/// The other side of a false-alarm rate of 1e-6: with k = 44 the summary rule catches gross
/// inflation only. Measured with the restated rule on 4,000 random samples per case, against
/// the exact binomial detection rates (k = 44: 0.774, 0.020, 0.492; k = 200: 1.0, 0.937, 1.0).
#[test]
fn summary_bound_detection_power() {
    let mut rng = StdRng::seed_from_u64(0xd3);
    let tickets = token_tickets(&mut rng, 50);
    type Case = (
        &'static str,
        Shares,
        fn(&mut ReceiptBody, u64),
        [f64; 2],
        [f64; 2],
    );
    let cases: [Case; 3] = [
        (
            "success 50 % claimed 90 %",
            Shares {
                success: 0.5,
                ..TYPICAL
            },
            |b, n| {
                b.service_summary.success_count = n * 9 / 10;
                b.service_summary.error_count = n / 10;
                b.service_summary.error_class_counts = ClassCounts::new();
            },
            [0.72, 0.83],
            [0.995, 1.0],
        ),
        (
            "success 80 % claimed 95 %",
            Shares {
                success: 0.8,
                ..TYPICAL
            },
            |b, n| {
                b.service_summary.success_count = n * 95 / 100;
                b.service_summary.error_count = n / 20;
                b.service_summary.error_class_counts = ClassCounts::new();
            },
            [0.005, 0.05],
            [0.90, 0.97],
        ),
        (
            "cache 40 % claimed 80 %",
            Shares {
                cache: 0.4,
                ..TYPICAL
            },
            |b, n| b.service_summary.served_from_cache_count = n * 8 / 10,
            [0.43, 0.56],
            [0.995, 1.0],
        ),
    ];
    for (name, shares, edit, at44, at200) in cases {
        let n = 5_000usize;
        let mut leaves = honest_leaves(&mut rng, n, shares, &tickets);
        // Exact shares, so that the claim is exactly the stated inflation.
        for (i, l) in leaves.iter_mut().enumerate() {
            let f = i as f64 / n as f64;
            l.rcode_class = if f < shares.success {
                RcodeClass::NoError
            } else {
                RcodeClass::Servfail
            };
            l.flags.cache_hit = f < shares.cache;
        }
        let batch = seal(leaves);
        let forged = resign(batch.receipt(), |b| edit(b, n as u64));
        for (k, [lo, hi]) in [(44usize, at44), (200, at200)] {
            let trials = 4_000;
            let caught = (0..trials)
                .filter(|_| {
                    let sampled: Vec<Leaf> = rand::seq::index::sample(&mut rng, n, k)
                        .into_iter()
                        .map(|j| batch.leaves()[j])
                        .collect();
                    summary_alarm(&forged, &sampled).is_some()
                })
                .count();
            let rate = caught as f64 / trials as f64;
            println!("{name}, k = {k}: caught {rate:.3}");
            assert!((lo..=hi).contains(&rate), "{name}, k = {k}: {rate}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// (e) A receipt for a window long past; (f) the same receipt on another network.

#[test]
fn a_receipt_arriving_long_after_its_window_is_refused() {
    let mut rng = StdRng::seed_from_u64(0xe1);
    let tickets = token_tickets(&mut rng, 10);
    let batch = seal(honest_leaves(&mut rng, 50, TYPICAL, &tickets));
    let r = batch.receipt();
    let (registry, policies, ledger) = (active(), policy7(), Ledger::default());
    let v = Verifier::new(deployment(), &registry, &policies, &ledger);
    let bound = WINDOW_END_MS + Deployment::DEFAULT_MAX_DELAY_MS;
    assert_eq!(v.verify(r, bound), Ok(()));
    for late in [
        bound + 1,
        WINDOW_END_MS + 86_400_000,
        WINDOW_END_MS + 365 * 86_400_000,
    ] {
        let e = v.verify(r, late).unwrap_err();
        assert_eq!(e, VerifyError::ArrivedTooLate { received_ms: late });
        assert_eq!(e.name(), "arrived_too_late");
    }
    // Nor before its window has ended (less the skew): it would claim work not yet done.
    let early = WINDOW_END_MS - Verifier::<Registry, Policies, Ledger>::DEFAULT_SKEW_MS - 1;
    let e = v.verify(r, early).unwrap_err();
    assert_eq!(e, VerifyError::ArrivedTooEarly { received_ms: early });
    assert_eq!((e.name(), e.code()), ("arrived_too_early", 45));
    assert_eq!(v.verify(r, early + 1), Ok(()));
    // Re-dating the receipt does not help: the leaves' timestamps are in the signed window.
    let redated = resign(r, |b| b.timestamp_ms = WINDOW_END_MS + 86_400_000);
    assert_eq!(
        v.verify(&redated, WINDOW_END_MS + 86_400_000),
        Err(VerifyError::TimestampOutsideWindow {
            timestamp_ms: WINDOW_END_MS + 86_400_000
        })
    );
}

#[test]
fn the_same_receipt_on_another_deployment_is_refused() {
    let mut rng = StdRng::seed_from_u64(0xf1);
    let tickets = token_tickets(&mut rng, 10);
    let batch = seal(honest_leaves(&mut rng, 50, TYPICAL, &tickets));
    let r = batch.receipt();
    let (registry, policies, ledger) = (active(), policy7(), Ledger::default());
    // Another cluster of the same program, where the operator uses the same hot key.
    let other = Deployment::new(other_deployment_id(), WindowLen::new(60).unwrap());
    let v = Verifier::new(other, &registry, &policies, &ledger);
    let e = v.verify(r, RECEIVED_MS).unwrap_err();
    assert_eq!(e, VerifyError::WrongDeployment);
    assert_eq!(e.name(), "wrong_deployment");
    // Swapping the deployment id breaks the signature: it is inside the signed bytes.
    let mut moved = r.clone();
    moved.body.v2.as_mut().unwrap().deployment_id = other_deployment_id();
    assert_eq!(
        v.verify(&moved, RECEIVED_MS),
        Err(VerifyError::Signature(SignatureError::Invalid))
    );
    assert_eq!(
        Verifier::new(deployment(), &registry, &policies, &ledger).verify(r, RECEIVED_MS),
        Ok(())
    );
}

// ---------------------------------------------------------------------------------------------
// (g) Audit seeds known before the receipt.

#[test]
fn audit_seeds_must_post_date_the_receipt() {
    let mut rng = StdRng::seed_from_u64(0x61);
    let tickets = token_tickets(&mut rng, 10);
    let batch = seal(honest_leaves(&mut rng, 100, TYPICAL, &tickets));
    let i = &batch.receipt().body.integrity;
    for slot in [0, RECEIPT_SLOT - 1, RECEIPT_SLOT] {
        let s = AuditSeed {
            slot,
            hash: [0x42; 32],
        };
        assert_eq!(
            AuditSample::after(&s, RECEIPT_SLOT, &i.merkle_root, i.leaf_count, K),
            Err(SampleError::SeedNotAfterReceipt)
        );
    }
    let later = AuditSeed {
        slot: RECEIPT_SLOT + 1,
        hash: [0x42; 32],
    };
    assert_eq!(
        AuditSample::after(&later, RECEIPT_SLOT, &i.merkle_root, i.leaf_count, K),
        Ok(AuditSample::new(
            &[0x42; 32],
            &i.merkle_root,
            i.leaf_count,
            K
        ))
    );
    // With a fixed delay, the verifier cannot shop among later slots either: only the hash of
    // slot receipt_slot + delay is a seed.
    let delay = 32;
    for slot in [
        RECEIPT_SLOT + 1,
        RECEIPT_SLOT + delay - 1,
        RECEIPT_SLOT + delay + 1,
    ] {
        let s = AuditSeed {
            slot,
            hash: [0x42; 32],
        };
        assert_eq!(
            AuditSample::at_fixed_slot(&s, RECEIPT_SLOT, delay, &i.merkle_root, i.leaf_count, K),
            Err(SampleError::SeedSlotNotFixed)
        );
    }
    let fixed = AuditSeed {
        slot: RECEIPT_SLOT + delay,
        hash: [0x42; 32],
    };
    assert!(
        AuditSample::at_fixed_slot(&fixed, RECEIPT_SLOT, delay, &i.merkle_root, i.leaf_count, K)
            .is_ok()
    );
    assert_eq!(
        AuditSample::at_fixed_slot(
            &fixed,
            RECEIPT_SLOT + delay,
            0,
            &i.merkle_root,
            i.leaf_count,
            K
        ),
        Err(SampleError::SeedNotAfterReceipt)
    );
}

// ---------------------------------------------------------------------------------------------
// (h) The distinct-name sketch.

#[test]
fn an_inflated_sketch_has_no_witness() {
    let mut rng = StdRng::seed_from_u64(0x71);
    let tickets = token_tickets(&mut rng, 50);
    let batch = seal(honest_leaves(&mut rng, 2_000, TYPICAL, &tickets));
    let r = batch.receipt();
    let sketch = r.body.v2.as_ref().unwrap().name_sketch.clone();
    let honest_estimate = sketch.estimate();
    // About 1,800 distinct ticketed names (random name hashes).
    assert!(
        (1_400..2_300).contains(&honest_estimate),
        "{honest_estimate}"
    );
    let (registry, policies, ledger) = (active(), policy7(), Ledger::default());
    let v =
        Verifier::new(deployment(), &registry, &policies, &ledger).with_tickets(&AcceptAllTickets);
    // Honest: every drawn register has its witness.
    let root = r.body.integrity.merkle_root;
    let ws = SketchWitnessSample::new(&seed(0), &root, &sketch, 16);
    let witnesses: Vec<LeafProof> = ws
        .registers()
        .iter()
        .map(|&j| batch.sketch_witness(j).unwrap())
        .collect();
    assert_eq!(v.check_sketch_witnesses(r, &ws, &witnesses), Ok(()));
    // Every register raised by 2: the estimate quadruples, no leaf has any drawn cell.
    let mut regs = sketch.to_bytes();
    for x in &mut regs {
        *x = (*x + 2).min(MAX_RANK);
    }
    let inflated_sketch = NameSketch::from_bytes(regs).unwrap();
    assert!(inflated_sketch.estimate() > 3 * honest_estimate);
    let inflated = resign(r, |b| {
        b.v2.as_mut().unwrap().name_sketch = inflated_sketch.clone()
    });
    assert_eq!(v.verify(&inflated, RECEIVED_MS), Ok(()));
    for i in 0..20 {
        let ws = SketchWitnessSample::new(&seed(i), &root, &inflated_sketch, 16);
        // The operator shows the best it has: its real witness of each drawn register.
        let witnesses: Vec<LeafProof> = ws
            .registers()
            .iter()
            .map(|&j| batch.sketch_witness(j).unwrap())
            .collect();
        let e = v
            .check_sketch_witnesses(&inflated, &ws, &witnesses)
            .unwrap_err();
        assert_eq!(
            e,
            VerifyError::WitnessMismatch {
                register: ws.registers()[0] as u16
            }
        );
        assert_eq!(e.name(), "witness_mismatch");
        // The honest sketch's witnesses are for the honest sketch's draw only.
        assert_eq!(
            v.check_sketch_witnesses(r, &ws, &witnesses),
            Err(VerifyError::SampleNotForReceipt)
        );
    }
    // One register alone, raised by one.
    let j = (0..SKETCH_REGISTERS)
        .find(|&j| sketch.register(j) > 0)
        .unwrap();
    let mut regs = sketch.to_bytes();
    regs[j] += 1;
    let one_up = NameSketch::from_bytes(regs).unwrap();
    let forged = resign(r, |b| b.v2.as_mut().unwrap().name_sketch = one_up.clone());
    let all = SketchWitnessSample::new(&seed(0), &root, &one_up, SKETCH_REGISTERS as u64);
    let witnesses: Vec<LeafProof> = all
        .registers()
        .iter()
        .map(|&x| batch.sketch_witness(x).unwrap())
        .collect();
    assert_eq!(
        v.check_sketch_witnesses(&forged, &all, &witnesses),
        Err(VerifyError::WitnessMismatch { register: j as u16 })
    );
}

#[test]
fn an_understated_sketch_is_caught_by_the_audit() {
    let mut rng = StdRng::seed_from_u64(0x72);
    let tickets = token_tickets(&mut rng, 50);
    let batch = seal(honest_leaves(&mut rng, 1_000, TYPICAL, &tickets));
    let r = batch.receipt();
    let sketch = r.body.v2.as_ref().unwrap().name_sketch.clone();
    // Lower the register of the leaf that witnesses it.
    let j = (0..SKETCH_REGISTERS)
        .find(|&j| sketch.register(j) > 1)
        .unwrap();
    let w = batch.sketch_witnesses()[j];
    let mut regs = sketch.to_bytes();
    regs[j] -= 1;
    let lowered = resign(r, |b| {
        b.v2.as_mut().unwrap().name_sketch = NameSketch::from_bytes(regs).unwrap();
    });
    let (registry, policies, ledger) = (active(), policy7(), Ledger::default());
    let v =
        Verifier::new(deployment(), &registry, &policies, &ledger).with_tickets(&AcceptAllTickets);
    assert_eq!(v.verify(&lowered, RECEIVED_MS), Ok(()));
    let root = r.body.integrity.merkle_root;
    let s = crate::vectors_v2_gen::seed_where(&root, 1_000, K, |i| i.contains(&w));
    let sample = AuditSample::new(&s, &root, 1_000, K);
    let e = v
        .check_audit(&lowered, &sample, &batch.answer(&sample).unwrap())
        .unwrap_err();
    assert!(matches!(e, VerifyError::SketchUnderstates { .. }), "{e:?}");
    assert_eq!(e.name(), "sketch_understates");
}

// ---------------------------------------------------------------------------------------------
// (i) Ticket lookups: a watcher confirms its probes.

#[test]
fn ticket_lookups_catch_foreign_leaves_and_over_quota() {
    let mut rng = StdRng::seed_from_u64(0x81);
    let tickets = token_tickets(&mut rng, 50);
    let mut leaves = honest_leaves(&mut rng, 500, TYPICAL, &tickets);
    // A watcher sent 3 probes under its nonce.
    let probe = [0x77; 16];
    for l in leaves.iter_mut().take(3) {
        l.ticket = probe;
    }
    let batch = seal(leaves);
    let r = batch.receipt();
    let found = batch.ticket_leaves(&probe);
    assert_eq!(verify_ticket_leaves(r, &probe, &found, 3), Ok(3));
    // The operator slips in a leaf of another ticket.
    let other = batch
        .leaves()
        .iter()
        .position(|l| l.is_ticketed() && l.ticket != probe)
        .unwrap() as u64;
    let mut padded = found.clone();
    padded.push(batch.leaf_proof(other).unwrap());
    padded.sort_by_key(|lp| lp.proof.leaf_index);
    let e = verify_ticket_leaves(r, &probe, &padded, 10).unwrap_err();
    assert_eq!(e, VerifyError::TicketLeafMismatch { index: other });
    assert_eq!(e.name(), "ticket_leaf_mismatch");
    // The same leaf twice, or out of order.
    let mut twice = found.clone();
    twice.insert(1, found[0].clone());
    assert!(matches!(
        verify_ticket_leaves(r, &probe, &twice, 10),
        Err(VerifyError::LeavesOutOfOrder { .. })
    ));
    // More leaves under the token than it paid for.
    let e = verify_ticket_leaves(r, &probe, &found, 2).unwrap_err();
    assert_eq!(e, VerifyError::TicketOverQuota { leaves: 3 });
    assert_eq!(e.name(), "ticket_over_quota");
    // A leaf changed to carry the probe nonce does not prove.
    let mut claimed = batch.leaf_proof(other).unwrap();
    claimed.leaf.ticket = probe;
    assert!(matches!(
        verify_ticket_leaves(r, &probe, &[claimed], 10),
        Err(VerifyError::InvalidProof { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Honest operators.

/// The audit's summary rule restated from [`stats`]: the statistic a sample of leaves raises an
/// alarm on, if any (shares of success, error, cache, ticketed and repeated leaves, then the
/// mean size).
fn summary_alarm(r: &Receipt, sampled: &[Leaf]) -> Option<SummaryStat> {
    let s = &r.body.service_summary;
    let (n, k) = (s.request_count, sampled.len() as u64);
    let count = |f: &dyn Fn(&Leaf) -> bool| sampled.iter().filter(|l| f(l)).count() as u64;
    let ticketed = r.body.v2.as_ref().map_or(0, |v| v.ticketed_leaf_count);
    let repeats = r.body.v2.as_ref().map_or(0, |v| v.ticketed_repeat_count);
    let shares = [
        (
            SummaryStat::Success,
            count(&|l| l.rcode_class == RcodeClass::NoError),
            s.success_count,
        ),
        (
            SummaryStat::Error,
            count(&|l| l.rcode_class != RcodeClass::NoError),
            s.error_count,
        ),
        (
            SummaryStat::Cache,
            count(&|l| l.flags.cache_hit),
            s.served_from_cache_count,
        ),
        (SummaryStat::Ticketed, count(&Leaf::is_ticketed), ticketed),
        (
            SummaryStat::Repeat,
            count(&|l| l.repeat != 0 && l.is_ticketed()),
            repeats,
        ),
    ];
    for (stat, x, claimed) in shares {
        if stats::share_alarm(x, k, claimed, n) {
            return Some(stat);
        }
    }
    let bytes = sampled.iter().map(|l| u64::from(l.response_bytes)).sum();
    stats::mean_alarm(bytes, k, s.bytes_served_total, n).then_some(SummaryStat::MeanBytes)
}

/// 20,000 honest samples of k = 44 leaves (50 windows of varied shares, extremes included,
/// 400 samples each): no summary alarm. The bound allows a false alarm with probability at
/// most 1e-6 per audit, so even one alarm here would be a bug. Every 40th sample goes through
/// the whole audit (`Verifier::check_audit`, 500 audits: proofs, neighbours, tickets,
/// summary); the others through the summary rule alone (the same `stats` bound), so that the
/// run stays short in debug builds.
#[test]
fn honest_windows_raise_no_summary_alarm() {
    let mut rng = StdRng::seed_from_u64(0x90);
    let tickets = token_tickets(&mut rng, 100);
    let (registry, policies, ledger) = (active(), policy7(), Ledger::default());
    let v =
        Verifier::new(deployment(), &registry, &policies, &ledger).with_tickets(&AcceptAllTickets);
    let (mut samples, mut audits) = (0u64, 0u64);
    for w in 0..50u64 {
        // Shares from none to all, and near both ends.
        let pick = |rng: &mut StdRng| match rng.gen_range(0..6) {
            0 => 0.0,
            1 => 1.0,
            2 => rng.gen_range(0.001..0.05),
            3 => rng.gen_range(0.95..0.999),
            _ => rng.gen_range(0.05..0.95),
        };
        let shares = Shares {
            success: pick(&mut rng),
            cache: pick(&mut rng),
            ticketed: pick(&mut rng),
            mean_bytes: rng.gen_range(20..20_000),
        };
        let n = rng.gen_range(100..2_000);
        let batch = seal(honest_leaves(&mut rng, n, shares, &tickets));
        let r = batch.receipt();
        assert_eq!(v.verify(r, RECEIVED_MS), Ok(()), "window {w}");
        for i in 0..400u64 {
            if i % 40 == 0 {
                let sample = sample_of(r, &seed(w * 1_000 + i), K);
                let report = v.check_audit(r, &sample, &batch.answer(&sample).unwrap());
                assert!(
                    report.is_ok(),
                    "window {w} {shares:?}, seed {i}: {report:?}"
                );
                audits += 1;
            } else {
                let sampled: Vec<Leaf> = rand::seq::index::sample(&mut rng, n, K as usize)
                    .into_iter()
                    .map(|j| batch.leaves()[j])
                    .collect();
                let alarm = summary_alarm(r, &sampled);
                assert_eq!(alarm, None, "window {w} {shares:?}, sample {i}");
            }
            samples += 1;
        }
    }
    assert_eq!((samples, audits), (20_000, 500));
}

/// Two or three identical answers in the same millisecond (client retries) are all kept,
/// numbered repeat 0, 1, 2, and every audit of the window passes.
#[test]
fn honest_identical_answers_are_kept_and_pass_audits() {
    let mut rng = StdRng::seed_from_u64(0x91);
    let tickets = token_tickets(&mut rng, 20);
    let mut leaves = honest_leaves(&mut rng, 2_000, TYPICAL, &tickets);
    // Every hundredth answer comes three times, every 150th twice (the copies arrive later):
    // about 2 % retries, well inside the deployment's repeat bound.
    let mut copies = Vec::new();
    for (i, l) in leaves.iter().enumerate() {
        if i % 100 == 0 {
            copies.extend([*l, *l]);
        } else if i % 150 == 0 {
            copies.push(*l);
        }
    }
    leaves.extend(copies);
    let n = leaves.len();
    let batch = seal(leaves.clone());
    assert_eq!(batch.leaves().len(), n);
    let count = |r: u16| batch.leaves().iter().filter(|l| l.repeat == r).count();
    assert_eq!(count(2), 20);
    assert_eq!(
        count(1),
        20 + (0..2_000).filter(|i| i % 150 == 0 && i % 100 != 0).count()
    );
    // Nothing dropped: the multiset of answers is the input's.
    let key = |l: &Leaf| Leaf { repeat: 0, ..*l }.to_bytes();
    let mut a: Vec<_> = leaves.iter().map(key).collect();
    let mut b: Vec<_> = batch.leaves().iter().map(key).collect();
    a.sort_unstable();
    b.sort_unstable();
    assert_eq!(a, b);
    let (registry, policies, ledger) = (active(), policy7(), Ledger::default());
    let v =
        Verifier::new(deployment(), &registry, &policies, &ledger).with_tickets(&AcceptAllTickets);
    let r = batch.receipt();
    // Every leaf and its neighbour, at once.
    let all = sample_of(r, &seed(0), n as u64);
    let report = v
        .verify_with_audit(r, RECEIVED_MS, &all, &batch.answer(&all).unwrap())
        .unwrap();
    assert_eq!(report.sampled, n as u64);
    assert_eq!(report.repeats as usize, count(1) + count(2));
    for i in 1..40 {
        let sample = sample_of(r, &seed(i), K);
        assert!(
            v.check_audit(r, &sample, &batch.answer(&sample).unwrap())
                .is_ok()
        );
    }
}
