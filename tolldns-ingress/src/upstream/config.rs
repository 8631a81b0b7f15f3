//! Upstream addresses, the pool configuration and configuration errors.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use hickory_proto::rr::{Name, RecordType};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::Question;

/// Default DoH request path (RFC 8484 §3 suggests nothing, but this is the common one).
pub const DEFAULT_DOH_PATH: &str = "/dns-query";

/// How the edge talks to one upstream resolver.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UpstreamProto {
    /// Plain DNS over UDP, retried over TCP when the answer is truncated.
    Udp,
    /// Plain DNS over TCP (RFC 7766 framing).
    Tcp,
    /// DNS over TLS (RFC 7858). The certificate must be valid for `server_name`.
    Tls {
        /// Name (or IP literal) checked against the upstream's certificate.
        server_name: String,
    },
    /// DNS over HTTPS (RFC 8484), HTTP/2 `POST application/dns-message`.
    Https {
        /// Request path, starting with `/` (usually `/dns-query`).
        path: String,
        /// Name (or IP literal) checked against the certificate and sent as the authority.
        server_name: String,
    },
}

impl UpstreamProto {
    /// Short lowercase label (`udp`, `tcp`, `tls`, `https`), suitable for metric labels.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
            Self::Tls { .. } => "tls",
            Self::Https { .. } => "https",
        }
    }

    fn default_port(scheme: &str) -> u16 {
        match scheme {
            "tls" => 853,
            "https" => 443,
            _ => 53,
        }
    }
}

/// One configured upstream: a literal socket address and a protocol.
///
/// Only IP literals are accepted (never host names), so configuring an upstream can never make the
/// edge resolve or contact anything but the listed addresses.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UpstreamSpec {
    /// Where queries are sent. The pool never sends anywhere else.
    pub addr: SocketAddr,
    /// Transport and, for TLS and HTTPS, the expected server name.
    pub proto: UpstreamProto,
}

impl UpstreamSpec {
    /// A UDP upstream (with TCP retry on truncation).
    pub fn udp(addr: SocketAddr) -> Self {
        Self {
            addr,
            proto: UpstreamProto::Udp,
        }
    }

    /// A TCP upstream.
    pub fn tcp(addr: SocketAddr) -> Self {
        Self {
            addr,
            proto: UpstreamProto::Tcp,
        }
    }

    /// A DNS-over-TLS upstream whose certificate must be valid for `server_name`.
    pub fn tls(addr: SocketAddr, server_name: impl Into<String>) -> Self {
        Self {
            addr,
            proto: UpstreamProto::Tls {
                server_name: server_name.into(),
            },
        }
    }

    /// A DNS-over-HTTPS upstream at `path` whose certificate must be valid for `server_name`.
    pub fn https(
        addr: SocketAddr,
        path: impl Into<String>,
        server_name: impl Into<String>,
    ) -> Self {
        Self {
            addr,
            proto: UpstreamProto::Https {
                path: path.into(),
                server_name: server_name.into(),
            },
        }
    }
}

/// Why an upstream string (`udp://…`, `tls://…#name`, …) could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseUpstreamError {
    /// The scheme is not one of `udp`, `tcp`, `tls`, `https`.
    #[error("unknown upstream scheme {0:?} (expected udp, tcp, tls or https)")]
    UnknownScheme(String),
    /// The host part is not an IP literal with an optional port.
    #[error("upstream address {0:?} is not an IP address with an optional port")]
    BadAddress(String),
    /// A `#server-name` was given for a scheme without TLS.
    #[error("a #server-name is only allowed for tls:// and https:// upstreams")]
    UnexpectedServerName,
    /// A path was given for a scheme other than `https`.
    #[error("a path is only allowed for https:// upstreams")]
    UnexpectedPath,
    /// The server name after `#` is empty.
    #[error("empty server name after '#'")]
    EmptyServerName,
}

impl FromStr for UpstreamSpec {
    type Err = ParseUpstreamError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (scheme, rest) = match s.split_once("://") {
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
            None => ("udp".to_owned(), s),
        };
        if !matches!(scheme.as_str(), "udp" | "tcp" | "tls" | "https") {
            return Err(ParseUpstreamError::UnknownScheme(scheme));
        }
        let (rest, server_name) = match rest.split_once('#') {
            Some((_, "")) => return Err(ParseUpstreamError::EmptyServerName),
            Some((rest, name)) => (rest, Some(name.to_owned())),
            None => (rest, None),
        };
        let (hostport, path) = match rest.find('/') {
            Some(i) => (
                rest.get(..i).unwrap_or(rest),
                rest.get(i..).map(str::to_owned),
            ),
            None => (rest, None),
        };
        let addr = parse_addr(hostport, UpstreamProto::default_port(&scheme))?;
        match scheme.as_str() {
            "udp" | "tcp" => {
                if server_name.is_some() {
                    return Err(ParseUpstreamError::UnexpectedServerName);
                }
                if path.is_some() {
                    return Err(ParseUpstreamError::UnexpectedPath);
                }
                Ok(if scheme == "udp" {
                    Self::udp(addr)
                } else {
                    Self::tcp(addr)
                })
            }
            "tls" => {
                if path.is_some() {
                    return Err(ParseUpstreamError::UnexpectedPath);
                }
                Ok(Self::tls(
                    addr,
                    server_name.unwrap_or_else(|| addr.ip().to_string()),
                ))
            }
            _ => Ok(Self::https(
                addr,
                path.unwrap_or_else(|| DEFAULT_DOH_PATH.to_owned()),
                server_name.unwrap_or_else(|| addr.ip().to_string()),
            )),
        }
    }
}

fn parse_addr(hostport: &str, default_port: u16) -> Result<SocketAddr, ParseUpstreamError> {
    if let Ok(addr) = hostport.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let bare = hostport
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(hostport);
    bare.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, default_port))
        .map_err(|_| ParseUpstreamError::BadAddress(hostport.to_owned()))
}

impl fmt::Display for UpstreamSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.proto {
            UpstreamProto::Udp => write!(f, "udp://{}", self.addr),
            UpstreamProto::Tcp => write!(f, "tcp://{}", self.addr),
            UpstreamProto::Tls { server_name } => write!(f, "tls://{}#{server_name}", self.addr),
            UpstreamProto::Https { path, server_name } => {
                write!(f, "https://{}{path}#{server_name}", self.addr)
            }
        }
    }
}

/// Configuration of an [`UpstreamPool`](super::UpstreamPool).
///
/// Build it with struct-update syntax from [`Default`]:
/// `UpstreamConfig { upstreams, quorum: Some(2), ..UpstreamConfig::default() }`.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// The allow-list: the only addresses the pool ever sends to.
    pub upstreams: Vec<UpstreamSpec>,
    /// Time limit for one exchange with one upstream (a TCP retry after truncation gets its own).
    pub timeout: Duration,
    /// How many upstreams one [`resolve`](super::UpstreamPool::resolve) tries before giving up
    /// (outside quorum mode). At least 1.
    pub max_attempts: usize,
    /// Quorum mode: ask several upstreams in parallel and grade the answer by agreement.
    /// `Some(n)` needs `1 <= n <= upstreams.len()`.
    pub quorum: Option<u8>,
    /// In quorum mode, how many upstreams are asked per question (raised to at least the quorum,
    /// capped by the number of upstreams).
    pub quorum_fanout: usize,
    /// Period of the health probe for healthy upstreams; the base of the backoff for down ones.
    pub health_interval: Duration,
    /// Longest wait between probes of an upstream that is down.
    pub health_max_backoff: Duration,
    /// Consecutive failures (queries or probes) after which an upstream is marked down.
    pub unhealthy_after: u32,
    /// What the health probe asks (default `. NS`). Any validated NOERROR or NXDOMAIN answer
    /// counts as healthy.
    pub health_probe: Question,
    /// Share of queries (0.0–1.0) sent first to a random healthy upstream other than the
    /// fastest, so the latency estimate of every upstream stays fresh.
    pub exploration: f64,
    /// Trust anchors for DoT and DoH upstreams. Empty by default (no web PKI roots are bundled);
    /// fill it from PEM with [`UpstreamConfig::add_ca_pem`].
    pub tls_roots: RootCertStore,
    /// UDP payload size advertised in EDNS (RFC 9715 recommends 1232).
    pub edns_payload: u16,
    /// Most persistent connections per TCP or DoT upstream (and per UDP upstream for the TCP
    /// retries of truncated answers). At least 1; default [`DEFAULT_POOL_SIZE`].
    pub pool_size: usize,
    /// Most queries in flight at once on one TCP or DoT connection (RFC 7766 pipelining).
    /// When every connection of a full pool carries this many, a query waits for room within
    /// its [`timeout`](Self::timeout). Between 1 and 32,768; default [`DEFAULT_MAX_IN_FLIGHT`].
    pub max_in_flight: usize,
    /// A TCP or DoT connection with nothing in flight for this long is closed; a DoH connection
    /// unused for this long is replaced by a new one at the next query. Default
    /// [`DEFAULT_IDLE_TIMEOUT`].
    pub idle_timeout: Duration,
}

/// Default [`UpstreamConfig::pool_size`].
pub const DEFAULT_POOL_SIZE: usize = 4;
/// Default [`UpstreamConfig::max_in_flight`].
pub const DEFAULT_MAX_IN_FLIGHT: usize = 100;
/// Default [`UpstreamConfig::idle_timeout`].
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            upstreams: Vec::new(),
            timeout: Duration::from_secs(2),
            max_attempts: 3,
            quorum: None,
            quorum_fanout: 3,
            health_interval: Duration::from_secs(5),
            health_max_backoff: Duration::from_secs(60),
            unhealthy_after: 3,
            health_probe: Question::new(Name::root(), RecordType::NS),
            exploration: 0.05,
            tls_roots: RootCertStore::empty(),
            edns_payload: 1232,
            pool_size: DEFAULT_POOL_SIZE,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

impl UpstreamConfig {
    /// Adds every certificate of a PEM bundle to [`tls_roots`](Self::tls_roots) and returns how
    /// many were added.
    ///
    /// # Errors
    ///
    /// [`UpstreamConfigError::BadPem`] if the PEM cannot be read or holds no certificate;
    /// [`UpstreamConfigError::Tls`] if a certificate is not a usable trust anchor.
    pub fn add_ca_pem(&mut self, pem: &[u8]) -> Result<usize, UpstreamConfigError> {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|_| UpstreamConfigError::BadPem)?;
            self.tls_roots.add(cert)?;
            added += 1;
        }
        if added == 0 {
            return Err(UpstreamConfigError::BadPem);
        }
        Ok(added)
    }
}

/// Why an [`UpstreamConfig`] was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamConfigError {
    /// No upstream configured.
    #[error("no upstream configured")]
    NoUpstreams,
    /// The quorum is zero or larger than the number of upstreams.
    #[error("quorum {quorum} is impossible with {upstreams} upstreams")]
    BadQuorum {
        /// Configured quorum.
        quorum: u8,
        /// Configured upstreams.
        upstreams: usize,
    },
    /// An upstream address is unspecified (`0.0.0.0`, `::`), multicast or has port 0.
    #[error("upstream address {0} is not a usable unicast address")]
    BadAddress(SocketAddr),
    /// The same upstream is listed twice.
    #[error("upstream {0} is listed twice")]
    Duplicate(String),
    /// The timeout is zero.
    #[error("the upstream timeout must be positive")]
    ZeroTimeout,
    /// A DoT or DoH upstream is configured but no trust anchor is.
    #[error("TLS upstreams need at least one trust anchor in tls_roots")]
    MissingTlsRoots,
    /// A server name is neither a DNS name nor an IP literal.
    #[error("invalid TLS server name {0:?}")]
    InvalidServerName(String),
    /// A DoH path does not start with `/` or is not a valid URI path.
    #[error("invalid DoH path {0:?}")]
    InvalidPath(String),
    /// A PEM bundle could not be read.
    #[error("no readable certificate in the PEM bundle")]
    BadPem,
    /// rustls rejected the TLS configuration.
    #[error(transparent)]
    Tls(#[from] rustls::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_forms() {
        let u: UpstreamSpec = "127.0.0.1:53".parse().unwrap();
        assert_eq!(u, UpstreamSpec::udp("127.0.0.1:53".parse().unwrap()));
        let u: UpstreamSpec = "tcp://[::1]:5353".parse().unwrap();
        assert_eq!(u, UpstreamSpec::tcp("[::1]:5353".parse().unwrap()));
        let u: UpstreamSpec = "tls://1.1.1.1#cloudflare-dns.com".parse().unwrap();
        assert_eq!(
            u,
            UpstreamSpec::tls("1.1.1.1:853".parse().unwrap(), "cloudflare-dns.com")
        );
        let u: UpstreamSpec = "https://127.0.0.1:8443/dns-query#dns.test".parse().unwrap();
        assert_eq!(
            u,
            UpstreamSpec::https("127.0.0.1:8443".parse().unwrap(), "/dns-query", "dns.test")
        );
        let u: UpstreamSpec = "https://10.0.0.1".parse().unwrap();
        assert_eq!(
            u,
            UpstreamSpec::https("10.0.0.1:443".parse().unwrap(), "/dns-query", "10.0.0.1")
        );
        for s in [
            "udp://1.2.3.4:53",
            "tls://1.2.3.4:853#x.example",
            "https://[::1]:443/q#h",
        ] {
            assert_eq!(s.parse::<UpstreamSpec>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn rejects_names_and_misplaced_parts() {
        assert!(matches!(
            "udp://dns.google:53".parse::<UpstreamSpec>(),
            Err(ParseUpstreamError::BadAddress(_))
        ));
        assert!(matches!(
            "quic://1.2.3.4".parse::<UpstreamSpec>(),
            Err(ParseUpstreamError::UnknownScheme(_))
        ));
        assert!(matches!(
            "udp://1.2.3.4#x".parse::<UpstreamSpec>(),
            Err(ParseUpstreamError::UnexpectedServerName)
        ));
        assert!(matches!(
            "tcp://1.2.3.4/x".parse::<UpstreamSpec>(),
            Err(ParseUpstreamError::UnexpectedPath)
        ));
        assert!(matches!(
            "tls://1.2.3.4#".parse::<UpstreamSpec>(),
            Err(ParseUpstreamError::EmptyServerName)
        ));
    }
}
