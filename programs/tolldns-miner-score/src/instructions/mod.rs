//! Instruction account contexts and handlers (one module per instruction family).
//!
//! Handlers are methods on their `Accounts` struct so that the names do not collide when the
//! modules are glob re-exported (Anchor's `#[program]` needs the structs at the crate root).

pub mod admin;
pub mod auth;
pub mod claim;
pub mod finalize;
pub mod init_config;
pub mod penalize;
pub mod report;
pub mod retract;
pub mod settle;

pub use admin::*;
pub use auth::*;
pub use claim::*;
pub use finalize::*;
pub use init_config::*;
pub use penalize::*;
pub use report::*;
pub use retract::*;
pub use settle::*;
