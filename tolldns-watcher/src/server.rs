//! The HTTP API (`[api] listen`) and the metrics endpoint (`[metrics] listen`).
//!
//! API:
//!
//! - `POST /v1/receipts`: a receipt's JSON form ([`crate::ingest`]). `201` accepted, `200`
//!   already stored and accepted, `409` already stored and refused, `422` refused by a
//!   receipt rule (the body names it; resending changes nothing), `400` malformed (or an
//!   `Idempotency-Key` that is not the batch id), `413` larger than `api.max_body_bytes`,
//!   `503` + `Retry-After` when the store or the chain is unavailable or the receipt's window
//!   has not ended (retry).
//! - `GET /v1/epochs/{e}/inputs`: the `tolldns score epoch --input` JSON of a closed epoch.
//! - `GET /v1/epochs/{e}/report`: per miner, the verdict (reported or withheld), the reasons
//!   and the hashes of the objects behind it.
//! - `GET /v1/epochs/{e}/probe-tickets`: the watcher's probe tickets of epoch `e`
//!   (`{"watcher", "epoch", "tickets": [{"miner", "ticket", "sent_ms"}]}`), public and
//!   unsigned, once the epoch has ended (`425` before, `503` before the first chain read), so
//!   that the other watchers discount those probes from the miners' client work.
//! - `GET /v1/objects/{sha256 hex}`: a published object (content-addressed JSON).
//! - `GET /v1/status`: the watcher key, the chain slot, the epochs closed, counts.
//! - `GET /healthz`.
//!
//! Metrics: `GET /metrics`, Prometheus text (OpenMetrics when asked for).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use prometheus_client::registry::Registry;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::ingest::{Ingest, IngestError, Outcome};
use crate::metrics::Metrics;
use crate::store::{Store, Verdict};

/// A response.
pub type Reply = Response<Full<Bytes>>;

/// What the API handlers share.
#[derive(Debug)]
pub struct ApiState {
    /// The ingest path.
    pub ingest: Arc<Ingest>,
    /// The store (publication reads).
    pub store: Store,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Per-request timeout.
    pub timeout: Duration,
    /// The watcher's public key, base58.
    pub watcher: String,
}

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

fn retry_later(status: StatusCode, message: &str, secs: u64) -> Reply {
    let mut r = error(status, message);
    if let Ok(v) = http::HeaderValue::from_str(&secs.to_string()) {
        r.headers_mut().insert(http::header::RETRY_AFTER, v);
    }
    r
}

/// Serves `handler` on `listener` until `shutdown` turns true (HTTP/1.1, a header read
/// timeout and a per-request timeout).
pub async fn serve<F, Fut>(
    listener: TcpListener,
    timeout: Duration,
    handler: F,
    mut shutdown: watch::Receiver<bool>,
) where
    F: Fn(http::Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let handler = handler.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let handler = handler.clone();
                async move {
                    let reply = tokio::time::timeout(timeout, handler(req))
                        .await
                        .unwrap_or_else(|_| {
                            retry_later(StatusCode::SERVICE_UNAVAILABLE, "request timed out", 1)
                        });
                    Ok::<_, Infallible>(reply)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(timeout)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Serves the API.
pub async fn serve_api(
    listener: TcpListener,
    state: Arc<ApiState>,
    shutdown: watch::Receiver<bool>,
) {
    let timeout = state.timeout;
    serve(
        listener,
        timeout,
        move |req| {
            let state = Arc::clone(&state);
            async move { handle(&state, req).await }
        },
        shutdown,
    )
    .await;
}

/// Serves `GET /metrics` from `registry`.
pub async fn serve_metrics(
    listener: TcpListener,
    registry: Arc<Registry>,
    shutdown: watch::Receiver<bool>,
) {
    serve(
        listener,
        Duration::from_secs(10),
        move |req: http::Request<Incoming>| {
            let registry = Arc::clone(&registry);
            async move {
                match (req.method(), req.uri().path()) {
                    (&Method::GET, "/metrics") => {
                        let m = tolldns_service::metrics::exposition(&registry, req.headers());
                        reply(StatusCode::OK, m.content_type, m.body)
                    }
                    _ => error(StatusCode::NOT_FOUND, "not found"),
                }
            }
        },
        shutdown,
    )
    .await;
}

/// Routes one API request.
pub async fn handle(state: &ApiState, req: http::Request<Incoming>) -> Reply {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (endpoint, reply) = match (&parts.method, segments.as_slice()) {
        (&Method::POST, ["v1", "receipts"]) => ("receipts", receipts(state, &parts, body).await),
        (&Method::GET, ["v1", "epochs", e, "inputs"]) => ("inputs", inputs(state, e).await),
        (&Method::GET, ["v1", "epochs", e, "report"]) => ("report", report(state, e).await),
        (&Method::GET, ["v1", "epochs", e, "probe-tickets"]) => {
            ("probe_tickets", probe_tickets(state, e).await)
        }
        (&Method::GET, ["v1", "objects", h]) => ("objects", object(state, h).await),
        (&Method::GET, ["v1", "status"]) => ("status", status(state).await),
        (&Method::GET, ["healthz"]) => ("healthz", reply(StatusCode::OK, "text/plain", "ok\n")),
        (_, ["v1", "receipts"]) => (
            "other",
            error(StatusCode::METHOD_NOT_ALLOWED, "POST a receipt's JSON form"),
        ),
        _ => ("other", error(StatusCode::NOT_FOUND, "not found")),
    };
    state.metrics.api_request(endpoint, reply.status().as_u16());
    reply
}

async fn receipts(state: &ApiState, parts: &http::request::Parts, body: Incoming) -> Reply {
    let limit = state.max_body_bytes;
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        state.metrics.receipt("too_large");
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &IngestError::TooLarge { limit }.to_string(),
        )
    };
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large();
    }
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                return too_large();
            }
            state.metrics.receipt("malformed");
            return error(StatusCode::BAD_REQUEST, "could not read the request body");
        }
    };
    let key = parts
        .headers
        .get("idempotency-key")
        .map(|v| v.to_str().unwrap_or("(not ASCII)"));
    match state.ingest.submit(&bytes, key, crate::now_ms()).await {
        Ok(Outcome::Accepted { batch_id }) => json_reply(
            StatusCode::CREATED,
            &json!({ "batch_id": hex::encode(batch_id), "verdict": "accepted" }),
        ),
        Ok(Outcome::Refused {
            batch_id,
            rule,
            message,
        }) => json_reply(
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!({
                "batch_id": hex::encode(batch_id),
                "verdict": "refused",
                "rule": rule,
                "error": message,
            }),
        ),
        Ok(Outcome::AlreadyStored { batch_id, verdict }) => match verdict {
            Verdict::Accepted => json_reply(
                StatusCode::OK,
                &json!({ "batch_id": hex::encode(batch_id), "verdict": "accepted", "duplicate": true }),
            ),
            Verdict::Refused { reason } => json_reply(
                StatusCode::CONFLICT,
                &json!({
                    "batch_id": hex::encode(batch_id),
                    "verdict": "refused",
                    "rule": reason.split(':').next().unwrap_or(""),
                    "error": reason,
                    "duplicate": true,
                }),
            ),
        },
        Err(e @ (IngestError::Malformed(_) | IngestError::IdempotencyKey { .. })) => {
            error(StatusCode::BAD_REQUEST, &e.to_string())
        }
        Err(e @ IngestError::TooLarge { .. }) => {
            error(StatusCode::PAYLOAD_TOO_LARGE, &e.to_string())
        }
        Err(e @ IngestError::TooEarly { retry_after_secs }) => retry_later(
            StatusCode::SERVICE_UNAVAILABLE,
            &e.to_string(),
            retry_after_secs,
        ),
        Err(e @ IngestError::RegistryStale) => {
            retry_later(StatusCode::SERVICE_UNAVAILABLE, &e.to_string(), 2)
        }
        Err(e) => {
            tracing::warn!(error = %e, "receipt not ingested");
            retry_later(StatusCode::SERVICE_UNAVAILABLE, &e.to_string(), 5)
        }
    }
}

fn parse_epoch(e: &str) -> Option<u64> {
    e.parse().ok()
}

async fn inputs(state: &ApiState, e: &str) -> Reply {
    let Some(epoch) = parse_epoch(e) else {
        return error(StatusCode::BAD_REQUEST, "the epoch is a decimal number");
    };
    match crate::publish::epoch_inputs(&state.store, epoch).await {
        Ok(Some(bytes)) => reply(StatusCode::OK, "application/json", bytes),
        Ok(None) => error(StatusCode::NOT_FOUND, "epoch not closed yet"),
        Err(e) => retry_later(StatusCode::SERVICE_UNAVAILABLE, &e.to_string(), 5),
    }
}

async fn report(state: &ApiState, e: &str) -> Reply {
    let Some(epoch) = parse_epoch(e) else {
        return error(StatusCode::BAD_REQUEST, "the epoch is a decimal number");
    };
    match crate::publish::epoch_report(&state.store, epoch).await {
        Ok(Some(bytes)) => reply(StatusCode::OK, "application/json", bytes),
        Ok(None) => error(StatusCode::NOT_FOUND, "epoch not closed yet"),
        Err(e) => retry_later(StatusCode::SERVICE_UNAVAILABLE, &e.to_string(), 5),
    }
}

async fn probe_tickets(state: &ApiState, e: &str) -> Reply {
    let Some(epoch) = parse_epoch(e) else {
        return error(StatusCode::BAD_REQUEST, "the epoch is a decimal number");
    };
    let Some(snap) = state.ingest.registry.get() else {
        return retry_later(
            StatusCode::SERVICE_UNAVAILABLE,
            "the registry has not been read yet",
            2,
        );
    };
    let current = snap.epoch_of(state.ingest.clock.latest());
    if epoch >= current {
        return retry_later(
            StatusCode::TOO_EARLY,
            &format!("epoch {epoch} has not ended (the current epoch is {current})"),
            2,
        );
    }
    match crate::publish::probe_tickets_json(&state.store, &state.watcher, epoch).await {
        Ok(v) => json_reply(StatusCode::OK, &v),
        Err(e) => retry_later(StatusCode::SERVICE_UNAVAILABLE, &e.to_string(), 5),
    }
}

async fn object(state: &ApiState, h: &str) -> Reply {
    let mut hash = [0u8; 32];
    if hex::decode_to_slice(h, &mut hash).is_err() {
        return error(
            StatusCode::BAD_REQUEST,
            "an object is named by 64 hex digits",
        );
    }
    match state.store.object(&hash).await {
        Ok(Some(o)) => reply(StatusCode::OK, "application/json", o.bytes),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such object"),
        Err(e) => retry_later(StatusCode::SERVICE_UNAVAILABLE, &e.to_string(), 5),
    }
}

async fn status(state: &ApiState) -> Reply {
    let closed = state
        .store
        .get_cursor(crate::publish::CLOSED_CURSOR)
        .await
        .ok()
        .flatten();
    let snap = state.ingest.registry.get();
    json_reply(
        StatusCode::OK,
        &json!({
            "watcher": state.watcher,
            "version": env!("CARGO_PKG_VERSION"),
            "slot": state.ingest.clock.latest(),
            "epoch": snap.as_ref().map(|s| s.epoch_of(state.ingest.clock.latest())),
            "operators": snap.as_ref().map(|s| s.operators.len()),
            "next_epoch_to_close": closed,
            "deployment": state.ingest.deployment.id.to_string(),
        }),
    )
}
