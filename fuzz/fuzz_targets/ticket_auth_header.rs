//! Arbitrary text (bytes read as lossy UTF-8) as the value of an `Authorization` and of a
//! `WWW-Authenticate` header of the `PrivateToken` scheme (RFC 9577 §2): parsing never panics;
//! a token read from `Authorization` is read back the same from the header written for it;
//! challenges whose parts decode are written and read back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tolldns_tickets::auth::{
    authorization, parse_authorization, parse_www_authenticate, www_authenticate,
};
use tolldns_tickets::{IssuerPublicKey, TokenChallenge};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(token) = parse_authorization(&text) {
        let header = authorization(&token);
        assert_eq!(parse_authorization(&header), Ok(token));
    }
    if let Ok(challenges) = parse_www_authenticate(&text) {
        assert!(!challenges.is_empty());
        for c in challenges {
            let (Ok(challenge), Ok(key)) = (
                TokenChallenge::from_bytes(&c.challenge),
                IssuerPublicKey::from_spki(&c.token_key),
            ) else {
                continue;
            };
            let header =
                www_authenticate(&challenge, &key, c.max_age).expect("a decoded challenge encodes");
            assert_eq!(parse_www_authenticate(&header), Ok(vec![c]));
        }
    }
});
