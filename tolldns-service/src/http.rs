//! A small HTTP client (hyper 1 connection API over a tokio `TcpStream`, optionally TLS): one
//! request per connection, HTTP/1.1 or, when TLS ALPN picked `h2`, HTTP/2. Enough for an
//! issuer's directory and token requests, a miner's audit API and DoH; no redirects, no
//! proxies, no cookies. Shared by the `tolldns` command-line tool and the watcher.

use std::sync::Arc;

use anyhow::Context as _;
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode, header};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// Why a URL is not an origin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{url:?}: {reason}")]
pub struct OriginError {
    /// The URL as given.
    pub url: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// An `https://` origin was given without a TLS client configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin} is https:// but no TLS roots are configured to check its certificate")]
pub struct NoTlsRoots {
    /// The origin.
    pub origin: String,
}

/// The name a server certificate must carry (a DNS name or an IP address); `None` when
/// `name` is neither.
pub fn server_name(name: &str) -> Option<ServerName<'static>> {
    ServerName::try_from(name.to_owned()).ok()
}

/// A byte stream a request can go over: TCP or TLS over TCP.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// An origin: `http://HOST[:PORT]` or `https://HOST[:PORT]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// Whether the scheme is `https`.
    pub https: bool,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// Port (default 80 or 443).
    pub port: u16,
}

impl Origin {
    /// Parses an origin URL. A path other than `/`, a query or user information are refused.
    ///
    /// # Errors
    ///
    /// [`OriginError`] saying what is wrong.
    pub fn parse(url: &str) -> Result<Self, OriginError> {
        let bad = |reason: &'static str| OriginError {
            url: url.to_owned(),
            reason,
        };
        let uri: http::Uri = url.parse().map_err(|_| bad("not a URL"))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(bad("the scheme must be http:// or https://")),
        };
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("user information is not supported"));
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(bad(
                "give the origin only (scheme://host:port), without a path",
            ));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        Ok(Self {
            https,
            host: host.to_owned(),
            port: authority.port_u16().unwrap_or(if https { 443 } else { 80 }),
        })
    }

    /// `HOST[:PORT]` for a `Host` header (the port only when not the scheme's default).
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == if self.https { 443 } else { 80 } {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}", self.authority())
    }
}

/// `text` with control characters escaped (for messages quoting what a server sent).
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A complete response.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body (at most the limit the request was sent with).
    pub body: Bytes,
}

impl Reply {
    /// `STATUS REASON: BODY` for messages: the body as text, control characters escaped,
    /// at most 1000 characters.
    pub fn describe(&self) -> String {
        let text = printable(String::from_utf8_lossy(&self.body).trim());
        let text: String = text.chars().take(1000).collect();
        let code = self.status.as_u16();
        let status = match self.status.canonical_reason() {
            Some(reason) => format!("{code} {reason}"),
            None => code.to_string(),
        };
        if text.is_empty() {
            status
        } else {
            format!("{status}: {text}")
        }
    }

    /// A header as text, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Opens a TCP connection to `host:port`.
///
/// # Errors
///
/// When the name does not resolve or the connection fails (the [`std::io::Error`] is in the
/// chain, e.g. `ConnectionRefused`).
pub async fn connect_tcp(host: &str, port: u16) -> anyhow::Result<TcpStream> {
    let stream = TcpStream::connect((host, port))
        .await
        .with_context(|| format!("connecting to {host} port {port}"))?;
    // Requests are small and sent whole: no reason to wait for more.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Runs a TLS handshake over `tcp` for `name`; returns the stream and whether ALPN chose
/// `h2`.
///
/// # Errors
///
/// When the handshake fails (e.g. the certificate does not verify).
pub async fn connect_tls(
    tcp: TcpStream,
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
) -> anyhow::Result<(tokio_rustls::client::TlsStream<TcpStream>, bool)> {
    let shown = name.to_str().into_owned();
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .with_context(|| format!("TLS handshake with {shown}"))?;
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    Ok((tls, h2))
}

/// Opens a connection to `origin` (TLS with `tls` for `https`, checking the certificate for
/// the origin's host).
///
/// # Errors
///
/// As [`connect_tcp`] and [`connect_tls`]; an `https` origin without `tls` is
/// [`NoTlsRoots`].
pub async fn connect_origin(
    origin: &Origin,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> anyhow::Result<Box<dyn Io>> {
    if !origin.https {
        return Ok(Box::new(connect_tcp(&origin.host, origin.port).await?));
    }
    let config = tls.ok_or_else(|| NoTlsRoots {
        origin: origin.to_string(),
    })?;
    let name = server_name(&origin.host)
        .with_context(|| format!("{:?} is not a DNS name or IP address", origin.host))?;
    let tcp = connect_tcp(&origin.host, origin.port).await?;
    let (stream, _) = connect_tls(tcp, Arc::clone(config), name).await?;
    Ok(Box::new(stream))
}

/// Sends `request` over `io` (HTTP/2 if `h2`, else HTTP/1.1 with `Connection: close`) and
/// reads the whole response, refusing a body over `max_body` bytes.
///
/// For HTTP/1.1 the request URI should be in origin form (`/path?query`) with a `Host`
/// header; for HTTP/2 absolute (`https://authority/path`).
///
/// # Errors
///
/// Protocol and I/O errors, and a body that is too long.
pub async fn send(
    io: Box<dyn Io>,
    h2: bool,
    mut request: Request<Full<Bytes>>,
    max_body: usize,
) -> anyhow::Result<Reply> {
    let io = TokioIo::new(io);
    let (parts, body) = if h2 {
        let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .context("HTTP/2 handshake")?;
        let driver = tokio::spawn(conn);
        let response = sender.send_request(request).await;
        let response = response.context("sending the HTTP/2 request")?;
        let (parts, body) = response.into_parts();
        let body = collect(body, max_body).await;
        drop(sender);
        driver.abort();
        (parts, body?)
    } else {
        request.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .context("HTTP/1.1 handshake")?;
        let driver = tokio::spawn(conn);
        let response = sender
            .send_request(request)
            .await
            .context("sending the HTTP/1.1 request")?;
        let (parts, body) = response.into_parts();
        let body = collect(body, max_body).await;
        drop(sender);
        driver.abort();
        (parts, body?)
    };
    Ok(Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

async fn collect(body: hyper::body::Incoming, max_body: usize) -> anyhow::Result<Bytes> {
    match Limited::new(body, max_body).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            anyhow::bail!("the response body is longer than {max_body} bytes")
        }
        Err(e) => Err(anyhow::anyhow!(e).context("reading the response body")),
    }
}

/// Attempts per audit request when the miner answers `429` or `503`.
pub const AUDIT_ATTEMPTS: u32 = 4;
/// The longest `Retry-After` an audit client honours, in seconds.
pub const MAX_RETRY_AFTER_S: u64 = 10;

/// A client of a miner's audit API, as one auditor: every request to an auditor endpoint is
/// signed anew with [`crate::auditor::authorization`] (fresh nonce, current time), and
/// retried after `429` and `503` (at most [`AUDIT_ATTEMPTS`] attempts, waiting `Retry-After`
/// seconds, 1 to [`MAX_RETRY_AFTER_S`]).
pub struct AuditClient {
    origin: Origin,
    tls: Option<Arc<rustls::ClientConfig>>,
    timeout: std::time::Duration,
    auditor: ed25519_dalek::SigningKey,
}

impl std::fmt::Debug for AuditClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditClient")
            .field("origin", &self.origin)
            .field("tls", &self.tls.is_some())
            .field("timeout", &self.timeout)
            .field(
                "auditor",
                &bs58::encode(self.auditor.verifying_key().as_bytes()).into_string(),
            )
            .finish()
    }
}

impl AuditClient {
    /// A client of the API at `origin` (TLS with `tls` for `https`), each exchange (connect,
    /// request, response) bounded by `timeout`, signing with `auditor`.
    pub fn new(
        origin: Origin,
        tls: Option<Arc<rustls::ClientConfig>>,
        timeout: std::time::Duration,
        auditor: ed25519_dalek::SigningKey,
    ) -> Self {
        Self {
            origin,
            tls,
            timeout,
            auditor,
        }
    }

    /// The API's origin.
    pub const fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The auditor key.
    pub const fn auditor(&self) -> &ed25519_dalek::SigningKey {
        &self.auditor
    }

    /// One GET exchange; `auth` is the `Authorization` value, if any.
    async fn exchange(
        &self,
        path: &str,
        auth: Option<String>,
        max: usize,
    ) -> anyhow::Result<Reply> {
        let go = async {
            let io = connect_origin(&self.origin, self.tls.as_ref()).await?;
            let mut request = Request::builder()
                .method(http::Method::GET)
                .uri(path)
                .header(header::HOST, self.origin.authority())
                .header(header::ACCEPT, "application/json");
            if let Some(auth) = auth {
                request = request.header(header::AUTHORIZATION, auth);
            }
            let request = request
                .body(Full::new(Bytes::new()))
                .context("building the request")?;
            send(io, false, request, max).await
        };
        tokio::time::timeout(self.timeout, go)
            .await
            .map_err(|_| {
                anyhow::Error::from(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {} ms", self.timeout.as_millis()),
                ))
            })
            .and_then(|r| r)
            .with_context(|| format!("GET {}{path}", self.origin))
    }

    /// GETs `path` (with its query), signed for the miner whose receipt-signing key is
    /// `operator` when given (public endpoints take `None`); retries after `429` and `503`.
    /// Returns the last reply, whatever its status, and the nonce signed into it (the HPKE
    /// name-key envelope is bound to it).
    ///
    /// # Errors
    ///
    /// Connection, TLS, timeout ([`std::io::ErrorKind::TimedOut`]) and protocol errors, and a
    /// body over `max` bytes; no OS randomness for the nonce.
    pub async fn get(
        &self,
        path: &str,
        operator: Option<&[u8; 32]>,
        max: usize,
    ) -> anyhow::Result<(Reply, [u8; 16])> {
        use rand_core_09::TryRngCore as _;
        let mut attempt = 1;
        loop {
            let mut nonce = [0u8; 16];
            rand_core_09::OsRng
                .try_fill_bytes(&mut nonce)
                .map_err(|e| anyhow::anyhow!("reading OS randomness: {e}"))?;
            let auth = operator.map(|op| {
                crate::auditor::authorization(&self.auditor, op, now_ms(), &nonce, "GET", path)
            });
            let reply = self.exchange(path, auth, max).await?;
            let busy = matches!(
                reply.status,
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
            );
            if busy && attempt < AUDIT_ATTEMPTS {
                let wait = reply
                    .header("retry-after")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(1)
                    .clamp(1, MAX_RETRY_AFTER_S);
                tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
                attempt += 1;
                continue;
            }
            return Ok((reply, nonce));
        }
    }
}

/// Wall-clock milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_parse_with_default_ports() {
        let o = Origin::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            (o.https, o.host.as_str(), o.port),
            (false, "127.0.0.1", 8080)
        );
        assert_eq!(o.to_string(), "http://127.0.0.1:8080");
        let o = Origin::parse("https://issuer.example/").unwrap();
        assert_eq!(
            (o.https, o.port, o.authority()),
            (true, 443, "issuer.example".to_owned())
        );
        let o = Origin::parse("http://[::1]:9000").unwrap();
        assert_eq!(
            (o.host.as_str(), o.authority()),
            ("::1", "[::1]:9000".to_owned())
        );
        for bad in [
            "ftp://x",
            "127.0.0.1:80",
            "http://x/path",
            "http://u@x",
            "http://x/?q",
        ] {
            let err = Origin::parse(bad).unwrap_err();
            assert_eq!(err.url, bad);
        }
    }

    #[test]
    fn describe_escapes_and_truncates() {
        let reply = Reply {
            status: StatusCode::PAYMENT_REQUIRED,
            headers: HeaderMap::new(),
            body: Bytes::from(format!("no\nquota{}", "x".repeat(2000))),
        };
        let text = reply.describe();
        assert!(
            text.starts_with("402 Payment Required: no\\nquota"),
            "{text}"
        );
        assert_eq!(text.chars().count(), "402 Payment Required: ".len() + 1000);
    }
}
