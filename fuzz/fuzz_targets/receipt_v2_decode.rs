//! Receipts format v2 (and v1) decoding: arbitrary bytes, and a valid v2 receipt with bytes
//! flipped, truncated or extended by the input, as a Borsh receipt, receipt body, v2 and v1
//! leaf, and as receipt JSON. Decoding never panics; whatever decodes re-encodes to the same
//! bytes (and its JSON to the same receipt); a decoded v2 receipt carries its deployment id
//! and legal sketch registers; and any receipt whose bytes differ from the valid one fails
//! strict signature verification (one signed receipt has one encoding).
#![no_main]

use std::sync::OnceLock;

use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;
use tolldns_core::{BackendId, DeploymentId, WindowId, WindowLen};
use tolldns_receipts::merkle::leaf_hash;
use tolldns_receipts::{
    BatchHeader, ClosedBatch, LEAF_LEN, LEAF_LEN_V1, LatencyBucket, Leaf, LeafFlags, MAX_RANK,
    MAX_RESPONSE_BYTES, RcodeClass, Receipt, ReceiptBody, SizeBucket, Transport, WorkClass,
};

const WINDOW_START_MS: u64 = 1_760_000_100_000;

/// A valid v2 receipt over 16 leaves (two repeats, ticketed and unticketed), and its JSON.
fn genuine() -> &'static (Vec<u8>, String) {
    static G: OnceLock<(Vec<u8>, String)> = OnceLock::new();
    G.get_or_init(|| {
        let len = WindowLen::new(60).expect("non-zero");
        let header = BatchHeader::new(
            DeploymentId::derive(&[0xd1; 32], &[0xd2; 32]),
            BackendId::new("edge-ingress").expect("valid backend id"),
            len,
            WindowId::containing(WINDOW_START_MS, len),
        );
        let leaves: Vec<Leaf> = (0..16u8)
            .map(|i| {
                let j = i.min(13);
                Leaf {
                    timestamp_ms: WINDOW_START_MS + u64::from(j) * 997,
                    transport: Transport::Udp,
                    qtype: 1,
                    rcode_class: if j % 4 == 0 {
                        RcodeClass::Nxdomain
                    } else {
                        RcodeClass::NoError
                    },
                    work_class: WorkClass::CacheHit,
                    flags: LeafFlags {
                        cache_hit: j % 2 == 0,
                        ..LeafFlags::default()
                    },
                    latency: LatencyBucket::Lt25,
                    response_bytes: 60 + u32::from(j) * 37,
                    name_hash: [j.wrapping_mul(37); 16],
                    ticket: if j % 5 == 0 { [0; 16] } else { [j; 16] },
                    response_summary_hash: [0x22; 16],
                    repeat: 0,
                }
            })
            .collect();
        let batch = ClosedBatch::seal(
            &header,
            leaves,
            [0x5a; 32],
            WINDOW_START_MS + 60_000,
            &SigningKey::from_bytes(&[7; 32]),
        )
        .expect("valid window");
        let r = batch.receipt();
        (r.to_bytes(), r.to_json())
    })
}

fn check_receipt(bytes: &[u8]) {
    let Ok(r) = Receipt::from_bytes(bytes) else {
        return;
    };
    assert_eq!(r.to_bytes(), bytes);
    assert_eq!(r.body.version(), bytes[0]);
    if let Some(v2) = &r.body.v2 {
        assert_eq!(v2.deployment_id.as_bytes(), &bytes[1..33]);
        assert!(v2.name_sketch.registers().iter().all(|x| *x <= MAX_RANK));
        assert!(v2.distinct_names() <= v2.ticketed_leaf_count);
    }
    let json = r.to_json();
    let back = Receipt::from_json(&json).expect("our own JSON parses");
    assert_eq!(back, r);
    assert_eq!(back.to_bytes(), bytes);
    assert_eq!(back.to_json(), json);
    let signed = r.verify_signature().is_ok();
    if bytes != genuine().0.as_slice() {
        assert!(!signed, "a changed receipt still verifies");
    } else {
        assert!(signed);
    }
}

fn check_leaf(bytes: &[u8]) {
    if let Ok(l) = Leaf::from_bytes(bytes) {
        assert_eq!(bytes.len(), LEAF_LEN);
        assert_eq!(l.to_bytes().as_slice(), bytes);
        assert_eq!(l.hash(), leaf_hash(bytes));
        assert!(l.response_bytes <= MAX_RESPONSE_BYTES);
        assert_eq!(l.size_bucket(), SizeBucket::from_len(l.response_bytes));
        assert_eq!(Leaf::from_bytes_any(bytes), Ok(l));
        // The v1 form of the same leaf drops `repeat` only.
        assert_eq!(
            Leaf::from_bytes_v1(&l.to_bytes_v1()),
            Ok(Leaf { repeat: 0, ..l })
        );
    }
    if let Ok(l) = Leaf::from_bytes_v1(bytes) {
        assert_eq!(bytes.len(), LEAF_LEN_V1);
        assert_eq!(l.repeat, 0);
        assert_eq!(l.to_bytes_v1().as_slice(), bytes);
        assert_eq!(l.hash_v1(), leaf_hash(bytes));
        assert_eq!(Leaf::from_bytes_any(bytes), Ok(l));
    }
}

fn check_json(text: &str) {
    let Ok(r) = Receipt::from_json(text) else {
        return;
    };
    let bytes = r.to_bytes();
    assert_eq!(Receipt::from_bytes(&bytes).as_ref(), Ok(&r));
    let json = r.to_json();
    assert_eq!(
        Receipt::from_json(&json).expect("re-encoded JSON parses"),
        r
    );
    // JSON that names the valid receipt's values is the valid receipt: it verifies exactly
    // when its bytes are the valid ones.
    assert_eq!(r.verify_signature().is_ok(), bytes == genuine().0);
}

fuzz_target!(|data: &[u8]| {
    // The input as it is.
    check_receipt(data);
    if let Ok(b) = ReceiptBody::from_bytes(data) {
        assert_eq!(b.to_bytes(), data);
    }
    check_leaf(data);
    for n in [LEAF_LEN, LEAF_LEN_V1] {
        if let Some(prefix) = data.get(..n) {
            check_leaf(prefix);
        }
    }
    if let Ok(text) = core::str::from_utf8(data) {
        check_json(text);
    }

    // The valid v2 receipt changed by the input: byte 0 picks truncation or extension, then
    // (position u16 LE, xor) triples.
    let (good, good_json) = genuine();
    let Some((&mode, edits)) = data.split_first() else {
        return;
    };
    let mut bytes = good.clone();
    let mut json = good_json.clone().into_bytes();
    for e in edits.chunks_exact(3) {
        let at = usize::from(u16::from_le_bytes([e[0], e[1]]));
        if let Some(len) = Some(bytes.len()).filter(|l| *l > 0) {
            bytes[at % len] ^= e[2];
        }
        if let Some(len) = Some(json.len()).filter(|l| *l > 0) {
            json[at % len] ^= e[2];
        }
    }
    match mode % 4 {
        0 => {}
        1 => bytes.truncate(bytes.len().saturating_sub(usize::from(mode / 4) + 1)),
        2 => bytes.extend_from_slice(&edits[..edits.len().min(usize::from(mode / 4))]),
        _ => {
            let at = usize::from(mode / 4) % bytes.len();
            bytes.truncate(at);
        }
    }
    check_receipt(&bytes);
    if let Ok(b) = ReceiptBody::from_bytes(&bytes) {
        assert_eq!(b.to_bytes(), bytes);
    }
    if let Ok(text) = String::from_utf8(json) {
        check_json(&text);
    }
});
