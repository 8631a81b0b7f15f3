//! `tolldns-miner`: see `tolldns_miner::cli`.

/// mimalloc instead of the platform's malloc: a cache miss allocates and frees a few small
/// buffers per query, and glibc's (or musl's) allocator cost ~10 % of the miss path's CPU.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tolldns_miner::cli::main()
}
