//! DNS name normalization.
//!
//! The canonical form of a name is what name hashes are computed over, so every component
//! (the edge, auditors, other-language verifiers) must produce the same bytes:
//!
//! 1. trim surrounding white space; an empty result is [`NameError::Empty`];
//! 2. the name `.` alone is the root, whose canonical form is `.`;
//! 3. map to A-labels with UTS #46 (IDNA, non-transitional, no STD3 ASCII restriction so
//!    that service labels such as `_dmarc` survive, hyphens unrestricted), which also lowercases;
//!    pure-ASCII input without `xn--` labels skips the mapping and is only lowercased;
//! 4. strip exactly one trailing dot;
//! 5. check: every label is 1 to 63 octets of `[a-z0-9_-]`, and the whole name is at most 253
//!    octets (the dotted form without the trailing dot).
//!
//! Input longer than [`MAX_INPUT_LEN`] bytes is refused before any mapping, so memory use is
//! bounded whatever the caller passes.

use core::fmt;

/// Longest canonical name, in octets, without the trailing dot.
pub const MAX_NAME_LEN: usize = 253;
/// Longest label, in octets.
pub const MAX_LABEL_LEN: usize = 63;
/// Longest input accepted before mapping (four UTF-8 bytes for each octet of the longest name,
/// plus room for a trailing dot and surrounding white space).
pub const MAX_INPUT_LEN: usize = 1024;

/// A DNS name in canonical form: ASCII, lowercase, A-labels, no trailing dot (the root is
/// `.`). Stored inline, `Copy`, no allocation.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NormalizedName {
    len: u8,
    buf: [u8; MAX_NAME_LEN],
}

impl NormalizedName {
    /// The root name, `.`.
    pub const ROOT: Self = {
        let mut buf = [0u8; MAX_NAME_LEN];
        buf[0] = b'.';
        Self { len: 1, buf }
    };

    /// Normalize a name given as text.
    ///
    /// # Errors
    ///
    /// A [`NameError`] naming the rule the input breaks.
    pub fn new(input: &str) -> Result<Self, NameError> {
        if input.len() > MAX_INPUT_LEN {
            return Err(NameError::TooLong { len: input.len() });
        }
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(NameError::Empty);
        }
        if trimmed == "." {
            return Ok(Self::ROOT);
        }
        if trimmed.is_ascii() && !has_ace_label(trimmed.as_bytes()) {
            return Self::from_ascii(strip_one_dot(trimmed.as_bytes()));
        }
        Self::from_unicode(trimmed)
    }

    /// Normalize a name given as bytes, which must be UTF-8.
    ///
    /// # Errors
    ///
    /// [`NameError::InvalidUtf8`] for bytes that are not UTF-8, otherwise as
    /// [`NormalizedName::new`].
    pub fn from_bytes(input: &[u8]) -> Result<Self, NameError> {
        if input.len() > MAX_INPUT_LEN {
            return Err(NameError::TooLong { len: input.len() });
        }
        let text = core::str::from_utf8(input).map_err(|_| NameError::InvalidUtf8)?;
        Self::new(text)
    }

    #[cfg(feature = "idna")]
    fn from_unicode(trimmed: &str) -> Result<Self, NameError> {
        use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};
        let ascii = Uts46::new()
            .to_ascii(
                trimmed.as_bytes(),
                AsciiDenyList::EMPTY,
                Hyphens::Allow,
                DnsLength::Ignore,
            )
            .map_err(|_| NameError::Idna)?;
        if ascii == "." {
            return Ok(Self::ROOT);
        }
        Self::from_ascii(strip_one_dot(ascii.as_bytes()))
    }

    #[cfg(not(feature = "idna"))]
    fn from_unicode(trimmed: &str) -> Result<Self, NameError> {
        if trimmed.is_ascii() {
            // `xn--` labels are kept as given (lowercased) when IDNA support is compiled out.
            Self::from_ascii(strip_one_dot(trimmed.as_bytes()))
        } else {
            Err(NameError::NonAscii)
        }
    }

    /// Check and lowercase an ASCII name that has no trailing dot left to strip.
    fn from_ascii(src: &[u8]) -> Result<Self, NameError> {
        if src.is_empty() {
            return Err(NameError::EmptyLabel { index: 0 });
        }
        if src.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong { len: src.len() });
        }
        let mut buf = [0u8; MAX_NAME_LEN];
        let mut label_index = 0usize;
        let mut label_start = 0usize;
        for (position, (&byte, slot)) in src.iter().zip(buf.iter_mut()).enumerate() {
            if byte == b'.' {
                if position == label_start {
                    return Err(NameError::EmptyLabel { index: label_index });
                }
                label_index = label_index.saturating_add(1);
                label_start = position.saturating_add(1);
                *slot = b'.';
                continue;
            }
            let lower = byte.to_ascii_lowercase();
            if !(lower.is_ascii_lowercase()
                || lower.is_ascii_digit()
                || lower == b'-'
                || lower == b'_')
            {
                return Err(NameError::InvalidCharacter { position, byte });
            }
            let label_len = position.saturating_sub(label_start).saturating_add(1);
            if label_len > MAX_LABEL_LEN {
                let rest = src.get(label_start..).unwrap_or_default();
                let len = rest.iter().position(|&b| b == b'.').unwrap_or(rest.len());
                return Err(NameError::LabelTooLong {
                    index: label_index,
                    len,
                });
            }
            *slot = lower;
        }
        if label_start == src.len() {
            // The input still ended in a dot after one was stripped ("a..").
            return Err(NameError::EmptyLabel { index: label_index });
        }
        Ok(Self {
            // Bounded by MAX_NAME_LEN (253) above.
            len: src.len() as u8,
            buf,
        })
    }

    /// The canonical form as bytes (what name hashes are computed over).
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..usize::from(self.len)).unwrap_or_default()
    }

    /// The canonical form as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are ever stored.
        core::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// Whether this is the root name.
    pub fn is_root(&self) -> bool {
        self.as_bytes() == b"."
    }

    /// The labels, left to right (none for the root).
    pub fn labels(&self) -> impl Iterator<Item = &str> + '_ {
        let text = if self.is_root() { "" } else { self.as_str() };
        text.split('.').filter(|l| !l.is_empty())
    }

    /// Length of the canonical form in octets.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Always false: a normalized name has at least one octet. Present for API symmetry.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

fn strip_one_dot(bytes: &[u8]) -> &[u8] {
    bytes.strip_suffix(b".").unwrap_or(bytes)
}

/// Whether any label starts with the ACE prefix `xn--` (case-insensitively).
fn has_ace_label(bytes: &[u8]) -> bool {
    bytes.split(|&b| b == b'.').any(|label| {
        label.len() >= 4
            && label
                .get(..4)
                .is_some_and(|p| p.eq_ignore_ascii_case(b"xn--"))
    })
}

impl fmt::Debug for NormalizedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NormalizedName({:?})", self.as_str())
    }
}

impl fmt::Display for NormalizedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::str::FromStr for NormalizedName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl AsRef<[u8]> for NormalizedName {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// Why a name could not be normalized. Positions and indices refer to the ASCII (A-label) form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameError {
    /// Nothing but white space.
    Empty,
    /// The name (or the raw input) is longer than allowed.
    TooLong {
        /// Its length in octets.
        len: usize,
    },
    /// A label is empty (`a..b`, `.a`, `a..`).
    EmptyLabel {
        /// Which label, counting from 0 on the left.
        index: usize,
    },
    /// A label is longer than 63 octets.
    LabelTooLong {
        /// Which label, counting from 0 on the left.
        index: usize,
        /// Its length in octets.
        len: usize,
    },
    /// An octet outside `[a-z0-9_-]` after mapping.
    InvalidCharacter {
        /// Offset in the ASCII form.
        position: usize,
        /// The octet.
        byte: u8,
    },
    /// The input bytes are not UTF-8.
    InvalidUtf8,
    /// The name is not ASCII and IDNA support (the `idna` feature) is compiled out.
    NonAscii,
    /// UTS #46 processing rejected the name (a disallowed code point, bad Punycode in an
    /// `xn--` label, a bidi or joiner rule).
    Idna,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("name is empty"),
            Self::TooLong { len } => write!(
                f,
                "name is {len} octets long; at most {MAX_NAME_LEN} are allowed"
            ),
            Self::EmptyLabel { index } => write!(f, "label {index} of the name is empty"),
            Self::LabelTooLong { index, len } => write!(
                f,
                "label {index} of the name is {len} octets long; at most {MAX_LABEL_LEN} are allowed"
            ),
            Self::InvalidCharacter { position, byte } => write!(
                f,
                "name octet {position} is {:?}; only a-z, 0-9, '-' and '_' are allowed in labels",
                char::from(*byte)
            ),
            Self::InvalidUtf8 => f.write_str("name is not valid UTF-8"),
            Self::NonAscii => {
                f.write_str("name is not ASCII and this build has no IDNA support (feature `idna`)")
            }
            Self::Idna => {
                f.write_str("name is not a valid internationalized domain name (UTS #46)")
            }
        }
    }
}

impl core::error::Error for NameError {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(input: &str) -> String {
        NormalizedName::new(input).unwrap().as_str().to_owned()
    }

    #[test]
    fn basic_forms() {
        assert_eq!(ok("Example.COM"), "example.com");
        assert_eq!(ok("  www.Example.com.  "), "www.example.com");
        assert_eq!(ok("_dmarc.example.com"), "_dmarc.example.com");
        assert_eq!(ok("."), ".");
        assert!(NormalizedName::new(".").unwrap().is_root());
        assert_eq!(NormalizedName::new(".").unwrap().labels().count(), 0);
        assert_eq!(
            NormalizedName::new("a.b.c")
                .unwrap()
                .labels()
                .collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
    }

    #[test]
    fn unicode_and_punycode() {
        assert_eq!(ok("Bücher.DE"), "xn--bcher-kva.de");
        assert_eq!(ok("XN--BCHER-KVA.de"), "xn--bcher-kva.de");
        assert_eq!(ok("bücher.de."), "xn--bcher-kva.de");
        assert_eq!(ok("例え.テスト"), "xn--r8jz45g.xn--zckzah");
        // Full-width letters and an ideographic full stop map to ASCII.
        assert_eq!(ok("ＥＸＡＭＰＬＥ。com"), "example.com");
        assert_eq!(NormalizedName::new("xn--zz.com"), Err(NameError::Idna));
    }

    #[test]
    fn rejections() {
        assert_eq!(NormalizedName::new(""), Err(NameError::Empty));
        assert_eq!(NormalizedName::new("   "), Err(NameError::Empty));
        assert_eq!(
            NormalizedName::new(".."),
            Err(NameError::EmptyLabel { index: 0 })
        );
        assert_eq!(
            NormalizedName::new("a..b"),
            Err(NameError::EmptyLabel { index: 1 })
        );
        assert_eq!(
            NormalizedName::new(".a"),
            Err(NameError::EmptyLabel { index: 0 })
        );
        assert_eq!(
            NormalizedName::new("a.."),
            Err(NameError::EmptyLabel { index: 1 })
        );
        assert_eq!(
            NormalizedName::new("a b.com"),
            Err(NameError::InvalidCharacter {
                position: 1,
                byte: b' '
            })
        );
        assert_eq!(
            NormalizedName::new("*.example.com"),
            Err(NameError::InvalidCharacter {
                position: 0,
                byte: b'*'
            })
        );
        let label63 = "a".repeat(63);
        assert_eq!(ok(&format!("{label63}.com")).len(), 67);
        assert_eq!(
            NormalizedName::new(&format!("x.{}a.com", label63)),
            Err(NameError::LabelTooLong { index: 1, len: 64 })
        );
        // 4 labels of 63 + 3 dots = 255 > 253.
        let long = [label63.as_str(); 4].join(".");
        assert_eq!(
            NormalizedName::new(&long),
            Err(NameError::TooLong { len: 255 })
        );
        // Exactly 253 octets is allowed.
        let max = format!("{}.{}.{}.{}", label63, label63, label63, "a".repeat(61));
        assert_eq!(ok(&max).len(), 253);
        assert_eq!(
            NormalizedName::new(&"a".repeat(2000)),
            Err(NameError::TooLong { len: 2000 })
        );
        assert_eq!(
            NormalizedName::from_bytes(b"\xff.com"),
            Err(NameError::InvalidUtf8)
        );
    }

    proptest! {
        #[test]
        fn normalization_is_idempotent(input in "[a-zA-Z0-9_.-]{0,80}|\\PC{0,20}") {
            if let Ok(name) = NormalizedName::new(&input) {
                let again = NormalizedName::new(name.as_str()).unwrap();
                prop_assert_eq!(again, name);
                prop_assert!(name.len() <= MAX_NAME_LEN);
                prop_assert!(name.as_bytes().iter().all(|b| !b.is_ascii_uppercase() && b.is_ascii()));
            }
        }

        #[test]
        fn ascii_case_does_not_matter(input in "[a-z0-9]{1,20}(\\.[a-z0-9]{1,20}){0,4}") {
            let upper = input.to_ascii_uppercase();
            prop_assert_eq!(NormalizedName::new(&input).unwrap(), NormalizedName::new(&upper).unwrap());
        }
    }
}
