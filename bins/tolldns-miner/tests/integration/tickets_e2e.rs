//! End to end with the shipped binaries: `tolldns-issuer` issues tokens against a credited
//! wallet, `tolldns ticket fetch` buys them, and the miner redeems them over UDP, TCP, DoT and
//! DoH from real clients (`tolldns query`, kdig with the token as an EDNS option, and curl with
//! the RFC 9577 `Authorization` header). The
//! signed batches' leaves, audited through the API, carry exactly the tokens' ticket ids, on
//! the transport each token was spent on; the audit API serves every token.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tolldns_receipts::Transport;

use crate::support::{MINER, Miner, Upstream, collect_lines, http, temp_dir, tool, write_config};

const ISSUER_NAME: &str = "issuer.e2e.test";
const DEPLOYMENT: &str = "tolldns-e2e";

/// A binary built next to the miner (`cargo test --workspace` builds them all). Outside CI a
/// missing one skips the test with a notice; in CI it fails.
fn sibling(name: &str) -> Option<PathBuf> {
    let path = Path::new(MINER).parent()?.join(name);
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} is required when CI is set (cargo test --workspace builds it)",
        path.display()
    );
    eprintln!(
        "NOTICE: {} not built; run `cargo build -p tolldns-issuer -p tolldns` for this test",
        path.display()
    );
    None
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed: {text}");
    text
}

struct Issuer {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Issuer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_issuer(bin: &Path, data: &Path) -> Issuer {
    let mut child = Command::new(bin)
        .args(["run", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = collect_lines(&mut child);
    let deadline = Instant::now() + Duration::from_secs(60);
    let addr = loop {
        let found = lines
            .lock()
            .unwrap()
            .iter()
            .find_map(|l| l.strip_prefix("listening http://").map(str::to_owned));
        if let Some(rest) = found {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "issuer did not start: {:?}",
            lines.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    Issuer { child, addr }
}

fn kdig(port: u16, token_hex: &str, extra: &[String]) -> String {
    let out = Command::new("/usr/bin/kdig")
        .arg("@127.0.0.1")
        .arg("-p")
        .arg(port.to_string())
        .arg("www.example.test")
        .arg("A")
        .arg("+timeout=5")
        .arg("+retry=1")
        .arg(format!("+ednsopt=65002:{token_hex}"))
        .args(extra)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One DoH GET of `www.example.test A` with curl (HTTP/2, the miner's certificate) and one
/// extra header: (response header block, body).
fn curl(ca: &Path, port: u16, header: &str) -> (String, Vec<u8>) {
    let mut q = [0u8; 512];
    let n = tolldns_ingress::wire::build_query(&mut q, 0, "www.example.test", 1).unwrap();
    let dns = URL_SAFE_NO_PAD.encode(&q[..n]);
    let out = Command::new("/usr/bin/curl")
        .args(["-s", "--http2", "--max-time", "10", "-D", "-", "--cacert"])
        .arg(ca)
        .args([
            "--resolve",
            &format!("localhost:{port}:127.0.0.1"),
            "-H",
            header,
        ])
        .arg(format!("https://localhost:{port}/dns-query?dns={dns}"))
        .output()
        .unwrap();
    let raw = out.stdout;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("curl: {}", String::from_utf8_lossy(&out.stderr)));
    (
        String::from_utf8_lossy(&raw[..split]).into_owned(),
        raw[split + 4..].to_vec(),
    )
}

#[test]
fn issued_tokens_redeemed_over_every_transport_bind_the_audited_leaves() {
    let (Some(issuer_bin), Some(cli)) = (sibling("tolldns-issuer"), sibling("tolldns")) else {
        return;
    };
    let dir = temp_dir("tickets-e2e");
    let issuer_data = dir.join("issuer");
    let issuer = start_issuer(&issuer_bin, &issuer_data);

    // A wallet, credited by the issuer's operator; tokens bought with it.
    let wallet = dir.join("wallet.json");
    run(Command::new(&cli).args(["keygen", "--out"]).arg(&wallet));
    let buyer = run(Command::new(&cli).args(["keygen", "--pubkey"]).arg(&wallet))
        .trim()
        .to_owned();
    run(Command::new(&issuer_bin)
        .args(["credit", "--data-dir"])
        .arg(&issuer_data)
        .args(["--buyer", &buyer, "--tokens", "9"]));
    let tokens_file = dir.join("tokens.json");
    run(Command::new(&cli)
        .args(["ticket", "fetch", "--issuer"])
        .arg(format!("http://{}", issuer.addr))
        .arg("--wallet")
        .arg(&wallet)
        .args(["--count", "9", "--issuer-name", ISSUER_NAME])
        .args(["--deployment", DEPLOYMENT, "--out"])
        .arg(&tokens_file));
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&tokens_file).unwrap()).unwrap();
    let tokens: Vec<Vec<u8>> = file["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            URL_SAFE_NO_PAD
                .decode(t["token"].as_str().unwrap().trim_end_matches('='))
                .unwrap()
        })
        .collect();
    assert_eq!(tokens.len(), 9);

    // The miner accepts the key the issuer's directory publishes.
    let (status, directory) = http(
        issuer.addr,
        "GET",
        "/.well-known/private-token-issuer-directory",
        None,
    );
    assert_eq!(status, 200, "{directory}");
    let directory = tolldns_tickets::IssuerDirectory::from_json(directory.as_bytes()).unwrap();
    let key = &directory.token_keys[0].token_key;
    let token_verifier = tolldns_tickets::TokenVerifier::new(
        vec![tolldns_tickets::AcceptedKey {
            key: tolldns_tickets::IssuerPublicKey::from_spki(&URL_SAFE_NO_PAD.decode(key).unwrap())
                .unwrap(),
            not_before: 0,
            not_after: None,
        }],
        tolldns_tickets::TokenChallenge::deployment(ISSUER_NAME, DEPLOYMENT)
            .digest()
            .unwrap(),
    );
    let upstream = Upstream::start();
    let config = write_config(
        &dir,
        upstream.addr(),
        &format!(
            "[api]\nlisten = \"127.0.0.1:0\"\n\n[tickets]\nissuer_name = \"{ISSUER_NAME}\"\n\
             deployment = \"{DEPLOYMENT}\"\nissuer_keys = [\"{key}\"]\nqueries_per_token = 10\n"
        ),
    );
    let mut miner = Miner::spawn(&config);
    let cert = dir.join("data/tls/cert.pem");
    let transports = [
        ("udp", Transport::Udp),
        ("tcp", Transport::Tcp),
        ("dot", Transport::Dot),
        ("doh", Transport::Doh),
    ];
    // (ticket id → (transport, leaves expected)).
    let mut expected: HashMap<[u8; 16], (Transport, usize)> = HashMap::new();

    // `tolldns query`: tokens 0..4 in file order, one per transport, redeemed then the session.
    for (i, (name, transport)) in transports.iter().enumerate() {
        let mut cmd = Command::new(&cli);
        cmd.args(["query", "--server"])
            .arg(miner.addr(name).to_string())
            .args(["--transport", name, "--tokens"])
            .arg(&tokens_file)
            .args(["--repeat", "2"]);
        if matches!(*name, "dot" | "doh") {
            cmd.arg("--ca").arg(&cert).args(["--tls-name", "localhost"]);
        }
        cmd.args(["www.example.test", "A"]);
        let out = run(&mut cmd);
        assert_eq!(out.matches("rcode: NOERROR").count(), 2, "{name}: {out}");
        assert!(out.contains("session: "), "{name}: {out}");
        expected.insert(tolldns_tickets::ticket_id(&tokens[i]), (*transport, 2));
    }

    // kdig, the token as EDNS option 65002: tokens 4..8, one query each.
    if tool("/usr/bin/kdig") {
        let tls = vec![
            format!("+tls-ca={}", cert.display()),
            "+tls-hostname=localhost".to_owned(),
        ];
        let cases: [(&str, Vec<String>); 4] = [
            ("udp", vec![]),
            ("tcp", vec!["+tcp".to_owned()]),
            ("dot", [vec!["+tls".to_owned()], tls.clone()].concat()),
            ("doh", [vec!["+https".to_owned()], tls].concat()),
        ];
        for (i, ((name, args), (_, transport))) in cases.iter().zip(transports).enumerate() {
            let token = &tokens[4 + i];
            let out = kdig(miner.addr(name).port(), &hex::encode(token), args);
            assert!(out.contains("status: NOERROR"), "kdig {name}: {out}");
            expected.insert(tolldns_tickets::ticket_id(token), (transport, 1));
        }
    }

    // curl over DoH: the token in `Authorization: PrivateToken`, then the session header.
    if tool("/usr/bin/curl") {
        let port = miner.addr("doh").port();
        let token = &tokens[8];
        let auth = format!(
            "Authorization: {}",
            tolldns_tickets::auth::authorization(token)
        );
        let (head, body) = curl(&cert, port, &auth);
        assert!(head.starts_with("HTTP/2 200"), "{head}");
        assert_eq!(body.get(3).map(|b| b & 0x0F), Some(0), "NOERROR");
        let session = head
            .lines()
            .find_map(|l| l.strip_prefix("tolldns-session: "))
            .unwrap_or_else(|| panic!("no session header: {head}"))
            .trim()
            .to_owned();
        let (head, _) = curl(&cert, port, &format!("TollDNS-Ticket: {session}"));
        assert!(head.starts_with("HTTP/2 200"), "{head}");
        // The same token again: 401 with the PrivateToken challenge.
        let (head, _) = curl(&cert, port, &auth);
        assert!(head.starts_with("HTTP/2 401"), "{head}");
        assert!(
            head.contains("www-authenticate: PrivateToken challenge="),
            "{head}"
        );
        expected.insert(tolldns_tickets::ticket_id(token), (Transport::Doh, 2));
    }

    // Every ticketed leaf of the signed batches, audited through the API.
    let want: usize = expected.values().map(|(_, n)| n).sum();
    let mut seen: HashMap<[u8; 16], Vec<Transport>> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut audited = Vec::new();
    let mut audited_ticketed = 0u64;
    while seen.values().map(Vec::len).sum::<usize>() < want {
        assert!(
            Instant::now() < deadline,
            "ticketed leaves seen {seen:?}, want {expected:?}\n{}",
            miner.output()
        );
        for (id, _, leaves) in miner.signed() {
            if audited.contains(&id) || leaves == 0 {
                continue;
            }
            let (status, proofs) = miner.audited(&format!(
                "/v1/batches/{id}/audit?seed={}&k={leaves}",
                hex::encode([9u8; 32])
            ));
            assert_eq!(status, 200, "{proofs}");
            // The whole v2 audit, with every sampled ticketed leaf's token fetched from the
            // miner and verified under the issuer's key.
            let (status, receipt_json) =
                http(miner.api(), "GET", &format!("/v1/batches/{id}"), None);
            assert_eq!(status, 200);
            let tokens = MinerTokens {
                miner: &miner,
                verifier: &token_verifier,
            };
            let (_, report) =
                crate::verify::in_process_with(&receipt_json, &proofs, &[9u8; 32], leaves, &tokens);
            audited_ticketed += report.ticketed;
            for a in crate::verify::parse_answers(&proofs) {
                let p = a.leaf;
                if p.leaf.ticket != [0; 16] {
                    seen.entry(p.leaf.ticket)
                        .or_default()
                        .push(p.leaf.transport);
                }
            }
            audited.push(id);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    for (id, (transport, n)) in &expected {
        let got = seen.get(id).cloned().unwrap_or_default();
        assert_eq!(got.len(), *n, "leaves of ticket {}", hex::encode(id));
        assert!(
            got.iter().all(|t| t == transport),
            "{got:?} vs {transport:?}"
        );
    }
    assert_eq!(
        seen.len(),
        expected.len(),
        "no leaf carries a ticket id that was not issued"
    );
    assert_eq!(
        audited_ticketed as usize, want,
        "every ticketed leaf's token verified"
    );

    // The audit API serves every token behind its ticket id.
    for token in tokens
        .iter()
        .filter(|t| expected.contains_key(&tolldns_tickets::ticket_id(t)))
    {
        let id = hex::encode(tolldns_tickets::ticket_id(token));
        let (status, body) = miner.audited(&format!("/v1/tokens/{id}"));
        assert_eq!(status, 200, "{id}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let served = URL_SAFE_NO_PAD
            .decode(v["token"].as_str().unwrap())
            .unwrap();
        assert_eq!(&served, token);
    }
    assert!(miner.terminate().success(), "{}", miner.output());
    drop(issuer);
    let _ = std::fs::remove_dir_all(dir);
}

/// Token lookups for the audit: the token behind a ticket id, fetched from the miner's audit
/// API and verified under the issuer's key for the deployment's challenge.
struct MinerTokens<'a> {
    miner: &'a Miner,
    verifier: &'a tolldns_tickets::TokenVerifier,
}

impl tolldns_receipts::TicketCheck for MinerTokens<'_> {
    fn ticket_status(&self, ticket: &[u8; 16]) -> tolldns_receipts::TicketStatus {
        let (status, body) = self
            .miner
            .audited(&format!("/v1/tokens/{}", hex::encode(ticket)));
        if status != 200 {
            return tolldns_receipts::TicketStatus::Unknown;
        }
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let token = URL_SAFE_NO_PAD
            .decode(v["token"].as_str().unwrap())
            .unwrap();
        match self.verifier.verify(&token, tolldns_miner::now_ms() / 1000) {
            Ok(t) if t.ticket_id == *ticket => tolldns_receipts::TicketStatus::Valid,
            _ => tolldns_receipts::TicketStatus::Invalid,
        }
    }
}
