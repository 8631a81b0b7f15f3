//! Arbitrary bytes as a Borsh receipt, receipt body, leaf, proof and as receipt JSON: decoding
//! never panics, and whatever decodes re-encodes to the same bytes (and JSON to a receipt
//! whose JSON and bytes round-trip).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tolldns_receipts::{Leaf, MerkleProof, Receipt, ReceiptBody};

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = Receipt::from_bytes(data) {
        assert_eq!(r.to_bytes(), data);
        let json = r.to_json();
        let back = Receipt::from_json(&json).expect("our own JSON parses");
        assert_eq!(back, r);
        assert_eq!(back.to_bytes(), data);
        let _ = r.verify_signature();
    }
    if let Ok(b) = ReceiptBody::from_bytes(data) {
        assert_eq!(b.to_bytes(), data);
    }
    if let Ok(l) = Leaf::from_bytes(data) {
        assert_eq!(l.to_bytes().as_slice(), data);
    }
    if let Ok(p) = MerkleProof::from_bytes(data) {
        assert_eq!(p.to_bytes(), data);
    }
    if let Ok(text) = core::str::from_utf8(data) {
        if let Ok(r) = Receipt::from_json(text) {
            let bytes = r.to_bytes();
            assert_eq!(Receipt::from_bytes(&bytes).as_ref(), Ok(&r));
            let json = r.to_json();
            assert_eq!(
                Receipt::from_json(&json).expect("re-encoded JSON parses"),
                r
            );
        }
    }
});
