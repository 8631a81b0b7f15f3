//! Integration tests of tolldns-receipts (one binary, one module per area).

mod attacks;
mod audit;
mod builder;
mod codec;
mod common;
mod merkle_reference;
mod stream;
mod vectors;
mod vectors_gen;
mod vectors_v2;
mod vectors_v2_gen;
mod verify;
