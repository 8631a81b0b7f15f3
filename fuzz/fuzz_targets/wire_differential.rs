//! Arbitrary bytes through both parsers of client queries, the edge's `wire::parse_query` and
//! the cache's `CacheKey::from_query` (both built on `tolldns_cache::wire::walk_query`): they
//! must give the same verdict and read the same question. The shared walker's name readers and
//! the edge's response scan must never panic, and a name `read_name` accepts must be skipped
//! to the same offset by `skip_name`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tolldns_cache::CacheKey;
use tolldns_cache::wire as walk;

fuzz_target!(|data: &[u8]| {
    let edge = tolldns_ingress::wire::parse_query(data);
    let key = CacheKey::from_query(data);
    assert_eq!(edge.is_ok(), key.is_ok(), "edge {edge:?}, cache {key:?}");
    if let (Ok(q), Ok((k, id))) = (&edge, &key) {
        assert_eq!(q.id, *id);
        assert_eq!(q.wire_name(), k.qname_wire());
        assert_eq!((q.qtype, q.qclass), (k.qtype(), k.qclass()));
        assert_eq!(q.dnssec_ok(), k.dnssec_ok());
        assert_eq!(q.checking_disabled(), k.checking_disabled());
    }

    let mut name = [0u8; walk::MAX_NAME_LEN];
    for at in 0..data.len().min(48) {
        if let Ok((end, len)) = walk::read_name(data, at, &mut name) {
            assert!((1..=walk::MAX_NAME_LEN).contains(&len));
            assert_eq!(walk::skip_name(data, at), Ok(end));
        }
    }
    let mut response = data.to_vec();
    let _ = tolldns_ingress::wire::scan_response(&mut response, Some(60));
});
