//! The hand-written DNS wire walker shared by the cache and the edge's ingress (RFC 1035 §4.1).
//!
//! Full parses (the cache's own [`Cache::insert`](crate::Cache::insert), quorum grading) use
//! hickory-proto; everything on the hot path goes through this module instead: reading a
//! header, skipping or reading names, reading the question, walking records and locating the
//! EDNS(0) OPT record. The edge's upstream pool checks every answer it receives with it. Nothing here allocates,
//! every read is bounds-checked, and malformed input is a typed error ([`WireError`],
//! [`QueryError`]), never a panic.
//!
//! # Rules
//!
//! One set of rules, applied by [`walk_query`] and therefore by every parser of client queries
//! built on it (`CacheKey::from_query` and the ingress's query parser):
//!
//! - **Name length**: a name is at most [`MAX_NAME_LEN`] (255) octets in wire form, counting
//!   every length octet including the root label's (RFC 1035 §2.3.4, §3.1); a 255-octet name is
//!   accepted, a 256-octet one is refused. Labels are at most 63 octets; the label types `01`
//!   and `10` (RFC 6891 §5) are refused.
//! - **Compression**: a query carries no compression pointer at all. The question is the first
//!   name in the message, so nothing a pointer may refer to precedes it; the only other record
//!   a query may hold is OPT, whose owner is the root. In responses, [`read_name`] follows
//!   pointers only strictly backwards, to before the start of the name (or name suffix) that
//!   holds them, which rules out loops, and never past [`MAX_NAME_LEN`] octets; [`skip_name`]
//!   applies the same backward rule without following the pointer.
//! - **Sections of a query**: QDCOUNT must be exactly 1; the answer and authority sections
//!   must be empty; the additional section may hold one OPT record and nothing else. The OPT
//!   owner must be the root name (a single zero octet), its options must exactly fill its RDATA,
//!   and its EDNS version must be 0 (otherwise [`QueryError::BadVersion`], answered with
//!   BADVERS by the edge). Octets after the last counted record are ignored.

use core::ops::Range;

/// Length of the fixed DNS header.
pub const HEADER_LEN: usize = 12;
/// Longest name in wire form, every length octet included (RFC 1035 §3.1).
pub const MAX_NAME_LEN: usize = 255;
/// Longest label (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;
/// Fixed part of a resource record after its owner name: TYPE, CLASS, TTL, RDLENGTH.
pub const RR_FIXED_LEN: usize = 10;
/// Record type of the EDNS(0) pseudo-record (RFC 6891).
pub const TYPE_OPT: u16 = 41;
/// Record type SOA.
pub const TYPE_SOA: u16 = 6;
/// Query type ANY (`*`).
pub const TYPE_ANY: u16 = 255;

/// Header flag: this message is a response.
pub const FLAG_QR: u16 = 0x8000;
/// Header flag: the message was truncated.
pub const FLAG_TC: u16 = 0x0200;
/// Header flag: recursion desired.
pub const FLAG_RD: u16 = 0x0100;
/// Header flag: checking disabled (RFC 4035).
pub const FLAG_CD: u16 = 0x0010;
/// Mask of the OPCODE field.
pub const OPCODE_MASK: u16 = 0x7800;
/// Mask of the 4-bit header RCODE.
pub const RCODE_MASK: u16 = 0x000F;
/// The DO bit in the TTL field of an OPT record (RFC 3225).
pub const EDNS_DO: u32 = 0x0000_8000;

/// Why a piece of a message could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The message ends inside the field being read.
    #[error("message is truncated")]
    Truncated,
    /// A label length octet of the reserved types `01` or `10`.
    #[error("reserved label type {0:#04x}")]
    ReservedLabelType(u8),
    /// A name longer than 255 octets in wire form.
    #[error("name longer than 255 octets")]
    NameTooLong,
    /// A compression pointer where only a plain name is allowed.
    #[error("compressed name where a plain one is required")]
    Compressed,
    /// A compression pointer that does not point strictly backwards (a loop or a forward
    /// reference).
    #[error("compression pointer does not point backwards")]
    BadPointer,
    /// An EDNS option runs past the end of the OPT record's RDATA.
    #[error("EDNS option overruns the OPT record")]
    BadOption,
}

/// Why a message is not an acceptable client query (see the module's rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// Shorter than a DNS header.
    #[error("message shorter than a DNS header")]
    NoHeader,
    /// The QR bit is set: this is a response, not a query.
    #[error("message is a response, not a query")]
    NotAQuery,
    /// The opcode is not QUERY (0).
    #[error("opcode {0} is not QUERY")]
    Opcode(u8),
    /// QDCOUNT is not exactly one.
    #[error("query carries {0} questions, expected exactly one")]
    QuestionCount(u16),
    /// The answer or authority section is not empty.
    #[error("query carries answer or authority records")]
    RecordsInQuery,
    /// The question cannot be read.
    #[error("question: {0}")]
    Question(WireError),
    /// A record of the additional section cannot be read.
    #[error("additional record: {0}")]
    Additional(WireError),
    /// The additional section holds a record other than OPT (its type).
    #[error("additional record of type {0}: only OPT is accepted in a query")]
    NotOpt(u16),
    /// More than one OPT record (RFC 6891 §6.1.1).
    #[error("query carries more than one OPT record")]
    DuplicateOpt,
    /// The OPT record's owner is not the root name.
    #[error("OPT owner is not the root name")]
    OptOwner,
    /// The OPT record's options do not exactly fill its RDATA.
    #[error("malformed EDNS option")]
    BadOption,
    /// The EDNS version is not 0 (answered with BADVERS, RFC 6891 §6.1.3).
    #[error("unsupported EDNS version {0}")]
    BadVersion(u8),
}

impl QueryError {
    /// A short static description, for logs and counters.
    pub const fn reason(&self) -> &'static str {
        match self {
            Self::NoHeader => "no header",
            Self::NotAQuery => "not a query",
            Self::Opcode(_) => "opcode is not QUERY",
            Self::QuestionCount(_) => "question count is not 1",
            Self::RecordsInQuery => "query carries answer or authority records",
            Self::Question(WireError::NameTooLong) => "name longer than 255 octets",
            Self::Question(WireError::Compressed) => "compressed name in the question",
            Self::Question(WireError::ReservedLabelType(_)) => {
                "reserved label type in the question"
            }
            Self::Question(_) => "truncated question",
            Self::Additional(_) => "malformed additional record",
            Self::NotOpt(_) => "additional record other than OPT",
            Self::DuplicateOpt => "more than one OPT record",
            Self::OptOwner => "OPT owner is not the root",
            Self::BadOption => "malformed EDNS option",
            Self::BadVersion(_) => "unsupported EDNS version",
        }
    }
}

/// Reads a big-endian `u16` at `at`; `None` past the end.
#[inline]
pub fn read_u16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([*s.first()?, *s.get(1)?]))
}

/// Reads a big-endian `u32` at `at`; `None` past the end.
#[inline]
pub fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    let mut a = [0u8; 4];
    a.copy_from_slice(s);
    Some(u32::from_be_bytes(a))
}

/// Writes a big-endian `u16` at `at`; `None` (nothing written) past the end.
#[inline]
pub fn write_u16(b: &mut [u8], at: usize, v: u16) -> Option<()> {
    b.get_mut(at..at.checked_add(2)?)?
        .copy_from_slice(&v.to_be_bytes());
    Some(())
}

/// Writes a big-endian `u32` at `at`; `None` (nothing written) past the end.
#[inline]
pub fn write_u32(b: &mut [u8], at: usize, v: u32) -> Option<()> {
    b.get_mut(at..at.checked_add(4)?)?
        .copy_from_slice(&v.to_be_bytes());
    Some(())
}

/// The fixed DNS header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Message ID.
    pub id: u16,
    /// Second header word: QR, OPCODE, AA, TC, RD, RA, Z, AD, CD, RCODE.
    pub flags: u16,
    /// Question count.
    pub qdcount: u16,
    /// Answer count.
    pub ancount: u16,
    /// Authority count.
    pub nscount: u16,
    /// Additional count.
    pub arcount: u16,
}

impl Header {
    /// Reads the header at the start of `b`.
    ///
    /// # Errors
    ///
    /// [`WireError::Truncated`] when `b` is shorter than [`HEADER_LEN`].
    #[inline]
    pub fn parse(b: &[u8]) -> Result<Self, WireError> {
        let Some([i0, i1, f0, f1, q0, q1, a0, a1, n0, n1, r0, r1]) =
            b.first_chunk::<HEADER_LEN>().copied()
        else {
            return Err(WireError::Truncated);
        };
        Ok(Self {
            id: u16::from_be_bytes([i0, i1]),
            flags: u16::from_be_bytes([f0, f1]),
            qdcount: u16::from_be_bytes([q0, q1]),
            ancount: u16::from_be_bytes([a0, a1]),
            nscount: u16::from_be_bytes([n0, n1]),
            arcount: u16::from_be_bytes([r0, r1]),
        })
    }

    /// The 4-bit OPCODE.
    #[inline]
    pub const fn opcode(&self) -> u8 {
        // Four bits after the shift: always fits.
        ((self.flags & OPCODE_MASK) >> 11) as u8
    }

    /// The 4-bit header RCODE.
    #[inline]
    pub const fn rcode(&self) -> u8 {
        (self.flags & RCODE_MASK) as u8
    }

    /// Whether the QR bit is set.
    #[inline]
    pub const fn is_response(&self) -> bool {
        self.flags & FLAG_QR != 0
    }

    /// Number of resource records in the answer, authority and additional sections.
    #[inline]
    pub fn record_count(&self) -> u32 {
        u32::from(self.ancount) + u32::from(self.nscount) + u32::from(self.arcount)
    }
}

/// Kind of a label length octet.
enum Label {
    /// End of the name (the root label).
    Root,
    /// A normal label of this many octets.
    Normal(usize),
    /// A compression pointer to this offset (the pointer is two octets long).
    Pointer(usize),
}

#[inline]
fn label_at(b: &[u8], at: usize) -> Result<Label, WireError> {
    let len = *b.get(at).ok_or(WireError::Truncated)?;
    match len & 0xC0 {
        0x00 if len == 0 => Ok(Label::Root),
        0x00 => Ok(Label::Normal(usize::from(len))),
        0xC0 => {
            let low = *b
                .get(at.checked_add(1).ok_or(WireError::Truncated)?)
                .ok_or(WireError::Truncated)?;
            Ok(Label::Pointer(
                (usize::from(len & 0x3F) << 8) | usize::from(low),
            ))
        }
        _ => Err(WireError::ReservedLabelType(len & 0xC0)),
    }
}

/// Skips the name at `at`; returns the offset just after it.
///
/// The name may end in a compression pointer, which must point before `at` (the pointer is not
/// followed). The labels walked (those before a pointer, plus the root label) must fit in
/// [`MAX_NAME_LEN`] octets.
///
/// # Errors
///
/// [`WireError`] on truncation, a reserved label type, an over-long name or a pointer that does
/// not point backwards.
#[inline]
pub fn skip_name(b: &[u8], at: usize) -> Result<usize, WireError> {
    let mut pos = at;
    loop {
        match label_at(b, pos)? {
            Label::Root => return Ok(pos + 1),
            Label::Normal(len) => {
                pos = pos + 1 + len;
                // The labels so far plus the root octet.
                if pos - at + 1 > MAX_NAME_LEN {
                    return Err(WireError::NameTooLong);
                }
            }
            Label::Pointer(target) => {
                if target >= at {
                    return Err(WireError::BadPointer);
                }
                return Ok(pos + 2);
            }
        }
    }
}

/// Reads the uncompressed name at `at` into `out`, lowercasing ASCII letters (RFC 4343).
///
/// Returns the offset just after the name and the name's wire length (root label included).
///
/// # Errors
///
/// [`WireError::Compressed`] on a compression pointer, [`WireError::NameTooLong`] past 255
/// octets, [`WireError::ReservedLabelType`], [`WireError::Truncated`].
#[inline]
pub fn read_plain_name(
    b: &[u8],
    at: usize,
    out: &mut [u8; MAX_NAME_LEN],
) -> Result<(usize, usize), WireError> {
    // First the length octets (a few per name), then one lowercasing copy of the whole name.
    let mut pos = at;
    loop {
        let len = *b.get(pos).ok_or(WireError::Truncated)?;
        match len & 0xC0 {
            0x00 => {}
            0xC0 => return Err(WireError::Compressed),
            other => return Err(WireError::ReservedLabelType(other)),
        }
        pos += 1 + usize::from(len);
        if pos - at > MAX_NAME_LEN {
            return Err(WireError::NameTooLong);
        }
        if len == 0 {
            break;
        }
    }
    let src = b.get(at..pos).ok_or(WireError::Truncated)?;
    let dst = out.get_mut(..src.len()).ok_or(WireError::NameTooLong)?;
    // Length octets are at most 63, below b'A': lowercasing leaves them unchanged.
    for (d, s) in dst.iter_mut().zip(src) {
        *d = s.to_ascii_lowercase();
    }
    Ok((pos, src.len()))
}

/// Reads the possibly compressed name at `at` into `out`, lowercased and uncompressed.
///
/// Returns the offset just after the name as it sits at `at` (after its first pointer, if any)
/// and the wire length of the whole name. A pointer must point before the start of the name or
/// name suffix that holds it, and a suffix reached through a pointer must end before that start
/// (the rule hickory-proto applies), so a pointer chain always terminates; the whole name must
/// fit in [`MAX_NAME_LEN`] octets.
///
/// # Errors
///
/// As [`read_plain_name`], with [`WireError::BadPointer`] for a pointer that breaks the rule.
pub fn read_name(
    b: &[u8],
    at: usize,
    out: &mut [u8; MAX_NAME_LEN],
) -> Result<(usize, usize), WireError> {
    let mut pos = at;
    let mut n = 0usize;
    // Start of the part being read, and the offset that part must stay below.
    let mut part_start = at;
    let mut limit = b.len();
    let mut end_at_first_pointer = None;
    loop {
        if pos >= limit {
            return Err(if limit == b.len() {
                WireError::Truncated
            } else {
                WireError::BadPointer
            });
        }
        match label_at(b, pos)? {
            Label::Root => {
                *out.get_mut(n).ok_or(WireError::NameTooLong)? = 0;
                return Ok((end_at_first_pointer.unwrap_or(pos + 1), n + 1));
            }
            Label::Normal(len) => {
                let end = pos + 1 + len;
                if end > limit {
                    return Err(if limit == b.len() {
                        WireError::Truncated
                    } else {
                        WireError::BadPointer
                    });
                }
                let dst = out.get_mut(n..n + 1 + len).ok_or(WireError::NameTooLong)?;
                let seg = b.get(pos..end).ok_or(WireError::Truncated)?;
                dst.copy_from_slice(seg);
                dst.make_ascii_lowercase();
                n += 1 + len;
                pos = end;
            }
            Label::Pointer(target) => {
                if pos + 2 > limit {
                    return Err(WireError::BadPointer);
                }
                if target >= part_start {
                    return Err(WireError::BadPointer);
                }
                end_at_first_pointer.get_or_insert(pos + 2);
                limit = part_start;
                part_start = target;
                pos = target;
            }
        }
    }
}

/// The question of a message, as read by [`read_question`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Question {
    /// Wire length of the (lowercased) name written to the caller's buffer.
    pub name_len: usize,
    /// Question type.
    pub qtype: u16,
    /// Question class.
    pub qclass: u16,
    /// Offset just after QCLASS.
    pub end: usize,
}

/// Reads the first question of a message (at [`HEADER_LEN`]), its name uncompressed (nothing
/// precedes it to point at), into `name` (lowercased).
///
/// # Errors
///
/// [`WireError`] from [`read_plain_name`], or [`WireError::Truncated`] without QTYPE/QCLASS.
#[inline]
pub fn read_question(b: &[u8], name: &mut [u8; MAX_NAME_LEN]) -> Result<Question, WireError> {
    let (after, name_len) = read_plain_name(b, HEADER_LEN, name)?;
    let qtype = read_u16(b, after).ok_or(WireError::Truncated)?;
    let qclass = read_u16(b, after + 2).ok_or(WireError::Truncated)?;
    Ok(Question {
        name_len,
        qtype,
        qclass,
        end: after + 4,
    })
}

/// Where a resource record's fields sit in the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Offset of the owner name.
    pub start: usize,
    /// Record type.
    pub rtype: u16,
    /// Record class (for OPT: the sender's UDP payload size).
    pub class: u16,
    /// Offset of the TTL field.
    pub ttl_offset: usize,
    /// The TTL field as sent (for OPT: extended RCODE, version and flags).
    pub ttl: u32,
    /// The RDATA; its end is the offset of the next record.
    pub rdata: Range<usize>,
}

impl Record {
    /// Whether the owner is the root name written as a single zero octet.
    #[inline]
    pub fn owner_is_root(&self, b: &[u8]) -> bool {
        self.ttl_offset == self.start + 5 && b.get(self.start) == Some(&0)
    }
}

/// Reads the resource record at `at` (owner skipped with [`skip_name`]); returns it and the
/// offset of the next one.
///
/// # Errors
///
/// [`WireError`] from [`skip_name`], or [`WireError::Truncated`] when the fixed fields or the
/// RDATA run past the end.
#[inline]
pub fn read_record(b: &[u8], at: usize) -> Result<(Record, usize), WireError> {
    let after_name = skip_name(b, at)?;
    let t = WireError::Truncated;
    let rtype = read_u16(b, after_name).ok_or(t)?;
    let class = read_u16(b, after_name + 2).ok_or(t)?;
    let ttl_offset = after_name + 4;
    let ttl = read_u32(b, ttl_offset).ok_or(t)?;
    let rdlen = usize::from(read_u16(b, ttl_offset + 4).ok_or(t)?);
    let start = ttl_offset + 6;
    let end = start + rdlen;
    if end > b.len() {
        return Err(t);
    }
    Ok((
        Record {
            start: at,
            rtype,
            class,
            ttl_offset,
            ttl,
            rdata: start..end,
        },
        end,
    ))
}

/// Iterator over `count` consecutive resource records, from [`records`].
///
/// Yields each record with its index; stops after the first error (which it yields).
#[derive(Debug, Clone)]
pub struct Records<'a> {
    msg: &'a [u8],
    pos: usize,
    index: u32,
    count: u32,
}

impl Records<'_> {
    /// Offset just after the records yielded so far.
    pub const fn position(&self) -> usize {
        self.pos
    }
}

impl Iterator for Records<'_> {
    type Item = Result<(u32, Record), WireError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.index >= self.count {
            return None;
        }
        let i = self.index;
        match read_record(self.msg, self.pos) {
            Ok((rr, next)) => {
                self.pos = next;
                self.index += 1;
                Some(Ok((i, rr)))
            }
            Err(e) => {
                self.index = self.count;
                Some(Err(e))
            }
        }
    }
}

/// Walks `count` records starting at `at` (typically [`Header::record_count`] records after the
/// question).
pub const fn records(msg: &[u8], at: usize, count: u32) -> Records<'_> {
    Records {
        msg,
        pos: at,
        index: 0,
        count,
    }
}

/// An EDNS(0) OPT record (RFC 6891 §6.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptRecord {
    /// Offset of the record (its owner name).
    pub start: usize,
    /// Offset of its RDATA (the options).
    pub rdata_start: usize,
    /// Offset just after the record.
    pub end: usize,
    /// The CLASS field: the sender's UDP payload size, as sent.
    pub udp_size: u16,
    /// Upper 8 bits of the extended RCODE.
    pub ext_rcode: u8,
    /// EDNS version.
    pub version: u8,
    /// The DO bit (RFC 3225).
    pub dnssec_ok: bool,
}

impl OptRecord {
    /// The OPT record described by `rr` (which must be of type OPT).
    #[inline]
    pub fn from_record(rr: &Record) -> Self {
        let [ext_rcode, version, _, _] = rr.ttl.to_be_bytes();
        Self {
            start: rr.start,
            rdata_start: rr.rdata.start,
            end: rr.rdata.end,
            udp_size: rr.class,
            ext_rcode,
            version,
            dnssec_ok: rr.ttl & EDNS_DO != 0,
        }
    }

    /// Its options, read from `msg` (the message it was found in).
    #[inline]
    pub fn options<'a>(&self, msg: &'a [u8]) -> EdnsOptions<'a> {
        EdnsOptions {
            msg,
            pos: self.rdata_start,
            end: self.end,
        }
    }
}

/// One EDNS option, as yielded by [`EdnsOptions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdnsOption {
    /// Option code.
    pub code: u16,
    /// Where its data sits in the message.
    pub data: Range<usize>,
}

/// Iterator over the options of an OPT record; stops after the first error (which it yields).
#[derive(Debug, Clone)]
pub struct EdnsOptions<'a> {
    msg: &'a [u8],
    pos: usize,
    end: usize,
}

impl Iterator for EdnsOptions<'_> {
    type Item = Result<EdnsOption, WireError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.end {
            return None;
        }
        let start = self.pos + 4;
        let header = (
            read_u16(self.msg, self.pos),
            read_u16(self.msg, self.pos + 2),
        );
        let item = match header {
            (Some(code), Some(len)) if start <= self.end => {
                let end = start + usize::from(len);
                if end <= self.end && end <= self.msg.len() {
                    self.pos = end;
                    Ok(EdnsOption {
                        code,
                        data: start..end,
                    })
                } else {
                    Err(WireError::BadOption)
                }
            }
            _ => Err(WireError::BadOption),
        };
        if item.is_err() {
            self.pos = self.end;
        }
        Some(item)
    }
}

/// Whether the EDNS options in `msg[start..end]` exactly fill it.
#[inline]
fn options_fill(msg: &[u8], start: usize, end: usize) -> bool {
    let mut pos = start;
    while pos < end {
        match read_u16(msg, pos + 2) {
            Some(len) if pos + 4 <= end => pos += 4 + usize::from(len),
            _ => return false,
        }
    }
    pos == end
}

/// What [`walk_query`] reads from an acceptable query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryInfo {
    /// The header.
    pub header: Header,
    /// The question (its name is in the caller's buffer).
    pub question: Question,
    /// The OPT record, when present.
    pub opt: Option<OptRecord>,
}

/// Walks a client query by the module's rules: the header, the one question (its name written
/// lowercased into `name`) and the additional section (one optional OPT record).
///
/// # Errors
///
/// [`QueryError`] names the first rule the message breaks. [`QueryError::BadVersion`] is only
/// returned for a query that is otherwise acceptable.
#[inline]
pub fn walk_query(msg: &[u8], name: &mut [u8; MAX_NAME_LEN]) -> Result<QueryInfo, QueryError> {
    let header = Header::parse(msg).map_err(|_| QueryError::NoHeader)?;
    if header.is_response() {
        return Err(QueryError::NotAQuery);
    }
    if header.opcode() != 0 {
        return Err(QueryError::Opcode(header.opcode()));
    }
    if header.qdcount != 1 {
        return Err(QueryError::QuestionCount(header.qdcount));
    }
    if header.ancount != 0 || header.nscount != 0 {
        return Err(QueryError::RecordsInQuery);
    }
    let question = read_question(msg, name).map_err(QueryError::Question)?;
    let mut opt: Option<OptRecord> = None;
    for item in records(msg, question.end, u32::from(header.arcount)) {
        let (_, rr) = item.map_err(QueryError::Additional)?;
        if rr.rtype != TYPE_OPT {
            return Err(QueryError::NotOpt(rr.rtype));
        }
        if opt.is_some() {
            return Err(QueryError::DuplicateOpt);
        }
        if !rr.owner_is_root(msg) {
            return Err(QueryError::OptOwner);
        }
        if !options_fill(msg, rr.rdata.start, rr.rdata.end) {
            return Err(QueryError::BadOption);
        }
        opt = Some(OptRecord::from_record(&rr));
    }
    if let Some(o) = opt.filter(|o| o.version != 0) {
        return Err(QueryError::BadVersion(o.version));
    }
    Ok(QueryInfo {
        header,
        question,
        opt,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name_of(labels: &[usize]) -> Vec<u8> {
        let mut v = Vec::new();
        for &l in labels {
            v.push(u8::try_from(l).unwrap());
            v.extend(std::iter::repeat_n(b'x', l));
        }
        v.push(0);
        v
    }

    #[test]
    fn skip_name_handles_labels_pointers_and_faults() {
        let b = [3, b'w', b'w', b'w', 0, 0xC0, 0x00, 0x40];
        assert_eq!(skip_name(&b, 0), Ok(5));
        assert_eq!(skip_name(&b, 5), Ok(7));
        assert_eq!(skip_name(&b, 7), Err(WireError::ReservedLabelType(0x40)));
        assert_eq!(skip_name(&b[..3], 0), Err(WireError::Truncated));
        assert_eq!(skip_name(&[0xC0], 0), Err(WireError::Truncated));
        assert_eq!(skip_name(&[0xC0, 0], 0), Err(WireError::BadPointer));
        assert_eq!(skip_name(&[0, 0xC0, 2], 1), Err(WireError::BadPointer));
    }

    #[test]
    fn names_of_255_octets_pass_and_256_do_not() {
        let mut out = [0u8; MAX_NAME_LEN];
        // 63+1 + 63+1 + 63+1 + 61+1 + 1 = 255.
        let max = name_of(&[63, 63, 63, 61]);
        assert_eq!(max.len(), 255);
        assert_eq!(skip_name(&max, 0), Ok(255));
        assert_eq!(read_plain_name(&max, 0, &mut out), Ok((255, 255)));
        assert_eq!(read_name(&max, 0, &mut out), Ok((255, 255)));
        let over = name_of(&[63, 63, 63, 62]);
        assert_eq!(over.len(), 256);
        assert_eq!(skip_name(&over, 0), Err(WireError::NameTooLong));
        assert_eq!(
            read_plain_name(&over, 0, &mut out),
            Err(WireError::NameTooLong)
        );
        assert_eq!(read_name(&over, 0, &mut out), Err(WireError::NameTooLong));
        // Through a pointer: 254 octets of labels before, 2 after: 256 in all.
        let mut split = name_of(&[1]);
        let tail_len = split.len();
        let head = name_of(&[63, 63, 63, 61]);
        split.extend_from_slice(&head[..head.len() - 1]);
        split.extend_from_slice(&[0xC0, 0]);
        assert_eq!(
            read_name(&split, tail_len, &mut out),
            Err(WireError::NameTooLong)
        );
    }

    #[test]
    fn read_plain_name_lowercases_and_rejects_pointers() {
        let mut out = [0u8; MAX_NAME_LEN];
        let b = [2, b'A', b'b', 1, b'C', 0, 9];
        assert_eq!(read_plain_name(&b, 0, &mut out), Ok((6, 6)));
        assert_eq!(&out[..6], &[2, b'a', b'b', 1, b'c', 0]);
        assert_eq!(
            read_plain_name(&[0xC0, 0], 0, &mut out),
            Err(WireError::Compressed)
        );
        assert_eq!(
            read_plain_name(&[3, b'a'], 0, &mut out),
            Err(WireError::Truncated)
        );
        assert_eq!(
            read_plain_name(&[0x80], 0, &mut out),
            Err(WireError::ReservedLabelType(0x80))
        );
    }

    #[test]
    fn read_name_follows_backward_pointers_only() {
        let mut out = [0u8; MAX_NAME_LEN];
        // 0: "a.b." ; 5: "C" + pointer to 2 ("b.") ; 9: pointer to 5.
        let b = [1, b'a', 1, b'b', 0, 1, b'C', 0xC0, 2, 0xC0, 5];
        assert_eq!(read_name(&b, 0, &mut out), Ok((5, 5)));
        assert_eq!(read_name(&b, 5, &mut out), Ok((9, 5)));
        assert_eq!(&out[..5], b"\x01c\x01b\x00");
        assert_eq!(read_name(&b, 9, &mut out), Ok((11, 5)));
        // Self and forward pointers, and a two-pointer loop.
        assert_eq!(
            read_name(&[0xC0, 0], 0, &mut out),
            Err(WireError::BadPointer)
        );
        assert_eq!(
            read_name(&[0xC0, 2, 0], 0, &mut out),
            Err(WireError::BadPointer)
        );
        assert_eq!(
            read_name(&[0xC0, 2, 0xC0, 0], 2, &mut out),
            Err(WireError::BadPointer)
        );
        // A suffix that runs into the name that points at it.
        assert_eq!(
            read_name(&[1, b'a', 0xC0, 0], 2, &mut out),
            Err(WireError::BadPointer)
        );
    }

    #[test]
    fn read_record_finds_ttl_and_rdata() {
        // name = root, type A, class IN, ttl 300, rdlen 4, 192.0.2.1
        let b = [0, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4, 192, 0, 2, 1];
        let (rr, next) = read_record(&b, 0).expect("well-formed record");
        assert_eq!((rr.rtype, rr.class), (1, 1));
        assert_eq!(rr.ttl_offset, 5);
        assert_eq!(rr.ttl, 300);
        assert_eq!(rr.rdata, 11..15);
        assert_eq!(next, 15);
        assert!(rr.owner_is_root(&b));
        assert_eq!(read_record(&b[..14], 0), Err(WireError::Truncated));
        let two: Vec<u8> = b.iter().chain(b.iter()).copied().collect();
        let mut walk = records(&two, 0, 2);
        assert_eq!(walk.next().map(|r| r.map(|(i, _)| i)), Some(Ok(0)));
        assert_eq!(walk.next().map(|r| r.map(|(i, _)| i)), Some(Ok(1)));
        assert_eq!(walk.next(), None);
        assert_eq!(walk.position(), 30);
        let mut short = records(&two, 0, 3);
        assert!(short.nth(2).is_some_and(|r| r.is_err()));
        assert_eq!(short.next(), None);
    }

    fn query(ar: u16, tail: &[u8]) -> Vec<u8> {
        let mut m = vec![0xAB, 0xCD, 0x01, 0x00, 0, 1, 0, 0, 0, 0];
        m.extend_from_slice(&ar.to_be_bytes());
        m.extend_from_slice(b"\x01A\x04test\x00\x00\x01\x00\x01");
        m.extend_from_slice(tail);
        m
    }

    #[test]
    fn walk_query_applies_the_rules() {
        let mut name = [0u8; MAX_NAME_LEN];
        let q = walk_query(&query(0, &[]), &mut name).expect("plain query");
        assert_eq!(
            (q.header.id, q.question.qtype, q.question.end),
            (0xABCD, 1, 24)
        );
        assert_eq!(&name[..q.question.name_len], b"\x01a\x04test\x00");
        assert_eq!(q.opt, None);

        // OPT with DO and a cookie option.
        let opt = [
            0, 0, 41, 4, 0xD0, 0, 0, 0x80, 0, 0, 12, 0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8,
        ];
        let m = query(1, &opt);
        let q = walk_query(&m, &mut name).expect("query with OPT");
        let o = q.opt.expect("OPT");
        assert!(o.dnssec_ok);
        assert_eq!(
            (o.udp_size, o.version, o.start, o.end),
            (1232, 0, 24, m.len())
        );
        let opts: Vec<_> = o.options(&m).collect();
        assert_eq!(
            opts,
            vec![Ok(EdnsOption {
                code: 10,
                data: 39..47
            })]
        );

        let err = |m: &[u8]| walk_query(m, &mut [0u8; MAX_NAME_LEN]).err();
        let mut two = opt.to_vec();
        two.extend_from_slice(&opt);
        assert_eq!(err(&query(2, &two)), Some(QueryError::DuplicateOpt));
        let mut v1 = opt;
        v1[6] = 1;
        assert_eq!(err(&query(1, &v1)), Some(QueryError::BadVersion(1)));
        let mut bad_option = opt;
        bad_option[14] = 9;
        assert_eq!(err(&query(1, &bad_option)), Some(QueryError::BadOption));
        let a_rr = [0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0];
        assert_eq!(err(&query(1, &a_rr)), Some(QueryError::NotOpt(1)));
        let mut owned = vec![1, b'a'];
        owned.extend_from_slice(&opt);
        assert_eq!(err(&query(1, &owned)), Some(QueryError::OptOwner));
        let mut pointed = vec![0xC0, 17];
        pointed.extend_from_slice(&opt[1..]);
        assert_eq!(err(&query(1, &pointed)), Some(QueryError::OptOwner));
        assert_eq!(
            err(&query(1, &[])),
            Some(QueryError::Additional(WireError::Truncated))
        );
        let mut answers = query(0, &[]);
        answers[7] = 1;
        assert_eq!(err(&answers), Some(QueryError::RecordsInQuery));
        let mut resp = query(0, &[]);
        resp[2] |= 0x80;
        assert_eq!(err(&resp), Some(QueryError::NotAQuery));
        assert_eq!(err(&resp[..11]), Some(QueryError::NoHeader));
        let mut two_q = query(0, &[]);
        two_q[5] = 2;
        assert_eq!(err(&two_q), Some(QueryError::QuestionCount(2)));
        let mut notify = query(0, &[]);
        notify[2] = 0x20;
        assert_eq!(err(&notify), Some(QueryError::Opcode(4)));
        // Trailing octets after the counted records are ignored.
        let mut trailing = query(0, &[]);
        trailing.extend_from_slice(&[0xFF; 3]);
        assert_eq!(err(&trailing), None);
        assert_eq!(
            QueryError::Question(WireError::Compressed).reason(),
            "compressed name in the question"
        );
    }
}
