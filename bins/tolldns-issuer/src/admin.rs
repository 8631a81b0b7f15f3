//! The admin socket: how `tolldns-issuer credit`, `balance` and `chain-sync` reach the ledger
//! that a running issuer keeps open (see [`crate::ledger`]).
//!
//! A Unix stream socket at `<data_dir>/admin.sock`, mode 0600 inside the 0700 data directory:
//! whoever may read the data directory may administer the ledger, and nobody else. One
//! request per connection, one line each way (at most [`MAX_LINE`] bytes):
//!
//! - `credit <buyer base58> <tokens>` → `ok <new balance>`
//! - `balance <buyer base58>` → `ok <balance>`, or `none` when the buyer was never credited
//! - `chain-quota <issuer wallet base58> <buyer base58> <tickets_bought>` →
//!   `credited <tickets newly credited>` ([`PrepaidLedger::apply_chain_quota`]: the buyer's
//!   cumulative on-chain quota at that issuer)
//! - anything that fails → `error <message>`
//!
//! The socket exists only on Unix; elsewhere stop the issuer to credit buyers.

use std::path::Path;

use crate::ledger::{Buyer, LedgerError, PrepaidLedger, parse_buyer};

/// File name of the admin socket in the data directory.
pub const ADMIN_SOCKET: &str = "admin.sock";
/// Longest request or reply line, newline included.
pub const MAX_LINE: usize = 512;

/// A request to the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminRequest {
    /// Add tokens to a buyer's balance.
    Credit {
        /// The buyer.
        buyer: Buyer,
        /// How many tokens.
        tokens: u64,
    },
    /// Read a buyer's balance.
    Balance {
        /// The buyer.
        buyer: Buyer,
    },
    /// Credit the part of a buyer's on-chain quota at an issuer not credited yet.
    ChainQuota {
        /// The issuer operator's wallet the quota names (`chain.issuer_wallet`; an ed25519
        /// key, parsed like a buyer's).
        issuer_wallet: Buyer,
        /// The buyer.
        buyer: Buyer,
        /// Its cumulative `tickets_bought` on chain.
        tickets_bought: u64,
    },
}

/// A reply of the issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminReply {
    /// The balance after the request; `None` when the buyer was never credited.
    Balance(Option<u64>),
    /// The tickets a `chain-quota` request credited.
    Credited(u64),
    /// The request failed.
    Error(String),
}

impl AdminRequest {
    /// The request line (with its newline).
    pub fn to_line(&self) -> String {
        match self {
            Self::Credit { buyer, tokens } => format!("credit {buyer} {tokens}\n"),
            Self::Balance { buyer } => format!("balance {buyer}\n"),
            Self::ChainQuota {
                issuer_wallet,
                buyer,
                tickets_bought,
            } => format!("chain-quota {issuer_wallet} {buyer} {tickets_bought}\n"),
        }
    }

    /// Parses a request line.
    ///
    /// # Errors
    ///
    /// A message saying what is wrong.
    pub fn parse(line: &str) -> Result<Self, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let buyer = |s: &str| parse_buyer(s).map_err(|e| e.to_string());
        match words.as_slice() {
            ["credit", b, n] => Ok(Self::Credit {
                buyer: buyer(b)?,
                tokens: n
                    .parse()
                    .map_err(|_| "tokens must be an unsigned integer".to_owned())?,
            }),
            ["balance", b] => Ok(Self::Balance { buyer: buyer(b)? }),
            ["chain-quota", i, b, n] => Ok(Self::ChainQuota {
                issuer_wallet: buyer(i)?,
                buyer: buyer(b)?,
                tickets_bought: n
                    .parse()
                    .map_err(|_| "tickets_bought must be an unsigned integer".to_owned())?,
            }),
            _ => Err(
                "expected `credit <buyer> <tokens>`, `balance <buyer>` or `chain-quota <issuer wallet> <buyer> <tickets_bought>`"
                    .to_owned(),
            ),
        }
    }

    /// Carries out the request on `ledger`.
    pub fn apply(&self, ledger: &PrepaidLedger) -> AdminReply {
        let result: Result<AdminReply, LedgerError> = match self {
            Self::Credit { buyer, tokens } => ledger
                .credit(&buyer.0, *tokens)
                .map(|b| AdminReply::Balance(Some(b))),
            Self::Balance { buyer } => ledger.balance(&buyer.0).map(AdminReply::Balance),
            Self::ChainQuota {
                issuer_wallet,
                buyer,
                tickets_bought,
            } => ledger
                .apply_chain_quota(&issuer_wallet.0, &buyer.0, *tickets_bought)
                .map(AdminReply::Credited),
        };
        result.unwrap_or_else(|e| AdminReply::Error(e.to_string()))
    }
}

impl AdminReply {
    /// The reply line (with its newline; line breaks in messages become spaces).
    pub fn to_line(&self) -> String {
        match self {
            Self::Balance(Some(n)) => format!("ok {n}\n"),
            Self::Balance(None) => "none\n".to_owned(),
            Self::Credited(n) => format!("credited {n}\n"),
            Self::Error(m) => format!("error {}\n", m.replace(['\r', '\n'], " ")),
        }
    }

    /// Parses a reply line.
    ///
    /// # Errors
    ///
    /// When the line is not a reply.
    pub fn parse(line: &str) -> Result<Self, String> {
        let line = line.trim_end_matches(['\r', '\n']);
        if line == "none" {
            return Ok(Self::Balance(None));
        }
        if let Some(n) = line.strip_prefix("ok ") {
            return n
                .parse()
                .map(|n| Self::Balance(Some(n)))
                .map_err(|_| format!("unexpected reply `{line}`"));
        }
        if let Some(n) = line.strip_prefix("credited ") {
            return n
                .parse()
                .map(Self::Credited)
                .map_err(|_| format!("unexpected reply `{line}`"));
        }
        if let Some(m) = line.strip_prefix("error ") {
            return Ok(Self::Error(m.to_owned()));
        }
        Err(format!("unexpected reply `{line}`"))
    }
}

/// Sends `request` to the issuer listening at `socket`. `Ok(None)` when no issuer listens
/// there (no socket file, or a stale one).
///
/// # Errors
///
/// I/O errors talking to a listening issuer, or a reply that does not parse.
#[cfg(unix)]
pub fn request(socket: &Path, request: &AdminRequest) -> std::io::Result<Option<AdminReply>> {
    use std::io::{BufRead as _, Read as _, Write as _};
    let mut stream = match std::os::unix::net::UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let timeout = Some(std::time::Duration::from_secs(30));
    stream.set_read_timeout(timeout)?;
    stream.set_write_timeout(timeout)?;
    stream.write_all(request.to_line().as_bytes())?;
    let mut line = String::new();
    std::io::BufReader::new(stream.take(MAX_LINE as u64)).read_line(&mut line)?;
    AdminReply::parse(&line)
        .map(Some)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// The issuer's side: binds the socket and answers requests.
#[cfg(unix)]
pub mod server {
    use std::path::{Path, PathBuf};
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::{UnixListener, UnixStream};
    use tokio::sync::watch;

    use super::{AdminReply, AdminRequest, MAX_LINE};
    use crate::ledger::PrepaidLedger;

    /// How long a client may take to send its request.
    const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

    /// The bound admin socket; the file is removed when this is dropped.
    #[derive(Debug)]
    pub struct AdminSocket {
        listener: UnixListener,
        path: PathBuf,
    }

    impl AdminSocket {
        /// Binds `path` (mode 0600), replacing a stale socket file. Call it only while
        /// owning the ledger, which proves that no other issuer serves this data directory.
        ///
        /// # Errors
        ///
        /// The I/O error.
        pub fn bind(path: &Path) -> std::io::Result<Self> {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            let listener = UnixListener::bind(path)?;
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
            Ok(Self {
                listener,
                path: path.to_owned(),
            })
        }

        /// Answers requests on `ledger` until `stop` turns true.
        pub async fn serve(self, ledger: Arc<PrepaidLedger>, mut stop: watch::Receiver<bool>) {
            loop {
                let accepted = tokio::select! {
                    a = self.listener.accept() => a,
                    _ = stop.changed() => return,
                };
                let Ok((stream, _)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                tokio::spawn(answer(stream, Arc::clone(&ledger)));
            }
        }
    }

    impl Drop for AdminSocket {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.path);
        }
    }

    async fn answer(stream: UnixStream, ledger: Arc<PrepaidLedger>) {
        let (read, mut write) = stream.into_split();
        let mut line = String::new();
        let mut reader = tokio::io::BufReader::new(read.take(MAX_LINE as u64));
        let reply = match tokio::time::timeout(REQUEST_TIMEOUT, reader.read_line(&mut line)).await {
            Ok(Ok(_)) => match AdminRequest::parse(&line) {
                Ok(request) => {
                    let reply = tokio::task::spawn_blocking(move || request.apply(&ledger)).await;
                    let reply = reply.unwrap_or_else(|_| {
                        AdminReply::Error("the ledger operation failed".to_owned())
                    });
                    match (request, &reply) {
                        (AdminRequest::Credit { buyer, tokens }, AdminReply::Balance(b)) => {
                            tracing::info!(%buyer, tokens, balance = ?b, "buyer credited");
                        }
                        (
                            AdminRequest::ChainQuota {
                                issuer_wallet,
                                buyer,
                                tickets_bought,
                            },
                            AdminReply::Credited(credited @ 1..),
                        ) => tracing::info!(
                            %buyer,
                            %issuer_wallet,
                            tickets_bought,
                            credited,
                            "buyer credited from its on-chain quota (chain-sync)"
                        ),
                        _ => {}
                    }
                    reply
                }
                Err(e) => AdminReply::Error(e),
            },
            _ => return,
        };
        let _ = write.write_all(reply.to_line().as_bytes()).await;
        let _ = write.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip() {
        let buyer = parse_buyer(
            &bs58::encode(
                ed25519_dalek::SigningKey::from_bytes(&[4; 32])
                    .verifying_key()
                    .as_bytes(),
            )
            .into_string(),
        )
        .unwrap();
        for r in [
            AdminRequest::Credit { buyer, tokens: 7 },
            AdminRequest::Balance { buyer },
            AdminRequest::ChainQuota {
                issuer_wallet: buyer,
                buyer,
                tickets_bought: u64::MAX,
            },
        ] {
            assert_eq!(AdminRequest::parse(&r.to_line()).unwrap(), r);
        }
        for r in [
            AdminReply::Balance(Some(3)),
            AdminReply::Balance(None),
            AdminReply::Credited(4),
            AdminReply::Error("no\nway".to_owned()),
        ] {
            let back = AdminReply::parse(&r.to_line()).unwrap();
            match r {
                AdminReply::Error(_) => assert_eq!(back, AdminReply::Error("no way".to_owned())),
                r => assert_eq!(back, r),
            }
        }
        assert!(AdminRequest::parse("credit x 1").is_err());
        assert!(AdminRequest::parse(&format!("credit {buyer} -1")).is_err());
        assert!(AdminRequest::parse("drop table").is_err());
        assert!(AdminReply::parse("ok many").is_err());
        assert!(AdminReply::parse("credited -1").is_err());
        assert!(AdminRequest::parse(&format!("chain-quota {buyer}")).is_err());
        assert!(AdminRequest::parse(&format!("chain-quota {buyer} 3")).is_err());
        assert!(AdminRequest::parse(&format!("chain-quota {buyer} {buyer} x")).is_err());
        assert!(AdminRequest::parse(&format!("chain-quota 0OIl {buyer} 3")).is_err());
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn socket_serves_the_ledger_and_goes_away() {
        let dir = std::env::temp_dir().join(format!("tolldns-issuer-admin-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join(ADMIN_SOCKET);
        let buyer = Buyer([9; 32]);
        let req = AdminRequest::Balance { buyer };
        // Nothing listens: no socket file, then a stale one.
        assert_eq!(request(&socket, &req).unwrap(), None);
        drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
        assert_eq!(request(&socket, &req).unwrap(), None);

        let ledger = std::sync::Arc::new(PrepaidLedger::open(&dir.join("ledger.redb")).unwrap());
        let admin = server::AdminSocket::bind(&socket).unwrap();
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(admin.serve(ledger, stop_rx));
        let s = socket.clone();
        let replies = tokio::task::spawn_blocking(move || {
            [
                request(&s, &AdminRequest::Balance { buyer }).unwrap(),
                request(&s, &AdminRequest::Credit { buyer, tokens: 5 }).unwrap(),
                request(
                    &s,
                    &AdminRequest::Credit {
                        buyer,
                        tokens: u64::MAX,
                    },
                )
                .unwrap(),
                request(&s, &AdminRequest::Balance { buyer }).unwrap(),
                request(
                    &s,
                    &AdminRequest::ChainQuota {
                        issuer_wallet: buyer,
                        buyer,
                        tickets_bought: 3,
                    },
                )
                .unwrap(),
                request(
                    &s,
                    &AdminRequest::ChainQuota {
                        issuer_wallet: buyer,
                        buyer,
                        tickets_bought: 3,
                    },
                )
                .unwrap(),
                request(&s, &AdminRequest::Balance { buyer }).unwrap(),
            ]
        })
        .await
        .unwrap();
        assert_eq!(replies[0], Some(AdminReply::Balance(None)));
        assert_eq!(replies[1], Some(AdminReply::Balance(Some(5))));
        assert!(
            matches!(&replies[2], Some(AdminReply::Error(m)) if m.contains("overflow")),
            "{:?}",
            replies[2]
        );
        assert_eq!(replies[3], Some(AdminReply::Balance(Some(5))));
        assert_eq!(replies[4], Some(AdminReply::Credited(3)));
        assert_eq!(replies[5], Some(AdminReply::Credited(0)));
        assert_eq!(replies[6], Some(AdminReply::Balance(Some(8))));
        stop_tx.send(true).unwrap();
        task.await.unwrap();
        assert!(!socket.exists());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
