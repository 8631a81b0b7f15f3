//! Toll tickets end to end: a token from an issuer made in the test is redeemed over UDP (EDNS
//! option 65002) for a session ticket (option 65001) that pays for a later query; the token
//! presented again is refused as replayed; the audit API serves the token behind the leaves'
//! ticket id; after kill -9 and a restart on the same data directory the token is still
//! refused as replayed.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use base64::Engine as _;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{Name, RData, RecordType};
use tolldns_tickets::protocol::{EDE_OPTION_CODE, SESSION_OPTION_CODE, TOKEN_OPTION_CODE};
use tolldns_tickets::{IssuerSecretKey, TokenChallenge};

use crate::support::{ANSWER, Miner, Upstream, http, metric, temp_dir, write_config};

const ISSUER_NAME: &str = "issuer.tickets.test";
const DEPLOYMENT: &str = "tolldns-miner-it";

/// A token for the deployment's challenge, issued by `issuer`.
fn issue_token(issuer: &IssuerSecretKey) -> Vec<u8> {
    let challenge = TokenChallenge::deployment(ISSUER_NAME, DEPLOYMENT);
    let (request, pending) = tolldns_tickets::client::request(issuer.public(), &challenge).unwrap();
    let response = issuer.issue(&request).unwrap();
    pending
        .finalize(issuer.public(), &response)
        .unwrap()
        .to_bytes()
}

/// An A query for `www.example.test` carrying one EDNS option.
fn query_with(id: u16, option: EdnsOption) -> Vec<u8> {
    let mut m = Message::new();
    m.set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .add_query(Query::query(
            Name::from_ascii("www.example.test.").unwrap(),
            RecordType::A,
        ));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    edns.options_mut().insert(option);
    m.set_edns(edns);
    m.to_vec().unwrap()
}

/// Sends a query and returns the response with the same id.
fn ask(socket: &UdpSocket, server: SocketAddr, query: &[u8]) -> Message {
    socket.send_to(query, server).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        let (n, _) = socket
            .recv_from(&mut buf)
            .expect("no answer from the miner");
        let m = Message::from_vec(&buf[..n]).unwrap();
        if m.id().to_be_bytes() == query[..2] {
            return m;
        }
    }
}

/// The data of an EDNS option of a response.
fn option(m: &Message, code: u16) -> Option<Vec<u8>> {
    match m.extensions().as_ref()?.option(EdnsCode::from(code))? {
        EdnsOption::Unknown(_, data) => Some(data.clone()),
        _ => None,
    }
}

fn answers_a(m: &Message) -> bool {
    m.response_code() == ResponseCode::NoError
        && m.answers()
            .iter()
            .any(|r| matches!(r.data(), RData::A(a) if a.0 == ANSWER))
}

/// Presents `token` again and checks the refusal: `REFUSED` with an RFC 8914 extended error
/// whose text is `toll ticket refused: replayed`.
fn assert_replay_refused(socket: &UdpSocket, server: SocketAddr, id: u16, token: &[u8]) {
    let m = ask(
        socket,
        server,
        &query_with(id, EdnsOption::Unknown(TOKEN_OPTION_CODE, token.to_vec())),
    );
    assert_eq!(m.response_code(), ResponseCode::Refused, "{m:?}");
    let ede = option(&m, EDE_OPTION_CODE).expect("no extended DNS error");
    assert!(ede.len() >= 2, "{ede:?}");
    assert_eq!(
        std::str::from_utf8(&ede[2..]).unwrap(),
        "toll ticket refused: replayed"
    );
    assert!(option(&m, SESSION_OPTION_CODE).is_none());
}

/// Polls `GET path` until it answers 200 (the token writer journals asynchronously).
fn get_200(miner: &Miner, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = miner.audited(path);
        if status == 200 {
            return body;
        }
        assert!(Instant::now() < deadline, "{path}: {status} {body}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn token_redeemed_audited_and_refused_after_restart() {
    let dir = temp_dir("tickets");
    let upstream = Upstream::start();
    let issuer = IssuerSecretKey::generate(2048).unwrap();
    let spki = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(issuer.public().spki());
    let config = write_config(
        &dir,
        upstream.addr(),
        &format!(
            "[api]\nlisten = \"127.0.0.1:0\"\n\n[tickets]\nudp = \"optional\"\n\
             issuer_name = \"{ISSUER_NAME}\"\ndeployment = \"{DEPLOYMENT}\"\n\
             issuer_keys = [\"{spki}\"]\nqueries_per_token = 10\n"
        ),
    );
    let token = issue_token(&issuer);
    let ticket_id = tolldns_tickets::ticket_id(&token);

    let mut miner = Miner::spawn(&config);
    let udp = miner.addr("udp");
    let api = miner.api();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();

    // Redeem: answered, with a 16-byte session ticket.
    let m = ask(
        &socket,
        udp,
        &query_with(1, EdnsOption::Unknown(TOKEN_OPTION_CODE, token.clone())),
    );
    assert!(answers_a(&m), "{m:?}\n{}", miner.output());
    let session = option(&m, SESSION_OPTION_CODE).expect("no session ticket in the answer");
    assert_eq!(session.len(), 16);

    // The session ticket pays for the next query.
    let m = ask(
        &socket,
        udp,
        &query_with(2, EdnsOption::Unknown(SESSION_OPTION_CODE, session)),
    );
    assert!(answers_a(&m), "{m:?}");

    // The token again: refused as replayed.
    assert_replay_refused(&socket, udp, 3, &token);

    // The audit API serves the token behind the ticket id.
    let id_hex = hex::encode(ticket_id);
    let body = get_200(&miner, &format!("/v1/tokens/{id_hex}"));
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["ticket_id"], id_hex.as_str());
    let served = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(v["token"].as_str().unwrap())
        .unwrap();
    assert_eq!(served, token);
    assert_eq!(tolldns_tickets::ticket_id(&served), ticket_id);
    let window = v["window_id"].as_u64().unwrap();
    let redeemed_ms = v["redeemed_ms"].as_u64().unwrap();
    assert_eq!(redeemed_ms / 2_000, window, "2 s windows");
    assert_eq!(
        miner.audited(&format!("/v1/tokens/{}", "00".repeat(16))).0,
        404
    );
    assert_eq!(miner.audited("/v1/tokens/not-hex").0, 400);
    assert_eq!(
        miner.audited(&format!("/v1/tokens/{}", &id_hex[..30])).0,
        400
    );
    // Tokens are for auditors only.
    assert_eq!(
        http(api, "GET", &format!("/v1/tokens/{id_hex}"), None).0,
        401
    );

    // The leaves of the ticketed queries carry that ticket id.
    assert!(
        miner.wait_signed(Duration::from_secs(20), |b| b
            .iter()
            .map(|x| x.2)
            .sum::<u64>()
            >= 2),
        "{}",
        miner.output()
    );
    let mut ticketed = 0;
    for (id, _, leaves) in miner.signed() {
        let (status, proofs) = miner.audited(&format!(
            "/v1/batches/{id}/audit?seed={}&k={leaves}",
            hex::encode([5u8; 32])
        ));
        assert_eq!(status, 200, "{proofs}");
        let in_audit = crate::verify::parse_answers(&proofs)
            .iter()
            .filter(|a| a.leaf.leaf.ticket == ticket_id)
            .count();
        // The ticket lookup returns the same leaves, each proved against the receipt.
        let (status, receipt_json) = http(api, "GET", &format!("/v1/batches/{id}"), None);
        assert_eq!(status, 200);
        let receipt = tolldns_receipts::Receipt::from_json(&receipt_json).unwrap();
        let (status, lookup) = miner.audited(&format!(
            "/v1/batches/{id}/ticket/{}",
            hex::encode(ticket_id)
        ));
        assert_eq!(status, 200, "{lookup}");
        let found = tolldns_receipts::verify_ticket_leaves(
            &receipt,
            &ticket_id,
            &crate::verify::parse_proofs(&lookup),
            u64::MAX,
        )
        .unwrap();
        assert_eq!(found, in_audit as u64);
        ticketed += in_audit;
    }
    assert!(ticketed >= 2, "{ticketed} ticketed leaves");

    let (_, metrics) = http(api, "GET", "/metrics", None);
    assert!(metric(&metrics, "tolldns_journal_tokens").unwrap() >= 1);
    assert!(metric(&metrics, "tolldns_journal_redeemed_tickets").unwrap() >= 1);

    // kill -9, restart on the same data directory: the token stays redeemed.
    miner.kill9();
    let mut miner = Miner::spawn(&config);
    assert_replay_refused(&socket, miner.addr("udp"), 4, &token);
    assert_eq!(
        get_200(&miner, &format!("/v1/tokens/{id_hex}")),
        body,
        "the token is still served after the restart"
    );
    // A fresh token from the same issuer is still redeemed.
    let fresh = issue_token(&issuer);
    let m = ask(
        &socket,
        miner.addr("udp"),
        &query_with(5, EdnsOption::Unknown(TOKEN_OPTION_CODE, fresh)),
    );
    assert!(answers_a(&m), "{m:?}");
    assert_eq!(option(&m, SESSION_OPTION_CODE).map(|s| s.len()), Some(16));
    assert!(miner.terminate().success(), "{}", miner.output());
    let _ = std::fs::remove_dir_all(dir);
}
