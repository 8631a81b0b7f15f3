//! Toll tickets at the edge (`tolldns-tickets`): verify Privacy Pass tokens (RFC 9578 token
//! type 0x0002, blind RSA) from the issuer's public keys alone, and compute the ticket id that
//! receipt leaves carry.
//!
//! Issuance is not part of the C API: clients obtain tokens from the issuer, and an appliance
//! only redeems them. Replay protection (the set of redeemed tokens) and sessions are the
//! caller's: a token that verifies is valid, not necessarily unused.

use tolldns_tickets::{AcceptedKey, IssuerPublicKey, TokenChallenge, TokenVerifier, ticket_id};

use crate::boundary::{
    FfiResult, Out, OutBytes, guard, guard_void, input_array, input_mut, input_ref, input_slice,
};
use crate::tolldns_result;

/// Length of a ticket id in bytes (`tolldns_leaf.ticket`).
pub const TOLLDNS_TICKET_ID_LEN: usize = 16;
/// Length of a token challenge digest, `SHA256(TokenChallenge)`, in bytes.
pub const TOLLDNS_CHALLENGE_DIGEST_LEN: usize = 32;
/// Longest token accepted, in bytes (an RSA-4096 issuer key); a buffer of this size always
/// holds a token. Tokens of RSA-2048 keys (the interoperable type 0x0002) are 354 bytes.
pub const TOLLDNS_TOKEN_MAX_LEN: usize = 98 + 512;

/// The ticket id of a token: `SHA256("TOLLDNS-TICKET-V1\0" || token)[..16]`, over the token's
/// bytes as presented (any bytes, valid or not). This is what receipt leaves carry in
/// `tolldns_leaf.ticket`. Writes `TOLLDNS_TICKET_ID_LEN` (16) bytes.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; `TOLLDNS_RESULT_INSUFFICIENT_SIZE` if `out_len` is below 16.
///
/// # Safety
///
/// `token` must be readable for `token_len` bytes (it may be NULL when `token_len` is 0) and
/// `out` writable for `out_len` bytes. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_ticket_id(
    token: *const u8,
    token_len: usize,
    out: *mut u8,
    out_len: usize,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees `token` is readable for `token_len` bytes.
        let token = unsafe { input_slice(token, token_len) }?;
        let out = OutBytes::new(out, out_len)?;
        // SAFETY: the caller guarantees `out` is writable for `out_len` bytes.
        unsafe { out.write(&ticket_id(token)) }
    })
}

/// The digest of a TollDNS deployment's token challenge: `SHA256(TokenChallenge)` with token
/// type 0x0002, `issuer_name`, no redemption context and `origin_info` = `deployment`
/// (`TokenChallenge::deployment(issuer_name, deployment).digest()` in Rust). This is what
/// `tolldns_token_verifier_new` takes. Writes `TOLLDNS_CHALLENGE_DIGEST_LEN` (32) bytes.
///
/// Both names are UTF-8 bytes without a terminating NUL, exactly as configured on the issuer
/// side (no normalization: `"Issuer.Example"` and `"issuer.example"` differ).
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; `TOLLDNS_RESULT_INVALID_PARAMETER` if a name is not UTF-8,
/// `issuer_name` is empty or either is longer than 65535 bytes;
/// `TOLLDNS_RESULT_INSUFFICIENT_SIZE` if `out_len` is below 32.
///
/// # Safety
///
/// `issuer_name` must be readable for `issuer_name_len` bytes, `deployment` for
/// `deployment_len` bytes (either may be NULL when its length is 0), and `out` writable for
/// `out_len` bytes. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_token_challenge_digest(
    issuer_name: *const u8,
    issuer_name_len: usize,
    deployment: *const u8,
    deployment_len: usize,
    out: *mut u8,
    out_len: usize,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees both names are readable for their lengths.
        let (issuer_name, deployment) = unsafe {
            (
                input_slice(issuer_name, issuer_name_len)?,
                input_slice(deployment, deployment_len)?,
            )
        };
        let out = OutBytes::new(out, out_len)?;
        let utf8 = |b| core::str::from_utf8(b).map_err(|_| tolldns_result::InvalidParameter);
        let digest = TokenChallenge::deployment(utf8(issuer_name)?, utf8(deployment)?)
            .digest()
            .map_err(|_| tolldns_result::InvalidParameter)?;
        // SAFETY: the caller guarantees `out` is writable for `out_len` bytes.
        unsafe { out.write(&digest) }
    })
}

/// Verifies toll tokens bound to one challenge against a set of accepted issuer keys.
///
/// Thread-safe for verification: `tolldns_token_verifier_verify` may be called on the same
/// verifier from many threads at once. `tolldns_token_verifier_add_key` and `_free` need
/// exclusive access (no concurrent verification).
#[derive(Debug)]
pub struct tolldns_token_verifier {
    inner: TokenVerifier,
}

/// Creates a verifier, without keys, for tokens bound to the challenge whose digest is
/// `challenge_digest` (`TOLLDNS_CHALLENGE_DIGEST_LEN` bytes, from
/// `tolldns_token_challenge_digest`). Add the issuer's keys with
/// `tolldns_token_verifier_add_key`.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; `TOLLDNS_RESULT_INVALID_PARAMETER` if
/// `challenge_digest_len` is not 32.
///
/// # Safety
///
/// `challenge_digest` must be readable for `challenge_digest_len` bytes and `out` writable.
/// The handle written to `*out` must be freed with `tolldns_token_verifier_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_token_verifier_new(
    challenge_digest: *const u8,
    challenge_digest_len: usize,
    out: *mut *mut tolldns_token_verifier,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees `challenge_digest` is readable for its length.
        let digest = unsafe {
            input_array::<TOLLDNS_CHALLENGE_DIGEST_LEN>(challenge_digest, challenge_digest_len)
        }?;
        let out = Out::new(out)?;
        let inner = TokenVerifier::new(Vec::new(), digest);
        let handle = Box::into_raw(Box::new(tolldns_token_verifier { inner }));
        // SAFETY: the caller guarantees `out` is writable; ownership of the box passes to it.
        unsafe { out.write(handle) };
        Ok(())
    })
}

/// Accepts tokens of an issuer key from `not_before` (unix seconds, inclusive) until
/// `not_after` (unix seconds, exclusive; 0 means no end).
///
/// `spki` is the key's DER SubjectPublicKeyInfo with the `id-RSASSA-PSS` algorithm (SHA-384,
/// 48-byte salt), as published in the issuer directory's `token-key` (after base64url
/// decoding); only its canonical encoding is accepted. Adding a key that the verifier already
/// has replaces its validity times. On error the verifier is unchanged.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; `TOLLDNS_RESULT_TICKET_BAD_KEY` if `spki` is not such a key
/// of 2048, 3072 or 4096 bits; `TOLLDNS_RESULT_INVALID_PARAMETER` if `not_after` is not 0 and
/// not after `not_before` (no time would accept the key).
///
/// # Safety
///
/// `verifier` must be a live handle from `tolldns_token_verifier_new` not in use by another
/// thread; `spki` must be readable for `spki_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_token_verifier_add_key(
    verifier: *mut tolldns_token_verifier,
    spki: *const u8,
    spki_len: usize,
    not_before: u64,
    not_after: u64,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees `verifier` is a live handle used by no other thread and
        // `spki` is readable for `spki_len` bytes.
        let (verifier, spki) = unsafe { (input_mut(verifier)?, input_slice(spki, spki_len)?) };
        let key = IssuerPublicKey::from_spki(spki)?;
        let not_after = (not_after != 0).then_some(not_after);
        if not_after.is_some_and(|t| t <= not_before) {
            return Err(tolldns_result::InvalidParameter);
        }
        let mut keys = verifier.inner.keys().to_vec();
        match keys.iter_mut().find(|k| k.key.key_id() == key.key_id()) {
            Some(existing) => {
                existing.not_before = not_before;
                existing.not_after = not_after;
            }
            None => keys.push(AcceptedKey {
                key,
                not_before,
                not_after,
            }),
        }
        verifier.inner = TokenVerifier::new(keys, *verifier.inner.challenge_digest());
        Ok(())
    })
}

/// Verifies a token's bytes at `now_unix_s`: it must decode as a type-0x0002 token, name one
/// of the verifier's keys, valid at `now_unix_s`, carry the verifier's challenge digest, and
/// its RSA signature must verify (one RSA-PSS verification). On success writes the token's
/// ticket id (`TOLLDNS_TICKET_ID_LEN` bytes, as `tolldns_ticket_id`) to `out_ticket_id`.
///
/// Replays are not detected here: keep the ticket ids of redeemed tokens and refuse repeats.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; `TOLLDNS_RESULT_INSUFFICIENT_SIZE` if
/// `out_ticket_id_len` is below 16 (checked first); the reason a token is refused:
/// `TOLLDNS_RESULT_TICKET_MALFORMED`, `_WRONG_ISSUER`, `_EXPIRED_KEY`, `_WRONG_CHALLENGE` or
/// `_BAD_SIGNATURE` (checked in that order), or `TOLLDNS_RESULT_TICKET_INVALID`.
///
/// # Safety
///
/// `verifier` must be a live handle from `tolldns_token_verifier_new`; `token` must be readable
/// for `token_len` bytes and `out_ticket_id` writable for `out_ticket_id_len` bytes.
/// Thread-safe (see `tolldns_token_verifier`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_token_verifier_verify(
    verifier: *const tolldns_token_verifier,
    token: *const u8,
    token_len: usize,
    now_unix_s: u64,
    out_ticket_id: *mut u8,
    out_ticket_id_len: usize,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees `verifier` is a live handle (verification only reads
        // it) and `token` is readable for `token_len` bytes.
        let (verifier, token) = unsafe { (input_ref(verifier)?, input_slice(token, token_len)?) };
        let out = OutBytes::new(out_ticket_id, out_ticket_id_len)?;
        out.check_fits(TOLLDNS_TICKET_ID_LEN)?;
        let verified = verifier.inner.verify(token, now_unix_s)?;
        // SAFETY: the caller guarantees `out_ticket_id` is writable for its length.
        unsafe { out.write(&verified.ticket_id) }
    })
}

/// Frees a verifier. NULL is ignored.
///
/// # Safety
///
/// `verifier` must be NULL or a live handle from `tolldns_token_verifier_new`, not in use by
/// another thread, and not used again afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_token_verifier_free(verifier: *mut tolldns_token_verifier) {
    guard_void(|| {
        if !verifier.is_null() {
            // SAFETY: the handle came from `Box::into_raw` in `tolldns_token_verifier_new` and
            // the caller gives up its ownership here.
            drop(unsafe { Box::from_raw(verifier) });
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::ptr::{null, null_mut};

    use serde_json::Value;

    /// `test-vectors/tickets.json`.
    fn vectors() -> Value {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../test-vectors/tickets.json");
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap()
    }

    fn bytes(v: &Value) -> Vec<u8> {
        hex::decode(v.as_str().expect("hex string")).unwrap()
    }

    fn str_of(v: &Value) -> &str {
        v.as_str().expect("string")
    }

    fn u64_of(v: &Value) -> u64 {
        v.as_u64().expect("integer")
    }

    /// The result code for a `Refusal::name()` in the vectors.
    fn expected_code(reason: &str) -> tolldns_result {
        match reason {
            "ok" => tolldns_result::Ok,
            "malformed" => tolldns_result::TicketMalformed,
            "wrong_issuer" => tolldns_result::TicketWrongIssuer,
            "expired_key" => tolldns_result::TicketExpiredKey,
            "wrong_challenge" => tolldns_result::TicketWrongChallenge,
            "bad_signature" => tolldns_result::TicketBadSignature,
            other => panic!("unknown reason {other:?}"),
        }
    }

    fn digest(issuer: &[u8], deployment: &[u8]) -> Result<[u8; 32], tolldns_result> {
        let mut out = [0xee; 32];
        // SAFETY: live buffers of the stated lengths.
        let r = unsafe {
            tolldns_token_challenge_digest(
                issuer.as_ptr(),
                issuer.len(),
                deployment.as_ptr(),
                deployment.len(),
                out.as_mut_ptr(),
                out.len(),
            )
        };
        if r == tolldns_result::Ok {
            Ok(out)
        } else {
            assert_eq!(out, [0xee; 32], "output written on error");
            Err(r)
        }
    }

    /// A verifier for the vectors' challenge with the vectors' issuer key.
    fn verifier(v: &Value) -> *mut tolldns_token_verifier {
        let challenge_digest = bytes(&v["challenge"]["digest_hex"]);
        let mut handle = null_mut();
        // SAFETY: live buffers of the stated lengths.
        let r = unsafe { tolldns_token_verifier_new(challenge_digest.as_ptr(), 32, &mut handle) };
        assert_eq!(r, tolldns_result::Ok);
        let spki = bytes(&v["issuer_spki_hex"]);
        // SAFETY: `handle` is live and unshared; `spki` is a live buffer.
        let r = unsafe {
            tolldns_token_verifier_add_key(
                handle,
                spki.as_ptr(),
                spki.len(),
                u64_of(&v["key_not_before"]),
                u64_of(&v["key_not_after"]),
            )
        };
        assert_eq!(r, tolldns_result::Ok);
        handle
    }

    fn verify(
        handle: *const tolldns_token_verifier,
        token: &[u8],
        now: u64,
    ) -> Result<[u8; 16], tolldns_result> {
        let mut out = [0xee; 16];
        // SAFETY: `handle` is live; live buffers of the stated lengths.
        let r = unsafe {
            tolldns_token_verifier_verify(
                handle,
                token.as_ptr(),
                token.len(),
                now,
                out.as_mut_ptr(),
                out.len(),
            )
        };
        if r == tolldns_result::Ok {
            Ok(out)
        } else {
            assert_eq!(out, [0xee; 16], "ticket id written on error");
            Err(r)
        }
    }

    fn id_of(token: &[u8]) -> [u8; 16] {
        let mut out = [0u8; 16];
        // SAFETY: live buffers of the stated lengths.
        let r = unsafe { tolldns_ticket_id(token.as_ptr(), token.len(), out.as_mut_ptr(), 16) };
        assert_eq!(r, tolldns_result::Ok);
        out
    }

    #[test]
    fn constants_match_the_tickets_crate() {
        assert_eq!(TOLLDNS_TOKEN_MAX_LEN, tolldns_tickets::MAX_TOKEN_LEN);
        assert_eq!(
            TOLLDNS_CHALLENGE_DIGEST_LEN,
            tolldns_tickets::CHALLENGE_DIGEST_LEN
        );
        assert_eq!(TOLLDNS_TICKET_ID_LEN, ticket_id(b"").len());
        assert_eq!(
            TOLLDNS_TICKET_ID_LEN,
            crate::receipts::tolldns_leaf::default().ticket.len()
        );
    }

    #[test]
    fn verifier_handle_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<tolldns_token_verifier>();
    }

    #[test]
    fn ticket_id_is_the_tagged_prefix() {
        // Independent value: see tolldns-tickets' codec tests (Python's hashlib).
        assert_eq!(
            hex::encode(id_of(b"abc")),
            "14f57752a0b8dea836c43506d3ac8003"
        );
        let mut out = [0u8; 16];
        // SAFETY: NULL with length 0 is the empty input; `out` is live.
        let r = unsafe { tolldns_ticket_id(null(), 0, out.as_mut_ptr(), 16) };
        assert_eq!(r, tolldns_result::Ok);
        assert_eq!(out, ticket_id(b""));
        let mut short = [0x55u8; 15];
        // SAFETY: live buffers of the stated lengths; NULL pointers are rejected unread.
        unsafe {
            assert_eq!(
                tolldns_ticket_id(b"abc".as_ptr(), 3, short.as_mut_ptr(), 15),
                tolldns_result::InsufficientSize
            );
            assert_eq!(
                tolldns_ticket_id(null(), 1, out.as_mut_ptr(), 16),
                tolldns_result::NullParameter
            );
            assert_eq!(
                tolldns_ticket_id(b"abc".as_ptr(), 3, null_mut(), 16),
                tolldns_result::NullParameter
            );
        }
        assert_eq!(short, [0x55; 15]);
    }

    #[test]
    fn challenge_digest_matches_the_vectors_and_the_crate() {
        let v = vectors();
        let c = &v["challenge"];
        let (issuer, deployment) = (str_of(&c["issuer_name"]), str_of(&c["deployment"]));
        let d = digest(issuer.as_bytes(), deployment.as_bytes()).unwrap();
        assert_eq!(d.to_vec(), bytes(&c["digest_hex"]));
        assert_eq!(
            d,
            TokenChallenge::deployment(issuer, deployment)
                .digest()
                .unwrap()
        );
        // An empty deployment is allowed, an empty issuer name is not.
        assert!(digest(b"issuer.example", b"").is_ok());
        assert_eq!(
            digest(b"", b"tolldns"),
            Err(tolldns_result::InvalidParameter)
        );
        assert_eq!(
            digest(b"issuer\xff", b"tolldns"),
            Err(tolldns_result::InvalidParameter)
        );
        assert_eq!(
            digest(&vec![b'a'; 65536], b"tolldns"),
            Err(tolldns_result::InvalidParameter)
        );
        let mut out = [0u8; 31];
        // SAFETY: live buffers of the stated lengths; NULL pointers are rejected unread.
        unsafe {
            assert_eq!(
                tolldns_token_challenge_digest(b"i".as_ptr(), 1, null(), 0, out.as_mut_ptr(), 31),
                tolldns_result::InsufficientSize
            );
            assert_eq!(
                tolldns_token_challenge_digest(null(), 1, null(), 0, out.as_mut_ptr(), 31),
                tolldns_result::NullParameter
            );
            assert_eq!(
                tolldns_token_challenge_digest(b"i".as_ptr(), 1, null(), 0, null_mut(), 32),
                tolldns_result::NullParameter
            );
        }
        assert_eq!(out, [0; 31]);
    }

    #[test]
    fn every_vector_case_through_the_c_abi() {
        let v = vectors();
        let handle = verifier(&v);
        let cases = v["cases"].as_array().expect("cases");
        assert!(cases.len() >= 9);
        for case in cases {
            let comment = str_of(&case["comment"]);
            let token = bytes(&case["token_hex"]);
            let id = bytes(&case["ticket_id_hex"]);
            assert_eq!(id_of(&token).to_vec(), id, "{comment}");
            let got = verify(handle, &token, u64_of(&case["now_unix_s"]));
            match expected_code(str_of(&case["expected"])) {
                tolldns_result::Ok => assert_eq!(got.map(|t| t.to_vec()), Ok(id), "{comment}"),
                code => assert_eq!(got, Err(code), "{comment}"),
            }
        }
        // SAFETY: `handle` came from `tolldns_token_verifier_new` and is not used again.
        unsafe { tolldns_token_verifier_free(handle) };
    }

    #[test]
    fn verifier_checks_pointers_lengths_and_keys() {
        let v = vectors();
        let handle = verifier(&v);
        let token = bytes(&v["cases"][0]["token_hex"]);
        let now = u64_of(&v["cases"][0]["now_unix_s"]);
        let spki = bytes(&v["issuer_spki_hex"]);
        let mut id = [0x55u8; 16];
        // SAFETY: every non-NULL pointer is a live buffer of the stated length; NULL pointers
        // are rejected before any access.
        unsafe {
            let mut h = null_mut();
            assert_eq!(
                tolldns_token_verifier_new(spki.as_ptr(), 31, &mut h),
                tolldns_result::InvalidParameter
            );
            assert_eq!(
                tolldns_token_verifier_new(null(), 32, &mut h),
                tolldns_result::NullParameter
            );
            assert_eq!(
                tolldns_token_verifier_new(spki.as_ptr(), 32, null_mut()),
                tolldns_result::NullParameter
            );
            assert!(h.is_null());

            let verify_into = |h, t: *const u8, n, out: *mut u8, out_len| {
                tolldns_token_verifier_verify(h, t, n, now, out, out_len)
            };
            let t = token.as_ptr();
            let n = token.len();
            let o = id.as_mut_ptr();
            assert_eq!(
                verify_into(null(), t, n, o, 16),
                tolldns_result::NullParameter
            );
            assert_eq!(
                verify_into(handle, null(), n, o, 16),
                tolldns_result::NullParameter
            );
            assert_eq!(
                verify_into(handle, t, n, null_mut(), 16),
                tolldns_result::NullParameter
            );
            assert_eq!(
                verify_into(handle, t, n, o, 15),
                tolldns_result::InsufficientSize
            );
            assert_eq!(
                verify_into(handle, null(), 0, o, 16),
                tolldns_result::TicketMalformed
            );
            assert_eq!(id, [0x55; 16]);

            // Bad keys: not an SPKI, a truncated SPKI, nothing.
            for bad in [&b"not a key"[..], &spki[..spki.len() - 1], &[][..]] {
                assert_eq!(
                    tolldns_token_verifier_add_key(handle, bad.as_ptr(), bad.len(), 0, 0),
                    tolldns_result::TicketBadKey
                );
            }
            assert_eq!(
                tolldns_token_verifier_add_key(handle, null(), 1, 0, 0),
                tolldns_result::NullParameter
            );
            assert_eq!(
                tolldns_token_verifier_add_key(null_mut(), spki.as_ptr(), spki.len(), 0, 0),
                tolldns_result::NullParameter
            );
            assert_eq!(
                tolldns_token_verifier_add_key(handle, spki.as_ptr(), spki.len(), 10, 10),
                tolldns_result::InvalidParameter
            );
            // None of the refused calls changed the verifier.
            assert_eq!((*handle).inner.keys().len(), 1);
            assert!(verify(handle, &token, now).is_ok());

            // Adding the same key again replaces its validity times.
            assert_eq!(
                tolldns_token_verifier_add_key(handle, spki.as_ptr(), spki.len(), now + 1, 0),
                tolldns_result::Ok
            );
            assert_eq!((*handle).inner.keys().len(), 1);
            assert_eq!(
                verify(handle, &token, now),
                Err(tolldns_result::TicketExpiredKey)
            );
            assert!(verify(handle, &token, u64::MAX).is_ok());

            tolldns_token_verifier_free(handle);
            tolldns_token_verifier_free(null_mut());
        }
    }
}
