//! Instruction account contexts and handlers (one module per instruction family).
//!
//! Handlers are methods on their `Accounts` struct so that the names do not collide when the
//! modules are glob re-exported (Anchor's `#[program]` needs the structs at the crate root).

pub mod admin;
pub mod init_config;
pub mod operator;
pub mod slash;
pub mod stake;
pub mod tickets;

pub use admin::*;
pub use init_config::*;
pub use operator::*;
pub use slash::*;
pub use stake::*;
pub use tickets::*;
