//! The receipt leaf: one answered request, fixed size, hash-only.

use core::fmt;

use tolldns_core::hash::{NAME_HASH_LEN, tagged_sha256};
use tolldns_core::{NameKey, NormalizedName};

use crate::codec::{DecodeError, Reader};
use crate::merkle::{self, Hash};
use crate::tags::{LatencyBucket, RcodeClass, SizeBucket, Transport, WireTag, WorkClass};

/// Length of an encoded leaf in bytes (format v2, the one this crate writes).
pub const LEAF_LEN: usize = 71;
/// Length of an encoded v1 leaf in bytes (read and verified, no longer written).
pub const LEAF_LEN_V1: usize = 69;
/// The leaf format this crate writes.
pub const LEAF_VERSION: u8 = 2;
/// The leaf format of v1 receipts.
pub const LEAF_VERSION_V1: u8 = 1;
/// The largest `response_bytes` a v2 leaf may carry: a DNS message is at most 65,535 bytes.
pub const MAX_RESPONSE_BYTES: u32 = 65_535;
/// Prefix of the recommended response-summary hash: `SHA256(tag || summary)[..16]`.
pub const RESPONSE_SUMMARY_TAG: &[u8] = b"TOLLDNS-RESPONSE-V1\0";

/// Leaf flag bits (byte 6 of the leaf). The other bits are reserved and must be zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct LeafFlags {
    /// Answered from cache.
    pub cache_hit: bool,
    /// Answered with stale data (RFC 8767).
    pub stale: bool,
    /// The answer had TC set.
    pub truncated: bool,
}

impl LeafFlags {
    /// Bit of `cache_hit`.
    pub const CACHE_HIT: u8 = 0x01;
    /// Bit of `stale`.
    pub const STALE: u8 = 0x02;
    /// Bit of `truncated`.
    pub const TRUNCATED: u8 = 0x04;
    const KNOWN: u8 = Self::CACHE_HIT | Self::STALE | Self::TRUNCATED;

    /// The flags byte.
    pub const fn bits(self) -> u8 {
        (if self.cache_hit { Self::CACHE_HIT } else { 0 })
            | (if self.stale { Self::STALE } else { 0 })
            | (if self.truncated { Self::TRUNCATED } else { 0 })
    }

    /// Flags from a byte.
    ///
    /// # Errors
    ///
    /// [`DecodeError::ReservedFlags`] when a reserved bit is set.
    pub const fn from_bits(bits: u8) -> Result<Self, DecodeError> {
        if bits & !Self::KNOWN != 0 {
            return Err(DecodeError::ReservedFlags { flags: bits });
        }
        Ok(Self {
            cache_hit: bits & Self::CACHE_HIT != 0,
            stale: bits & Self::STALE != 0,
            truncated: bits & Self::TRUNCATED != 0,
        })
    }
}

/// One answered request: what a receipt commits to, without payload, raw name or client
/// address. Encoded as exactly [`LEAF_LEN`] bytes in format v2 ([`LEAF_LEN_V1`] in v1; see
/// `docs/RECEIPTS.md` for the offsets).
///
/// Leaves of a v2 window are in *strict order* ([`Leaf::order`]): ascending by
/// `timestamp_ms`, then by the first 69 bytes of the encoding, then by `repeat`, with no two
/// leaves equal. Two honest answers that agree in every field (the same query answered the
/// same way in the same millisecond) differ in `repeat`: the first is 0, the next 1, and so on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Leaf {
    /// When the answer was sent, in Unix milliseconds; must lie in the receipt's window.
    pub timestamp_ms: u64,
    /// How the query arrived.
    pub transport: Transport,
    /// The query type (e.g. 1 = A, 28 = AAAA).
    pub qtype: u16,
    /// The outcome.
    pub rcode_class: RcodeClass,
    /// What the request cost.
    pub work_class: WorkClass,
    /// Cache hit, stale, truncated.
    pub flags: LeafFlags,
    /// Latency bucket.
    pub latency: LatencyBucket,
    /// Response size in bytes (its bucket is derived: [`Leaf::size_bucket`]).
    pub response_bytes: u32,
    /// `HMAC-SHA256(name_key, canonical_name)[..16]` ([`NameKey::name_hash`]).
    pub name_hash: [u8; NAME_HASH_LEN],
    /// The client's toll-ticket id or a watcher probe nonce; zero when absent.
    pub ticket: [u8; 16],
    /// A hash of the response summary (see [`Leaf::response_summary_hash`]).
    pub response_summary_hash: [u8; 16],
    /// How many leaves of the window before this one agree with it in every other field
    /// (v2; always 0 in v1). Set by the batch builder when it orders a window.
    pub repeat: u16,
}

impl Leaf {
    /// The response-size bucket, derived from `response_bytes`.
    pub const fn size_bucket(&self) -> SizeBucket {
        SizeBucket::from_len(self.response_bytes)
    }

    /// The canonical [`LEAF_LEN`]-byte v2 encoding: the 69-byte layout of v1 with version
    /// byte 2, followed by `repeat` (`u16` LE).
    pub fn to_bytes(&self) -> [u8; LEAF_LEN] {
        let mut out = [0u8; LEAF_LEN];
        let head = self.encode_head(LEAF_VERSION);
        if let Some(dst) = out.get_mut(..LEAF_LEN_V1) {
            dst.copy_from_slice(&head);
        }
        if let Some(dst) = out.get_mut(LEAF_LEN_V1..) {
            dst.copy_from_slice(&self.repeat.to_le_bytes());
        }
        out
    }

    /// The [`LEAF_LEN_V1`]-byte v1 encoding (`repeat` is not part of it: v1 leaves have
    /// none).
    pub fn to_bytes_v1(&self) -> [u8; LEAF_LEN_V1] {
        self.encode_head(LEAF_VERSION_V1)
    }

    fn encode_head(&self, version: u8) -> [u8; LEAF_LEN_V1] {
        let mut out = [0u8; LEAF_LEN_V1];
        let fields: [(usize, &[u8]); 12] = [
            (0, &[version]),
            (1, &[self.transport.tag()]),
            (2, &self.qtype.to_le_bytes()),
            (4, &[self.rcode_class.tag()]),
            (5, &[self.work_class.tag()]),
            (6, &[self.flags.bits()]),
            (7, &[self.latency.tag()]),
            (8, &[self.size_bucket().tag()]),
            (9, &self.timestamp_ms.to_le_bytes()),
            (17, &self.response_bytes.to_le_bytes()),
            (21, &self.name_hash),
            (37, &self.ticket),
        ];
        for (at, bytes) in fields {
            // Offsets and lengths are constants that fit the array; `get_mut` cannot fail.
            if let Some(dst) = out.get_mut(at..at.saturating_add(bytes.len())) {
                dst.copy_from_slice(bytes);
            }
        }
        if let Some(dst) = out.get_mut(53..) {
            dst.copy_from_slice(&self.response_summary_hash);
        }
        out
    }

    /// Decode a v2 leaf ([`LEAF_LEN`] bytes, version byte 2).
    ///
    /// # Errors
    ///
    /// [`DecodeError::WrongLength`] unless `bytes` is [`LEAF_LEN`] long,
    /// [`DecodeError::ResponseTooLarge`] when `response_bytes` exceeds
    /// [`MAX_RESPONSE_BYTES`]; otherwise the [`DecodeError`] of the first field that is not
    /// valid.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::decode(bytes, LEAF_VERSION)
    }

    /// Decode a v1 leaf ([`LEAF_LEN_V1`] bytes, version byte 1); `repeat` is 0.
    ///
    /// # Errors
    ///
    /// As [`Leaf::from_bytes`], without the response-size bound (v1 had none).
    pub fn from_bytes_v1(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::decode(bytes, LEAF_VERSION_V1)
    }

    /// Decode a leaf of either format, told apart by its length.
    ///
    /// # Errors
    ///
    /// As [`Leaf::from_bytes`] or [`Leaf::from_bytes_v1`].
    pub fn from_bytes_any(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() == LEAF_LEN_V1 {
            Self::from_bytes_v1(bytes)
        } else {
            Self::from_bytes(bytes)
        }
    }

    fn decode(bytes: &[u8], expected_version: u8) -> Result<Self, DecodeError> {
        let len = if expected_version == LEAF_VERSION_V1 {
            LEAF_LEN_V1
        } else {
            LEAF_LEN
        };
        if bytes.len() != len {
            return Err(DecodeError::WrongLength {
                expected: len,
                actual: bytes.len(),
            });
        }
        let mut r = Reader::new(bytes);
        let version = r.u8("leaf_version")?;
        if version != expected_version {
            return Err(DecodeError::UnsupportedVersion {
                field: "leaf_version",
                version,
            });
        }
        let transport = decode_tag::<Transport>(r.u8("transport")?)?;
        let qtype = r.u16("qtype")?;
        let rcode_class = decode_tag::<RcodeClass>(r.u8("rcode_class")?)?;
        let work_class = decode_tag::<WorkClass>(r.u8("work_class")?)?;
        let flags = LeafFlags::from_bits(r.u8("flags")?)?;
        let latency = decode_tag::<LatencyBucket>(r.u8("latency_bucket")?)?;
        let size = decode_tag::<SizeBucket>(r.u8("size_bucket")?)?;
        let timestamp_ms = r.u64("timestamp_ms")?;
        let response_bytes = r.u32("response_bytes")?;
        let name_hash = r.array("name_hash")?;
        let ticket = r.array("ticket")?;
        let response_summary_hash = r.array("response_summary_hash")?;
        let repeat = if expected_version == LEAF_VERSION_V1 {
            0
        } else {
            r.u16("repeat")?
        };
        r.finish()?;
        if SizeBucket::from_len(response_bytes) != size {
            return Err(DecodeError::InconsistentSizeBucket);
        }
        if expected_version != LEAF_VERSION_V1 && response_bytes > MAX_RESPONSE_BYTES {
            return Err(DecodeError::ResponseTooLarge { response_bytes });
        }
        Ok(Self {
            timestamp_ms,
            transport,
            qtype,
            rcode_class,
            work_class,
            flags,
            latency,
            response_bytes,
            name_hash,
            ticket,
            response_summary_hash,
            repeat,
        })
    }

    /// The RFC 6962 leaf hash of this leaf's v2 encoding: `SHA256(0x00 || to_bytes())`.
    pub fn hash(&self) -> Hash {
        merkle::leaf_hash(&self.to_bytes())
    }

    /// The RFC 6962 leaf hash of this leaf's v1 encoding: `SHA256(0x00 || to_bytes_v1())`.
    pub fn hash_v1(&self) -> Hash {
        merkle::leaf_hash(&self.to_bytes_v1())
    }

    /// The leaf hash under the leaf format of receipt version `receipt_version` (1 or 2).
    pub fn hash_for(&self, receipt_version: u8) -> Hash {
        if receipt_version == LEAF_VERSION_V1 {
            self.hash_v1()
        } else {
            self.hash()
        }
    }

    /// The strict order of v2 windows: by `timestamp_ms`, then by the first 69 bytes of the
    /// encoding, then by `repeat`. Strict order means every leaf compares `Less` than the next.
    ///
    /// Compared field by field as the encoding's bytes compare, without encoding: sorting a
    /// window's leaves compares each many times.
    pub fn order(&self, other: &Self) -> core::cmp::Ordering {
        // Byte 0 (the version) is the same for both, bytes 9..17 are the timestamp.
        self.timestamp_ms
            .cmp(&other.timestamp_ms)
            .then_with(|| self.tag_bytes().cmp(&other.tag_bytes()))
            .then_with(|| {
                u32::from_be_bytes(self.response_bytes.to_le_bytes())
                    .cmp(&u32::from_be_bytes(other.response_bytes.to_le_bytes()))
            })
            // 16 bytes compare as the big-endian numbers they spell (no call to `memcmp`).
            .then_with(|| {
                u128::from_be_bytes(self.name_hash).cmp(&u128::from_be_bytes(other.name_hash))
            })
            .then_with(|| u128::from_be_bytes(self.ticket).cmp(&u128::from_be_bytes(other.ticket)))
            .then_with(|| {
                u128::from_be_bytes(self.response_summary_hash)
                    .cmp(&u128::from_be_bytes(other.response_summary_hash))
            })
            .then_with(|| self.repeat.cmp(&other.repeat))
    }

    /// Bytes 1..9 of the encoding (transport, qtype little-endian, rcode class, work class,
    /// flags, latency, size bucket) read as one big-endian number, so that numbers compare as
    /// the bytes do.
    fn tag_bytes(&self) -> u64 {
        let [q0, q1] = self.qtype.to_le_bytes();
        u64::from_be_bytes([
            self.transport.tag(),
            q0,
            q1,
            self.rcode_class.tag(),
            self.work_class.tag(),
            self.flags.bits(),
            self.latency.tag(),
            self.size_bucket().tag(),
        ])
    }

    /// Whether `other` records the same answer as this leaf: equal in every field but
    /// `repeat`.
    pub fn same_answer(&self, other: &Self) -> bool {
        Self { repeat: 0, ..*self }
            == Self {
                repeat: 0,
                ..*other
            }
    }

    /// The leaf's cell in a [`crate::NameSketch`]: `(register, rank)` from its name hash.
    pub fn sketch_cell(&self) -> (usize, u8) {
        crate::sketch::cell(&self.name_hash)
    }

    /// Whether the leaf carries a toll ticket (a non-zero `ticket`).
    pub fn is_ticketed(&self) -> bool {
        self.ticket != [0; 16]
    }

    /// The recommended response-summary hash: `SHA256(RESPONSE_SUMMARY_TAG || summary)[..16]`,
    /// where `summary` is whatever the edge commits to about the response (for instance the
    /// rcode, the RRset types and counts, and the TTL bucket). Verifiers treat the 16 bytes as
    /// opaque.
    pub fn response_summary_hash(summary: &[u8]) -> [u8; 16] {
        truncate16(&tagged_sha256(RESPONSE_SUMMARY_TAG, &[summary]))
    }

    /// For an auditor holding a revealed name key: check the key against the receipt's
    /// commitment, then this leaf's name hash against `name`.
    ///
    /// # Errors
    ///
    /// [`NameAuditError::WrongKey`] when the key does not match the commitment (checked first),
    /// [`NameAuditError::NameMismatch`] when the leaf was not for `name`.
    pub fn audit_name(
        &self,
        name: &NormalizedName,
        key: &NameKey,
        commitment: &[u8; 32],
    ) -> Result<(), NameAuditError> {
        if !key.matches(commitment) {
            return Err(NameAuditError::WrongKey);
        }
        if key.name_hash(name) != self.name_hash {
            return Err(NameAuditError::NameMismatch);
        }
        Ok(())
    }
}

pub(crate) fn decode_tag<T: WireTag>(tag: u8) -> Result<T, DecodeError> {
    T::from_tag(tag).ok_or(DecodeError::UnknownTag {
        field: T::FIELD,
        tag,
    })
}

pub(crate) fn truncate16(h: &[u8; 32]) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (d, s) in out.iter_mut().zip(h) {
        *d = *s;
    }
    out
}

/// Why a name audit failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameAuditError {
    /// The revealed key does not match the receipt's `name_key_commitment`.
    WrongKey,
    /// The key is right, but the leaf's `name_hash` is not the hash of the claimed name.
    NameMismatch,
}

impl fmt::Display for NameAuditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::WrongKey => "revealed name key does not match the receipt's commitment",
            Self::NameMismatch => "leaf name hash does not match the claimed name",
        })
    }
}

impl core::error::Error for NameAuditError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tags::*;

    pub(crate) fn sample() -> Leaf {
        Leaf {
            timestamp_ms: 0x0102_0304_0506_0708,
            transport: Transport::Doh,
            qtype: 28,
            rcode_class: RcodeClass::NoError,
            work_class: WorkClass::CacheHit,
            flags: LeafFlags {
                cache_hit: true,
                stale: false,
                truncated: true,
            },
            latency: LatencyBucket::Lt50,
            response_bytes: 300,
            name_hash: [0xaa; 16],
            ticket: [0xbb; 16],
            response_summary_hash: [0xcc; 16],
            repeat: 0,
        }
    }

    #[test]
    fn v2_layout_appends_repeat() {
        let mut leaf = sample();
        leaf.repeat = 0x0102;
        let b = leaf.to_bytes();
        assert_eq!(b.len(), LEAF_LEN);
        assert_eq!(b[0], 2);
        assert_eq!(&b[1..69], &sample().to_bytes_v1()[1..]);
        assert_eq!(&b[69..], &[0x02, 0x01]);
        assert_eq!(Leaf::from_bytes(&b), Ok(leaf));
        assert_eq!(Leaf::from_bytes_any(&b), Ok(leaf));
        let mut big = sample();
        big.response_bytes = 65_536;
        assert_eq!(
            Leaf::from_bytes(&big.to_bytes()),
            Err(DecodeError::ResponseTooLarge {
                response_bytes: 65_536
            })
        );
        assert_eq!(
            Leaf::from_bytes(&sample().to_bytes_v1()),
            Err(DecodeError::WrongLength {
                expected: 71,
                actual: 69
            })
        );
    }

    #[test]
    fn strict_order() {
        let a = sample();
        let mut b = a;
        b.repeat = 1;
        assert_eq!(a.order(&b), core::cmp::Ordering::Less);
        assert!(a.same_answer(&b));
        let mut c = a;
        c.timestamp_ms += 1;
        c.repeat = 0;
        assert_eq!(b.order(&c), core::cmp::Ordering::Less);
        assert!(!b.same_answer(&c));
        assert_eq!(a.order(&a), core::cmp::Ordering::Equal);
        // Repeat is compared as a number, not by its little-endian bytes.
        let mut d = a;
        d.repeat = 256;
        assert_eq!(b.order(&d), core::cmp::Ordering::Less);
    }

    /// The strict order is the order of the encodings (bytes 0..69 after the timestamp, then
    /// `repeat` as a number), for leaves that tie in every field but one or a few.
    #[test]
    fn order_is_the_order_of_the_encodings() {
        fn mix(mut z: u64) -> u64 {
            z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        fn pick<T: WireTag>(r: u64) -> T {
            T::ALL[(r % T::ALL.len() as u64) as usize]
        }
        fn leaf(seed: u64) -> Leaf {
            let r = |k: u64| mix(seed.wrapping_mul(31).wrapping_add(k)) % 3;
            let mut l = sample();
            l.timestamp_ms = 10 + r(1);
            l.transport = pick(r(2));
            l.qtype = [1, 256, 28][r(3) as usize];
            l.rcode_class = pick(r(4));
            l.work_class = pick(r(5));
            l.flags = LeafFlags::from_bits(r(6) as u8).unwrap();
            l.latency = pick(r(7));
            l.response_bytes = [1, 256, 70_000][r(8) as usize];
            l.name_hash[15 - r(9) as usize] = r(10) as u8;
            l.ticket[r(11) as usize * 7] = r(12) as u8;
            l.response_summary_hash[r(13) as usize] = r(14) as u8;
            l.repeat = [0, 1, 256][r(15) as usize];
            l
        }
        let reference = |a: &Leaf, b: &Leaf| {
            a.timestamp_ms
                .cmp(&b.timestamp_ms)
                .then_with(|| a.to_bytes_v1().cmp(&b.to_bytes_v1()))
                .then_with(|| a.repeat.cmp(&b.repeat))
        };
        let mut ties = 0;
        for i in 0..20_000u64 {
            let (a, b) = (leaf(2 * i), leaf(2 * i + 1));
            assert_eq!(a.order(&b), reference(&a, &b), "{a:?} {b:?}");
            assert_eq!(b.order(&a), reference(&b, &a));
            assert_eq!(a.order(&a), core::cmp::Ordering::Equal);
            if a.timestamp_ms == b.timestamp_ms {
                ties += 1;
            }
        }
        assert!(ties > 1_000);
    }

    #[test]
    fn layout_is_fixed() {
        let b = sample().to_bytes_v1();
        assert_eq!(b.len(), LEAF_LEN_V1);
        assert_eq!(&b[..9], &[1, 4, 28, 0, 1, 6, 0x05, 2, 2]);
        assert_eq!(&b[9..17], &0x0102_0304_0506_0708u64.to_le_bytes());
        assert_eq!(&b[17..21], &300u32.to_le_bytes());
        assert_eq!(&b[21..37], &[0xaa; 16]);
        assert_eq!(&b[37..53], &[0xbb; 16]);
        assert_eq!(&b[53..69], &[0xcc; 16]);
        assert_eq!(Leaf::from_bytes_v1(&b), Ok(sample()));
        assert_eq!(Leaf::from_bytes_any(&b), Ok(sample()));
    }

    #[test]
    fn strict_decoding() {
        let good = sample().to_bytes_v1();
        let mut b = good;
        b[0] = 2;
        assert_eq!(
            Leaf::from_bytes_v1(&b),
            Err(DecodeError::UnsupportedVersion {
                field: "leaf_version",
                version: 2
            })
        );
        let mut b = good;
        b[1] = 0;
        assert_eq!(
            Leaf::from_bytes_v1(&b),
            Err(DecodeError::UnknownTag {
                field: "transport",
                tag: 0
            })
        );
        let mut b = good;
        b[6] = 0x08;
        assert_eq!(
            Leaf::from_bytes_v1(&b),
            Err(DecodeError::ReservedFlags { flags: 0x08 })
        );
        let mut b = good;
        b[8] = 1;
        assert_eq!(
            Leaf::from_bytes_v1(&b),
            Err(DecodeError::InconsistentSizeBucket)
        );
        assert_eq!(
            Leaf::from_bytes_v1(&good[..68]),
            Err(DecodeError::WrongLength {
                expected: 69,
                actual: 68
            })
        );
    }

    #[test]
    fn hash_is_rfc6962_leaf_hash() {
        let leaf = sample();
        let mut msg = vec![0u8];
        msg.extend_from_slice(&leaf.to_bytes());
        assert_eq!(leaf.hash(), tagged_sha256(&[], &[&msg]));
        let mut msg = vec![0u8];
        msg.extend_from_slice(&leaf.to_bytes_v1());
        assert_eq!(leaf.hash_v1(), tagged_sha256(&[], &[&msg]));
        assert_eq!(leaf.hash_for(1), leaf.hash_v1());
        assert_eq!(leaf.hash_for(2), leaf.hash());
    }

    #[test]
    fn name_audit() {
        let key = NameKey([3; 32]);
        let name = NormalizedName::new("example.com").unwrap();
        let mut leaf = sample();
        leaf.name_hash = key.name_hash(&name);
        let commitment = key.commitment();
        assert_eq!(leaf.audit_name(&name, &key, &commitment), Ok(()));
        let other = NormalizedName::new("example.org").unwrap();
        assert_eq!(
            leaf.audit_name(&other, &key, &commitment),
            Err(NameAuditError::NameMismatch)
        );
        assert_eq!(
            leaf.audit_name(&name, &NameKey([4; 32]), &commitment),
            Err(NameAuditError::WrongKey)
        );
    }
}
