//! Sans-IO part of the upstream exchange: building the query and checking the response against
//! the question before anything may be cached.

use hickory_proto::ProtoError;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RecordType};

/// The question the edge forwards, with the DNSSEC-related client flags to copy upstream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Question {
    /// Query name (treated as fully qualified).
    pub name: Name,
    /// Query type.
    pub qtype: RecordType,
    /// Query class (normally IN).
    pub qclass: DNSClass,
    /// EDNS DO bit of the client's query, copied to the upstream query.
    pub dnssec_ok: bool,
    /// CD bit of the client's query, copied to the upstream query.
    pub checking_disabled: bool,
}

impl Question {
    /// An IN-class question without DO or CD.
    pub fn new(name: Name, qtype: RecordType) -> Self {
        Self {
            name,
            qtype,
            qclass: DNSClass::IN,
            dnssec_ok: false,
            checking_disabled: false,
        }
    }

    /// The question of a parsed client query: its first question, its CD bit and EDNS DO bit.
    /// `None` if the message carries no question.
    pub fn from_message(msg: &Message) -> Option<Self> {
        let q = msg.queries().first()?;
        Some(Self {
            name: q.name().clone(),
            qtype: q.query_type(),
            qclass: q.query_class(),
            dnssec_ok: msg
                .extensions()
                .as_ref()
                .is_some_and(|e| e.flags().dnssec_ok),
            checking_disabled: msg.checking_disabled(),
        })
    }

    pub(crate) fn fqdn(&self) -> Name {
        let mut name = self.name.clone();
        name.set_fqdn(true);
        name
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
    /// The query could not be encoded.
    #[error("query encoding failed: {0}")]
    Encode(#[from] ProtoError),
}

impl AttemptError {
    /// Errors that an off-path sender could cause by spraying datagrams: on UDP, such responses
    /// are dropped and the socket keeps waiting for the real one.
    pub(crate) fn is_spoofable(&self) -> bool {
        matches!(self, Self::Malformed | Self::Mismatch(_))
    }
}

/// Encodes the upstream query: the given ID, RD=1, CD copied, EDNS with DO copied and the given
/// UDP payload size.
pub(crate) fn build_query(q: &Question, id: u16, edns_payload: u16) -> Result<Vec<u8>, ProtoError> {
    let mut msg = Message::new();
    msg.set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .set_checking_disabled(q.checking_disabled);
    let mut query = Query::query(q.fqdn(), q.qtype);
    query.set_query_class(q.qclass);
    msg.add_query(query);
    let mut edns = Edns::new();
    edns.set_max_payload(edns_payload.max(512))
        .set_version(0)
        .set_dnssec_ok(q.dnssec_ok);
    msg.set_edns(edns);
    msg.to_vec()
}

/// A response that passed [`check_response`].
#[derive(Debug)]
pub(crate) struct Checked {
    pub(crate) message: Message,
}

impl Checked {
    pub(crate) fn truncated(&self) -> bool {
        self.message.truncated()
    }
}

/// Checks a wire response against the query: ID, QR, opcode, the question section (name compared
/// case-insensitively, type, class), usable RCODE, truncation on streams and that answer records
/// belong to the query name or its alias chain.
pub(crate) fn check_response(
    wire: &[u8],
    id: u16,
    q: &Question,
    stream: bool,
) -> Result<Checked, AttemptError> {
    let message = Message::from_vec(wire).map_err(|_| AttemptError::Malformed)?;
    if message.id() != id {
        return Err(AttemptError::Mismatch(Mismatch::Id));
    }
    if message.message_type() != MessageType::Response {
        return Err(AttemptError::Mismatch(Mismatch::NotResponse));
    }
    if message.op_code() != OpCode::Query {
        return Err(AttemptError::Mismatch(Mismatch::Opcode));
    }
    let qname = q.fqdn();
    match message.queries() {
        [only]
            if only.query_type() == q.qtype
                && only.query_class() == q.qclass
                && only.name().to_lowercase().eq_case(&qname.to_lowercase()) => {}
        _ => return Err(AttemptError::Mismatch(Mismatch::Question)),
    }
    if message.truncated() {
        if stream {
            return Err(AttemptError::Truncated);
        }
        // A truncated UDP answer is only a signal to retry over TCP; its sections are not used.
        return Ok(Checked { message });
    }
    match message.response_code() {
        ResponseCode::NoError | ResponseCode::NXDomain => {}
        other => return Err(AttemptError::Rcode(u16::from(other))),
    }
    check_answer_chain(&message, &qname)?;
    Ok(Checked { message })
}

/// DNAME record type (RFC 6672).
const DNAME_TYPE: u16 = 39;

/// Every answer record must be owned by the query name, by a CNAME target reached from it, or be
/// a DNAME at an ancestor of a name on the chain.
fn check_answer_chain(message: &Message, qname: &Name) -> Result<(), AttemptError> {
    let answers = message.answers();
    let mut chain: Vec<Name> = vec![qname.to_lowercase()];
    // Follow CNAMEs in any order; a chain longer than the answer section cannot exist.
    for _ in 0..answers.len() {
        let mut grew = false;
        for rec in answers {
            if let Some(cname) = rec.data().as_cname() {
                let owner = rec.name().to_lowercase();
                let target = cname.0.to_lowercase();
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
            || (u16::from(rec.record_type()) == DNAME_TYPE
                && chain.iter().any(|n| owner.zone_of(n)));
        if !related {
            return Err(AttemptError::Mismatch(Mismatch::UnrelatedAnswer));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, CNAME};
    use hickory_proto::rr::{RData, Record};
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
        let wire = build_query(&q, 0xbeef, 1232).unwrap();
        let m = Message::from_vec(&wire).unwrap();
        assert_eq!(m.id(), 0xbeef);
        assert!(m.recursion_desired());
        assert!(m.checking_disabled());
        let edns = m.extensions().as_ref().unwrap();
        assert!(edns.flags().dnssec_ok);
        assert_eq!(edns.max_payload(), 1232);
        assert_eq!(
            Question::from_message(&m).unwrap().name,
            name("Example.test.")
        );
    }

    #[test]
    fn checks_id_qr_question_and_chain() {
        let q = Question::new(name("www.test."), RecordType::A);
        let wire = build_query(&q, 7, 1232).unwrap();
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
}
