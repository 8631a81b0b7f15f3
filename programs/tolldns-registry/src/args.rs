//! Instruction arguments and their validation.

#![warn(missing_docs)]

use anchor_lang::prelude::*;

use crate::constants::{
    MAX_BACKENDS, MAX_BACKEND_ID_LEN, MAX_ENDPOINTS, MAX_ENDPOINT_LEN, MAX_SLASHERS, ROLE_MASK,
};
use crate::error::RegistryError;
use crate::state::Endpoint;

use crate::constants::{TRANSPORT_AUDIT_API, TRANSPORT_DOQ, TRANSPORT_UDP};

/// Arguments of `init_registry_config`.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug, PartialEq, Eq)]
pub struct RegistryArgs {
    /// Epoch length in slots (must equal the score program's); immutable afterwards.
    pub epoch_len_slots: u64,
    /// Slots between an exit request and its withdrawal; can only shrink afterwards.
    pub exit_delay_slots: u64,
    /// Price of one ticket, in base units of the TOLL mint.
    pub ticket_price: u64,
    /// The initial slashers, active from slot 0 (at most [`MAX_SLASHERS`], no duplicates).
    pub slashers: Vec<Pubkey>,
}

impl RegistryArgs {
    /// Checks the bounds.
    ///
    /// # Errors
    ///
    /// [`RegistryError::InvalidConfig`] for a zero epoch length or exit delay, or a duplicate
    /// slasher; [`RegistryError::TooManySlashers`] for more than [`MAX_SLASHERS`].
    pub fn validate(&self) -> Result<()> {
        require!(self.epoch_len_slots > 0, RegistryError::InvalidConfig);
        require!(self.exit_delay_slots > 0, RegistryError::InvalidConfig);
        require!(
            self.slashers.len() <= MAX_SLASHERS,
            RegistryError::TooManySlashers
        );
        for (i, key) in self.slashers.iter().enumerate() {
            require!(
                !self.slashers.iter().take(i).any(|k| k == key),
                RegistryError::InvalidConfig
            );
        }
        Ok(())
    }
}

/// Arguments of `register_operator`.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug, PartialEq, Eq)]
pub struct OperatorArgs {
    /// The ed25519 receipt-signing key, valid from the registration slot.
    pub signing_key: [u8; 32],
    /// Role bits (non-zero, within [`ROLE_MASK`]).
    pub roles: u16,
    /// Backend ids (at most [`MAX_BACKENDS`], each 1..=[`MAX_BACKEND_ID_LEN`] bytes of
    /// printable ASCII without spaces, no duplicates).
    pub backend_ids: Vec<String>,
    /// Public endpoints (at most [`MAX_ENDPOINTS`]).
    pub endpoints: Vec<Endpoint>,
}

/// Arguments of `update_operator`: the operator's profile (everything but the key and status).
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug, PartialEq, Eq)]
pub struct OperatorUpdate {
    /// Role bits (non-zero, within [`ROLE_MASK`]).
    pub roles: u16,
    /// Backend ids (same rules as [`OperatorArgs::backend_ids`]).
    pub backend_ids: Vec<String>,
    /// Public endpoints (at most [`MAX_ENDPOINTS`]).
    pub endpoints: Vec<Endpoint>,
}

/// Validates an operator profile (shared by `register_operator` and `update_operator`).
///
/// # Errors
///
/// [`RegistryError::InvalidRoles`], [`RegistryError::TooManyBackends`],
/// [`RegistryError::InvalidBackendId`], [`RegistryError::TooManyEndpoints`],
/// [`RegistryError::InvalidEndpoint`].
pub fn validate_profile(roles: u16, backend_ids: &[String], endpoints: &[Endpoint]) -> Result<()> {
    require!(
        roles != 0 && roles & !ROLE_MASK == 0,
        RegistryError::InvalidRoles
    );
    require!(
        backend_ids.len() <= MAX_BACKENDS,
        RegistryError::TooManyBackends
    );
    for (i, id) in backend_ids.iter().enumerate() {
        let bytes = id.as_bytes();
        require!(
            !bytes.is_empty()
                && bytes.len() <= MAX_BACKEND_ID_LEN
                && bytes.iter().all(|b| (0x21..=0x7e).contains(b)),
            RegistryError::InvalidBackendId
        );
        require!(
            !backend_ids.iter().take(i).any(|other| other == id),
            RegistryError::InvalidBackendId
        );
    }
    require!(
        endpoints.len() <= MAX_ENDPOINTS,
        RegistryError::TooManyEndpoints
    );
    for endpoint in endpoints {
        require!(valid_endpoint(endpoint), RegistryError::InvalidEndpoint);
    }
    Ok(())
}

/// Whether one endpoint is well formed: a known transport and an address of 1 to
/// [`MAX_ENDPOINT_LEN`] bytes; for [`TRANSPORT_AUDIT_API`], an origin as [`valid_api_origin`]
/// defines it.
fn valid_endpoint(endpoint: &Endpoint) -> bool {
    let address = endpoint.address.as_str();
    if address.is_empty() || address.len() > MAX_ENDPOINT_LEN {
        return false;
    }
    match endpoint.transport {
        TRANSPORT_UDP..=TRANSPORT_DOQ => true,
        TRANSPORT_AUDIT_API => valid_api_origin(address),
        _ => false,
    }
}

/// Whether `address` is an HTTP origin `http://host:port` or `https://host:port`: the scheme,
/// then a non-empty host of printable ASCII without `/`, `?`, `#` or `@`, then `:` and a port
/// of 1 to 5 digits in `1..=65535`. No path, query, fragment or user info.
pub fn valid_api_origin(address: &str) -> bool {
    let Some(authority) = address
        .strip_prefix("https://")
        .or_else(|| address.strip_prefix("http://"))
    else {
        return false;
    };
    let Some((host, port)) = authority.rsplit_once(':') else {
        return false;
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && !matches!(b, b'/' | b'?' | b'#' | b'@'));
    let port_ok = !port.is_empty()
        && port.len() <= 5
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u32>().is_ok_and(|p| (1..=65_535).contains(&p));
    host_ok && port_ok
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests panic on failure by design
mod tests {
    use super::*;

    fn endpoint(transport: u8, address: &str) -> Endpoint {
        Endpoint {
            transport,
            address: address.to_string(),
        }
    }

    fn code(r: Result<()>) -> u32 {
        match r {
            Err(Error::AnchorError(e)) => e.error_code_number,
            other => panic!("expected an Anchor error, got {other:?}"),
        }
    }

    #[test]
    fn profile_bounds() {
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let ok_ep = vec![
            endpoint(1, "203.0.113.7:53"),
            endpoint(4, "https://a/dns-query"),
        ];
        assert!(validate_profile(0b10, &ids(&["a", "b"]), &ok_ep).is_ok());
        assert!(validate_profile(ROLE_MASK, &ids(&["~!"]), &[]).is_ok());
        let e = |err: RegistryError| u32::from(err);
        assert_eq!(
            code(validate_profile(0, &[], &[])),
            e(RegistryError::InvalidRoles)
        );
        assert_eq!(
            code(validate_profile(1, &[], &[])),
            e(RegistryError::InvalidRoles)
        );
        assert_eq!(
            code(validate_profile(1 << 7, &[], &[])),
            e(RegistryError::InvalidRoles)
        );
        let nine: Vec<String> = (0..9).map(|i| format!("b{i}")).collect();
        assert_eq!(
            code(validate_profile(2, &nine, &[])),
            e(RegistryError::TooManyBackends)
        );
        for bad in ["", "has space", "tab\t", "é", &"x".repeat(33)] {
            assert_eq!(
                code(validate_profile(2, &ids(&[bad]), &[])),
                e(RegistryError::InvalidBackendId),
                "{bad:?}"
            );
        }
        assert!(validate_profile(2, &ids(&[&"x".repeat(32)]), &[]).is_ok());
        assert_eq!(
            code(validate_profile(2, &ids(&["a", "a"]), &[])),
            e(RegistryError::InvalidBackendId)
        );
        let five = vec![endpoint(1, "a:53"); MAX_ENDPOINTS + 1];
        assert_eq!(
            code(validate_profile(2, &[], &five)),
            e(RegistryError::TooManyEndpoints)
        );
        for bad in [
            endpoint(0, "a:53"),
            endpoint(7, "a:53"),
            endpoint(6, "a:53"),
            endpoint(1, ""),
            endpoint(1, &"x".repeat(97)),
        ] {
            assert_eq!(
                code(validate_profile(2, &[], &[bad])),
                e(RegistryError::InvalidEndpoint)
            );
        }
        assert!(validate_profile(2, &[], &[endpoint(5, &"x".repeat(96))]).is_ok());
    }

    #[test]
    fn audit_api_origin() {
        for good in [
            "http://127.0.0.1:8080",
            "https://miner.example:443",
            "http://[::1]:1",
            "https://a:65535",
        ] {
            assert!(valid_api_origin(good), "{good}");
            assert!(
                validate_profile(2, &[], &[endpoint(TRANSPORT_AUDIT_API, good)]).is_ok(),
                "{good}"
            );
        }
        let long = format!("https://{}:443", "x".repeat(MAX_ENDPOINT_LEN - 11));
        assert_eq!(long.len(), MAX_ENDPOINT_LEN + 1);
        for bad in [
            "127.0.0.1:8080",
            "ftp://a:21",
            "http://",
            "http://:80",
            "http://a",
            "http://a:",
            "http://a:0",
            "http://a:65536",
            "http://a:123456",
            "http://a:8x",
            "http://a:80/",
            "http://a/x:80",
            "https://u@a:443",
            "http://a b:80",
            "HTTP://a:80",
            long.as_str(),
        ] {
            assert_eq!(
                code(validate_profile(
                    2,
                    &[],
                    &[endpoint(TRANSPORT_AUDIT_API, bad)]
                )),
                u32::from(RegistryError::InvalidEndpoint),
                "{bad}"
            );
        }
    }

    #[test]
    fn registry_args_bounds() {
        let k = |i: u8| Pubkey::new_from_array([i; 32]);
        let good = RegistryArgs {
            epoch_len_slots: 100,
            exit_delay_slots: 50,
            ticket_price: 1,
            slashers: vec![k(1), k(2), k(3), k(4)],
        };
        assert!(good.validate().is_ok());
        let e = |err: RegistryError| u32::from(err);
        let mut bad = good.clone();
        bad.epoch_len_slots = 0;
        assert_eq!(code(bad.validate()), e(RegistryError::InvalidConfig));
        let mut bad = good.clone();
        bad.exit_delay_slots = 0;
        assert_eq!(code(bad.validate()), e(RegistryError::InvalidConfig));
        let mut bad = good.clone();
        bad.slashers.push(k(5));
        assert_eq!(code(bad.validate()), e(RegistryError::TooManySlashers));
        let mut bad = good;
        bad.slashers[3] = k(1);
        assert_eq!(code(bad.validate()), e(RegistryError::InvalidConfig));
    }
}
