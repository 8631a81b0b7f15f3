//! The HTTP API on `api.listen` (loopback by default): `/metrics`, `/healthz` and the audit API.
//!
//! - `GET /metrics`: Prometheus text exposition (format 0.0.4; OpenMetrics when the `Accept`
//!   header asks for `application/openmetrics-text`).
//! - `GET /healthz`: `200 ok` while the node runs.
//! - `GET /v1/batches?window=N`: `{"window":N,"batches":[{"id":HEX,"receipt":RECEIPT}]}`, the
//!   signed batch receipts of window `N` in their JSON form.
//! - `GET /v1/batches/{id}`: one receipt's JSON form (`id` = hex SHA-256 of its canonical bytes).
//! - `GET /v1/batches/{id}/audit?seed=HEX32&k=K` (auditor): the `k` leaves drawn by the
//!   format's audit sampling for `seed` (default `k` = 44, 99 % confidence against 10 %
//!   fakes), each with its RFC 6962 inclusion proof and, for a v2 batch, its right neighbour
//!   with its proof, in sample order, in the proofs-file format of `tolldns receipt verify
//!   --proofs` (see [`audit_json`]). `410` once the leaves are gone.
//! - `GET /v1/batches/{id}/ticket/{ticket_hex}` (auditor): every leaf whose ticket is
//!   `ticket_hex` (32 hex digits) with its proof, in Merkle order, and the token behind the
//!   ticket when it is still kept: `{"ticket":HEX,"proofs":[…],"token":BASE64URL|null}`.
//! - `GET /v1/batches/{id}/sketch?seed=HEX32&k=K` (auditor): the witnesses of the name-sketch
//!   registers drawn by `SketchWitnessSample` for `seed`: `{"registers":[j…],"proofs":[…]}`.
//! - `GET /v1/name-key/{epoch}` (auditor): the epoch's name key encrypted to the auditor
//!   (HPKE, see `tolldns_service::auditor`):
//!   `{"epoch":E,"suite":S,"enc":HEX,"ciphertext":HEX,"commitment":HEX}`. `404` for an epoch
//!   without a key. (`POST /v1/name-key`, which answered the key in clear, is gone: `410`.)
//! - `GET /v1/tokens/{ticket_id}` (auditor): the toll-ticket token behind a leaf's ticket id
//!   (32 hex digits), kept as long as the leaves of the window it was redeemed in:
//!   `{"ticket_id":HEX,"token":BASE64URL,"window_id":N,"redeemed_ms":N}`, `token` the RFC 9578
//!   token bytes in base64url without padding. `404` when no such token is kept.
//!
//! Endpoints marked *auditor* require `Authorization: TollDNS-Auditor key=…, ts=…, nonce=…,
//! sig=…` (`tolldns_service::auditor`) from a key in `api.auditor_keys`: `401` for a missing,
//! malformed, stale or replayed header or a bad signature, `403` for an unknown key. They are
//! bounded per auditor (`api.audit_rate_per_sec`, `api.audit_burst`,
//! `api.audit_concurrency_per_auditor`: `429`) and globally (`api.audit_concurrency`: `503`),
//! both with `Retry-After`. No request reads more than the chunks of leaves it proves (see the
//! journal's docs). Every connection must send its headers within `api.request_timeout_secs`
//! and every request is answered (or abandoned with `503`) within it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use ed25519_dalek::VerifyingKey;
use http::{Method, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use prometheus_client::registry::Registry;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tolldns_receipts::{
    AuditAnswer, AuditSample, LeafProof, Receipt, SketchWitnessSample, sample_size,
};
use tolldns_service::auditor::{self, AuditorAuth};

use crate::journal::{AuditError, BatchId, Journal};
use crate::metrics::Metrics;

/// Who may use the audit endpoints (changed on SIGHUP).
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
    /// Rate and concurrency bounds of the audit endpoints.
    pub guard: AuditGuard,
}

/// The bounds of the audit endpoints (`[api]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditLimits {
    /// Requests per second per auditor, on average.
    pub rate_per_sec: u32,
    /// Burst per auditor.
    pub burst: u32,
    /// Requests at once, all auditors.
    pub concurrency: u32,
    /// Requests at once, one auditor.
    pub concurrency_per_auditor: u32,
    /// Header and request timeout.
    pub timeout: Duration,
}

/// One auditor's admission state: its rate bucket, requests in flight and the nonces it used
/// within the request age. Nonces are recorded only for admitted requests, so an auditor can
/// hold at most `burst + rate × age` of them, and one auditor's refused flood never touches
/// another auditor's admission.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
    in_flight: u32,
    nonces: HashMap<[u8; 16], u64>,
}

/// Admission of audit requests: replay protection, per-auditor rate and concurrency, global
/// concurrency.
#[derive(Debug)]
pub struct AuditGuard {
    limits: AuditLimits,
    global: Arc<Semaphore>,
    /// Journal reads in flight (audit and public endpoints): a read outlives a request that
    /// timed out, and holds its slot until it ends.
    reads: Arc<Semaphore>,
    buckets: Mutex<HashMap<[u8; 32], Bucket>>,
}

/// Why an audit request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    Unauthorized(&'static str),
    Forbidden,
    RateLimited,
    Busy,
}

/// A slot held while an admitted request runs.
struct Admitted<'a> {
    guard: &'a AuditGuard,
    key: [u8; 32],
    _global: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        let mut buckets = self
            .guard
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(b) = buckets.get_mut(&self.key) {
            b.in_flight = b.in_flight.saturating_sub(1);
        }
    }
}

impl AuditGuard {
    /// A guard with these limits.
    pub fn new(limits: AuditLimits) -> Self {
        Self {
            global: Arc::new(Semaphore::new(
                usize::try_from(limits.concurrency.max(1)).unwrap_or(1),
            )),
            reads: Arc::new(Semaphore::new(
                usize::try_from(limits.concurrency.saturating_add(2).max(3)).unwrap_or(3),
            )),
            limits,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The limits.
    pub const fn limits(&self) -> &AuditLimits {
        &self.limits
    }

    fn admit(
        &self,
        auth: &AuthSettings,
        operator: &VerifyingKey,
        req: &http::request::Parts,
    ) -> Result<Admitted<'_>, Refused> {
        let header = req
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(Refused::Unauthorized("auditor signature required"))?;
        let a: AuditorAuth = auditor::parse_authorization(header)
            .map_err(|_| Refused::Unauthorized("malformed Authorization header"))?;
        if !auth.auditors.contains(&a.key) {
            return Err(Refused::Forbidden);
        }
        let now = crate::now_ms();
        if now.abs_diff(a.timestamp_ms) > auth.max_age_ms {
            return Err(Refused::Unauthorized("stale or future timestamp"));
        }
        let path = req.uri.path_and_query().map_or("/", |p| p.as_str());
        a.verify(operator.as_bytes(), req.method.as_str(), path)
            .map_err(|_| Refused::Unauthorized("bad signature"))?;
        let key = a.key.to_bytes();
        let expires = a.timestamp_ms.saturating_add(auth.max_age_ms).max(now);
        // Every request an auditor may make within the request age, plus slack.
        let most_nonces = u64::from(self.limits.burst)
            .saturating_add(
                u64::from(self.limits.rate_per_sec).saturating_mul(auth.max_age_ms / 1000),
            )
            .saturating_add(16);
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let b = buckets.entry(key).or_insert_with(|| Bucket {
            tokens: f64::from(self.limits.burst),
            at: Instant::now(),
            in_flight: 0,
            nonces: HashMap::new(),
        });
        let elapsed = b.at.elapsed().as_secs_f64();
        b.at = Instant::now();
        b.tokens = (b.tokens + elapsed * f64::from(self.limits.rate_per_sec))
            .min(f64::from(self.limits.burst));
        if b.tokens < 1.0 || b.in_flight >= self.limits.concurrency_per_auditor {
            return Err(Refused::RateLimited);
        }
        if b.nonces.get(&a.nonce).is_some_and(|e| *e > now) {
            return Err(Refused::Unauthorized("replayed nonce"));
        }
        if u64::try_from(b.nonces.len()).unwrap_or(u64::MAX) >= most_nonces {
            b.nonces.retain(|_, e| *e > now);
            if u64::try_from(b.nonces.len()).unwrap_or(u64::MAX) >= most_nonces {
                return Err(Refused::RateLimited);
            }
        }
        // A request refused for capacity keeps its rate token and records no nonce.
        let permit = Arc::clone(&self.global)
            .try_acquire_owned()
            .map_err(|_| Refused::Busy)?;
        b.tokens -= 1.0;
        b.in_flight = b.in_flight.saturating_add(1);
        b.nonces.insert(a.nonce, expires);
        drop(buckets);
        Ok(Admitted {
            guard: self,
            key,
            _global: permit,
        })
    }
}

pub(crate) type Reply = Response<Full<Bytes>>;

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

fn refused(r: Refused) -> Reply {
    let mut reply = match r {
        Refused::Unauthorized(why) => error(StatusCode::UNAUTHORIZED, why),
        Refused::Forbidden => error(StatusCode::FORBIDDEN, "unknown auditor key"),
        Refused::RateLimited => error(
            StatusCode::TOO_MANY_REQUESTS,
            "audit rate or concurrency limit for this auditor",
        ),
        Refused::Busy => error(StatusCode::SERVICE_UNAVAILABLE, "audit capacity busy"),
    };
    if matches!(r, Refused::Unauthorized(_)) {
        reply.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static(auditor::SCHEME),
        );
    }
    if matches!(r, Refused::RateLimited | Refused::Busy) {
        reply.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("1"),
        );
    }
    reply
}

/// Serves the API on `listener` until `shutdown` turns true.
pub async fn serve(listener: TcpListener, state: Arc<ApiState>, shutdown: watch::Receiver<bool>) {
    let timeout = state.guard.limits.timeout;
    accept_loop(listener, timeout, shutdown, move |req| {
        let state = Arc::clone(&state);
        async move {
            tokio::time::timeout(timeout, handle(&state, req))
                .await
                .unwrap_or_else(|_| error(StatusCode::SERVICE_UNAVAILABLE, "request timed out"))
        }
    })
    .await;
}

/// The node's HTTP accept loop, shared by the audit API and the API of a node without
/// receipts: one task per connection speaking HTTP/1.1, `header_timeout` to send a request
/// head, `answer` for each request, until `shutdown` turns true. A failed accept (out of file
/// descriptors, a connection reset before it was taken) is logged and retried after a short
/// pause instead of spinning.
pub(crate) async fn accept_loop<H, F>(
    listener: TcpListener,
    header_timeout: Duration,
    mut shutdown: watch::Receiver<bool>,
    answer: H,
) where
    H: Fn(http::Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Reply> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::debug!(error = %e, "api accept failed");
                tokio::select! {
                    () = tokio::time::sleep(ACCEPT_RETRY) => continue,
                    _ = shutdown.changed() => return,
                }
            }
        };
        let answer = answer.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let reply = answer(req);
                async move { Ok::<_, Infallible>(reply.await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Pause after a failed accept.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

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

/// Runs a journal read on the blocking pool; it holds one of the guard's read slots until it
/// ends, even when the request that started it timed out.
async fn blocking<T: Send + 'static>(
    state: &ApiState,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let slot = Arc::clone(&state.guard.reads).acquire_owned().await.ok()?;
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        f()
    })
    .await
    .ok()
}

/// Routes one request.
pub async fn handle(state: &ApiState, req: http::Request<Incoming>) -> Reply {
    let (parts, _body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or("").to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let audited = matches!(
        (&parts.method, segments.as_slice()),
        (&Method::GET, ["v1", "batches", _, "audit" | "sketch"])
            | (&Method::GET, ["v1", "batches", _, "ticket", _])
            | (&Method::GET, ["v1", "name-key", _])
            | (&Method::GET, ["v1", "tokens", _])
    );
    let admitted = if audited {
        let auth = state
            .auth
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        match state.guard.admit(&auth, &state.operator, &parts) {
            Ok(a) => Some(a),
            Err(r) => {
                let reply = refused(r);
                state
                    .metrics
                    .api_request("refused", reply.status().as_u16());
                return reply;
            }
        }
    } else {
        None
    };
    let auth = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| auditor::parse_authorization(h).ok());
    let (endpoint, reply) = match (&parts.method, segments.as_slice()) {
        (&Method::GET, ["metrics"]) => {
            let m = tolldns_service::metrics::exposition(&state.registry, &parts.headers);
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
        (&Method::GET, ["v1", "batches", id, "sketch"]) => {
            ("sketch", sketch(state, id, &query).await)
        }
        (&Method::GET, ["v1", "batches", id, "ticket", ticket]) => {
            ("ticket", ticket_leaves(state, id, ticket).await)
        }
        (&Method::GET, ["v1", "name-key", epoch]) => match auth {
            Some(a) => ("name_key", name_key(state, epoch, &a).await),
            None => (
                "name_key",
                refused(Refused::Unauthorized("auditor signature required")),
            ),
        },
        (&Method::POST, ["v1", "name-key"]) => (
            "name_key",
            error(
                StatusCode::GONE,
                "name keys are served encrypted: GET /v1/name-key/{epoch} with an auditor signature",
            ),
        ),
        (&Method::GET, ["v1", "tokens", id]) => ("token", token(state, id).await),
        _ => ("other", error(StatusCode::NOT_FOUND, "not found")),
    };
    drop(admitted);
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
    match blocking(state, move || journal.batches_in_window(window)).await {
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
    match blocking(state, move || journal.batch(&id)).await {
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
    match blocking(state, move || journal.token(&ticket_id)).await {
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

fn proof_json(p: &LeafProof) -> serde_json::Value {
    json!({
        "leaf_hex": hex::encode(p.leaf.to_bytes()),
        "leaf_index": p.proof.leaf_index,
        "tree_size": p.proof.tree_size,
        "path": p.proof.path.iter().map(hex::encode).collect::<Vec<_>>(),
    })
}

/// The audit answer's JSON, the proofs-file format of `tolldns receipt verify --proofs`:
/// `{"version":V,"proofs":[{"leaf_hex","leaf_index","tree_size","path":[...],"next":{…}|null}]}`,
/// in sample order; byte strings in lowercase hex, `leaf_hex` the canonical leaf of the
/// receipt's version (71 bytes in v2, 69 in v1), `path` the RFC 6962 audit path from the leaf
/// level up, `next` the right neighbour in the same form (v2; `null` after the last leaf).
pub fn audit_json(version: u8, answers: &[AuditAnswer]) -> serde_json::Value {
    let leaf = |p: &LeafProof| {
        let mut v = proof_json(p);
        if version == 1 {
            v["leaf_hex"] = json!(hex::encode(p.leaf.to_bytes_v1()));
        }
        v
    };
    let proofs: Vec<_> = answers
        .iter()
        .map(|a| {
            let mut v = leaf(&a.leaf);
            v["next"] = a.next.as_ref().map_or(serde_json::Value::Null, leaf);
            v
        })
        .collect();
    json!({ "version": version, "proofs": proofs })
}

fn batch_query(id: &str) -> Result<BatchId, &'static str> {
    parse_id(id).ok_or("batch id must be 64 hex digits")
}

fn audit_error(e: &AuditError) -> Reply {
    match e {
        AuditError::NotFound => error(StatusCode::NOT_FOUND, "no such batch"),
        AuditError::Pruned => error(
            StatusCode::GONE,
            "the leaves of this batch are no longer kept",
        ),
        AuditError::TooMany { .. } => error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "more leaves than api.max_audit_k under this ticket",
        ),
        AuditError::Journal(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "journal read failed"),
    }
}

fn seed_and_k(query: &str, max_k: u64) -> Result<([u8; 32], Option<u64>), &'static str> {
    let mut seed = [0u8; 32];
    if query_param(query, "seed").is_none_or(|s| hex::decode_to_slice(s, &mut seed).is_err()) {
        return Err("query parameter `seed` must be 64 hex digits");
    }
    match query_param(query, "k").map(str::parse::<u64>) {
        None => Ok((seed, None)),
        Some(Ok(k)) if k <= max_k => Ok((seed, Some(k))),
        Some(_) => Err("`k` must be an integer up to api.max_audit_k"),
    }
}

async fn ticket_leaves(state: &ApiState, id: &str, ticket: &str) -> Reply {
    let id = match batch_query(id) {
        Ok(id) => id,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    let mut t = [0u8; 16];
    if hex::decode_to_slice(ticket, &mut t).is_err() {
        return error(StatusCode::BAD_REQUEST, "ticket must be 32 hex digits");
    }
    let journal = Arc::clone(&state.journal);
    let max = usize::try_from(state.max_audit_k).unwrap_or(usize::MAX);
    let Some(result) = blocking(state, move || {
        let leaves = journal.ticket_leaves(&id, &t, max)?;
        let token = journal.token(&t).ok().flatten();
        Ok::<_, AuditError>((leaves, token))
    })
    .await
    else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "journal read failed");
    };
    match result {
        Ok(((_, proofs), token)) => json_reply(
            StatusCode::OK,
            &json!({
                "ticket": hex::encode(t),
                "proofs": proofs.iter().map(proof_json).collect::<Vec<_>>(),
                "token": token.map(|t| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&t.token)),
            }),
        ),
        Err(e) => audit_error(&e),
    }
}

/// The batch id, seed and k of an audit-style request, and the batch's receipt.
async fn seeded_request(
    state: &ApiState,
    id: &str,
    query: &str,
) -> Result<(BatchId, [u8; 32], Option<u64>, Receipt), Reply> {
    let bad = |why| error(StatusCode::BAD_REQUEST, why);
    let id = batch_query(id).map_err(bad)?;
    let (seed, k) = seed_and_k(query, state.max_audit_k).map_err(bad)?;
    let journal = Arc::clone(&state.journal);
    let Some(Ok(Some(receipt))) = blocking(state, move || journal.batch(&id)).await else {
        return Err(error(StatusCode::NOT_FOUND, "no such batch"));
    };
    Ok((id, seed, k, receipt))
}

async fn sketch(state: &ApiState, id: &str, query: &str) -> Reply {
    let (id, seed, k, receipt) = match seeded_request(state, id, query).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(v2) = receipt.body.v2.as_ref() else {
        return error(StatusCode::NOT_FOUND, "a v1 batch has no name sketch");
    };
    let sample = SketchWitnessSample::new(
        &seed,
        &receipt.body.integrity.merkle_root,
        &v2.name_sketch,
        k.unwrap_or(16),
    );
    let registers = sample.registers().to_vec();
    let journal = Arc::clone(&state.journal);
    let regs = registers.clone();
    match blocking(state, move || journal.sketch_witnesses(&id, &regs)).await {
        Some(Ok((_, witnesses))) => json_reply(
            StatusCode::OK,
            &json!({
                "registers": registers,
                "proofs": witnesses
                    .iter()
                    .map(|w| w.as_ref().map_or(serde_json::Value::Null, proof_json))
                    .collect::<Vec<_>>(),
            }),
        ),
        Some(Err(e)) => audit_error(&e),
        None => error(StatusCode::INTERNAL_SERVER_ERROR, "journal read failed"),
    }
}

async fn audit(state: &ApiState, id: &str, query: &str) -> Reply {
    let (id, seed, k, receipt) = match seeded_request(state, id, query).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let n = receipt.body.integrity.leaf_count;
    let k = k.unwrap_or_else(|| sample_size(0.99, 0.10, n).unwrap_or(n));
    let sample = AuditSample::new(&seed, &receipt.body.integrity.merkle_root, n, k);
    let indices = sample.indices().to_vec();
    let journal = Arc::clone(&state.journal);
    match blocking(state, move || journal.audit(&id, &indices)).await {
        Some(Ok((_, answers))) => json_reply(
            StatusCode::OK,
            &audit_json(receipt.body.version(), &answers),
        ),
        Some(Err(e)) => audit_error(&e),
        None => error(StatusCode::INTERNAL_SERVER_ERROR, "journal read failed"),
    }
}

async fn name_key(state: &ApiState, epoch: &str, auth: &AuditorAuth) -> Reply {
    let Ok(epoch) = epoch.parse::<u64>() else {
        return error(StatusCode::BAD_REQUEST, "epoch must be an integer");
    };
    let journal = Arc::clone(&state.journal);
    match blocking(state, move || journal.existing_name_key(epoch)).await {
        Some(Ok(Some(key))) => {
            let sealed = auditor::seal_name_key(
                &auth.key,
                state.operator.as_bytes(),
                epoch,
                &auth.nonce,
                &key.0,
            );
            let Ok((enc, ciphertext)) = sealed else {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "could not encrypt to this auditor key",
                );
            };
            tracing::info!(
                epoch,
                auditor = %bs58::encode(auth.key.as_bytes()).into_string(),
                "name key revealed to auditor (HPKE)"
            );
            json_reply(
                StatusCode::OK,
                &json!({
                    "epoch": epoch,
                    "suite": auditor::NAME_KEY_HPKE_SUITE,
                    "enc": hex::encode(enc),
                    "ciphertext": hex::encode(ciphertext),
                    "commitment": hex::encode(key.commitment()),
                }),
            )
        }
        Some(Ok(None)) => error(StatusCode::NOT_FOUND, "no name key for this epoch"),
        _ => error(StatusCode::INTERNAL_SERVER_ERROR, "journal read failed"),
    }
}

#[cfg(test)]
mod guard_tests {
    use ed25519_dalek::SigningKey;

    use super::*;

    fn parts(
        auditor: &SigningKey,
        operator: &VerifyingKey,
        nonce: u8,
        path: &str,
    ) -> http::request::Parts {
        let header = auditor::authorization(
            auditor,
            operator.as_bytes(),
            crate::now_ms(),
            &[nonce; 16],
            "GET",
            path,
        );
        let (parts, ()) = http::Request::get(path)
            .header(http::header::AUTHORIZATION, header)
            .body(())
            .unwrap()
            .into_parts();
        parts
    }

    #[test]
    fn a_flooding_auditor_cannot_shut_out_another() {
        let operator = SigningKey::from_bytes(&[1; 32]).verifying_key();
        let (flood, polite) = (
            SigningKey::from_bytes(&[2; 32]),
            SigningKey::from_bytes(&[3; 32]),
        );
        let auth = AuthSettings {
            auditors: vec![flood.verifying_key(), polite.verifying_key()],
            max_age_ms: 300_000,
        };
        let guard = AuditGuard::new(AuditLimits {
            rate_per_sec: 0,
            burst: 3,
            concurrency: 4,
            concurrency_per_auditor: 8,
            timeout: Duration::from_secs(1),
        });
        // The flooder gets its burst, then 429s; its refused requests record nothing.
        let mut admitted = Vec::new();
        let mut refused = 0;
        for n in 0..200u8 {
            match guard.admit(&auth, &operator, &parts(&flood, &operator, n, "/v1/x")) {
                Ok(a) => admitted.push(a),
                Err(Refused::RateLimited) => refused += 1,
                Err(e) => panic!("{e:?}"),
            }
        }
        assert_eq!((admitted.len(), refused), (3, 197));
        let buckets = guard.buckets.lock().unwrap();
        assert_eq!(buckets[&flood.verifying_key().to_bytes()].nonces.len(), 3);
        drop(buckets);
        drop(admitted);
        // The polite auditor is served; a replay of its request is refused.
        let p = parts(&polite, &operator, 7, "/v1/y");
        assert!(guard.admit(&auth, &operator, &p).is_ok());
        assert_eq!(
            guard.admit(&auth, &operator, &p).err(),
            Some(Refused::Unauthorized("replayed nonce"))
        );
        // Another path under the same signature is a bad signature; an unknown key is 403.
        let mut other = parts(&polite, &operator, 8, "/v1/y");
        other.uri = "/v1/z".parse().unwrap();
        assert_eq!(
            guard.admit(&auth, &operator, &other).err(),
            Some(Refused::Unauthorized("bad signature"))
        );
        let stranger = SigningKey::from_bytes(&[4; 32]);
        assert_eq!(
            guard
                .admit(&auth, &operator, &parts(&stranger, &operator, 9, "/v1/y"))
                .err(),
            Some(Refused::Forbidden)
        );
    }

    #[test]
    fn a_request_refused_for_capacity_keeps_its_rate_token() {
        let operator = SigningKey::from_bytes(&[1; 32]).verifying_key();
        let (a, b) = (
            SigningKey::from_bytes(&[5; 32]),
            SigningKey::from_bytes(&[6; 32]),
        );
        let auth = AuthSettings {
            auditors: vec![a.verifying_key(), b.verifying_key()],
            max_age_ms: 300_000,
        };
        let guard = AuditGuard::new(AuditLimits {
            rate_per_sec: 0,
            burst: 1,
            concurrency: 1,
            concurrency_per_auditor: 1,
            timeout: Duration::from_secs(1),
        });
        let held = guard
            .admit(&auth, &operator, &parts(&a, &operator, 1, "/v1/x"))
            .unwrap();
        assert_eq!(
            guard
                .admit(&auth, &operator, &parts(&b, &operator, 2, "/v1/x"))
                .err(),
            Some(Refused::Busy)
        );
        drop(held);
        // b's one token was not spent on the 503: it is served now.
        assert!(
            guard
                .admit(&auth, &operator, &parts(&b, &operator, 3, "/v1/x"))
                .is_ok()
        );
    }
}
