//! Builds `test-vectors/receipts-v2.json` from fixed inputs, and interprets its negative cases.
//! Shared by the `gen_vectors` example (which writes the file) and the integration test (which
//! checks the file has not drifted and that every case still fails as the file says).
//!
//! Every negative case states its expected error by hand; [`generate`] refuses to produce a
//! file in which the interpreter ([`evaluate`]) disagrees with a stated error.

use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Map, Value, json};
use tolldns_core::hash::RECEIPT_SIGNING_TAG;
use tolldns_core::{BackendId, DeploymentId, NormalizedName, OperatorId, WindowId, WindowLen};
use tolldns_receipts::merkle::MerkleTree;
use tolldns_receipts::*;

use crate::common::*;
use crate::vectors_gen::{self, malleate, name_key, signing_key};

/// Where the v2 vectors live, relative to the crate.
pub(crate) const V2_VECTORS_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../test-vectors/receipts-v2.json"
);

pub(crate) const WINDOW_LEN_S: u32 = vectors_gen::WINDOW_LEN_S;
pub(crate) const WINDOW_ID: u64 = vectors_gen::WINDOW_ID;
pub(crate) const WINDOW_START_MS: u64 = vectors_gen::WINDOW_START_MS;
pub(crate) const WINDOW_END_MS: u64 = WINDOW_START_MS + 60_000;
pub(crate) const RECEIPT_TIMESTAMP_MS: u64 = vectors_gen::RECEIPT_TIMESTAMP_MS;
/// When the receipt reached the verifier: one second after its window closed.
pub(crate) const RECEIVED_MS: u64 = WINDOW_END_MS + 1_000;
/// The chain slot at which the verifier recorded the receipt.
pub(crate) const RECEIPT_SLOT: u64 = 1_000;
/// The audit seed: the hash of a later slot.
pub(crate) const AUDIT_SEED: AuditSeed = AuditSeed {
    slot: 1_001,
    hash: [0xa5; 32],
};
/// The sketch-witness seed (the same slot hash; the draw has its own tag).
pub(crate) const WITNESS_K: u64 = 4;

/// A watcher's probe nonce: two of the window's leaves carry it.
pub(crate) const WATCHER_TICKET: [u8; 16] = [0x77; 16];

/// The v2 batch header: the vectors' deployment, `edge-ingress`, policy 7.
pub(crate) fn header() -> BatchHeader {
    let mut h = BatchHeader::new(
        deployment_id(),
        BackendId::new("edge-ingress").unwrap(),
        WindowLen::new(WINDOW_LEN_S).unwrap(),
        WindowId(WINDOW_ID),
    );
    h.policy_version = 7;
    h
}

/// The names behind the input leaves, in input order.
pub(crate) const NAMES: [&str; 10] = [
    "example.com",
    "www.example.org",
    "example.com",
    "nonexistent.example",
    "example.com",
    "mail.example.net",
    "b\u{fc}cher.example",
    "slow.example.com",
    "www.example.org",
    "example.com",
];

/// Ten leaves in arrival order (not the strict order): leaves 0, 2 and 4 are the same answer
/// in the same millisecond (an honest client retry, kept three times with `repeat` 0, 1, 2);
/// leaf 9 is the same query with another ticket; leaves 1 and 8 share a millisecond but not a
/// transport; leaves 6 and 7 carry the watcher's probe nonce; leaf 3 has no ticket.
pub(crate) fn input_leaves() -> Vec<Leaf> {
    let key = name_key();
    // (offset ms, transport, qtype, rcode, work, flags, latency ms, size, ticket)
    type Spec = (
        u64,
        Transport,
        u16,
        RcodeClass,
        WorkClass,
        u8,
        u64,
        u32,
        [u8; 16],
    );
    let spec: [Spec; 10] = [
        (
            5_017,
            Transport::Udp,
            1,
            RcodeClass::NoError,
            WorkClass::CacheHit,
            0x01,
            2,
            61,
            [0x11; 16],
        ),
        (
            1_017,
            Transport::Doh,
            28,
            RcodeClass::NoError,
            WorkClass::CacheMiss,
            0x00,
            40,
            312,
            [0x22; 16],
        ),
        (
            5_017,
            Transport::Udp,
            1,
            RcodeClass::NoError,
            WorkClass::CacheHit,
            0x01,
            2,
            61,
            [0x11; 16],
        ),
        (
            3_017,
            Transport::Tcp,
            1,
            RcodeClass::Nxdomain,
            WorkClass::DnsRecursionLight,
            0x00,
            90,
            120,
            [0; 16],
        ),
        (
            5_017,
            Transport::Udp,
            1,
            RcodeClass::NoError,
            WorkClass::CacheHit,
            0x01,
            2,
            61,
            [0x11; 16],
        ),
        (
            2_017,
            Transport::Udp,
            15,
            RcodeClass::Servfail,
            WorkClass::DnsRecursionHeavy,
            0x00,
            1_500,
            40,
            [0x33; 16],
        ),
        (
            6_017,
            Transport::Doq,
            65,
            RcodeClass::NoError,
            WorkClass::CacheMiss,
            0x04,
            300,
            2_100,
            WATCHER_TICKET,
        ),
        (
            4_017,
            Transport::Udp,
            16,
            RcodeClass::Nodata,
            WorkClass::DnsRecursionLight,
            0x00,
            700,
            90,
            WATCHER_TICKET,
        ),
        (
            1_017,
            Transport::Udp,
            28,
            RcodeClass::NoError,
            WorkClass::CacheHit,
            0x03,
            1,
            312,
            [0x44; 16],
        ),
        (
            5_017,
            Transport::Udp,
            1,
            RcodeClass::NoError,
            WorkClass::CacheHit,
            0x01,
            2,
            61,
            [0x55; 16],
        ),
    ];
    spec.iter()
        .zip(NAMES)
        .map(
            |(
                &(
                    offset,
                    transport,
                    qtype,
                    rcode_class,
                    work_class,
                    flags,
                    latency_ms,
                    size,
                    ticket,
                ),
                name,
            )| {
                Leaf {
                    timestamp_ms: WINDOW_START_MS + offset,
                    transport,
                    qtype,
                    rcode_class,
                    work_class,
                    flags: LeafFlags::from_bits(flags).unwrap(),
                    latency: LatencyBucket::from_millis(latency_ms),
                    response_bytes: size,
                    name_hash: key.name_hash(&NormalizedName::new(name).unwrap()),
                    ticket,
                    response_summary_hash: Leaf::response_summary_hash(
                        format!("{rcode_class} qtype={qtype} size={size}").as_bytes(),
                    ),
                    repeat: 0,
                }
            },
        )
        .collect()
}

/// The v2 batch: the input leaves sealed with `ClosedBatch::seal` (strict order, repeats).
pub(crate) fn batch() -> ClosedBatch {
    ClosedBatch::seal(
        &header(),
        input_leaves(),
        name_key().commitment(),
        RECEIPT_TIMESTAMP_MS,
        &signing_key(),
    )
    .unwrap()
}

/// Every distinct ticket of the window (the token lookup knows a valid token for each).
pub(crate) fn tickets() -> Vec<[u8; 16]> {
    let mut t: Vec<[u8; 16]> = input_leaves()
        .iter()
        .filter(|l| l.is_ticketed())
        .map(|l| l.ticket)
        .collect();
    t.sort_unstable();
    t.dedup();
    t
}

/// The name of a leaf, found by its name hash.
fn name_of(leaf: &Leaf) -> &'static str {
    let key = name_key();
    NAMES
        .iter()
        .find(|n| key.name_hash(&NormalizedName::new(n).unwrap()) == leaf.name_hash)
        .unwrap()
}

/// A tree an operator built by hand (in any order, with any repeats), under a v2 body it
/// signed: what the attacks commit to. The body is consistent with the leaves (summary, counts,
/// sketch) unless `edit` changes it.
pub(crate) struct Forged {
    pub(crate) receipt: Receipt,
    pub(crate) leaves: Vec<Leaf>,
    pub(crate) tree: MerkleTree,
}

impl Forged {
    /// Sign a v2 body over `leaves` exactly as given (no sorting, no renumbering).
    pub(crate) fn new(
        header: &BatchHeader,
        leaves: Vec<Leaf>,
        key: &SigningKey,
        edit: impl FnOnce(&mut ReceiptBody),
    ) -> Self {
        let tree = MerkleTree::from_leaf_hashes(leaves.iter().map(Leaf::hash).collect());
        let summary = summarize(&leaves).unwrap();
        let (name_sketch, _) = sketch_with_witnesses(&leaves);
        let mut body = ReceiptBody {
            receipt_type: header.receipt_type,
            operator_id: OperatorId(key.verifying_key().to_bytes()),
            operator_role: header.operator_role,
            backend_id: header.backend_id,
            policy_version: header.policy_version,
            window_len: header.window_len,
            window_id: header.window_id,
            timestamp_ms: RECEIPT_TIMESTAMP_MS,
            integrity: Integrity {
                leaf_count: leaves.len() as u64,
                merkle_root: tree.root(),
                name_key_commitment: name_key().commitment(),
            },
            service_summary: summary,
            v2: Some(V2Commitments {
                deployment_id: header.deployment_id,
                ticketed_leaf_count: leaves.iter().filter(|l| l.is_ticketed()).count() as u64,
                ticketed_repeat_count: leaves
                    .iter()
                    .filter(|l| l.repeat != 0 && l.is_ticketed())
                    .count() as u64,
                name_sketch,
            }),
        };
        edit(&mut body);
        Self {
            receipt: body.sign(key).unwrap(),
            leaves,
            tree,
        }
    }

    pub(crate) fn leaf_proof(&self, i: u64) -> LeafProof {
        LeafProof {
            leaf: self.leaves[i as usize],
            proof: self.tree.proof(i).unwrap(),
        }
    }

    /// The answer an operator gives for its tree: each leaf and its right neighbour.
    pub(crate) fn answer(&self, sample: &AuditSample) -> Vec<AuditAnswer> {
        sample
            .indices()
            .iter()
            .map(|&i| AuditAnswer {
                leaf: self.leaf_proof(i),
                next: (i + 1 < self.leaves.len() as u64).then(|| self.leaf_proof(i + 1)),
            })
            .collect()
    }

    /// The sample for `seed` and `k` over this tree.
    pub(crate) fn sample(&self, seed: &[u8; 32], k: u64) -> AuditSample {
        let i = &self.receipt.body.integrity;
        AuditSample::new(seed, &i.merkle_root, i.leaf_count, k)
    }
}

/// The first seed `[c; 32]`-style (counter in the first 8 bytes) whose sample of `k` over
/// `root`/`n` satisfies `want`: deterministic, so negative cases stay short and still hit the
/// leaf they need.
pub(crate) fn seed_where(root: &Hash, n: u64, k: u64, want: impl Fn(&[u64]) -> bool) -> [u8; 32] {
    for c in 0u64.. {
        let mut seed = [0x5e; 32];
        seed[..8].copy_from_slice(&c.to_le_bytes());
        if want(AuditSample::new(&seed, root, n, k).indices()) {
            return seed;
        }
    }
    unreachable!()
}

fn h(b: impl AsRef<[u8]>) -> String {
    hex::encode(b)
}

fn lp_json(lp: &LeafProof) -> Value {
    json!({
        "leaf_hex": h(lp.leaf.to_bytes()),
        "proof_hex": h(lp.proof.to_bytes()),
    })
}

fn answers_json(answers: &[AuditAnswer]) -> Value {
    answers
        .iter()
        .map(|a| {
            json!({
                "index": a.leaf.proof.leaf_index,
                "leaf_hex": h(a.leaf.leaf.to_bytes()),
                "proof_hex": h(a.leaf.proof.to_bytes()),
                "next": a.next.as_ref().map(lp_json),
            })
        })
        .collect()
}

/// Re-sign the genuine body changed by `f`, so that only the changed rule fails.
fn resigned(f: impl FnOnce(&mut ReceiptBody)) -> Receipt {
    let mut body = batch().receipt().body.clone();
    f(&mut body);
    body.sign(&signing_key()).unwrap()
}

fn v2_mut(b: &mut ReceiptBody) -> &mut V2Commitments {
    b.v2.as_mut().unwrap()
}

/// The verifier the positive vectors pass under; negative cases override single fields
/// through their `context`.
fn default_context() -> Value {
    json!({
        "comment": "The verifier's world: deployment id and its constants, the operator registry (every operator in `operator_status`, backends registered to it), valid policy versions, the ledger of accepted time ranges (operator, [start_ms, end_ms)), the token lookup (`ticket_lookup` false: none configured; otherwise `valid_tickets` verify, `invalid_tickets` do not, any other ticket has no token), and the receipt's arrival time.",
        "deployment_id": h(deployment_id().as_bytes()),
        "window_len_s": WINDOW_LEN_S,
        "max_delay_ms": Deployment::DEFAULT_MAX_DELAY_MS,
        "skew_ms": 30_000,
        "require_tickets": false,
        "accept_v1": false,
        "max_repeat_permille": Deployment::DEFAULT_MAX_REPEAT_PERMILLE,
        "repeat_allowance": Deployment::DEFAULT_REPEAT_ALLOWANCE,
        "operator_status": "Active",
        "registered_backends": ["edge-ingress"],
        "valid_policies": [7],
        "ledger": [],
        "ticket_lookup": true,
        "valid_tickets": tickets().iter().map(h).collect::<Vec<_>>(),
        "invalid_tickets": [],
        "received_ms": RECEIVED_MS,
    })
}

/// The verifier's world built from a context object (test doubles of every trait).
pub(crate) struct Env {
    deployment: Deployment,
    skew_ms: u64,
    registry: Registry,
    policies: Policies,
    ledger: Ledger,
    tickets: TicketCheckDouble,
    lookup: bool,
    pub(crate) received_ms: u64,
}

fn hex_arr<const N: usize>(v: &Value) -> [u8; N] {
    hex::decode(v.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

fn hex_vec(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

impl Env {
    pub(crate) fn from_json(c: &Value) -> Self {
        let deployment = Deployment::new(
            DeploymentId(hex_arr(&c["deployment_id"])),
            WindowLen::new(c["window_len_s"].as_u64().unwrap() as u32).unwrap(),
        )
        .with_max_delay_ms(c["max_delay_ms"].as_u64().unwrap())
        .with_require_tickets(c["require_tickets"].as_bool().unwrap())
        .with_v1(c["accept_v1"].as_bool().unwrap())
        .with_max_repeat_permille(c["max_repeat_permille"].as_u64().unwrap() as u32)
        .with_repeat_allowance(c["repeat_allowance"].as_u64().unwrap());
        let status = match c["operator_status"].as_str().unwrap() {
            "Active" => OperatorStatus::Active,
            "NotStaked" => OperatorStatus::NotStaked,
            "Unregistered" => OperatorStatus::Unregistered,
            other => panic!("unknown operator status {other}"),
        };
        let ledger = Ledger::default();
        for r in c["ledger"].as_array().unwrap() {
            ledger.record_range(
                &OperatorId(hex_arr(&r["operator_id_hex"])),
                r["start_ms"].as_u64().unwrap(),
                r["end_ms"].as_u64().unwrap(),
            );
        }
        let mut tickets = TicketCheckDouble::default();
        for (field, status) in [
            ("valid_tickets", TicketStatus::Valid),
            ("invalid_tickets", TicketStatus::Invalid),
        ] {
            for t in c[field].as_array().unwrap() {
                tickets.known.insert(hex_arr(t), status);
            }
        }
        Self {
            deployment,
            skew_ms: c["skew_ms"].as_u64().unwrap(),
            registry: Registry {
                status,
                backends: Some(
                    c["registered_backends"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|b| b.as_str().unwrap().to_string())
                        .collect(),
                ),
            },
            policies: Policies {
                valid: c["valid_policies"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p.as_u64().unwrap() as u32)
                    .collect(),
            },
            ledger,
            tickets,
            lookup: c["ticket_lookup"].as_bool().unwrap(),
            received_ms: c["received_ms"].as_u64().unwrap(),
        }
    }

    pub(crate) fn verifier(&self) -> Verifier<'_, Registry, Policies, Ledger> {
        let v = Verifier::new(
            self.deployment,
            &self.registry,
            &self.policies,
            &self.ledger,
        )
        .with_skew_ms(self.skew_ms);
        if self.lookup {
            v.with_tickets(&self.tickets)
        } else {
            v
        }
    }
}

/// The context of a case: the file's `verifier` with the case's `context` fields replaced.
pub(crate) fn context_of(file: &Value, case: &Value) -> Value {
    let mut c: Map<String, Value> = file["verifier"].as_object().unwrap().clone();
    if let Some(o) = case.get("context").and_then(Value::as_object) {
        for (k, v) in o {
            c.insert(k.clone(), v.clone());
        }
    }
    Value::Object(c)
}

fn leaf_proof_of(v: &Value) -> LeafProof {
    LeafProof {
        leaf: Leaf::from_bytes_any(&hex_vec(&v["leaf_hex"])).unwrap(),
        proof: MerkleProof::from_bytes(&hex_vec(&v["proof_hex"])).unwrap(),
    }
}

pub(crate) fn answers_of(v: &Value) -> Vec<AuditAnswer> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|a| AuditAnswer {
            leaf: leaf_proof_of(a),
            next: (!a["next"].is_null()).then(|| leaf_proof_of(&a["next"])),
        })
        .collect()
}

/// A stable name for a JSON error: its `Debug` form, except `Syntax` (serde's message is not
/// part of the format).
pub(crate) fn json_error_name(e: &JsonError) -> String {
    match e {
        JsonError::Syntax(_) => "Syntax".to_string(),
        other => format!("{other:?}"),
    }
}

fn verify_outcome(r: Result<impl Sized, VerifyError>) -> (String, Option<String>) {
    match r {
        Ok(_) => ("ok".to_string(), None),
        Err(VerifyError::SummaryDisagrees { stat }) => (
            "summary_disagrees".to_string(),
            Some(stat.name().to_string()),
        ),
        Err(e) => (e.name().to_string(), None),
    }
}

/// Run one case of the file: the error name it produces (`VerifyError::name()`, or the `Debug`
/// form of a `DecodeError`, `JsonError` or `SampleError`), and the statistic of a
/// `summary_disagrees`.
pub(crate) fn evaluate(file: &Value, case: &Value) -> (String, Option<String>) {
    let env = Env::from_json(&context_of(file, case));
    let v = env.verifier();
    let receipt = || Receipt::from_bytes(&hex_vec(&case["receipt_hex"])).unwrap();
    let debug = |r: Result<String, String>| (r.unwrap_or_else(|e| e), None);
    match case["kind"].as_str().unwrap() {
        "receipt" => verify_outcome(v.verify(&receipt(), env.received_ms)),
        "audit" => {
            let r = receipt();
            let i = &r.body.integrity;
            let root = case.get("sample_root").map_or(i.merkle_root, hex_arr);
            let sample = AuditSample::new(
                &hex_arr(&case["seed"]),
                &root,
                i.leaf_count,
                case["k"].as_u64().unwrap(),
            );
            let answers = answers_of(&case["answers"]);
            verify_outcome(v.verify_with_audit(&r, env.received_ms, &sample, &answers))
        }
        "sketch_witness" => {
            let r = receipt();
            let sketch = r
                .body
                .v2
                .as_ref()
                .map_or_else(NameSketch::new, |x| x.name_sketch.clone());
            let sample = SketchWitnessSample::new(
                &hex_arr(&case["seed"]),
                &r.body.integrity.merkle_root,
                &sketch,
                case["k"].as_u64().unwrap(),
            );
            let witnesses: Vec<LeafProof> = case["witnesses"]
                .as_array()
                .unwrap()
                .iter()
                .map(leaf_proof_of)
                .collect();
            verify_outcome(v.check_sketch_witnesses(&r, &sample, &witnesses))
        }
        "ticket_lookup" => {
            let leaves: Vec<LeafProof> = case["leaves"]
                .as_array()
                .unwrap()
                .iter()
                .map(leaf_proof_of)
                .collect();
            verify_outcome(verify_ticket_leaves(
                &receipt(),
                &hex_arr(&case["ticket"]),
                &leaves,
                case["max_leaves"].as_u64().unwrap(),
            ))
        }
        "audit_seed" => {
            let seed = AuditSeed {
                slot: case["seed_slot"].as_u64().unwrap(),
                hash: hex_arr(&case["seed"]),
            };
            let receipt_slot = case["receipt_slot"].as_u64().unwrap();
            let sample = match case.get("delay_slots").and_then(Value::as_u64) {
                Some(delay) => {
                    AuditSample::at_fixed_slot(&seed, receipt_slot, delay, &[0; 32], 10, 3)
                }
                None => AuditSample::after(&seed, receipt_slot, &[0; 32], 10, 3),
            };
            debug(
                sample
                    .map(|_| "ok".to_string())
                    .map_err(|e| format!("{e:?}")),
            )
        }
        "leaf_decode" => debug(
            Leaf::from_bytes(&hex_vec(&case["leaf_hex"]))
                .map(|_| "ok".to_string())
                .map_err(|e| format!("{e:?}")),
        ),
        "receipt_decode" => debug(
            Receipt::from_bytes(&hex_vec(&case["receipt_hex"]))
                .map(|_| "ok".to_string())
                .map_err(|e| format!("{e:?}")),
        ),
        "receipt_json" => debug(
            Receipt::from_json(case["receipt_json"].as_str().unwrap())
                .map(|_| "ok".to_string())
                .map_err(|e| json_error_name(&e)),
        ),
        other => panic!("unknown kind {other}"),
    }
}

/// One negative case; `expected` is stated by hand and checked against the interpreter.
struct Case {
    comment: String,
    kind: &'static str,
    context: Value,
    fields: Value,
    expected: String,
    stat: Option<&'static str>,
}

fn case(
    comment: impl Into<String>,
    kind: &'static str,
    expected: impl Into<String>,
    fields: Value,
) -> Case {
    Case {
        comment: comment.into(),
        kind,
        context: json!({}),
        fields,
        expected: expected.into(),
        stat: None,
    }
}

impl Case {
    fn context(mut self, c: Value) -> Self {
        self.context = c;
        self
    }

    fn stat(mut self, s: &'static str) -> Self {
        self.stat = Some(s);
        self
    }

    fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("comment".into(), self.comment.clone().into());
        o.insert("kind".into(), self.kind.into());
        if self.context.as_object().is_some_and(|c| !c.is_empty()) {
            o.insert("context".into(), self.context.clone());
        }
        for (k, v) in self.fields.as_object().unwrap() {
            o.insert(k.clone(), v.clone());
        }
        o.insert("expected_error".into(), self.expected.clone().into());
        if let Some(s) = self.stat {
            o.insert("expected_stat".into(), s.into());
        }
        Value::Object(o)
    }
}

fn receipt_case(comment: &str, expected: &str, r: &Receipt) -> Case {
    case(
        comment,
        "receipt",
        expected,
        json!({ "receipt_hex": h(r.to_bytes()) }),
    )
}

fn audit_case(
    comment: &str,
    expected: &str,
    r: &Receipt,
    seed: &[u8; 32],
    k: u64,
    answers: &[AuditAnswer],
) -> Case {
    case(
        comment,
        "audit",
        expected,
        json!({
            "receipt_hex": h(r.to_bytes()),
            "seed": h(seed),
            "k": k,
            "answers": answers_json(answers),
        }),
    )
}

#[allow(clippy::too_many_lines)]
fn negatives() -> Vec<Case> {
    let batch = batch();
    let genuine = batch.receipt().clone();
    let key = signing_key();
    let n = genuine.body.integrity.leaf_count;
    let root = genuine.body.integrity.merkle_root;
    let leaves = batch.leaves().to_vec();
    let op_hex = h(genuine.body.operator_id.as_bytes());
    let unticketed = leaves.iter().position(|l| !l.is_ticketed()).unwrap() as u64;
    let mut out = Vec::new();

    // --- verify(): the receipt alone.
    out.push(receipt_case(
        "The v1 vector receipt (test-vectors/receipts.json) under a deployment that no longer accepts v1 (accept_v1 false, the default).",
        "v1_not_accepted",
        vectors_gen::batch().receipt(),
    ));
    out.push(
        receipt_case(
            "The operator key is not registered for the role.",
            "unregistered_operator",
            &genuine,
        )
        .context(json!({ "operator_status": "Unregistered" })),
    );
    out.push(
        receipt_case(
            "The operator is registered but not staked for the window's epoch.",
            "operator_not_staked",
            &genuine,
        )
        .context(json!({ "operator_status": "NotStaked" })),
    );
    let mut malleated = genuine.clone();
    malleated.signature = malleate(&genuine.signature);
    out.push(receipt_case(
        "Malleated signature: S replaced by S + L (L = ed25519 group order, little-endian). Strict verification refuses it.",
        "signature",
        &malleated,
    ));
    let mut v1_tag = genuine.clone();
    let mut msg = RECEIPT_SIGNING_TAG.to_vec();
    msg.extend_from_slice(&genuine.body.to_bytes());
    v1_tag.signature = key.sign(&msg).to_bytes();
    out.push(receipt_case(
        "The v2 body signed under the v1 tag (\"TOLLDNS-RECEIPT-V1\\0\" || body): a v2 signature covers \"TOLLDNS-RECEIPT-V2\\0\" || body.",
        "signature",
        &v1_tag,
    ));
    out.push(
        receipt_case(
            "Replay on another network that uses the same operator key: the genuine receipt, verified by a verifier of deployment SHA256(\"TOLLDNS-DEPLOYMENT-V1\\0\" || 32 x 0xd1 || 32 x 0xd3).",
            "wrong_deployment",
            &genuine,
        )
        .context(json!({ "deployment_id": h(other_deployment_id().as_bytes()) })),
    );
    out.push(receipt_case(
        "The body re-signed for the other deployment (32 x 0xd1, 32 x 0xd3), checked by the vectors' verifier.",
        "wrong_deployment",
        &resigned(|b| v2_mut(b).deployment_id = other_deployment_id()),
    ));
    out.push(receipt_case(
        "The same root re-signed with window_len_s = 120 and the 120-second window that contains the same time (window_id 14666667): window_len_s is a deployment constant.",
        "window_len_not_deployment",
        &resigned(|b| {
            b.window_len = WindowLen::new(120).unwrap();
            b.window_id = WindowId::containing(WINDOW_START_MS, b.window_len);
        }),
    ));
    out.push(receipt_case(
        "The same root re-signed under backend_id \"edge-ingress-2\", which is not registered to the operator.",
        "unregistered_backend",
        &resigned(|b| b.backend_id = BackendId::new("edge-ingress-2").unwrap()),
    ));
    out.push(
        receipt_case(
            "Policy version 7 is not valid for the window.",
            "invalid_policy_version",
            &genuine,
        )
        .context(json!({ "valid_policies": [6, 8] })),
    );
    out.push(receipt_case(
        "success_count raised by 1: success + error > request.",
        "success_plus_error_exceeds_requests",
        &resigned(|b| b.service_summary.success_count += 1),
    ));
    out.push(receipt_case(
        "served_from_cache_count = request_count + 1.",
        "cache_exceeds_requests",
        &resigned(|b| {
            b.service_summary.served_from_cache_count = b.service_summary.request_count + 1
        }),
    ));
    out.push(receipt_case(
        "CACHE_HIT work-class count raised by 1: work classes no longer sum to request_count.",
        "work_class_sum_mismatch",
        &resigned(|b| {
            let counts = b
                .service_summary
                .work_class_counts
                .entries()
                .iter()
                .map(|&(c, k)| (c, if c == WorkClass::CacheHit { k + 1 } else { k }));
            b.service_summary.work_class_counts = ClassCounts::from_pairs(counts).unwrap();
        }),
    ));
    out.push(receipt_case(
        "OTHER error-class count of 4 on top of the real ones: error classes sum past error_count.",
        "error_class_sum_exceeds_errors",
        &resigned(|b| {
            let mut pairs = b.service_summary.error_class_counts.entries().to_vec();
            pairs.push((ErrorClass::Other, 4));
            b.service_summary.error_class_counts = ClassCounts::from_pairs(pairs).unwrap();
        }),
    ));
    out.push(receipt_case(
        "leaf_count raised by 1 (leaf_count != request_count for a batch).",
        "leaf_count_mismatch",
        &resigned(|b| b.integrity.leaf_count += 1),
    ));
    out.push(receipt_case(
        "receipt_type PER_REQUEST over 10 leaves.",
        "per_request_not_single",
        &resigned(|b| b.receipt_type = ReceiptType::PerRequest),
    ));
    out.push(receipt_case(
        "bytes_served_total = 2^64 - 1 over 10 leaves: more than 65535 bytes per request.",
        "bytes_exceed_maximum",
        &resigned(|b| b.service_summary.bytes_served_total = u64::MAX),
    ));
    out.push(receipt_case(
        "bytes_served_total = 65535 x 10 + 1: one byte past the bound.",
        "bytes_exceed_maximum",
        &resigned(|b| b.service_summary.bytes_served_total = 65_535 * 10 + 1),
    ));
    out.push(receipt_case(
        "ticketed_leaf_count = leaf_count + 1.",
        "ticketed_exceeds_leaves",
        &resigned(|b| v2_mut(b).ticketed_leaf_count = 11),
    ));
    out.push(receipt_case(
        "Name sketch emptied while ticketed_leaf_count = 9.",
        "sketch_inconsistent",
        &resigned(|b| v2_mut(b).name_sketch = NameSketch::new()),
    ));
    out.push(receipt_case(
        "ticketed_leaf_count = 0 with a non-empty name sketch.",
        "sketch_inconsistent",
        &resigned(|b| v2_mut(b).ticketed_leaf_count = 0),
    ));
    out.push(receipt_case(
        "ticketed_repeat_count = 10, above ticketed_leaf_count (9).",
        "repeats_exceed_ticketed",
        &resigned(|b| v2_mut(b).ticketed_repeat_count = 10),
    ));
    out.push(
        receipt_case(
            "ticketed_repeat_count = 6 of 9 ticketed leaves (667 permille, above max_repeat_permille 100) under a deployment without a per-receipt allowance.",
            "too_many_repeats",
            &resigned(|b| v2_mut(b).ticketed_repeat_count = 6),
        )
        .context(json!({ "repeat_allowance": 0 })),
    );
    out.push(
        receipt_case(
            "The genuine receipt (2 ticketed repeats of 9 ticketed leaves, 222 permille) under a deployment whose allowance is 1 repeat per receipt: both bounds exceeded.",
            "too_many_repeats",
            &genuine,
        )
        .context(json!({ "repeat_allowance": 1 })),
    );
    out.push(receipt_case(
        "window_id = 2^64 - 1: the window's bounds do not fit in 64-bit milliseconds.",
        "window_out_of_range",
        &resigned(|b| b.window_id = WindowId(u64::MAX)),
    ));
    out.push(receipt_case(
        "timestamp_ms 30,001 ms after the window's end (skew 30,000 ms).",
        "timestamp_outside_window",
        &resigned(|b| b.timestamp_ms = WINDOW_END_MS + 30_001),
    ));
    out.push(
        receipt_case(
            "The genuine receipt arriving 30,001 ms before its window ended (skew 30,000 ms): it claims work not yet done.",
            "arrived_too_early",
            &genuine,
        )
        .context(json!({ "received_ms": WINDOW_END_MS - 30_001 })),
    );
    out.push(
        receipt_case(
            "The genuine receipt arriving max_delay_ms + 1 after its window ended (a window long past).",
            "arrived_too_late",
            &genuine,
        )
        .context(json!({ "received_ms": WINDOW_END_MS + Deployment::DEFAULT_MAX_DELAY_MS + 1 })),
    );
    out.push(
        receipt_case(
            "The ledger already holds a receipt of the same operator (another backend, a 120-second window) covering [start - 60000, start + 60000): any overlap on any backend is refused.",
            "overlapping_receipt",
            &genuine,
        )
        .context(json!({ "ledger": [{ "operator_id_hex": op_hex, "start_ms": WINDOW_START_MS - 60_000, "end_ms": WINDOW_START_MS + 60_000 }] })),
    );

    // --- verify_with_audit(): the genuine receipt with broken answers.
    let seed3 = seed_where(&root, n, 3, |i| i.iter().all(|&x| x + 1 < n));
    let sample3 = AuditSample::new(&seed3, &root, n, 3);
    let good3 = batch.answer(&sample3).unwrap();
    let mut other_root = root;
    other_root[0] ^= 1;
    let mut c = audit_case(
        "The answers are genuine but the sample was drawn for another root (bit 0 of byte 0 flipped), given as `sample_root`.",
        "sample_not_for_receipt",
        &genuine,
        &seed3,
        3,
        &good3,
    );
    c.fields["sample_root"] = h(other_root).into();
    out.push(c);
    out.push(audit_case(
        "Two answers for three sampled indices.",
        "proof_count_mismatch",
        &genuine,
        &seed3,
        3,
        &good3[..2],
    ));
    let mut swapped = good3.clone();
    swapped.swap(0, 1);
    out.push(audit_case(
        "The first two answers swapped (answers must follow the sample's order).",
        "proof_for_wrong_leaf",
        &genuine,
        &seed3,
        3,
        &swapped,
    ));
    let mut tampered = good3.clone();
    tampered[0].leaf.leaf.ticket[3] ^= 0x01;
    out.push(audit_case(
        "The first sampled leaf with bit 0 of ticket byte 3 flipped.",
        "invalid_proof",
        &genuine,
        &seed3,
        3,
        &tampered,
    ));
    let mut missing = good3.clone();
    missing[0].next = None;
    out.push(audit_case(
        "The first sampled leaf (not the last leaf) without its right neighbour.",
        "missing_neighbour",
        &genuine,
        &seed3,
        3,
        &missing,
    ));
    let mut wrong_next = good3.clone();
    let i0 = sample3.indices()[0];
    wrong_next[0].next = Some(batch.leaf_proof(if i0 == 0 { 2 } else { i0 - 1 }).unwrap());
    out.push(audit_case("The first sampled leaf's neighbour replaced by another leaf of the tree, with its valid proof.", "neighbour_for_wrong_leaf", &genuine, &seed3, 3, &wrong_next));
    let mut bad_next = good3;
    bad_next[0].next.as_mut().unwrap().proof.path[0][0] ^= 0x01;
    out.push(audit_case(
        "The first neighbour's proof with bit 0 of its first sibling flipped.",
        "invalid_neighbour_proof",
        &genuine,
        &seed3,
        3,
        &bad_next,
    ));

    // Tripled window: every real leaf committed three times, copies adjacent with equal repeat.
    let tripled: Vec<Leaf> = leaves.iter().flat_map(|l| [*l, *l, *l]).collect();
    let f = Forged::new(&header(), tripled, &key, |_| {});
    let fr = &f.receipt.body.integrity;
    // The seed's sample holds a first or second copy (each draw does with probability 2/3).
    let s = seed_where(&fr.merkle_root, fr.leaf_count, 3, |i| {
        i.iter().any(|x| x % 3 != 2)
    });
    let sample = f.sample(&s, 3);
    out.push(audit_case(
        "Every real leaf committed three times, the copies adjacent with the same repeat, under a consistent v2 body over the 30 leaves (re-signed): a sampled copy's right neighbour is equal to it.",
        "leaves_out_of_order",
        &f.receipt,
        &s,
        3,
        &f.answer(&sample),
    ));
    // Inconsistent repeats: the three copies of the retried answer numbered 0, 2, 4.
    let mut renumbered = leaves.clone();
    let first = renumbered.iter().position(|l| l.repeat == 1).unwrap() - 1;
    renumbered[first + 1].repeat = 2;
    renumbered[first + 2].repeat = 4;
    let f = Forged::new(&header(), renumbered, &key, |_| {});
    let fr = &f.receipt.body.integrity;
    let s = seed_where(&fr.merkle_root, fr.leaf_count, 3, |i| {
        i.contains(&(first as u64))
    });
    out.push(audit_case(
        &format!("The three copies of one answer (leaves {first}..={}) numbered repeat 0, 2, 4 instead of 0, 1, 2, under a consistent re-signed body.", first + 2),
        "repeat_mismatch",
        &f.receipt,
        &s,
        3,
        &f.answer(&f.sample(&s, 3)),
    ));
    // A leaf after the window's end (sorted last).
    let mut outside = leaves.clone();
    outside[9].timestamp_ms = WINDOW_END_MS;
    let f = Forged::new(&header(), outside, &key, |_| {});
    let fr = &f.receipt.body.integrity;
    let s = seed_where(&fr.merkle_root, fr.leaf_count, 3, |i| i.contains(&8));
    out.push(audit_case(
        "Leaf 9 at timestamp = the window's end (outside [start, end)), in a re-signed tree; reached as leaf 8's neighbour.",
        "leaf_outside_window",
        &f.receipt,
        &s,
        3,
        &f.answer(&f.sample(&s, 3)),
    ));

    // Sketch understates a sampled ticketed leaf.
    let seed_t = seed_where(&root, n, 3, |i| leaves[i[0] as usize].is_ticketed());
    let ti = AuditSample::new(&seed_t, &root, n, 3).indices()[0];
    let (j, rank) = leaves[ti as usize].sketch_cell();
    let under = resigned(|b| {
        let mut regs = v2_mut(b).name_sketch.to_bytes();
        regs[j] = rank - 1;
        v2_mut(b).name_sketch = NameSketch::from_bytes(regs).unwrap();
    });
    let s_under = AuditSample::new(&seed_t, &under.body.integrity.merkle_root, n, 3);
    out.push(audit_case(
        &format!("Sketch register {j} lowered to {} below the rank {rank} of sampled ticketed leaf {ti} (re-signed).", rank - 1),
        "sketch_understates",
        &under,
        &seed_t,
        3,
        &batch.answer(&s_under).unwrap(),
    ));
    let good_t = batch
        .answer(&AuditSample::new(&seed_t, &root, n, 3))
        .unwrap();
    out.push(
        audit_case(
            "A sampled ticketed leaf and no token lookup configured.",
            "ticket_not_checked",
            &genuine,
            &seed_t,
            3,
            &good_t,
        )
        .context(json!({ "ticket_lookup": false })),
    );
    let sampled_ticket = leaves[ti as usize].ticket;
    out.push(
        audit_case(
            &format!("No token can be obtained for the ticket {} of sampled leaf {ti}.", h(sampled_ticket)),
            "ticket_not_redeemed",
            &genuine,
            &seed_t,
            3,
            &good_t,
        )
        .context(json!({ "valid_tickets": tickets().iter().filter(|t| **t != sampled_ticket).map(h).collect::<Vec<_>>() })),
    );
    out.push(
        audit_case(
            &format!("The token behind the ticket {} of sampled leaf {ti} does not verify.", h(sampled_ticket)),
            "token_invalid",
            &genuine,
            &seed_t,
            3,
            &good_t,
        )
        .context(json!({
            "valid_tickets": tickets().iter().filter(|t| **t != sampled_ticket).map(h).collect::<Vec<_>>(),
            "invalid_tickets": [h(sampled_ticket)],
        })),
    );
    let seed_u = seed_where(&root, n, 3, |i| i.contains(&unticketed));
    let good_u = batch
        .answer(&AuditSample::new(&seed_u, &root, n, 3))
        .unwrap();
    out.push(
        audit_case(
            &format!(
                "The deployment requires toll tickets and unticketed leaf {unticketed} is sampled."
            ),
            "unticketed_leaf",
            &genuine,
            &seed_u,
            3,
            &good_u,
        )
        .context(json!({ "require_tickets": true })),
    );

    // Summary against the sample.
    let is_error = |l: &Leaf| l.rcode_class.error_class().is_some();
    let summary_case = |comment: &str,
                        stat: &'static str,
                        pick: &dyn Fn(&[u64]) -> bool,
                        k: u64,
                        edit: &dyn Fn(&mut ReceiptBody)| {
        let r = resigned(edit);
        let seed = seed_where(&root, n, k, pick);
        let answers = batch.answer(&AuditSample::new(&seed, &root, n, k)).unwrap();
        audit_case(comment, "summary_disagrees", &r, &seed, k, &answers).stat(stat)
    };
    out.push(summary_case(
        "success_count claimed = request_count (error_count 0, no error classes) while a sampled leaf is an error.",
        "success",
        &|i| i.iter().any(|&x| is_error(&leaves[x as usize])),
        3,
        &|b| {
            b.service_summary.success_count = b.service_summary.request_count;
            b.service_summary.error_count = 0;
            b.service_summary.error_class_counts = ClassCounts::new();
        },
    ));
    out.push(summary_case(
        "error_count claimed 0 (no error classes) while a sampled leaf is an error.",
        "error",
        &|i| i.iter().any(|&x| is_error(&leaves[x as usize])),
        3,
        &|b| {
            b.service_summary.error_count = 0;
            b.service_summary.error_class_counts = ClassCounts::new();
        },
    ));
    out.push(summary_case(
        "served_from_cache_count claimed = request_count while a sampled leaf is not a cache hit.",
        "cache",
        &|i| i.iter().any(|&x| !leaves[x as usize].flags.cache_hit),
        3,
        &|b| b.service_summary.served_from_cache_count = b.service_summary.request_count,
    ));
    out.push(summary_case(
        "ticketed_leaf_count claimed = leaf_count while the sampled unticketed leaf has no ticket.",
        "ticketed",
        &|i| i.contains(&unticketed),
        3,
        &|b| v2_mut(b).ticketed_leaf_count = b.integrity.leaf_count,
    ));
    out.push(summary_case(
        "ticketed_repeat_count claimed 0 while a sampled leaf has repeat > 0 (a copy presented as distinct work).",
        "repeat",
        &|i| i.iter().any(|&x| leaves[x as usize].repeat != 0),
        3,
        &|b| v2_mut(b).ticketed_repeat_count = 0,
    ));
    out.push(summary_case(
        "bytes_served_total claimed = 65535 x 10 (the most the count rule allows), all 10 leaves sampled (mean 321.8 bytes): Hoeffding's bound at k = 10 is 65535 x sqrt(ln(1/delta) / 20) with delta = 8e-8 (stats::TAIL_PROBABILITY), 59,238 bytes.",
        "mean_bytes",
        &|_| true,
        10,
        &|b| b.service_summary.bytes_served_total = 65_535 * 10,
    ));

    // --- check_sketch_witnesses().
    let v1 = vectors_gen::batch();
    out.push(case(
        "Sketch witnesses asked of a v1 receipt (format v1 has no sketch).",
        "sketch_witness",
        "not_v2",
        json!({ "receipt_hex": h(v1.receipt().to_bytes()), "seed": h(AUDIT_SEED.hash), "k": WITNESS_K, "witnesses": [] }),
    ));
    let sketch = genuine.body.v2.as_ref().unwrap().name_sketch.clone();
    let filled: Vec<usize> = (0..SKETCH_REGISTERS)
        .filter(|&j| sketch.register(j) != 0)
        .collect();
    let jj = filled[0];
    let inflated = resigned(|b| {
        let mut regs = v2_mut(b).name_sketch.to_bytes();
        regs[jj] += 3;
        v2_mut(b).name_sketch = NameSketch::from_bytes(regs).unwrap();
    });
    let k_all = filled.len() as u64;
    let ws = SketchWitnessSample::new(
        &AUDIT_SEED.hash,
        &inflated.body.integrity.merkle_root,
        &inflated.body.v2.as_ref().unwrap().name_sketch,
        k_all,
    );
    let witnesses: Vec<Value> = ws
        .registers()
        .iter()
        .map(|&j| lp_json(&batch.sketch_witness(j).unwrap()))
        .collect();
    out.push(case(
        format!("Sketch register {jj} inflated by 3 (re-signed); every filled register drawn (k = {k_all}); the operator shows its real witness leaf for each, and register {jj}'s has a lower rank."),
        "sketch_witness",
        "witness_mismatch",
        json!({ "receipt_hex": h(inflated.to_bytes()), "seed": h(AUDIT_SEED.hash), "k": k_all, "witnesses": witnesses }),
    ));
    let ws = SketchWitnessSample::new(&AUDIT_SEED.hash, &root, &sketch, 1);
    let unt = batch.leaf_proof(unticketed).unwrap();
    out.push(case(
        format!("The witness for register {} is unticketed leaf {unticketed}.", ws.registers()[0]),
        "sketch_witness",
        "witness_mismatch",
        json!({ "receipt_hex": h(genuine.to_bytes()), "seed": h(AUDIT_SEED.hash), "k": 1, "witnesses": [lp_json(&unt)] }),
    ));

    // --- verify_ticket_leaves().
    let watcher = batch.ticket_leaves(&WATCHER_TICKET);
    let other = batch
        .leaf_proof(leaves.iter().position(|l| l.ticket == [0x11; 16]).unwrap() as u64)
        .unwrap();
    let mut with_other = watcher.clone();
    with_other.push(other);
    with_other.sort_by_key(|lp| lp.proof.leaf_index);
    let lookup = |comment: &str, expected: &str, leaves: &[LeafProof], max: u64| {
        case(
            comment,
            "ticket_lookup",
            expected,
            json!({
                "receipt_hex": h(genuine.to_bytes()),
                "ticket": h(WATCHER_TICKET),
                "max_leaves": max,
                "leaves": leaves.iter().map(lp_json).collect::<Vec<_>>(),
            }),
        )
    };
    out.push(lookup(
        "The watcher's ticket lookup with a leaf of another ticket slipped in.",
        "ticket_leaf_mismatch",
        &with_other,
        10,
    ));
    let mut reversed = watcher.clone();
    reversed.reverse();
    out.push(lookup(
        "The watcher's two leaves in descending index order.",
        "leaves_out_of_order",
        &reversed,
        10,
    ));
    out.push(lookup(
        "Two leaves under a token whose quota is one query.",
        "ticket_over_quota",
        &watcher,
        1,
    ));

    // --- Audit seeds must post-date the receipt.
    out.push(case(
        "An audit seed from the slot the receipt was recorded at (not later).",
        "audit_seed",
        "SeedNotAfterReceipt",
        json!({ "seed": h(AUDIT_SEED.hash), "seed_slot": RECEIPT_SLOT, "receipt_slot": RECEIPT_SLOT }),
    ));
    out.push(case(
        "A fixed-delay deployment (seed from exactly receipt_slot + delay_slots = 1032): a verifier offering the hash of slot 1001 instead (it could try many slots and keep one that suits it).",
        "audit_seed",
        "SeedSlotNotFixed",
        json!({ "seed": h(AUDIT_SEED.hash), "seed_slot": AUDIT_SEED.slot, "receipt_slot": RECEIPT_SLOT, "delay_slots": 32 }),
    ));

    // --- Decoding.
    let mut big = leaves[0];
    big.response_bytes = 65_536;
    out.push(case(
        "A v2 leaf with response_bytes = 65536 (no DNS message is larger than 65535).",
        "leaf_decode",
        "ResponseTooLarge { response_bytes: 65536 }",
        json!({ "leaf_hex": h(big.to_bytes()) }),
    ));
    let mut v1_version = leaves[0].to_bytes();
    v1_version[0] = 1;
    out.push(case(
        "71 bytes with leaf version byte 1.",
        "leaf_decode",
        "UnsupportedVersion { field: \"leaf_version\", version: 1 }",
        json!({ "leaf_hex": h(v1_version) }),
    ));
    out.push(case(
        "A 69-byte v1 leaf given to the v2 decoder.",
        "leaf_decode",
        "WrongLength { expected: 71, actual: 69 }",
        json!({ "leaf_hex": h(leaves[0].to_bytes_v1()) }),
    ));
    let gbytes = genuine.to_bytes();
    let sketch_at = gbytes.len() - 64 - SKETCH_REGISTERS;
    let mut reg66 = gbytes.clone();
    reg66[sketch_at + jj] = 66;
    out.push(case(
        format!("Name sketch register {jj} = 66 (the largest rank is 65)."),
        "receipt_decode",
        format!("SketchRegisterOutOfRange {{ register: {jj}, value: 66 }}"),
        json!({ "receipt_hex": h(&reg66) }),
    ));
    let mut v3 = gbytes.clone();
    v3[0] = 3;
    out.push(case(
        "receipt_version 3.",
        "receipt_decode",
        "UnsupportedVersion { field: \"receipt_version\", version: 3 }",
        json!({ "receipt_hex": h(&v3) }),
    ));
    out.push(case(
        "The genuine receipt cut inside its name sketch (the last 65 bytes removed).",
        "receipt_decode",
        "UnexpectedEnd { field: \"name_sketch\" }",
        json!({ "receipt_hex": h(&gbytes[..gbytes.len() - 65]) }),
    ));

    // --- JSON.
    let gj: Value = serde_json::from_str(&genuine.to_json()).unwrap();
    let edit_json = |f: &dyn Fn(&mut Value)| {
        let mut v = gj.clone();
        f(&mut v);
        v.to_string()
    };
    let json_case = |comment: &str, expected: &str, text: String| {
        case(
            comment,
            "receipt_json",
            expected,
            json!({ "receipt_json": text }),
        )
    };
    out.push(json_case(
        "A v2 JSON receipt without deployment_id.",
        "VersionFields { field: \"deployment_id\" }",
        edit_json(&|v| {
            v.as_object_mut().unwrap().remove("deployment_id");
        }),
    ));
    let v1j: Value = serde_json::from_str(&v1.receipt().to_json()).unwrap();
    let mut v1_with_sketch = v1j;
    v1_with_sketch["integrity"]["name_sketch"] = gj["integrity"]["name_sketch"].clone();
    out.push(json_case(
        "The v1 vector receipt's JSON with a v2 name_sketch added.",
        "VersionFields { field: \"name_sketch\" }",
        v1_with_sketch.to_string(),
    ));
    out.push(json_case(
        "name_sketch_scheme \"HLL-512/ticketed-name-hash\".",
        "InvalidField { field: \"name_sketch_scheme\" }",
        edit_json(&|v| {
            v["integrity"]["name_sketch_scheme"] = "HLL-512/ticketed-name-hash".into();
        }),
    ));
    let regs = gj["integrity"]["name_sketch"].as_str().unwrap().to_string();
    let mut reg42 = regs.clone();
    reg42.replace_range(2 * jj..2 * jj + 2, "42");
    out.push(json_case(
        &format!("name_sketch register {jj} = 0x42 (66, above the largest rank)."),
        "InvalidField { field: \"name_sketch\" }",
        edit_json(&|v| {
            v["integrity"]["name_sketch"] = reg42.clone().into();
        }),
    ));
    let mut upper = regs.clone();
    upper.replace_range(2 * jj..2 * jj + 2, "0A");
    out.push(json_case(
        &format!("name_sketch with register {jj} = 10 written \"0A\" (hex is lower-case)."),
        "InvalidField { field: \"name_sketch\" }",
        edit_json(&|v| {
            v["integrity"]["name_sketch"] = upper.clone().into();
        }),
    ));
    out.push(json_case(
        "name_sketch of 255 registers.",
        "InvalidField { field: \"name_sketch\" }",
        edit_json(&|v| {
            v["integrity"]["name_sketch"] = regs[..510].to_string().into();
        }),
    ));
    out.push(json_case(
        "A v2 receipt naming the v1 leaf hash scheme.",
        "InvalidField { field: \"leaf_hash_scheme\" }",
        edit_json(&|v| {
            v["integrity"]["leaf_hash_scheme"] = "TOLLDNS-LEAF-V1/SHA256-RFC6962".into();
        }),
    ));
    let dep = gj["deployment_id"].as_str().unwrap().to_string();
    out.push(json_case(
        "deployment_id of 63 hex digits.",
        "InvalidField { field: \"deployment_id\" }",
        edit_json(&|v| {
            v["deployment_id"] = dep[..63].to_string().into();
        }),
    ));
    out.push(json_case(
        "receipt_version 3.",
        "UnsupportedVersion(3)",
        edit_json(&|v| v["receipt_version"] = 3.into()),
    ));
    out.push(json_case(
        "A v2 JSON receipt without ticketed_repeat_count.",
        "VersionFields { field: \"ticketed_repeat_count\" }",
        edit_json(&|v| {
            v["integrity"]
                .as_object_mut()
                .unwrap()
                .remove("ticketed_repeat_count");
        }),
    ));
    out.push(json_case(
        "deployment_id: null (null is not an absent field; one receipt has one JSON form).",
        "Syntax",
        edit_json(&|v| v["deployment_id"] = Value::Null),
    ));
    out.push(json_case(
        "ticketed_leaf_count as a string.",
        "Syntax",
        edit_json(&|v| v["integrity"]["ticketed_leaf_count"] = "9".into()),
    ));

    out
}

/// The whole file.
#[allow(clippy::too_many_lines)]
pub(crate) fn generate() -> Value {
    let batch = batch();
    let receipt = batch.receipt();
    let key = signing_key();
    let nk = name_key();
    let v2 = receipt.body.v2.as_ref().unwrap();
    let leaves: Vec<Value> = batch
        .leaves()
        .iter()
        .map(|l| {
            let name = name_of(l);
            let (register, rank) = l.sketch_cell();
            json!({
                "name": name,
                "canonical_name": NormalizedName::new(name).unwrap().as_str(),
                "timestamp_ms": l.timestamp_ms,
                "transport": l.transport.to_string(),
                "qtype": l.qtype,
                "rcode_class": l.rcode_class.to_string(),
                "work_class": l.work_class.to_string(),
                "flags": l.flags.bits(),
                "latency_bucket": l.latency.to_string(),
                "response_bytes": l.response_bytes,
                "size_bucket": l.size_bucket().to_string(),
                "name_hash": h(l.name_hash),
                "ticket": h(l.ticket),
                "response_summary_hash": h(l.response_summary_hash),
                "repeat": l.repeat,
                "leaf_hex": h(l.to_bytes()),
                "leaf_hash": h(l.hash()),
                "sketch_register": register,
                "sketch_rank": rank,
            })
        })
        .collect();
    let root = receipt.body.integrity.merkle_root;
    let n = receipt.body.integrity.leaf_count;
    let k = sample_size(0.99, 0.10, n).unwrap();
    let sample = AuditSample::after(&AUDIT_SEED, RECEIPT_SLOT, &root, n, k).unwrap();
    let answers = batch.answer(&sample).unwrap();

    let ws = SketchWitnessSample::new(&AUDIT_SEED.hash, &root, &v2.name_sketch, WITNESS_K);
    let witnesses: Vec<Value> = ws
        .registers()
        .iter()
        .map(|&j| {
            let w = batch.sketch_witness(j).unwrap();
            json!({
                "register": j,
                "value": v2.name_sketch.register(j),
                "leaf_index": w.proof.leaf_index,
                "leaf_hex": h(w.leaf.to_bytes()),
                "proof_hex": h(w.proof.to_bytes()),
            })
        })
        .collect();
    let register_witnesses: Vec<Value> = batch
        .sketch_witnesses()
        .iter()
        .enumerate()
        .filter(|(_, w)| **w != u64::MAX)
        .map(
            |(j, w)| json!({ "register": j, "value": v2.name_sketch.register(j), "leaf_index": w }),
        )
        .collect();
    let watcher = batch.ticket_leaves(&WATCHER_TICKET);

    let mut file = json!({
        "comment": "TollDNS receipt format v2 test vectors. Generated by `cargo run -p tolldns-receipts --example gen_vectors` from fixed inputs: signing-key seed = bytes 0x00..=0x1f, name key = 32 x 0x5a, deployment_id = SHA256(\"TOLLDNS-DEPLOYMENT-V1\\0\" || program id 32 x 0xd1 || genesis hash 32 x 0xd2), window_len_s = 60, window_id = 29333335, policy version 7, ten leaves given in arrival order (`input_leaves_hex`, repeat 0) and sealed with ClosedBatch::seal at timestamp_ms 1760000160000, which puts them in strict order (timestamp, then the first 69 bytes, then repeat) and numbers identical answers with repeat 0, 1, 2 (ticketed_repeat_count counts the ticketed leaves with repeat > 0). `leaves` are in Merkle order. The receipt reached the verifier at `verifier.received_ms`, recorded at slot 1000; the audit seed is the hash of slot 1001 (32 x 0xa5). Negative cases run under `verifier` with the case's `context` fields replaced; `expected_error` is VerifyError::name() (plus `expected_stat` for summary_disagrees), or the Debug form of DecodeError, JsonError (`Syntax` for any serde error) or SampleError. The test `vectors_v2` fails when this file and the code disagree. Byte layouts: docs/RECEIPTS.md.",
        "signing_key_seed": h(key.to_bytes()),
        "operator_id": bs58::encode(key.verifying_key().as_bytes()).into_string(),
        "operator_id_hex": h(key.verifying_key().as_bytes()),
        "deployment": {
            "program_id": h([0xd1; 32]),
            "genesis_hash": h([0xd2; 32]),
            "deployment_id": h(deployment_id().as_bytes()),
        },
        "name_key": h(nk.to_bytes()),
        "name_key_commitment": h(nk.commitment()),
        "window_len_s": WINDOW_LEN_S,
        "window_id": WINDOW_ID,
        "input_leaves_hex": input_leaves().iter().map(|l| h(l.to_bytes())).collect::<Vec<_>>(),
        "leaves": leaves,
        "merkle_root": h(root),
        "ticketed_leaf_count": v2.ticketed_leaf_count,
        "ticketed_repeat_count": v2.ticketed_repeat_count,
        "name_sketch": h(v2.name_sketch.registers()),
        "name_sketch_estimate": v2.name_sketch.estimate(),
        "sketch_register_witnesses": register_witnesses,
        "body_borsh_hex": h(receipt.body.to_bytes()),
        "signing_message_hex": h(receipt.body.signing_message()),
        "signature_hex": h(receipt.signature),
        "receipt_borsh_hex": h(receipt.to_bytes()),
        "receipt_json": receipt.to_json(),
        "verifier": default_context(),
        "audit": {
            "comment": "k = sample_size(0.99, 0.10, 10) = 10 distinct indices drawn from the seed (the hash of slot 1001, after the receipt's slot 1000) and the root; each answer carries the sampled leaf and its right neighbour (none for the last leaf), with proofs. verify_with_audit accepts them.",
            "receipt_slot": RECEIPT_SLOT,
            "seed_slot": AUDIT_SEED.slot,
            "seed": h(AUDIT_SEED.hash),
            "k": k,
            "first_draws": (0..4).map(|c| audit_draw(&AUDIT_SEED.hash, &root, c).to_string()).collect::<Vec<_>>(),
            "indices": sample.indices(),
            "answers": answers_json(&answers),
        },
        "sketch_witness": {
            "comment": "k = 4 registers drawn among the non-zero registers of name_sketch (in register order) with SHA256(\"TOLLDNS-SKETCH-V1\" || seed || root || u64_le(i)); for each, a ticketed leaf whose cell is exactly (register, value), with its proof. check_sketch_witnesses accepts them.",
            "seed": h(AUDIT_SEED.hash),
            "k": WITNESS_K,
            "registers": ws.registers(),
            "witnesses": witnesses,
        },
        "ticket_lookup": {
            "comment": "Every leaf bound to the watcher's probe nonce, with proofs, in Merkle order; verify_ticket_leaves with max_leaves 2 returns 2.",
            "ticket": h(WATCHER_TICKET),
            "max_leaves": 2,
            "leaves": watcher.iter().map(lp_json).collect::<Vec<_>>(),
        },
    });
    let cases: Vec<Value> = negatives().iter().map(Case::to_json).collect();
    for c in &cases {
        let (got, stat) = evaluate(&file, c);
        assert_eq!(
            (got.as_str(), stat.as_deref()),
            (
                c["expected_error"].as_str().unwrap(),
                c["expected_stat"].as_str()
            ),
            "{}",
            c["comment"]
        );
    }
    file["negative"] = cases.into();
    file
}

/// The file's exact text.
pub(crate) fn render() -> String {
    let mut s = serde_json::to_string_pretty(&generate()).unwrap();
    s.push('\n');
    s
}
