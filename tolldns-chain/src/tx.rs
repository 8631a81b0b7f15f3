//! Legacy transactions signed with ed25519 keys.
//!
//! The message is `solana_message::legacy::Message` (the fee payer first); each signature is
//! the ed25519 signature of the serialized message by the key of the corresponding required
//! signer. The wire format sent to `sendTransaction` is the signature count (compact-u16),
//! the signatures, then the message.

use ed25519_dalek::{Signer as _, SigningKey};
use solana_hash::Hash;
use solana_instruction::Instruction;
use solana_message::Message;
use solana_pubkey::Pubkey;
use solana_signature::Signature;
use solana_transaction::Transaction;

use crate::{ChainError, pubkey_of};

/// Largest serialized transaction a node accepts (the IPv6 MTU minus headers).
pub const MAX_TRANSACTION_LEN: usize = 1232;

/// Builds and signs a legacy transaction of `instructions`, paid by `signers[0]`, with the
/// recent blockhash `blockhash`. Every required signer of the message must be among
/// `signers`.
///
/// # Errors
///
/// [`ChainError::Config`] when no signer is given or a required signer is missing.
pub fn sign(
    instructions: &[Instruction],
    signers: &[&SigningKey],
    blockhash: [u8; 32],
) -> Result<Transaction, ChainError> {
    let payer = signers
        .first()
        .ok_or_else(|| ChainError::Config("a transaction needs a fee payer".into()))?;
    let payer = pubkey_of(payer);
    let message =
        Message::new_with_blockhash(instructions, Some(&payer), &Hash::new_from_array(blockhash));
    let data = message.serialize();
    let required = usize::from(message.header.num_required_signatures);
    let signatures = message
        .account_keys
        .iter()
        .take(required)
        .map(|key| {
            signers
                .iter()
                .find(|s| pubkey_of(s) == *key)
                .map(|s| Signature::from(s.sign(&data).to_bytes()))
                .ok_or_else(|| ChainError::Config(format!("no signing key for signer {key}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Transaction {
        signatures,
        message,
    })
}

/// The wire encoding of a transaction (what `sendTransaction` takes, base64-encoded).
pub fn serialize(tx: &Transaction) -> Vec<u8> {
    let message = tx.message.serialize();
    let mut out = Vec::with_capacity(3 + 64 * tx.signatures.len() + message.len());
    push_compact_u16(&mut out, tx.signatures.len());
    for signature in &tx.signatures {
        out.extend_from_slice(signature.as_ref());
    }
    out.extend_from_slice(&message);
    out
}

/// Appends `n` as a compact-u16 (7 bits per byte, little end first, high bit = more).
fn push_compact_u16(out: &mut Vec<u8>, n: usize) {
    let mut n = n;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// The first signature of a transaction (its id), the default signature when unsigned.
pub fn transaction_id(tx: &Transaction) -> Signature {
    tx.signatures.first().copied().unwrap_or_default()
}

/// The program invoked by instruction `index` of a transaction's message.
pub fn program_of(tx: &Transaction, index: usize) -> Option<Pubkey> {
    tx.message.program_id(index).copied()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests panic on failure by design
mod tests {
    use ed25519_dalek::Verifier as _;

    use super::*;
    use crate::instructions;

    #[test]
    fn signs_the_message_with_every_required_signer_and_encodes_the_wire_format() {
        let payer = SigningKey::from_bytes(&[1; 32]);
        let miner = SigningKey::from_bytes(&[2; 32]);
        let ix = instructions::claim_miner_reward(
            &pubkey_of(&miner),
            3,
            &Pubkey::new_from_array([9; 32]),
            &Pubkey::new_from_array([8; 32]),
        );
        let tx = sign(std::slice::from_ref(&ix), &[&payer, &miner], [7; 32]).unwrap();
        assert_eq!(tx.message.header.num_required_signatures, 2);
        assert_eq!(tx.message.account_keys[0], pubkey_of(&payer));
        assert_eq!(tx.message.recent_blockhash.to_bytes(), [7; 32]);
        let data = tx.message.serialize();
        for (i, key) in [&payer, &miner].iter().enumerate() {
            let sig = ed25519_dalek::Signature::from_bytes(tx.signatures[i].as_array());
            key.verifying_key().verify(&data, &sig).unwrap();
        }
        let wire = serialize(&tx);
        assert_eq!(wire[0], 2);
        assert_eq!(&wire[1..65], tx.signatures[0].as_ref());
        assert_eq!(&wire[129..], &data[..]);
        assert!(wire.len() <= MAX_TRANSACTION_LEN);
        assert_eq!(transaction_id(&tx), tx.signatures[0]);
        assert_eq!(program_of(&tx, 0), Some(crate::ids::MINER_SCORE));
        assert_eq!(program_of(&tx, 1), None);

        // A missing signer, or none at all, is refused.
        let e = sign(std::slice::from_ref(&ix), &[&payer], [7; 32]).unwrap_err();
        assert!(e.to_string().contains("no signing key"), "{e}");
        assert!(sign(&[ix], &[], [7; 32]).is_err());
    }

    #[test]
    fn compact_u16_uses_seven_bits_per_byte() {
        for (n, want) in [
            (0usize, vec![0u8]),
            (0x7f, vec![0x7f]),
            (0x80, vec![0x80, 0x01]),
            (0x3fff, vec![0xff, 0x7f]),
            (0x4000, vec![0x80, 0x80, 0x01]),
        ] {
            let mut out = Vec::new();
            push_compact_u16(&mut out, n);
            assert_eq!(out, want, "{n}");
        }
    }
}
