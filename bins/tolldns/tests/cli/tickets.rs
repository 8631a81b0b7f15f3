//! `ticket fetch` against an in-test issuer (`tolldns_tickets::IssuerService` behind a minimal
//! hyper server on 127.0.0.1:0, paid by [`TestPayments`]), `ticket show`, and `query` over
//! UDP, TCP, DoT and DoH against [`EdgeDouble`], a stand-in edge that redeems each token once
//! and hands out one session ticket (the real edge path is tested in tolldns-ingress).

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use hickory_proto::op::{Edns, Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{RData, Record};
use http_body_util::{BodyExt as _, Full};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, UdpSocket};
use tolldns::tokens::{StoredToken, Tokens};
use tolldns_tickets::protocol::{
    EDE_INFO_PROHIBITED, EDE_OPTION_CODE, SESSION_HEADER, SESSION_OPTION_CODE, TICKET_HEADER,
    TOKEN_OPTION_CODE, ede_data,
};
use tolldns_tickets::{
    AcceptedKey, DIRECTORY_PATH, ISSUE_PATH, IssuerSecretKey, IssuerService, IssuingKey,
    PURCHASE_HEADER, PaymentCheck, PaymentError, TokenChallenge, TokenVerifier, client,
};

use super::{assert_exit, scratch_dir, stderr_of, stdout_of, tolldns};

const ISSUER_NAME: &str = "issuer.test";
const DEPLOYMENT: &str = "tolldns-test";
/// The session ticket [`EdgeDouble`] hands out.
const SESSION: [u8; 16] = [0x5e; 16];

/// Payments double: one wallet bought `quota` tokens; nobody else bought any.
struct TestPayments {
    wallet: [u8; 32],
    remaining: Mutex<u32>,
}

impl PaymentCheck for TestPayments {
    fn debit(&self, buyer: &[u8; 32], tokens: u32) -> Result<(), PaymentError> {
        if *buyer != self.wallet {
            return Err(PaymentError::NoPurchase);
        }
        let mut left = self.remaining.lock().unwrap();
        *left = left.checked_sub(tokens).ok_or(PaymentError::Exhausted)?;
        Ok(())
    }

    fn refund(&self, buyer: &[u8; 32], tokens: u32) {
        if *buyer == self.wallet {
            *self.remaining.lock().unwrap() += tokens;
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

fn text_reply(status: u16, content_type: &str, body: Vec<u8>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

/// Serves `service` over HTTP/1.1 on 127.0.0.1; returns its address.
fn serve_issuer(rt: &tokio::runtime::Runtime, service: IssuerService) -> SocketAddr {
    let service = Arc::new(service);
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let service = Arc::clone(&service);
            tokio::spawn(async move {
                let handler =
                    hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let service = Arc::clone(&service);
                        async move {
                            let header = |name: &str| {
                                req.headers()
                                    .get(name)
                                    .and_then(|v| v.to_str().ok())
                                    .map(str::to_owned)
                            };
                            let answer = match (req.method().as_str(), req.uri().path()) {
                                ("GET", DIRECTORY_PATH) => service.handle_directory(),
                                ("POST", ISSUE_PATH) => {
                                    let content_type = header("content-type");
                                    let purchase = header(PURCHASE_HEADER);
                                    let body = req.into_body().collect().await.unwrap().to_bytes();
                                    service.handle_issue(
                                        content_type.as_deref(),
                                        purchase.as_deref(),
                                        &body,
                                    )
                                }
                                _ => {
                                    return Ok::<_, Infallible>(text_reply(
                                        404,
                                        "text/plain",
                                        b"not found\n".to_vec(),
                                    ));
                                }
                            };
                            Ok(text_reply(answer.status, answer.content_type, answer.body))
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), handler)
                    .await;
            });
        }
    });
    addr
}

struct Issuer {
    rt: tokio::runtime::Runtime,
    url: String,
    key: IssuerSecretKey,
}

/// An issuer whose only buyer is `wallet`, with `quota` tokens.
fn start_issuer(wallet: &ed25519_dalek::SigningKey, quota: u32) -> Issuer {
    let rt = runtime();
    let key = IssuerSecretKey::generate(2048).unwrap();
    let payments = Arc::new(TestPayments {
        wallet: wallet.verifying_key().to_bytes(),
        remaining: Mutex::new(quota),
    });
    let service = IssuerService::new(
        vec![IssuingKey {
            key: key.clone(),
            not_before: 0,
        }],
        "http://127.0.0.1/token-request".to_owned(),
        payments,
    );
    let addr = serve_issuer(&rt, service);
    Issuer {
        rt,
        url: format!("http://{addr}"),
        key,
    }
}

/// A wallet key file (mode 0600) in `dir`.
fn wallet_file(dir: &Path, name: &str, seed: u8) -> (String, ed25519_dalek::SigningKey) {
    let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
    let path = dir.join(name);
    tolldns_service::keyfile::write(&path, &key, false).unwrap();
    (path.to_str().unwrap().to_owned(), key)
}

fn fetch(issuer: &str, wallet: &str, count: &str, out: &str) -> std::process::Output {
    tolldns(
        &[
            "ticket",
            "fetch",
            "--issuer",
            issuer,
            "--wallet",
            wallet,
            "--count",
            count,
            "--issuer-name",
            ISSUER_NAME,
            "--deployment",
            DEPLOYMENT,
            "--out",
            out,
        ],
        "",
    )
}

#[cfg(unix)]
#[test]
fn ticket_fetch_buys_verifiable_tokens_until_the_quota_is_used_up() {
    let dir = scratch_dir("ticket-fetch");
    let (wallet, wallet_key) = wallet_file(&dir, "wallet.json", 3);
    let issuer = start_issuer(&wallet_key, 3);
    let out = dir.join("tokens.json").to_str().unwrap().to_owned();

    let run = fetch(&issuer.url, &wallet, "2", &out);
    assert_exit(&run, 0);
    assert!(
        stdout_of(&run).contains("fetched 2 tokens"),
        "{}",
        stdout_of(&run)
    );
    assert_eq!(super::mode_of(&out), 0o600);
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(file["issuer"], issuer.url.as_str());
    assert_eq!(file["issuer_name"], ISSUER_NAME);
    assert_eq!(file["deployment"], DEPLOYMENT);

    // Every token verifies under the issuer's key for the deployment challenge.
    let tokens = Tokens::load(Path::new(&out)).unwrap();
    assert_eq!(tokens.tokens.len(), 2);
    assert_eq!(tokens.key, *issuer.key.public());
    let verifier = TokenVerifier::new(
        vec![AcceptedKey {
            key: issuer.key.public().clone(),
            not_before: 0,
            not_after: None,
        }],
        TokenChallenge::deployment(ISSUER_NAME, DEPLOYMENT)
            .digest()
            .unwrap(),
    );
    for t in &tokens.tokens {
        let verified = verifier.verify(&t.bytes, 1_800_000_000).unwrap();
        assert_eq!(verified.ticket_id, t.ticket_id);
        assert!(!t.used);
    }

    // One token of the quota is left: the second of two requests is refused with 402, the
    // first is kept in the file.
    let run = fetch(&issuer.url, &wallet, "2", &out);
    assert_exit(&run, 1);
    let err = stderr_of(&run);
    assert!(err.contains("402 Payment Required"), "{err}");
    assert!(err.contains("the buyer's ticket quota is used up"), "{err}");
    assert!(err.contains("1 of 2 tokens fetched and saved"), "{err}");
    assert_eq!(Tokens::load(Path::new(&out)).unwrap().tokens.len(), 3);

    // Another deployment's tokens do not go into this file.
    let run = tolldns(
        &[
            "ticket",
            "fetch",
            "--issuer",
            &issuer.url,
            "--wallet",
            &wallet,
            "--issuer-name",
            ISSUER_NAME,
            "--deployment",
            "other",
            "--out",
            &out,
        ],
        "",
    );
    assert_exit(&run, 2);
    assert!(stderr_of(&run).contains("write these to another file"));
    drop(issuer.rt);
}

#[cfg(unix)]
#[test]
fn ticket_fetch_refusals_and_bad_input() {
    let dir = scratch_dir("ticket-fetch-refused");
    let (paying, paying_key) = wallet_file(&dir, "paying.json", 1);
    let (stranger, _) = wallet_file(&dir, "stranger.json", 2);
    let issuer = start_issuer(&paying_key, 10);
    let out = dir.join("tokens.json").to_str().unwrap().to_owned();

    // An uncredited wallet: the issuer's 402 and its text, exit 1, no file.
    let run = fetch(&issuer.url, &stranger, "1", &out);
    assert_exit(&run, 1);
    let err = stderr_of(&run);
    assert!(
        err.contains("402 Payment Required: no ticket purchase for this buyer"),
        "{err}"
    );
    assert!(!Path::new(&out).exists());

    // A wallet others can read is refused before anything is sent.
    super::chmod(&paying, 0o644);
    let run = fetch(&issuer.url, &paying, "1", &out);
    assert_exit(&run, 2);
    assert!(stderr_of(&run).contains("chmod 600"));
    super::chmod(&paying, 0o600);

    // Not an origin; nobody listening; https without --ca.
    for (url, want) in [
        ("127.0.0.1:1", "--issuer"),
        (&format!("{}/prefix", issuer.url) as &str, "without a path"),
        ("http://127.0.0.1:1", "connecting to 127.0.0.1 port 1"),
        ("https://127.0.0.1:1", ""),
    ] {
        let run = fetch(url, &paying, "1", &out);
        assert_exit(&run, 2);
        assert!(stderr_of(&run).contains(want), "{url}: {}", stderr_of(&run));
    }
    let run = tolldns(
        &[
            "ticket",
            "fetch",
            "--issuer",
            &issuer.url,
            "--wallet",
            &paying,
            "--issuer-name",
            ISSUER_NAME,
            "--deployment",
            DEPLOYMENT,
            "--out",
            &out,
            "--ca",
            &paying,
        ],
        "",
    );
    assert_exit(&run, 2);
    assert!(stderr_of(&run).contains("--ca: only for an https:// issuer"));
    let run = fetch(&issuer.url, &paying, "0", &out);
    assert_exit(&run, 2);
    assert!(!Path::new(&out).exists());
    drop(issuer.rt);
}

/// A tokens file of `n` tokens issued in-process.
fn tokens_file(dir: &Path, n: usize) -> (String, Tokens) {
    let key = IssuerSecretKey::generate(2048).unwrap();
    let mut tokens = Tokens::new(
        "http://127.0.0.1:8080".to_owned(),
        ISSUER_NAME.to_owned(),
        DEPLOYMENT.to_owned(),
        key.public().clone(),
    );
    for _ in 0..n {
        let (request, pending) = client::request(key.public(), &tokens.challenge()).unwrap();
        let token = pending
            .finalize(key.public(), &key.issue(&request).unwrap())
            .unwrap();
        tokens.tokens.push(StoredToken::new(&token));
    }
    let path = dir.join("tokens.json");
    tokens.save(&path).unwrap();
    (path.to_str().unwrap().to_owned(), tokens)
}

#[test]
fn ticket_show_lists_the_file_without_the_tokens() {
    let dir = scratch_dir("ticket-show");
    let (path, mut tokens) = tokens_file(&dir, 2);
    tokens.tokens[1].used = true;
    tokens.save(Path::new(&path)).unwrap();
    let ids: Vec<String> = tokens
        .tokens
        .iter()
        .map(|t| hex::encode(t.ticket_id))
        .collect();
    let key_id = tokens.key_id_hex();

    let run = tolldns(&["ticket", "show", &path], "");
    assert_exit(&run, 0);
    let want = format!(
        "issuer: http://127.0.0.1:8080\nissuer name: {ISSUER_NAME}\ndeployment: {DEPLOYMENT}\n\
         key id: {key_id}\ntokens: 2 (1 unused)\n0 {}\n1 {} used\n",
        ids[0], ids[1]
    );
    assert_eq!(stdout_of(&run), want);

    let run = tolldns(&["ticket", "show", "--json", &path], "");
    assert_exit(&run, 0);
    let json: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(json["key_id"], key_id.as_str());
    assert_eq!(json["count"], 2);
    assert_eq!(json["unused"], 1);
    assert_eq!(json["tokens"][0]["ticket_id"], ids[0].as_str());
    assert_eq!(json["tokens"][1]["used"], true);
    let token_b64 = std::fs::read_to_string(&path).unwrap();
    let first: Value = serde_json::from_str(&token_b64).unwrap();
    assert!(!stdout_of(&run).contains(first["tokens"][0]["token"].as_str().unwrap()));

    // The file round-trips through the binary's reader byte for byte.
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(Tokens::from_json(text.as_bytes()).unwrap().to_json(), text);

    // Malformed files exit 2 naming the field.
    let mut value: Value = serde_json::from_str(&text).unwrap();
    value["tokens"][0]["ticket_id"] = "00".repeat(16).into();
    let bad = super::write_file(&dir, "bad.json", value.to_string().as_bytes());
    let run = tolldns(&["ticket", "show", &bad], "");
    assert_exit(&run, 2);
    assert!(
        stderr_of(&run).contains("tokens[0].ticket_id"),
        "{}",
        stderr_of(&run)
    );
    let run = tolldns(
        &["ticket", "show", dir.join("missing.json").to_str().unwrap()],
        "",
    );
    assert_exit(&run, 2);
}

// ---------------------------------------------------------------------------------------------
// query

/// A stand-in edge: redeems each token once (a second presentation is refused as replayed),
/// answers a redemption with [`SESSION`], accepts [`SESSION`] afterwards, and answers every
/// accepted query with `NAME 60 IN A 192.0.2.1`.
#[derive(Default)]
struct EdgeDouble {
    redeemed: Mutex<HashSet<Vec<u8>>>,
}

/// What the double decided for one query.
enum Decision {
    /// Answer; hand out the session ticket when `Some`.
    Answer(Option<[u8; 16]>),
    /// Refuse with this refusal name.
    Refuse(&'static str),
}

impl EdgeDouble {
    fn decide(&self, token: Option<Vec<u8>>, session: Option<Vec<u8>>) -> Decision {
        if let Some(token) = token {
            if self.redeemed.lock().unwrap().insert(token) {
                Decision::Answer(Some(SESSION))
            } else {
                Decision::Refuse("replayed")
            }
        } else if let Some(session) = session {
            if session == SESSION {
                Decision::Answer(None)
            } else {
                Decision::Refuse("unknown_session")
            }
        } else {
            Decision::Answer(None)
        }
    }

    /// The response to a wire query; the credential from its EDNS options unless given.
    fn respond(&self, query: &[u8], http_credential: Option<Decision>) -> (Vec<u8>, Decision) {
        let q = Message::from_vec(query).unwrap();
        let option = |code: u16| {
            q.extensions()
                .as_ref()
                .and_then(|e| match e.options().get(EdnsCode::from(code)) {
                    Some(EdnsOption::Unknown(_, data)) => Some(data.clone()),
                    _ => None,
                })
        };
        let decision = http_credential
            .unwrap_or_else(|| self.decide(option(TOKEN_OPTION_CODE), option(SESSION_OPTION_CODE)));
        let mut r = Message::new();
        r.set_id(q.id())
            .set_message_type(MessageType::Response)
            .set_recursion_desired(true)
            .set_recursion_available(true)
            .add_queries(q.queries().to_vec());
        let mut edns = Edns::new();
        match &decision {
            Decision::Answer(session) => {
                let name = q.queries()[0].name().clone();
                r.add_answer(Record::from_rdata(name, 60, RData::A(A::new(192, 0, 2, 1))));
                if let Some(s) = session {
                    edns.options_mut()
                        .insert(EdnsOption::Unknown(SESSION_OPTION_CODE, s.to_vec()));
                }
            }
            Decision::Refuse(reason) => {
                r.set_response_code(ResponseCode::Refused);
                edns.options_mut().insert(EdnsOption::Unknown(
                    EDE_OPTION_CODE,
                    ede_data(
                        EDE_INFO_PROHIBITED,
                        &format!("toll ticket refused: {reason}"),
                    ),
                ));
            }
        }
        r.set_edns(edns);
        (r.to_vec().unwrap(), decision)
    }
}

/// A CA and a leaf for `localhost` (rcgen): the CA's PEM and the server configuration.
fn test_tls(alpn: &[&[u8]]) -> (String, Arc<rustls::ServerConfig>) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "tolldns CLI test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der().clone(), ca.der().clone()], key)
    .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    (ca.pem(), Arc::new(config))
}

/// Where the double listens.
struct EdgeAddrs {
    udp: SocketAddr,
    tcp: SocketAddr,
    dot: SocketAddr,
    doh: SocketAddr,
    ca_pem: String,
}

async fn serve_stream<S>(mut s: S, edge: Arc<EdgeDouble>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut len = [0u8; 2];
    while s.read_exact(&mut len).await.is_ok() {
        let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if s.read_exact(&mut query).await.is_err() {
            return;
        }
        let (reply, _) = edge.respond(&query, None);
        let mut framed = u16::try_from(reply.len()).unwrap().to_be_bytes().to_vec();
        framed.extend_from_slice(&reply);
        if s.write_all(&framed).await.is_err() {
            return;
        }
    }
}

async fn doh_handler(
    edge: Arc<EdgeDouble>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() != "/dns-query" || req.method() != "POST" {
        return Ok(text_reply(404, "text/plain", b"not found\n".to_vec()));
    }
    // ALPN offers h2 first: the CLI must speak HTTP/2 when the server can.
    if req.version() != hyper::Version::HTTP_2 {
        return Ok(text_reply(505, "text/plain", b"HTTP/2 expected\n".to_vec()));
    }
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(|v| tolldns_tickets::auth::parse_authorization(v).unwrap());
    let session = req
        .headers()
        .get(TICKET_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|v| hex::decode(v).unwrap());
    let decision = edge.decide(token, session);
    let query = req.into_body().collect().await.unwrap().to_bytes();
    if let Decision::Refuse(reason) = decision {
        let mut r = text_reply(
            401,
            "text/plain; charset=utf-8",
            format!("toll ticket refused: {reason}\n").into_bytes(),
        );
        r.headers_mut().insert(
            "www-authenticate",
            "PrivateToken challenge=\"AAIA\", token-key=\"AQID\""
                .parse()
                .unwrap(),
        );
        return Ok(r);
    }
    let (body, decision) = edge.respond(&query, Some(decision));
    let mut r = text_reply(200, "application/dns-message", body);
    if let Decision::Answer(Some(s)) = decision {
        use base64::Engine as _;
        let v = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        r.headers_mut().insert(SESSION_HEADER, v.parse().unwrap());
    }
    Ok(r)
}

/// Starts the double on UDP, TCP, DoT and DoH (HTTP/2 or HTTP/1.1) on 127.0.0.1.
fn start_edge(rt: &tokio::runtime::Runtime) -> EdgeAddrs {
    let edge = Arc::new(EdgeDouble::default());
    let (ca_pem, doh_config) = test_tls(&[b"h2", b"http/1.1"]);
    let dot_config = {
        let mut c = (*doh_config).clone();
        c.alpn_protocols = vec![b"dot".to_vec()];
        Arc::new(c)
    };
    rt.block_on(async {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dot = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let doh = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addrs = EdgeAddrs {
            udp: udp.local_addr().unwrap(),
            tcp: tcp.local_addr().unwrap(),
            dot: dot.local_addr().unwrap(),
            doh: doh.local_addr().unwrap(),
            ca_pem,
        };
        let e = Arc::clone(&edge);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65_535];
            while let Ok((n, peer)) = udp.recv_from(&mut buf).await {
                let (reply, _) = e.respond(&buf[..n], None);
                let _ = udp.send_to(&reply, peer).await;
            }
        });
        let e = Arc::clone(&edge);
        tokio::spawn(async move {
            while let Ok((s, _)) = tcp.accept().await {
                tokio::spawn(serve_stream(s, Arc::clone(&e)));
            }
        });
        let e = Arc::clone(&edge);
        let acceptor = tokio_rustls::TlsAcceptor::from(dot_config);
        tokio::spawn(async move {
            while let Ok((s, _)) = dot.accept().await {
                let (e, acceptor) = (Arc::clone(&e), acceptor.clone());
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(s).await {
                        serve_stream(tls, e).await;
                    }
                });
            }
        });
        let acceptor = tokio_rustls::TlsAcceptor::from(doh_config);
        tokio::spawn(async move {
            while let Ok((s, _)) = doh.accept().await {
                let (e, acceptor) = (Arc::clone(&edge), acceptor.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(s).await else {
                        return;
                    };
                    let service =
                        hyper::service::service_fn(move |req| doh_handler(Arc::clone(&e), req));
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        addrs
    })
}

fn used_flags(path: &str) -> Vec<bool> {
    Tokens::load(Path::new(path))
        .unwrap()
        .tokens
        .iter()
        .map(|t| t.used)
        .collect()
}

#[test]
fn query_redeems_a_token_then_rides_the_session_on_every_transport() {
    let dir = scratch_dir("query-transports");
    let rt = runtime();
    let edge = start_edge(&rt);
    let ca = super::write_file(&dir, "ca.pem", edge.ca_pem.as_bytes());
    let (tokens, _) = tokens_file(&dir, 4);
    let session_hex = hex::encode(SESSION);
    let cases = [
        ("udp", edge.udp, vec![]),
        ("tcp", edge.tcp, vec![]),
        ("dot", edge.dot, vec!["--ca", &ca]),
        (
            "doh",
            edge.doh,
            vec!["--ca", &ca, "--tls-name", "localhost"],
        ),
    ];
    for (i, (transport, addr, extra)) in cases.into_iter().enumerate() {
        let server = addr.to_string();
        let mut args = vec![
            "query",
            "--server",
            &server,
            "--transport",
            transport,
            "--tokens",
            &tokens,
            "--repeat",
            "2",
        ];
        args.extend(extra.iter().copied());
        args.extend(["example.com", "A"]);
        let run = tolldns(&args, "");
        assert_exit(&run, 0);
        let want = format!(
            "query: 1/2 (token {i})\nrcode: NOERROR\nanswer: example.com. 60 IN A 192.0.2.1\n\
             session: {session_hex}\nquery: 2/2 (session)\nrcode: NOERROR\n\
             answer: example.com. 60 IN A 192.0.2.1\n"
        );
        assert_eq!(stdout_of(&run), want, "{transport}: {}", stderr_of(&run));
        // The redeemed token is marked used, so the next run takes the next one.
        let flags = used_flags(&tokens);
        assert_eq!(flags.iter().filter(|u| **u).count(), i + 1, "{transport}");
        assert!(flags[i]);

        // Presenting the same token again: refused as replayed, exit 1.
        let index = i.to_string();
        let mut args = vec![
            "query",
            "--server",
            &server,
            "--transport",
            transport,
            "--tokens",
            &tokens,
            "--index",
            &index,
        ];
        args.extend(extra.iter().copied());
        args.push("example.com");
        let run = tolldns(&args, "");
        assert_exit(&run, 1);
        let out = stdout_of(&run);
        if transport == "doh" {
            assert!(
                out.starts_with(
                    "http: 401 Unauthorized: toll ticket refused: replayed\n\
                     www-authenticate: PrivateToken"
                ),
                "{out}"
            );
        } else {
            assert_eq!(
                out, "rcode: REFUSED\nede: 18 toll ticket refused: replayed\n",
                "{transport}"
            );
        }
        assert!(stderr_of(&run).contains("refused"), "{}", stderr_of(&run));
        assert!(stderr_of(&run).contains("replayed"));

        // A session ticket given by hand.
        let mut args = vec![
            "query",
            "--server",
            &server,
            "--transport",
            transport,
            "--session",
            &session_hex,
        ];
        args.extend(extra.iter().copied());
        args.extend(["example.com", "aaaa"]);
        let run = tolldns(&args, "");
        assert_exit(&run, 0);
        assert!(stdout_of(&run).starts_with("rcode: NOERROR\n"));
    }
    // Every token is spent now.
    let server = edge.udp.to_string();
    let run = tolldns(
        &[
            "query",
            "--server",
            &server,
            "--tokens",
            &tokens,
            "example.com",
        ],
        "",
    );
    assert_exit(&run, 2);
    assert!(stderr_of(&run).contains("every token is used"));
    // An unknown session is refused.
    let other = "00".repeat(16);
    let run = tolldns(
        &[
            "query",
            "--server",
            &server,
            "--session",
            &other,
            "example.com",
        ],
        "",
    );
    assert_exit(&run, 1);
    assert!(stdout_of(&run).contains("ede: 18 toll ticket refused: unknown_session"));
}

#[test]
fn query_argument_validation_exits_2() {
    let dir = scratch_dir("query-args");
    let tokens = super::write_file(&dir, "tokens.json", b"{}");
    let ca = super::write_file(&dir, "ca.pem", b"not a certificate\n");
    let cases: [(&[&str], &str); 12] = [
        (&["query", "example.com"], "--server"),
        (
            &[
                "query",
                "--server",
                "127.0.0.1:1",
                "--transport",
                "quic",
                "x",
            ],
            "quic",
        ),
        (
            &["query", "--server", "127.0.0.1:1", "--ca", &ca, "x"],
            "--ca: only for --transport dot or doh",
        ),
        (
            &["query", "--server", "127.0.0.1:1", "--tls-name", "a", "x"],
            "--tls-name: only for",
        ),
        (
            &[
                "query",
                "--server",
                "127.0.0.1:1",
                "--transport",
                "dot",
                "x",
            ],
            "need --ca FILE",
        ),
        (
            &[
                "query",
                "--server",
                "127.0.0.1:1",
                "--transport",
                "doh",
                "--ca",
                &ca,
                "x",
            ],
            "no certificate found in PEM file",
        ),
        (
            &["query", "--server", "127.0.0.1:1", "--doh-path", "/q", "x"],
            "--doh-path: only for",
        ),
        (
            &["query", "--server", "127.0.0.1:1", "--index", "0", "x"],
            "--tokens",
        ),
        (
            &["query", "--server", "127.0.0.1:1", "--session", "abcd", "x"],
            "--session: \"abcd\" is not 32 hex",
        ),
        (
            &[
                "query",
                "--server",
                "127.0.0.1:1",
                "--session",
                &"00".repeat(16),
                "--tokens",
                &tokens,
                "x",
            ],
            "cannot be used with",
        ),
        (
            &["query", "--server", "127.0.0.1:1", "x", "NOPE"],
            "TYPE: \"NOPE\" is not a record type",
        ),
        (
            &["query", "--server", "127.0.0.1:1", "--tokens", &tokens, "x"],
            "tokens file",
        ),
    ];
    for (args, want) in cases {
        let run = tolldns(args, "");
        assert_exit(&run, 2);
        assert!(
            stderr_of(&run).contains(want),
            "{args:?}: {}",
            stderr_of(&run)
        );
    }
}
