//! Host-side test support for the TollDNS programs.
//!
//! * [`anchor_builtin!`] runs an Anchor program as a `solana-program-test` builtin;
//!   [`program_test`] builds the program-test set-up with both programs and SPL token.
//! * [`localnet`] serves that bank as a Solana JSON-RPC subset over HTTP on loopback, with
//!   slots that advance with wall time, for tests that run real processes against the
//!   programs.
//!
//! The program-level tests themselves are in `tests/`.

#![warn(missing_docs)]
#![allow(deprecated)] // solana-program-test 3.x marks its API "agave-unstable-api"

pub mod localnet;

/// Defines `fn $name(program_id, accounts, data) -> ProgramResult`, which calls the Anchor
/// program entry `$entry`. Anchor's generated `entry` takes arguments that share one `'info`
/// lifetime; `processor!` wants independent lifetimes: only the lifetime changes.
#[macro_export]
macro_rules! anchor_builtin {
    ($name:ident, $entry:path) => {
        fn $name(
            program_id: &anchor_lang::prelude::Pubkey,
            accounts: &[anchor_lang::prelude::AccountInfo<'_>],
            data: &[u8],
        ) -> anchor_lang::solana_program::entrypoint::ProgramResult {
            let program_id: &'static anchor_lang::prelude::Pubkey =
                Box::leak(Box::new(*program_id));
            let data: &'static [u8] = Box::leak(data.to_vec().into_boxed_slice());
            #[allow(unsafe_code)]
            // SAFETY: only the lifetime parameter changes. The `AccountInfo`s borrow
            // program-test's serialized parameter buffer, which outlives this call; the program
            // keeps no reference past its return, and the leaked copies are never used after it
            // (test-only leak).
            let accounts: Vec<anchor_lang::prelude::AccountInfo<'static>> = unsafe {
                std::mem::transmute::<
                    Vec<anchor_lang::prelude::AccountInfo<'_>>,
                    Vec<anchor_lang::prelude::AccountInfo<'static>>,
                >(accounts.to_vec())
            };
            let accounts: &'static [anchor_lang::prelude::AccountInfo<'static>] =
                Box::leak(accounts.into_boxed_slice());
            $entry(program_id, accounts, data)
        }
    };
}

anchor_builtin!(score_entry, tolldns_miner_score::entry);
anchor_builtin!(registry_entry, tolldns_registry::entry);

/// A `ProgramTest` with `tolldns-miner-score` and `tolldns-registry` as native builtins and
/// program-test's bundled BPF build of SPL token.
pub fn program_test() -> solana_program_test::ProgramTest {
    let mut pt = solana_program_test::ProgramTest::new(
        "tolldns_miner_score",
        tolldns_miner_score::ID,
        solana_program_test::processor!(score_entry),
    );
    pt.add_program(
        "tolldns_registry",
        tolldns_registry::ID,
        solana_program_test::processor!(registry_entry),
    );
    pt.prefer_bpf(false);
    pt
}
