#![no_std]
//! Placeholder: being written.
