//! DNS name normalization and keyed name hashes.

use tolldns_core::{NameKey, NormalizedName};

use crate::boundary::{FfiResult, Out, OutBytes, guard, input_array, input_slice};
use crate::tolldns_result;

/// Longest canonical name in octets (without a trailing dot); an output buffer of this size
/// always holds a normalized name.
pub const TOLLDNS_MAX_NAME_LEN: usize = 253;
/// Length of a name hash in bytes.
pub const TOLLDNS_NAME_HASH_LEN: usize = 16;
/// Length of a per-epoch name key in bytes.
pub const TOLLDNS_NAME_KEY_LEN: usize = 32;
/// Length of a SHA-256 digest (name-key commitments, Merkle roots) in bytes.
pub const TOLLDNS_HASH_LEN: usize = 32;

/// Normalizes a DNS name (UTF-8 bytes, not NUL-terminated) to its canonical form: trimmed,
/// A-labels, lowercase, no trailing dot (the root is `"."`).
///
/// Writes the canonical name to `out` (without a NUL) and its length to `*out_n`.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; `TOLLDNS_RESULT_INSUFFICIENT_SIZE` if the canonical name
/// does not fit `out_len` (`TOLLDNS_MAX_NAME_LEN` always does); a `TOLLDNS_RESULT_NAME_*` code
/// naming the rule the input breaks.
///
/// # Safety
///
/// `input` must be readable for `input_len` bytes, `out` writable for `out_len` bytes and
/// `out_n` writable. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_name_normalize(
    input: *const u8,
    input_len: usize,
    out: *mut u8,
    out_len: usize,
    out_n: *mut usize,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees `input` is readable for `input_len` bytes.
        let input = unsafe { input_slice(input, input_len) }?;
        let out = OutBytes::new(out, out_len)?;
        let out_n = Out::new(out_n)?;
        let name = NormalizedName::from_bytes(input)?;
        // SAFETY: the caller guarantees `out` is writable for `out_len` bytes; `name` is ours.
        unsafe { out.write(name.as_bytes()) }?;
        // SAFETY: the caller guarantees `out_n` is writable.
        unsafe { out_n.write(name.len()) };
        Ok(())
    })
}

/// Computes the name hash carried in receipt leaves:
/// `HMAC-SHA256(name_key, canonical(name))[..16]`, normalizing `name` first.
///
/// `name_key` must be exactly `TOLLDNS_NAME_KEY_LEN` (32) bytes. Writes
/// `TOLLDNS_NAME_HASH_LEN` (16) bytes to `out`.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; `TOLLDNS_RESULT_INVALID_PARAMETER` if `name_key_len` is not
/// 32; `TOLLDNS_RESULT_INSUFFICIENT_SIZE` if `out_len` is below 16; a `TOLLDNS_RESULT_NAME_*`
/// code if the name cannot be normalized.
///
/// # Safety
///
/// `name_key` must be readable for `name_key_len` bytes, `name` for `name_len` bytes, and `out`
/// writable for `out_len` bytes. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_name_hash(
    name_key: *const u8,
    name_key_len: usize,
    name: *const u8,
    name_len: usize,
    out: *mut u8,
    out_len: usize,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees `name_key` is readable for `name_key_len` bytes.
        let key = NameKey(unsafe { input_array::<TOLLDNS_NAME_KEY_LEN>(name_key, name_key_len) }?);
        // SAFETY: the caller guarantees `name` is readable for `name_len` bytes.
        let name = unsafe { input_slice(name, name_len) }?;
        let out = OutBytes::new(out, out_len)?;
        out.check_fits(TOLLDNS_NAME_HASH_LEN)?;
        let name = NormalizedName::from_bytes(name)?;
        // SAFETY: the caller guarantees `out` is writable for `out_len` bytes.
        unsafe { out.write(&key.name_hash(&name)) }
    })
}

/// Computes the commitment to a name key carried in batch receipts:
/// `SHA256("TOLLDNS-NAMEKEY-V1" || name_key)`. Writes `TOLLDNS_HASH_LEN` (32) bytes to `out`.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; `TOLLDNS_RESULT_INVALID_PARAMETER` if `name_key_len` is not
/// 32; `TOLLDNS_RESULT_INSUFFICIENT_SIZE` if `out_len` is below 32.
///
/// # Safety
///
/// `name_key` must be readable for `name_key_len` bytes and `out` writable for `out_len` bytes.
/// Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_name_key_commitment(
    name_key: *const u8,
    name_key_len: usize,
    out: *mut u8,
    out_len: usize,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees `name_key` is readable for `name_key_len` bytes.
        let key = NameKey(unsafe { input_array::<TOLLDNS_NAME_KEY_LEN>(name_key, name_key_len) }?);
        let out = OutBytes::new(out, out_len)?;
        // SAFETY: the caller guarantees `out` is writable for `out_len` bytes.
        unsafe { out.write(&key.commitment()) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_match_the_core_crate() {
        assert_eq!(TOLLDNS_MAX_NAME_LEN, tolldns_core::MAX_NAME_LEN);
        assert_eq!(TOLLDNS_NAME_HASH_LEN, tolldns_core::hash::NAME_HASH_LEN);
    }

    #[test]
    fn normalize_writes_only_on_success() {
        let mut out = [0xAAu8; TOLLDNS_MAX_NAME_LEN];
        let mut n = 7usize;
        let input = b"  WWW.Example.COM. ";
        // SAFETY: live local buffers of the stated sizes.
        let r = unsafe {
            tolldns_name_normalize(input.as_ptr(), input.len(), out.as_mut_ptr(), 3, &mut n)
        };
        assert_eq!(r, tolldns_result::InsufficientSize);
        assert_eq!((out[0], n), (0xAA, 7));
        // SAFETY: as above.
        let r = unsafe {
            tolldns_name_normalize(
                input.as_ptr(),
                input.len(),
                out.as_mut_ptr(),
                out.len(),
                &mut n,
            )
        };
        assert_eq!(r, tolldns_result::Ok);
        assert_eq!(&out[..n], b"www.example.com");
        let bad = b"a..b";
        // SAFETY: as above.
        let r = unsafe {
            tolldns_name_normalize(bad.as_ptr(), bad.len(), out.as_mut_ptr(), out.len(), &mut n)
        };
        assert_eq!(r, tolldns_result::NameEmptyLabel);
        assert_eq!(n, 15);
    }

    #[test]
    fn hash_checks_key_length() {
        let key = [7u8; 32];
        let mut out = [0u8; 16];
        let name = b"Example.COM";
        // SAFETY: live local buffers of the stated sizes.
        let r = unsafe {
            tolldns_name_hash(
                key.as_ptr(),
                31,
                name.as_ptr(),
                name.len(),
                out.as_mut_ptr(),
                16,
            )
        };
        assert_eq!(r, tolldns_result::InvalidParameter);
        // SAFETY: as above.
        let r = unsafe {
            tolldns_name_hash(
                key.as_ptr(),
                32,
                name.as_ptr(),
                name.len(),
                out.as_mut_ptr(),
                16,
            )
        };
        assert_eq!(r, tolldns_result::Ok);
        assert_eq!(hex::encode(out), "c13085385a7e7ffe2432b11c16377eb4");
    }
}
