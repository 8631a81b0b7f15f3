//! Sans-IO part of the upstream exchange: writing the query and checking the response against
//! the question before anything may be cached.
//!
//! Both run on every cache miss, so both work on the wire bytes with the hand-written walker
//! of [`tolldns_cache::wire`]: the query is written directly, the response is walked once
//! (header, question, every record's framing and owner name, the OPT record, the answer chain)
//! without building a hickory-proto message. Nothing here allocates except the query's buffer.

use core::fmt;

use hickory_proto::ProtoError;
use hickory_proto::op::Message;
use hickory_proto::rr::{DNSClass, Name, RecordType};
use hickory_proto::serialize::binary::BinDecodable;
use tolldns_cache::wire::{
    self as walk, FLAG_CD, FLAG_RD, FLAG_TC, HEADER_LEN, Header, MAX_NAME_LEN, TYPE_OPT, WireError,
};

/// The question the edge forwards, with the DNSSEC-related client flags to copy upstream.
///
/// The name is held in uncompressed wire form, letter case as given: the upstream query is
/// written from these bytes without a hickory-proto [`Name`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Question {
    /// The name in wire form; octets past `name_len` are zero.
    name: [u8; MAX_NAME_LEN],
    /// Wire length of the name, root label included (1..=255).
    name_len: u8,
    /// Query type.
    pub qtype: RecordType,
    /// Query class (normally IN).
    pub qclass: DNSClass,
    /// EDNS DO bit of the client's query, copied to the upstream query.
    pub dnssec_ok: bool,
    /// CD bit of the client's query, copied to the upstream query.
    pub checking_disabled: bool,
}

impl fmt::Debug for Question {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.to_name();
        let mut d = f.debug_struct("Question");
        match &name {
            Ok(n) => d.field("name", &format_args!("{n}")),
            Err(_) => d.field("name", &self.name_wire()),
        };
        d.field("qtype", &self.qtype)
            .field("qclass", &self.qclass)
            .field("dnssec_ok", &self.dnssec_ok)
            .field("checking_disabled", &self.checking_disabled)
            .finish()
    }
}

impl Question {
    /// An IN-class question without DO or CD. The name is treated as fully qualified.
    pub fn new(name: Name, qtype: RecordType) -> Self {
        let mut wire = [0u8; MAX_NAME_LEN];
        let mut len = 0usize;
        // A hickory-proto name is at most 255 octets in wire form with its root label, so every
        // label fits; the check only keeps the copy in bounds.
        for label in name.iter() {
            let Some(dst) = wire.get_mut(len..len + 1 + label.len()) else {
                break;
            };
            if let Some((first, rest)) = dst.split_first_mut() {
                // Labels are at most 63 octets.
                *first = u8::try_from(label.len()).unwrap_or(0);
                rest.copy_from_slice(label);
            }
            len += 1 + label.len();
        }
        // The root label: already zero.
        len = (len + 1).min(MAX_NAME_LEN);
        Self {
            name: wire,
            name_len: u8::try_from(len).unwrap_or(u8::MAX),
            qtype,
            qclass: DNSClass::IN,
            dnssec_ok: false,
            checking_disabled: false,
        }
    }

    /// An IN-class question without DO or CD for `name`, one uncompressed name in wire form
    /// (length octets, labels, the root label), kept with its letter case.
    ///
    /// # Errors
    ///
    /// [`WireError`] when `name` is not exactly one plain name of at most 255 octets.
    pub fn from_wire(name: &[u8], qtype: RecordType) -> Result<Self, WireError> {
        let mut wire = [0u8; MAX_NAME_LEN];
        let (end, len) = walk::read_plain_name(name, 0, &mut wire)?;
        let (Some(src), Some(dst), Ok(name_len)) =
            (name.get(..end), wire.get_mut(..len), u8::try_from(len))
        else {
            return Err(WireError::NameTooLong);
        };
        if end != name.len() {
            return Err(WireError::Truncated);
        }
        dst.copy_from_slice(src);
        Ok(Self {
            name: wire,
            name_len,
            qtype,
            qclass: DNSClass::IN,
            dnssec_ok: false,
            checking_disabled: false,
        })
    }

    /// The question of a parsed client query: its first question, its CD bit and EDNS DO bit.
    /// `None` if the message carries no question.
    pub fn from_message(msg: &Message) -> Option<Self> {
        let q = msg.queries().first()?;
        let mut out = Self::new(q.name().clone(), q.query_type());
        out.qclass = q.query_class();
        out.dnssec_ok = msg
            .extensions()
            .as_ref()
            .is_some_and(|e| e.flags().dnssec_ok);
        out.checking_disabled = msg.checking_disabled();
        Some(out)
    }

    /// The name in uncompressed wire form, letter case as given, root label included.
    pub fn name_wire(&self) -> &[u8] {
        self.name
            .get(..usize::from(self.name_len))
            .unwrap_or_default()
    }

    /// The name as a hickory-proto [`Name`] (fully qualified).
    ///
    /// # Errors
    ///
    /// Never for a question built by this type's constructors; the decoder's error otherwise.
    pub fn to_name(&self) -> Result<Name, ProtoError> {
        Name::from_bytes(self.name_wire())
    }
}

/// How a response failed to match the query it claims to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Mismatch {
    /// Different message ID.
    #[error("wrong message ID")]
    Id,
    /// QR bit not set.
    #[error("not a response")]
    NotResponse,
    /// Opcode other than QUERY.
    #[error("wrong opcode")]
    Opcode,
    /// Question section differs (name, type, class or count).
    #[error("question section differs")]
    Question,
    /// An answer record is neither for the query name nor on its CNAME/DNAME chain.
    #[error("answer record unrelated to the question")]
    UnrelatedAnswer,
}

/// Why one exchange with one upstream failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttemptError {
    /// No acceptable answer within the timeout.
    #[error("timed out")]
    Timeout,
    /// Socket, TCP or TLS failure.
    #[error("network error: {0}")]
    Io(#[from] std::io::Error),
    /// HTTP/2 failure talking to a DoH upstream.
    #[error("HTTP error: {0}")]
    Http(#[from] hyper::Error),
    /// The DoH request could not be built.
    #[error("HTTP request error: {0}")]
    HttpRequest(#[from] http::Error),
    /// The DoH upstream answered with a non-200 status or a wrong content type.
    #[error("HTTP status {0}")]
    HttpStatus(u16),
    /// The response is not a parsable DNS message.
    #[error("malformed response")]
    Malformed,
    /// The response does not answer the query that was sent.
    #[error("response does not match the query: {0}")]
    Mismatch(Mismatch),
    /// The truncation bit was set on a stream transport, where it has no excuse.
    #[error("truncated response over a stream transport")]
    Truncated,
    /// The upstream answered with an error RCODE (SERVFAIL, REFUSED, …).
    #[error("upstream answered RCODE {0}")]
    Rcode(u16),
    /// The response (or the query) does not fit the transport's limits.
    #[error("message too large")]
    TooLarge,
}

impl AttemptError {
    /// Errors that an off-path sender could cause by spraying datagrams: on UDP, such responses
    /// are dropped and the socket keeps waiting for the real one.
    pub(crate) fn is_spoofable(&self) -> bool {
        matches!(self, Self::Malformed | Self::Mismatch(_))
    }
}

/// Size of an OPT record without options.
const OPT_LEN: usize = 11;
/// CNAME record type.
const TYPE_CNAME: u16 = 5;
/// DNAME record type (RFC 6672).
const TYPE_DNAME: u16 = 39;
/// A record type.
const TYPE_A: u16 = 1;
/// AAAA record type.
const TYPE_AAAA: u16 = 28;
/// Longest CNAME chain followed from the query name. Recursive resolvers stop far earlier
/// (about a dozen restarts); records past a longer chain are refused as unrelated.
const MAX_CHAIN: usize = 32;

/// Encodes the upstream query: the given ID, RD=1, CD copied, the question (name as given, not
/// compressed) and an OPT record (EDNS version 0, DO copied, the given UDP payload size, at
/// least 512).
pub fn build_query(q: &Question, id: u16, edns_payload: u16) -> Vec<u8> {
    let name = q.name_wire();
    let mut out = Vec::with_capacity(HEADER_LEN + name.len() + 4 + OPT_LEN);
    let mut flags = FLAG_RD;
    if q.checking_disabled {
        flags |= FLAG_CD;
    }
    for word in [id, flags, 1, 0, 0, 1] {
        out.extend_from_slice(&word.to_be_bytes());
    }
    out.extend_from_slice(name);
    out.extend_from_slice(&u16::from(q.qtype).to_be_bytes());
    out.extend_from_slice(&u16::from(q.qclass).to_be_bytes());
    // OPT: root owner, TYPE, CLASS = payload size, TTL = ext. RCODE 0, version 0, flags; no RDATA.
    out.push(0);
    out.extend_from_slice(&TYPE_OPT.to_be_bytes());
    out.extend_from_slice(&edns_payload.max(512).to_be_bytes());
    let ttl = if q.dnssec_ok { walk::EDNS_DO } else { 0 };
    out.extend_from_slice(&ttl.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out
}

/// What [`check_response`] established about a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    truncated: bool,
    rcode: u16,
}

impl Checked {
    /// Whether the TC bit is set (only ever on a UDP answer: a signal to retry over TCP; the
    /// sections of such an answer were not checked and must not be used).
    pub const fn truncated(&self) -> bool {
        self.truncated
    }

    /// The response code: the header RCODE with the EDNS extended bits (RFC 6891 §6.1.3), as
    /// hickory-proto's `u16::from(message.response_code())` gives it. NOERROR (0) or NXDOMAIN
    /// (3) unless [`truncated`](Self::truncated).
    pub const fn rcode(&self) -> u16 {
        self.rcode
    }
}

const fn malformed(_: WireError) -> AttemptError {
    AttemptError::Malformed
}

/// Checks a wire response against the query: ID, QR, opcode, the question section (exactly one
/// question, its name uncompressed and equal ignoring ASCII case, type, class), truncation (an
/// error on streams), the framing and owner names of every record, at most one OPT record
/// (additional section only), A/AAAA RDATA lengths, a usable RCODE (NOERROR or NXDOMAIN, EDNS
/// extended bits included), and that every answer record belongs to the query name or its
/// alias chain.
///
/// # Errors
///
/// [`AttemptError::Malformed`] for a message that cannot be walked,
/// [`AttemptError::Mismatch`] for one that does not answer this query,
/// [`AttemptError::Truncated`] for TC on a stream, [`AttemptError::Rcode`] for an error RCODE.
pub fn check_response(
    wire: &[u8],
    id: u16,
    q: &Question,
    stream: bool,
) -> Result<Checked, AttemptError> {
    let header = Header::parse(wire).map_err(malformed)?;
    if header.id != id {
        return Err(AttemptError::Mismatch(Mismatch::Id));
    }
    if !header.is_response() {
        return Err(AttemptError::Mismatch(Mismatch::NotResponse));
    }
    if header.opcode() != 0 {
        return Err(AttemptError::Mismatch(Mismatch::Opcode));
    }
    if header.qdcount != 1 {
        return Err(AttemptError::Mismatch(Mismatch::Question));
    }
    // The question as the cache's insert and the edge's restore of the client's letter case
    // read it: a plain name within 255 octets, never a compression pointer.
    let mut qname = [0u8; MAX_NAME_LEN];
    let question = walk::read_question(wire, &mut qname).map_err(|e| match e {
        WireError::Compressed => AttemptError::Mismatch(Mismatch::Question),
        other => malformed(other),
    })?;
    let asked = q.name_wire();
    if question.qtype != u16::from(q.qtype)
        || question.qclass != u16::from(q.qclass)
        || !qname
            .get(..question.name_len)
            .is_some_and(|n| n.eq_ignore_ascii_case(asked))
    {
        return Err(AttemptError::Mismatch(Mismatch::Question));
    }
    if header.flags & FLAG_TC != 0 {
        if stream {
            return Err(AttemptError::Truncated);
        }
        // A truncated UDP answer is only a signal to retry over TCP; its sections are not used.
        return Ok(Checked {
            truncated: true,
            rcode: u16::from(header.rcode()),
        });
    }
    let ext_rcode = walk_records(wire, &header, question.end)?;
    let rcode = (u16::from(ext_rcode) << 4) | u16::from(header.rcode());
    if rcode != 0 && rcode != 3 {
        return Err(AttemptError::Rcode(rcode));
    }
    let qname = qname.get(..question.name_len).unwrap_or_default();
    check_answer_chain(wire, question.end, header.ancount, qname)?;
    Ok(Checked {
        truncated: false,
        rcode,
    })
}

/// Walks every record after the question: framing, owner names (pointers followed), A/AAAA
/// RDATA lengths, at most one OPT record and only in the additional section. Returns the OPT
/// record's extended RCODE bits (0 without one).
fn walk_records(wire: &[u8], header: &Header, at: usize) -> Result<u8, AttemptError> {
    let additional_from = u32::from(header.ancount) + u32::from(header.nscount);
    let mut owner = [0u8; MAX_NAME_LEN];
    let mut ext_rcode = None;
    for item in walk::records(wire, at, header.record_count()) {
        let (i, rr) = item.map_err(malformed)?;
        walk::read_name(wire, rr.start, &mut owner).map_err(malformed)?;
        let rdlen = rr.rdata.len();
        let bad = match rr.rtype {
            TYPE_A => rdlen != 4,
            TYPE_AAAA => rdlen != 16,
            TYPE_OPT => i < additional_from || ext_rcode.is_some(),
            _ => false,
        };
        if bad {
            return Err(AttemptError::Malformed);
        }
        if rr.rtype == TYPE_OPT {
            ext_rcode = Some(walk::OptRecord::from_record(&rr).ext_rcode);
        }
    }
    Ok(ext_rcode.unwrap_or(0))
}

/// Reads the name RDATA of a CNAME or DNAME record at `rdata` into `out`; it must fill the
/// RDATA exactly. Returns its wire length.
fn read_target(
    wire: &[u8],
    rdata: &core::ops::Range<usize>,
    out: &mut [u8; MAX_NAME_LEN],
) -> Result<usize, AttemptError> {
    let (end, len) = walk::read_name(wire, rdata.start, out).map_err(malformed)?;
    if end != rdata.end {
        return Err(AttemptError::Malformed);
    }
    Ok(len)
}

/// Whether the wire-form name `ancestor` is `name` or one of its ancestors (both lowercased,
/// uncompressed).
fn is_ancestor_or_self(ancestor: &[u8], name: &[u8]) -> bool {
    let mut pos = 0usize;
    // One step per label: at most 128 in a 255-octet name.
    while let Some(&len) = name.get(pos) {
        if name.get(pos..) == Some(ancestor) {
            return true;
        }
        if len == 0 {
            break;
        }
        pos += 1 + usize::from(len);
    }
    false
}

/// Offset of the first label of the name at `at`, compression pointers followed. Each pointer
/// must point strictly backwards, so the walk ends.
fn resolve_pointers(wire: &[u8], mut at: usize) -> Result<usize, AttemptError> {
    loop {
        let len = *wire.get(at).ok_or(AttemptError::Malformed)?;
        if len & 0xC0 != 0xC0 {
            return Ok(at);
        }
        let low = *wire.get(at + 1).ok_or(AttemptError::Malformed)?;
        let target = (usize::from(len & 0x3F) << 8) | usize::from(low);
        if target >= at {
            return Err(AttemptError::Malformed);
        }
        at = target;
    }
}

/// Whether the names at offsets `a` and `b` of `wire` are equal ignoring ASCII case, compared in
/// place: two pointers to the same labels are equal without reading them. At most one step per
/// octet of a 255-octet name; a longer walk (a pointer loop through labels) is malformed.
fn names_equal(wire: &[u8], mut a: usize, mut b: usize) -> Result<bool, AttemptError> {
    for _ in 0..MAX_NAME_LEN {
        a = resolve_pointers(wire, a)?;
        b = resolve_pointers(wire, b)?;
        if a == b {
            return Ok(true);
        }
        let len = *wire.get(a).ok_or(AttemptError::Malformed)?;
        if wire.get(b) != Some(&len) {
            return Ok(false);
        }
        if len == 0 {
            return Ok(true);
        }
        if len & 0xC0 != 0 {
            return Err(AttemptError::Malformed);
        }
        let n = usize::from(len);
        let (Some(la), Some(lb)) = (wire.get(a + 1..a + 1 + n), wire.get(b + 1..b + 1 + n)) else {
            return Err(AttemptError::Malformed);
        };
        if !la.eq_ignore_ascii_case(lb) {
            return Ok(false);
        }
        a += 1 + n;
        b += 1 + n;
    }
    Err(AttemptError::Malformed)
}

/// Every answer record must be owned by the query name, by a CNAME target reached from it, or be
/// a DNAME at an ancestor of a name on the chain. The chain is kept as the offsets of its names
/// in `wire` (the question's name, then each CNAME target followed) and names are compared in
/// place; DNAME owners are read into fixed buffers. Every owner was read by [`walk_records`].
fn check_answer_chain(
    wire: &[u8],
    answers_at: usize,
    ancount: u16,
    qname: &[u8],
) -> Result<(), AttemptError> {
    let count = u32::from(ancount);
    // Offsets of the chain's names: the question's, then each CNAME target followed.
    let mut chain = [0usize; MAX_CHAIN + 1];
    chain[0] = HEADER_LEN;
    let mut links = 0usize;
    // Follow the CNAME of the current name, in any record order (a scan starts after the
    // previous link's record, so an ordered chain costs one scan per link); a loop only repeats
    // names and ends with the bound.
    let steps = MAX_CHAIN.min(usize::from(ancount));
    let mut start = 0usize;
    while links < steps {
        let cur = chain.get(links).copied().ok_or(AttemptError::Malformed)?;
        let mut next = None;
        let after = walk::records(wire, answers_at, count).skip(start);
        let before = walk::records(wire, answers_at, count).take(start);
        for item in after.chain(before) {
            let (i, rr) = item.map_err(malformed)?;
            if rr.rtype == TYPE_CNAME && names_equal(wire, rr.start, cur)? {
                next = Some((i, rr.rdata.start));
                break;
            }
        }
        let Some((i, at)) = next else {
            break;
        };
        links += 1;
        if let Some(slot) = chain.get_mut(links) {
            *slot = at;
        }
        start = usize::try_from(i).unwrap_or(usize::MAX).saturating_add(1);
    }
    let chain = chain.get(..=links).unwrap_or_default();
    let mut owner = [0u8; MAX_NAME_LEN];
    let mut target = [0u8; MAX_NAME_LEN];
    // The chain name the previous record matched: tried first (records come grouped by owner).
    let mut last = 0usize;
    for item in walk::records(wire, answers_at, count) {
        let (_, rr) = item.map_err(malformed)?;
        if matches!(rr.rtype, TYPE_CNAME | TYPE_DNAME) {
            read_target(wire, &rr.rdata, &mut target)?;
        }
        let mut related = false;
        if let Some(&at) = chain.get(last) {
            related = names_equal(wire, rr.start, at)?;
        }
        for (k, &at) in chain.iter().enumerate() {
            if related {
                break;
            }
            if k != last && names_equal(wire, rr.start, at)? {
                related = true;
                last = k;
            }
        }
        if !related && rr.rtype == TYPE_DNAME {
            let (_, len) = walk::read_name(wire, rr.start, &mut owner).map_err(malformed)?;
            let owner = owner.get(..len).unwrap_or_default();
            related = is_ancestor_or_self(owner, qname);
            for &at in chain.iter().skip(1) {
                if related {
                    break;
                }
                let (_, tlen) = walk::read_name(wire, at, &mut target).map_err(malformed)?;
                related = is_ancestor_or_self(owner, target.get(..tlen).unwrap_or_default());
            }
        }
        if !related {
            return Err(AttemptError::Mismatch(Mismatch::UnrelatedAnswer));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Edns, MessageType, OpCode, Query, ResponseCode};
    use hickory_proto::rr::rdata::{A, CNAME, NULL};
    use hickory_proto::rr::{RData, Record};
    use hickory_proto::serialize::binary::BinEncodable;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn response_to(query: &[u8]) -> Message {
        let q = Message::from_vec(query).unwrap();
        let mut r = Message::new();
        r.set_id(q.id())
            .set_message_type(MessageType::Response)
            .set_op_code(OpCode::Query);
        r.add_queries(q.queries().iter().cloned());
        r
    }

    #[test]
    fn query_carries_flags() {
        let mut q = Question::new(name("Example.test"), RecordType::AAAA);
        q.dnssec_ok = true;
        q.checking_disabled = true;
        let wire = build_query(&q, 0xbeef, 1232);
        let m = Message::from_vec(&wire).unwrap();
        assert_eq!(m.id(), 0xbeef);
        assert!(m.recursion_desired());
        assert!(m.checking_disabled());
        let edns = m.extensions().as_ref().unwrap();
        assert!(edns.flags().dnssec_ok);
        assert_eq!(edns.max_payload(), 1232);
        let back = Question::from_message(&m).unwrap();
        assert_eq!(back, q);
        assert_eq!(back.name_wire(), b"\x07Example\x04test\x00");
        assert_eq!(back.to_name().unwrap().to_ascii(), "Example.test.");
    }

    #[test]
    fn checks_id_qr_question_and_chain() {
        let q = Question::new(name("www.test."), RecordType::A);
        let wire = build_query(&q, 7, 1232);
        let mut r = response_to(&wire);
        r.add_answer(Record::from_rdata(
            name("WWW.test."),
            60,
            RData::CNAME(CNAME(name("a.test."))),
        ));
        r.add_answer(Record::from_rdata(
            name("a.test."),
            60,
            RData::A(A(Ipv4Addr::LOCALHOST)),
        ));
        let ok = r.to_vec().unwrap();
        assert!(check_response(&ok, 7, &q, false).is_ok());
        assert!(matches!(
            check_response(&ok, 8, &q, false),
            Err(AttemptError::Mismatch(Mismatch::Id))
        ));
        let other = Question::new(name("x.test."), RecordType::A);
        assert!(matches!(
            check_response(&ok, 7, &other, false),
            Err(AttemptError::Mismatch(Mismatch::Question))
        ));
        let mut poisoned = r.clone();
        poisoned.add_answer(Record::from_rdata(
            name("bank.example."),
            60,
            RData::A(A(Ipv4Addr::LOCALHOST)),
        ));
        assert!(matches!(
            check_response(&poisoned.to_vec().unwrap(), 7, &q, false),
            Err(AttemptError::Mismatch(Mismatch::UnrelatedAnswer))
        ));
        let mut not_resp = r.clone();
        not_resp.set_message_type(MessageType::Query);
        assert!(matches!(
            check_response(&not_resp.to_vec().unwrap(), 7, &q, false),
            Err(AttemptError::Mismatch(Mismatch::NotResponse))
        ));
        let mut tc = r.clone();
        tc.set_truncated(true);
        let tc = tc.to_vec().unwrap();
        assert!(check_response(&tc, 7, &q, false).unwrap().truncated());
        assert!(matches!(
            check_response(&tc, 7, &q, true),
            Err(AttemptError::Truncated)
        ));
        let mut fail = r;
        fail.set_response_code(ResponseCode::ServFail);
        assert!(matches!(
            check_response(&fail.to_vec().unwrap(), 7, &q, false),
            Err(AttemptError::Rcode(2))
        ));
        assert!(matches!(
            check_response(&[1, 2, 3], 7, &q, false),
            Err(AttemptError::Malformed)
        ));
    }

    #[test]
    fn question_bounds_match_the_wire_walker() {
        // A 255-octet name (root octet included) is the longest that can be asked and answered.
        let long = format!(
            "{}.{}.{}.{}.",
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(61)
        );
        let q = Question::new(name(&long), RecordType::A);
        assert_eq!(q.name_wire().len(), 255);
        let wire = build_query(&q, 9, 1232);
        let ok = response_to(&wire).to_vec().unwrap();
        assert!(check_response(&ok, 9, &q, false).is_ok());
        assert!(Name::from_ascii(format!("e{long}")).is_err(), "256 octets");

        // The root question written as a pointer to the header's last octet (0): hickory-proto
        // reads it as ".", the walker refuses a compressed question.
        let root = Question::new(Name::root(), RecordType::NS);
        let wire = build_query(&root, 3, 1232);
        let plain = response_to(&wire).to_vec().unwrap();
        assert!(check_response(&plain, 3, &root, false).is_ok());
        let mut pointed = plain[..12].to_vec();
        pointed[11] = 0;
        pointed.extend_from_slice(&[0xC0, 11, 0, 2, 0, 1]);
        assert_eq!(
            Message::from_vec(&pointed).unwrap().queries()[0].name(),
            &Name::root()
        );
        assert!(matches!(
            check_response(&pointed, 3, &root, false),
            Err(AttemptError::Mismatch(Mismatch::Question))
        ));
    }

    /// A response with ID 7 to `www.test`/A (question at offset 12, answers from offset 26),
    /// `ancount` answer records and `additional` records as given in `records`.
    fn raw(rcode: u8, ancount: u16, arcount: u16, records: &[u8]) -> Vec<u8> {
        let mut m = vec![0, 7, 0x81, 0x80 | rcode, 0, 1];
        m.extend_from_slice(&ancount.to_be_bytes());
        m.extend_from_slice(&[0, 0]);
        m.extend_from_slice(&arcount.to_be_bytes());
        m.extend_from_slice(b"\x03www\x04test\x00\x00\x01\x00\x01");
        m.extend_from_slice(records);
        m
    }

    /// A record: owner (wire form, may hold pointers), type, class IN, TTL 60, RDATA.
    fn rr(owner: &[u8], rtype: u16, rdata: &[u8]) -> Vec<u8> {
        let mut r = owner.to_vec();
        r.extend_from_slice(&rtype.to_be_bytes());
        r.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
        r.extend_from_slice(&u16::try_from(rdata.len()).unwrap().to_be_bytes());
        r.extend_from_slice(rdata);
        r
    }

    fn www() -> Question {
        Question::new(name("www.test."), RecordType::A)
    }

    fn check(wire: &[u8]) -> Result<Checked, AttemptError> {
        check_response(wire, 7, &www(), false)
    }

    const QNAME_AT: u8 = 12;
    const ADDR: &[u8] = &[192, 0, 2, 1];

    #[test]
    fn walker_accepts_compressed_answers() {
        let a = rr(&[0xC0, QNAME_AT], TYPE_A, ADDR);
        let ok = check(&raw(0, 1, 0, &a)).unwrap();
        assert_eq!((ok.truncated(), ok.rcode()), (false, 0));
        // NXDOMAIN with an empty answer section is usable too.
        assert_eq!(check(&raw(3, 0, 0, &[])).unwrap().rcode(), 3);
        // www.test CNAME a.test (target suffix pointing at "test" in the question), then the
        // A record of a.test pointing at the CNAME's RDATA; records in reverse order work too.
        let cname = rr(&[0xC0, QNAME_AT], TYPE_CNAME, &[1, b'a', 0xC0, 16]);
        let mut fwd = cname.clone();
        let target_at = u8::try_from(26 + cname.len() - 4).unwrap();
        fwd.extend_from_slice(&rr(&[0xC0, target_at], TYPE_A, ADDR));
        assert!(check(&raw(0, 2, 0, &fwd)).is_ok());
        let mut rev = rr(b"\x01A\x04TEST\x00", TYPE_A, ADDR);
        rev.extend_from_slice(&rr(
            b"\x03WwW\x04test\x00",
            TYPE_CNAME,
            b"\x01a\x04test\x00",
        ));
        assert!(check(&raw(0, 2, 0, &rev)).is_ok());
        // A CNAME loop is bounded and its records are on the chain.
        let mut looped = rr(&[0xC0, QNAME_AT], TYPE_CNAME, b"\x01a\x04test\x00");
        looped.extend_from_slice(&rr(b"\x01a\x04test\x00", TYPE_CNAME, &[0xC0, QNAME_AT]));
        assert!(check(&raw(0, 2, 0, &looped)).is_ok());
        // A DNAME at an ancestor of the query name, and the records it synthesises.
        let mut dname = rr(&[0xC0, 16], TYPE_DNAME, b"\x07example\x00");
        dname.extend_from_slice(&rr(
            &[0xC0, QNAME_AT],
            TYPE_CNAME,
            b"\x03www\x07example\x00",
        ));
        dname.extend_from_slice(&rr(b"\x03www\x07example\x00", TYPE_A, ADDR));
        assert!(check(&raw(0, 3, 0, &dname)).is_ok());
    }

    #[test]
    fn walker_refuses_malformed_names_and_records() {
        let malformed = |records: &[u8], an: u16, ar: u16| {
            matches!(
                check(&raw(0, an, ar, records)),
                Err(AttemptError::Malformed)
            )
        };
        // Owner is a pointer to itself (offset 26): a compression loop.
        assert!(malformed(&rr(&[0xC0, 26], TYPE_A, ADDR), 1, 0));
        // Owner "x" then a pointer back to the "x" label: a loop through a suffix.
        assert!(malformed(&rr(&[1, b'x', 0xC0, 26], TYPE_A, ADDR), 1, 0));
        // Owner pointing forward, into its own RDATA.
        assert!(malformed(&rr(&[0xC0, 40], TYPE_A, &[1, b'x', 0, 0]), 1, 0));
        // Owner of 256 octets: four 63-octet labels and their length octets, plus the root.
        let mut long = Vec::new();
        for _ in 0..4 {
            long.push(63);
            long.extend_from_slice(&[b'a'; 63]);
        }
        long.push(0);
        assert_eq!(long.len(), 257);
        assert!(malformed(&rr(&long, TYPE_A, ADDR), 1, 0));
        // A 256-octet name built from a label and a pointer to the question.
        let mut joined = Vec::new();
        for _ in 0..3 {
            joined.push(63);
            joined.extend_from_slice(&[b'b'; 63]);
        }
        joined.extend_from_slice(&[54]);
        joined.extend_from_slice(&[b'c'; 54]);
        joined.extend_from_slice(&[0xC0, QNAME_AT]);
        assert!(malformed(&rr(&joined, TYPE_A, ADDR), 1, 0));
        // A CNAME target looping through its own label, and an A record owned by it.
        let mut looped = rr(&[0xC0, QNAME_AT], TYPE_CNAME, &[1, b'x', 0xC0, 38]);
        looped.extend_from_slice(&rr(&[0xC0, 38], TYPE_A, ADDR));
        assert!(malformed(&looped, 2, 0));
        // Record framing: RDATA past the end, wrong A length, CNAME RDATA not filled by its name.
        let mut short = rr(&[0xC0, QNAME_AT], TYPE_A, ADDR);
        short.truncate(short.len() - 1);
        assert!(malformed(&short, 1, 0));
        assert!(malformed(&rr(&[0xC0, QNAME_AT], TYPE_A, &[1, 2, 3]), 1, 0));
        assert!(malformed(
            &rr(&[0xC0, QNAME_AT], TYPE_CNAME, &[0xC0, QNAME_AT, 0]),
            1,
            0
        ));
        // OPT: in the answer section, or twice in the additional section.
        let opt = [0, 0, 41, 4, 0xD0, 0, 0, 0, 0, 0, 0];
        assert!(malformed(&opt, 1, 0));
        assert!(malformed(&[opt, opt].concat(), 0, 2));
        assert!(check(&raw(0, 0, 1, &opt)).is_ok());
        // Fewer records than counted.
        assert!(malformed(&rr(&[0xC0, QNAME_AT], TYPE_A, ADDR), 2, 0));
    }

    #[test]
    fn walker_refuses_unrelated_answers() {
        let unrelated = |records: &[u8], an: u16| {
            matches!(
                check(&raw(0, an, 0, records)),
                Err(AttemptError::Mismatch(Mismatch::UnrelatedAnswer))
            )
        };
        // An answer for another name.
        assert!(unrelated(&rr(b"\x05other\x04test\x00", TYPE_A, ADDR), 1));
        // A parent or child of the query name is another name.
        assert!(unrelated(&rr(b"\x04test\x00", TYPE_A, ADDR), 1));
        assert!(unrelated(&rr(b"\x01x\x03www\x04test\x00", TYPE_A, ADDR), 1));
        // A CNAME chain, then a record for a name the chain never reaches.
        let mut chain = rr(&[0xC0, QNAME_AT], TYPE_CNAME, b"\x01a\x04test\x00");
        chain.extend_from_slice(&rr(b"\x01b\x04test\x00", TYPE_A, ADDR));
        assert!(unrelated(&chain, 2));
        // A CNAME from an unrelated name into the chain does not make its owner related.
        let mut into = rr(b"\x04bank\x00", TYPE_CNAME, &[0xC0, QNAME_AT]);
        into.extend_from_slice(&rr(&[0xC0, QNAME_AT], TYPE_A, ADDR));
        assert!(unrelated(&into, 2));
        // A DNAME at a sibling or a descendant of the query name.
        assert!(unrelated(
            &rr(b"\x05other\x04test\x00", TYPE_DNAME, b"\x07example\x00"),
            1
        ));
        assert!(unrelated(
            &rr(b"\x01x\x03www\x04test\x00", TYPE_DNAME, b"\x07example\x00"),
            1
        ));
        // A DNAME label suffix that is not at a label boundary ("st" of "test").
        assert!(unrelated(
            &rr(b"\x02st\x00", TYPE_DNAME, b"\x07example\x00"),
            1
        ));
    }

    #[test]
    fn rcode_includes_the_extended_bits() {
        // OPT with extended RCODE 1 and header RCODE 0: BADVERS (16).
        let opt = [0, 0, 41, 4, 0xD0, 1, 0, 0, 0, 0, 0];
        assert!(matches!(
            check(&raw(0, 0, 1, &opt)),
            Err(AttemptError::Rcode(16))
        ));
        assert!(matches!(
            check(&raw(5, 0, 0, &[])),
            Err(AttemptError::Rcode(5))
        ));
        // Question letter case is ignored; a compressed question is a mismatch.
        let upper = Question::new(name("WWW.TEST."), RecordType::A);
        assert!(check_response(&raw(0, 0, 0, &[]), 7, &upper, false).is_ok());
        let aaaa = Question::new(name("www.test."), RecordType::AAAA);
        assert!(matches!(
            check_response(&raw(0, 0, 0, &[]), 7, &aaaa, false),
            Err(AttemptError::Mismatch(Mismatch::Question))
        ));
    }

    #[test]
    fn question_from_wire_keeps_case_and_refuses_bad_names() {
        let q = Question::from_wire(b"\x03WwW\x04test\x00", RecordType::A).unwrap();
        assert_eq!(q.name_wire(), b"\x03WwW\x04test\x00");
        assert_eq!(q, Question::new(name("WwW.test."), RecordType::A));
        assert!(Question::from_wire(b"\x03www\x04test", RecordType::A).is_err());
        assert!(Question::from_wire(b"\x03www\x00\x00", RecordType::A).is_err());
        assert!(Question::from_wire(&[0xC0, 12], RecordType::A).is_err());
        assert_eq!(
            Question::new(Name::root(), RecordType::NS).name_wire(),
            &[0]
        );
    }

    /// The check as it was written on a full hickory-proto parse: the reference for the
    /// differential test below.
    fn reference(wire: &[u8], q: &Question) -> Result<(bool, u16), &'static str> {
        let m = Message::from_vec(wire).map_err(|_| "malformed")?;
        let qname = q.to_name().unwrap().to_lowercase();
        match m.queries() {
            [only]
                if only.query_type() == q.qtype && only.name().to_lowercase().eq_case(&qname) => {}
            _ => return Err("question"),
        }
        if m.truncated() {
            return Ok((true, u16::from(m.response_code())));
        }
        let rcode = u16::from(m.response_code());
        if rcode != 0 && rcode != 3 {
            return Err("rcode");
        }
        let answers = m.answers();
        let mut chain = vec![qname];
        for _ in 0..answers.len() {
            let mut grew = false;
            for rec in answers {
                if let Some(c) = rec.data().as_cname() {
                    let (owner, target) = (rec.name().to_lowercase(), c.0.to_lowercase());
                    if chain.iter().any(|n| n.eq_case(&owner))
                        && !chain.iter().any(|n| n.eq_case(&target))
                    {
                        chain.push(target);
                        grew = true;
                    }
                }
            }
            if !grew {
                break;
            }
        }
        for rec in answers {
            let owner = rec.name().to_lowercase();
            let related = chain.iter().any(|n| n.eq_case(&owner))
                || (u16::from(rec.record_type()) == TYPE_DNAME
                    && chain.iter().any(|n| owner.zone_of(n)));
            if !related {
                return Err("unrelated");
            }
        }
        Ok((false, rcode))
    }

    const POOL: [&str; 6] = [
        "www.test.",
        "a.test.",
        "test.",
        "b.example.",
        "WWW.Test.",
        ".",
    ];

    /// (owner, kind 0 = A / 1 = CNAME / 2 = DNAME, target) from the name pool.
    fn records() -> impl Strategy<Value = Vec<(usize, u8, usize)>> {
        prop::collection::vec((0..POOL.len(), 0u8..3, 0..POOL.len()), 0..6)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any octets written over a compressed CNAME-chain answer: the walker returns (no
        /// panic, no endless pointer walk), and what it accepts still holds its question.
        #[test]
        fn walker_survives_corrupted_answers(
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut wire = raw(0, 3, 0, &[]);
            wire.extend_from_slice(&rr(&[0xC0, QNAME_AT], TYPE_CNAME, &[1, b'a', 0xC0, 16]));
            wire.extend_from_slice(&rr(&[0xC0, 38], TYPE_CNAME, &[1, b'b', 0xC0, 16]));
            wire.extend_from_slice(&rr(&[0xC0, 54], TYPE_A, ADDR));
            prop_assert!(check(&wire).is_ok());
            for (at, byte) in edits {
                let i = at.index(wire.len());
                wire[i] = byte;
            }
            wire.truncate(cut.index(wire.len() + 1).max(1));
            if check(&wire).is_ok() {
                let mut name = [0u8; MAX_NAME_LEN];
                let q = walk::read_question(&wire, &mut name).unwrap();
                prop_assert_eq!(name.get(..q.name_len), Some(&b"\x03www\x04test\x00"[..]));
            }
        }

        /// On responses hickory-proto writes (names compressed), the walker accepts and refuses
        /// exactly what the full parse did. One CNAME per owner, as DNS requires.
        #[test]
        fn walker_agrees_with_the_full_parse(
            recs in records(),
            rcode in prop::sample::select(vec![0u16, 2, 3, 16]),
            tc in any::<bool>(),
            edns in any::<bool>(),
        ) {
            let q = www();
            let mut m = Message::new();
            m.set_id(7)
                .set_message_type(MessageType::Response)
                .set_op_code(OpCode::Query)
                .set_truncated(tc)
                .set_response_code(ResponseCode::from(0, u8::try_from(rcode & 0xF).unwrap()));
            m.add_query(Query::query(name("WwW.tesT."), RecordType::A));
            let mut cname_owners = Vec::new();
            for &(owner, kind, target) in &recs {
                let owner_name = name(POOL[owner]);
                let data = match kind {
                    0 => RData::A(A(Ipv4Addr::LOCALHOST)),
                    1 => {
                        let lower = owner_name.to_lowercase();
                        if cname_owners.contains(&lower) {
                            continue;
                        }
                        cname_owners.push(lower);
                        RData::CNAME(CNAME(name(POOL[target])))
                    }
                    _ => RData::Unknown {
                        code: RecordType::from(TYPE_DNAME),
                        rdata: NULL::with(name(POOL[target]).to_bytes().unwrap()),
                    },
                };
                m.add_answer(Record::from_rdata(owner_name, 60, data));
            }
            if edns || rcode > 15 {
                let mut e = Edns::new();
                e.set_rcode_high(u8::try_from(rcode >> 4).unwrap());
                m.set_edns(e);
            }
            let wire = m.to_vec().unwrap();
            let ours = check_response(&wire, 7, &q, false);
            let theirs = reference(&wire, &q);
            match (&ours, &theirs) {
                (Ok(c), Ok((t, r))) => prop_assert_eq!((c.truncated(), c.rcode()), (*t, *r)),
                (Err(AttemptError::Rcode(a)), Err("rcode")) => prop_assert_eq!(*a, rcode),
                (Err(AttemptError::Mismatch(Mismatch::UnrelatedAnswer)), Err("unrelated")) => {}
                _ => prop_assert!(false, "walker {:?}, full parse {:?}", ours, theirs),
            }
        }
    }
}
