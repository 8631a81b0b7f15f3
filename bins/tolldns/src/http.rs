//! A small HTTP client (hyper 1 connection API over a tokio `TcpStream`, optionally TLS): one
//! request per connection, HTTP/1.1 or, when TLS ALPN picked `h2`, HTTP/2. Enough for an
//! issuer's directory and token requests and for DoH; no redirects, no proxies, no cookies.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode, header};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::error::CliError;

/// A TLS client configuration trusting only the certificates of the PEM file `ca` (a `--ca`
/// option; no system or bundled roots are built in), offering `alpn`
/// ([`tolldns_service::tls::client_config`]).
///
/// # Errors
///
/// When the file cannot be read, holds no certificate, or rustls refuses one.
pub(crate) fn client_config(
    ca: &Path,
    alpn: &[&[u8]],
) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let config = tolldns_service::tls::client_config(ca, alpn).context("reading the CA file")?;
    Ok(Arc::new(config))
}

/// The name a server certificate must carry (a DNS name or an IP address).
///
/// # Errors
///
/// When `name` is neither.
pub(crate) fn server_name(name: &str) -> anyhow::Result<ServerName<'static>> {
    ServerName::try_from(name.to_owned()).map_err(|_| {
        anyhow::Error::from(CliError::field(
            "--tls-name",
            format!("{name:?} is not a DNS name or IP address"),
        ))
    })
}

/// A byte stream a request can go over: TCP or TLS over TCP.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// An origin: `http://HOST[:PORT]` or `https://HOST[:PORT]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    /// Whether the scheme is `https`.
    pub(crate) https: bool,
    /// Host name or IP address (IPv6 without brackets).
    pub(crate) host: String,
    /// Port (default 80 or 443).
    pub(crate) port: u16,
}

impl Origin {
    /// Parses an origin URL; `what` names the argument in errors. A path other than `/`, a
    /// query or user information are refused.
    pub(crate) fn parse(what: &str, url: &str) -> Result<Self, CliError> {
        let bad = |reason: &str| CliError::field(what, format!("{url:?}: {reason}"));
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
    pub(crate) fn authority(&self) -> String {
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

/// A complete response.
#[derive(Debug)]
pub(crate) struct Reply {
    /// Status.
    pub(crate) status: StatusCode,
    /// Headers.
    pub(crate) headers: HeaderMap,
    /// Body (at most the limit the request was sent with).
    pub(crate) body: Bytes,
}

impl Reply {
    /// `STATUS REASON: BODY` for messages: the body as text, control characters escaped,
    /// at most 1000 characters.
    pub(crate) fn describe(&self) -> String {
        let text = crate::printable(String::from_utf8_lossy(&self.body).trim());
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
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Opens a TCP connection to `host:port`.
///
/// # Errors
///
/// When the name does not resolve or the connection fails.
pub(crate) async fn connect_tcp(host: &str, port: u16) -> anyhow::Result<TcpStream> {
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
pub(crate) async fn connect_tls(
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

/// Opens a connection to `origin` (TLS with `tls` for `https`).
///
/// # Errors
///
/// As [`connect_tcp`] and [`connect_tls`]; an `https` origin without `tls` is refused.
pub(crate) async fn connect_origin(
    origin: &Origin,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> anyhow::Result<Box<dyn Io>> {
    let tcp = connect_tcp(&origin.host, origin.port).await?;
    if !origin.https {
        return Ok(Box::new(tcp));
    }
    let config = tls.ok_or_else(|| {
        CliError::field(
            "--ca",
            "an https:// issuer needs --ca FILE (the PEM root its certificate chains to)",
        )
    })?;
    let name = server_name(&origin.host)?;
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
pub(crate) async fn send(
    io: Box<dyn Io>,
    h2: bool,
    mut request: Request<Full<Bytes>>,
    max_body: usize,
) -> anyhow::Result<Reply> {
    let io = TokioIo::new(io);
    let response = if h2 {
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
    let (parts, body) = response;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_parse_with_default_ports() {
        let o = Origin::parse("--issuer", "http://127.0.0.1:8080").unwrap();
        assert_eq!(
            (o.https, o.host.as_str(), o.port),
            (false, "127.0.0.1", 8080)
        );
        assert_eq!(o.to_string(), "http://127.0.0.1:8080");
        let o = Origin::parse("--issuer", "https://issuer.example/").unwrap();
        assert_eq!(
            (o.https, o.port, o.authority()),
            (true, 443, "issuer.example".to_owned())
        );
        let o = Origin::parse("--issuer", "http://[::1]:9000").unwrap();
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
            let err = Origin::parse("--issuer", bad).unwrap_err().to_string();
            assert!(err.starts_with("--issuer: "), "{bad}: {err}");
        }
    }
}
