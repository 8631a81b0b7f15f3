//! `tolldns-miner`: see `tolldns_miner::cli`.

fn main() -> std::process::ExitCode {
    tolldns_miner::cli::main()
}
