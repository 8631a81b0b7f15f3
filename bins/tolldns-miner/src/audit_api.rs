//! The HTTP API on `api.listen` (loopback by default): `/metrics`, `/healthz` and the audit API.
//!
//! - `GET /metrics`: Prometheus text exposition (format 0.0.4; OpenMetrics when the `Accept`
//!   header asks for `application/openmetrics-text`).
//! - `GET /healthz`: `200 ok` while the node runs.
//! - `GET /v1/batches?window=N`: `{"window":N,"batches":[{"id":HEX,"receipt":RECEIPT}]}`, the
//!   signed batch receipts of window `N` in their JSON form.
//! - `GET /v1/batches/{id}`: one receipt's JSON form (`id` = hex SHA-256 of its canonical bytes).
//! - `GET /v1/batches/{id}/audit?seed=HEX32&k=K`: the `k` leaves drawn by the format's audit
//!   sampling for `seed` (default `k` = 44, 99 % confidence against 10 % fakes), each with its
//!   RFC 6962 inclusion proof, in the proofs-file format of `tolldns receipt verify --proofs`
//!   (see [`audit_json`]). `410` once the leaves are gone.
//! - `POST /v1/name-key`: body `{"epoch":E,"auditor_pubkey":B58,"timestamp_ms":T,"signature":B58}`;
//!   the signature is ed25519 by the auditor over [`name_key_request_message`]. Unknown auditor
//!   keys get `403`, bad signatures and timestamps further than `api.max_request_age_secs` from
//!   the miner's clock get `401`; an epoch without a key gets `404`. The answer is
//!   `{"epoch":E,"name_key":HEX,"commitment":HEX}`.
//! - `GET /v1/tokens/{ticket_id}`: the toll-ticket token behind a leaf's ticket id (32 hex
//!   digits), kept as long as the leaves of the window it was redeemed in:
//!   `{"ticket_id":HEX,"token":BASE64URL,"window_id":N,"redeemed_ms":N}`, `token` the RFC 9578
//!   token bytes in base64url without padding (an auditor checks the issuer's signature and
//!   that `ticket_id` is `SHA256("TOLLDNS-TICKET-V1\0" || token)[..16]`). `404` when no such
//!   token is kept, `400` for a malformed id. Like the batch endpoints, it needs no
//!   authentication: tokens are unlinkable to their buyers by construction (blind issuance).

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use base64::Engine as _;
use bytes::Bytes;
use ed25519_dalek::{Signature, VerifyingKey};
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use prometheus_client::registry::Registry;
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tolldns_receipts::{AuditSample, LeafProof, Receipt, sample_size};

use crate::journal::{AuditError, BatchId, Journal};
use crate::metrics::Metrics;

/// Domain-separation tag of the name-key request message.
pub const NAME_KEY_REQUEST_TAG: &[u8] = b"TOLLDNS-NAMEKEY-REQUEST-V1\0";

/// The bytes an auditor signs to ask for a name key:
/// `NAME_KEY_REQUEST_TAG || operator_pubkey (32) || epoch (u64 LE) || timestamp_ms (u64 LE)`.
/// The operator key binds the request to one miner; the timestamp bounds replays.
pub fn name_key_request_message(operator: &VerifyingKey, epoch: u64, timestamp_ms: u64) -> Vec<u8> {
    let mut m = Vec::with_capacity(NAME_KEY_REQUEST_TAG.len() + 48);
    m.extend_from_slice(NAME_KEY_REQUEST_TAG);
    m.extend_from_slice(operator.as_bytes());
    m.extend_from_slice(&epoch.to_le_bytes());
    m.extend_from_slice(&timestamp_ms.to_le_bytes());
    m
}

/// Who may fetch name keys (changed on SIGHUP).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthSettings {
    /// Authorized auditor keys.
    pub auditors: Vec<VerifyingKey>,
    /// Largest accepted clock difference.
    pub max_age_ms: u64,
}

/// Everything the API reads.
#[derive(Debug)]
pub struct ApiState {
    /// The receipt journal.
    pub journal: Arc<Journal>,
    /// The metrics registry.
    pub registry: Arc<Registry>,
    /// The miner's metrics.
    pub metrics: Arc<Metrics>,
    /// Authorized auditors.
    pub auth: Arc<RwLock<AuthSettings>>,
    /// The miner's receipt-signing public key.
    pub operator: VerifyingKey,
    /// Largest `k` per audit.
    pub max_audit_k: u64,
    /// False once the node is stopping.
    pub healthy: Arc<AtomicBool>,
}

type Reply = Response<Full<Bytes>>;

fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Reply {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    r
}

fn json_reply(status: StatusCode, v: &serde_json::Value) -> Reply {
    reply(status, "application/json", v.to_string())
}

fn error(status: StatusCode, message: &str) -> Reply {
    json_reply(status, &json!({ "error": message }))
}

/// Serves the API on `listener` until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    state: Arc<ApiState>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(handle(&state, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn parse_id(s: &str) -> Option<BatchId> {
    let mut id = [0u8; 32];
    hex::decode_to_slice(s, &mut id).ok()?;
    Some(id)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

/// Routes one request.
pub async fn handle(state: &ApiState, req: http::Request<Incoming>) -> Reply {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (endpoint, reply) = match (req.method(), segments.as_slice()) {
        (&Method::GET, ["metrics"]) => {
            let m = tolldns_service::metrics::exposition(&state.registry, req.headers());
            ("metrics", reply(StatusCode::OK, m.content_type, m.body))
        }
        (&Method::GET, ["healthz"]) => (
            "healthz",
            if state.healthy.load(Ordering::Relaxed) {
                reply(StatusCode::OK, "text/plain", "ok\n")
            } else {
                reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "stopping\n")
            },
        ),
        (&Method::GET, ["v1", "batches"]) => ("batches", list_batches(state, &query).await),
        (&Method::GET, ["v1", "batches", id]) => ("batch", one_batch(state, id).await),
        (&Method::GET, ["v1", "batches", id, "audit"]) => ("audit", audit(state, id, &query).await),
        (&Method::POST, ["v1", "name-key"]) => ("name_key", name_key(state, req).await),
        (&Method::GET, ["v1", "tokens", id]) => ("token", token(state, id).await),
        _ => ("other", error(StatusCode::NOT_FOUND, "not found")),
    };
    state.metrics.api_request(endpoint, reply.status().as_u16());
    reply
}

fn receipt_value(r: &Receipt) -> serde_json::Value {
    serde_json::from_str(&r.to_json()).unwrap_or(serde_json::Value::Null)
}

async fn list_batches(state: &ApiState, query: &str) -> Reply {
    let Some(window) = query_param(query, "window").and_then(|w| w.parse::<u64>().ok()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "query parameter `window` (u64) is required",
        );
    };
    let journal = Arc::clone(&state.journal);
    match blocking(move || journal.batches_in_window(window)).await {
        Some(Ok(list)) => {
            let batches: Vec<_> = list
                .iter()
                .map(|(id, r)| json!({ "id": hex::encode(id), "receipt": receipt_value(r) }))
                .collect();
            json_reply(
                StatusCode::OK,
                &json!({ "window": window, "batches": batches }),
            )
        }
        _ => error(StatusCode::INTERNAL_SERVER_ERROR, "journal read failed"),
    }
}

async fn one_batch(state: &ApiState, id: &str) -> Reply {
    let Some(id) = parse_id(id) else {
        return error(StatusCode::BAD_REQUEST, "batch id must be 64 hex digits");
    };
    let journal = Arc::clone(&state.journal);
    match blocking(move || journal.batch(&id)).await {
        Some(Ok(Some(r))) => reply(StatusCode::OK, "application/json", r.to_json()),
        Some(Ok(None)) => error(StatusCode::NOT_FOUND, "no such batch"),
        _ => error(StatusCode::INTERNAL_SERVER_ERROR, "journal read failed"),
    }
}

async fn token(state: &ApiState, id: &str) -> Reply {
    let mut ticket_id = [0u8; 16];
    if hex::decode_to_slice(id, &mut ticket_id).is_err() {
        return error(StatusCode::BAD_REQUEST, "ticket id must be 32 hex digits");
    }
    let journal = Arc::clone(&state.journal);
    match blocking(move || journal.token(&ticket_id)).await {
        Some(Ok(Some(t))) => json_reply(
            StatusCode::OK,
            &json!({
                "ticket_id": hex::encode(t.ticket_id),
                "token": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&t.token),
                "window_id": t.window_id,
                "redeemed_ms": t.redeemed_ms,
            }),
        ),
        Some(Ok(None)) => error(StatusCode::NOT_FOUND, "no such token"),
        _ => error(StatusCode::INTERNAL_SERVER_ERROR, "journal read failed"),
    }
}

/// The audit answer's JSON, the proofs-file format of `tolldns receipt verify --proofs`:
/// `{"proofs":[{"leaf_hex","leaf_index","tree_size","path":[...]}]}`, in sample order; byte
/// strings in lowercase hex, `leaf_hex` the 69-byte canonical leaf, `path` the RFC 6962 audit
/// path from the leaf level up.
pub fn audit_json(proofs: &[LeafProof]) -> serde_json::Value {
    let proofs: Vec<_> = proofs
        .iter()
        .map(|p| {
            json!({
                "leaf_hex": hex::encode(p.leaf.to_bytes()),
                "leaf_index": p.proof.leaf_index,
                "tree_size": p.proof.tree_size,
                "path": p.proof.path.iter().map(hex::encode).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({ "proofs": proofs })
}

async fn audit(state: &ApiState, id: &str, query: &str) -> Reply {
    let Some(id) = parse_id(id) else {
        return error(StatusCode::BAD_REQUEST, "batch id must be 64 hex digits");
    };
    let mut seed = [0u8; 32];
    if query_param(query, "seed").is_none_or(|s| hex::decode_to_slice(s, &mut seed).is_err()) {
        return error(
            StatusCode::BAD_REQUEST,
            "query parameter `seed` must be 64 hex digits",
        );
    }
    let k = match query_param(query, "k").map(str::parse::<u64>) {
        None => None,
        Some(Ok(k)) if k <= state.max_audit_k => Some(k),
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "`k` must be an integer up to api.max_audit_k",
            );
        }
    };
    let journal = Arc::clone(&state.journal);
    let Some(Ok(Some(receipt))) = blocking(move || journal.batch(&id)).await else {
        return error(StatusCode::NOT_FOUND, "no such batch");
    };
    let n = receipt.body.integrity.leaf_count;
    let k = k.unwrap_or_else(|| sample_size(0.99, 0.10, n).unwrap_or(n));
    let sample = AuditSample::new(&seed, &receipt.body.integrity.merkle_root, n, k);
    let indices = sample.indices().to_vec();
    let journal = Arc::clone(&state.journal);
    match blocking(move || journal.audit(&id, &indices)).await {
        Some(Ok((_, proofs))) => json_reply(StatusCode::OK, &audit_json(&proofs)),
        Some(Err(AuditError::NotFound)) => error(StatusCode::NOT_FOUND, "no such batch"),
        Some(Err(AuditError::Pruned)) => error(
            StatusCode::GONE,
            "the leaves of this batch are no longer kept",
        ),
        _ => error(StatusCode::INTERNAL_SERVER_ERROR, "journal read failed"),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NameKeyRequest {
    epoch: u64,
    auditor_pubkey: String,
    timestamp_ms: u64,
    signature: String,
}

async fn name_key(state: &ApiState, req: http::Request<Incoming>) -> Reply {
    let Ok(body) = Limited::new(req.into_body(), 16 * 1024).collect().await else {
        return error(StatusCode::BAD_REQUEST, "body too large or unreadable");
    };
    let Ok(request) = serde_json::from_slice::<NameKeyRequest>(&body.to_bytes()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "body must be {\"epoch\",\"auditor_pubkey\",\"timestamp_ms\",\"signature\"}",
        );
    };
    let auth = state
        .auth
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let Ok(auditor) = crate::keys::parse_public_key(&request.auditor_pubkey) else {
        return error(StatusCode::FORBIDDEN, "unknown auditor key");
    };
    if !auth.auditors.contains(&auditor) {
        return error(StatusCode::FORBIDDEN, "unknown auditor key");
    }
    if crate::now_ms().abs_diff(request.timestamp_ms) > auth.max_age_ms {
        return error(StatusCode::UNAUTHORIZED, "stale or future timestamp");
    }
    let signature = bs58::decode(&request.signature)
        .into_vec()
        .ok()
        .and_then(|b| Signature::from_slice(&b).ok());
    let message = name_key_request_message(&state.operator, request.epoch, request.timestamp_ms);
    if signature.is_none_or(|s| auditor.verify_strict(&message, &s).is_err()) {
        return error(StatusCode::UNAUTHORIZED, "bad signature");
    }
    let journal = Arc::clone(&state.journal);
    let epoch = request.epoch;
    match blocking(move || journal.existing_name_key(epoch)).await {
        Some(Ok(Some(key))) => {
            tracing::info!(epoch, auditor = %request.auditor_pubkey, "name key revealed to auditor");
            json_reply(
                StatusCode::OK,
                &json!({
                    "epoch": epoch,
                    "name_key": hex::encode(key.0),
                    "commitment": hex::encode(key.commitment()),
                }),
            )
        }
        Some(Ok(None)) => error(StatusCode::NOT_FOUND, "no name key for this epoch"),
        _ => error(StatusCode::INTERNAL_SERVER_ERROR, "journal read failed"),
    }
}
