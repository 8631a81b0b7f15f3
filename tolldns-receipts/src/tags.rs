//! Wire enums: every one is a `u8` tag on the wire and an upper-case name in JSON. Tags are
//! append-only; a retired tag stays reserved. Tag 0 is never used, so zeroed memory never
//! decodes as a valid value.

use core::fmt;

mod sealed {
    pub trait Sealed {}
}

/// An enum carried on the wire as a `u8` tag and in JSON as a name. Implemented by the enums of
/// this crate only.
pub trait WireTag: Copy + Ord + fmt::Debug + sealed::Sealed + 'static {
    /// Every value, in tag order.
    const ALL: &'static [Self];
    /// The field name used in error messages.
    const FIELD: &'static str;
    /// The wire tag.
    fn tag(self) -> u8;
    /// The value of a wire tag, if any.
    fn from_tag(tag: u8) -> Option<Self>;
    /// The JSON name.
    fn name(self) -> &'static str;
    /// The value of a JSON name, if any.
    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.name() == name)
    }
}

macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $ty:ident ($field:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $tag:literal => $name:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        #[non_exhaustive]
        $vis enum $ty {
            $( $(#[$vmeta])* $variant = $tag, )+
        }

        impl $crate::tags::sealed::Sealed for $ty {}

        impl $crate::tags::WireTag for $ty {
            const ALL: &'static [Self] = &[ $( Self::$variant, )+ ];
            const FIELD: &'static str = $field;
            fn tag(self) -> u8 {
                self as u8
            }
            fn from_tag(tag: u8) -> Option<Self> {
                match tag {
                    $( $tag => Some(Self::$variant), )+
                    _ => None,
                }
            }
            fn name(self) -> &'static str {
                match self {
                    $( Self::$variant => $name, )+
                }
            }
        }

        impl core::fmt::Display for $ty {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str($crate::tags::WireTag::name(*self))
            }
        }
    };
}

wire_enum! {
    /// The two kinds of receipt. Both share the leaf format.
    pub enum ReceiptType ("receipt_type") {
        /// One receipt per `(operator, backend_id, window_id)`, its leaves under a Merkle root.
        Batch = 1 => "BATCH",
        /// One receipt per request, for low-volume roles: exactly one leaf.
        PerRequest = 2 => "PER_REQUEST",
    }
}

wire_enum! {
    /// How the query reached the edge.
    pub enum Transport ("transport") {
        /// DNS over UDP (RFC 1035).
        Udp = 1 => "UDP",
        /// DNS over TCP (RFC 7766).
        Tcp = 2 => "TCP",
        /// DNS over TLS (RFC 7858).
        Dot = 3 => "DOT",
        /// DNS over HTTPS (RFC 8484).
        Doh = 4 => "DOH",
        /// DNS over QUIC (RFC 9250).
        Doq = 5 => "DOQ",
    }
}

wire_enum! {
    /// The seed's error classes, as counted in a service summary.
    pub enum ErrorClass ("error_class_counts") {
        /// SERVFAIL.
        Servfail = 1 => "SERVFAIL",
        /// REFUSED.
        Refused = 2 => "REFUSED",
        /// NXDOMAIN (an answer, but counted as an error class).
        Nxdomain = 3 => "NXDOMAIN",
        /// NOERROR without data (counted as an error class).
        Nodata = 4 => "NODATA",
        /// DNSSEC validation failed.
        InvalidSig = 5 => "INVALID_SIG",
        /// The query or an upstream answer was malformed.
        Malformed = 6 => "MALFORMED",
        /// No upstream answered in time, or all failed.
        UpstreamFail = 7 => "UPSTREAM_FAIL",
        /// Blocked by policy (admission, allow-list, RFC 8482).
        PolicyBlocked = 8 => "POLICY_BLOCKED",
        /// Anything else.
        Other = 9 => "OTHER",
    }
}

wire_enum! {
    /// The outcome of one request, as recorded in its leaf. `NOERROR` (an answer with data) is
    /// the only success; every other class maps to one [`ErrorClass`] (same name, tag + 1).
    pub enum RcodeClass ("rcode_class") {
        /// NOERROR with at least one answer record: a success.
        NoError = 1 => "NOERROR",
        /// SERVFAIL.
        Servfail = 2 => "SERVFAIL",
        /// REFUSED.
        Refused = 3 => "REFUSED",
        /// NXDOMAIN.
        Nxdomain = 4 => "NXDOMAIN",
        /// NOERROR without data.
        Nodata = 5 => "NODATA",
        /// DNSSEC validation failed.
        InvalidSig = 6 => "INVALID_SIG",
        /// Malformed query or answer.
        Malformed = 7 => "MALFORMED",
        /// Upstream failure or timeout.
        UpstreamFail = 8 => "UPSTREAM_FAIL",
        /// Blocked by policy.
        PolicyBlocked = 9 => "POLICY_BLOCKED",
        /// Anything else.
        Other = 10 => "OTHER",
    }
}

impl RcodeClass {
    /// The error class this outcome is counted under, or `None` for a success.
    pub fn error_class(self) -> Option<ErrorClass> {
        Some(match self {
            Self::NoError => return None,
            Self::Servfail => ErrorClass::Servfail,
            Self::Refused => ErrorClass::Refused,
            Self::Nxdomain => ErrorClass::Nxdomain,
            Self::Nodata => ErrorClass::Nodata,
            Self::InvalidSig => ErrorClass::InvalidSig,
            Self::Malformed => ErrorClass::Malformed,
            Self::UpstreamFail => ErrorClass::UpstreamFail,
            Self::PolicyBlocked => ErrorClass::PolicyBlocked,
            Self::Other => ErrorClass::Other,
        })
    }
}

wire_enum! {
    /// The seed's work classes: what kind of work a request cost.
    pub enum WorkClass ("work_class_counts") {
        /// Recursion answered from a warm path (few upstream round trips).
        DnsRecursionLight = 1 => "DNS_RECURSION_LIGHT",
        /// Recursion that needed several upstream round trips or validation.
        DnsRecursionHeavy = 2 => "DNS_RECURSION_HEAVY",
        /// A gateway (name-to-content) lookup.
        GatewayLookup = 3 => "GATEWAY_LOOKUP",
        /// Content retrieval, small object.
        ContentRetrievalSmall = 4 => "CONTENT_RETRIEVAL_SMALL",
        /// Content retrieval, large object.
        ContentRetrievalLarge = 5 => "CONTENT_RETRIEVAL_LARGE",
        /// Answered from cache.
        CacheHit = 6 => "CACHE_HIT",
        /// Not in cache, forwarded.
        CacheMiss = 7 => "CACHE_MISS",
        /// Anything else.
        Other = 8 => "OTHER",
    }
}

wire_enum! {
    /// Latency buckets (the health report's): upper bounds exclusive, in milliseconds.
    pub enum LatencyBucket ("latency_bucket") {
        /// < 25 ms.
        Lt25 = 1 => "<25",
        /// < 50 ms.
        Lt50 = 2 => "<50",
        /// < 100 ms.
        Lt100 = 3 => "<100",
        /// < 200 ms.
        Lt200 = 4 => "<200",
        /// < 500 ms.
        Lt500 = 5 => "<500",
        /// < 1000 ms.
        Lt1000 = 6 => "<1000",
        /// ≥ 1000 ms.
        Ge1000 = 7 => ">=1000",
    }
}

impl LatencyBucket {
    /// The bucket of a latency in milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        match ms {
            0..25 => Self::Lt25,
            25..50 => Self::Lt50,
            50..100 => Self::Lt100,
            100..200 => Self::Lt200,
            200..500 => Self::Lt500,
            500..1000 => Self::Lt1000,
            _ => Self::Ge1000,
        }
    }
}

wire_enum! {
    /// Response-size buckets (the health report's): upper bounds exclusive, in bytes.
    pub enum SizeBucket ("size_bucket") {
        /// < 256 bytes.
        Lt256 = 1 => "<256",
        /// < 512 bytes.
        Lt512 = 2 => "<512",
        /// < 1024 bytes.
        Lt1024 = 3 => "<1024",
        /// < 2048 bytes.
        Lt2048 = 4 => "<2048",
        /// ≥ 2048 bytes.
        Ge2048 = 5 => ">=2048",
    }
}

impl SizeBucket {
    /// The bucket of a response of `len` bytes.
    pub const fn from_len(len: u32) -> Self {
        match len {
            0..256 => Self::Lt256,
            256..512 => Self::Lt512,
            512..1024 => Self::Lt1024,
            1024..2048 => Self::Lt2048,
            _ => Self::Ge2048,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<T: WireTag>(expected_tags: &[u8]) {
        let tags: Vec<u8> = T::ALL.iter().map(|v| v.tag()).collect();
        assert_eq!(tags, expected_tags);
        for v in T::ALL {
            assert_eq!(T::from_tag(v.tag()), Some(*v));
            assert_eq!(T::from_name(v.name()), Some(*v));
        }
        assert_eq!(T::from_tag(0), None);
        assert_eq!(T::from_name(""), None);
    }

    #[test]
    fn tag_tables_are_stable() {
        check::<ReceiptType>(&[1, 2]);
        check::<Transport>(&[1, 2, 3, 4, 5]);
        check::<ErrorClass>(&[1, 2, 3, 4, 5, 6, 7, 8, 9]);
        check::<RcodeClass>(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        check::<WorkClass>(&[1, 2, 3, 4, 5, 6, 7, 8]);
        check::<LatencyBucket>(&[1, 2, 3, 4, 5, 6, 7]);
        check::<SizeBucket>(&[1, 2, 3, 4, 5]);
        assert_eq!(RcodeClass::NoError.error_class(), None);
        for r in RcodeClass::ALL.iter().skip(1) {
            let e = r.error_class().unwrap();
            assert_eq!(e.name(), r.name());
            assert_eq!(e.tag() + 1, r.tag());
        }
    }

    #[test]
    fn buckets() {
        assert_eq!(LatencyBucket::from_millis(0), LatencyBucket::Lt25);
        assert_eq!(LatencyBucket::from_millis(24), LatencyBucket::Lt25);
        assert_eq!(LatencyBucket::from_millis(25), LatencyBucket::Lt50);
        assert_eq!(LatencyBucket::from_millis(999), LatencyBucket::Lt1000);
        assert_eq!(LatencyBucket::from_millis(1000), LatencyBucket::Ge1000);
        assert_eq!(SizeBucket::from_len(255), SizeBucket::Lt256);
        assert_eq!(SizeBucket::from_len(256), SizeBucket::Lt512);
        assert_eq!(SizeBucket::from_len(2047), SizeBucket::Lt2048);
        assert_eq!(SizeBucket::from_len(u32::MAX), SizeBucket::Ge2048);
    }
}
