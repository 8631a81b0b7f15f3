//! Host-side integration tests for the TollDNS programs; see `tests/`.
