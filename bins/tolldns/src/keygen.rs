//! `tolldns keygen`: operator key files (see [`tolldns_service::keyfile`] for the format and
//! rules).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use ed25519_dalek::{SECRET_KEY_LENGTH, SigningKey};
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use tolldns_service::keyfile::{self, KeyFileError};

/// Arguments of `tolldns keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the new key file.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "./tolldns-key.json",
        conflicts_with = "pubkey"
    )]
    pub out: PathBuf,
    /// Replace an existing key file (the old key is lost).
    #[arg(long, conflicts_with = "pubkey")]
    pub force: bool,
    /// Print the public key of this existing key file instead of generating one.
    #[arg(long, value_name = "FILE")]
    pub pubkey: Option<PathBuf>,
}

/// A new signing key whose seed is drawn from `rng`.
///
/// # Errors
///
/// The random number generator's error (e.g. the OS source is unavailable).
pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Result<SigningKey, rand_core::Error> {
    let mut seed = Zeroizing::new([0u8; SECRET_KEY_LENGTH]);
    rng.try_fill_bytes(seed.as_mut())?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Runs `tolldns keygen …`: prints the base58 public key (one line) on `stdout`.
///
/// # Errors
///
/// [`keyfile::KeyFileError`] for key files that cannot be written or loaded, the OS random
/// source's error, I/O errors on output.
pub fn run(args: &KeygenArgs, stdout: &mut dyn Write) -> anyhow::Result<()> {
    let key = if let Some(path) = &args.pubkey {
        keyfile::load(path)?
    } else {
        let key = generate(&mut rand_core::OsRng).context("reading OS randomness")?;
        keyfile::write(&args.out, &key, args.force).map_err(|e| match e {
            KeyFileError::Exists { .. } => anyhow::anyhow!("{e} (pass --force to replace it)"),
            e => e.into(),
        })?;
        eprintln!("wrote {} (mode 0600)", args.out.display());
        key
    };
    writeln!(stdout, "{}", keyfile::public_key_base58(&key))?;
    stdout.flush()?;
    Ok(())
}
