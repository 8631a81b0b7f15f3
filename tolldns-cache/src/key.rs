//! The cache key: a normalized question plus the flags that change an answer.

use core::fmt;
use core::hash::{Hash, Hasher};

use crate::wire::{self, FLAG_CD, MAX_NAME_LEN, QueryError};

const FLAG_DO: u8 = 0x01;
const FLAG_CD_KEY: u8 = 0x02;

/// Why a query could not be turned into a [`CacheKey`]: the same error, by the same rules, as
/// every other parser of client queries built on [`crate::wire::walk_query`].
pub type KeyError = QueryError;

/// A cache key: the question (qname lowercased, qtype, qclass) and the DO and CD flags.
///
/// The name is kept inline in wire form (at most 255 octets), so building a key never
/// allocates. Two queries that differ only in the ASCII case of the name map to the same key.
///
/// A key built by [`CacheKey::new`] from a name that is neither a well-formed wire name nor a
/// well-formed dotted name is *invalid* ([`CacheKey::is_valid`] is false): lookups with it
/// always miss and inserts under it are refused.
#[derive(Clone)]
pub struct CacheKey {
    name: [u8; MAX_NAME_LEN],
    /// Wire length of `name`; 0 marks an invalid key.
    name_len: u8,
    qtype: u16,
    qclass: u16,
    flags: u8,
}

impl CacheKey {
    /// Builds a key from a name, the query type and class, and the DO and CD flags.
    ///
    /// `qname_wire_or_ascii` is accepted in either form:
    /// - wire form (length-prefixed labels ending in the zero-length root label, no compression),
    ///   recognised when the bytes parse exactly as such a name;
    /// - otherwise dotted ASCII (`"Example.COM"` or `"example.com."`; `"."` is the root). Labels
    ///   are taken literally (no `\DDD` escapes). An empty label, a label over 63 octets or a
    ///   name over 255 octets in wire form gives an invalid key.
    ///
    /// ASCII letters are lowercased in both forms (RFC 4343); other octets are kept.
    pub fn new(
        qname_wire_or_ascii: &[u8],
        qtype: u16,
        qclass: u16,
        dnssec_ok: bool,
        checking_disabled: bool,
    ) -> Self {
        let mut name = [0u8; MAX_NAME_LEN];
        let name_len = if is_wire_name(qname_wire_or_ascii) {
            copy_lowercase(qname_wire_or_ascii, &mut name)
        } else {
            ascii_to_wire(qname_wire_or_ascii, &mut name)
        };
        Self::from_parts(name, name_len, qtype, qclass, dnssec_ok, checking_disabled)
    }

    /// Builds a key from a DNS query message with [`wire::walk_query`]: the header, the
    /// question and the additional section (for the EDNS DO bit). Returns the key and the
    /// query's message ID.
    ///
    /// No allocation. The message must follow the rules of [`crate::wire`] (one question with
    /// an uncompressed name, no answer or authority records, at most one OPT record with version
    /// 0 and nothing else in the additional section), exactly as the edge's query parser
    /// requires.
    ///
    /// # Errors
    ///
    /// [`KeyError`] names the first rule the message breaks.
    pub fn from_query(msg: &[u8]) -> Result<(Self, u16), KeyError> {
        let mut name = [0u8; MAX_NAME_LEN];
        let q = wire::walk_query(msg, &mut name)?;
        let key = Self::from_parts(
            name,
            q.question.name_len,
            q.question.qtype,
            q.question.qclass,
            q.opt.is_some_and(|o| o.dnssec_ok),
            q.header.flags & FLAG_CD != 0,
        );
        Ok((key, q.header.id))
    }

    fn from_parts(
        name: [u8; MAX_NAME_LEN],
        name_len: usize,
        qtype: u16,
        qclass: u16,
        dnssec_ok: bool,
        checking_disabled: bool,
    ) -> Self {
        let mut flags = 0;
        if dnssec_ok {
            flags |= FLAG_DO;
        }
        if checking_disabled {
            flags |= FLAG_CD_KEY;
        }
        Self {
            name,
            // Names are at most 255 octets; anything else is marked invalid.
            name_len: u8::try_from(name_len).unwrap_or(0),
            qtype,
            qclass,
            flags,
        }
    }

    /// Whether the key names a well-formed question. Invalid keys never hit and are never stored.
    pub fn is_valid(&self) -> bool {
        self.name_len != 0
    }

    /// The lowercased query name in wire form (empty for an invalid key).
    pub fn qname_wire(&self) -> &[u8] {
        self.name.get(..usize::from(self.name_len)).unwrap_or(&[])
    }

    /// The query type.
    pub fn qtype(&self) -> u16 {
        self.qtype
    }

    /// The query class.
    pub fn qclass(&self) -> u16 {
        self.qclass
    }

    /// Whether the query set the EDNS DO bit (RFC 3225).
    pub fn dnssec_ok(&self) -> bool {
        self.flags & FLAG_DO != 0
    }

    /// Whether the query set the CD bit (RFC 4035).
    pub fn checking_disabled(&self) -> bool {
        self.flags & FLAG_CD_KEY != 0
    }
}

impl PartialEq for CacheKey {
    fn eq(&self, other: &Self) -> bool {
        self.qtype == other.qtype
            && self.qclass == other.qclass
            && self.flags == other.flags
            && self.qname_wire() == other.qname_wire()
    }
}

impl Eq for CacheKey {}

impl Hash for CacheKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.qname_wire().hash(state);
        self.qtype.hash(state);
        self.qclass.hash(state);
        self.flags.hash(state);
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheKey")
            .field("qname", &DisplayName(self.qname_wire()))
            .field("qtype", &self.qtype)
            .field("qclass", &self.qclass)
            .field("dnssec_ok", &self.dnssec_ok())
            .field("checking_disabled", &self.checking_disabled())
            .finish()
    }
}

/// Presentation form of a wire name for `Debug` (non-printable octets as `\DDD`).
struct DisplayName<'a>(&'a [u8]);

impl fmt::Debug for DisplayName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("<invalid>");
        }
        f.write_str("\"")?;
        let mut rest = self.0;
        while let Some((&len, tail)) = rest.split_first() {
            if len == 0 {
                break;
            }
            let (label, after) = tail.split_at(usize::from(len).min(tail.len()));
            for &c in label {
                if c.is_ascii_graphic() && c != b'.' && c != b'\\' && c != b'"' {
                    write!(f, "{}", char::from(c))?;
                } else {
                    write!(f, "\\{c:03}")?;
                }
            }
            f.write_str(".")?;
            rest = after;
        }
        f.write_str("\"")
    }
}

/// Whether `b` is exactly one uncompressed wire name.
fn is_wire_name(b: &[u8]) -> bool {
    if b.len() > MAX_NAME_LEN {
        return false;
    }
    let mut pos = 0usize;
    while let Some(&len) = b.get(pos) {
        if len == 0 {
            return pos + 1 == b.len();
        }
        if len > 63 {
            return false;
        }
        pos += usize::from(len) + 1;
    }
    false
}

/// Copies a wire name, lowercasing ASCII letters. Length octets are at most 63, below `b'A'`,
/// so lowercasing the whole buffer never changes them.
fn copy_lowercase(b: &[u8], out: &mut [u8; MAX_NAME_LEN]) -> usize {
    match out.get_mut(..b.len()) {
        Some(dst) => {
            dst.copy_from_slice(b);
            dst.make_ascii_lowercase();
            b.len()
        }
        None => 0,
    }
}

/// Converts a dotted ASCII name into lowercased wire form; returns 0 if it is not a valid name.
fn ascii_to_wire(b: &[u8], out: &mut [u8; MAX_NAME_LEN]) -> usize {
    let body = match b {
        [] => return 0,
        [b'.'] => &[][..],
        [rest @ .., b'.'] => rest,
        _ => b,
    };
    let mut n = 0usize;
    if !body.is_empty() {
        for label in body.split(|&c| c == b'.') {
            let Ok(len) = u8::try_from(label.len()) else {
                return 0;
            };
            if len == 0 || len > 63 {
                return 0;
            }
            let Some(dst) = out.get_mut(n..n + 1 + label.len()) else {
                return 0;
            };
            if let Some((first, rest)) = dst.split_first_mut() {
                *first = len;
                rest.copy_from_slice(label);
                rest.make_ascii_lowercase();
            }
            n += 1 + label.len();
        }
    }
    match out.get_mut(n) {
        Some(root) => {
            *root = 0;
            n + 1
        }
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WWW_EXAMPLE: &[u8] = b"\x03www\x07example\x03com\x00";

    #[test]
    fn ascii_and_wire_forms_give_the_same_lowercased_key() {
        let a = CacheKey::new(b"WWW.Example.com", 1, 1, false, false);
        let b = CacheKey::new(b"www.example.com.", 1, 1, false, false);
        let c = CacheKey::new(b"\x03WwW\x07EXAMPLE\x03com\x00", 1, 1, false, false);
        assert_eq!(a.qname_wire(), WWW_EXAMPLE);
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(
            CacheKey::new(b".", 2, 1, false, false).qname_wire(),
            b"\x00"
        );
        assert_eq!(
            CacheKey::new(b"\x00", 2, 1, false, false).qname_wire(),
            b"\x00"
        );
    }

    #[test]
    fn flags_type_and_class_separate_keys() {
        let base = CacheKey::new(b"example.com", 1, 1, false, false);
        assert_ne!(base, CacheKey::new(b"example.com", 28, 1, false, false));
        assert_ne!(base, CacheKey::new(b"example.com", 1, 3, false, false));
        assert_ne!(base, CacheKey::new(b"example.com", 1, 1, true, false));
        assert_ne!(base, CacheKey::new(b"example.com", 1, 1, false, true));
        let k = CacheKey::new(b"example.com", 1, 1, true, true);
        assert!(k.dnssec_ok() && k.checking_disabled());
    }

    #[test]
    fn malformed_names_give_invalid_keys() {
        for bad in [&b""[..], b"a..b", b".a", &[b'x'; 64][..]] {
            let k = CacheKey::new(bad, 1, 1, false, false);
            assert!(!k.is_valid(), "{bad:?}");
            assert_eq!(k.qname_wire(), b"");
        }
        // 4 labels of 63 plus separators: 257 wire octets.
        let long = [[b'a'; 63]; 4].join(&b'.');
        assert!(!CacheKey::new(&long, 1, 1, false, false).is_valid());
        let ok = [[b'a'; 63]; 3].join(&b'.');
        assert_eq!(
            CacheKey::new(&ok, 1, 1, false, false).qname_wire().len(),
            193
        );
    }

    fn query(flags: u16, qd: u16, ar: u16, tail: &[u8]) -> Vec<u8> {
        let mut m = vec![0xAB, 0xCD];
        m.extend_from_slice(&flags.to_be_bytes());
        m.extend_from_slice(&qd.to_be_bytes());
        m.extend_from_slice(&[0, 0, 0, 0]);
        m.extend_from_slice(&ar.to_be_bytes());
        m.extend_from_slice(tail);
        m
    }

    fn question() -> Vec<u8> {
        let mut q = b"\x03WWW\x07example\x03COM\x00".to_vec();
        q.extend_from_slice(&[0, 28, 0, 1]);
        q
    }

    const OPT_DO: [u8; 11] = [0, 0, 41, 0x04, 0xD0, 0, 0, 0x80, 0, 0, 0];

    #[test]
    fn from_query_reads_question_id_do_and_cd() {
        let (k, id) = CacheKey::from_query(&query(0x0100, 1, 0, &question())).expect("query");
        assert_eq!(id, 0xABCD);
        assert_eq!(k.qname_wire(), WWW_EXAMPLE);
        assert_eq!((k.qtype(), k.qclass()), (28, 1));
        assert!(!k.dnssec_ok() && !k.checking_disabled());

        let mut tail = question();
        tail.extend_from_slice(&OPT_DO);
        let (k, _) = CacheKey::from_query(&query(0x0110, 1, 1, &tail)).expect("query with OPT");
        assert!(k.dnssec_ok() && k.checking_disabled());
        assert_eq!(k, CacheKey::new(b"www.example.com", 28, 1, true, true));
    }

    #[test]
    fn from_query_rejects_what_is_not_a_plain_query() {
        use crate::wire::WireError;
        let q = question();
        assert_eq!(CacheKey::from_query(&q[..5]), Err(KeyError::NoHeader));
        assert_eq!(
            CacheKey::from_query(&query(0x8100, 1, 0, &q)),
            Err(KeyError::NotAQuery)
        );
        assert_eq!(
            CacheKey::from_query(&query(0x2800, 1, 0, &q)),
            Err(KeyError::Opcode(5))
        );
        assert_eq!(
            CacheKey::from_query(&query(0, 2, 0, &q)),
            Err(KeyError::QuestionCount(2))
        );
        assert_eq!(
            CacheKey::from_query(&query(0, 1, 0, &[0xC0, 0x0C, 0, 1, 0, 1])),
            Err(KeyError::Question(WireError::Compressed))
        );
        assert_eq!(
            CacheKey::from_query(&query(0, 1, 0, &[0x80, 0, 1, 0, 1])),
            Err(KeyError::Question(WireError::ReservedLabelType(0x80)))
        );
        assert_eq!(
            CacheKey::from_query(&query(0, 1, 0, &q[..q.len() - 1])),
            Err(KeyError::Question(WireError::Truncated))
        );
        let mut two_opts = q.clone();
        two_opts.extend_from_slice(&OPT_DO);
        two_opts.extend_from_slice(&OPT_DO);
        assert_eq!(
            CacheKey::from_query(&query(0, 1, 2, &two_opts)),
            Err(KeyError::DuplicateOpt)
        );
        assert_eq!(
            CacheKey::from_query(&query(0, 1, 1, &q)),
            Err(KeyError::Additional(WireError::Truncated))
        );
        // A name of exactly 255 octets is a key; one of 256 is not.
        for (last, ok) in [(61usize, true), (62, false)] {
            let mut tail = Vec::new();
            for len in [63, 63, 63, last] {
                tail.push(u8::try_from(len).expect("label length"));
                tail.extend(std::iter::repeat_n(b'x', len));
            }
            tail.extend_from_slice(&[0, 0, 1, 0, 1]);
            let r = CacheKey::from_query(&query(0, 1, 0, &tail));
            assert_eq!(r.is_ok(), ok, "{r:?}");
            if let Ok((k, _)) = r {
                assert_eq!(k.qname_wire().len(), 255);
            }
        }
    }
}
