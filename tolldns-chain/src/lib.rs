//! TollDNS chain client (work in progress).
