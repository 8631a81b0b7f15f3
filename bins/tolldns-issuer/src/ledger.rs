//! [`PrepaidLedger`]: the payment check. A redb database (`<data_dir>/ledger.redb`, mode
//! 0600) with two tables:
//!
//! - `prepaid_tokens`: buyer (32-byte ed25519 wallet public key) → tokens remaining;
//! - `chain_credited`: quota (issuer wallet ‖ buyer, 64 bytes) → tickets already credited
//!   from that on-chain `TicketQuota` (the registry program's cumulative `tickets_bought` of
//!   the buyer at that issuer), see [`crate::chain`]. Keyed by the quota, not the buyer: an
//!   issuer that changes `chain.issuer_wallet` reads other quotas, whose tickets start from 0.
//!
//! Buyers are credited two ways: by the operator for payments made off chain
//! (`tolldns-issuer credit`), and from their on-chain ticket purchases
//! ([`PrepaidLedger::apply_chain_quota`], run by the chain sync). Every issuance debits one
//! token and an issuance that then fails refunds it. Each credit, chain credit, debit and
//! refund is its own write transaction, committed with redb's default
//! `Durability::Immediate` (synced before `commit` returns), so a token that was handed out is
//! never given back by a crash, and a chain purchase is never credited twice.
//!
//! # One owner
//!
//! redb locks its file for the process that has it open, and opening costs several syncs, so
//! the running issuer keeps the ledger open and is its only writer. While it runs,
//! `tolldns-issuer credit` and `balance` reach the ledger through the issuer's admin socket
//! ([`crate::admin`]); otherwise they open the file themselves. A second process that opens
//! a ledger in use gets [`LedgerError::InUse`].
//!
//! On-chain purchases do not replace the ledger: the chain sync turns each increase of a
//! quota's cumulative `tickets_bought` into a credit to its buyer here, so issuance keeps one durable,
//! local balance per buyer whichever way it was paid.

use std::path::{Path, PathBuf};

use redb::{ReadableTable as _, TableDefinition};
use tolldns_tickets::{PaymentCheck, PaymentError};

/// File name of the ledger in the data directory.
pub const LEDGER_FILE: &str = "ledger.redb";

/// buyer wallet public key → tokens remaining.
const BALANCES: TableDefinition<'_, [u8; 32], u64> = TableDefinition::new("prepaid_tokens");

/// issuer wallet ‖ buyer wallet (one on-chain `TicketQuota`) → tickets already credited from it.
const CHAIN_CREDITED: TableDefinition<'_, [u8; 64], u64> = TableDefinition::new("chain_credited");

/// The `chain_credited` key of `buyer`'s quota at the issuer `issuer_wallet`.
fn quota_key(issuer_wallet: &[u8; 32], buyer: &[u8; 32]) -> [u8; 64] {
    let mut key = [0u8; 64];
    key[..32].copy_from_slice(issuer_wallet);
    key[32..].copy_from_slice(buyer);
    key
}

/// Why a ledger operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// Creating the file failed.
    #[error("prepaid ledger {path}: {error}")]
    Io {
        /// The ledger file.
        path: PathBuf,
        /// The cause.
        error: std::io::Error,
    },
    /// The database failed.
    #[error("prepaid ledger {path}: {error}")]
    Db {
        /// The ledger file.
        path: PathBuf,
        /// The cause.
        error: Box<redb::Error>,
    },
    /// Another process has the ledger open.
    #[error(
        "prepaid ledger {path} is open in another process (a running tolldns-issuer with this data directory?)"
    )]
    InUse {
        /// The ledger file.
        path: PathBuf,
    },
    /// The credit would overflow the balance.
    #[error("crediting {tokens} tokens to a balance of {balance} would overflow")]
    Overflow {
        /// The balance.
        balance: u64,
        /// The credit.
        tokens: u64,
    },
}

/// A buyer: a 32-byte ed25519 wallet public key, written in base58.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buyer(pub [u8; 32]);

impl std::fmt::Display for Buyer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&bs58::encode(self.0).into_string())
    }
}

/// Why a buyer key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a base58 ed25519 public key (32 bytes, a valid curve point)")]
pub struct BuyerError;

/// Whether `key` is a usable buyer key: a valid ed25519 point that is not a weak key.
pub fn is_valid_buyer(key: &[u8; 32]) -> bool {
    ed25519_dalek::VerifyingKey::from_bytes(key).is_ok_and(|k| !k.is_weak())
}

/// Parses a base58 ed25519 public key strictly: 32 bytes, a valid point, not a weak key.
///
/// # Errors
///
/// [`BuyerError`].
pub fn parse_buyer(s: &str) -> Result<Buyer, BuyerError> {
    let bytes = bs58::decode(s.trim()).into_vec().map_err(|_| BuyerError)?;
    let arr: [u8; 32] = bytes.try_into().map_err(|_| BuyerError)?;
    if !is_valid_buyer(&arr) {
        return Err(BuyerError);
    }
    Ok(Buyer(arr))
}

/// What a debit found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Debit {
    /// Taken; the tokens left.
    Taken {
        /// Tokens remaining after the debit.
        remaining: u64,
    },
    /// The buyer was never credited.
    NoPurchase,
    /// The buyer has fewer tokens left than asked for.
    Exhausted {
        /// Tokens remaining.
        remaining: u64,
    },
}

/// The prepaid token ledger (see the module docs).
#[derive(Debug)]
pub struct PrepaidLedger {
    path: PathBuf,
    db: redb::Database,
}

impl PrepaidLedger {
    /// Opens the ledger at `path`, creating it (mode 0600) when missing.
    ///
    /// # Errors
    ///
    /// [`LedgerError::InUse`] when another process has it open, or another [`LedgerError`]
    /// naming the file.
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        match options.open(path) {
            // redb initializes an empty file as a new database.
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(error) => {
                return Err(LedgerError::Io {
                    path: path.to_owned(),
                    error,
                });
            }
        }
        let db = match redb::Database::create(path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(LedgerError::InUse {
                    path: path.to_owned(),
                });
            }
            Err(e) => {
                return Err(LedgerError::Db {
                    path: path.to_owned(),
                    error: Box::new(e.into()),
                });
            }
        };
        let ledger = Self {
            path: path.to_owned(),
            db,
        };
        // Create the tables so that readers never meet a missing one (a ledger written before
        // the chain sync existed gets its `chain_credited` table here).
        ledger.write(|table| table.get(&[0; 32]).map(|_| ()))?;
        ledger.write_chain(|_, chain| chain.get(&[0; 64]).map(|_| ()))?;
        Ok(ledger)
    }

    /// The ledger file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn db_error(&self, e: impl Into<redb::Error>) -> LedgerError {
        LedgerError::Db {
            path: self.path.clone(),
            error: Box::new(e.into()),
        }
    }

    /// One durable write transaction over the balances table (redb runs one at a time).
    fn write<T>(
        &self,
        f: impl FnOnce(&mut redb::Table<'_, [u8; 32], u64>) -> Result<T, redb::StorageError>,
    ) -> Result<T, LedgerError> {
        let tx = self.db.begin_write().map_err(|e| self.db_error(e))?;
        let out = {
            let mut table = tx.open_table(BALANCES).map_err(|e| self.db_error(e))?;
            f(&mut table).map_err(|e| self.db_error(e))?
        };
        tx.commit().map_err(|e| self.db_error(e))?;
        Ok(out)
    }

    /// One durable write transaction over both tables.
    fn write_chain<T>(
        &self,
        f: impl FnOnce(
            &mut redb::Table<'_, [u8; 32], u64>,
            &mut redb::Table<'_, [u8; 64], u64>,
        ) -> Result<T, redb::StorageError>,
    ) -> Result<T, LedgerError> {
        let tx = self.db.begin_write().map_err(|e| self.db_error(e))?;
        let out = {
            let mut balances = tx.open_table(BALANCES).map_err(|e| self.db_error(e))?;
            let mut chain = tx
                .open_table(CHAIN_CREDITED)
                .map_err(|e| self.db_error(e))?;
            f(&mut balances, &mut chain).map_err(|e| self.db_error(e))?
        };
        tx.commit().map_err(|e| self.db_error(e))?;
        Ok(out)
    }

    /// Credits `buyer` with the tickets of its on-chain quota at the issuer `issuer_wallet`
    /// not credited yet, in one write transaction: `delta = tickets_bought − chain_credited`
    /// (0 when `tickets_bought` is not larger), the buyer's balance grows by `delta` and the
    /// quota's `chain_credited` becomes `tickets_bought`. Returns `delta`.
    ///
    /// `tickets_bought` is the quota's cumulative count, which only grows on chain: repeating
    /// a sync credits nothing, and a smaller value (a lagging RPC node) credits nothing and
    /// leaves the mark where it was.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Overflow`] (nothing is written then), or a database error.
    pub fn apply_chain_quota(
        &self,
        issuer_wallet: &[u8; 32],
        buyer: &[u8; 32],
        tickets_bought: u64,
    ) -> Result<u64, LedgerError> {
        let quota = quota_key(issuer_wallet, buyer);
        self.write_chain(|balances, chain| {
            let credited = chain.get(&quota)?.map_or(0, |g| g.value());
            let Some(delta) = tickets_bought.checked_sub(credited).filter(|d| *d > 0) else {
                return Ok(Ok(0));
            };
            let balance = balances.get(buyer)?.map_or(0, |g| g.value());
            let Some(new) = balance.checked_add(delta) else {
                return Ok(Err(LedgerError::Overflow {
                    balance,
                    tokens: delta,
                }));
            };
            balances.insert(buyer, new)?;
            chain.insert(&quota, tickets_bought)?;
            Ok(Ok(delta))
        })?
    }

    /// The tickets of `buyer`'s on-chain quota at the issuer `issuer_wallet` credited so far;
    /// `None` when none ever were.
    ///
    /// # Errors
    ///
    /// A database error.
    pub fn chain_credited(
        &self,
        issuer_wallet: &[u8; 32],
        buyer: &[u8; 32],
    ) -> Result<Option<u64>, LedgerError> {
        let tx = self.db.begin_read().map_err(|e| self.db_error(e))?;
        let table = tx
            .open_table(CHAIN_CREDITED)
            .map_err(|e| self.db_error(e))?;
        let value = table
            .get(&quota_key(issuer_wallet, buyer))
            .map_err(|e| self.db_error(e))?
            .map(|g| g.value());
        Ok(value)
    }

    /// Adds `tokens` to `buyer`'s balance; returns the new balance.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Overflow`] (nothing is written then), or a database error.
    pub fn credit(&self, buyer: &[u8; 32], tokens: u64) -> Result<u64, LedgerError> {
        self.write(|table| {
            let balance = table.get(buyer)?.map_or(0, |g| g.value());
            let Some(new) = balance.checked_add(tokens) else {
                return Ok(Err(LedgerError::Overflow { balance, tokens }));
            };
            table.insert(buyer, new)?;
            Ok(Ok(new))
        })?
    }

    /// Takes `tokens` from `buyer`'s balance when there are enough.
    ///
    /// # Errors
    ///
    /// A database error (nothing is taken then).
    pub fn debit(&self, buyer: &[u8; 32], tokens: u64) -> Result<Debit, LedgerError> {
        self.write(|table| {
            let Some(balance) = table.get(buyer)?.map(|g| g.value()) else {
                return Ok(Debit::NoPurchase);
            };
            let Some(remaining) = balance.checked_sub(tokens) else {
                return Ok(Debit::Exhausted { remaining: balance });
            };
            table.insert(buyer, remaining)?;
            Ok(Debit::Taken { remaining })
        })
    }

    /// `buyer`'s balance; `None` when the buyer was never credited.
    ///
    /// # Errors
    ///
    /// A database error.
    pub fn balance(&self, buyer: &[u8; 32]) -> Result<Option<u64>, LedgerError> {
        let tx = self.db.begin_read().map_err(|e| self.db_error(e))?;
        let table = tx.open_table(BALANCES).map_err(|e| self.db_error(e))?;
        let value = table
            .get(buyer)
            .map_err(|e| self.db_error(e))?
            .map(|g| g.value());
        Ok(value)
    }
}

impl PaymentCheck for PrepaidLedger {
    fn debit(&self, buyer: &[u8; 32], tokens: u32) -> Result<(), PaymentError> {
        match Self::debit(self, buyer, u64::from(tokens)) {
            Ok(Debit::Taken { .. }) => Ok(()),
            Ok(Debit::NoPurchase) => Err(PaymentError::NoPurchase),
            Ok(Debit::Exhausted { .. }) => Err(PaymentError::Exhausted),
            Err(e) => {
                tracing::error!(error = %e, "prepaid ledger debit failed");
                // The details (paths) are for the operator's log, not for the client.
                Err(PaymentError::Unavailable("ledger error".to_owned()))
            }
        }
    }

    fn refund(&self, buyer: &[u8; 32], tokens: u32) {
        if let Err(e) = self.credit(buyer, u64::from(tokens)) {
            tracing::error!(
                error = %e,
                buyer = %bs58::encode(buyer).into_string(),
                tokens,
                "refund of a failed issuance could not be written; credit the buyer by hand"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "tolldns-issuer-ledger-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn credit_debit_refund_and_reopen() {
        let dir = tmp("a");
        let path = dir.join(LEDGER_FILE);
        let ledger = PrepaidLedger::open(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let (a, b) = ([1; 32], [2; 32]);
        assert_eq!(ledger.balance(&a).unwrap(), None);
        assert_eq!(
            PaymentCheck::debit(&ledger, &a, 1),
            Err(PaymentError::NoPurchase)
        );
        assert_eq!(ledger.credit(&a, 2).unwrap(), 2);
        assert_eq!(ledger.credit(&a, 3).unwrap(), 5);
        assert_eq!(ledger.debit(&a, 4).unwrap(), Debit::Taken { remaining: 1 });
        assert_eq!(
            ledger.debit(&a, 2).unwrap(),
            Debit::Exhausted { remaining: 1 }
        );
        PaymentCheck::debit(&ledger, &a, 1).unwrap();
        assert_eq!(
            PaymentCheck::debit(&ledger, &a, 1),
            Err(PaymentError::Exhausted)
        );
        ledger.refund(&a, 1);
        assert_eq!(ledger.balance(&a).unwrap(), Some(1));
        assert_eq!(ledger.balance(&b).unwrap(), None);
        assert!(matches!(
            ledger.credit(&a, u64::MAX),
            Err(LedgerError::Overflow { balance: 1, .. })
        ));
        drop(ledger);
        let ledger = PrepaidLedger::open(&path).unwrap();
        assert_eq!(ledger.balance(&a).unwrap(), Some(1));
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// The issuer wallet of the quotas in the chain tests.
    const ISSUER: [u8; 32] = [8; 32];

    #[test]
    fn chain_quota_is_idempotent_and_monotone() {
        let dir = tmp("chain");
        let path = dir.join(LEDGER_FILE);
        let ledger = PrepaidLedger::open(&path).unwrap();
        let (a, b) = ([5; 32], [6; 32]);
        assert_eq!(ledger.chain_credited(&ISSUER, &a).unwrap(), None);
        // A quota of 0 (impossible on chain) credits nothing and creates no balance.
        assert_eq!(ledger.apply_chain_quota(&ISSUER, &a, 0).unwrap(), 0);
        assert_eq!(ledger.balance(&a).unwrap(), None);
        assert_eq!(ledger.chain_credited(&ISSUER, &a).unwrap(), None);
        // First sight: everything bought is credited.
        assert_eq!(ledger.apply_chain_quota(&ISSUER, &a, 5).unwrap(), 5);
        assert_eq!(ledger.balance(&a).unwrap(), Some(5));
        assert_eq!(ledger.chain_credited(&ISSUER, &a).unwrap(), Some(5));
        // Idempotent: the same quota again credits nothing.
        assert_eq!(ledger.apply_chain_quota(&ISSUER, &a, 5).unwrap(), 0);
        assert_eq!(ledger.balance(&a).unwrap(), Some(5));
        // Spending does not make the quota creditable again.
        assert_eq!(ledger.debit(&a, 3).unwrap(), Debit::Taken { remaining: 2 });
        assert_eq!(ledger.apply_chain_quota(&ISSUER, &a, 5).unwrap(), 0);
        assert_eq!(ledger.balance(&a).unwrap(), Some(2));
        // A further purchase: exactly the difference.
        assert_eq!(ledger.apply_chain_quota(&ISSUER, &a, 8).unwrap(), 3);
        assert_eq!(ledger.balance(&a).unwrap(), Some(5));
        assert_eq!(ledger.chain_credited(&ISSUER, &a).unwrap(), Some(8));
        // Off-chain credits add to the same balance and do not move the chain mark.
        assert_eq!(ledger.credit(&a, 10).unwrap(), 15);
        assert_eq!(ledger.chain_credited(&ISSUER, &a).unwrap(), Some(8));
        // Other buyers are independent.
        assert_eq!(ledger.apply_chain_quota(&ISSUER, &b, 1).unwrap(), 1);
        assert_eq!(ledger.balance(&b).unwrap(), Some(1));
        assert_eq!(ledger.balance(&a).unwrap(), Some(15));
        // The same buyer's quota at another issuer wallet (`chain.issuer_wallet` changed) is
        // another quota: its tickets count from 0, and the first one's mark stays.
        let other = [9; 32];
        assert_eq!(ledger.chain_credited(&other, &a).unwrap(), None);
        assert_eq!(ledger.apply_chain_quota(&other, &a, 2).unwrap(), 2);
        assert_eq!(ledger.balance(&a).unwrap(), Some(17));
        assert_eq!(ledger.chain_credited(&ISSUER, &a).unwrap(), Some(8));
        assert_eq!(ledger.chain_credited(&other, &a).unwrap(), Some(2));
        drop(ledger);
        // Durable: a reopened ledger remembers the mark.
        let ledger = PrepaidLedger::open(&path).unwrap();
        assert_eq!(ledger.apply_chain_quota(&ISSUER, &a, 8).unwrap(), 0);
        assert_eq!(ledger.apply_chain_quota(&other, &a, 2).unwrap(), 0);
        assert_eq!(ledger.balance(&a).unwrap(), Some(17));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_lagging_node_neither_credits_nor_lowers_the_mark() {
        let dir = tmp("lag");
        let ledger = PrepaidLedger::open(&dir.join(LEDGER_FILE)).unwrap();
        let a = [7; 32];
        assert_eq!(ledger.apply_chain_quota(&ISSUER, &a, 10).unwrap(), 10);
        // A node that has not seen the last purchase yet reports less.
        assert_eq!(ledger.apply_chain_quota(&ISSUER, &a, 4).unwrap(), 0);
        assert_eq!(ledger.chain_credited(&ISSUER, &a).unwrap(), Some(10));
        assert_eq!(ledger.balance(&a).unwrap(), Some(10));
        // Had the mark been lowered to 4, this would credit 7; it credits the 1 new ticket.
        assert_eq!(ledger.apply_chain_quota(&ISSUER, &a, 11).unwrap(), 1);
        assert_eq!(ledger.balance(&a).unwrap(), Some(11));
        // Overflow writes nothing, mark included.
        ledger.credit(&a, u64::MAX - 11).unwrap();
        assert!(matches!(
            ledger.apply_chain_quota(&ISSUER, &a, 12),
            Err(LedgerError::Overflow { tokens: 1, .. })
        ));
        assert_eq!(ledger.chain_credited(&ISSUER, &a).unwrap(), Some(11));
        assert_eq!(ledger.balance(&a).unwrap(), Some(u64::MAX));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn buyers_parse_strictly() {
        let k = ed25519_dalek::SigningKey::from_bytes(&[3; 32]).verifying_key();
        let s = bs58::encode(k.as_bytes()).into_string();
        assert_eq!(parse_buyer(&s).unwrap(), Buyer(k.to_bytes()));
        assert_eq!(parse_buyer(&s).unwrap().to_string(), s);
        assert!(parse_buyer("not base58 0OIl").is_err());
        assert!(parse_buyer("3yZe7d").is_err());
        // The identity point is a weak key.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(parse_buyer(&bs58::encode(identity).into_string()).is_err());
    }

    #[test]
    fn a_second_owner_is_refused() {
        let dir = tmp("b");
        let path = dir.join(LEDGER_FILE);
        let ledger = PrepaidLedger::open(&path).unwrap();
        let e = PrepaidLedger::open(&path).unwrap_err();
        assert!(matches!(e, LedgerError::InUse { .. }), "{e}");
        assert!(e.to_string().contains("ledger.redb"), "{e}");
        drop(ledger);
        PrepaidLedger::open(&path).unwrap();
        std::fs::remove_dir_all(dir).unwrap();
    }
}
