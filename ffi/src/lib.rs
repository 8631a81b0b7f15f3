//! The TollDNS C ABI, for appliance and router-firmware vendors.
//!
//! `tolldns-ffi` wraps `tolldns-core` (name normalization and name hashing),
//! `tolldns-receipts` (receipt leaves, signed batch receipts, Merkle proofs, audit sampling;
//! format v1 in [`receipts`], format v2 in [`receipts_v2`]),
//! `tolldns-score` (miner scoring and reward allocation) and `tolldns-tickets` (toll-ticket
//! verification and ticket ids) in `extern "C"` functions. The C header
//! `include/tolldns.h` is generated from this crate by cbindgen and committed; `ffi/README.md`
//! shows how to build and link the static or shared library.
//!
//! # Conventions
//!
//! - Every fallible function returns a [`tolldns_result`]; `TOLLDNS_RESULT_OK` (0) is success.
//!   The numbers are stable and append-only; [`tolldns_result_message`] describes each one.
//! - Arguments come in the order receiver, inputs, outputs. A `const uint8_t *` is always
//!   followed by its `size_t` length; an output buffer `uint8_t *out, size_t out_len` is
//!   followed by `size_t *out_n`, the number of bytes written, when its length varies.
//! - Every pointer is checked: a NULL pointer is `TOLLDNS_RESULT_NULL_PARAMETER`, except that an
//!   input buffer may be NULL when its length is 0. Pointers to structures must be aligned for
//!   their type (`TOLLDNS_RESULT_INVALID_PARAMETER` otherwise).
//! - Outputs are written only on success: after an error, every out-parameter and output
//!   buffer holds what the caller put there.
//! - Every entry point runs inside a panic boundary: a panic (a bug in this library) becomes
//!   `TOLLDNS_RESULT_PANIC` instead of unwinding into C. This needs the default
//!   `panic = "unwind"`; with `panic = "abort"` the process aborts instead (see the README).
//! - Opaque handles are `tolldns_<noun>` with `tolldns_<noun>_new` and `tolldns_<noun>_free`.
//!   `_free` accepts NULL.
//!
//! # Threads
//!
//! The library has no global state, starts no threads and runs no async runtime: the caller
//! owns threads, sockets and clocks, and the library works on bytes. Every function that takes
//! no handle may be called from any number of threads at once. A handle may be moved to another
//! thread, but must not be used from two threads at the same time without the caller's own
//! lock.
//!
//! # Cargo features
//!
//! - `idna` (default): internationalized names are mapped to A-labels in
//!   [`name::tolldns_name_normalize`] and [`name::tolldns_name_hash`]. Without it a non-ASCII
//!   name is `TOLLDNS_RESULT_NAME_NON_ASCII`.
#![warn(missing_docs)]
// C names (`tolldns_result`, `tolldns_u128`) are the public ABI and follow C conventions.
#![allow(non_camel_case_types)]

mod boundary;
pub mod error;
pub mod name;
pub mod receipts;
pub mod receipts_v2;
pub mod score;
pub mod tickets;

pub use error::{tolldns_result, tolldns_result_message};

use core::ffi::c_char;

/// The library's version, `"tolldns-ffi/<semver>"`, as a static NUL-terminated string.
const VERSION: &str = concat!("tolldns-ffi/", env!("CARGO_PKG_VERSION"), "\0");

/// The library's version as a NUL-terminated string such as `"tolldns-ffi/0.1.0"`.
///
/// The string is static: the caller must not free or modify it. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn tolldns_version() -> *const c_char {
    VERSION.as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_nul_terminated_and_matches_the_package() {
        // SAFETY: `tolldns_version` returns a pointer to a static NUL-terminated string.
        let s = unsafe { core::ffi::CStr::from_ptr(tolldns_version()) };
        assert_eq!(
            s.to_str().unwrap(),
            format!("tolldns-ffi/{}", env!("CARGO_PKG_VERSION"))
        );
    }
}
