//! Operator and backend identifiers.

use core::fmt;

/// An operator's identity: its ed25519 public key (32 bytes). In receipts this is the hot
/// receipt-signing key that the operator's wallet registered as its delegate.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct OperatorId(pub [u8; 32]);

impl OperatorId {
    /// The raw key bytes.
    pub const fn to_bytes(self) -> [u8; 32] {
        self.0
    }

    /// Borrow the raw key bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl From<[u8; 32]> for OperatorId {
    fn from(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl fmt::Debug for OperatorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OperatorId(")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

/// The network a receipt belongs to: `SHA256("TOLLDNS-DEPLOYMENT-V1\0" || program_id ||
/// genesis_hash)` ([`DeploymentId::derive`]), the score program's address and the cluster's
/// genesis hash. A v2 receipt carries it inside its signed body, so a receipt signed for one
/// network never verifies on another, even under the same key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct DeploymentId(pub [u8; 32]);

impl DeploymentId {
    /// The deployment of the score program `program_id` on the cluster whose genesis hash is
    /// `genesis_hash`.
    pub fn derive(program_id: &[u8; 32], genesis_hash: &[u8; 32]) -> Self {
        Self(crate::hash::tagged_sha256(
            crate::hash::DEPLOYMENT_TAG,
            &[program_id, genesis_hash],
        ))
    }

    /// The local development deployment: [`DeploymentId::derive`] of an all-zero program id
    /// and genesis hash. What a miner, CLI or watcher uses when none is configured; a real
    /// network always has its own.
    pub fn local() -> Self {
        Self::derive(&[0; 32], &[0; 32])
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for DeploymentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl core::str::FromStr for DeploymentId {
    type Err = DeploymentIdError;

    /// 64 hex digits (either case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s.as_bytes();
        if digits.len() != 64 {
            return Err(DeploymentIdError);
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
            let mut v = 0u8;
            for d in pair {
                let nibble = match d {
                    b'0'..=b'9' => d.wrapping_sub(b'0'),
                    b'a'..=b'f' => d.wrapping_sub(b'a').wrapping_add(10),
                    b'A'..=b'F' => d.wrapping_sub(b'A').wrapping_add(10),
                    _ => return Err(DeploymentIdError),
                };
                v = (v << 4) | nibble;
            }
            *byte = v;
        }
        Ok(Self(out))
    }
}

/// A deployment id that is not 64 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeploymentIdError;

impl fmt::Display for DeploymentIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a deployment id is 64 hex digits")
    }
}

impl core::error::Error for DeploymentIdError {}

impl fmt::Debug for DeploymentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeploymentId(")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod deployment_tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_derivation() {
        let local = DeploymentId::local();
        let text = local.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text.parse::<DeploymentId>(), Ok(local));
        assert_eq!(text.to_uppercase().parse::<DeploymentId>(), Ok(local));
        assert_eq!("00".parse::<DeploymentId>(), Err(DeploymentIdError));
        assert_eq!(
            "g".repeat(64).parse::<DeploymentId>(),
            Err(DeploymentIdError)
        );
        let mut msg = b"TOLLDNS-DEPLOYMENT-V1\0".to_vec();
        msg.extend_from_slice(&[1; 32]);
        msg.extend_from_slice(&[2; 32]);
        assert_eq!(
            DeploymentId::derive(&[1; 32], &[2; 32]).0,
            crate::hash::tagged_sha256(&[], &[&msg])
        );
        assert_ne!(DeploymentId::derive(&[1; 32], &[2; 32]), local);
    }
}

/// A backend identifier: 1 to [`BackendId::MAX_LEN`] printable ASCII bytes (0x21..=0x7e, so no
/// spaces or control characters), e.g. `edge-ingress`. Stored inline, `Copy`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BackendId {
    len: u8,
    bytes: [u8; Self::MAX_LEN],
}

impl BackendId {
    /// The longest backend id, in bytes.
    pub const MAX_LEN: usize = 32;

    /// The id pure edge ingress uses.
    pub const EDGE_INGRESS: &'static str = "edge-ingress";

    /// Validate and store a backend id.
    ///
    /// # Errors
    ///
    /// [`BackendIdError::Empty`], [`BackendIdError::TooLong`] or
    /// [`BackendIdError::InvalidByte`].
    pub fn new(id: &str) -> Result<Self, BackendIdError> {
        Self::from_bytes(id.as_bytes())
    }

    /// Like [`BackendId::new`], from bytes.
    ///
    /// # Errors
    ///
    /// As [`BackendId::new`].
    pub fn from_bytes(id: &[u8]) -> Result<Self, BackendIdError> {
        if id.is_empty() {
            return Err(BackendIdError::Empty);
        }
        if id.len() > Self::MAX_LEN {
            return Err(BackendIdError::TooLong { len: id.len() });
        }
        if let Some((index, &byte)) = id
            .iter()
            .enumerate()
            .find(|(_, b)| !(0x21..=0x7e).contains(*b))
        {
            return Err(BackendIdError::InvalidByte { index, byte });
        }
        let mut bytes = [0u8; Self::MAX_LEN];
        let (head, _) = bytes.split_at_mut(id.len());
        head.copy_from_slice(id);
        Ok(Self {
            // Bounded by MAX_LEN (32) above.
            len: id.len() as u8,
            bytes,
        })
    }

    /// The id as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Every byte was checked to be printable ASCII.
        core::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

impl fmt::Debug for BackendId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BackendId({:?})", self.as_str())
    }
}

impl fmt::Display for BackendId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::str::FromStr for BackendId {
    type Err = BackendIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// Why a backend id was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendIdError {
    /// The id is empty.
    Empty,
    /// The id is longer than [`BackendId::MAX_LEN`] bytes.
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// A byte outside printable ASCII (0x21..=0x7e).
    InvalidByte {
        /// Where.
        index: usize,
        /// The byte.
        byte: u8,
    },
}

impl fmt::Display for BackendIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("backend id is empty"),
            Self::TooLong { len } => write!(
                f,
                "backend id is {len} bytes long; at most {} are allowed",
                BackendId::MAX_LEN
            ),
            Self::InvalidByte { index, byte } => write!(
                f,
                "backend id byte {index} is 0x{byte:02x}; only printable ASCII without spaces is allowed"
            ),
        }
    }
}

impl core::error::Error for BackendIdError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_id_bounds() {
        assert_eq!(
            BackendId::new("edge-ingress").unwrap().as_str(),
            "edge-ingress"
        );
        assert_eq!(BackendId::new(""), Err(BackendIdError::Empty));
        let max = "a".repeat(32);
        assert_eq!(BackendId::new(&max).unwrap().as_bytes().len(), 32);
        assert_eq!(
            BackendId::new(&"a".repeat(33)),
            Err(BackendIdError::TooLong { len: 33 })
        );
        assert_eq!(
            BackendId::new("edge ingress"),
            Err(BackendIdError::InvalidByte {
                index: 4,
                byte: b' '
            })
        );
        assert_eq!(
            BackendId::new("é"),
            Err(BackendIdError::InvalidByte {
                index: 0,
                byte: 0xc3
            })
        );
    }

    #[test]
    fn operator_id_debug_is_hex() {
        let id = OperatorId([0xab; 32]);
        let s = format!("{id:?}");
        assert!(s.starts_with("OperatorId(abab"));
        assert_eq!(s.len(), "OperatorId()".len() + 64);
    }
}
