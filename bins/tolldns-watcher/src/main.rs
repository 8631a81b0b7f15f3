//! `tolldns-watcher`: see the tolldns-watcher library.

fn main() {}
