//! The JSON form of a receipt (feature `json`), for humans and HTTP APIs. It maps one to one
//! onto the canonical bytes: `Receipt::from_json(r.to_json())` is `r`, byte for byte.
//!
//! Hashes are lowercase hex, keys and signatures base58 (Bitcoin alphabet), enums by name,
//! class counts as objects keyed by class name. Unknown fields are refused.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use serde::{Deserialize, Serialize};
use tolldns_core::{BackendId, DeploymentId, OperatorId, Role, WindowId, WindowLen};

use crate::receipt::{
    ClassCounts, Integrity, RECEIPT_VERSION, RECEIPT_VERSION_V1, Receipt, ReceiptBody,
    ServiceSummary, V2Commitments,
};
use crate::sketch::{NameSketch, SKETCH_REGISTERS};
use crate::tags::{LatencyBucket, ReceiptType, SizeBucket, WireTag};

/// `integrity.leaf_hash_scheme` of a v2 receipt: how leaves are encoded and hashed.
pub const LEAF_HASH_SCHEME: &str = "TOLLDNS-LEAF-V2/SHA256-RFC6962";
/// `integrity.leaf_hash_scheme` of a v1 receipt.
pub const LEAF_HASH_SCHEME_V1: &str = "TOLLDNS-LEAF-V1/SHA256-RFC6962";
/// `integrity.name_sketch_scheme` of a v2 receipt.
pub const NAME_SKETCH_SCHEME: &str = "HLL-256/ticketed-name-hash";
/// `integrity.merkle_scheme`: how the tree is built.
pub const MERKLE_SCHEME: &str = "RFC6962-SHA256";
/// `integrity.name_hash_scheme`: how leaves hash names.
pub const NAME_HASH_SCHEME: &str = "HMAC-SHA256-128(epoch_name_key)";
/// `signature.scheme`.
pub const SIGNATURE_SCHEME: &str = "ed25519";

/// A field that, when present, must hold a value: `null` is refused (an absent field is
/// `None` through `#[serde(default)]`), so one receipt has one JSON form.
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonReceipt {
    receipt_version: u8,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    deployment_id: Option<String>,
    receipt_type: String,
    operator_id: String,
    operator_role: String,
    backend_id: String,
    policy_version: u32,
    window_len_s: u32,
    window_id: u64,
    timestamp_ms: u64,
    service_summary: JsonSummary,
    integrity: JsonIntegrity,
    signature: JsonSignature,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonSummary {
    request_count: u64,
    success_count: u64,
    error_count: u64,
    bytes_served_total: u64,
    served_from_cache_count: u64,
    latency_p95_bucket_ms: String,
    response_size_p95_bucket_bytes: String,
    error_class_counts: CountMap,
    work_class_counts: CountMap,
}

/// A JSON object of counts that refuses duplicate keys (serde's map would keep the last).
#[derive(Serialize)]
#[serde(transparent)]
struct CountMap(BTreeMap<String, u64>);

impl<'de> Deserialize<'de> for CountMap {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = CountMap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of class names to counts")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<CountMap, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((k, v)) = m.next_entry::<String, u64>()? {
                    if out.insert(k, v).is_some() {
                        return Err(serde::de::Error::custom("duplicate class name"));
                    }
                }
                Ok(CountMap(out))
            }
        }
        d.deserialize_map(Visitor)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonIntegrity {
    leaf_count: u64,
    merkle_root: String,
    leaf_hash_scheme: String,
    merkle_scheme: String,
    name_key_commitment: String,
    name_hash_scheme: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    ticketed_leaf_count: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    ticketed_repeat_count: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    name_sketch: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    name_sketch_scheme: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonSignature {
    scheme: String,
    public_key: String,
    sig: String,
}

/// Why a JSON receipt was refused.
#[derive(Debug)]
#[non_exhaustive]
pub enum JsonError {
    /// Not JSON, or not the receipt's shape (missing, extra or mistyped fields).
    Syntax(serde_json::Error),
    /// A field holds a value outside its domain (unknown enum name, bad hex or base58, wrong
    /// length, zero count, unknown scheme, invalid backend id, zero window length).
    InvalidField {
        /// The field.
        field: &'static str,
    },
    /// A name that is not one of its enum's names (a role, bucket, class or receipt type).
    UnknownName {
        /// The field.
        field: &'static str,
        /// The name given.
        name: String,
    },
    /// A v2 field in a v1 receipt, or a v2 receipt without one.
    VersionFields {
        /// The field.
        field: &'static str,
    },
    /// `receipt_version` is neither 1 nor 2.
    UnsupportedVersion(u8),
    /// `signature.public_key` differs from `operator_id`.
    PublicKeyMismatch,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax(e) => write!(f, "receipt JSON: {e}"),
            Self::InvalidField { field } => write!(f, "receipt JSON: invalid `{field}`"),
            Self::UnknownName { field, name } => {
                write!(f, "receipt JSON: unknown name {name:?} for `{field}`")
            }
            Self::VersionFields { field } => write!(
                f,
                "receipt JSON: `{field}` must be present in v2 receipts and absent in v1"
            ),
            Self::UnsupportedVersion(v) => write!(f, "receipt JSON: unsupported version {v}"),
            Self::PublicKeyMismatch => {
                f.write_str("receipt JSON: signature.public_key differs from operator_id")
            }
        }
    }
}

impl core::error::Error for JsonError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Syntax(e) => Some(e),
            _ => None,
        }
    }
}

fn counts_to_json<C: WireTag>(c: &ClassCounts<C>) -> CountMap {
    CountMap(
        c.entries()
            .iter()
            .map(|(k, n)| (k.name().to_string(), *n))
            .collect(),
    )
}

fn counts_from_json<C: WireTag>(m: &CountMap) -> Result<ClassCounts<C>, JsonError> {
    let bad = JsonError::InvalidField { field: C::FIELD };
    let mut pairs = Vec::with_capacity(m.0.len());
    for (name, n) in &m.0 {
        let class = C::from_name(name).ok_or_else(|| JsonError::UnknownName {
            field: C::FIELD,
            name: name.clone(),
        })?;
        if *n == 0 {
            return Err(bad);
        }
        pairs.push((class, *n));
    }
    ClassCounts::from_pairs(pairs).map_err(|_| bad)
}

fn hex32(s: &str, field: &'static str) -> Result<[u8; 32], JsonError> {
    let bad = JsonError::InvalidField { field };
    if s.len() != 64 || s.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(bad);
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).map_err(|_| bad)?;
    Ok(out)
}

fn base58<const N: usize>(s: &str, field: &'static str) -> Result<[u8; N], JsonError> {
    let bad = || JsonError::InvalidField { field };
    // Base58 of N bytes is at most 2 N characters; refuse longer input before decoding.
    if s.len() > N.saturating_mul(2) {
        return Err(bad());
    }
    let v = bs58::decode(s).into_vec().map_err(|_| bad())?;
    let out: [u8; N] = v.try_into().map_err(|_| bad())?;
    // One spelling per value: leading '1's must encode leading zero bytes exactly.
    if bs58::encode(out).into_string() != s {
        return Err(bad());
    }
    Ok(out)
}

fn name<T: WireTag>(s: &str, field: &'static str) -> Result<T, JsonError> {
    T::from_name(s).ok_or_else(|| JsonError::UnknownName {
        field,
        name: s.to_string(),
    })
}

impl Receipt {
    /// The JSON form.
    pub fn to_json(&self) -> String {
        let b = &self.body;
        let s = &b.service_summary;
        let key = bs58::encode(b.operator_id.as_bytes()).into_string();
        let v2 = b.v2.as_ref();
        let j = JsonReceipt {
            receipt_version: b.version(),
            deployment_id: v2.map(|v| hex::encode(v.deployment_id.as_bytes())),
            receipt_type: b.receipt_type.name().to_string(),
            operator_id: key.clone(),
            operator_role: b.operator_role.as_str().to_string(),
            backend_id: b.backend_id.as_str().to_string(),
            policy_version: b.policy_version,
            window_len_s: b.window_len.secs(),
            window_id: b.window_id.get(),
            timestamp_ms: b.timestamp_ms,
            service_summary: JsonSummary {
                request_count: s.request_count,
                success_count: s.success_count,
                error_count: s.error_count,
                bytes_served_total: s.bytes_served_total,
                served_from_cache_count: s.served_from_cache_count,
                latency_p95_bucket_ms: s.latency_p95_bucket.name().to_string(),
                response_size_p95_bucket_bytes: s.response_size_p95_bucket.name().to_string(),
                error_class_counts: counts_to_json(&s.error_class_counts),
                work_class_counts: counts_to_json(&s.work_class_counts),
            },
            integrity: JsonIntegrity {
                leaf_count: b.integrity.leaf_count,
                merkle_root: hex::encode(b.integrity.merkle_root),
                leaf_hash_scheme: if v2.is_some() {
                    LEAF_HASH_SCHEME
                } else {
                    LEAF_HASH_SCHEME_V1
                }
                .to_string(),
                merkle_scheme: MERKLE_SCHEME.to_string(),
                name_key_commitment: hex::encode(b.integrity.name_key_commitment),
                name_hash_scheme: NAME_HASH_SCHEME.to_string(),
                ticketed_leaf_count: v2.map(|v| v.ticketed_leaf_count),
                ticketed_repeat_count: v2.map(|v| v.ticketed_repeat_count),
                name_sketch: v2.map(|v| hex::encode(v.name_sketch.registers())),
                name_sketch_scheme: v2.map(|_| NAME_SKETCH_SCHEME.to_string()),
            },
            signature: JsonSignature {
                scheme: SIGNATURE_SCHEME.to_string(),
                public_key: key,
                sig: bs58::encode(self.signature).into_string(),
            },
        };
        // Serializing plain strings, integers and string-keyed maps cannot fail.
        serde_json::to_string(&j).unwrap_or_default()
    }

    /// Parse the JSON form. The result encodes to the same bytes the JSON was made from.
    ///
    /// # Errors
    ///
    /// A [`JsonError`] for anything that does not map onto a valid receipt.
    pub fn from_json(json: &str) -> Result<Self, JsonError> {
        let j: JsonReceipt = serde_json::from_str(json).map_err(JsonError::Syntax)?;
        let is_v2 = match j.receipt_version {
            RECEIPT_VERSION => true,
            RECEIPT_VERSION_V1 => false,
            v => return Err(JsonError::UnsupportedVersion(v)),
        };
        let i = &j.integrity;
        let v2 = v2_from_json(&j, is_v2)?;
        let fixed = [
            (
                i.leaf_hash_scheme.as_str(),
                if is_v2 {
                    LEAF_HASH_SCHEME
                } else {
                    LEAF_HASH_SCHEME_V1
                },
                "leaf_hash_scheme",
            ),
            (i.merkle_scheme.as_str(), MERKLE_SCHEME, "merkle_scheme"),
            (
                i.name_hash_scheme.as_str(),
                NAME_HASH_SCHEME,
                "name_hash_scheme",
            ),
            (
                j.signature.scheme.as_str(),
                SIGNATURE_SCHEME,
                "signature.scheme",
            ),
        ];
        if let Some((_, _, field)) = fixed.iter().find(|(got, want, _)| got != want) {
            return Err(JsonError::InvalidField { field });
        }
        let operator_id = base58::<32>(&j.operator_id, "operator_id")?;
        if base58::<32>(&j.signature.public_key, "signature.public_key")? != operator_id {
            return Err(JsonError::PublicKeyMismatch);
        }
        let s = &j.service_summary;
        let body = ReceiptBody {
            receipt_type: name::<ReceiptType>(&j.receipt_type, "receipt_type")?,
            operator_id: OperatorId(operator_id),
            operator_role: j
                .operator_role
                .parse::<Role>()
                .map_err(|_| JsonError::UnknownName {
                    field: "operator_role",
                    name: j.operator_role.clone(),
                })?,
            backend_id: BackendId::new(&j.backend_id).map_err(|_| JsonError::InvalidField {
                field: "backend_id",
            })?,
            policy_version: j.policy_version,
            window_len: WindowLen::new(j.window_len_s).map_err(|_| JsonError::InvalidField {
                field: "window_len_s",
            })?,
            window_id: WindowId(j.window_id),
            timestamp_ms: j.timestamp_ms,
            service_summary: ServiceSummary {
                request_count: s.request_count,
                success_count: s.success_count,
                error_count: s.error_count,
                bytes_served_total: s.bytes_served_total,
                served_from_cache_count: s.served_from_cache_count,
                latency_p95_bucket: name::<LatencyBucket>(
                    &s.latency_p95_bucket_ms,
                    "latency_p95_bucket_ms",
                )?,
                response_size_p95_bucket: name::<SizeBucket>(
                    &s.response_size_p95_bucket_bytes,
                    "response_size_p95_bucket_bytes",
                )?,
                error_class_counts: counts_from_json(&s.error_class_counts)?,
                work_class_counts: counts_from_json(&s.work_class_counts)?,
            },
            integrity: Integrity {
                leaf_count: i.leaf_count,
                merkle_root: hex32(&i.merkle_root, "merkle_root")?,
                name_key_commitment: hex32(&i.name_key_commitment, "name_key_commitment")?,
            },
            v2,
        };
        Ok(Self {
            body,
            signature: base58::<64>(&j.signature.sig, "signature.sig")?,
        })
    }
}

fn v2_from_json(j: &JsonReceipt, is_v2: bool) -> Result<Option<V2Commitments>, JsonError> {
    let i = &j.integrity;
    let present = [
        ("deployment_id", j.deployment_id.is_some()),
        ("ticketed_leaf_count", i.ticketed_leaf_count.is_some()),
        ("ticketed_repeat_count", i.ticketed_repeat_count.is_some()),
        ("name_sketch", i.name_sketch.is_some()),
        ("name_sketch_scheme", i.name_sketch_scheme.is_some()),
    ];
    if let Some((field, _)) = present.iter().find(|(_, p)| *p != is_v2) {
        return Err(JsonError::VersionFields { field });
    }
    let (Some(deployment), Some(count), Some(repeats), Some(sketch), Some(scheme)) = (
        &j.deployment_id,
        i.ticketed_leaf_count,
        i.ticketed_repeat_count,
        &i.name_sketch,
        &i.name_sketch_scheme,
    ) else {
        return Ok(None);
    };
    if scheme != NAME_SKETCH_SCHEME {
        return Err(JsonError::InvalidField {
            field: "name_sketch_scheme",
        });
    }
    let bad = || JsonError::InvalidField {
        field: "name_sketch",
    };
    if sketch.len() != SKETCH_REGISTERS.saturating_mul(2)
        || sketch.bytes().any(|b| b.is_ascii_uppercase())
    {
        return Err(bad());
    }
    let mut registers = [0u8; SKETCH_REGISTERS];
    hex::decode_to_slice(sketch, &mut registers).map_err(|_| bad())?;
    Ok(Some(V2Commitments {
        deployment_id: DeploymentId(hex32(deployment, "deployment_id")?),
        ticketed_leaf_count: count,
        ticketed_repeat_count: repeats,
        name_sketch: NameSketch::from_bytes(registers).map_err(|_| bad())?,
    }))
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;
    use tolldns_core::{BackendId, DeploymentId, WindowId, WindowLen};

    use super::*;
    use crate::batch::{BatchHeader, ClosedBatch};
    use crate::leaf::{Leaf, LeafFlags};
    use crate::tags::{LatencyBucket, RcodeClass, Transport, WorkClass};

    fn receipt(v2: bool) -> Receipt {
        let len = WindowLen::new(60).unwrap();
        let header = BatchHeader::new(
            DeploymentId::local(),
            BackendId::new("edge-ingress").unwrap(),
            len,
            WindowId(1),
        );
        let leaf = Leaf {
            timestamp_ms: 60_001,
            transport: Transport::Udp,
            qtype: 1,
            rcode_class: RcodeClass::NoError,
            work_class: WorkClass::CacheHit,
            flags: LeafFlags::default(),
            latency: LatencyBucket::Lt25,
            response_bytes: 80,
            name_hash: [7; 16],
            ticket: [1; 16],
            response_summary_hash: [2; 16],
            repeat: 0,
        };
        let key = SigningKey::from_bytes(&[3; 32]);
        let seal = if v2 {
            ClosedBatch::seal
        } else {
            ClosedBatch::seal_v1
        };
        seal(&header, alloc::vec![leaf, leaf], [4; 32], 60_500, &key)
            .unwrap()
            .receipt()
            .clone()
    }

    #[test]
    fn v2_round_trips_and_refuses_null_and_mixed_fields() {
        for v2 in [true, false] {
            let r = receipt(v2);
            let json = r.to_json();
            assert_eq!(Receipt::from_json(&json).unwrap(), r);
            assert_eq!(json.contains("deployment_id"), v2);
        }
        let json = receipt(true).to_json();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["integrity"]["ticketed_repeat_count"], 1);
        assert_eq!(v["integrity"]["ticketed_leaf_count"], 2);
        // `null` is not an absent field.
        let mut nulled = v.clone();
        nulled["deployment_id"] = serde_json::Value::Null;
        assert!(matches!(
            Receipt::from_json(&nulled.to_string()),
            Err(JsonError::Syntax(_))
        ));
        // A v2 field in a v1 receipt, and a v2 receipt without one.
        let mut mixed: serde_json::Value = serde_json::from_str(&receipt(false).to_json()).unwrap();
        mixed["deployment_id"] = v["deployment_id"].clone();
        assert!(matches!(
            Receipt::from_json(&mixed.to_string()),
            Err(JsonError::VersionFields {
                field: "deployment_id"
            })
        ));
        let mut missing = v.clone();
        missing["integrity"]
            .as_object_mut()
            .unwrap()
            .remove("ticketed_repeat_count");
        assert!(matches!(
            Receipt::from_json(&missing.to_string()),
            Err(JsonError::VersionFields {
                field: "ticketed_repeat_count"
            })
        ));
        // Unknown enum names are named.
        let mut bad = v;
        bad["operator_role"] = serde_json::Value::from("PIRATE");
        assert!(matches!(
            Receipt::from_json(&bad.to_string()),
            Err(JsonError::UnknownName { field: "operator_role", ref name }) if name == "PIRATE"
        ));
    }
}
