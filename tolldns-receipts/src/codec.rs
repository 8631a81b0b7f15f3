//! Byte reading for the Borsh decoders, and the decode error shared by leaves, receipts and
//! proofs.

use alloc::vec::Vec;
use core::fmt;

use tolldns_core::BackendIdError;

/// Why bytes were refused as a leaf, receipt or proof. Decoding is strict: exactly one byte
/// string decodes to a given value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended inside a field.
    UnexpectedEnd {
        /// The field being read.
        field: &'static str,
    },
    /// Bytes were left after the value.
    TrailingBytes {
        /// How many.
        len: usize,
    },
    /// A fixed-size value had the wrong length.
    WrongLength {
        /// The length required.
        expected: usize,
        /// The length given.
        actual: usize,
    },
    /// A version byte this crate does not implement.
    UnsupportedVersion {
        /// The field (`leaf_version` or `receipt_version`).
        field: &'static str,
        /// The version found.
        version: u8,
    },
    /// A `u8` tag that names no value of its enum.
    UnknownTag {
        /// The field.
        field: &'static str,
        /// The tag found.
        tag: u8,
    },
    /// Leaf flag bits that are reserved (must be zero) were set.
    ReservedFlags {
        /// The flags byte.
        flags: u8,
    },
    /// A leaf's size bucket is not the bucket of its `response_bytes`.
    InconsistentSizeBucket,
    /// The backend id is not 1..=32 printable ASCII bytes.
    InvalidBackendId(BackendIdError),
    /// `window_len_s` is zero.
    ZeroWindowLen,
    /// A class-count list is not in canonical form (tags strictly ascending, no zero count,
    /// no more entries than the enum has values).
    NonCanonicalClassCounts {
        /// The field.
        field: &'static str,
    },
    /// A v2 leaf's `response_bytes` exceeds 65,535 (no DNS message is larger).
    ResponseTooLarge {
        /// The value found.
        response_bytes: u32,
    },
    /// A v2 name sketch register above the largest possible rank.
    SketchRegisterOutOfRange {
        /// The register.
        register: usize,
        /// Its value.
        value: u8,
    },
    /// A Merkle audit path longer than 64 hashes.
    PathTooLong {
        /// Its declared length.
        len: u32,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnexpectedEnd { field } => write!(f, "input ended while reading `{field}`"),
            Self::TrailingBytes { len } => write!(f, "{len} bytes left after the value"),
            Self::WrongLength { expected, actual } => {
                write!(f, "expected {expected} bytes, got {actual}")
            }
            Self::UnsupportedVersion { field, version } => {
                write!(f, "unsupported `{field}` {version}")
            }
            Self::UnknownTag { field, tag } => write!(f, "unknown tag {tag} for `{field}`"),
            Self::ReservedFlags { flags } => {
                write!(f, "reserved leaf flag bits set (flags 0x{flags:02x})")
            }
            Self::InconsistentSizeBucket => {
                f.write_str("leaf size bucket does not match its response_bytes")
            }
            Self::InvalidBackendId(e) => write!(f, "invalid backend_id: {e}"),
            Self::ZeroWindowLen => f.write_str("window_len_s is zero"),
            Self::NonCanonicalClassCounts { field } => write!(
                f,
                "`{field}` is not canonical (tags strictly ascending, counts non-zero)"
            ),
            Self::ResponseTooLarge { response_bytes } => write!(
                f,
                "leaf response_bytes {response_bytes} exceeds 65535 (the largest DNS message)"
            ),
            Self::SketchRegisterOutOfRange { register, value } => write!(
                f,
                "name sketch register {register} holds {value}, above the largest rank"
            ),
            Self::PathTooLong { len } => {
                write!(f, "Merkle audit path of {len} hashes (at most 64)")
            }
        }
    }
}

impl core::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::InvalidBackendId(e) => Some(e),
            _ => None,
        }
    }
}

/// A cursor over borrowed bytes; every read is bounds-checked.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) const fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        let (head, rest) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or(DecodeError::UnexpectedEnd { field })?;
        self.rest = rest;
        Ok(*head)
    }

    pub(crate) fn slice(
        &mut self,
        len: usize,
        field: &'static str,
    ) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < len {
            return Err(DecodeError::UnexpectedEnd { field });
        }
        let (head, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(head)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(u8::from_le_bytes(self.array(field)?))
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }

    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes {
                len: self.rest.len(),
            })
        }
    }
}

/// Appends Borsh primitives to a byte vector.
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn with_capacity(cap: usize) -> Self {
        Self {
            buf: Vec::with_capacity(cap),
        }
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }

    /// A Borsh length prefix (`u32` LE). Every list this crate writes is bounded far below
    /// `u32::MAX`; a longer one saturates, and the decoder then refuses it.
    pub(crate) fn len_prefix(&mut self, len: usize) {
        self.u32(u32::try_from(len).unwrap_or(u32::MAX));
    }
}
