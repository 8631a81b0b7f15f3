//! Minimal DNS wire handling for the hot path.
//!
//! Only what the edge needs is parsed: the header, the single question and the EDNS OPT record
//! (UDP payload size, DO bit, version, and the ticket options). Responses the edge writes itself
//! (errors, RFC 8482 answers, truncation) are built straight into the caller's buffer. Every
//! read is bounds-checked: malformed input is an error value, never a panic.
//!
//! Reading is done by the walker of [`tolldns_cache::wire`], shared with the cache's
//! `CacheKey::from_query`, so the edge and its cache accept and refuse exactly the same
//! queries; this module adds the edge's view of a query ([`Query`]) and the writers.

use tolldns_cache::wire::{
    self as walk, QueryError, read_u16 as u16_at, write_u16 as put_u16, write_u32 as put_u32,
};

/// EDNS option code that carries a 16-byte session ticket (in queries and responses). 65001
/// lies in the range RFC 6891 reserves for local/experimental use (65001–65534).
pub const TICKET_OPTION_CODE: u16 = tolldns_tickets::protocol::SESSION_OPTION_CODE;
/// EDNS option code that carries a whole toll-ticket token (queries only).
pub const TOKEN_OPTION_CODE: u16 = tolldns_tickets::protocol::TOKEN_OPTION_CODE;

/// Length of a DNS header.
pub const HEADER_LEN: usize = walk::HEADER_LEN;
/// Largest wire-format name, the root label's length octet included (RFC 1035 §3.1).
pub const MAX_WIRE_NAME: usize = walk::MAX_NAME_LEN;

/// RR type OPT.
pub const TYPE_OPT: u16 = walk::TYPE_OPT;
/// RR type ANY (`*`).
pub const TYPE_ANY: u16 = walk::TYPE_ANY;
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
    /// The COOKIE option (RFC 7873), when present with a valid length (an option of another
    /// length is ignored, as if absent).
    pub cookies: Option<crate::cookies::ClientCookies>,
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

/// Read the header of a packet: `(id, flags)`.
pub fn header(buf: &[u8]) -> Option<(u16, u16)> {
    let h = walk::Header::parse(buf).ok()?;
    Some((h.id, h.flags))
}

impl From<QueryError> for ParseError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::NoHeader => Self::NoHeader,
            QueryError::NotAQuery => Self::Response,
            QueryError::Opcode(op) => Self::NotImplemented(op),
            QueryError::BadVersion(v) => Self::BadVersion(v),
            other => Self::Malformed(other.reason()),
        }
    }
}

/// Parse a query, by the rules of [`tolldns_cache::wire`] (the walker `CacheKey::from_query`
/// uses too, so both accept and refuse the same messages): one question with an uncompressed
/// name of at most 255 octets, empty answer and authority sections, at most one OPT record
/// (owner the root, EDNS version 0) and nothing else in the additional section.
///
/// # Errors
///
/// A [`ParseError`]; [`ParseError::NoHeader`] and [`ParseError::Response`] must not be answered.
pub fn parse_query(buf: &[u8]) -> Result<Query, ParseError> {
    let mut name = [0u8; MAX_WIRE_NAME];
    let info = walk::walk_query(buf, &mut name)?;
    let mut q = Query {
        id: info.header.id,
        flags: info.header.flags,
        name,
        name_len: u8::try_from(info.question.name_len)
            .map_err(|_| ParseError::Malformed("name longer than 255 octets"))?,
        qtype: info.question.qtype,
        qclass: info.question.qclass,
        question_end: info.question.end,
        edns: None,
        ticket: None,
        token: None,
        cookies: None,
    };
    if let Some(opt) = info.opt {
        q.edns = Some(Edns {
            udp_size: opt.udp_size.max(512),
            dnssec_ok: opt.dnssec_ok,
        });
        // The walker checked that the options exactly fill the RDATA.
        for option in opt.options(buf).flatten() {
            if option.code == TICKET_OPTION_CODE {
                q.ticket = buf
                    .get(option.data)
                    .and_then(|v| <[u8; 16]>::try_from(v).ok());
            } else if option.code == TOKEN_OPTION_CODE {
                q.token = u16::try_from(option.data.start)
                    .ok()
                    .zip(u16::try_from(option.data.len()).ok());
            } else if option.code == crate::cookies::COOKIE_OPTION_CODE {
                q.cookies = buf
                    .get(option.data)
                    .and_then(crate::cookies::ClientCookies::from_option);
            }
        }
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
    let h = walk::Header::parse(buf).ok()?;
    let mut pos = HEADER_LEN;
    for _ in 0..h.qdcount {
        pos = walk::skip_name(buf, pos).ok()?.checked_add(4)?;
        if pos > buf.len() {
            return None;
        }
    }
    let mut info = ResponseInfo {
        rcode: h.rcode(),
        answers: h.ancount,
        min_ttl: None,
        truncated: h.flags & walk::FLAG_TC != 0,
        opt: None,
    };
    let records = h.record_count();
    for i in 0..records {
        let (rr, end) = walk::read_record(buf, pos).ok()?;
        if rr.rtype != TYPE_OPT {
            let mut ttl = rr.ttl;
            // RFC 2181 §8: a TTL with the top bit set is treated as zero.
            if ttl > 0x7FFF_FFFF {
                ttl = 0;
                put_u32(buf, rr.ttl_offset, 0)?;
            }
            if let Some(max) = clamp.filter(|max| ttl > *max) {
                ttl = max;
                put_u32(buf, rr.ttl_offset, max)?;
            }
            info.min_ttl = Some(info.min_ttl.map_or(ttl, |m| m.min(ttl)));
        } else if info.opt.is_none() {
            info.opt = Some(OptSpan {
                start: rr.start,
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

/// The edge's query parser and the cache's key builder accept and refuse the same messages and
/// read the same question out of them; structured queries are also checked against the rules
/// stated in [`tolldns_cache::wire`] and, when accepted, against hickory-proto's full parse.
#[cfg(test)]
mod parser_agreement {
    use super::*;
    use hickory_proto::op::Message;
    use hickory_proto::serialize::binary::BinEncodable;
    use proptest::prelude::*;
    use tolldns_cache::CacheKey;

    /// How the question name is written.
    #[derive(Debug, Clone)]
    enum NameForm {
        /// Plain labels adding up to this wire length (root octet included).
        Plain(usize),
        /// Plain labels of this wire length, then a compression pointer instead of the root.
        ThenPointer(usize, u16),
        /// A length octet of a reserved label type first.
        Reserved(u8),
    }

    /// One record of the additional section.
    #[derive(Debug, Clone)]
    enum Extra {
        Opt {
            /// 0: root, 1: pointer to the question, 2: a one-label name.
            owner: u8,
            udp: u16,
            version: u8,
            dnssec_ok: bool,
            options: Vec<(u16, Vec<u8>)>,
            /// Stray octets after the options.
            stray: u8,
        },
        Other {
            rtype: u16,
            rdata: Vec<u8>,
        },
    }

    #[derive(Debug, Clone)]
    struct Shape {
        id: u16,
        qr: bool,
        opcode: u8,
        cd: bool,
        qdcount: u16,
        answers: u8,
        authorities: u8,
        name: NameForm,
        upper: Vec<bool>,
        qtype: u16,
        qclass: u16,
        extras: Vec<Extra>,
        trailing: Vec<u8>,
    }

    /// Labels of letters adding up to `wire_len` octets with the root octet (lengths near
    /// the 255 bound are what matters; a wire length of 2 cannot exist and becomes 3).
    fn labels(wire_len: usize, upper: &[bool]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rest = wire_len.max(1) - 1;
        if rest == 1 {
            rest = 2;
        }
        let mut i = 0usize;
        while rest > 0 {
            let mut seg = rest.min(64);
            if rest - seg == 1 {
                seg -= 1;
            }
            out.push(u8::try_from(seg - 1).unwrap());
            for _ in 1..seg {
                let up = upper.get(i % upper.len().max(1)).copied().unwrap_or(false);
                out.push(if up { b'A' } else { b'a' } + u8::try_from(i % 26).unwrap());
                i += 1;
            }
            rest -= seg;
        }
        out
    }

    fn record(owner: &[u8], rtype: u16, class: u16, ttl: u32, rdata: &[u8]) -> Vec<u8> {
        let mut r = owner.to_vec();
        r.extend_from_slice(&rtype.to_be_bytes());
        r.extend_from_slice(&class.to_be_bytes());
        r.extend_from_slice(&ttl.to_be_bytes());
        r.extend_from_slice(&u16::try_from(rdata.len()).unwrap().to_be_bytes());
        r.extend_from_slice(rdata);
        r
    }

    /// The message, and whether the rules accept it.
    fn build(s: &Shape) -> (Vec<u8>, bool) {
        let mut flags = u16::from(s.opcode & 0x0F) << 11 | 0x0100;
        if s.qr {
            flags |= 0x8000;
        }
        if s.cd {
            flags |= 0x0010;
        }
        let mut m = Vec::new();
        m.extend_from_slice(&s.id.to_be_bytes());
        m.extend_from_slice(&flags.to_be_bytes());
        m.extend_from_slice(&s.qdcount.to_be_bytes());
        m.extend_from_slice(&u16::from(s.answers).to_be_bytes());
        m.extend_from_slice(&u16::from(s.authorities).to_be_bytes());
        m.extend_from_slice(&u16::try_from(s.extras.len()).unwrap().to_be_bytes());
        let mut ok = !s.qr && s.opcode == 0 && s.qdcount == 1;
        ok &= s.answers == 0 && s.authorities == 0;
        match &s.name {
            NameForm::Plain(len) => {
                let l = labels(*len, &s.upper);
                ok &= l.len() < MAX_WIRE_NAME;
                m.extend_from_slice(&l);
                m.push(0);
            }
            NameForm::ThenPointer(len, to) => {
                m.extend_from_slice(&labels(*len, &s.upper));
                m.extend_from_slice(&(0xC000 | (to & 0x3FFF)).to_be_bytes());
                ok = false;
            }
            NameForm::Reserved(b) => {
                m.extend_from_slice(&[0x40 | (b & 0x80), 1, b'a', 0]);
                ok = false;
            }
        }
        m.extend_from_slice(&s.qtype.to_be_bytes());
        m.extend_from_slice(&s.qclass.to_be_bytes());
        for i in 0..(u32::from(s.answers) + u32::from(s.authorities)) {
            let rdata = [192, 0, 2, u8::try_from(i % 256).unwrap()];
            m.extend_from_slice(&record(&[0xC0, 12], 1, 1, 60, &rdata));
        }
        let mut opts = 0;
        let mut bad_version = false;
        for e in &s.extras {
            match e {
                Extra::Opt {
                    owner,
                    udp,
                    version,
                    dnssec_ok,
                    options,
                    stray,
                } => {
                    opts += 1;
                    let owner: &[u8] = match owner % 3 {
                        0 => &[0],
                        1 => &[0xC0, 12],
                        _ => &[1, b'x', 0],
                    };
                    ok &= owner == [0];
                    bad_version |= *version != 0;
                    let mut rdata = Vec::new();
                    for (code, data) in options {
                        rdata.extend_from_slice(&code.to_be_bytes());
                        rdata.extend_from_slice(&u16::try_from(data.len()).unwrap().to_be_bytes());
                        rdata.extend_from_slice(data);
                    }
                    let stray = usize::from(stray % 4);
                    rdata.extend(std::iter::repeat_n(0xEE, stray));
                    ok &= stray == 0;
                    let ttl = u32::from(*version) << 16 | if *dnssec_ok { 0x8000 } else { 0 };
                    m.extend_from_slice(&record(owner, TYPE_OPT, *udp, ttl, &rdata));
                }
                Extra::Other { rtype, rdata } => {
                    ok &= *rtype == TYPE_OPT;
                    m.extend_from_slice(&record(&[0], *rtype, 1, 0, rdata));
                }
            }
        }
        ok &= opts <= 1 && !bad_version;
        m.extend_from_slice(&s.trailing);
        (m, ok)
    }

    fn name_form() -> impl Strategy<Value = NameForm> {
        let near_bound = prop_oneof![Just(253usize), Just(254), Just(255), Just(256), Just(257)];
        prop_oneof![
            6 => near_bound.prop_map(NameForm::Plain),
            3 => (1usize..260).prop_map(NameForm::Plain),
            1 => ((1usize..40), any::<u16>()).prop_map(|(l, p)| NameForm::ThenPointer(l, p)),
            1 => (1usize..12).prop_map(|l| NameForm::ThenPointer(l, 12)),
            1 => any::<u8>().prop_map(NameForm::Reserved),
        ]
    }

    fn extra() -> impl Strategy<Value = Extra> {
        let option = (
            prop_oneof![
                Just(10u16),
                Just(12),
                Just(TICKET_OPTION_CODE),
                Just(TOKEN_OPTION_CODE)
            ],
            proptest::collection::vec(any::<u8>(), 0..24),
        );
        let opt = (
            prop_oneof![8 => Just(0u8), 1 => Just(1), 1 => Just(2)],
            any::<u16>(),
            prop_oneof![9 => Just(0u8), 1 => any::<u8>()],
            any::<bool>(),
            proptest::collection::vec(option, 0..3),
            prop_oneof![9 => Just(0u8), 1 => any::<u8>()],
        )
            .prop_map(
                |(owner, udp, version, dnssec_ok, options, stray)| Extra::Opt {
                    owner,
                    udp,
                    version,
                    dnssec_ok,
                    options,
                    stray,
                },
            );
        let other = (
            prop_oneof![Just(1u16), Just(250), Just(24), any::<u16>()],
            proptest::collection::vec(any::<u8>(), 0..8),
        )
            .prop_map(|(rtype, rdata)| Extra::Other { rtype, rdata });
        prop_oneof![6 => opt, 1 => other]
    }

    fn shape() -> impl Strategy<Value = Shape> {
        (
            (
                any::<u16>(),
                prop_oneof![9 => Just(false), 1 => Just(true)],
                prop_oneof![9 => Just(0u8), 1 => 0u8..16],
                any::<bool>(),
                prop_oneof![9 => Just(1u16), 1 => 0u16..3],
                prop_oneof![9 => Just(0u8), 1 => 0u8..3],
                prop_oneof![9 => Just(0u8), 1 => 0u8..3],
            ),
            (
                name_form(),
                proptest::collection::vec(any::<bool>(), 1..8),
                prop_oneof![Just(1u16), Just(28), Just(255), any::<u16>()],
                prop_oneof![Just(1u16), any::<u16>()],
                proptest::collection::vec(extra(), 0..3),
                prop_oneof![9 => Just(Vec::new()), 1 => proptest::collection::vec(any::<u8>(), 1..6)],
            ),
        )
            .prop_map(
                |((id, qr, opcode, cd, qdcount, answers, authorities), rest)| {
                    let (name, upper, qtype, qclass, extras, trailing) = rest;
                    Shape {
                        id,
                        qr,
                        opcode,
                        cd,
                        qdcount,
                        answers,
                        authorities,
                        name,
                        upper,
                        qtype,
                        qclass,
                        extras,
                        trailing,
                    }
                },
            )
    }

    /// Both parsers give the same verdict and, on acceptance, the same question.
    fn agree(m: &[u8]) -> Result<bool, TestCaseError> {
        let edge = parse_query(m);
        let key = CacheKey::from_query(m);
        prop_assert_eq!(
            edge.is_ok(),
            key.is_ok(),
            "edge {:?}, cache {:?}",
            edge,
            key
        );
        if let (Ok(q), Ok((k, id))) = (&edge, &key) {
            prop_assert_eq!(q.id, *id);
            prop_assert_eq!(q.wire_name(), k.qname_wire());
            prop_assert_eq!((q.qtype, q.qclass), (k.qtype(), k.qclass()));
            prop_assert_eq!(q.dnssec_ok(), k.dnssec_ok());
            prop_assert_eq!(q.checking_disabled(), k.checking_disabled());
        }
        Ok(edge.is_ok())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn structured_queries_follow_the_rules(s in shape()) {
            let (m, expected) = build(&s);
            let accepted = agree(&m)?;
            prop_assert_eq!(accepted, expected, "{:02x?}", m);
            if accepted {
                // What the rules accept, a full parse accepts too, with the same question.
                let full = Message::from_vec(&m);
                prop_assert!(full.is_ok(), "hickory refused {:?}", full);
                let full = full.unwrap();
                let q = parse_query(&m).unwrap();
                let fq = &full.queries()[0];
                prop_assert_eq!(fq.name().to_lowercase().to_bytes().unwrap(), q.wire_name());
                prop_assert_eq!(u16::from(fq.query_type()), q.qtype);
                prop_assert_eq!(u16::from(fq.query_class()), q.qclass);
                let full_do = full.extensions().as_ref().is_some_and(|e| e.flags().dnssec_ok);
                prop_assert_eq!(full_do, q.dnssec_ok());
            }
        }

        #[test]
        fn mutated_queries_get_the_same_verdict(
            s in shape(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..5),
            cut in proptest::option::of(any::<prop::sample::Index>()),
        ) {
            let (mut m, _) = build(&s);
            for (at, v) in edits {
                let i = at.index(m.len());
                m[i] = v;
            }
            if let Some(cut) = cut {
                m.truncate(cut.index(m.len() + 1));
            }
            agree(&m)?;
        }

        #[test]
        fn random_bytes_get_the_same_verdict(m in proptest::collection::vec(any::<u8>(), 0..300)) {
            agree(&m)?;
        }
    }

    #[test]
    fn name_bound_is_255_octets_with_the_root() {
        for (len, ok) in [
            (253, true),
            (254, true),
            (255, true),
            (256, false),
            (257, false),
        ] {
            let mut m = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
            let l = labels(len, &[false]);
            m.extend_from_slice(&l);
            m.push(0);
            assert_eq!(l.len() + 1, len);
            m.extend_from_slice(&[0, 1, 0, 1]);
            assert_eq!(parse_query(&m).is_ok(), ok, "{len}");
            assert_eq!(CacheKey::from_query(&m).is_ok(), ok, "{len}");
        }
    }
}
