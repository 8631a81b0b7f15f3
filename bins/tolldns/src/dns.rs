//! DNS messages of `tolldns query`, sans I/O: the query (hickory-proto `Message`, `Query`,
//! `Edns`) with its toll-ticket EDNS option, and what a response says (rcode, answers,
//! RFC 8914 extended errors, the session ticket option). The options are those of
//! [`tolldns_tickets::protocol`].

use std::str::FromStr as _;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{Name, RecordType};
use tolldns_tickets::SESSION_TICKET_LEN;
use tolldns_tickets::protocol::{EDE_OPTION_CODE, SESSION_OPTION_CODE, TOKEN_OPTION_CODE};

use crate::error::CliError;

/// The EDNS UDP payload size queries advertise (the DNS flag day 2020 value).
pub(crate) const EDNS_PAYLOAD: u16 = 1232;

/// What a query carries to pay for itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Credential {
    /// Nothing.
    None,
    /// A token (its encoded bytes), presented once.
    Token(Vec<u8>),
    /// A session ticket the edge handed out.
    Session([u8; SESSION_TICKET_LEN]),
}

/// Parses the query name (IDNA applied, made fully qualified).
pub(crate) fn parse_name(text: &str) -> Result<Name, CliError> {
    let mut name = Name::from_utf8(text)
        .map_err(|e| CliError::field("NAME", format!("{text:?} is not a domain name: {e}")))?;
    name.set_fqdn(true);
    Ok(name)
}

/// Parses a record type: a mnemonic (any case), `TYPEnnn` or a number.
pub(crate) fn parse_type(text: &str) -> Result<RecordType, CliError> {
    let upper = text.to_ascii_uppercase();
    let number = upper.strip_prefix("TYPE").unwrap_or(&upper);
    if let Ok(n) = number.parse::<u16>() {
        return Ok(RecordType::from(n));
    }
    match RecordType::from_str(&upper) {
        Ok(RecordType::Unknown(_)) | Err(_) => Err(CliError::field(
            "TYPE",
            format!("{text:?} is not a record type (a mnemonic such as AAAA, or a number)"),
        )),
        Ok(t) => Ok(t),
    }
}

/// The wire bytes of a recursive query for `name`/`rtype` with id `id`, an OPT record
/// advertising [`EDNS_PAYLOAD`] and, for a credential, its option: [`TOKEN_OPTION_CODE`] with
/// the token or [`SESSION_OPTION_CODE`] with the session ticket.
pub(crate) fn query_bytes(
    id: u16,
    name: &Name,
    rtype: RecordType,
    credential: &Credential,
) -> Result<Vec<u8>, CliError> {
    let mut message = Message::new();
    message
        .set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .add_query(Query::query(name.clone(), rtype));
    let mut edns = Edns::new();
    edns.set_max_payload(EDNS_PAYLOAD).set_version(0);
    match credential {
        Credential::None => {}
        Credential::Token(bytes) => edns
            .options_mut()
            .insert(EdnsOption::Unknown(TOKEN_OPTION_CODE, bytes.clone())),
        Credential::Session(ticket) => edns
            .options_mut()
            .insert(EdnsOption::Unknown(SESSION_OPTION_CODE, ticket.to_vec())),
    }
    message.set_edns(edns);
    message
        .to_vec()
        .map_err(|e| CliError::field("NAME", format!("the query does not encode: {e}")))
}

/// What a DNS response says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    /// The response code (extended by the OPT record's high bits).
    pub(crate) rcode: ResponseCode,
    /// The TC bit.
    pub(crate) truncated: bool,
    /// The answer section, one record per string (`name ttl class type rdata`).
    pub(crate) records: Vec<String>,
    /// RFC 8914 extended errors: info code and extra text (control characters escaped).
    pub(crate) ede: Vec<(u16, String)>,
    /// The session ticket option, when present.
    pub(crate) session: Option<[u8; SESSION_TICKET_LEN]>,
}

impl Answer {
    /// Whether the server refused the query.
    pub(crate) fn refused(&self) -> bool {
        self.rcode == ResponseCode::Refused
    }
}

/// The RFC 1035 / RFC 6895 mnemonic of a response code (`NOERROR`, `REFUSED`, …), or
/// `RCODE<n>`.
pub(crate) fn rcode_name(rcode: ResponseCode) -> String {
    let n = u16::from(rcode);
    let name = match n {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        16 => "BADVERS",
        23 => "BADCOOKIE",
        _ => return format!("RCODE{n}"),
    };
    name.to_owned()
}

/// Reads a response to the query with id `id` (`None`: any id, as DoH queries carry 0 and
/// the HTTP exchange pairs them).
///
/// # Errors
///
/// A message that does not parse, is not a response, or answers another id.
pub(crate) fn parse_response(bytes: &[u8], id: Option<u16>) -> anyhow::Result<Answer> {
    let message = Message::from_vec(bytes)
        .map_err(|e| anyhow::anyhow!("the response is not a DNS message: {e}"))?;
    if message.message_type() != MessageType::Response {
        anyhow::bail!("the server sent a query, not a response");
    }
    if let Some(id) = id {
        if message.id() != id {
            anyhow::bail!("the response has id {}, the query {id}", message.id());
        }
    }
    let mut ede = Vec::new();
    let mut session = None;
    if let Some(edns) = message.extensions() {
        for option in edns.options().get_all(EdnsCode::from(EDE_OPTION_CODE)) {
            if let EdnsOption::Unknown(_, data) = option {
                let code = data
                    .get(..2)
                    .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
                let text = String::from_utf8_lossy(data.get(2..).unwrap_or(&[]));
                ede.push((code, crate::printable(&text)));
            }
        }
        if let Some(EdnsOption::Unknown(_, data)) =
            edns.options().get(EdnsCode::from(SESSION_OPTION_CODE))
        {
            session = <[u8; SESSION_TICKET_LEN]>::try_from(data.as_slice()).ok();
        }
    }
    Ok(Answer {
        rcode: message.response_code(),
        truncated: message.truncated(),
        records: message.answers().iter().map(ToString::to_string).collect(),
        ede,
        session,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::{RData, Record, rdata::A};
    use tolldns_tickets::protocol::{EDE_INFO_PROHIBITED, ede_data};

    #[test]
    fn names_and_types_parse() {
        assert_eq!(
            parse_name("example.com").unwrap().to_string(),
            "example.com."
        );
        assert!(parse_name("a..b").is_err());
        assert_eq!(parse_type("aaaa").unwrap(), RecordType::AAAA);
        assert_eq!(parse_type("TYPE65").unwrap(), RecordType::HTTPS);
        assert_eq!(parse_type("1").unwrap(), RecordType::A);
        assert!(parse_type("NOPE").is_err());
    }

    #[test]
    fn credentials_ride_in_their_options() {
        let name = parse_name("example.com").unwrap();
        for (credential, code) in [
            (Credential::Token(vec![7; 354]), Some(TOKEN_OPTION_CODE)),
            (Credential::Session([9; 16]), Some(SESSION_OPTION_CODE)),
            (Credential::None, None),
        ] {
            let bytes = query_bytes(42, &name, RecordType::A, &credential).unwrap();
            let m = Message::from_vec(&bytes).unwrap();
            assert_eq!(m.id(), 42);
            assert!(m.recursion_desired());
            let edns = m.extensions().as_ref().unwrap();
            assert_eq!(edns.max_payload(), EDNS_PAYLOAD);
            let options: Vec<_> = edns.options().as_ref().iter().collect();
            match code {
                None => assert!(options.is_empty()),
                Some(code) => {
                    let Some(EdnsOption::Unknown(c, data)) =
                        edns.options().get(EdnsCode::from(code))
                    else {
                        panic!("no option {code}");
                    };
                    assert_eq!(*c, code);
                    match &credential {
                        Credential::Token(t) => assert_eq!(data, t),
                        Credential::Session(s) => assert_eq!(data, s),
                        Credential::None => unreachable!(),
                    }
                }
            }
        }
    }

    #[test]
    fn responses_yield_rcode_answers_ede_and_session() {
        let name = parse_name("example.com").unwrap();
        let mut m = Message::new();
        m.set_id(5)
            .set_message_type(MessageType::Response)
            .set_response_code(ResponseCode::Refused)
            .add_query(Query::query(name.clone(), RecordType::A));
        let mut edns = Edns::new();
        edns.options_mut().insert(EdnsOption::Unknown(
            EDE_OPTION_CODE,
            ede_data(EDE_INFO_PROHIBITED, "toll ticket refused: replayed\n"),
        ));
        m.set_edns(edns);
        let a = parse_response(&m.to_vec().unwrap(), Some(5)).unwrap();
        assert!(a.refused());
        assert_eq!(rcode_name(a.rcode), "REFUSED");
        assert_eq!(rcode_name(ResponseCode::from(0, 12)), "RCODE12");
        assert_eq!(a.ede, [(18, "toll ticket refused: replayed\\n".to_owned())]);
        assert_eq!(a.session, None);
        assert!(parse_response(&m.to_vec().unwrap(), Some(6)).is_err());

        m.set_response_code(ResponseCode::NoError);
        m.add_answer(Record::from_rdata(
            name,
            300,
            RData::A(A::new(192, 0, 2, 1)),
        ));
        let mut edns = Edns::new();
        edns.options_mut()
            .insert(EdnsOption::Unknown(SESSION_OPTION_CODE, vec![0xab; 16]));
        m.set_edns(edns);
        let a = parse_response(&m.to_vec().unwrap(), None).unwrap();
        assert!(!a.refused());
        assert_eq!(a.records, ["example.com. 300 IN A 192.0.2.1"]);
        assert_eq!(a.session, Some([0xab; 16]));
        assert!(parse_response(b"\x00\x05", None).is_err());
    }
}
