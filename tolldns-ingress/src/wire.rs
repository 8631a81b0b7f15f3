//! Minimal DNS wire handling for the hot path.
//!
//! Only what the edge needs is parsed: the header, the single question and the EDNS OPT record
//! (UDP payload size, DO bit, version, and the ticket options). Responses the edge writes itself
//! (errors, RFC 8482 answers, truncation) are built straight into the caller's buffer. Every
//! read is bounds-checked: malformed input is an error value, never a panic.

/// EDNS option code that carries a 16-byte session ticket (in queries and responses). 65001
/// lies in the range RFC 6891 reserves for local/experimental use (65001–65534).
pub const TICKET_OPTION_CODE: u16 = tolldns_tickets::protocol::SESSION_OPTION_CODE;
/// EDNS option code that carries a whole toll-ticket token (queries only).
pub const TOKEN_OPTION_CODE: u16 = tolldns_tickets::protocol::TOKEN_OPTION_CODE;

/// Length of a DNS header.
pub const HEADER_LEN: usize = 12;
/// Largest wire-format name (RFC 1035 §3.1).
pub const MAX_WIRE_NAME: usize = 255;

/// RR type OPT.
pub const TYPE_OPT: u16 = 41;
/// RR type ANY (`*`).
pub const TYPE_ANY: u16 = 255;
/// RR type HINFO.
pub const TYPE_HINFO: u16 = 13;

/// Response codes the edge writes itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Rcode {
    /// No error.
    NoError = 0,
    /// The query could not be interpreted.
    FormErr = 1,
    /// The server failed.
    ServFail = 2,
    /// The name does not exist.
    NxDomain = 3,
    /// The opcode is not implemented.
    NotImp = 4,
    /// Refused by policy.
    Refused = 5,
}

/// Why a packet could not be read as a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Shorter than a header: nothing can be answered.
    #[error("packet shorter than a DNS header")]
    NoHeader,
    /// The QR bit is set: a response, never answered (no reflection loops).
    #[error("packet is a response")]
    Response,
    /// The header is readable but the rest is not a valid query.
    #[error("malformed query: {0}")]
    Malformed(&'static str),
    /// The opcode is not QUERY.
    #[error("opcode {0} not implemented")]
    NotImplemented(u8),
    /// The EDNS version is not 0.
    #[error("unsupported EDNS version {0}")]
    BadVersion(u8),
}

/// EDNS facts of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edns {
    /// Requestor's UDP payload size (at least 512).
    pub udp_size: u16,
    /// The DO bit.
    pub dnssec_ok: bool,
}

/// What the edge reads from a query. Plain data, no allocation.
#[derive(Clone, Copy)]
pub struct Query {
    /// Message ID.
    pub id: u16,
    /// Second header word (flags).
    pub flags: u16,
    /// Question name in wire form, lowercased, with its terminating zero.
    name: [u8; MAX_WIRE_NAME],
    name_len: u8,
    /// Question type.
    pub qtype: u16,
    /// Question class.
    pub qclass: u16,
    /// End of the question section in the packet (offset of the first byte after QCLASS).
    pub question_end: usize,
    /// The EDNS OPT record, when present.
    pub edns: Option<Edns>,
    /// The session-ticket option, when present and exactly 16 bytes.
    pub ticket: Option<[u8; 16]>,
    /// Where the token option's data lies in the packet (offset, length), when present.
    pub token: Option<(u16, u16)>,
}

impl core::fmt::Debug for Query {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never prints the name: logs must not carry queried names.
        f.debug_struct("Query")
            .field("id", &self.id)
            .field("qtype", &self.qtype)
            .field("qclass", &self.qclass)
            .field("edns", &self.edns)
            .finish_non_exhaustive()
    }
}

impl Query {
    /// The question name in wire form, lowercased (ends with the root label).
    pub fn wire_name(&self) -> &[u8] {
        self.name.get(..usize::from(self.name_len)).unwrap_or(&[])
    }

    /// RD bit.
    pub const fn recursion_desired(&self) -> bool {
        self.flags & 0x0100 != 0
    }

    /// CD bit.
    pub const fn checking_disabled(&self) -> bool {
        self.flags & 0x0010 != 0
    }

    /// DO bit (false without EDNS).
    pub fn dnssec_ok(&self) -> bool {
        self.edns.is_some_and(|e| e.dnssec_ok)
    }

    /// Largest response the client accepts over UDP: 512 without EDNS, else its payload size.
    pub fn udp_limit(&self) -> usize {
        self.edns.map_or(512, |e| usize::from(e.udp_size.max(512)))
    }

    /// The name as dotted lowercase text written into `out`, without a trailing dot (`.` for
    /// the root). Returns the used length.
    pub fn dotted_name(&self, out: &mut [u8; MAX_WIRE_NAME]) -> usize {
        let wire = self.wire_name();
        let mut pos = 0usize;
        let mut w = 0usize;
        while let Some(&len) = wire.get(pos) {
            if len == 0 {
                break;
            }
            if w > 0 {
                if let Some(slot) = out.get_mut(w) {
                    *slot = b'.';
                }
                w = w.saturating_add(1);
            }
            let start = pos.saturating_add(1);
            let end = start.saturating_add(usize::from(len));
            for &b in wire.get(start..end).unwrap_or(&[]) {
                if let Some(slot) = out.get_mut(w) {
                    *slot = b;
                }
                w = w.saturating_add(1);
            }
            pos = end;
        }
        if w == 0 {
            out[0] = b'.';
            w = 1;
        }
        w.min(MAX_WIRE_NAME)
    }
}

fn u16_at(buf: &[u8], at: usize) -> Option<u16> {
    let b = buf.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
}

fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    let b = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(b.try_into().ok()?))
}

fn put_u16(buf: &mut [u8], at: usize, v: u16) -> Option<()> {
    let b = buf.get_mut(at..at.checked_add(2)?)?;
    b.copy_from_slice(&v.to_be_bytes());
    Some(())
}

fn put_u32(buf: &mut [u8], at: usize, v: u32) -> Option<()> {
    let b = buf.get_mut(at..at.checked_add(4)?)?;
    b.copy_from_slice(&v.to_be_bytes());
    Some(())
}

/// Skip a possibly compressed name starting at `pos`; returns the offset after it.
fn skip_name(buf: &[u8], mut pos: usize) -> Option<usize> {
    let mut total = 0usize;
    loop {
        let len = *buf.get(pos)?;
        match len & 0xC0 {
            0x00 => {
                pos = pos.checked_add(1)?;
                if len == 0 {
                    return Some(pos);
                }
                total = total.checked_add(usize::from(len) + 1)?;
                if total > MAX_WIRE_NAME {
                    return None;
                }
                pos = pos.checked_add(usize::from(len))?;
            }
            0xC0 => {
                buf.get(pos.checked_add(1)?)?;
                return pos.checked_add(2);
            }
            _ => return None,
        }
    }
}

/// Read the header of a packet: `(id, flags)`.
pub fn header(buf: &[u8]) -> Option<(u16, u16)> {
    if buf.len() < HEADER_LEN {
        return None;
    }
    Some((u16_at(buf, 0)?, u16_at(buf, 2)?))
}

/// Parse a query.
///
/// # Errors
///
/// A [`ParseError`]; [`ParseError::NoHeader`] and [`ParseError::Response`] must not be answered.
pub fn parse_query(buf: &[u8]) -> Result<Query, ParseError> {
    let (id, flags) = header(buf).ok_or(ParseError::NoHeader)?;
    if flags & 0x8000 != 0 {
        return Err(ParseError::Response);
    }
    let opcode = ((flags >> 11) & 0x0F) as u8;
    let malformed = ParseError::Malformed;
    let qdcount = u16_at(buf, 4).ok_or(malformed("header"))?;
    let ancount = u16_at(buf, 6).ok_or(malformed("header"))?;
    let nscount = u16_at(buf, 8).ok_or(malformed("header"))?;
    let arcount = u16_at(buf, 10).ok_or(malformed("header"))?;
    if opcode != 0 {
        return Err(ParseError::NotImplemented(opcode));
    }
    if qdcount != 1 {
        return Err(malformed("question count is not 1"));
    }
    if ancount != 0 || nscount != 0 {
        return Err(malformed("query carries answer or authority records"));
    }
    // The question name: uncompressed labels only (nothing precedes it to point at).
    let mut name = [0u8; MAX_WIRE_NAME];
    let mut pos = HEADER_LEN;
    let mut n = 0usize;
    loop {
        let len = *buf.get(pos).ok_or(malformed("truncated question"))?;
        if len & 0xC0 != 0 {
            return Err(malformed("compressed or extended label in the question"));
        }
        let end = pos
            .checked_add(1 + usize::from(len))
            .ok_or(malformed("name"))?;
        let label = buf.get(pos..end).ok_or(malformed("truncated question"))?;
        let out = name
            .get_mut(n..n.saturating_add(label.len()))
            .ok_or(malformed("name longer than 255 octets"))?;
        for (dst, src) in out.iter_mut().zip(label) {
            *dst = src.to_ascii_lowercase();
        }
        // The length byte itself is below 64, so lowercasing left it unchanged.
        n = n.saturating_add(label.len());
        pos = end;
        if len == 0 {
            break;
        }
    }
    let qtype = u16_at(buf, pos).ok_or(malformed("truncated question"))?;
    let qclass = u16_at(buf, pos.saturating_add(2)).ok_or(malformed("truncated question"))?;
    let question_end = pos.saturating_add(4);
    let mut q = Query {
        id,
        flags,
        name,
        name_len: u8::try_from(n).map_err(|_| malformed("name"))?,
        qtype,
        qclass,
        question_end,
        edns: None,
        ticket: None,
        token: None,
    };
    // Additional section: find OPT, skip anything else.
    let mut pos = question_end;
    for _ in 0..arcount {
        let name_start = pos;
        pos = skip_name(buf, pos).ok_or(malformed("additional record"))?;
        let rtype = u16_at(buf, pos).ok_or(malformed("additional record"))?;
        let class = u16_at(buf, pos.saturating_add(2)).ok_or(malformed("additional record"))?;
        let ttl = u32_at(buf, pos.saturating_add(4)).ok_or(malformed("additional record"))?;
        let rdlen = u16_at(buf, pos.saturating_add(8)).ok_or(malformed("additional record"))?;
        let rdata_start = pos.saturating_add(10);
        let rdata_end = rdata_start.saturating_add(usize::from(rdlen));
        let rdata = buf
            .get(rdata_start..rdata_end)
            .ok_or(malformed("truncated additional record"))?;
        if rtype == TYPE_OPT {
            if q.edns.is_some() {
                return Err(malformed("more than one OPT record"));
            }
            if pos != name_start.saturating_add(1) || buf.get(name_start) != Some(&0) {
                return Err(malformed("OPT owner is not the root"));
            }
            let version = ((ttl >> 16) & 0xFF) as u8;
            q.edns = Some(Edns {
                udp_size: class.max(512),
                dnssec_ok: ttl & 0x8000 != 0,
            });
            if version != 0 {
                return Err(ParseError::BadVersion(version));
            }
            let mut o = 0usize;
            while o < rdata.len() {
                let code = u16_at(rdata, o).ok_or(malformed("EDNS option"))?;
                let olen = usize::from(
                    u16_at(rdata, o.saturating_add(2)).ok_or(malformed("EDNS option"))?,
                );
                let ostart = o.saturating_add(4);
                let oend = ostart.saturating_add(olen);
                let value = rdata.get(ostart..oend).ok_or(malformed("EDNS option"))?;
                if code == TICKET_OPTION_CODE {
                    q.ticket = <[u8; 16]>::try_from(value).ok();
                } else if code == TOKEN_OPTION_CODE {
                    let at = rdata_start.saturating_add(ostart);
                    q.token = u16::try_from(at).ok().zip(u16::try_from(value.len()).ok());
                }
                o = oend;
            }
        }
        pos = rdata_end;
    }
    Ok(q)
}

/// Facts about a response, gathered by [`scan_response`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResponseInfo {
    /// The 4-bit header rcode.
    pub rcode: u8,
    /// Answer count.
    pub answers: u16,
    /// Smallest TTL over all records but OPT (after clamping); `None` without records.
    pub min_ttl: Option<u32>,
    /// The TC bit.
    pub truncated: bool,
    /// Where the OPT record sits, when the response carries one.
    pub opt: Option<OptSpan>,
}

/// Position of a response's OPT record, found by [`scan_response`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OptSpan {
    /// Offset of the record's owner name (the root label).
    pub start: usize,
    /// Offset just after its RDATA.
    pub end: usize,
    /// Records of the additional section that follow it.
    pub records_after: u16,
}

/// Walk a response: collect [`ResponseInfo`] and, when `clamp` is set, lower every TTL above
/// it (OPT excluded: its TTL field holds EDNS flags).
///
/// # Errors
///
/// `None` when the message is not a well-formed response.
pub fn scan_response(buf: &mut [u8], clamp: Option<u32>) -> Option<ResponseInfo> {
    let (_, flags) = header(buf)?;
    let qd = u16_at(buf, 4)?;
    let an = u16_at(buf, 6)?;
    let ns = u16_at(buf, 8)?;
    let ar = u16_at(buf, 10)?;
    let mut pos = HEADER_LEN;
    for _ in 0..qd {
        pos = skip_name(buf, pos)?.checked_add(4)?;
        if pos > buf.len() {
            return None;
        }
    }
    let mut info = ResponseInfo {
        rcode: (flags & 0x000F) as u8,
        answers: an,
        min_ttl: None,
        truncated: flags & 0x0200 != 0,
        opt: None,
    };
    let records = u32::from(an) + u32::from(ns) + u32::from(ar);
    for i in 0..records {
        let start = pos;
        pos = skip_name(buf, pos)?;
        let rtype = u16_at(buf, pos)?;
        let ttl_at = pos.checked_add(4)?;
        let mut ttl = u32_at(buf, ttl_at)?;
        let rdlen = u16_at(buf, pos.checked_add(8)?)?;
        let end = pos.checked_add(10)?.checked_add(usize::from(rdlen))?;
        if end > buf.len() {
            return None;
        }
        if rtype != TYPE_OPT {
            // RFC 2181 §8: a TTL with the top bit set is treated as zero.
            if ttl > 0x7FFF_FFFF {
                ttl = 0;
                put_u32(buf, ttl_at, 0)?;
            }
            if let Some(max) = clamp.filter(|max| ttl > *max) {
                ttl = max;
                put_u32(buf, ttl_at, max)?;
            }
            info.min_ttl = Some(info.min_ttl.map_or(ttl, |m| m.min(ttl)));
        } else if info.opt.is_none() {
            info.opt = Some(OptSpan {
                start,
                end,
                records_after: u16::try_from(records - i - 1).unwrap_or(0),
            });
        }
        pos = end;
    }
    Some(info)
}

/// Make the EDNS part of a response in `buf[..len]` fit the client (RFC 6891 §7), given the
/// `info` [`scan_response`] gathered from it: a client that sent no OPT gets none (the OPT and,
/// if it was not the last record, the additional records after it are cut, which leaves every
/// compression pointer valid); a client that sent one gets one advertising `udp_size`, appended
/// when the response had none and `buf` has room. Returns the new length.
///
/// # Errors
///
/// `None` when `info` does not describe `buf[..len]` (nothing is changed then).
pub fn fit_edns(
    buf: &mut [u8],
    len: usize,
    info: &ResponseInfo,
    client: Option<Edns>,
    udp_size: u16,
) -> Option<usize> {
    match (client, info.opt) {
        (None, None) => Some(len),
        (None, Some(opt)) => {
            if opt.end > len || opt.start >= opt.end {
                return None;
            }
            let ar = u16_at(buf, 10)?.checked_sub(opt.records_after.checked_add(1)?)?;
            put_u16(buf, 10, ar)?;
            Some(opt.start)
        }
        (Some(_), Some(opt)) => {
            // CLASS of the OPT record: the responder's UDP payload size.
            let class_at = opt.start.checked_add(3)?;
            if class_at.checked_add(2)? > len.min(opt.end) {
                return None;
            }
            put_u16(buf, class_at, udp_size)?;
            Some(len)
        }
        (Some(e), None) => {
            let end = len.checked_add(11)?;
            let Some(rr) = buf.get_mut(len..end) else {
                // No room: answering without OPT is still a valid response.
                return Some(len);
            };
            rr.copy_from_slice(&[0, 0, 41, 0, 0, 0, 0, 0, 0, 0, 0]);
            rr[3..5].copy_from_slice(&udp_size.to_be_bytes());
            rr[7] = if e.dnssec_ok { 0x80 } else { 0 };
            let ar = u16_at(buf, 10)?.checked_add(1)?;
            put_u16(buf, 10, ar)?;
            Some(end)
        }
    }
}

/// Append an EDNS option (`code`, `data`) to the OPT record of the response in `buf[..len]`
/// and return the new length. Additional records after the OPT record, if any, are cut first
/// (the additional section is advisory; nothing can point into the records after it). `None`
/// when the response has no OPT record (a client that sent none gets none), is malformed, or
/// `buf` has no room; nothing is changed then.
pub fn add_edns_option(buf: &mut [u8], len: usize, code: u16, data: &[u8]) -> Option<usize> {
    let info = scan_response(buf.get_mut(..len)?, None)?;
    let opt = info.opt?;
    let data_len = u16::try_from(data.len()).ok()?;
    let rdlen_at = opt.start.checked_add(9)?;
    let rdlen = u16_at(buf, rdlen_at)?.checked_add(data_len.checked_add(4)?)?;
    let end = opt.end.checked_add(4)?.checked_add(data.len())?;
    if end > buf.len() {
        return None;
    }
    if opt.records_after > 0 {
        let ar = u16_at(buf, 10)?.checked_sub(opt.records_after)?;
        put_u16(buf, 10, ar)?;
    }
    put_u16(buf, rdlen_at, rdlen)?;
    put_u16(buf, opt.end, code)?;
    put_u16(buf, opt.end.checked_add(2)?, data_len)?;
    buf.get_mut(opt.end.checked_add(4)?..end)?
        .copy_from_slice(data);
    Some(end)
}

/// Set the ID of a message in place.
pub fn set_id(buf: &mut [u8], id: u16) {
    let _ = put_u16(buf, 0, id);
}

/// Copy the client's question name bytes (its letter case) over the response's, when the two
/// questions are the same length at the same place. Returns whether it did.
pub fn restore_question_case(response: &mut [u8], query: &[u8], question_end: usize) -> bool {
    let (Some(src), Some(dst)) = (
        query.get(HEADER_LEN..question_end),
        response.get_mut(HEADER_LEN..question_end),
    ) else {
        return false;
    };
    if src.eq_ignore_ascii_case(dst) {
        dst.copy_from_slice(src);
        true
    } else {
        false
    }
}

/// Whether a response's question matches the query's (case-insensitively).
pub fn question_matches(response: &[u8], query: &[u8], question_end: usize) -> bool {
    match (
        query.get(HEADER_LEN..question_end),
        response.get(HEADER_LEN..question_end),
    ) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b) && u16_at(response, 4) == Some(1),
        _ => false,
    }
}

/// Writes a response the edge builds itself into `out`.
#[derive(Debug)]
pub struct ResponseWriter<'a> {
    out: &'a mut [u8],
    len: usize,
}

impl<'a> ResponseWriter<'a> {
    /// Start a response to `query` (`None` when only the header was readable: the question is
    /// then left out). `query_bytes` is the original packet.
    ///
    /// Returns `None` when `out` is too small.
    pub fn new(
        out: &'a mut [u8],
        id: u16,
        query_flags: u16,
        question: Option<&[u8]>,
        rcode: u8,
    ) -> Option<Self> {
        // QR=1, opcode and RD copied, RA=1, CD copied.
        let flags = 0x8000
            | (query_flags & 0x7900)
            | 0x0080
            | (query_flags & 0x0010)
            | u16::from(rcode & 0x0F);
        let qlen = question.map_or(0, <[u8]>::len);
        let need = HEADER_LEN.checked_add(qlen)?;
        if out.len() < need {
            return None;
        }
        put_u16(out, 0, id)?;
        put_u16(out, 2, flags)?;
        put_u16(out, 4, u16::from(question.is_some()))?;
        put_u16(out, 6, 0)?;
        put_u16(out, 8, 0)?;
        put_u16(out, 10, 0)?;
        if let Some(q) = question {
            out.get_mut(HEADER_LEN..need)?.copy_from_slice(q);
        }
        Some(Self { out, len: need })
    }

    fn bump(&mut self, at: usize) -> Option<()> {
        let v = u16_at(self.out, at)?.checked_add(1)?;
        put_u16(self.out, at, v)
    }

    fn push(&mut self, bytes: &[u8]) -> Option<()> {
        let end = self.len.checked_add(bytes.len())?;
        self.out.get_mut(self.len..end)?.copy_from_slice(bytes);
        self.len = end;
        Some(())
    }

    /// Set the TC bit.
    pub fn truncated(&mut self) -> Option<()> {
        let f = u16_at(self.out, 2)? | 0x0200;
        put_u16(self.out, 2, f)
    }

    /// Append the RFC 8482 answer to an ANY query: one HINFO record `"RFC8482" ""` owned by
    /// the question name.
    pub fn rfc8482_answer(&mut self, ttl: u32) -> Option<()> {
        let mut rr = [0u8; 2 + 2 + 2 + 4 + 2 + 9];
        // Owner: pointer to the question name at offset 12.
        rr[0] = 0xC0;
        rr[1] = 0x0C;
        rr[2..4].copy_from_slice(&TYPE_HINFO.to_be_bytes());
        rr[4..6].copy_from_slice(&1u16.to_be_bytes());
        rr[6..10].copy_from_slice(&ttl.to_be_bytes());
        rr[10..12].copy_from_slice(&9u16.to_be_bytes());
        rr[12] = 7;
        rr[13..20].copy_from_slice(b"RFC8482");
        rr[20] = 0;
        self.push(&rr)?;
        self.bump(6)
    }

    /// Append an OPT record (EDNS0) advertising `udp_size`; `ext_rcode` is the upper 8 bits of
    /// an extended rcode (1 for BADVERS).
    pub fn opt(&mut self, udp_size: u16, ext_rcode: u8, dnssec_ok: bool) -> Option<()> {
        let mut rr = [0u8; 11];
        rr[1..3].copy_from_slice(&TYPE_OPT.to_be_bytes());
        rr[3..5].copy_from_slice(&udp_size.to_be_bytes());
        rr[5] = ext_rcode;
        rr[7] = if dnssec_ok { 0x80 } else { 0 };
        self.push(&rr)?;
        self.bump(10)
    }

    /// Bytes written.
    pub const fn finish(self) -> usize {
        self.len
    }
}

/// Build a minimal query (used by health checks and tests).
pub fn build_query(out: &mut [u8], id: u16, name: &str, qtype: u16) -> Option<usize> {
    put_u16(out, 0, id)?;
    put_u16(out, 2, 0x0100)?;
    put_u16(out, 4, 1)?;
    put_u16(out, 6, 0)?;
    put_u16(out, 8, 0)?;
    put_u16(out, 10, 0)?;
    let mut pos = HEADER_LEN;
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        let len = u8::try_from(label.len()).ok().filter(|l| *l < 64)?;
        *out.get_mut(pos)? = len;
        pos = pos.checked_add(1)?;
        let end = pos.checked_add(label.len())?;
        out.get_mut(pos..end)?.copy_from_slice(label.as_bytes());
        pos = end;
    }
    *out.get_mut(pos)? = 0;
    pos = pos.checked_add(1)?;
    put_u16(out, pos, qtype)?;
    put_u16(out, pos.checked_add(2)?, 1)?;
    pos.checked_add(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut b = [0u8; 512];
        let n = build_query(&mut b, 0x1234, name, qtype).unwrap();
        b[..n].to_vec()
    }

    /// A response to `query("a.test", 1)`: one A record, then `extra` additional records
    /// (an OPT at index `opt_at`, A glue otherwise).
    fn response(extra: usize, opt_at: Option<usize>) -> Vec<u8> {
        let mut m = query("a.test", 1);
        m[2] |= 0x80;
        m[7] = 1;
        m[11] = u8::try_from(extra).unwrap();
        m.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
        for i in 0..extra {
            if Some(i) == opt_at {
                m.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0x80, 0, 0, 0]);
            } else {
                m.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 9]);
            }
        }
        m
    }

    #[test]
    fn fit_edns_strips_rewrites_and_adds_opt() {
        let client = Some(Edns {
            udp_size: 4096,
            dnssec_ok: true,
        });
        // Trailing OPT, client without EDNS: removed.
        let mut m = response(1, Some(0));
        let info = scan_response(&mut m, None).unwrap();
        assert!(info.opt.is_some());
        let len = m.len();
        let n = fit_edns(&mut m, len, &info, None, 1232).unwrap();
        assert_eq!(n, len - 11);
        assert_eq!(u16_at(&m, 10), Some(0));
        assert!(
            scan_response(&mut m[..n].to_vec(), None)
                .unwrap()
                .opt
                .is_none()
        );
        // OPT before a glue record: both cut, the rest still parses.
        let mut m = response(3, Some(1));
        let info = scan_response(&mut m, None).unwrap();
        let len = m.len();
        let n = fit_edns(&mut m, len, &info, None, 1232).unwrap();
        assert_eq!(u16_at(&m, 10), Some(1));
        let mut cut = m[..n].to_vec();
        let info = scan_response(&mut cut, None).unwrap();
        assert!(info.opt.is_none());
        // Client with EDNS: the OPT advertises our size.
        let mut m = response(1, Some(0));
        let info = scan_response(&mut m, None).unwrap();
        let len = m.len();
        let n = fit_edns(&mut m, len, &info, client, 1232).unwrap();
        assert_eq!(n, len);
        assert_eq!(u16_at(&m, n - 8), Some(1232));
        // Client with EDNS, answer without: one is appended, DO echoed.
        let mut m = response(0, None);
        let len = m.len();
        m.resize(len + 64, 0);
        let info = scan_response(&mut m[..len], None).unwrap();
        let n = fit_edns(&mut m, len, &info, client, 1232).unwrap();
        assert_eq!(n, len + 11);
        assert_eq!(u16_at(&m, 10), Some(1));
        let info = scan_response(&mut m[..n], None).unwrap();
        assert_eq!(info.opt.map(|o| o.end), Some(n));
        assert_eq!(m[n - 4], 0x80);
        // Neither: unchanged.
        let mut m = response(1, None);
        let info = scan_response(&mut m, None).unwrap();
        let len = m.len();
        assert_eq!(fit_edns(&mut m, len, &info, None, 1232), Some(len));
    }

    #[test]
    fn parses_a_plain_query() {
        let q = parse_query(&query("WwW.Example.COM", 1)).unwrap();
        assert_eq!(q.id, 0x1234);
        assert_eq!(q.qtype, 1);
        assert_eq!(q.wire_name(), b"\x03www\x07example\x03com\x00");
        let mut d = [0u8; MAX_WIRE_NAME];
        let n = q.dotted_name(&mut d);
        assert_eq!(&d[..n], b"www.example.com");
        assert!(q.edns.is_none());
        assert_eq!(q.udp_limit(), 512);
    }

    #[test]
    fn parses_edns_and_ticket() {
        let mut p = query("a.b", 28);
        p[11] = 1; // arcount
        let mut opt = vec![0u8, 0, 41, 0x04, 0xD0, 0, 0, 0x80, 0, 0, 20];
        opt.extend_from_slice(&TICKET_OPTION_CODE.to_be_bytes());
        opt.extend_from_slice(&16u16.to_be_bytes());
        opt.extend_from_slice(&[7u8; 16]);
        p.extend_from_slice(&opt);
        let q = parse_query(&p).unwrap();
        assert_eq!(
            q.edns,
            Some(Edns {
                udp_size: 1232,
                dnssec_ok: true
            })
        );
        assert_eq!(q.ticket, Some([7; 16]));
        assert_eq!(q.token, None);
        // A token option next to it: its data's place in the packet.
        let mut p2 = query("a.b", 28);
        p2[11] = 1;
        let mut opt = vec![0u8, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 9];
        opt.extend_from_slice(&TOKEN_OPTION_CODE.to_be_bytes());
        opt.extend_from_slice(&5u16.to_be_bytes());
        opt.extend_from_slice(b"token");
        p2.extend_from_slice(&opt);
        let q = parse_query(&p2).unwrap();
        let (at, n) = q.token.unwrap();
        assert_eq!(
            &p2[usize::from(at)..usize::from(at) + usize::from(n)],
            b"token"
        );
    }

    #[test]
    fn adds_options_to_the_opt_record() {
        let p = query("x.test", 1);
        let q = parse_query(&p).unwrap();
        let mut out = [0u8; 512];
        let mut w =
            ResponseWriter::new(&mut out, q.id, q.flags, p.get(12..q.question_end), 5).unwrap();
        w.opt(1232, 0, false).unwrap();
        // A record after the OPT: cut when an option is added.
        w.push(&[0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 1, 2, 3, 4])
            .unwrap();
        w.bump(10).unwrap();
        let n = w.finish();
        let n2 = add_edns_option(&mut out, n, 15, &[0, 18, b'x']).unwrap();
        let info = scan_response(&mut out[..n2], None).unwrap();
        let opt = info.opt.unwrap();
        assert_eq!(opt.end, n2);
        assert_eq!(opt.records_after, 0);
        assert_eq!(u16_at(&out, 10), Some(1));
        assert_eq!(&out[n2 - 7..n2], &[0, 15, 0, 3, 0, 18, b'x']);
        // Two options in a row.
        let n3 = add_edns_option(&mut out, n2, TICKET_OPTION_CODE, &[9; 16]).unwrap();
        assert_eq!(n3, n2 + 20);
        let m = hickory_proto::op::Message::from_vec(&out[..n3]).unwrap();
        let edns = m.extensions().as_ref().unwrap();
        assert_eq!(edns.options().as_ref().len(), 2);
        // No OPT, no room: refused, unchanged.
        let mut plain = [0u8; 512];
        let w = ResponseWriter::new(&mut plain, 1, 0, p.get(12..q.question_end), 0).unwrap();
        let n = w.finish();
        assert_eq!(add_edns_option(&mut plain, n, 15, &[0, 0]), None);
        assert_eq!(add_edns_option(&mut out[..n3 + 3], n3, 15, &[0, 0]), None);
    }

    #[test]
    fn rejects_bad_packets() {
        assert!(matches!(parse_query(&[0; 5]), Err(ParseError::NoHeader)));
        let mut p = query("a", 1);
        p[2] |= 0x80;
        assert!(matches!(parse_query(&p), Err(ParseError::Response)));
        let p = query("a", 1);
        assert!(matches!(
            parse_query(&p[..p.len() - 1]),
            Err(ParseError::Malformed(_))
        ));
        let mut p = query("a", 1);
        p[2] = 0x28; // opcode 5
        assert!(matches!(
            parse_query(&p),
            Err(ParseError::NotImplemented(5))
        ));
    }

    #[test]
    fn builds_any_and_error_answers() {
        let p = query("x.test", TYPE_ANY);
        let q = parse_query(&p).unwrap();
        let mut out = [0u8; 512];
        let mut w =
            ResponseWriter::new(&mut out, q.id, q.flags, p.get(12..q.question_end), 0).unwrap();
        w.rfc8482_answer(3600).unwrap();
        let n = w.finish();
        let info = scan_response(&mut out[..n], None).unwrap();
        assert_eq!(info.answers, 1);
        assert_eq!(info.min_ttl, Some(3600));
        let info = scan_response(&mut out[..n], Some(60)).unwrap();
        assert_eq!(info.min_ttl, Some(60));
    }
}
