//! The HTTP service: directory, issuance with a credited wallet, refusals, restart, rotation.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ed25519_dalek::SigningKey;
use tolldns_tickets::{
    AcceptedKey, DIRECTORY_MEDIA_TYPE, DIRECTORY_PATH, ISSUE_PATH, IssuerPublicKey,
    RESPONSE_MEDIA_TYPE, TokenResponse, TokenVerifier,
};

use crate::support::{
    Issuer, buyer, cli_ok, http, post_request, request_bytes, temp_dir, token_request,
};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `key show`: (key id hex, token-key) per key, current first.
fn key_show(cwd: &std::path::Path, data_dir: &str) -> Vec<(String, String)> {
    let out = cli_ok(&["key", "show", "--data-dir", data_dir], cwd);
    let lines: Vec<&str> = out.lines().collect();
    lines
        .chunks(2)
        .map(|pair| {
            let id = pair[0]
                .strip_prefix("key id ")
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap();
            let spki = pair[1].strip_prefix("token-key ").unwrap();
            (id.to_owned(), spki.to_owned())
        })
        .collect()
}

#[test]
fn runs_on_defaults_and_directory_matches_key_show() {
    let dir = temp_dir("defaults");
    // No config file, no --data-dir: ./tolldns-issuer-data.
    let mut issuer = Issuer::spawn(&dir, &[]);
    let data = dir.join("tolldns-issuer-data");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("issuer-key.pem")), 0o600);
        assert_eq!(mode(&data.join("ledger.redb")), 0o600);
    }
    let base = format!("http://{}", issuer.addr);
    assert_eq!(
        issuer.banner("directory "),
        format!("{base}{DIRECTORY_PATH}")
    );
    assert_eq!(issuer.banner("issuance "), format!("{base}{ISSUE_PATH}"));

    let r = http(issuer.addr, "GET", DIRECTORY_PATH, &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some(DIRECTORY_MEDIA_TYPE));
    assert_eq!(r.header("cache-control"), Some("max-age=3600"));
    let directory = tolldns_tickets::IssuerDirectory::from_json(&r.body).unwrap();
    assert_eq!(directory.issuer_request_uri, format!("{base}{ISSUE_PATH}"));
    assert_eq!(directory.token_keys.len(), 1);
    let keys = directory.keys();
    assert_eq!(keys.len(), 1);

    let shown = key_show(&dir, "tolldns-issuer-data");
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].0, hex::encode(keys[0].0.key_id()));
    assert_eq!(shown[0].1, directory.token_keys[0].token_key);
    assert!(
        issuer
            .banner("key id ")
            .starts_with(&format!("{} (current", shown[0].0))
    );

    assert_eq!(http(issuer.addr, "GET", "/healthz", &[], b"").status, 200);
    let status = issuer.terminate();
    assert!(status.success(), "{status:?}\n{}", issuer.output());
    assert!(issuer.output().contains("stopped"), "{}", issuer.output());
    let _ = std::fs::remove_dir_all(dir);
}

fn issuer_key(issuer: &Issuer) -> (IssuerPublicKey, u64) {
    let (key, not_before) = issuer.directory().keys().remove(0);
    (key, not_before.unwrap())
}

#[test]
fn credited_wallet_gets_a_token_that_verifies() {
    let dir = temp_dir("issue");
    let issuer = Issuer::spawn(&dir, &["--data-dir", "d"]);
    let wallet = SigningKey::from_bytes(&[21; 32]);
    // Credited while the issuer runs.
    let out = cli_ok(
        &[
            "credit",
            "--data-dir",
            "d",
            "--buyer",
            &buyer(&wallet),
            "--tokens",
            "2",
        ],
        &dir,
    );
    assert!(out.contains("balance 2"), "{out}");

    let (key, not_before) = issuer_key(&issuer);
    let (body, purchase, pending) = token_request(&key, &wallet);
    let r = post_request(issuer.addr, &body, Some(&purchase));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some(RESPONSE_MEDIA_TYPE));
    let response = TokenResponse::from_bytes(&r.body, key.nk()).unwrap();
    let token = pending.finalize(&key, &response).unwrap();

    let verifier = TokenVerifier::new(
        vec![AcceptedKey {
            key: key.clone(),
            not_before,
            not_after: None,
        }],
        crate::support::challenge().digest().unwrap(),
    );
    let verified = verifier.verify(&token.to_bytes(), now()).unwrap();
    assert_eq!(verified.key_id, key.key_id());

    let out = cli_ok(
        &["balance", "--data-dir", "d", "--buyer", &buyer(&wallet)],
        &dir,
    );
    assert_eq!(out.trim(), format!("{} 1 tokens", buyer(&wallet)));
    assert_eq!(issuer.metric("tolldns_issuer_tokens_issued_total"), Some(1));
    drop(issuer);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn refusals_have_their_statuses() {
    let dir = temp_dir("refusals");
    let issuer = Issuer::spawn(&dir, &["--data-dir", "d"]);
    let (key, _) = issuer_key(&issuer);
    let wallet = SigningKey::from_bytes(&[31; 32]);
    let (body, purchase, _) = token_request(&key, &wallet);
    let reason =
        |r: &str| issuer.metric(&format!("tolldns_issuer_refusals_total{{reason=\"{r}\"}}"));

    // No purchase header.
    assert_eq!(post_request(issuer.addr, &body, None).status, 401);
    assert_eq!(reason("no_purchase_header"), Some(1));
    // A signature over another body.
    let (_, other_purchase, _) = token_request(&key, &wallet);
    assert_eq!(
        post_request(issuer.addr, &body, Some(&other_purchase)).status,
        401
    );
    // A signature by another key than the one named.
    let forged = purchase.replace(&buyer(&wallet), &buyer(&SigningKey::from_bytes(&[32; 32])));
    assert_eq!(post_request(issuer.addr, &body, Some(&forged)).status, 401);
    assert_eq!(reason("bad_purchase"), Some(2));
    // A valid signature by a buyer who never paid.
    let r = post_request(issuer.addr, &body, Some(&purchase));
    assert_eq!(r.status, 402, "{}", r.text());
    assert_eq!(reason("no_purchase"), Some(1));

    // Credit 1, issue 2: the second is refused.
    cli_ok(
        &[
            "credit",
            "--data-dir",
            "d",
            "--buyer",
            &buyer(&wallet),
            "--tokens",
            "1",
        ],
        &dir,
    );
    assert_eq!(
        post_request(issuer.addr, &body, Some(&purchase)).status,
        200
    );
    let (body2, purchase2, _) = token_request(&key, &wallet);
    let r = post_request(issuer.addr, &body2, Some(&purchase2));
    assert_eq!(r.status, 402, "{}", r.text());
    assert_eq!(reason("exhausted"), Some(1));

    // Wrong content type.
    let r = http(
        issuer.addr,
        "POST",
        ISSUE_PATH,
        &[
            ("Content-Type", "application/octet-stream"),
            (tolldns_tickets::PURCHASE_HEADER, &purchase2),
        ],
        &body2,
    );
    assert_eq!(r.status, 415);
    assert_eq!(reason("media_type"), Some(1));
    // Garbage body.
    let garbage = b"not a token request";
    let garbage_purchase = tolldns_tickets::purchase_header(&wallet, garbage);
    assert_eq!(
        post_request(issuer.addr, garbage, Some(&garbage_purchase)).status,
        400
    );
    assert_eq!(reason("malformed"), Some(1));
    // Too large (declared, then sent).
    let big = vec![0u8; 5000];
    let r = post_request(issuer.addr, &big, Some(&purchase2));
    assert_eq!(r.status, 413);
    assert_eq!(reason("too_large"), Some(1));
    // Too large without a Content-Length (chunked).
    let mut s = std::net::TcpStream::connect(issuer.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut raw = request_bytes(
        &issuer.addr.to_string(),
        "POST",
        ISSUE_PATH,
        &[
            ("Content-Type", tolldns_tickets::REQUEST_MEDIA_TYPE),
            ("Transfer-Encoding", "chunked"),
        ],
        b"",
    );
    raw.extend_from_slice(b"1388\r\n");
    raw.extend_from_slice(&big);
    raw.extend_from_slice(b"\r\n0\r\n\r\n");
    // `request_bytes` set Content-Length: 0 for the empty POST; drop it for chunked.
    let raw = String::from_utf8_lossy(&raw).replace("Content-Length: 0\r\n", "");
    std::io::Write::write_all(&mut s, raw.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = std::io::Read::read_to_end(&mut s, &mut answer);
    assert_eq!(crate::support::parse_response(&answer).status, 413);

    // Wrong methods, unknown path.
    let r = http(issuer.addr, "GET", ISSUE_PATH, &[], b"");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
    let r = http(issuer.addr, "POST", DIRECTORY_PATH, &[], b"");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET"));
    assert_eq!(http(issuer.addr, "GET", "/nothing", &[], b"").status, 404);

    assert_eq!(issuer.metric("tolldns_issuer_tokens_issued_total"), Some(1));
    // No buyer key anywhere in the metrics.
    let metrics = http(issuer.addr, "GET", "/metrics", &[], b"").text();
    assert!(!metrics.contains(&buyer(&wallet)), "{metrics}");
    drop(issuer);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn ledger_survives_restart() {
    let dir = temp_dir("restart");
    let wallet = SigningKey::from_bytes(&[41; 32]);
    let b = buyer(&wallet);
    let mut issuer = Issuer::spawn(&dir, &["--data-dir", "d"]);
    // Credited through the running issuer's admin socket.
    assert!(dir.join("d/admin.sock").exists());
    cli_ok(
        &["credit", "--data-dir", "d", "--buyer", &b, "--tokens", "3"],
        &dir,
    );
    // A second issuer on the same data directory is refused.
    let out = crate::support::cli(&["run", "--data-dir", "d", "--listen", "127.0.0.1:0"], &dir);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ledger.redb is open in another process"),
        "{err}"
    );
    assert!(issuer.terminate().success());
    assert!(!dir.join("d/admin.sock").exists());
    assert_eq!(
        cli_ok(&["balance", "--data-dir", "d", "--buyer", &b], &dir).trim(),
        format!("{b} 3 tokens")
    );
    let mut issuer = Issuer::spawn(&dir, &["--data-dir", "d"]);
    let (key, _) = issuer_key(&issuer);
    let (body, purchase, _) = token_request(&key, &wallet);
    assert_eq!(
        post_request(issuer.addr, &body, Some(&purchase)).status,
        200
    );
    assert!(issuer.terminate().success());
    assert_eq!(
        cli_ok(&["balance", "--data-dir", "d", "--buyer", &b], &dir).trim(),
        format!("{b} 2 tokens")
    );
    let other = buyer(&SigningKey::from_bytes(&[42; 32]));
    assert_eq!(
        cli_ok(&["balance", "--data-dir", "d", "--buyer", &other], &dir).trim(),
        format!("{other} 0 tokens (never credited)")
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn rotated_key_is_published_first_and_the_old_one_still_issues() {
    let dir = temp_dir("rotate");
    let issuer = Issuer::spawn(&dir, &["--data-dir", "d"]);
    let (old, _) = issuer_key(&issuer);
    let out = cli_ok(&["key", "rotate", "--data-dir", "d"], &dir);
    assert!(out.contains(&hex::encode(old.key_id())), "{out}");
    issuer.signal("HUP");
    issuer
        .wait_for(Duration::from_secs(30), |l| {
            l.contains("issuer keys reloaded")
        })
        .unwrap_or_else(|| panic!("no reload:\n{}", issuer.output()));

    let directory = issuer.directory();
    let keys = directory.keys();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[1].0, old);
    let shown = key_show(&dir, "d");
    assert_eq!(
        shown
            .iter()
            .map(|(_, spki)| spki.as_str())
            .collect::<Vec<_>>(),
        directory
            .token_keys
            .iter()
            .map(|k| k.token_key.as_str())
            .collect::<Vec<_>>()
    );
    // The retired key is kept under its not-before.
    let retired: Vec<String> = std::fs::read_dir(dir.join("d/issuer-keys"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let old_nb = keys[1].1.unwrap();
    assert_eq!(
        retired,
        vec![format!("{old_nb}-{}.pem", &hex::encode(old.key_id())[..8])]
    );

    // Clients with either key get tokens.
    let wallet = SigningKey::from_bytes(&[51; 32]);
    cli_ok(
        &[
            "credit",
            "--data-dir",
            "d",
            "--buyer",
            &buyer(&wallet),
            "--tokens",
            "2",
        ],
        &dir,
    );
    for key in [&keys[0].0, &old] {
        let (body, purchase, pending) = token_request(key, &wallet);
        let r = post_request(issuer.addr, &body, Some(&purchase));
        assert_eq!(r.status, 200, "{}", r.text());
        let response = TokenResponse::from_bytes(&r.body, key.nk()).unwrap();
        let token = pending.finalize(key, &response).unwrap();
        assert!(key.verify_signature(&token));
    }
    assert_eq!(issuer.metric("tolldns_issuer_published_keys"), Some(2));
    drop(issuer);
    let _ = std::fs::remove_dir_all(dir);
}
