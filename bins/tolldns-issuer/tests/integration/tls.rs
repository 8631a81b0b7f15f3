//! The listener over TLS (`[tls] cert`/`key`).

use std::io::{Read as _, Write as _};
use std::sync::Arc;
use std::time::Duration;

use crate::support::{Issuer, parse_response, request_bytes, temp_dir};

#[test]
fn tls_listener_serves_the_directory() {
    let dir = temp_dir("tls");
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    tolldns_issuer::keys::write_private_file(
        &dir.join("key.pem"),
        cert.signing_key.serialize_pem().as_bytes(),
    )
    .unwrap();
    std::fs::write(dir.join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(
        dir.join("c.toml"),
        "data_dir = \"d\"\n[tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n",
    )
    .unwrap();
    let mut issuer = Issuer::spawn(&dir, &["--config", "c.toml"]);
    let base = format!("https://{}", issuer.addr);
    assert_eq!(
        issuer.banner("issuance "),
        format!("{base}{}", tolldns_tickets::ISSUE_PATH)
    );

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = std::net::TcpStream::connect(issuer.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(&request_bytes(
        &issuer.addr.to_string(),
        "GET",
        tolldns_tickets::DIRECTORY_PATH,
        &[],
        b"",
    ))
    .unwrap();
    let mut raw = Vec::new();
    // The server closes without close_notify after `Connection: close` on some paths; what
    // was read is the whole response either way.
    let _ = tls.read_to_end(&mut raw);
    let r = parse_response(&raw);
    assert_eq!(r.status, 200, "{}", r.text());
    let directory = tolldns_tickets::IssuerDirectory::from_json(&r.body).unwrap();
    assert_eq!(
        directory.issuer_request_uri,
        format!("{base}{}", tolldns_tickets::ISSUE_PATH)
    );
    // Plain HTTP on the TLS port gets no answer.
    let plain = std::net::TcpStream::connect(issuer.addr).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut plain = plain;
    let _ = plain.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(!answer.starts_with(b"HTTP/1.1 200"));
    assert!(issuer.terminate().success());
    let _ = std::fs::remove_dir_all(dir);
}
