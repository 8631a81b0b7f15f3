//! `tolldns-issuer`: see `tolldns_issuer::cli`.

fn main() -> std::process::ExitCode {
    tolldns_issuer::cli::main()
}
