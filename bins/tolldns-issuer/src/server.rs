//! The HTTP/1.1 service (hyper), plain or over TLS:
//!
//! - `GET /.well-known/private-token-issuer-directory`: the RFC 9578 §4 directory
//!   (`application/private-token-issuer-directory`, `Cache-Control: max-age=N`), current key
//!   first.
//! - `POST /token-request`: issuance ([`tolldns_tickets::IssuerService::issue`]) with the
//!   `Content-Type` and `tolldns-purchase` headers and the body, at most [`MAX_BODY`] bytes
//!   (`413` beyond). Answers `200` with an `application/private-token-response`, or `415`,
//!   `400`, `401` (purchase header missing or not verifying), `402` (no purchase or quota used
//!   up) or `503` (payment records unavailable, with `Retry-After`), with a one-line
//!   `text/plain` reason. A body slower than [`BODY_TIMEOUT`] gets `408`.
//! - `GET /healthz`: `200 ok` while serving, `503` while stopping.
//! - `GET /metrics`: Prometheus text (format 0.0.4; OpenMetrics when the `Accept` header asks
//!   for `application/openmetrics-text`).
//! - Any other path `404`; a known path with another method `405` with `Allow`.
//!
//! A request head must arrive within [`HEADER_TIMEOUT`] (and a TLS handshake too); at most
//! [`MAX_CONNECTIONS`] connections are served at once.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper::body::Body;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tolldns_tickets::{
    DIRECTORY_PATH, ISSUE_PATH, IssuanceError, IssuerService, PURCHASE_HEADER, PaymentError,
    RESPONSE_MEDIA_TYPE,
};

use crate::metrics::{Metrics, Refusal};

/// Largest accepted issuance request body, in bytes (a token request for a 4096-bit key is
/// 515 bytes).
pub const MAX_BODY: usize = 4096;
/// Path of the health check.
pub const HEALTH_PATH: &str = "/healthz";
/// Path of the metrics.
pub const METRICS_PATH: &str = "/metrics";
/// How long a client may take to send its request head (and a TLS client its handshake).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Most connections served at once; further clients wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 1024;
/// How long a stopping server waits for requests in flight.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Everything the handlers read.
#[derive(Debug)]
pub struct AppState {
    service: RwLock<Arc<IssuerService>>,
    registry: Registry,
    metrics: Arc<Metrics>,
    directory_max_age_secs: u64,
    healthy: AtomicBool,
}

impl AppState {
    /// The state of a server answering with `service`; `metrics` are registered in
    /// `registry`.
    pub fn new(
        service: IssuerService,
        registry: Registry,
        metrics: Arc<Metrics>,
        directory_max_age_secs: u64,
    ) -> Self {
        metrics
            .published_keys
            .set(i64::try_from(service.directory().token_keys.len()).unwrap_or(i64::MAX));
        Self {
            service: RwLock::new(Arc::new(service)),
            registry,
            metrics,
            directory_max_age_secs,
            healthy: AtomicBool::new(true),
        }
    }

    /// The service in use.
    pub fn service(&self) -> Arc<IssuerService> {
        Arc::clone(
            &self
                .service
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Answers with `service` from now on (new keys); requests in flight finish with the old.
    pub fn replace_service(&self, service: IssuerService) {
        self.metrics
            .published_keys
            .set(i64::try_from(service.directory().token_keys.len()).unwrap_or(i64::MAX));
        *self
            .service
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(service);
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Marks the server as stopping (`/healthz` answers 503).
    pub fn set_stopping(&self) {
        self.healthy.store(false, Ordering::Relaxed);
    }
}

/// A response.
pub type Reply = Response<Full<Bytes>>;

fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Reply {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

fn text(status: StatusCode, message: &str) -> Reply {
    reply(
        status,
        "text/plain; charset=utf-8",
        format!("{message}\n").into_bytes(),
    )
}

fn method_not_allowed(allow: &'static str) -> Reply {
    let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

/// Routes one request.
pub async fn handle<B>(state: &AppState, req: Request<B>) -> Reply
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let path = req.uri().path();
    let method = req.method();
    match path {
        DIRECTORY_PATH if method == Method::GET => directory(state),
        ISSUE_PATH if method == Method::POST => issue(state, req).await,
        HEALTH_PATH if method == Method::GET => {
            if state.healthy.load(Ordering::Relaxed) {
                text(StatusCode::OK, "ok")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "stopping")
            }
        }
        METRICS_PATH if method == Method::GET => {
            let m = tolldns_service::metrics::exposition(&state.registry, req.headers());
            reply(StatusCode::OK, m.content_type, m.body)
        }
        DIRECTORY_PATH | HEALTH_PATH | METRICS_PATH => method_not_allowed("GET"),
        ISSUE_PATH => method_not_allowed("POST"),
        _ => text(StatusCode::NOT_FOUND, "not found"),
    }
}

fn directory(state: &AppState) -> Reply {
    let answer = state.service().handle_directory();
    let mut r = reply(
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        answer.content_type,
        answer.body,
    );
    if let Ok(v) = HeaderValue::from_str(&format!("max-age={}", state.directory_max_age_secs)) {
        r.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    r
}

fn too_large(state: &AppState) -> Reply {
    state.metrics.refused(Refusal::TooLarge);
    let mut r = text(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("token requests are at most {MAX_BODY} bytes"),
    );
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

async fn issue<B>(state: &AppState, req: Request<B>) -> Reply
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return too_large(state);
    }
    let collect = Limited::new(body, MAX_BODY).collect();
    let body = match tokio::time::timeout(BODY_TIMEOUT, collect).await {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => return too_large(state),
        Ok(Err(_)) => return text(StatusCode::BAD_REQUEST, "request body unreadable"),
        Err(_) => return text(StatusCode::REQUEST_TIMEOUT, "request body too slow"),
    };
    // Header values that are not visible ASCII count as missing.
    let header_str = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = header_str(header::CONTENT_TYPE.as_str());
    let purchase = header_str(PURCHASE_HEADER);
    let had_purchase = purchase.is_some();
    let service = state.service();
    // RSA signing and the durable ledger write block: off the async workers.
    let result = tokio::task::spawn_blocking(move || {
        service.issue(content_type.as_deref(), purchase.as_deref(), &body)
    })
    .await;
    match result {
        Ok(Ok(response)) => {
            state.metrics.tokens_issued.inc();
            let mut r = reply(StatusCode::OK, RESPONSE_MEDIA_TYPE, response);
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Ok(Err(e)) => {
            state.metrics.refused(Refusal::of(&e, had_purchase));
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
            if matches!(e, IssuanceError::Payment(PaymentError::Unavailable(_))) {
                let mut r = text(status, "payment records unavailable; retry later");
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                r
            } else {
                text(status, &e.to_string())
            }
        }
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "issuance failed"),
    }
}

/// Serves `listener` (over TLS with `tls`) until `stop` turns true, then finishes the
/// requests in flight (at most [`SHUTDOWN_GRACE`]).
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    state: Arc<AppState>,
    mut stop: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let slot = tokio::select! {
            s = Arc::clone(&slots).acquire_owned() => s,
            _ = stop.changed() => break,
        };
        // The semaphore is never closed.
        let Ok(slot) = slot else { break };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => break,
        };
        while connections.try_join_next().is_some() {}
        let Ok((stream, _)) = accepted else {
            // Out of file descriptors and the like: do not spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let state = Arc::clone(&state);
        let tls = tls.clone();
        let stop = stop.clone();
        connections.spawn(async move {
            let _slot = slot;
            match tls {
                Some(acceptor) => {
                    if let Ok(Ok(stream)) =
                        tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream)).await
                    {
                        connection(stream, state, stop).await;
                    }
                }
                None => connection(stream, state, stop).await,
            }
        });
    }
    drop(listener);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        connections.abort_all();
    }
}

async fn connection<S>(stream: S, state: Arc<AppState>, mut stop: watch::Receiver<bool>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let state = Arc::clone(&state);
        async move { Ok::<_, Infallible>(handle(&state, req).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        // `stop` only ever turns true; a dropped sender also means stop.
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use ed25519_dalek::SigningKey;
    use tolldns_tickets::{
        IssuerSecretKey, IssuingKey, PaymentCheck, REQUEST_MEDIA_TYPE, TokenChallenge,
        TokenResponse, client, purchase_header,
    };

    use super::*;

    /// An in-memory [`PaymentCheck`]: buyer → tokens remaining.
    #[derive(Debug, Default)]
    struct TestPayments {
        balances: Mutex<HashMap<[u8; 32], u64>>,
        unavailable: AtomicBool,
    }

    impl PaymentCheck for TestPayments {
        fn debit(&self, buyer: &[u8; 32], tokens: u32) -> Result<(), PaymentError> {
            if self.unavailable.load(Ordering::Relaxed) {
                return Err(PaymentError::Unavailable("test".to_owned()));
            }
            let mut b = self.balances.lock().unwrap();
            let left = b.get_mut(buyer).ok_or(PaymentError::NoPurchase)?;
            *left = left
                .checked_sub(u64::from(tokens))
                .ok_or(PaymentError::Exhausted)?;
            Ok(())
        }

        fn refund(&self, buyer: &[u8; 32], tokens: u32) {
            *self.balances.lock().unwrap().entry(*buyer).or_default() += u64::from(tokens);
        }
    }

    fn setup() -> (AppState, Arc<TestPayments>, IssuerSecretKey) {
        let key = IssuerSecretKey::generate(2048).unwrap();
        let payments = Arc::new(TestPayments::default());
        let service = IssuerService::new(
            vec![IssuingKey {
                key: key.clone(),
                not_before: 100,
            }],
            "https://issuer.test/token-request".to_owned(),
            Arc::clone(&payments) as Arc<dyn PaymentCheck>,
        );
        let mut registry = Registry::default();
        let metrics = Arc::new(Metrics::register(&mut registry));
        (AppState::new(service, registry, metrics, 60), payments, key)
    }

    fn request(
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Request<Full<Bytes>> {
        let mut b = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Full::new(Bytes::copy_from_slice(body))).unwrap()
    }

    async fn body(r: Reply) -> Vec<u8> {
        r.into_body().collect().await.unwrap().to_bytes().to_vec()
    }

    #[tokio::test]
    async fn routes_issuance_and_refusals() {
        let (state, payments, key) = setup();
        let wallet = SigningKey::from_bytes(&[9; 32]);
        let challenge = TokenChallenge::deployment("issuer.test", "unit");
        let (req, pending) = client::request(key.public(), &challenge).unwrap();
        let req = req.to_bytes();
        let purchase = purchase_header(&wallet, &req);
        let ct = ("content-type", REQUEST_MEDIA_TYPE);
        let issue =
            |headers: &[(&str, &str)], b: &[u8]| request(Method::POST, ISSUE_PATH, headers, b);

        // Directory.
        let r = handle(&state, request(Method::GET, DIRECTORY_PATH, &[], b"")).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::CACHE_CONTROL], "max-age=60");
        let dir = tolldns_tickets::IssuerDirectory::from_json(&body(r).await).unwrap();
        assert_eq!(dir.keys(), vec![(key.public().clone(), Some(100))]);

        // Refusals, each counted under its reason.
        let cases: Vec<(Request<Full<Bytes>>, StatusCode, Refusal)> = vec![
            (
                issue(&[ct], &req),
                StatusCode::UNAUTHORIZED,
                Refusal::NoPurchaseHeader,
            ),
            (
                issue(&[ct, (PURCHASE_HEADER, &purchase)], b"garbage"),
                StatusCode::BAD_REQUEST,
                Refusal::Malformed,
            ),
            (
                issue(
                    &[("content-type", "text/plain"), (PURCHASE_HEADER, &purchase)],
                    &req,
                ),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Refusal::MediaType,
            ),
            (
                issue(
                    &[ct, (PURCHASE_HEADER, &purchase_header(&wallet, b"other"))],
                    &req,
                ),
                StatusCode::UNAUTHORIZED,
                Refusal::BadPurchase,
            ),
            (
                issue(&[ct, (PURCHASE_HEADER, &purchase)], &req),
                StatusCode::PAYMENT_REQUIRED,
                Refusal::NoPurchase,
            ),
            (
                issue(&[ct, (PURCHASE_HEADER, &purchase)], &[0u8; MAX_BODY + 1]),
                StatusCode::PAYLOAD_TOO_LARGE,
                Refusal::TooLarge,
            ),
        ];
        for (request, status, reason) in cases {
            let r = handle(&state, request).await;
            assert_eq!(r.status(), status, "{reason:?}");
            assert_eq!(state.metrics().refusals(reason), 1, "{reason:?}");
        }

        // Paid: a token that verifies; then the quota is used up.
        payments.refund(&wallet.verifying_key().to_bytes(), 1);
        let r = handle(&state, issue(&[ct, (PURCHASE_HEADER, &purchase)], &req)).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::CONTENT_TYPE], RESPONSE_MEDIA_TYPE);
        let response = TokenResponse::from_bytes(&body(r).await, key.public().nk()).unwrap();
        let token = pending.finalize(key.public(), &response).unwrap();
        assert!(key.public().verify_signature(&token));
        assert_eq!(state.metrics().tokens_issued.get(), 1);
        let r = handle(&state, issue(&[ct, (PURCHASE_HEADER, &purchase)], &req)).await;
        assert_eq!(r.status(), StatusCode::PAYMENT_REQUIRED);
        assert_eq!(state.metrics().refusals(Refusal::Exhausted), 1);

        // Payment records unavailable: 503, no details, Retry-After.
        payments.unavailable.store(true, Ordering::Relaxed);
        let r = handle(&state, issue(&[ct, (PURCHASE_HEADER, &purchase)], &req)).await;
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(r.headers().contains_key(header::RETRY_AFTER));
        assert_eq!(state.metrics().refusals(Refusal::Unavailable), 1);

        // Methods and paths.
        let r = handle(&state, request(Method::GET, ISSUE_PATH, &[], b"")).await;
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.headers()[header::ALLOW], "POST");
        let r = handle(&state, request(Method::POST, DIRECTORY_PATH, &[], b"")).await;
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.headers()[header::ALLOW], "GET");
        let r = handle(&state, request(Method::GET, "/nope", &[], b"")).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let r = handle(&state, request(Method::GET, HEALTH_PATH, &[], b"")).await;
        assert_eq!(r.status(), StatusCode::OK);
        state.set_stopping();
        let r = handle(&state, request(Method::GET, HEALTH_PATH, &[], b"")).await;
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        let r = handle(&state, request(Method::GET, METRICS_PATH, &[], b"")).await;
        let text = String::from_utf8(body(r).await).unwrap();
        assert!(
            text.contains("tolldns_issuer_tokens_issued_total 1\n"),
            "{text}"
        );
        assert!(text.contains("tolldns_issuer_published_keys 1\n"), "{text}");
    }
}
