//! Core types shared by every TollDNS crate, the on-chain program and the C FFI.
//!
//! `tolldns-core` is `#![no_std]`, reads no clock and owns no randomness. It provides:
//!
//! - [`Role`]: the operator roles, as append-only `u8` wire tags;
//! - [`OperatorId`] and [`BackendId`]: an operator's ed25519 public key and a bounded ASCII
//!   backend identifier;
//! - [`WindowLen`] and [`WindowId`]: wall-clock receipt windows, with checked arithmetic;
//! - [`DeploymentId`]: the network (score program and cluster) a receipt is signed for;
//! - [`NormalizedName`]: DNS name normalization (trim, one trailing dot, IDNA A-labels,
//!   lowercase, length rules), every rejection a typed [`NameError`];
//! - [`hash`]: tagged SHA-256 and HMAC-SHA256 helpers and the domain-separation tags.
//!
//! ```
//! use tolldns_core::{NormalizedName, WindowId, WindowLen};
//!
//! let name = NormalizedName::new("  WWW.Example.COM. ")?;
//! assert_eq!(name.as_str(), "www.example.com");
//!
//! let len = WindowLen::new(60)?;
//! let window = WindowId::containing(1_760_000_123_456, len);
//! assert_eq!(window.get(), 29_333_335);
//! assert_eq!(window.start_ms(len)?, 1_760_000_100_000);
//! # Ok::<(), Box<dyn core::error::Error>>(())
//! ```
//!
//! # Cargo features
//!
//! - `idna` (default): Unicode names are mapped to A-labels with the `idna` crate (UTS #46),
//!   which allocates while converting. Without it, a non-ASCII name is rejected with
//!   [`NameError::NonAscii`]. ASCII names are normalized without allocating either way.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::arithmetic_side_effects,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod hash;
pub use hash::{NameKey, PreparedNameKey};
mod id;
mod name;
mod role;
mod time;

pub use id::{BackendId, BackendIdError, DeploymentId, DeploymentIdError, OperatorId};
pub use name::{MAX_INPUT_LEN, MAX_LABEL_LEN, MAX_NAME_LEN, NameError, NormalizedName};
pub use role::{Role, UnknownRole};
pub use time::{TimeError, WindowId, WindowLen};
