//! DNS cookies (RFC 7873) with interoperable server cookies (RFC 9018), sans-IO.
//!
//! A UDP source address can be spoofed; a server cookie cannot be guessed. A client that sends
//! a COOKIE option with a client cookie gets a server cookie back in every response; when it
//! returns that server cookie from the same address, the edge knows the address is really the
//! client's (it received an earlier response there), and the UDP response limits that exist to
//! stop reflection (response-rate limiting, the amplification bound; docs/ABUSE.md) no
//! longer apply to it. A client without cookies, or with a stale or forged server cookie, is
//! limited as before; its response carries a fresh server cookie, so the next query is
//! verified.
//!
//! Server cookie (RFC 9018 §4): version 1, three reserved zero octets, a 32-bit timestamp
//! (seconds since the Unix epoch, serial-number arithmetic) and SipHash-2-4 over the client
//! cookie, those eight octets and the client's IP address, keyed with a 128-bit secret drawn at
//! random when the edge starts. A server cookie is accepted for one hour after its timestamp
//! and up to five minutes before it (clock skew between servers sharing a secret); a restart
//! draws a new secret, after which clients are simply re-issued cookies.

use std::hash::Hasher;
use std::net::IpAddr;

use siphasher::sip::SipHasher24;

/// EDNS option code of COOKIE (RFC 7873).
pub const COOKIE_OPTION_CODE: u16 = 10;
/// Length of a client cookie.
pub const CLIENT_COOKIE_LEN: usize = 8;
/// Length of the server cookies this edge issues (RFC 9018).
pub const SERVER_COOKIE_LEN: usize = 16;
/// How long after its timestamp a server cookie is accepted, in seconds (RFC 9018 §4.3).
pub const COOKIE_LIFETIME_SECS: u32 = 3_600;
/// How far ahead of the clock a server cookie's timestamp may be, in seconds (RFC 9018 §4.3).
pub const COOKIE_SKEW_SECS: u32 = 300;

/// A client's COOKIE option, as the query carried it (RFC 7873 §4).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ClientCookies {
    client: [u8; CLIENT_COOKIE_LEN],
    server: [u8; 32],
    server_len: u8,
}

impl core::fmt::Debug for ClientCookies {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Cookies are credentials of a sort: never printed.
        f.debug_struct("ClientCookies")
            .field("server_len", &self.server_len)
            .finish_non_exhaustive()
    }
}

impl ClientCookies {
    /// Reads the option's data: a client cookie of 8 octets, optionally followed by a server
    /// cookie of 8 to 32 octets. `None` for any other length (such an option is ignored).
    pub fn from_option(data: &[u8]) -> Option<Self> {
        let (client, server) = data.split_first_chunk::<CLIENT_COOKIE_LEN>()?;
        if !(server.is_empty() || (8..=32).contains(&server.len())) {
            return None;
        }
        let mut out = Self {
            client: *client,
            server: [0; 32],
            server_len: u8::try_from(server.len()).ok()?,
        };
        out.server.get_mut(..server.len())?.copy_from_slice(server);
        Some(out)
    }

    /// The client cookie.
    pub const fn client(&self) -> &[u8; CLIENT_COOKIE_LEN] {
        &self.client
    }

    /// The server cookie the client returned, if any.
    pub fn server(&self) -> Option<&[u8]> {
        match self.server_len {
            0 => None,
            n => self.server.get(..usize::from(n)),
        }
    }
}

/// What a query's cookies showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieCheck {
    /// No COOKIE option.
    None,
    /// A client cookie only (a first contact).
    ClientOnly,
    /// A server cookie this edge issued to this address, within its lifetime.
    Valid,
    /// A server cookie that does not verify (forged, another address, expired, another
    /// secret).
    Invalid,
}

/// Issues and verifies server cookies with one secret.
#[derive(Clone)]
pub struct CookieSecret {
    key: [u8; 16],
}

impl core::fmt::Debug for CookieSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CookieSecret").finish_non_exhaustive()
    }
}

impl CookieSecret {
    /// A secret drawn from the operating system's CSPRNG.
    pub fn random() -> Self {
        Self {
            key: rand::random(),
        }
    }

    /// A fixed secret (several edges answering for one address share one, RFC 9018 §4.4).
    pub const fn from_bytes(key: [u8; 16]) -> Self {
        Self { key }
    }

    /// The server cookie for `client` at `ip`, stamped `now_secs` (seconds since the Unix
    /// epoch; only the low 32 bits are used).
    pub fn issue(
        &self,
        client: &[u8; CLIENT_COOKIE_LEN],
        ip: IpAddr,
        now_secs: u64,
    ) -> [u8; SERVER_COOKIE_LEN] {
        // Serial-number arithmetic on the low 32 bits (RFC 9018 §4.3).
        #[allow(clippy::cast_possible_truncation)]
        let stamp = now_secs as u32;
        let mut out = [0u8; SERVER_COOKIE_LEN];
        out[0] = 1;
        out[4..8].copy_from_slice(&stamp.to_be_bytes());
        let hash = self.hash(client, &out[..8], ip);
        out[8..].copy_from_slice(&hash);
        out
    }

    /// Checks a query's cookies against `ip` and the clock.
    pub fn check(&self, cookies: Option<&ClientCookies>, ip: IpAddr, now_secs: u64) -> CookieCheck {
        let Some(c) = cookies else {
            return CookieCheck::None;
        };
        let Some(server) = c.server() else {
            return CookieCheck::ClientOnly;
        };
        let Some((head, hash)) = server.split_first_chunk::<8>() else {
            return CookieCheck::Invalid;
        };
        if hash.len() != 8 || head[0] != 1 || head[1..4] != [0, 0, 0] {
            return CookieCheck::Invalid;
        }
        let stamp = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        #[allow(clippy::cast_possible_truncation)]
        let now = now_secs as u32;
        // Age in serial-number arithmetic: "in the past" up to the lifetime, "in the future"
        // up to the skew.
        let age = now.wrapping_sub(stamp);
        let ahead = stamp.wrapping_sub(now);
        if age > COOKIE_LIFETIME_SECS && ahead > COOKIE_SKEW_SECS {
            return CookieCheck::Invalid;
        }
        let expected = self.hash(&c.client, head, ip);
        // Not secret-dependent timing worth guarding: the hash is a MAC over public inputs and
        // a mismatch reveals nothing about the key; still compared in full.
        if expected
            .iter()
            .zip(hash)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
        {
            CookieCheck::Valid
        } else {
            CookieCheck::Invalid
        }
    }

    fn hash(&self, client: &[u8; CLIENT_COOKIE_LEN], head: &[u8], ip: IpAddr) -> [u8; 8] {
        let mut h = SipHasher24::new_with_key(&self.key);
        h.write(client);
        h.write(head);
        match ip {
            IpAddr::V4(v4) => h.write(&v4.octets()),
            IpAddr::V6(v6) => h.write(&v6.octets()),
        }
        h.finish().to_le_bytes()
    }
}

/// The COOKIE option data of a response: the client cookie followed by a fresh server cookie.
pub fn response_option(
    secret: &CookieSecret,
    cookies: &ClientCookies,
    ip: IpAddr,
    now_secs: u64,
) -> [u8; CLIENT_COOKIE_LEN + SERVER_COOKIE_LEN] {
    let mut out = [0u8; CLIENT_COOKIE_LEN + SERVER_COOKIE_LEN];
    out[..CLIENT_COOKIE_LEN].copy_from_slice(cookies.client());
    out[CLIENT_COOKIE_LEN..].copy_from_slice(&secret.issue(cookies.client(), ip, now_secs));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7));
    const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 8));
    const NOW: u64 = 1_800_000_000;

    fn returned(secret: &CookieSecret, ip: IpAddr, at: u64) -> ClientCookies {
        let data = response_option(
            secret,
            &ClientCookies::from_option(&[7; 8]).unwrap(),
            ip,
            at,
        );
        ClientCookies::from_option(&data).unwrap()
    }

    #[test]
    fn option_lengths_follow_rfc_7873() {
        assert!(
            ClientCookies::from_option(&[1; 8])
                .unwrap()
                .server()
                .is_none()
        );
        assert_eq!(
            ClientCookies::from_option(&[1; 24]).unwrap().server(),
            Some(&[1u8; 16][..])
        );
        assert!(ClientCookies::from_option(&[1; 40]).is_some());
        for bad in [0usize, 7, 9, 15, 41] {
            assert!(ClientCookies::from_option(&vec![1; bad]).is_none(), "{bad}");
        }
    }

    #[test]
    fn issued_cookie_verifies_only_for_its_address_secret_and_lifetime() {
        let secret = CookieSecret::from_bytes([9; 16]);
        let c = returned(&secret, IP, NOW);
        assert_eq!(secret.check(Some(&c), IP, NOW), CookieCheck::Valid);
        assert_eq!(secret.check(Some(&c), IP, NOW + 3_600), CookieCheck::Valid);
        assert_eq!(
            secret.check(Some(&c), IP, NOW + 3_601),
            CookieCheck::Invalid
        );
        assert_eq!(secret.check(Some(&c), IP, NOW - 300), CookieCheck::Valid);
        assert_eq!(secret.check(Some(&c), IP, NOW - 301), CookieCheck::Invalid);
        assert_eq!(secret.check(Some(&c), OTHER, NOW), CookieCheck::Invalid);
        let other_secret = CookieSecret::from_bytes([8; 16]);
        assert_eq!(other_secret.check(Some(&c), IP, NOW), CookieCheck::Invalid);
    }

    #[test]
    fn tampering_with_any_octet_is_refused() {
        let secret = CookieSecret::random();
        let good = response_option(
            &secret,
            &ClientCookies::from_option(&[3; 8]).unwrap(),
            IP,
            NOW,
        );
        for i in 0..good.len() {
            let mut bad = good;
            bad[i] ^= 0x01;
            let c = ClientCookies::from_option(&bad).unwrap();
            assert_eq!(
                secret.check(Some(&c), IP, NOW),
                CookieCheck::Invalid,
                "octet {i}"
            );
        }
    }

    #[test]
    fn absent_and_client_only_cookies_are_told_apart() {
        let secret = CookieSecret::random();
        assert_eq!(secret.check(None, IP, NOW), CookieCheck::None);
        let c = ClientCookies::from_option(&[5; 8]).unwrap();
        assert_eq!(secret.check(Some(&c), IP, NOW), CookieCheck::ClientOnly);
        // A server cookie of another format (8 octets, as before RFC 9018) is not ours.
        let c = ClientCookies::from_option(&[5; 16]).unwrap();
        assert_eq!(secret.check(Some(&c), IP, NOW), CookieCheck::Invalid);
    }

    #[test]
    fn timestamps_wrap_in_serial_number_arithmetic() {
        let secret = CookieSecret::from_bytes([1; 16]);
        let before_wrap = u64::from(u32::MAX) - 10;
        let c = returned(&secret, IP, before_wrap);
        assert_eq!(
            secret.check(Some(&c), IP, before_wrap + 100),
            CookieCheck::Valid
        );
    }
}
