//! Events emitted by the registry (Anchor `emit!`, base64 in the program log).

#![warn(missing_docs)]

use anchor_lang::prelude::*;

use crate::state::OperatorStatus;

/// Stake was slashed.
#[event]
pub struct StakeSlashed {
    /// The wallet whose stake was slashed.
    pub wallet: Pubkey,
    /// The slasher that signed.
    pub slasher: Pubkey,
    /// What was asked.
    pub requested: u64,
    /// What was taken (moved to the treasury).
    pub amount: u64,
    /// Hash of the evidence the slash cites.
    pub reason_hash: [u8; 32],
}

/// The registry was initialized.
#[event]
pub struct RegistryInitialized {
    /// The authority.
    pub authority: Pubkey,
    /// The TOLL mint.
    pub toll_mint: Pubkey,
    /// The stake vault.
    pub stake_vault: Pubkey,
    /// The treasury (immutable).
    pub treasury: Pubkey,
    /// The epoch length in slots (immutable).
    pub epoch_len_slots: u64,
    /// The exit delay in slots.
    pub exit_delay_slots: u64,
    /// The ticket price.
    pub ticket_price: u64,
}

/// The ticket price changed.
#[event]
pub struct TicketPriceSet {
    /// The previous price.
    pub old_price: u64,
    /// The new price.
    pub new_price: u64,
}

/// The exit delay was decreased.
#[event]
pub struct ExitDelayDecreased {
    /// The previous delay.
    pub old_delay_slots: u64,
    /// The new delay.
    pub new_delay_slots: u64,
    /// The config's `slasher_floor_slot` afterwards.
    pub slasher_floor_slot: u64,
}

/// A slasher was added (time-locked).
#[event]
pub struct SlasherAdded {
    /// The new slasher.
    pub slasher: Pubkey,
    /// The first slot at which it may slash.
    pub active_from_slot: u64,
}

/// A slasher was removed.
#[event]
pub struct SlasherRemoved {
    /// The removed slasher.
    pub slasher: Pubkey,
}

/// The authority proposed a new authority (or cancelled the proposal with `None`).
#[event]
pub struct RegistryAuthorityTransferProposed {
    /// The current authority.
    pub authority: Pubkey,
    /// The proposed authority.
    pub pending_authority: Option<Pubkey>,
}

/// The pending authority accepted and is now the authority.
#[event]
pub struct RegistryAuthorityTransferred {
    /// The previous authority.
    pub previous_authority: Pubkey,
    /// The new authority.
    pub new_authority: Pubkey,
}

/// An operator registered.
#[event]
pub struct OperatorRegistered {
    /// The operator's wallet.
    pub wallet: Pubkey,
    /// The receipt-signing key.
    pub signing_key: [u8; 32],
    /// Role bits.
    pub roles: u16,
    /// The registration slot (the key is valid from it).
    pub slot: u64,
}

/// An operator's profile (roles, backend ids, endpoints) changed.
#[event]
pub struct OperatorUpdated {
    /// The operator's wallet.
    pub wallet: Pubkey,
    /// The new role bits.
    pub roles: u16,
    /// The number of backend ids.
    pub backend_count: u8,
    /// The number of endpoints.
    pub endpoint_count: u8,
}

/// An operator scheduled a new receipt-signing key.
#[event]
pub struct SigningKeyRotated {
    /// The operator's wallet.
    pub wallet: Pubkey,
    /// The new key.
    pub new_key: [u8; 32],
    /// The first slot from which it is valid.
    pub valid_from_slot: u64,
    /// The previous key (valid until `valid_from_slot`), if any.
    pub previous_key: Option<[u8; 32]>,
}

/// An operator's status changed.
#[event]
pub struct OperatorStatusChanged {
    /// The operator's wallet.
    pub wallet: Pubkey,
    /// The previous status.
    pub old_status: OperatorStatus,
    /// The new status.
    pub new_status: OperatorStatus,
}

/// A retired operator was closed (rent back to the wallet).
#[event]
pub struct OperatorClosed {
    /// The operator's wallet.
    pub wallet: Pubkey,
}

/// Stake was deposited (pending until `active_from_epoch`).
#[event]
pub struct StakeDeposited {
    /// The wallet.
    pub wallet: Pubkey,
    /// The amount deposited.
    pub amount: u64,
    /// The epoch of the deposit.
    pub epoch: u64,
    /// The first epoch in which the deposit counts.
    pub active_from_epoch: u64,
    /// Everything the account holds afterwards.
    pub total: u64,
}

/// Active stake moved into an exit ticket.
#[event]
pub struct ExitRequested {
    /// The wallet.
    pub wallet: Pubkey,
    /// The amount leaving.
    pub amount: u64,
    /// The epoch of the request (the amount no longer counts for it).
    pub epoch: u64,
    /// First slot of the withdrawal.
    pub unlock_slot: u64,
}

/// An unlocked exit ticket was withdrawn to the wallet's token account.
#[event]
pub struct StakeWithdrawn {
    /// The wallet.
    pub wallet: Pubkey,
    /// The amount withdrawn.
    pub amount: u64,
    /// The destination token account.
    pub destination: Pubkey,
}

/// An empty stake account was closed (rent back to the wallet).
#[event]
pub struct StakeClosed {
    /// The wallet.
    pub wallet: Pubkey,
}

/// Tickets were bought.
#[event]
pub struct TicketsBought {
    /// The buyer.
    pub buyer: Pubkey,
    /// The issuer's wallet.
    pub issuer: Pubkey,
    /// Tickets bought by this purchase.
    pub tickets: u64,
    /// The price paid per ticket.
    pub price: u64,
    /// The cost (`tickets × price`), moved to the treasury.
    pub cost: u64,
    /// The buyer's cumulative tickets afterwards.
    pub tickets_bought_total: u64,
}
