//! kdig and dnsperf from Debian against the edge. Missing tools fail under CI, skip otherwise.

use std::path::Path;
use std::process::Command;

use crate::common::harness;

fn tool(name: &str) -> Option<&'static str> {
    let path: &'static str = match name {
        "kdig" => "/usr/bin/kdig",
        _ => "/usr/bin/dnsperf",
    };
    if Path::new(path).exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{name} is required under CI (install knot-dnsutils and dnsperf)"
    );
    eprintln!("NOTICE: {path} not found; skipping this test");
    None
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("tool runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kdig_over_udp_tcp_tls_https() {
    let Some(kdig) = tool("kdig") else { return };
    let h = harness(|_| {}).await;
    let cases = [
        (h.udp(), vec![]),
        (h.tcp(), vec!["+tcp"]),
        (h.dot(), vec!["+tls"]),
        (h.doh(), vec!["+https"]),
    ];
    for (addr, flags) in cases {
        let mut cmd = Command::new(kdig);
        cmd.arg("@".to_owned() + &addr.ip().to_string())
            .arg("-p")
            .arg(addr.port().to_string())
            .args(&flags)
            .args(["+time=3", "+retry=0", "a.test", "A"]);
        let text = tokio::task::spawn_blocking(move || run(&mut cmd))
            .await
            .unwrap();
        assert!(text.contains("192.0.2.1"), "{flags:?}:\n{text}");
        assert!(text.contains("NOERROR"), "{flags:?}:\n{text}");
    }
    h.edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dnsperf_udp_load() {
    let Some(dnsperf) = tool("dnsperf") else {
        return;
    };
    let h = harness(|c| {
        c.admission.rate_per_prefix = 1_000_000;
        c.admission.burst_per_prefix = 1_000_000;
        // One source asking five names at 5 000 q/s: response-rate limiting lifted too.
        c.admission.rrl_responses_per_sec = 0;
    })
    .await;
    let dir = std::env::temp_dir().join(format!("tolldns-ingress-dnsperf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("queries.txt");
    std::fs::write(
        &data,
        "a.test A\na.test AAAA\nwww.test A\ntxt.test TXT\nnope.test A\n",
    )
    .unwrap();
    let addr = h.udp();
    let mut cmd = Command::new(dnsperf);
    cmd.args(["-s", &addr.ip().to_string(), "-p", &addr.port().to_string()])
        .arg("-d")
        .arg(&data)
        .args(["-l", "2", "-c", "2", "-Q", "5000", "-t", "2"]);
    let text = tokio::task::spawn_blocking(move || run(&mut cmd))
        .await
        .unwrap();
    let completed: u64 = text
        .lines()
        .find(|l| l.contains("Queries completed:"))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let lost: u64 = text
        .lines()
        .find(|l| l.contains("Queries lost:"))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX);
    assert!(completed > 1_000, "dnsperf completed {completed}:\n{text}");
    assert!(
        lost * 100 <= completed,
        "dnsperf lost {lost} of {completed}:\n{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    // Shutdown waits for the answers still in progress itself.
    h.edge.shutdown().await;
}

/// kdig's DNS cookies (RFC 7873): the first answer returns a server cookie for kdig's client
/// cookie, and the pair sent back is accepted (counted as valid, exempt from the UDP limits).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kdig_cookies_round_trip() {
    let Some(kdig) = tool("kdig") else { return };
    let h = harness(|_| {}).await;
    let addr = h.udp();
    let dig = move |cookie: String| {
        let mut cmd = Command::new(kdig);
        cmd.arg("@".to_owned() + &addr.ip().to_string())
            .arg("-p")
            .arg(addr.port().to_string())
            .args([&cookie, "+time=3", "+retry=0", "a.test", "A"]);
        cmd
    };
    let mut first = dig("+cookie".to_owned());
    let text = tokio::task::spawn_blocking(move || run(&mut first))
        .await
        .unwrap();
    assert!(text.contains("192.0.2.1"), "{text}");
    // ";; COOKIE: <client hex><server hex>"
    let line = text
        .lines()
        .find(|l| l.contains("COOKIE:"))
        .unwrap_or_else(|| panic!("no COOKIE in the answer:\n{text}"));
    let pair: String = line
        .split_whitespace()
        .find(|w| w.len() == 48 && w.chars().all(|c| c.is_ascii_hexdigit()))
        .unwrap_or_else(|| panic!("no 24-octet cookie pair in {line:?}"))
        .to_owned();
    let mut second = dig(format!("+cookie={pair}"));
    let text = tokio::task::spawn_blocking(move || run(&mut second))
        .await
        .unwrap();
    assert!(text.contains("192.0.2.1"), "{text}");
    assert_eq!(
        h.metric("tolldns_ingress_udp_cookies_total{result=\"valid\"}"),
        1,
        "{text}"
    );
    h.edge.shutdown().await;
}
