//! `tolldns-watcher`: see `tolldns_watcher::cli`.

fn main() -> std::process::ExitCode {
    tolldns_watcher::cli::main()
}
