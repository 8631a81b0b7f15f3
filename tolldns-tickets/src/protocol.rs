//! How tickets travel with DNS queries: the EDNS options of UDP, TCP and DoT, and the HTTP
//! headers of DoH. Byte-exact in `docs/TICKETS.md`.
//!
//! - A client presents a token once: EDNS option [`TOKEN_OPTION_CODE`] whose data is the
//!   encoded [`crate::Token`], or over DoH `Authorization: PrivateToken token="…"`.
//! - The edge answers with a session ticket: EDNS option [`SESSION_OPTION_CODE`] (16 bytes)
//!   in the response's OPT record, or over DoH the [`SESSION_HEADER`] response header
//!   (base64url, no padding).
//! - Later queries carry the session ticket: EDNS option [`SESSION_OPTION_CODE`], or over DoH
//!   the [`TICKET_HEADER`] request header (32 hex digits or base64/base64url).
//! - A refusal: `REFUSED` with an RFC 8914 extended error ([`EDE_OPTION_CODE`], info code
//!   [`EDE_INFO_PROHIBITED`], EXTRA-TEXT `toll ticket refused: <reason>`), or over DoH a
//!   `401` with a `WWW-Authenticate: PrivateToken …` challenge and the same text as body.
//!
//! The edge sends a session option again whenever the session's ticket changes (after a
//! session key rotation); clients keep the last one they received.

/// EDNS option (local/experimental range, RFC 6891 §9) carrying a 16-byte session ticket,
/// in queries and in responses.
pub const SESSION_OPTION_CODE: u16 = 65001;
/// EDNS option (local/experimental range) carrying a whole token, in queries only.
pub const TOKEN_OPTION_CODE: u16 = 65002;
/// RFC 8914 Extended DNS Error option code.
pub const EDE_OPTION_CODE: u16 = 15;
/// RFC 8914 INFO-CODE used for ticket refusals: 18, "Prohibited".
pub const EDE_INFO_PROHIBITED: u16 = 18;
/// DoH response header returning a session ticket.
pub const SESSION_HEADER: &str = "tolldns-session";
/// DoH request header carrying a session ticket.
pub const TICKET_HEADER: &str = "tolldns-ticket";

/// An EDNS option: `code (2) || length (2) || data`.
pub fn edns_option(code: u16, data: &[u8]) -> Vec<u8> {
    let len = u16::try_from(data.len()).unwrap_or(u16::MAX);
    let mut out = Vec::with_capacity(4 + data.len());
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(data.get(..usize::from(len)).unwrap_or(data));
    out
}

/// The data of an RFC 8914 extended error option: `info_code (2) || extra_text`.
pub fn ede_data(info_code: u16, extra_text: &str) -> Vec<u8> {
    let mut out = info_code.to_be_bytes().to_vec();
    out.extend_from_slice(extra_text.as_bytes());
    out
}
