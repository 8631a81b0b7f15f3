//! The operator agent: delivers every signed batch receipt to every configured watcher from the
//! durable outbox in the journal.
//!
//! A delivery is `POST <watcher URL>` with the receipt's JSON form as the body,
//! `Content-Type: application/json` and `Idempotency-Key: <batch id hex>` (SHA-256 of the
//! receipt's canonical bytes). A `2xx` or `409 Conflict` (already have it) means delivered and
//! the outbox entry is removed. `400`, `413` and `422` are final refusals (the watcher read the
//! receipt and refused it by a rule, or cannot read it: sending it again changes nothing): the
//! entry is removed, the refusal logged with the watcher's reason and counted as `refused` in
//! `tolldns_outbox_deliveries_total`. Anything else (including `429`, `5xx`, timeouts and
//! connection errors) is retried with exponential backoff and jitter: attempt `n` waits a uniformly random time in
//! `[d/2, d]`, `d = min(retry_max_ms, retry_initial_ms * 2^n)`. Entries survive restarts.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::{Notify, watch};

use crate::journal::{Journal, OutboxEntry};
use crate::metrics::Metrics;

/// A watcher endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatcherUrl {
    uri: http::Uri,
    host: String,
    port: u16,
    tls: bool,
}

/// Why a watcher URL was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not an http:// or https:// URL with a host")]
pub struct UrlError;

impl WatcherUrl {
    /// Parses `http://host[:port]/path` or `https://...`.
    ///
    /// # Errors
    ///
    /// [`UrlError`].
    pub fn parse(s: &str) -> Result<Self, UrlError> {
        let uri: http::Uri = s.parse().map_err(|_| UrlError)?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(UrlError),
        };
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or(UrlError)?
            .trim_matches(['[', ']'])
            .to_owned();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        Ok(Self {
            uri,
            host,
            port,
            tls,
        })
    }
}

/// Why one delivery attempt failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// Connecting, TLS or I/O failed.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// HTTP failed.
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    /// Building the request failed.
    #[error("request: {0}")]
    Request(#[from] http::Error),
    /// The watcher answered with a status that is not success.
    #[error("watcher answered {0}")]
    Status(u16),
    /// The watcher refused the receipt for good (`400`, `413` or `422`): not retried.
    #[error("watcher refused the receipt with {status}: {reason}")]
    Refused {
        /// The status.
        status: u16,
        /// The start of the watcher's answer (it names the rule).
        reason: String,
    },
    /// No answer in time.
    #[error("timed out")]
    Timeout,
    /// `https://` without a trust store.
    #[error("https watcher but no TLS roots (set agent.ca_file)")]
    NoRoots,
    /// The host is not a valid TLS server name.
    #[error("invalid TLS server name")]
    ServerName,
}

/// The retry delay after `attempts` failures, given a random `r`.
pub fn backoff_ms(attempts: u32, initial_ms: u64, max_ms: u64, r: u64) -> u64 {
    let d = initial_ms
        .checked_shl(attempts.min(63))
        .filter(|d| *d >= initial_ms)
        .unwrap_or(max_ms)
        .min(max_ms);
    let half = d / 2;
    half + r % (d - half + 1)
}

/// Builds a TLS client configuration trusting the certificates of a PEM file.
///
/// # Errors
///
/// I/O errors, or an error naming the file when it has no usable certificate.
pub fn client_tls(ca_file: &std::path::Path) -> std::io::Result<Arc<rustls::ClientConfig>> {
    tolldns_service::tls::client_config(ca_file, &[])
        .map(Arc::new)
        .map_err(std::io::Error::other)
}

/// Posts one body to a watcher; returns the status when it means "delivered".
///
/// # Errors
///
/// [`DeliveryError`].
pub async fn post(
    url: &WatcherUrl,
    body: Bytes,
    idempotency_key: &str,
    tls: Option<&Arc<rustls::ClientConfig>>,
    timeout: Duration,
) -> Result<u16, DeliveryError> {
    tokio::time::timeout(timeout, post_inner(url, body, idempotency_key, tls))
        .await
        .map_err(|_| DeliveryError::Timeout)?
}

async fn post_inner(
    url: &WatcherUrl,
    body: Bytes,
    idempotency_key: &str,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<u16, DeliveryError> {
    let tcp = TcpStream::connect((url.host.as_str(), url.port)).await?;
    let path = url.uri.path_and_query().map_or("/", |p| p.as_str());
    let authority = url
        .uri
        .authority()
        .map_or(url.host.as_str(), |a| a.as_str());
    let request = http::Request::post(path)
        .header(http::header::HOST, authority)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header("idempotency-key", idempotency_key)
        .header(
            http::header::USER_AGENT,
            concat!("tolldns-miner/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(body))?;
    let (status, reason) = if url.tls {
        let config = tls.ok_or(DeliveryError::NoRoots)?;
        let name = rustls::pki_types::ServerName::try_from(url.host.clone())
            .map_err(|_| DeliveryError::ServerName)?;
        let stream = tokio_rustls::TlsConnector::from(Arc::clone(config))
            .connect(name, tcp)
            .await?;
        send(TokioIo::new(stream), request).await?
    } else {
        send(TokioIo::new(tcp), request).await?
    };
    match status {
        200..=299 | 409 => Ok(status),
        400 | 413 | 422 => Err(DeliveryError::Refused { status, reason }),
        _ => Err(DeliveryError::Status(status)),
    }
}

/// The most of a refusal's body kept for the log.
const MAX_REASON_LEN: usize = 512;

async fn send<T>(io: T, request: http::Request<Full<Bytes>>) -> Result<(u16, String), DeliveryError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    let driver = tokio::spawn(conn);
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    // Read the body (a refusal names the rule) so the connection also ends cleanly; only its
    // start is kept.
    let body = http_body_util::Limited::new(response.into_body(), 64 * 1024)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    driver.abort();
    let end = body.len().min(MAX_REASON_LEN);
    let reason = String::from_utf8_lossy(&body[..end]).trim().to_owned();
    Ok((status, reason))
}

/// Settings the agent reads on every pass (changed on SIGHUP).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentSettings {
    /// Watcher URLs.
    pub watchers: Vec<String>,
    /// First retry delay.
    pub retry_initial_ms: u64,
    /// Largest retry delay.
    pub retry_max_ms: u64,
    /// Per-request timeout.
    pub request_timeout_ms: u64,
}

/// The delivery loop.
#[derive(Debug)]
pub struct Agent {
    /// The journal with the outbox.
    pub journal: Arc<Journal>,
    /// Current settings.
    pub settings: Arc<RwLock<AgentSettings>>,
    /// TLS client configuration for https watchers.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Notified when a new batch entered the outbox.
    pub wake: Arc<Notify>,
}

impl Agent {
    fn settings(&self) -> AgentSettings {
        self.settings
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Runs until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            let now = crate::now_ms();
            let journal = Arc::clone(&self.journal);
            let due = tokio::task::spawn_blocking(move || journal.outbox_due(now, 64))
                .await
                .ok()
                .and_then(|r| {
                    r.map_err(|e| tracing::warn!(error = %e, "outbox read failed"))
                        .ok()
                })
                .unwrap_or_default();
            for entry in due {
                if *shutdown.borrow() {
                    return;
                }
                self.attempt(entry).await;
            }
            let journal = Arc::clone(&self.journal);
            let next = tokio::task::spawn_blocking(move || journal.outbox_next_due())
                .await
                .ok()
                .and_then(Result::ok)
                .flatten();
            let wait = next.map_or(Duration::from_secs(3600), |t| {
                Duration::from_millis(t.saturating_sub(crate::now_ms()).clamp(10, 3_600_000))
            });
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.wake.notified() => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    async fn attempt(&self, entry: OutboxEntry) {
        let settings = self.settings();
        let journal = Arc::clone(&self.journal);
        let id = entry.id;
        let receipt = tokio::task::spawn_blocking(move || journal.batch(&id)).await;
        let Ok(Ok(Some(receipt))) = receipt else {
            tracing::warn!(batch = %hex::encode(id), "outbox entry without a stored batch; dropping it");
            let journal = Arc::clone(&self.journal);
            let url = entry.url.clone();
            let _ = tokio::task::spawn_blocking(move || journal.outbox_delivered(&id, &url)).await;
            return;
        };
        let key = hex::encode(id);
        let result = match WatcherUrl::parse(&entry.url) {
            Ok(url) => {
                post(
                    &url,
                    Bytes::from(receipt.to_json()),
                    &key,
                    self.tls.as_ref(),
                    Duration::from_millis(settings.request_timeout_ms),
                )
                .await
            }
            Err(_) => Err(DeliveryError::Status(0)),
        };
        let journal = Arc::clone(&self.journal);
        let url = entry.url.clone();
        match result {
            Ok(status) => {
                self.metrics.delivery(true);
                tracing::info!(batch = %key, status, "batch delivered to watcher");
                let _ =
                    tokio::task::spawn_blocking(move || journal.outbox_delivered(&id, &url)).await;
            }
            Err(DeliveryError::Refused { status, reason }) => {
                self.metrics.delivery_refused();
                tracing::warn!(batch = %key, watcher = %entry.url, status, reason = %reason, "watcher refused the batch for good; not retried");
                let _ =
                    tokio::task::spawn_blocking(move || journal.outbox_delivered(&id, &url)).await;
            }
            Err(e) => {
                self.metrics.delivery(false);
                let attempts = entry.attempts.saturating_add(1);
                let delay = backoff_ms(
                    entry.attempts,
                    settings.retry_initial_ms,
                    settings.retry_max_ms,
                    rand::random(),
                );
                tracing::warn!(batch = %key, attempts, retry_in_ms = delay, error = %e, "watcher delivery failed");
                let next = crate::now_ms().saturating_add(delay);
                let _ = tokio::task::spawn_blocking(move || {
                    journal.outbox_retry(&id, &url, attempts, next)
                })
                .await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = WatcherUrl::parse("http://127.0.0.1:8080/v1/receipts").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.tls), ("127.0.0.1", 8080, false));
        let u = WatcherUrl::parse("https://watcher.example/r").unwrap();
        assert_eq!((u.port, u.tls), (443, true));
        let u = WatcherUrl::parse("http://[::1]/r").unwrap();
        assert_eq!(u.host, "::1");
        assert!(WatcherUrl::parse("ftp://x/").is_err());
        assert!(WatcherUrl::parse("/just/a/path").is_err());
    }

    /// A watcher that answers 503 to the first request, then `then` (a status line and a
    /// body), recording every request.
    async fn flaky_watcher(
        then: (&'static str, &'static str),
    ) -> (std::net::SocketAddr, Arc<std::sync::Mutex<Vec<String>>>) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                let mut buf = vec![0u8; 64 * 1024];
                let mut n = 0;
                // Read the head and the body (Content-Length).
                while let Ok(m) = s.read(&mut buf[n..]).await {
                    if m == 0 {
                        break;
                    }
                    n += m;
                    let text = String::from_utf8_lossy(&buf[..n]).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length: ")
                                    .map(|v| v.trim().parse::<usize>().unwrap())
                            })
                            .unwrap_or(0);
                        if body.len() >= len {
                            break;
                        }
                    }
                }
                let request = String::from_utf8_lossy(&buf[..n]).to_string();
                let first = {
                    let mut l = log.lock().unwrap();
                    l.push(request);
                    l.len() == 1
                };
                let (status, body) = if first {
                    ("503 Service Unavailable", "")
                } else {
                    then
                };
                let _ = s
                    .write_all(
                        format!(
                            "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        )
                        .as_bytes(),
                    )
                    .await;
            }
        });
        (addr, seen)
    }

    /// A journal holding one batch bound for the watcher at `url`, and an agent delivering it
    /// with short retry delays; returns the journal, the agent, the metrics registry, the
    /// receipt and its batch id.
    fn agent_with_one_batch(
        dir: &std::path::Path,
        url: &str,
        key_byte: u8,
    ) -> (
        Arc<Journal>,
        Agent,
        prometheus_client::registry::Registry,
        tolldns_receipts::Receipt,
        [u8; 32],
    ) {
        let (journal, _) = Journal::open(&dir.join("j.redb")).unwrap();
        let journal = Arc::new(journal);
        let key = ed25519_dalek::SigningKey::from_bytes(&[key_byte; 32]);
        let batch = crate::journal::tests::sample_batch(500, 5, &key);
        let (id, _) = journal
            .commit_batch(
                batch.receipt(),
                batch.leaves(),
                &[url.to_owned()],
                crate::now_ms(),
            )
            .unwrap();
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = Arc::new(Metrics::register(&mut registry));
        let agent = Agent {
            journal: Arc::clone(&journal),
            settings: Arc::new(RwLock::new(AgentSettings {
                watchers: vec![url.to_owned()],
                retry_initial_ms: 20,
                retry_max_ms: 50,
                request_timeout_ms: 2_000,
            })),
            tls: None,
            metrics,
            wake: Arc::new(Notify::new()),
        };
        (journal, agent, registry, batch.receipt().clone(), id)
    }

    #[tokio::test]
    async fn delivers_with_retry_and_idempotency_key() {
        let dir = crate::journal::tests::tmp("agent");
        let (addr, seen) = flaky_watcher(("409 Conflict", "")).await;
        let url = format!("http://{addr}/v1/receipts");
        let (journal, agent, registry, receipt, id) = agent_with_one_batch(&dir, &url, 4);
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(agent.run(stop_rx));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while journal.stats().unwrap().outbox_pending > 0 {
            assert!(std::time::Instant::now() < deadline, "not delivered");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop_tx.send(true).unwrap();
        task.await.unwrap();
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2, "one failure (503), then delivered (409)");
        for request in &seen {
            assert!(
                request.starts_with("POST /v1/receipts HTTP/1.1"),
                "{request}"
            );
            assert!(
                request.contains(&format!("idempotency-key: {}", hex::encode(id))),
                "{request}"
            );
            let body = request.split_once("\r\n\r\n").unwrap().1;
            assert_eq!(tolldns_receipts::Receipt::from_json(body).unwrap(), receipt);
        }
        let text = crate::metrics::encode(&registry);
        assert!(
            text.contains("tolldns_outbox_deliveries_total{result=\"failed\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("tolldns_outbox_deliveries_total{result=\"delivered\"} 1"),
            "{text}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_final_refusal_is_dropped_and_counted_not_retried() {
        let dir = crate::journal::tests::tmp("agent-refused");
        let (addr, seen) = flaky_watcher((
            "422 Unprocessable Entity",
            "{\"error\":\"overlapping_receipt\"}",
        ))
        .await;
        let url = format!("http://{addr}/v1/receipts");
        let (journal, agent, registry, _, _) = agent_with_one_batch(&dir, &url, 5);
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(agent.run(stop_rx));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while journal.stats().unwrap().outbox_pending > 0 {
            assert!(std::time::Instant::now() < deadline, "never dropped");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Several retry periods: a refused entry must not come back.
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop_tx.send(true).unwrap();
        task.await.unwrap();
        assert_eq!(seen.lock().unwrap().len(), 2, "503 retried, 422 not");
        let text = crate::metrics::encode(&registry);
        assert!(
            text.contains("tolldns_outbox_deliveries_total{result=\"refused\"} 1"),
            "{text}"
        );
        assert!(!text.contains("result=\"delivered\""), "{text}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        for (n, lo, hi) in [
            (0, 500, 1000),
            (1, 1000, 2000),
            (3, 4000, 8000),
            (20, 150_000, 300_000),
        ] {
            for r in [0u64, 1, 7, u64::MAX, 123_456_789] {
                let d = backoff_ms(n, 1000, 300_000, r);
                assert!((lo..=hi).contains(&d), "n={n} r={r} d={d}");
            }
        }
        assert_eq!(backoff_ms(0, 1000, 300_000, 0), 500);
        assert_eq!(backoff_ms(0, 1000, 300_000, 500), 1000);
        assert!(backoff_ms(200, 1000, 300_000, 3) <= 300_000);
    }
}
