//! Canonical encodings: the hand-written encoder against the `borsh` crate, JSON round trips,
//! strict decoding.

use borsh::BorshSerialize;
use proptest::prelude::*;
use tolldns_core::{BackendId, OperatorId, Role, WindowId, WindowLen};
use tolldns_receipts::*;

use crate::vectors_gen;

/// The body layout of docs/RECEIPTS.md, declared for the `borsh` crate's derive.
#[derive(BorshSerialize)]
struct MirrorBody {
    receipt_version: u8,
    receipt_type: u8,
    operator_id: [u8; 32],
    operator_role: u8,
    backend_id: String,
    policy_version: u32,
    window_len_s: u32,
    window_id: u64,
    timestamp_ms: u64,
    request_count: u64,
    success_count: u64,
    error_count: u64,
    bytes_served_total: u64,
    served_from_cache_count: u64,
    latency_p95_bucket_ms: u8,
    response_size_p95_bucket_bytes: u8,
    error_class_counts: Vec<(u8, u64)>,
    work_class_counts: Vec<(u8, u64)>,
    leaf_count: u64,
    merkle_root: [u8; 32],
    name_key_commitment: [u8; 32],
}

#[derive(BorshSerialize)]
struct MirrorReceipt {
    body: MirrorBody,
    signature: [u8; 64],
}

fn mirror(r: &Receipt) -> MirrorReceipt {
    let b = &r.body;
    let s = &b.service_summary;
    MirrorReceipt {
        body: MirrorBody {
            receipt_version: 1,
            receipt_type: b.receipt_type.tag(),
            operator_id: b.operator_id.to_bytes(),
            operator_role: b.operator_role.tag(),
            backend_id: b.backend_id.as_str().to_string(),
            policy_version: b.policy_version,
            window_len_s: b.window_len.secs(),
            window_id: b.window_id.get(),
            timestamp_ms: b.timestamp_ms,
            request_count: s.request_count,
            success_count: s.success_count,
            error_count: s.error_count,
            bytes_served_total: s.bytes_served_total,
            served_from_cache_count: s.served_from_cache_count,
            latency_p95_bucket_ms: s.latency_p95_bucket.tag(),
            response_size_p95_bucket_bytes: s.response_size_p95_bucket.tag(),
            error_class_counts: s
                .error_class_counts
                .entries()
                .iter()
                .map(|(c, n)| (c.tag(), *n))
                .collect(),
            work_class_counts: s
                .work_class_counts
                .entries()
                .iter()
                .map(|(c, n)| (c.tag(), *n))
                .collect(),
            leaf_count: b.integrity.leaf_count,
            merkle_root: b.integrity.merkle_root,
            name_key_commitment: b.integrity.name_key_commitment,
        },
        signature: r.signature,
    }
}

fn pick<T: WireTag>(i: usize) -> T {
    T::ALL[i % T::ALL.len()]
}

prop_compose! {
    fn arb_counts()(raw in proptest::collection::vec((0usize..16, 1u64..u64::MAX), 0..12)) -> Vec<(usize, u64)> {
        raw
    }
}

prop_compose! {
    fn arb_receipt()(
        rt in 0usize..2, op in any::<[u8; 32]>(), role in 0usize..6,
        backend in "[!-~]{1,32}", pv in any::<u32>(), wl in 1u32.., wid in any::<u64>(), ts in any::<u64>(),
        counts in any::<[u64; 5]>(), lat in 0usize..7, size in 0usize..5,
        errs in arb_counts(), work in arb_counts(),
        leaves in any::<u64>(), root in any::<[u8; 32]>(), commit in any::<[u8; 32]>(),
        sig in proptest::collection::vec(any::<u8>(), 64),
    ) -> Receipt {
        Receipt {
            body: ReceiptBody {
                receipt_type: pick(rt),
                operator_id: OperatorId(op),
                operator_role: Role::ALL[role],
                backend_id: BackendId::new(&backend).unwrap(),
                policy_version: pv,
                window_len: WindowLen::new(wl).unwrap(),
                window_id: WindowId(wid),
                timestamp_ms: ts,
                service_summary: ServiceSummary {
                    request_count: counts[0],
                    success_count: counts[1],
                    error_count: counts[2],
                    bytes_served_total: counts[3],
                    served_from_cache_count: counts[4],
                    latency_p95_bucket: pick(lat),
                    response_size_p95_bucket: pick(size),
                    error_class_counts: ClassCounts::from_pairs(dedup(errs, ErrorClass::ALL.len()).into_iter().map(|(c, n)| (pick::<ErrorClass>(c), n))).unwrap(),
                    work_class_counts: ClassCounts::from_pairs(dedup(work, WorkClass::ALL.len()).into_iter().map(|(c, n)| (pick::<WorkClass>(c), n))).unwrap(),
                },
                integrity: Integrity { leaf_count: leaves, merkle_root: root, name_key_commitment: commit },
            },
            signature: sig.try_into().unwrap(),
        }
    }
}

fn dedup(mut v: Vec<(usize, u64)>, m: usize) -> Vec<(usize, u64)> {
    // Classes are picked modulo the enum size `m`; keep the first of each class.
    let mut seen = std::collections::BTreeSet::new();
    v.retain(|(c, _)| seen.insert(c % m));
    v
}

proptest! {
    #[test]
    fn encoding_is_borsh_and_round_trips(r in arb_receipt()) {
        let bytes = r.to_bytes();
        prop_assert_eq!(&bytes, &borsh::to_vec(&mirror(&r)).unwrap());
        prop_assert_eq!(Receipt::from_bytes(&bytes), Ok(r.clone()));
        prop_assert_eq!(ReceiptBody::from_bytes(&r.body.to_bytes()), Ok(r.body.clone()));
        let json = r.to_json();
        let back = Receipt::from_json(&json).unwrap();
        prop_assert_eq!(back.to_bytes(), bytes);
        prop_assert_eq!(back.to_json(), json);
    }

    #[test]
    fn leaves_round_trip(bytes in any::<[u8; 69]>()) {
        if let Ok(leaf) = Leaf::from_bytes(&bytes) {
            prop_assert_eq!(leaf.to_bytes(), bytes);
        }
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(r) = Receipt::from_bytes(&bytes) {
            prop_assert_eq!(r.to_bytes(), bytes.clone());
        }
        if let Ok(p) = MerkleProof::from_bytes(&bytes) {
            prop_assert_eq!(p.to_bytes(), bytes.clone());
        }
        let _ = Receipt::from_json(&String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn decoding_is_strict() {
    let r = vectors_gen::batch().receipt().clone();
    let bytes = r.to_bytes();
    let mut long = bytes.clone();
    long.push(0);
    assert_eq!(
        Receipt::from_bytes(&long),
        Err(DecodeError::TrailingBytes { len: 1 })
    );
    assert_eq!(
        Receipt::from_bytes(&bytes[..bytes.len() - 1]),
        Err(DecodeError::UnexpectedEnd { field: "signature" })
    );
    let mut v2 = bytes.clone();
    v2[0] = 2;
    assert_eq!(
        Receipt::from_bytes(&v2),
        Err(DecodeError::UnsupportedVersion {
            field: "receipt_version",
            version: 2
        })
    );
    let mut role = bytes.clone();
    role[34] = 7;
    assert_eq!(
        Receipt::from_bytes(&role),
        Err(DecodeError::UnknownTag {
            field: "operator_role",
            tag: 7
        })
    );
    // Error class list: offset = 1 + 1 + 32 + 1 + (4 + 12) + 4 + 4 + 8 + 8 + 5 * 8 + 2 = 117.
    let off = 117;
    let n = u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap()) as usize;
    assert_eq!(n, r.body.service_summary.error_class_counts.entries().len());
    assert!(n >= 2);
    // Swap the first two entries: no longer ascending.
    let mut swapped = bytes.clone();
    let (a, b) = (off + 4, off + 4 + 9);
    let first: Vec<u8> = bytes[a..a + 9].to_vec();
    swapped[a..a + 9].copy_from_slice(&bytes[b..b + 9]);
    swapped[b..b + 9].copy_from_slice(&first);
    assert_eq!(
        Receipt::from_bytes(&swapped),
        Err(DecodeError::NonCanonicalClassCounts {
            field: "error_class_counts"
        })
    );
    // A zero count.
    let mut zero = bytes.clone();
    zero[a + 1..a + 9].copy_from_slice(&0u64.to_le_bytes());
    assert_eq!(
        Receipt::from_bytes(&zero),
        Err(DecodeError::NonCanonicalClassCounts {
            field: "error_class_counts"
        })
    );
    // A backend id with a space.
    let mut space = bytes;
    space[39] = b' ';
    assert!(matches!(
        Receipt::from_bytes(&space),
        Err(DecodeError::InvalidBackendId(_))
    ));
}

#[test]
fn json_is_strict() {
    let r = vectors_gen::batch().receipt().clone();
    let json = r.to_json();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v = v.clone();
        f(&mut v);
        Receipt::from_json(&v.to_string())
    };
    assert_eq!(Receipt::from_json(&json).unwrap(), r);
    assert!(matches!(
        edit(&|v| v["signature"]["public_key"] = "11111111111111111111111111111111".into()),
        Err(JsonError::PublicKeyMismatch)
    ));
    assert!(matches!(
        edit(&|v| v["integrity"]["merkle_scheme"] = "MERKLE-SHA256".into()),
        Err(JsonError::InvalidField {
            field: "merkle_scheme"
        })
    ));
    let upper = v["integrity"]["merkle_root"]
        .as_str()
        .unwrap()
        .to_uppercase();
    assert!(matches!(
        edit(&|v| v["integrity"]["merkle_root"] = upper.clone().into()),
        Err(JsonError::InvalidField {
            field: "merkle_root"
        })
    ));
    assert!(matches!(
        edit(&|v| v["service_summary"]["error_class_counts"]["TIMEOUT"] = 1.into()),
        Err(JsonError::InvalidField {
            field: "error_class_counts"
        })
    ));
    assert!(matches!(
        edit(&|v| v["service_summary"]["error_class_counts"]["OTHER"] = 0.into()),
        Err(JsonError::InvalidField {
            field: "error_class_counts"
        })
    ));
    assert!(matches!(
        edit(&|v| v["extra"] = 1.into()),
        Err(JsonError::Syntax(_))
    ));
    assert!(matches!(
        edit(&|v| v["receipt_version"] = 2.into()),
        Err(JsonError::UnsupportedVersion(2))
    ));
    assert!(matches!(
        edit(&|v| v["operator_role"] = "MINER".into()),
        Err(JsonError::InvalidField {
            field: "operator_role"
        })
    ));
}
