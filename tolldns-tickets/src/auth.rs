//! The `PrivateToken` HTTP authentication scheme (RFC 9577 §2): the edge's
//! `WWW-Authenticate` challenge and the client's `Authorization` credential.
//!
//! Values are base64url (RFC 4648 §5). This crate writes them padded and quoted, as RFC 9577's
//! examples do, and reads them padded or not, quoted or not.

use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};

use crate::codec::{MAX_TOKEN_LEN, TokenChallenge};
use crate::key::IssuerPublicKey;

/// The authentication scheme name.
pub const SCHEME: &str = "PrivateToken";

/// A header value could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Not the `PrivateToken` scheme.
    #[error("authorization scheme is not PrivateToken")]
    WrongScheme,
    /// A required parameter is missing.
    #[error("PrivateToken parameter `{0}` is missing")]
    Missing(&'static str),
    /// A parameter is not valid base64url.
    #[error("PrivateToken parameter `{0}` is not base64url")]
    Base64(&'static str),
    /// The header is longer than any valid one.
    #[error("header value is too long")]
    TooLong,
    /// The parameter list does not parse.
    #[error("malformed PrivateToken parameters")]
    Syntax,
}

fn b64_decode(value: &str, what: &'static str) -> Result<Vec<u8>, AuthError> {
    let trimmed = value.trim_end_matches('=');
    URL_SAFE_NO_PAD
        .decode(trimmed)
        .map_err(|_| AuthError::Base64(what))
}

/// One challenge of a `WWW-Authenticate: PrivateToken …` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The encoded `TokenChallenge`.
    pub challenge: Vec<u8>,
    /// The issuer key's SPKI.
    pub token_key: Vec<u8>,
    /// `max-age`, when given.
    pub max_age: Option<u32>,
}

/// The value of a `WWW-Authenticate` header challenging for a token bound to `challenge`
/// under `key`.
///
/// # Errors
///
/// When the challenge does not encode.
pub fn www_authenticate(
    challenge: &TokenChallenge,
    key: &IssuerPublicKey,
    max_age: Option<u32>,
) -> Result<String, crate::DecodeError> {
    let mut out = format!(
        "{SCHEME} challenge=\"{}\", token-key=\"{}\"",
        URL_SAFE.encode(challenge.to_bytes()?),
        URL_SAFE.encode(key.spki())
    );
    if let Some(age) = max_age {
        out.push_str(&format!(", max-age={age}"));
    }
    Ok(out)
}

/// The value of an `Authorization` header presenting `token` (its encoded bytes).
pub fn authorization(token: &[u8]) -> String {
    format!("{SCHEME} token=\"{}\"", URL_SAFE.encode(token))
}

/// One scheme of an authentication header with its `(lower-cased name, value)` parameters.
type Group = (String, Vec<(String, String)>);

/// Split `name=value` pairs (values optionally quoted) separated by commas; a bare word
/// starts a new scheme. Returns `(scheme, params)` groups.
fn groups(value: &str) -> Result<Vec<Group>, AuthError> {
    let mut out: Vec<Group> = Vec::new();
    let mut rest = value.trim();
    while !rest.is_empty() {
        rest = rest.trim_start_matches([',', ' ', '\t']);
        if rest.is_empty() {
            break;
        }
        let word_end = rest
            .find(|c: char| c == '=' || c == ',' || c.is_whitespace())
            .unwrap_or(rest.len());
        let word = &rest[..word_end];
        let after = rest[word_end..].trim_start_matches([' ', '\t']);
        if let Some(v) = after.strip_prefix('=') {
            let v = v.trim_start_matches([' ', '\t']);
            let (val, tail) = if let Some(q) = v.strip_prefix('"') {
                let end = q.find('"').ok_or(AuthError::Syntax)?;
                (&q[..end], &q[end + 1..])
            } else {
                let end = v.find([',', ' ', '\t']).unwrap_or(v.len());
                (&v[..end], &v[end..])
            };
            let group = out.last_mut().ok_or(AuthError::Syntax)?;
            group.1.push((word.to_ascii_lowercase(), val.to_owned()));
            rest = tail;
        } else {
            if word.is_empty() {
                return Err(AuthError::Syntax);
            }
            out.push((word.to_owned(), Vec::new()));
            rest = after;
        }
    }
    Ok(out)
}

/// Read the token out of an `Authorization: PrivateToken token="…"` value.
///
/// # Errors
///
/// An [`AuthError`].
pub fn parse_authorization(value: &str) -> Result<Vec<u8>, AuthError> {
    // base64 of the longest token, quotes and the scheme.
    if value.len() > MAX_TOKEN_LEN * 2 + 64 {
        return Err(AuthError::TooLong);
    }
    let groups = groups(value)?;
    let (scheme, params) = groups.first().ok_or(AuthError::WrongScheme)?;
    if !scheme.eq_ignore_ascii_case(SCHEME) {
        return Err(AuthError::WrongScheme);
    }
    let token = params
        .iter()
        .find(|(k, _)| k == "token")
        .ok_or(AuthError::Missing("token"))?;
    let token = b64_decode(&token.1, "token")?;
    // Longer than any token: refused here, so that whatever parses also writes back.
    if token.len() > MAX_TOKEN_LEN {
        return Err(AuthError::TooLong);
    }
    Ok(token)
}

/// Read every `PrivateToken` challenge of a `WWW-Authenticate` value (other schemes are
/// skipped).
///
/// # Errors
///
/// An [`AuthError`]; [`AuthError::Missing`] when a `PrivateToken` challenge lacks a
/// parameter.
pub fn parse_www_authenticate(value: &str) -> Result<Vec<Challenge>, AuthError> {
    if value.len() > 16 * 1024 {
        return Err(AuthError::TooLong);
    }
    let mut out = Vec::new();
    for (scheme, params) in groups(value)? {
        if !scheme.eq_ignore_ascii_case(SCHEME) {
            continue;
        }
        let get = |name: &'static str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let challenge = b64_decode(
            get("challenge").ok_or(AuthError::Missing("challenge"))?,
            "challenge",
        )?;
        let token_key = b64_decode(
            get("token-key").ok_or(AuthError::Missing("token-key"))?,
            "token-key",
        )?;
        let max_age = match get("max-age") {
            Some(v) => Some(v.parse().map_err(|_| AuthError::Syntax)?),
            None => None,
        };
        out.push(Challenge {
            challenge,
            token_key,
            max_age,
        });
    }
    if out.is_empty() {
        return Err(AuthError::WrongScheme);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_round_trips_in_every_spelling() {
        let token = vec![0xfbu8; 354];
        let header = authorization(&token);
        assert!(header.starts_with("PrivateToken token=\""));
        assert_eq!(parse_authorization(&header).unwrap(), token);
        let bare = format!("privatetoken token={}", URL_SAFE_NO_PAD.encode(&token));
        assert_eq!(parse_authorization(&bare).unwrap(), token);
        assert_eq!(
            parse_authorization("Bearer abc"),
            Err(AuthError::WrongScheme)
        );
        assert_eq!(
            parse_authorization("PrivateToken nonce=\"AA\""),
            Err(AuthError::Missing("token"))
        );
        assert_eq!(
            parse_authorization("PrivateToken token=\"***\""),
            Err(AuthError::Base64("token"))
        );
        assert_eq!(
            parse_authorization("PrivateToken token=\"AAAA"),
            Err(AuthError::Syntax)
        );
        assert_eq!(
            parse_authorization(&"A".repeat(5000)),
            Err(AuthError::TooLong)
        );
        // Within the header bound but longer than any token (found by fuzzing: it parsed, and
        // its re-encoding did not).
        let long = format!("PrivateToken token={}", "A".repeat(1264));
        assert_eq!(parse_authorization(&long), Err(AuthError::TooLong));
        let max = vec![1u8; MAX_TOKEN_LEN];
        assert_eq!(parse_authorization(&authorization(&max)), Ok(max));
    }

    #[test]
    fn challenges_parse_among_other_schemes() {
        let value = "Basic realm=\"x\", PrivateToken challenge=\"AAIA\", token-key=\"AQID\", max-age=10, PrivateToken challenge=AAIB, token-key=BAUG";
        let got = parse_www_authenticate(value).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].challenge, vec![0, 2, 0]);
        assert_eq!(got[0].token_key, vec![1, 2, 3]);
        assert_eq!(got[0].max_age, Some(10));
        assert_eq!(got[1].challenge, vec![0, 2, 1]);
        assert_eq!(got[1].max_age, None);
        assert_eq!(
            parse_www_authenticate("PrivateToken challenge=\"AAIA\""),
            Err(AuthError::Missing("token-key"))
        );
    }
}
