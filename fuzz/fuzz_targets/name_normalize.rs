//! Arbitrary bytes as a DNS name: normalization never panics, its output is at most 253
//! octets, and normalizing the output again gives the same name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tolldns_core::{MAX_NAME_LEN, NormalizedName};

fuzz_target!(|data: &[u8]| {
    if let Ok(name) = NormalizedName::from_bytes(data) {
        assert!(name.len() <= MAX_NAME_LEN);
        assert_eq!(name.as_bytes().len(), name.len());
        let again = NormalizedName::from_bytes(name.as_bytes()).expect("normalized name is valid");
        assert_eq!(again, name, "not idempotent: {:?}", name.as_str());
        let from_str = NormalizedName::new(name.as_str()).expect("normalized name is valid text");
        assert_eq!(from_str, name);
    }
});
