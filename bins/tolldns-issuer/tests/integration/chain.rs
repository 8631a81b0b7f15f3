//! The chain sync (`[chain]`) against [`RpcTestDouble`], a stand-in for a Solana RPC node:
//! on-chain purchases become tokens exactly once and at exactly one issuer (the one the quota
//! names), foreign, misplaced and other issuers' accounts are skipped, RPC failures are
//! counted and issuance goes on; `chain-sync` does one sync by hand, with or without a running
//! issuer.

use std::path::Path;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use tolldns_issuer::chain::{TicketQuota, ticket_quota_address};
use tolldns_tickets::{IssuerPublicKey, TokenResponse};

use crate::rpc_double::{DoubleAccount, Mode, RpcTestDouble};
use crate::support::{Issuer, buyer, cli, cli_ok, post_request, temp_dir, token_request};
use crate::ticket_quota_vector::{self, BUYER_SEED, TicketQuotaVector};

const WAIT: Duration = Duration::from_secs(60);
const SYNCS_OK: &str = "tolldns_issuer_chain_syncs_total{outcome=\"ok\"}";
const SYNCS_RPC_ERROR: &str = "tolldns_issuer_chain_syncs_total{outcome=\"rpc_error\"}";
const SYNCS_BAD_RESPONSE: &str = "tolldns_issuer_chain_syncs_total{outcome=\"bad_response\"}";
const SKIPPED: &str = "tolldns_issuer_chain_accounts_skipped_total";
const CREDITED: &str = "tolldns_issuer_chain_tickets_credited_total";

/// Another program than the registry.
const FOREIGN_PROGRAM: &str = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA";

/// The seed of another issuer's operator wallet.
const OTHER_ISSUER_SEED: [u8; 32] = [0x44; 32];

fn wallet_of(seed: &[u8; 32]) -> String {
    bs58::encode(SigningKey::from_bytes(seed).verifying_key().as_bytes()).into_string()
}

/// The vector's account, with `tickets_bought` replaced.
fn vector_account(v: &TicketQuotaVector, tickets_bought: u64) -> DoubleAccount {
    let mut q = TicketQuota::decode(&v.data()).unwrap();
    q.tickets_bought = tickets_bought;
    DoubleAccount {
        pubkey: v.address.clone(),
        owner: v.program_id.clone(),
        data: q.encode().to_vec(),
    }
}

/// A well-formed quota of `wallet` (50 tickets) in an account owned by another program.
fn foreign_account(v: &TicketQuotaVector, wallet: &SigningKey) -> DoubleAccount {
    let mut q = TicketQuota::decode(&v.data()).unwrap();
    q.buyer = wallet.verifying_key().to_bytes();
    q.tickets_bought = 50;
    DoubleAccount {
        pubkey: bs58::encode([0x5a; 32]).into_string(),
        owner: FOREIGN_PROGRAM.to_owned(),
        data: q.encode().to_vec(),
    }
}

/// The vector buyer's genuine quota at another issuer (`OTHER_ISSUER_SEED`), at its PDA:
/// `tickets_bought` tickets that are that issuer's to credit, never the vector issuer's.
fn other_issuer_account(v: &TicketQuotaVector, tickets_bought: u64) -> DoubleAccount {
    let mut q = TicketQuota::decode(&v.data()).unwrap();
    q.issuer = SigningKey::from_bytes(&OTHER_ISSUER_SEED)
        .verifying_key()
        .to_bytes();
    q.tickets_bought = tickets_bought;
    let (address, bump) = ticket_quota_address(&v.program(), &q.buyer, &q.issuer).unwrap();
    q.bump = bump;
    DoubleAccount {
        pubkey: bs58::encode(address).into_string(),
        owner: v.program_id.clone(),
        data: q.encode().to_vec(),
    }
}

/// A quota of `wallet` (40 tickets) at the vector's issuer, owned by the registry, but not at
/// its PDA (at the vector's address): skipped for its address.
fn misplaced_account(v: &TicketQuotaVector, wallet: &SigningKey) -> DoubleAccount {
    let mut q = TicketQuota::decode(&v.data()).unwrap();
    q.buyer = wallet.verifying_key().to_bytes();
    q.tickets_bought = 40;
    DoubleAccount {
        pubkey: v.address.clone(),
        owner: v.program_id.clone(),
        data: q.encode().to_vec(),
    }
}

/// A config for the vector's issuer (`issuer_wallet` = the vector's `issuer`).
fn chain_config(dir: &Path, name: &str, double: &RpcTestDouble, extra: &str) {
    issuer_config(dir, name, "d", &load_issuer(), double, extra);
}

fn load_issuer() -> String {
    ticket_quota_vector::load().issuer
}

fn issuer_config(
    dir: &Path,
    name: &str,
    data_dir: &str,
    issuer_wallet: &str,
    double: &RpcTestDouble,
    extra: &str,
) {
    std::fs::write(
        dir.join(name),
        format!(
            "data_dir = \"{data_dir}\"\n[chain]\nrpc_url = \"{}\"\nissuer_wallet = \"{issuer_wallet}\"\n{extra}",
            double.url()
        ),
    )
    .unwrap();
}

fn issuer_key(issuer: &Issuer) -> IssuerPublicKey {
    issuer.directory().keys().remove(0).0
}

/// One token for `wallet`: its status (and, on 200, a token that verifies).
fn fetch(issuer: &Issuer, key: &IssuerPublicKey, wallet: &SigningKey) -> u16 {
    let (body, purchase, pending) = token_request(key, wallet);
    let r = post_request(issuer.addr, &body, Some(&purchase));
    if r.status == 200 {
        let response = TokenResponse::from_bytes(&r.body, key.nk()).unwrap();
        let token = pending.finalize(key, &response).unwrap();
        assert!(key.verify_signature(&token));
    }
    r.status
}

fn balance(dir: &Path, wallet: &SigningKey) -> String {
    balance_in(dir, "d", wallet)
}

fn balance_in(dir: &Path, data_dir: &str, wallet: &SigningKey) -> String {
    let b = buyer(wallet);
    let out = cli_ok(&["balance", "--data-dir", data_dir, "--buyer", &b], dir);
    out.trim().trim_start_matches(&b).trim().to_owned()
}

#[test]
fn running_issuer_credits_on_chain_purchases_once() {
    let dir = temp_dir("chain-run");
    let v = ticket_quota_vector::load();
    let wallet = SigningKey::from_bytes(&BUYER_SEED);
    assert_eq!(buyer(&wallet), v.buyer);
    let bought = v.tickets_bought;
    let outsider = SigningKey::from_bytes(&[0x43; 32]);

    let double = RpcTestDouble::start(&v.program_id);
    // The node (unfiltered) also returns the buyer's quota at another issuer, an account of
    // another program and a quota of this issuer at the wrong address.
    double.set_accounts(vec![
        vector_account(&v, bought),
        foreign_account(&v, &outsider),
        other_issuer_account(&v, 7),
        misplaced_account(&v, &outsider),
    ]);
    chain_config(
        &dir,
        "c.toml",
        &double,
        "sync_interval_secs = 1\nrequest_timeout_secs = 5\n",
    );
    let mut issuer = Issuer::spawn(&dir, &["--config", "c.toml"]);
    issuer.wait_metric(SYNCS_OK, WAIT, |n| n >= 1);
    assert_eq!(issuer.metric(CREDITED), Some(bought));
    // The three other accounts are skipped (each sync), and credit nothing: not the other
    // issuer's 7 tickets, not the misplaced 40.
    assert!(issuer.metric(SKIPPED).unwrap() >= 3);
    assert_eq!(double.bad_requests(), 0);
    // Every request asked the node for this issuer's quotas only.
    let asked = double.issuer_filters();
    assert!(!asked.is_empty());
    assert!(asked.iter().all(|w| *w == v.issuer), "{asked:?}");
    issuer
        .wait_for(WAIT, |l| {
            l.contains("chain sync: tickets credited")
                && l.contains(&format!("tickets_credited={bought}"))
        })
        .unwrap_or_else(|| panic!("no credit logged:\n{}", issuer.output()));

    // Exactly `tickets_bought` tokens, then 402.
    assert_eq!(balance(&dir, &wallet), format!("{bought} tokens"));
    let key = issuer_key(&issuer);
    for _ in 0..bought {
        assert_eq!(fetch(&issuer, &key, &wallet), 200);
    }
    assert_eq!(fetch(&issuer, &key, &wallet), 402);
    assert_eq!(fetch(&issuer, &key, &outsider), 402);
    assert_eq!(
        issuer.metric("tolldns_issuer_refusals_total{reason=\"no_purchase\"}"),
        Some(1)
    );

    // Further syncs credit nothing.
    let ok = issuer.metric(SYNCS_OK).unwrap();
    issuer.wait_metric(SYNCS_OK, WAIT, |n| n >= ok + 2);
    assert_eq!(issuer.metric(CREDITED), Some(bought));
    assert_eq!(fetch(&issuer, &key, &wallet), 402);
    assert_eq!(balance(&dir, &wallet), "0 tokens");

    // A new purchase on chain: exactly the difference (and still nothing of the other
    // issuer's quota, which grew too).
    double.set_accounts(vec![
        vector_account(&v, bought + 2),
        foreign_account(&v, &outsider),
        other_issuer_account(&v, 9),
        misplaced_account(&v, &outsider),
    ]);
    issuer.wait_metric(CREDITED, WAIT, |n| n >= bought + 2);
    assert_eq!(balance(&dir, &wallet), "2 tokens");
    assert_eq!(fetch(&issuer, &key, &wallet), 200);

    // A lagging node reports the old quota: nothing is taken back or credited.
    double.set_accounts(vec![vector_account(&v, bought)]);
    let ok = issuer.metric(SYNCS_OK).unwrap();
    issuer.wait_metric(SYNCS_OK, WAIT, |n| n >= ok + 2);
    assert_eq!(issuer.metric(CREDITED), Some(bought + 2));
    assert_eq!(balance(&dir, &wallet), "1 tokens");

    // A node that honours the filters, as a real one does, returns this issuer's quota only:
    // nothing is skipped any more. (A misplaced quota would pass the filters, but the registry
    // only ever creates quotas at their PDA.)
    double.set_filtering(true);
    double.set_accounts(vec![
        vector_account(&v, bought + 2),
        foreign_account(&v, &outsider),
        other_issuer_account(&v, 9),
    ]);
    let ok = issuer.metric(SYNCS_OK).unwrap();
    issuer.wait_metric(SYNCS_OK, WAIT, |n| n >= ok + 2);
    let skipped = issuer.metric(SKIPPED).unwrap();
    let ok = issuer.metric(SYNCS_OK).unwrap();
    issuer.wait_metric(SYNCS_OK, WAIT, |n| n >= ok + 2);
    assert_eq!(issuer.metric(SKIPPED), Some(skipped));
    assert_eq!(issuer.metric(CREDITED), Some(bought + 2));
    assert_eq!(balance(&dir, &wallet), "1 tokens");
    double.set_filtering(false);

    // The node fails: counted, logged, and the credited token is still issued.
    double.set_mode(Mode::RpcError);
    issuer.wait_metric(SYNCS_RPC_ERROR, WAIT, |n| n >= 1);
    issuer
        .wait_for(WAIT, |l| {
            l.contains("chain sync failed") && l.contains("Node is behind")
        })
        .unwrap_or_else(|| panic!("no warning:\n{}", issuer.output()));
    assert_eq!(fetch(&issuer, &key, &wallet), 200);
    assert_eq!(fetch(&issuer, &key, &wallet), 402);
    // An answer that is not JSON-RPC.
    double.set_mode(Mode::Garbage);
    issuer.wait_metric(SYNCS_BAD_RESPONSE, WAIT, |n| n >= 1);
    assert_eq!(issuer.metric(CREDITED), Some(bought + 2));
    assert_eq!(
        http_ok(&issuer),
        200,
        "the issuer keeps serving through chain failures"
    );

    // The exposition passes promtool (when installed) and names no buyer or RPC URL.
    let text = crate::support::http(issuer.addr, "GET", "/metrics", &[], b"").text();
    assert!(
        !text.contains(&v.buyer) && !text.contains("127.0.0.1"),
        "{text}"
    );
    promtool_check(&dir, &text);

    assert!(issuer.terminate().success());
    assert!(double.requests() >= 8);
    assert_eq!(double.bad_requests(), 0);
    let _ = std::fs::remove_dir_all(dir);
}

fn http_ok(issuer: &Issuer) -> u16 {
    crate::support::http(issuer.addr, "GET", "/healthz", &[], b"").status
}

fn promtool_check(dir: &Path, text: &str) {
    let promtool = Path::new("/usr/bin/promtool");
    if !promtool.exists() {
        return;
    }
    let path = dir.join("metrics.txt");
    std::fs::write(&path, text).unwrap();
    let out = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&path).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn chain_sync_command_offline_and_through_the_running_issuer() {
    let dir = temp_dir("chain-cli");
    let v = ticket_quota_vector::load();
    let wallet = SigningKey::from_bytes(&BUYER_SEED);
    let bought = v.tickets_bought;
    let double = RpcTestDouble::start(&v.program_id);
    let outsider = SigningKey::from_bytes(&[0x45; 32]);
    double.set_accounts(vec![
        vector_account(&v, bought),
        foreign_account(&v, &outsider),
        other_issuer_account(&v, 7),
        misplaced_account(&v, &outsider),
    ]);
    chain_config(&dir, "cli.toml", &double, "");

    // No issuer runs: the command opens the ledger.
    let out = cli_ok(&["chain-sync", "--config", "cli.toml"], &dir);
    for skipped in [
        "skipped an account: not owned by the registry program",
        "skipped an account: a quota of another issuer",
        "skipped an account: not at the quota's address (PDA)",
    ] {
        assert!(out.contains(skipped), "{skipped}: {out}");
    }
    assert!(
        out.contains(&format!(
            "1 quota accounts, 3 skipped; credited {bought} tickets to 1 buyers"
        )),
        "{out}"
    );
    assert_eq!(double.issuer_filters(), vec![v.issuer.clone()]);
    let out = cli_ok(&["chain-sync", "--config", "cli.toml"], &dir);
    assert!(out.contains("credited 0 tickets to 0 buyers"), "{out}");
    assert_eq!(balance(&dir, &wallet), format!("{bought} tokens"));

    // An issuer without [chain] serves the same data directory: the command goes through
    // its admin socket.
    let mut issuer = Issuer::spawn(&dir, &["--data-dir", "d"]);
    double.set_accounts(vec![vector_account(&v, bought + 4)]);
    let out = cli_ok(&["chain-sync", "--config", "cli.toml"], &dir);
    assert!(out.contains("credited 4 tickets to 1 buyers"), "{out}");
    issuer
        .wait_for(WAIT, |l| l.contains("from its on-chain quota (chain-sync)"))
        .unwrap_or_else(|| panic!("not applied by the running issuer:\n{}", issuer.output()));
    assert_eq!(balance(&dir, &wallet), format!("{} tokens", bought + 4));
    let key = issuer_key(&issuer);
    assert_eq!(fetch(&issuer, &key, &wallet), 200);
    let out = cli_ok(&["chain-sync", "--config", "cli.toml"], &dir);
    assert!(out.contains("credited 0 tickets"), "{out}");
    // The issuer ran no sync of its own.
    assert_eq!(issuer.metric(SYNCS_OK), Some(0));
    assert!(issuer.terminate().success());

    // Failures: exit 1 naming the cause; nothing is credited.
    double.set_mode(Mode::RpcError);
    let out = cli(&["chain-sync", "--config", "cli.toml"], &dir);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("JSON-RPC error -32005") && err.contains(&double.url()[..16]),
        "{err}"
    );
    let out = cli(&["chain-sync", "--data-dir", "d"], &dir);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("[chain]"), "{err}");
    assert_eq!(balance(&dir, &wallet), format!("{} tokens", bought + 3));
    assert_eq!(balance(&dir, &outsider), "0 tokens (never credited)");
    assert_eq!(double.bad_requests(), 0);
    let _ = std::fs::remove_dir_all(dir);
}

/// One buyer bought from two issuers; both sync from the same node. Each credits the quota
/// bought from it and skips the other's: no purchase is credited twice.
#[test]
fn two_issuers_never_credit_the_same_purchase() {
    let dir = temp_dir("chain-two");
    let v = ticket_quota_vector::load();
    let wallet = SigningKey::from_bytes(&BUYER_SEED);
    let double = RpcTestDouble::start(&v.program_id);
    double.set_accounts(vec![vector_account(&v, 3), other_issuer_account(&v, 7)]);
    let other = wallet_of(&OTHER_ISSUER_SEED);
    issuer_config(&dir, "a.toml", "da", &v.issuer, &double, "");
    issuer_config(&dir, "b.toml", "db", &other, &double, "");
    for round in 0..2 {
        let out = cli_ok(&["chain-sync", "--config", "a.toml"], &dir);
        let want = if round == 0 { 3 } else { 0 };
        assert!(
            out.contains(&format!(
                "1 quota accounts, 1 skipped; credited {want} tickets"
            )) && out.contains("skipped an account: a quota of another issuer"),
            "{out}"
        );
        let out = cli_ok(&["chain-sync", "--config", "b.toml"], &dir);
        let want = if round == 0 { 7 } else { 0 };
        assert!(
            out.contains(&format!(
                "1 quota accounts, 1 skipped; credited {want} tickets"
            )),
            "{out}"
        );
    }
    assert_eq!(balance_in(&dir, "da", &wallet), "3 tokens");
    assert_eq!(balance_in(&dir, "db", &wallet), "7 tokens");
    assert_eq!(
        double.issuer_filters(),
        [v.issuer.as_str(), &other, &v.issuer, &other]
    );
    // A node that honours the issuer filter returns each issuer its own quota only.
    double.set_filtering(true);
    let out = cli_ok(&["chain-sync", "--config", "a.toml"], &dir);
    assert!(out.contains("1 quota accounts, 0 skipped"), "{out}");
    let out = cli_ok(&["chain-sync", "--config", "b.toml"], &dir);
    assert!(out.contains("1 quota accounts, 0 skipped"), "{out}");
    // An issuer no one bought from gets nothing.
    issuer_config(&dir, "c.toml", "dc", &wallet_of(&[0x46; 32]), &double, "");
    let out = cli_ok(&["chain-sync", "--config", "c.toml"], &dir);
    assert!(out.contains("0 quota accounts, 0 skipped"), "{out}");
    assert_eq!(double.bad_requests(), 0);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_chain_config_is_refused_at_start() {
    let dir = temp_dir("chain-config");
    let wallet = format!("issuer_wallet = \"{}\"\n", load_issuer());
    std::fs::write(
        dir.join("c.toml"),
        format!("[chain]\nrpc_url = \"https://rpc.example/?api-key=s3cret\"\n{wallet}"),
    )
    .unwrap();
    let out = cli(
        &["run", "--config", "c.toml", "--listen", "127.0.0.1:0"],
        &dir,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`chain.ca_file`") && !err.contains("s3cret"),
        "{err}"
    );
    std::fs::write(
        dir.join("c.toml"),
        format!("[chain]\nrpc_url = \"https://rpc.example/\"\nca_file = \"missing.pem\"\n{wallet}"),
    )
    .unwrap();
    let out = cli(
        &["run", "--config", "c.toml", "--listen", "127.0.0.1:0"],
        &dir,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing.pem"), "{err}");
    // issuer_wallet is required and must be an ed25519 public key; the error names it.
    for (body, want) in [
        ("", "`issuer_wallet`"),
        ("issuer_wallet = \"not-a-key\"\n", "`chain.issuer_wallet`"),
        (
            "issuer_wallet = \"11111111111111111111111111111111\"\n",
            "`chain.issuer_wallet`",
        ),
    ] {
        std::fs::write(
            dir.join("c.toml"),
            format!("[chain]\nrpc_url = \"http://127.0.0.1:8899\"\n{body}"),
        )
        .unwrap();
        for args in [
            &["run", "--config", "c.toml", "--listen", "127.0.0.1:0"][..],
            &["chain-sync", "--config", "c.toml"][..],
        ] {
            let out = cli(args, &dir);
            assert_eq!(out.status.code(), Some(1), "{args:?}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains(want), "{body}: {err}");
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}
