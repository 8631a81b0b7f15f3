//! Canonical encodings: the hand-written encoder against the `borsh` crate, JSON round trips,
//! strict decoding.

use borsh::BorshSerialize;
use proptest::prelude::*;
use tolldns_core::{BackendId, DeploymentId, OperatorId, Role, WindowId, WindowLen};
use tolldns_receipts::*;

use crate::{vectors_gen, vectors_v2_gen};

/// The body layout of docs/RECEIPTS.md, declared for the `borsh` crate's derive. The v2 fields
/// (`deployment_id` after the version byte, `ticketed_leaf_count` and `name_sketch` at the end)
/// are written only for a v2 body.
#[derive(BorshSerialize)]
struct MirrorBody {
    receipt_version: u8,
    #[borsh(serialize_with = "bare")]
    deployment_id: Option<[u8; 32]>,
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
    #[borsh(serialize_with = "bare")]
    v2_tail: Option<V2Tail>,
}

#[derive(BorshSerialize)]
struct V2Tail {
    ticketed_leaf_count: u64,
    ticketed_repeat_count: u64,
    name_sketch: [u8; 256],
}

/// The v2 fields are present or absent with the version, not `Option`-tagged: write them bare.
fn bare<T: BorshSerialize, W: std::io::Write>(v: &Option<T>, w: &mut W) -> std::io::Result<()> {
    match v {
        Some(x) => x.serialize(w),
        None => Ok(()),
    }
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
            receipt_version: b.version(),
            deployment_id: b.v2.as_ref().map(|v| v.deployment_id.0),
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
            v2_tail: b.v2.as_ref().map(|v| V2Tail {
                ticketed_leaf_count: v.ticketed_leaf_count,
                ticketed_repeat_count: v.ticketed_repeat_count,
                name_sketch: v.name_sketch.to_bytes(),
            }),
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
        v2 in proptest::option::of((any::<[u8; 32]>(), any::<[u64; 2]>(), proptest::collection::vec(0u8..=MAX_RANK, SKETCH_REGISTERS))),
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
                v2: v2.map(|(d, t, regs)| V2Commitments {
                    deployment_id: DeploymentId(d),
                    ticketed_leaf_count: t[0],
                    ticketed_repeat_count: t[1],
                    name_sketch: NameSketch::from_bytes(regs.try_into().unwrap()).unwrap(),
                }),
            },
            signature: sig.try_into().unwrap(),
        }
    }
}

prop_compose! {
    fn arb_leaf()(
        ts in any::<u64>(), tr in 0usize..5, qtype in any::<u16>(), rc in 0usize..10, wc in 0usize..8,
        flags in 0u8..8, lat in 0usize..7, size in 0u32..=MAX_RESPONSE_BYTES,
        name_hash in any::<[u8; 16]>(), ticket in any::<[u8; 16]>(), rsh in any::<[u8; 16]>(),
        repeat in any::<u16>(),
    ) -> Leaf {
        Leaf {
            timestamp_ms: ts,
            transport: pick(tr),
            qtype,
            rcode_class: pick(rc),
            work_class: pick(wc),
            flags: LeafFlags::from_bits(flags).unwrap(),
            latency: pick(lat),
            response_bytes: size,
            name_hash,
            ticket,
            response_summary_hash: rsh,
            repeat,
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
    fn leaves_round_trip(leaf in arb_leaf()) {
        let v2 = leaf.to_bytes();
        prop_assert_eq!(v2.len(), LEAF_LEN);
        prop_assert_eq!(Leaf::from_bytes(&v2), Ok(leaf));
        prop_assert_eq!(Leaf::from_bytes_any(&v2), Ok(leaf));
        prop_assert_eq!(leaf.hash(), merkle::leaf_hash(&v2));
        // v1: the first 69 bytes with version 1, no repeat.
        let v1 = leaf.to_bytes_v1();
        prop_assert_eq!(&v1[1..], &v2[1..LEAF_LEN_V1]);
        prop_assert_eq!((v1[0], v2[0]), (1, 2));
        prop_assert_eq!(Leaf::from_bytes_v1(&v1), Ok(Leaf { repeat: 0, ..leaf }));
        prop_assert_eq!(leaf.hash_v1(), merkle::leaf_hash(&v1));
        // The strict order is a total order consistent with equality.
        let mut other = leaf;
        other.repeat = other.repeat.wrapping_add(1);
        prop_assert_ne!(leaf.order(&other), std::cmp::Ordering::Equal);
        prop_assert!(leaf.same_answer(&other));
    }

    #[test]
    fn raw_leaf_bytes_round_trip(mut bytes in any::<[u8; 71]>(), fix in any::<bool>()) {
        if fix {
            // Make most fields valid so that decoding gets past the tags.
            bytes[0] = 2;
            bytes[1] = 1 + bytes[1] % 5;
            bytes[4] = 1 + bytes[4] % 10;
            bytes[5] = 1 + bytes[5] % 8;
            bytes[6] &= 7;
            bytes[7] = 1 + bytes[7] % 7;
            bytes[19] = 0;
            bytes[20] = 0;
            let size = u32::from_le_bytes(bytes[17..21].try_into().unwrap());
            bytes[8] = SizeBucket::from_len(size).tag();
        }
        if let Ok(leaf) = Leaf::from_bytes(&bytes) {
            prop_assert_eq!(leaf.to_bytes(), bytes);
        } else {
            prop_assert!(!fix);
        }
        if let Ok(leaf) = Leaf::from_bytes_v1(&bytes[..69]) {
            let again = leaf.to_bytes_v1();
            prop_assert_eq!(again.as_slice(), &bytes[..69]);
        }
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
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
    for version in [0u8, 3, 255] {
        let mut v = bytes.clone();
        v[0] = version;
        assert_eq!(
            Receipt::from_bytes(&v),
            Err(DecodeError::UnsupportedVersion {
                field: "receipt_version",
                version
            })
        );
    }
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
fn v2_decoding_is_strict() {
    let r = vectors_v2_gen::batch().receipt().clone();
    let bytes = r.to_bytes();
    assert_eq!(bytes[0], 2);
    assert_eq!(
        &bytes[1..33],
        r.body.v2.as_ref().unwrap().deployment_id.as_bytes()
    );
    assert_eq!(Receipt::from_bytes(&bytes), Ok(r.clone()));
    // The v1 offsets shift by the 32-byte deployment id.
    let mut role = bytes.clone();
    role[34 + 32] = 7;
    assert_eq!(
        Receipt::from_bytes(&role),
        Err(DecodeError::UnknownTag {
            field: "operator_role",
            tag: 7
        })
    );
    // ticketed_leaf_count and the sketch end the body.
    let body_len = bytes.len() - 64;
    let sketch_at = body_len - SKETCH_REGISTERS;
    let v2 = r.body.v2.as_ref().unwrap();
    assert_eq!(
        &bytes[sketch_at - 16..sketch_at - 8],
        &v2.ticketed_leaf_count.to_le_bytes()
    );
    assert_eq!(
        &bytes[sketch_at - 8..sketch_at],
        &v2.ticketed_repeat_count.to_le_bytes()
    );
    for (j, value) in [(0usize, 66u8), (255, 255)] {
        let mut b = bytes.clone();
        b[sketch_at + j] = value;
        assert_eq!(
            Receipt::from_bytes(&b),
            Err(DecodeError::SketchRegisterOutOfRange { register: j, value })
        );
    }
    let mut max = bytes.clone();
    max[sketch_at] = MAX_RANK;
    assert!(Receipt::from_bytes(&max).is_ok());
    assert_eq!(
        Receipt::from_bytes(&bytes[..sketch_at + 3]),
        Err(DecodeError::UnexpectedEnd {
            field: "name_sketch"
        })
    );
    assert_eq!(
        Receipt::from_bytes(&bytes[..sketch_at - 1]),
        Err(DecodeError::UnexpectedEnd {
            field: "ticketed_repeat_count"
        })
    );
    assert_eq!(
        Receipt::from_bytes(&bytes[..sketch_at - 9]),
        Err(DecodeError::UnexpectedEnd {
            field: "ticketed_leaf_count"
        })
    );
    // A v1 body is not a v2 body with fields missing: the version byte decides.
    let v1 = vectors_gen::batch().receipt().to_bytes();
    assert!(Receipt::from_bytes(&v1).unwrap().body.v2.is_none());
    // Leaves: the v2 decoder wants 71 bytes with version 2 and at most 65,535 bytes.
    let leaf = vectors_v2_gen::batch().leaves()[0];
    let mut b = leaf.to_bytes();
    b[0] = 1;
    assert_eq!(
        Leaf::from_bytes(&b),
        Err(DecodeError::UnsupportedVersion {
            field: "leaf_version",
            version: 1
        })
    );
    assert_eq!(
        Leaf::from_bytes(&leaf.to_bytes_v1()),
        Err(DecodeError::WrongLength {
            expected: 71,
            actual: 69
        })
    );
    assert_eq!(
        Leaf::from_bytes_v1(&leaf.to_bytes()),
        Err(DecodeError::WrongLength {
            expected: 69,
            actual: 71
        })
    );
    let mut big = leaf;
    big.response_bytes = 70_000;
    assert_eq!(
        Leaf::from_bytes(&big.to_bytes()),
        Err(DecodeError::ResponseTooLarge {
            response_bytes: 70_000
        })
    );
    // v1 had no such bound.
    assert_eq!(
        Leaf::from_bytes_v1(&big.to_bytes_v1()).map(|l| l.response_bytes),
        Ok(70_000)
    );
}

#[test]
fn v2_json_is_strict() {
    let r = vectors_v2_gen::batch().receipt().clone();
    let json = r.to_json();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["receipt_version"], 2);
    assert_eq!(v["integrity"]["leaf_hash_scheme"], LEAF_HASH_SCHEME);
    assert_eq!(v["integrity"]["name_sketch_scheme"], NAME_SKETCH_SCHEME);
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v = v.clone();
        f(&mut v);
        Receipt::from_json(&v.to_string())
    };
    assert_eq!(Receipt::from_json(&json).unwrap(), r);
    for field in [
        "ticketed_leaf_count",
        "ticketed_repeat_count",
        "name_sketch",
        "name_sketch_scheme",
    ] {
        assert!(
            matches!(
                edit(&|v| {
                    v["integrity"].as_object_mut().unwrap().remove(field);
                }),
                Err(JsonError::VersionFields { field: f }) if f == field
            ),
            "{field}"
        );
    }
    assert!(matches!(
        edit(&|v| v["receipt_version"] = 1.into()),
        Err(JsonError::VersionFields {
            field: "deployment_id"
        })
    ));
    let upper = v["deployment_id"].as_str().unwrap().to_uppercase();
    assert!(matches!(
        edit(&|v| v["deployment_id"] = upper.clone().into()),
        Err(JsonError::InvalidField {
            field: "deployment_id"
        })
    ));
    assert!(matches!(
        edit(&|v| v["integrity"]["leaf_hash_scheme"] = LEAF_HASH_SCHEME_V1.into()),
        Err(JsonError::InvalidField {
            field: "leaf_hash_scheme"
        })
    ));
    // Unknown enum names are named errors, not syntax errors.
    assert!(matches!(
        edit(&|v| v["service_summary"]["latency_p95_bucket_ms"] = "<30".into()),
        Err(JsonError::UnknownName { field: "latency_p95_bucket_ms", ref name }) if name == "<30"
    ));
    assert!(matches!(
        edit(&|v| v["receipt_type"] = "STREAM".into()),
        Err(JsonError::UnknownName {
            field: "receipt_type",
            ..
        })
    ));
    // The v1 receipt's JSON carries no v2 field and the v1 leaf scheme.
    let v1: serde_json::Value =
        serde_json::from_str(&vectors_gen::batch().receipt().to_json()).unwrap();
    assert!(v1.get("deployment_id").is_none());
    assert_eq!(v1["integrity"]["leaf_hash_scheme"], LEAF_HASH_SCHEME_V1);
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
        Err(JsonError::UnknownName {
            field: "error_class_counts",
            ..
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
    // A v1 receipt claiming version 2 lacks the v2 fields.
    assert!(matches!(
        edit(&|v| v["receipt_version"] = 2.into()),
        Err(JsonError::VersionFields {
            field: "deployment_id"
        })
    ));
    assert!(matches!(
        edit(&|v| v["receipt_version"] = 3.into()),
        Err(JsonError::UnsupportedVersion(3))
    ));
    assert!(matches!(
        edit(&|v| v["operator_role"] = "MINER".into()),
        Err(JsonError::UnknownName {
            field: "operator_role",
            ..
        })
    ));
}
