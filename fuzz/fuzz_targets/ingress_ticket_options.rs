//! EDNS options around toll tickets in the edge's wire code.
//!
//! - Queries: a fixed `a.test. A` query whose OPT record's RDATA is built from the input
//!   (session-ticket (65001), token (65002) and other options, and raw bytes that may be
//!   malformed) goes through `parse_query`: never panics; a token option it reports lies
//!   inside the packet, right after that option's code and length; when the RDATA is a
//!   well-formed option list, the query parses and the token and ticket are the last ones
//!   of the list.
//! - Responses: arbitrary options are appended one after another with `add_edns_option` to a
//!   valid response with an OPT record (optionally followed by a glue record, which is cut):
//!   never panics; a success leaves a response that re-scans with the OPT ending at the new
//!   length and the option as its last bytes; a refusal changes nothing.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tolldns_ingress::wire::{
    ParseError, ResponseWriter, TICKET_OPTION_CODE, TOKEN_OPTION_CODE, TYPE_OPT, add_edns_option,
    parse_query, scan_response,
};

/// `\x01a\x04test\x00`, type A, class IN.
const QUESTION: &[u8] = b"\x01a\x04test\x00\x00\x01\x00\x01";
const HEADER_LEN: usize = 12;
/// An A record owned by the question name (glue after the OPT record).
const GLUE: [u8; 16] = [0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 9];

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    /// OPT CLASS (requestor's UDP payload size) of the query.
    udp_size: u16,
    /// OPT TTL of the query (extended rcode, version, flags); only used when
    /// `raw_ttl` is set, else just the DO bit.
    ttl: u32,
    raw_ttl: bool,
    /// Response shape: an answer record before the OPT, a glue record after it, DO.
    answer: bool,
    glue_after: bool,
    dnssec_ok: bool,
    /// Free bytes in the response buffer beyond the response.
    room: u16,
    /// Options appended to the response, in order.
    options: Vec<(u16, &'a [u8])>,
    /// RDATA of the query's OPT record, piece by piece.
    rdata: Vec<Chunk<'a>>,
}

/// A piece of the query's OPT RDATA.
#[derive(Arbitrary, Debug)]
enum Chunk<'a> {
    /// A session-ticket option with exactly 16 bytes.
    Ticket([u8; 16]),
    /// A session-ticket option with any data (ignored unless 16 bytes).
    Session(&'a [u8]),
    /// A token option.
    Token(&'a [u8]),
    /// Any other option.
    Other(u16, &'a [u8]),
    /// Raw bytes: possibly a truncated or malformed option.
    Raw(&'a [u8]),
}

/// What `parse_query` must report for an RDATA that is a well-formed option list.
struct Expected {
    well_formed: bool,
    /// Offset of the last token option's data in the RDATA, and its length.
    token: Option<(usize, usize)>,
    /// The last session-ticket option: `Some` when it has 16 bytes.
    ticket: Option<Option<[u8; 16]>>,
}

fn option(out: &mut Vec<u8>, code: u16, data: &[u8]) -> usize {
    let data = &data[..data.len().min(usize::from(u16::MAX))];
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(&u16::try_from(data.len()).unwrap_or(u16::MAX).to_be_bytes());
    let at = out.len();
    out.extend_from_slice(data);
    at
}

fn rdata(chunks: &[Chunk<'_>]) -> (Vec<u8>, Expected) {
    let mut out = Vec::new();
    let mut expected = Expected {
        well_formed: true,
        token: None,
        ticket: None,
    };
    for chunk in chunks {
        let (code, data) = match chunk {
            Chunk::Ticket(t) => (TICKET_OPTION_CODE, t.as_slice()),
            Chunk::Session(data) => (TICKET_OPTION_CODE, *data),
            Chunk::Token(data) => (TOKEN_OPTION_CODE, *data),
            Chunk::Other(code, data) => (*code, *data),
            Chunk::Raw(bytes) => {
                out.extend_from_slice(bytes);
                expected.well_formed &= bytes.is_empty();
                continue;
            }
        };
        expected.well_formed &= data.len() <= usize::from(u16::MAX);
        let at = option(&mut out, code, data);
        match code {
            TICKET_OPTION_CODE => expected.ticket = Some(<[u8; 16]>::try_from(data).ok()),
            TOKEN_OPTION_CODE => expected.token = Some((at, data.len())),
            _ => {}
        }
    }
    expected.well_formed &= out.len() <= usize::from(u16::MAX);
    (out, expected)
}

fn u16_at(buf: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([buf[at], buf[at + 1]])
}

fn check_query(input: &Input<'_>) {
    let (rdata, expected) = rdata(&input.rdata);
    let rdlen = u16::try_from(rdata.len()).unwrap_or(u16::MAX);
    let rdata = &rdata[..usize::from(rdlen)];
    let mut packet = Vec::with_capacity(HEADER_LEN + QUESTION.len() + 11 + rdata.len());
    // ID 0x1234, RD, one question, one additional record.
    packet.extend_from_slice(&[0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1]);
    packet.extend_from_slice(QUESTION);
    let ttl = if input.raw_ttl {
        input.ttl
    } else {
        u32::from(input.dnssec_ok) << 15
    };
    packet.extend_from_slice(&[0]);
    packet.extend_from_slice(&TYPE_OPT.to_be_bytes());
    packet.extend_from_slice(&input.udp_size.to_be_bytes());
    packet.extend_from_slice(&ttl.to_be_bytes());
    packet.extend_from_slice(&rdlen.to_be_bytes());
    packet.extend_from_slice(rdata);

    let rdata_start = HEADER_LEN + QUESTION.len() + 11;
    let parsed = parse_query(&packet);
    let version = ((ttl >> 16) & 0xFF) as u8;
    if expected.well_formed && version != 0 {
        assert!(
            matches!(parsed, Err(ParseError::BadVersion(v)) if v == version),
            "EDNS version {version} not refused: {parsed:?}"
        );
    }
    let q = match parsed {
        Ok(q) => q,
        Err(e) => {
            assert!(
                !expected.well_formed || version != 0,
                "a well-formed query is refused: {e:?}"
            );
            return;
        }
    };
    if expected.well_formed {
        assert_eq!(
            q.token.map(|(at, len)| (usize::from(at), usize::from(len))),
            expected.token.map(|(at, len)| (rdata_start + at, len)),
            "token option not reported where it is"
        );
        assert_eq!(q.ticket, expected.ticket.flatten(), "wrong session ticket");
    }
    assert_eq!(q.id, 0x1234);
    assert_eq!(q.wire_name(), b"\x01a\x04test\x00");
    assert_eq!(q.question_end, HEADER_LEN + QUESTION.len());
    let edns = q.edns.expect("the OPT record is read");
    assert!(edns.udp_size >= 512);
    if let Some((at, len)) = q.token {
        let (at, len) = (usize::from(at), usize::from(len));
        assert!(at >= rdata_start + 4, "token data before the OPT RDATA");
        let end = at.checked_add(len).expect("no overflow");
        assert!(end <= packet.len(), "token data outside the packet");
        assert_eq!(u16_at(&packet, at - 4), TOKEN_OPTION_CODE);
        assert_eq!(usize::from(u16_at(&packet, at - 2)), len);
    }
    if let Some(ticket) = q.ticket {
        assert!(
            packet
                .windows(20)
                .any(|w| w[..2] == TICKET_OPTION_CODE.to_be_bytes()
                    && w[2..4] == [0, 16]
                    && w[4..] == ticket),
            "a ticket not carried by a 16-byte session option"
        );
    }
}

fn check_response(input: &Input<'_>) {
    let mut base = [0u8; 512];
    let mut w = ResponseWriter::new(&mut base, 0x1234, 0x0100, Some(QUESTION), 0)
        .expect("room for the question");
    if input.answer {
        w.rfc8482_answer(60).expect("room for the answer");
    }
    w.opt(1232, 0, input.dnssec_ok).expect("room for the OPT");
    let mut len = w.finish();
    if input.glue_after {
        base[len..len + GLUE.len()].copy_from_slice(&GLUE);
        len += GLUE.len();
        base[11] += 1;
    }
    let mut buf = base[..len].to_vec();
    buf.resize(len + usize::from(input.room % 4096), 0);
    // ARCOUNT once the glue after the OPT record is cut: the OPT record alone.
    let opt_arcount = u16_at(&buf, 10) - u16::from(input.glue_after);

    for &(code, data) in input.options.iter().take(16) {
        let info = scan_response(&mut buf[..len].to_vec(), None).expect("a valid response");
        let opt = info.opt.expect("an OPT record");
        let snapshot = buf.clone();
        match add_edns_option(&mut buf, len, code, data) {
            Some(n) => {
                assert_eq!(n, opt.end + 4 + data.len());
                assert!(n <= buf.len());
                let after = scan_response(&mut buf[..n].to_vec(), None)
                    .expect("the response re-scans after adding an option");
                let new_opt = after.opt.expect("the OPT record is still there");
                assert_eq!(new_opt.start, opt.start);
                assert_eq!(new_opt.end, n, "the OPT record ends the response");
                assert_eq!(new_opt.records_after, 0);
                assert_eq!(u16_at(&buf, 10), opt_arcount);
                assert_eq!(u16_at(&buf, opt.end), code);
                assert_eq!(usize::from(u16_at(&buf, opt.end + 2)), data.len());
                assert_eq!(&buf[opt.end + 4..n], data);
                assert_eq!(
                    usize::from(u16_at(&buf, opt.start + 9)),
                    n - (opt.start + 11),
                    "RDLENGTH covers every option"
                );
                // Apart from ARCOUNT and the OPT's RDLENGTH, what precedes the option is kept.
                let mut kept = buf[..opt.end].to_vec();
                kept[10..12].copy_from_slice(&snapshot[10..12]);
                kept[opt.start + 9..opt.start + 11]
                    .copy_from_slice(&snapshot[opt.start + 9..opt.start + 11]);
                assert_eq!(kept, snapshot[..opt.end], "bytes before the option changed");
                len = n;
            }
            None => assert_eq!(buf, snapshot, "a refused option changed the response"),
        }
    }
}

fuzz_target!(|input: Input<'_>| {
    check_query(&input);
    check_response(&input);
});
