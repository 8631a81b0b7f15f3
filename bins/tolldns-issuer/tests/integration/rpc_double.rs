//! [`RpcTestDouble`]: a **test double** standing in for a Solana JSON-RPC node, which cannot
//! run in these tests (no validator, no network). It is not a Solana implementation: it only
//! answers the one call the issuer's chain sync makes, `getProgramAccounts`, with the accounts
//! a test gives it.
//!
//! A small hyper HTTP/1.1 server on 127.0.0.1 (its own tokio runtime, dropped with it). For
//! each request it checks that the issuer asked for what `tolldns_issuer::chain` documents
//! (the registry program, base64, `finalized`, the `dataSize` 105 filter, the discriminator
//! `memcmp` at offset 0 and an issuer-wallet `memcmp` at offset 40), records the issuer
//! wallet asked for ([`RpcTestDouble::issuer_filters`]) and answers, per [`Mode`]:
//!
//! - [`Mode::Accounts`]: `{"result": [<keyed account>…]}` in the shape of a real node's
//!   answer. By default with **every** account it holds, unfiltered: a real node applies the
//!   filters and only returns accounts of the program, but the double returns foreign,
//!   malformed and other issuers' ones too so that the issuer's own checks are exercised.
//!   After [`RpcTestDouble::set_filtering`] it honours the request like a real node: only
//!   accounts of the program whose data passes every `dataSize` and `memcmp` filter;
//! - [`Mode::RpcError`]: a JSON-RPC error object (`-32005`, "node is behind");
//! - [`Mode::Garbage`]: a 200 answer that is not JSON-RPC.
//!
//! A request that does not match the documented call is answered with a JSON-RPC
//! `-32602` error and counted in [`RpcTestDouble::bad_requests`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// What the double answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The accounts.
    Accounts,
    /// A JSON-RPC error.
    RpcError,
    /// Not JSON-RPC.
    Garbage,
}

/// One account the double serves.
#[derive(Debug, Clone)]
pub(crate) struct DoubleAccount {
    /// Its address (base58).
    pub(crate) pubkey: String,
    /// Its owner program (base58).
    pub(crate) owner: String,
    /// Its data.
    pub(crate) data: Vec<u8>,
}

#[derive(Debug)]
struct State {
    program_id: String,
    accounts: Vec<DoubleAccount>,
    mode: Mode,
    filtering: bool,
    requests: u64,
    bad_requests: u64,
    issuer_filters: Vec<String>,
}

/// The test double (see the module docs).
#[derive(Debug)]
pub(crate) struct RpcTestDouble {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    _runtime: tokio::runtime::Runtime,
}

impl RpcTestDouble {
    /// Starts a double for the registry program `program_id` (base58), serving no account.
    pub(crate) fn start(program_id: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let state = Arc::new(Mutex::new(State {
            program_id: program_id.to_owned(),
            accounts: Vec::new(),
            mode: Mode::Accounts,
            filtering: false,
            requests: 0,
            bad_requests: 0,
            issuer_filters: Vec::new(),
        }));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let served = Arc::clone(&state);
        runtime.spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let state = Arc::clone(&served);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: http::Request<hyper::body::Incoming>| {
                            let state = Arc::clone(&state);
                            async move {
                                let body = req
                                    .into_body()
                                    .collect()
                                    .await
                                    .map(http_body_util::Collected::to_bytes)
                                    .unwrap_or_default();
                                let answer = answer(&state, &body);
                                let mut r = http::Response::new(Full::new(Bytes::from(answer)));
                                r.headers_mut().insert(
                                    http::header::CONTENT_TYPE,
                                    http::HeaderValue::from_static("application/json"),
                                );
                                Ok::<_, Infallible>(r)
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            state,
            _runtime: runtime,
        }
    }

    /// The URL for `chain.rpc_url`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Serves `accounts` from now on.
    pub(crate) fn set_accounts(&self, accounts: Vec<DoubleAccount>) {
        self.state.lock().unwrap().accounts = accounts;
    }

    /// Answers per `mode` from now on.
    pub(crate) fn set_mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = mode;
    }

    /// Whether to apply the request's filters to the accounts, like a real node (`false`
    /// at start: every account is returned).
    pub(crate) fn set_filtering(&self, on: bool) {
        self.state.lock().unwrap().filtering = on;
    }

    /// The issuer wallet (base58, the `memcmp` at offset 40) of every well-formed request so
    /// far, in order.
    pub(crate) fn issuer_filters(&self) -> Vec<String> {
        self.state.lock().unwrap().issuer_filters.clone()
    }

    /// Requests answered so far.
    pub(crate) fn requests(&self) -> u64 {
        self.state.lock().unwrap().requests
    }

    /// Requests that were not the documented `getProgramAccounts` call.
    pub(crate) fn bad_requests(&self) -> u64 {
        self.state.lock().unwrap().bad_requests
    }
}

/// Whether `request` is the chain sync's documented call for `program_id`; the issuer wallet
/// of its issuer filter when it is.
fn expected_call(request: &Value, program_id: &str) -> Option<String> {
    let opts = &request["params"][1];
    let discriminator =
        bs58::encode(tolldns_issuer::chain::TICKET_QUOTA_DISCRIMINATOR).into_string();
    let issuer = opts["filters"][2]["memcmp"]["bytes"].as_str()?;
    let issuer_is_a_key = bs58::decode(issuer).into_vec().is_ok_and(|k| k.len() == 32);
    (request["jsonrpc"] == "2.0"
        && request["method"] == "getProgramAccounts"
        && request["params"][0] == program_id
        && opts["encoding"] == "base64"
        && opts["commitment"] == "finalized"
        && issuer_is_a_key
        && opts["filters"]
            == json!([
                {"dataSize": 105},
                {"memcmp": {"offset": 0, "bytes": discriminator}},
                {"memcmp": {"offset": 40, "bytes": issuer}},
            ]))
    .then(|| issuer.to_owned())
}

/// Whether `data` passes one `getProgramAccounts` filter.
fn passes(filter: &Value, data: &[u8]) -> bool {
    if let Some(size) = filter["dataSize"].as_u64() {
        return data.len() as u64 == size;
    }
    let memcmp = &filter["memcmp"];
    let (Some(offset), Some(bytes)) = (memcmp["offset"].as_u64(), memcmp["bytes"].as_str()) else {
        return false;
    };
    let Ok(bytes) = bs58::decode(bytes).into_vec() else {
        return false;
    };
    let offset = usize::try_from(offset).unwrap();
    data.get(offset..offset + bytes.len()) == Some(bytes.as_slice())
}

fn answer(state: &Mutex<State>, body: &[u8]) -> String {
    let mut state = state.lock().unwrap();
    state.requests += 1;
    let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let Some(issuer) = expected_call(&request, &state.program_id) else {
        state.bad_requests += 1;
        return json!({"jsonrpc": "2.0", "id": id,
            "error": {"code": -32602, "message": "test double: unexpected request"}})
        .to_string();
    };
    state.issuer_filters.push(issuer);
    let filters = request["params"][1]["filters"].as_array().unwrap();
    match state.mode {
        Mode::Accounts => {
            let result: Vec<Value> = state
                .accounts
                .iter()
                .filter(|a| {
                    !state.filtering
                        || (a.owner == state.program_id
                            && filters.iter().all(|f| passes(f, &a.data)))
                })
                .map(|a| {
                    json!({
                        "pubkey": a.pubkey,
                        "account": {
                            "data": [base64::engine::general_purpose::STANDARD.encode(&a.data), "base64"],
                            "executable": false,
                            "lamports": 1_621_680u64,
                            "owner": a.owner,
                            "rentEpoch": u64::MAX,
                            "space": a.data.len(),
                        }
                    })
                })
                .collect();
            json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string()
        }
        Mode::RpcError => json!({"jsonrpc": "2.0", "id": id,
            "error": {"code": -32005, "message": "Node is behind by 42 slots"}})
        .to_string(),
        Mode::Garbage => "<html><body>502 Bad Gateway</body></html>".to_owned(),
    }
}
