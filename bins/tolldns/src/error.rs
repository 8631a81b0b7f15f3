//! Error types of the CLI and their exit codes.

use std::io;

/// Exit code of a successful run (also used when stdout is a closed pipe).
pub const EXIT_OK: u8 = 0;
/// Exit code of a verification failure (a receipt, proof or signature that does not verify),
/// and of a refusal by a server (an issuer that will not issue, an edge that answers `REFUSED`).
pub const EXIT_VERIFICATION_FAILED: u8 = 1;
/// Exit code of bad input: unreadable or malformed files, out-of-range values, usage errors.
pub const EXIT_BAD_INPUT: u8 = 2;

/// An error the CLI reports with a specific meaning.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A value of the input is missing, malformed or out of range; `path` names it
    /// (e.g. `miners[1].uptime_score`).
    #[error("{path}: {reason}")]
    BadField {
        /// JSON path of the offending field.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The input is not JSON.
    #[error("input is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Something was checked and does not verify.
    #[error("verification failed: {0}")]
    VerificationFailed(String),
    /// A server (the issuer, the edge) answered and said no; the text says who and why.
    #[error("refused: {0}")]
    Refused(String),
}

impl CliError {
    /// A [`CliError::BadField`].
    pub(crate) fn field(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::BadField {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// The process exit code for an error returned by [`crate::run`]: [`EXIT_OK`] when the only
/// problem is a closed stdout (broken pipe), [`EXIT_VERIFICATION_FAILED`] for a
/// [`CliError::VerificationFailed`] or a [`CliError::Refused`], [`EXIT_BAD_INPUT`] for
/// everything else (including a server that cannot be reached).
pub fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            if io.kind() == io::ErrorKind::BrokenPipe {
                return EXIT_OK;
            }
        }
        if let Some(CliError::VerificationFailed(_) | CliError::Refused(_)) =
            cause.downcast_ref::<CliError>()
        {
            return EXIT_VERIFICATION_FAILED;
        }
    }
    EXIT_BAD_INPUT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        let pipe = anyhow::Error::from(io::Error::from(io::ErrorKind::BrokenPipe));
        assert_eq!(exit_code(&pipe.context("writing the output")), EXIT_OK);
        let failed = anyhow::Error::from(CliError::VerificationFailed("bad signature".into()));
        assert_eq!(exit_code(&failed), EXIT_VERIFICATION_FAILED);
        let refused = anyhow::Error::from(CliError::Refused("402".into()));
        assert_eq!(
            exit_code(&refused.context("fetching tokens")),
            EXIT_VERIFICATION_FAILED
        );
        let bad = anyhow::Error::from(CliError::field("pool", "missing"));
        assert_eq!(exit_code(&bad), EXIT_BAD_INPUT);
        let missing = anyhow::Error::from(io::Error::from(io::ErrorKind::NotFound));
        assert_eq!(exit_code(&missing), EXIT_BAD_INPUT);
    }
}
