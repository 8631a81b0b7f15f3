//! Account layouts and the stake bookkeeping.
//!
//! All accounts are Borsh after Anchor's 8-byte discriminator, with a fixed size
//! (`8 + INIT_SPACE`): every list is allocated at its bound, so nothing ever reallocs.
//!
//! # Stake weight per epoch
//!
//! A [`Stake`] account answers "what was this wallet's stake weight during epoch `e`?" by itself,
//! so that the score program reads the weight from the account (owner, PDA and epoch checked)
//! and never from a submitter. The rules:
//!
//! - a deposit made during epoch `d` is *pending* and becomes active at the start of `d + 1`;
//! - an exit request or a slash lowers the active stake at once;
//! - the weight of epoch `e` is the **lowest** active stake during `e`: the active stake at the
//!   start of `e` minus everything that left during `e`. Stake deposited during `e` never counts
//!   for `e`, and stake that leaves during `e` does not count for `e` either.
//!
//! The account keeps one [`Checkpoint`] per epoch in which it changed (the newest
//! [`STAKE_CHECKPOINTS`]): the weight of that epoch and the stake after its last change. The
//! weight of an epoch without a checkpoint is the `weight_after` of the newest earlier
//! checkpoint (nothing changed in between). An epoch older than every kept checkpoint (and not
//! older than the account) can no longer be answered:
//! [`RegistryError::StakeHistoryUnavailable`]. With eight checkpoints that takes at least eight
//! later epochs with changes, longer than any reporting deadline the score program accepts.

#![warn(missing_docs)]

use anchor_lang::prelude::*;

use crate::constants::{
    MAX_BACKENDS, MAX_BACKEND_ID_LEN, MAX_ENDPOINTS, MAX_ENDPOINT_LEN, MAX_EXITS, MAX_SLASHERS,
    STAKE_CHECKPOINTS,
};
use crate::error::RegistryError;

/// The registry's configuration, PDA `["registry_config"]`.
#[account]
#[derive(InitSpace, Debug)]
pub struct RegistryConfig {
    /// May update the config and start an authority transfer.
    pub authority: Pubkey,
    /// The authority proposed by `transfer_registry_authority`, until it accepts.
    pub pending_authority: Option<Pubkey>,
    /// Mint of the TOLL token (stake and ticket payments).
    pub toll_mint: Pubkey,
    /// The stake vault (PDA `["stake_vault"]`), holding every deposit until withdrawn or slashed.
    pub stake_vault: Pubkey,
    /// Token account (of `toll_mint`) that receives ticket payments and slashed stake.
    pub treasury: Pubkey,
    /// Epoch length in slots (epoch `e` is `[e × len, (e + 1) × len)`); must equal the score
    /// program's. Fixed at init.
    pub epoch_len_slots: u64,
    /// Slots between an exit request and the first slot its tokens can be withdrawn.
    pub exit_delay_slots: u64,
    /// Price of one ticket, in base units of `toll_mint`.
    pub ticket_price: u64,
    /// Keys allowed to slash (a dispute authority, the score program's slasher PDA), each from
    /// its `active_from_slot`: a slasher added after init acts only once `exit_delay_slots` have
    /// passed, so every staker can leave before a new slasher can touch its stake.
    #[max_len(MAX_SLASHERS)]
    pub slashers: Vec<Slasher>,
    /// Bump of this PDA.
    pub bump: u8,
    /// Bump of the stake vault.
    pub stake_vault_bump: u8,
    /// Bump of the stake-vault authority.
    pub stake_vault_authority_bump: u8,
    /// No slasher added from now on may act before this slot: the last unlock slot of any exit
    /// requested under a longer exit delay that has since been decreased (see
    /// [`RegistryConfig::new_slasher_active_from`]).
    pub slasher_floor_slot: u64,
}

impl RegistryConfig {
    /// The epoch containing `slot`.
    ///
    /// # Errors
    ///
    /// [`RegistryError::InvalidConfig`] for a zero epoch length (never stored by this program).
    pub fn epoch_of(&self, slot: u64) -> Result<u64> {
        slot.checked_div(self.epoch_len_slots)
            .ok_or_else(|| error!(RegistryError::InvalidConfig))
    }

    /// The first slot at which a slasher added at `now` may act: late enough that every staker
    /// can react, exit and withdraw first. It is
    /// `max(start of the next epoch, slasher_floor_slot) + 2 × exit_delay_slots`:
    ///
    /// - a staker has at least `exit_delay_slots` slots after the announcement to request its
    ///   exit, and that exit unlocks at least one slot before the slasher can act;
    /// - stake deposited during the current epoch is pending and can only exit from the next
    ///   epoch on, so its reaction window starts there;
    /// - exits requested under a longer exit delay that has since been decreased keep their
    ///   later unlock slot, which is at most [`RegistryConfig::slasher_floor_slot`].
    ///
    /// (`now + exit_delay_slots` would not be enough: an exit requested one slot after the
    /// announcement would unlock one slot after the slasher's activation, and a pending deposit
    /// could not exit at all before it.)
    ///
    /// # Errors
    ///
    /// [`RegistryError::InvalidConfig`] for a zero epoch length, [`RegistryError::MathOverflow`].
    pub fn new_slasher_active_from(&self, now: u64) -> Result<u64> {
        let next_epoch = add(self.epoch_of(now)?, 1)?;
        let next_epoch_start = next_epoch
            .checked_mul(self.epoch_len_slots)
            .ok_or_else(|| error!(RegistryError::MathOverflow))?;
        let lock = self
            .exit_delay_slots
            .checked_mul(2)
            .ok_or_else(|| error!(RegistryError::MathOverflow))?;
        add(next_epoch_start.max(self.slasher_floor_slot), lock)
    }

    /// Lowers the exit delay to `slots` at `now`, first raising
    /// [`RegistryConfig::slasher_floor_slot`] to the last unlock slot an exit requested under
    /// the old delay can have (`now + exit_delay_slots`).
    ///
    /// # Errors
    ///
    /// [`RegistryError::InvalidConfig`] unless `0 < slots < exit_delay_slots`.
    pub fn decrease_exit_delay(&mut self, slots: u64, now: u64) -> Result<()> {
        require!(
            slots > 0 && slots < self.exit_delay_slots,
            RegistryError::InvalidConfig
        );
        // Saturating: a delay so long that no exit under it could be requested (its unlock
        // slot overflows) still decreases, and leaves the floor at `u64::MAX`.
        let old_horizon = now.saturating_add(self.exit_delay_slots);
        self.slasher_floor_slot = self.slasher_floor_slot.max(old_horizon);
        self.exit_delay_slots = slots;
        Ok(())
    }

    /// Whether `key` may slash at `slot`.
    pub fn is_slasher(&self, key: &Pubkey, slot: u64) -> bool {
        self.slashers
            .iter()
            .any(|s| s.key == *key && slot >= s.active_from_slot)
    }
}

/// A key allowed to slash, from a slot on.
#[derive(AnchorSerialize, AnchorDeserialize, InitSpace, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slasher {
    /// The key (a wallet, a multisig, or a program's PDA signing through CPI).
    pub key: Pubkey,
    /// First slot at which it may slash.
    pub active_from_slot: u64,
}

/// Lifecycle of an operator.
#[derive(AnchorSerialize, AnchorDeserialize, InitSpace, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OperatorStatus {
    /// Serving; its receipts may count.
    Active,
    /// Temporarily not serving (maintenance); may return to `Active`.
    Paused,
    /// Gone for good; only closing remains.
    Retired,
}

/// A public endpoint of an operator.
#[derive(AnchorSerialize, AnchorDeserialize, InitSpace, Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The transport, as receipts number it: 1 UDP, 2 TCP, 3 DoT, 4 DoH, 5 DoQ; or 6, the
    /// audit API ([`TRANSPORT_AUDIT_API`](crate::constants::TRANSPORT_AUDIT_API)).
    pub transport: u8,
    /// `host:port` (UDP, TCP, DoT, DoQ), an `https://` URL (DoH) or an `http://host:port` /
    /// `https://host:port` origin (audit API), at most [`MAX_ENDPOINT_LEN`] bytes.
    #[max_len(MAX_ENDPOINT_LEN)]
    pub address: String,
}

/// A receipt-signing key and the first slot from which it signs.
#[derive(AnchorSerialize, AnchorDeserialize, InitSpace, Clone, Copy, Debug, PartialEq, Eq)]
pub struct SigningKey {
    /// The ed25519 public key (the receipts' `OperatorId`).
    pub key: [u8; 32],
    /// First slot from which receipts signed by this key count.
    pub valid_from_slot: u64,
}

/// An operator, PDA `["operator", wallet]`: the on-chain `OperatorRegistry` of receipt
/// verification.
#[account]
#[derive(InitSpace, Debug)]
pub struct Operator {
    /// The wallet that registered (and alone controls) this operator; stake is keyed by it too.
    pub wallet: Pubkey,
    /// The current delegate receipt-signing key (possibly scheduled: valid from its slot).
    pub signing_key: SigningKey,
    /// The key before the last rotation, valid from its slot until `signing_key` takes over.
    pub previous_signing_key: Option<SigningKey>,
    /// Role bits ([`crate::constants::ROLE_MASK`]).
    pub roles: u16,
    /// Registered backend ids (receipts v2 name one of them).
    #[max_len(MAX_BACKENDS, MAX_BACKEND_ID_LEN)]
    pub backend_ids: Vec<String>,
    /// Public endpoints, which watchers probe.
    #[max_len(MAX_ENDPOINTS)]
    pub endpoints: Vec<Endpoint>,
    /// Lifecycle status.
    pub status: OperatorStatus,
    /// Slot of registration.
    pub registered_at_slot: u64,
    /// Slot of the last change.
    pub updated_at_slot: u64,
    /// Bump of this PDA.
    pub bump: u8,
}

impl Operator {
    /// The signing key whose receipts count at `slot`, if any.
    pub fn signing_key_at(&self, slot: u64) -> Option<[u8; 32]> {
        if slot >= self.signing_key.valid_from_slot {
            return Some(self.signing_key.key);
        }
        match self.previous_signing_key {
            Some(prev) if slot >= prev.valid_from_slot => Some(prev.key),
            _ => None,
        }
    }

    /// Schedules `key` from `valid_from_slot` (≥ `now`). If the current key is already valid it
    /// becomes the previous key; if it is itself still scheduled, it is replaced (the previous
    /// key stays).
    ///
    /// # Errors
    ///
    /// [`RegistryError::KeyValidFromInPast`] if `valid_from_slot < now`.
    pub fn rotate(&mut self, key: [u8; 32], valid_from_slot: u64, now: u64) -> Result<()> {
        require!(valid_from_slot >= now, RegistryError::KeyValidFromInPast);
        if self.signing_key.valid_from_slot <= now {
            self.previous_signing_key = Some(self.signing_key);
        }
        self.signing_key = SigningKey {
            key,
            valid_from_slot,
        };
        Ok(())
    }
}

/// A pending exit: tokens that left the active stake and can be withdrawn from `unlock_slot`.
#[derive(AnchorSerialize, AnchorDeserialize, InitSpace, Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitTicket {
    /// Tokens to withdraw (lowered by slashes).
    pub amount: u64,
    /// First slot of the withdrawal (`request slot + exit_delay_slots`).
    pub unlock_slot: u64,
}

/// The stake of one epoch in which the account changed.
#[derive(AnchorSerialize, AnchorDeserialize, InitSpace, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The epoch.
    pub epoch: u64,
    /// The epoch's weight: the lowest active stake during it.
    pub weight: u64,
    /// Active plus pending stake after the epoch's last change: the weight of every later
    /// epoch up to the next checkpoint.
    pub weight_after: u64,
}

/// A wallet's stake, PDA `["stake", wallet]`. The tokens are in the stake vault.
#[account]
#[derive(InitSpace, Debug)]
pub struct Stake {
    /// The wallet that deposited and alone can exit and withdraw.
    pub wallet: Pubkey,
    /// Stake that counts for the current epoch and later ones.
    pub active: u64,
    /// Deposits that become active at `pending_epoch`.
    pub pending: u64,
    /// The epoch from which `pending` is active.
    pub pending_epoch: u64,
    /// Exit tickets, oldest first.
    #[max_len(MAX_EXITS)]
    pub exits: Vec<ExitTicket>,
    /// Everything slashed from this account so far.
    pub slashed_total: u64,
    /// Epoch of the first deposit (the weight of earlier epochs is zero).
    pub created_epoch: u64,
    /// Per-epoch checkpoints, oldest first, the newest [`STAKE_CHECKPOINTS`].
    #[max_len(STAKE_CHECKPOINTS)]
    pub checkpoints: Vec<Checkpoint>,
    /// Bump of this PDA.
    pub bump: u8,
}

/// Adds with overflow checking, as a registry error.
fn add(a: u64, b: u64) -> Result<u64> {
    a.checked_add(b)
        .ok_or_else(|| error!(RegistryError::MathOverflow))
}

/// Subtracts with underflow checking, as a registry error.
fn sub(a: u64, b: u64) -> Result<u64> {
    a.checked_sub(b)
        .ok_or_else(|| error!(RegistryError::MathOverflow))
}

impl Stake {
    /// An empty stake account for `wallet`, created during `epoch`.
    pub fn new(wallet: Pubkey, epoch: u64, bump: u8) -> Self {
        Self {
            wallet,
            active: 0,
            pending: 0,
            pending_epoch: 0,
            exits: Vec::new(),
            slashed_total: 0,
            created_epoch: epoch,
            checkpoints: Vec::new(),
            bump,
        }
    }

    /// Every token this account holds in the vault: active, pending and exiting.
    ///
    /// # Errors
    ///
    /// [`RegistryError::MathOverflow`] (never for accounts written by this program).
    pub fn total(&self) -> Result<u64> {
        let mut total = add(self.active, self.pending)?;
        for exit in &self.exits {
            total = add(total, exit.amount)?;
        }
        Ok(total)
    }

    /// Brings the account to `epoch`: activates pending deposits that are due and makes sure
    /// the newest checkpoint is `epoch`'s (a new one starts at the previous `weight_after`).
    ///
    /// # Errors
    ///
    /// [`RegistryError::ClockWentBackwards`] if the newest checkpoint is later than `epoch`.
    pub fn roll(&mut self, epoch: u64) -> Result<()> {
        if self.pending > 0 && epoch >= self.pending_epoch {
            self.active = add(self.active, self.pending)?;
            self.pending = 0;
        }
        let start = match self.checkpoints.last() {
            Some(last) if last.epoch == epoch => return Ok(()),
            Some(last) if last.epoch > epoch => return err!(RegistryError::ClockWentBackwards),
            Some(last) => last.weight_after,
            None => 0,
        };
        if self.checkpoints.len() >= STAKE_CHECKPOINTS {
            self.checkpoints.remove(0);
        }
        self.checkpoints.push(Checkpoint {
            epoch,
            weight: start,
            weight_after: start,
        });
        Ok(())
    }

    /// Records the current stake in the newest checkpoint (after a change in its epoch).
    fn record(&mut self) -> Result<()> {
        let active = self.active;
        let after = add(self.active, self.pending)?;
        let last = self
            .checkpoints
            .last_mut()
            .ok_or_else(|| error!(RegistryError::ClockWentBackwards))?;
        last.weight = last.weight.min(active);
        last.weight_after = after;
        Ok(())
    }

    /// Deposits `amount` during `epoch`: pending, active from `epoch + 1`.
    ///
    /// # Errors
    ///
    /// [`RegistryError::ZeroAmount`], [`RegistryError::MathOverflow`] and `roll`'s errors.
    pub fn deposit(&mut self, amount: u64, epoch: u64) -> Result<()> {
        require!(amount > 0, RegistryError::ZeroAmount);
        self.roll(epoch)?;
        self.pending = add(self.pending, amount)?;
        self.pending_epoch = add(epoch, 1)?;
        self.record()
    }

    /// Moves `amount` of active stake into a new exit ticket unlocking at `unlock_slot`; the
    /// amount stops counting for `epoch` at once.
    ///
    /// # Errors
    ///
    /// [`RegistryError::ZeroAmount`], [`RegistryError::InsufficientActiveStake`],
    /// [`RegistryError::TooManyExits`] and `roll`'s errors.
    pub fn request_exit(&mut self, amount: u64, epoch: u64, unlock_slot: u64) -> Result<()> {
        require!(amount > 0, RegistryError::ZeroAmount);
        require!(self.exits.len() < MAX_EXITS, RegistryError::TooManyExits);
        self.roll(epoch)?;
        require!(
            amount <= self.active,
            RegistryError::InsufficientActiveStake
        );
        self.active = sub(self.active, amount)?;
        self.exits.push(ExitTicket {
            amount,
            unlock_slot,
        });
        self.record()
    }

    /// Removes exit ticket `index` if it is unlocked at `slot`, returning its amount.
    ///
    /// # Errors
    ///
    /// [`RegistryError::NoSuchExit`], [`RegistryError::ExitLocked`].
    pub fn withdraw(&mut self, index: u8, slot: u64) -> Result<u64> {
        let index = usize::from(index);
        let exit = *self
            .exits
            .get(index)
            .ok_or_else(|| error!(RegistryError::NoSuchExit))?;
        require!(slot >= exit.unlock_slot, RegistryError::ExitLocked);
        self.exits.remove(index);
        Ok(exit.amount)
    }

    /// Takes up to `amount` during `epoch`: from the active stake first, then the pending
    /// deposits, then the exit tickets (newest first). Returns what was taken.
    ///
    /// # Errors
    ///
    /// [`RegistryError::ZeroAmount`], [`RegistryError::NothingToSlash`] and `roll`'s errors.
    pub fn slash(&mut self, amount: u64, epoch: u64) -> Result<u64> {
        require!(amount > 0, RegistryError::ZeroAmount);
        self.roll(epoch)?;
        let mut left = amount;
        let take = left.min(self.active);
        self.active = sub(self.active, take)?;
        left = sub(left, take)?;
        let take = left.min(self.pending);
        self.pending = sub(self.pending, take)?;
        left = sub(left, take)?;
        for exit in self.exits.iter_mut().rev() {
            let take = left.min(exit.amount);
            exit.amount = sub(exit.amount, take)?;
            left = sub(left, take)?;
        }
        self.exits.retain(|exit| exit.amount > 0);
        let taken = sub(amount, left)?;
        require!(taken > 0, RegistryError::NothingToSlash);
        self.slashed_total = add(self.slashed_total, taken)?;
        self.record()?;
        Ok(taken)
    }

    /// The stake weight of `epoch` (see the module docs).
    ///
    /// # Errors
    ///
    /// [`RegistryError::StakeHistoryUnavailable`] if the checkpoints that answer it were
    /// dropped.
    pub fn weight_for_epoch(&self, epoch: u64) -> Result<u64> {
        if epoch < self.created_epoch {
            return Ok(0);
        }
        let mut answer = None;
        for cp in &self.checkpoints {
            if cp.epoch == epoch {
                return Ok(cp.weight);
            }
            if cp.epoch < epoch {
                answer = Some(cp.weight_after);
            }
        }
        answer.ok_or_else(|| error!(RegistryError::StakeHistoryUnavailable))
    }
}

/// What a buyer has paid one issuer for, PDA `["ticket_quota", buyer, issuer wallet]`. That
/// issuer credits the buyer with `tickets_bought` minus what it has already credited; other
/// issuers ignore it.
#[account]
#[derive(InitSpace, Debug)]
pub struct TicketQuota {
    /// The buyer's wallet (the key its purchase header is signed with).
    pub buyer: Pubkey,
    /// The wallet of the issuer (a registered operator with the issuer role) the tickets are
    /// bought from.
    pub issuer: Pubkey,
    /// Tickets bought so far (cumulative).
    pub tickets_bought: u64,
    /// Base units paid so far (cumulative).
    pub total_paid: u64,
    /// Number of purchases.
    pub purchases: u64,
    /// Slot of the last purchase.
    pub last_purchase_slot: u64,
    /// Bump of this PDA.
    pub bump: u8,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests panic on failure by design
mod tests {
    use super::*;

    fn stake() -> Stake {
        Stake::new(Pubkey::new_unique(), 3, 255)
    }

    #[test]
    fn deposits_count_from_the_next_epoch() {
        let mut s = stake();
        s.deposit(100, 3).unwrap();
        assert_eq!(s.weight_for_epoch(2).unwrap(), 0);
        assert_eq!(s.weight_for_epoch(3).unwrap(), 0);
        assert_eq!(s.weight_for_epoch(4).unwrap(), 100);
        assert_eq!(s.weight_for_epoch(9).unwrap(), 100);
        // A second deposit in epoch 5 counts from 6; epoch 5 keeps 100.
        s.deposit(50, 5).unwrap();
        assert_eq!(s.weight_for_epoch(4).unwrap(), 100);
        assert_eq!(s.weight_for_epoch(5).unwrap(), 100);
        assert_eq!(s.weight_for_epoch(6).unwrap(), 150);
        assert_eq!(s.total().unwrap(), 150);
    }

    #[test]
    fn exits_and_slashes_lower_the_current_epoch_at_once() {
        let mut s = stake();
        s.deposit(100, 3).unwrap();
        s.request_exit(30, 6, 1_000).unwrap();
        assert_eq!(s.weight_for_epoch(5).unwrap(), 100);
        assert_eq!(s.weight_for_epoch(6).unwrap(), 70);
        // Re-depositing in the same epoch does not restore the epoch's weight.
        s.deposit(30, 6).unwrap();
        assert_eq!(s.weight_for_epoch(6).unwrap(), 70);
        assert_eq!(s.weight_for_epoch(7).unwrap(), 100);
        // Slash 120 in epoch 8: active 100 → 0, then the exit 30 → 10.
        assert_eq!(s.slash(120, 8).unwrap(), 120);
        assert_eq!(s.active, 0);
        assert_eq!(s.exits[0].amount, 10);
        assert_eq!(s.weight_for_epoch(7).unwrap(), 100);
        assert_eq!(s.weight_for_epoch(8).unwrap(), 0);
        assert_eq!(s.total().unwrap(), 10);
        assert_eq!(s.slashed_total, 120);
        assert_eq!(s.slash(50, 8).unwrap(), 10);
        assert!(s.exits.is_empty());
        assert!(s.slash(1, 8).is_err());
    }

    #[test]
    fn withdraw_waits_for_the_unlock_slot() {
        let mut s = stake();
        s.deposit(100, 3).unwrap();
        assert!(s.request_exit(101, 4, 500).is_err());
        s.request_exit(40, 4, 500).unwrap();
        assert!(s.withdraw(0, 499).is_err());
        assert!(s.withdraw(1, 500).is_err());
        assert_eq!(s.withdraw(0, 500).unwrap(), 40);
        assert_eq!(s.total().unwrap(), 60);
    }

    #[test]
    fn old_checkpoints_are_dropped_and_then_unavailable() {
        let mut s = stake();
        s.deposit(10, 3).unwrap();
        for epoch in 4..(4 + STAKE_CHECKPOINTS as u64) {
            s.deposit(1, epoch).unwrap();
        }
        assert_eq!(s.checkpoints.len(), STAKE_CHECKPOINTS);
        assert!(s.weight_for_epoch(3).is_err());
        assert_eq!(s.weight_for_epoch(2).unwrap(), 0);
        assert_eq!(s.weight_for_epoch(5).unwrap(), 11);
        assert!(s.roll(4).is_err());
    }

    fn config(epoch_len_slots: u64, exit_delay_slots: u64) -> RegistryConfig {
        RegistryConfig {
            authority: Pubkey::new_unique(),
            pending_authority: None,
            toll_mint: Pubkey::new_unique(),
            stake_vault: Pubkey::new_unique(),
            treasury: Pubkey::new_unique(),
            epoch_len_slots,
            exit_delay_slots,
            ticket_price: 1,
            slashers: Vec::new(),
            bump: 255,
            stake_vault_bump: 255,
            stake_vault_authority_bump: 255,
            slasher_floor_slot: 0,
        }
    }

    #[test]
    fn new_slashers_wait_for_every_staker_to_leave() {
        let mut c = config(100, 50);
        // Added in epoch 1: next epoch starts at 200, plus twice the exit delay.
        assert_eq!(c.new_slasher_active_from(150).unwrap(), 300);
        assert_eq!(c.new_slasher_active_from(199).unwrap(), 300);
        assert_eq!(c.new_slasher_active_from(200).unwrap(), 400);
        // Decreasing the delay at 280 keeps exits requested before (unlock <= 330) covered.
        assert!(c.decrease_exit_delay(50, 280).is_err());
        assert!(c.decrease_exit_delay(0, 280).is_err());
        c.decrease_exit_delay(10, 280).unwrap();
        assert_eq!(c.exit_delay_slots, 10);
        assert_eq!(c.slasher_floor_slot, 330);
        assert_eq!(c.new_slasher_active_from(285).unwrap(), 350);
        assert_eq!(c.new_slasher_active_from(350).unwrap(), 420);
        // A later decrease never lowers the floor.
        c.decrease_exit_delay(1, 285).unwrap();
        assert_eq!(c.slasher_floor_slot, 330);
        let mut c = config(100, u64::MAX);
        assert!(c.new_slasher_active_from(0).is_err());
        c.decrease_exit_delay(10, 5).unwrap();
        assert_eq!(c.slasher_floor_slot, u64::MAX);
        assert!(c.new_slasher_active_from(6).is_err());
    }

    #[test]
    fn key_rotation_keeps_the_previous_key_until_the_new_one_is_valid() {
        let mut op = Operator {
            wallet: Pubkey::new_unique(),
            signing_key: SigningKey {
                key: [1; 32],
                valid_from_slot: 10,
            },
            previous_signing_key: None,
            roles: 2,
            backend_ids: Vec::new(),
            endpoints: Vec::new(),
            status: OperatorStatus::Active,
            registered_at_slot: 10,
            updated_at_slot: 10,
            bump: 255,
        };
        assert_eq!(op.signing_key_at(9), None);
        op.rotate([2; 32], 100, 50).unwrap();
        assert_eq!(op.signing_key_at(60), Some([1; 32]));
        assert_eq!(op.signing_key_at(100), Some([2; 32]));
        // Replacing a still-scheduled key keeps key 1 as the previous one.
        op.rotate([3; 32], 80, 60).unwrap();
        assert_eq!(op.signing_key_at(79), Some([1; 32]));
        assert_eq!(op.signing_key_at(80), Some([3; 32]));
        assert!(op.rotate([4; 32], 59, 60).is_err());
    }
}

#[cfg(test)]
mod size_tests {
    use super::*;

    /// Accounts created by `init` grow through one system-program CPI, which allows at most
    /// 10 KiB; the sizes are also printed for the README's cost notes.
    #[test]
    fn account_sizes_fit_one_cpi_allocation() {
        let sizes = [
            ("RegistryConfig", 8 + RegistryConfig::INIT_SPACE),
            ("Operator", 8 + Operator::INIT_SPACE),
            ("Stake", 8 + Stake::INIT_SPACE),
            ("TicketQuota", 8 + TicketQuota::INIT_SPACE),
        ];
        for (name, size) in sizes {
            println!("{name}: {size} bytes");
            assert!(size <= 10 * 1024, "{name}: {size} bytes");
        }
    }
}
