//! Tagged SHA-256, HMAC-SHA256, and the name-privacy helpers built on them.
//!
//! Every hash that crosses a crate boundary starts with a named domain-separation tag, so that
//! a digest computed for one purpose can never be replayed as another.

use core::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::NormalizedName;

/// Prefix of the message an operator signs: `RECEIPT_SIGNING_TAG || borsh(body)`.
pub const RECEIPT_SIGNING_TAG: &[u8] = b"TOLLDNS-RECEIPT-V1\0";
/// Prefix of the message an operator signs for a v2 receipt:
/// `RECEIPT_SIGNING_TAG_V2 || borsh(body)` (the v2 body starts with the deployment id).
pub const RECEIPT_SIGNING_TAG_V2: &[u8] = b"TOLLDNS-RECEIPT-V2\0";
/// Prefix of a deployment id: `SHA256(DEPLOYMENT_TAG || program_id || genesis_hash)`.
pub const DEPLOYMENT_TAG: &[u8] = b"TOLLDNS-DEPLOYMENT-V1\0";
/// Prefix of a sketch-witness draw: `SHA256(SKETCH_WITNESS_TAG || seed || root || counter)`.
pub const SKETCH_WITNESS_TAG: &[u8] = b"TOLLDNS-SKETCH-V1";
/// Prefix of a name-key commitment: `SHA256(NAME_KEY_COMMITMENT_TAG || key)`.
pub const NAME_KEY_COMMITMENT_TAG: &[u8] = b"TOLLDNS-NAMEKEY-V1";
/// Prefix of an audit-sampling draw: `SHA256(AUDIT_SAMPLING_TAG || seed || root || counter)`.
pub const AUDIT_SAMPLING_TAG: &[u8] = b"TOLLDNS-AUDIT-V1";
/// RFC 6962 §2.1 leaf-hash prefix: `SHA256(0x00 || leaf)`.
pub const MERKLE_LEAF_PREFIX: u8 = 0x00;
/// RFC 6962 §2.1 node-hash prefix: `SHA256(0x01 || left || right)`.
pub const MERKLE_NODE_PREFIX: u8 = 0x01;

/// Length of a truncated name hash in bytes.
pub const NAME_HASH_LEN: usize = 16;

/// `SHA256(tag || parts[0] || parts[1] || ...)`.
pub fn tagged_sha256(tag: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(tag);
    for part in parts {
        h.update(part);
    }
    h.finalize().into()
}

/// `HMAC-SHA256(key, parts[0] || parts[1] || ...)` per RFC 2104, for a key of any length.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = keyed_hmac(key);
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// An HMAC-SHA256 state keyed with `key` (RFC 2104), ready for `update`.
fn keyed_hmac(key: &[u8]) -> Hmac<Sha256> {
    // RFC 2104: a key longer than the block is hashed first; a shorter one is zero-padded.
    // Padding here makes construction infallible for every key length.
    let mut block = [0u8; 64];
    if key.len() > block.len() {
        let digest: [u8; 32] = Sha256::digest(key).into();
        for (dst, src) in block.iter_mut().zip(digest) {
            *dst = src;
        }
    } else {
        for (dst, src) in block.iter_mut().zip(key) {
            *dst = *src;
        }
    }
    <Hmac<Sha256> as Mac>::new(&block.into())
}

/// An operator's per-epoch name key. Name hashes in receipt leaves are keyed with it, so that
/// leaves say nothing about names to anyone who lacks the key. `Debug` never prints the key.
#[derive(Clone, PartialEq, Eq)]
pub struct NameKey(pub [u8; 32]);

impl NameKey {
    /// The commitment carried in every batch receipt of the key's epoch:
    /// `SHA256("TOLLDNS-NAMEKEY-V1" || key)`.
    pub fn commitment(&self) -> [u8; 32] {
        tagged_sha256(NAME_KEY_COMMITMENT_TAG, &[&self.0])
    }

    /// Whether this key matches a commitment (for an auditor who was given the key).
    pub fn matches(&self, commitment: &[u8; 32]) -> bool {
        self.commitment() == *commitment
    }

    /// `HMAC-SHA256(key, canonical_name)[..16]`.
    pub fn name_hash(&self, name: &NormalizedName) -> [u8; NAME_HASH_LEN] {
        self.prepare().name_hash(name)
    }

    /// The key with its HMAC state keyed once, for hashing many names under one key (the
    /// edge's hot path): each name hash then costs the compressions of the name and the outer
    /// hash only.
    pub fn prepare(&self) -> PreparedNameKey {
        PreparedNameKey {
            mac: keyed_hmac(&self.0),
        }
    }

    /// The raw key, for storage or for revealing to an auditor.
    pub const fn to_bytes(&self) -> [u8; 32] {
        self.0
    }
}

/// A [`NameKey`] whose HMAC state is keyed once; see [`NameKey::prepare`]. `Debug` never
/// prints key material.
#[derive(Clone)]
pub struct PreparedNameKey {
    mac: Hmac<Sha256>,
}

impl PreparedNameKey {
    /// `HMAC-SHA256(key, canonical_name)[..16]`, equal to [`NameKey::name_hash`].
    pub fn name_hash(&self, name: &NormalizedName) -> [u8; NAME_HASH_LEN] {
        let mut mac = self.mac.clone();
        mac.update(name.as_bytes());
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; NAME_HASH_LEN];
        for (dst, src) in out.iter_mut().zip(full) {
            *dst = src;
        }
        out
    }
}

impl fmt::Debug for PreparedNameKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PreparedNameKey(..)")
    }
}

impl fmt::Debug for NameKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NameKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
    fn tagged_hash_is_plain_concatenation() {
        let a = tagged_sha256(b"T", &[b"ab", b"c"]);
        let b: [u8; 32] = Sha256::digest(b"Tabc").into();
        assert_eq!(a, b);
        // SHA256("abc"), FIPS 180-2 example.
        assert_eq!(
            tagged_sha256(b"", &[b"abc"]).to_vec(),
            hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
    }

    #[test]
    fn hmac_rfc4231_vectors() {
        // Test case 1: 20-byte key.
        assert_eq!(
            hmac_sha256(&[0x0b; 20], &[b"Hi There"]).to_vec(),
            hex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        );
        // Test case 2: short key, message split across parts.
        assert_eq!(
            hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]).to_vec(),
            hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        );
        // Test case 6: 131-byte key (longer than the block, hashed first).
        assert_eq!(
            hmac_sha256(
                &[0xaa; 131],
                &[b"Test Using Larger Than Block-Size Key - Hash Key First"]
            )
            .to_vec(),
            hex("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
        );
    }

    #[test]
    fn name_key_commitment_and_hash() {
        let key = NameKey([7; 32]);
        let other = NameKey([8; 32]);
        let c = key.commitment();
        assert!(key.matches(&c));
        assert!(!other.matches(&c));
        let name = NormalizedName::new("Example.COM.").unwrap();
        let h = key.name_hash(&name);
        assert_eq!(h[..], hmac_sha256(&[7; 32], &[b"example.com"])[..16]);
        assert_ne!(h, other.name_hash(&name));
        let prepared = key.prepare();
        assert_eq!(prepared.name_hash(&name), h);
        let second = NormalizedName::new("b.example").unwrap();
        assert_eq!(
            prepared.name_hash(&second)[..],
            hmac_sha256(&[7; 32], &[b"b.example"])[..16]
        );
        assert_eq!(format!("{prepared:?}"), "PreparedNameKey(..)");
        assert_eq!(format!("{key:?}"), "NameKey(..)");
    }
}
