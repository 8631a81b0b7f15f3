//! Operator roles.

use core::fmt;
use core::str::FromStr;

/// What an operator does for the network. The `u8` tags are a wire format: append-only, and a
/// retired value stays reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
#[non_exhaustive]
pub enum Role {
    /// DoH/DoT/UDP/TCP ingress with admission control and caching.
    EdgeIngress = 1,
    /// Web3 and content retrieval gateway.
    Gateway = 2,
    /// RRset, route and content cache.
    Cache = 3,
    /// Recursive resolver behind the edge.
    CoreResolver = 4,
    /// Anycast ingress.
    Anycast = 5,
    /// Scrubbing capacity.
    Scrubbing = 6,
}

impl Role {
    /// Every role, in tag order.
    pub const ALL: [Self; 6] = [
        Self::EdgeIngress,
        Self::Gateway,
        Self::Cache,
        Self::CoreResolver,
        Self::Anycast,
        Self::Scrubbing,
    ];

    /// The wire tag.
    pub const fn tag(self) -> u8 {
        self as u8
    }

    /// The role for a wire tag.
    ///
    /// # Errors
    ///
    /// [`UnknownRole`] for a tag that names no role (0, or anything above 6).
    pub const fn from_tag(tag: u8) -> Result<Self, UnknownRole> {
        Ok(match tag {
            1 => Self::EdgeIngress,
            2 => Self::Gateway,
            3 => Self::Cache,
            4 => Self::CoreResolver,
            5 => Self::Anycast,
            6 => Self::Scrubbing,
            _ => return Err(UnknownRole),
        })
    }

    /// The seed's name for the role, e.g. `EDGE_INGRESS`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::EdgeIngress => "EDGE_INGRESS",
            Self::Gateway => "GATEWAY",
            Self::Cache => "CACHE",
            Self::CoreResolver => "CORE_RESOLVER",
            Self::Anycast => "ANYCAST",
            Self::Scrubbing => "SCRUBBING",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or(UnknownRole)
    }
}

impl TryFrom<u8> for Role {
    type Error = UnknownRole;

    fn try_from(tag: u8) -> Result<Self, Self::Error> {
        Self::from_tag(tag)
    }
}

impl From<Role> for u8 {
    fn from(role: Role) -> Self {
        role.tag()
    }
}

/// A role tag or name that names no [`Role`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownRole;

impl fmt::Display for UnknownRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown operator role (expected 1..=6 or EDGE_INGRESS, GATEWAY, CACHE, CORE_RESOLVER, ANYCAST, SCRUBBING)")
    }
}

impl core::error::Error for UnknownRole {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_stable_and_round_trip() {
        let expected = [1u8, 2, 3, 4, 5, 6];
        for (role, tag) in Role::ALL.into_iter().zip(expected) {
            assert_eq!(role.tag(), tag);
            assert_eq!(Role::from_tag(tag), Ok(role));
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert_eq!(Role::from_tag(0), Err(UnknownRole));
        assert_eq!(Role::from_tag(7), Err(UnknownRole));
        assert_eq!("edge_ingress".parse::<Role>(), Err(UnknownRole));
    }
}
