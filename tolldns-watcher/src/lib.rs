//! TollDNS watcher (work in progress).
