/*
 * receipts.c: leaves, the batch builder, signed batch receipts, Merkle roots and proofs, audit
 * sampling and receipt verification through the committed tolldns.h.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tolldns.h"
#include "vectors.h"

#define WINDOW_START_MS 1760000100000ull /* window 29333335 of 60 s */
#define WINDOW_ID 29333335ull
#define LEAVES 100

static const uint8_t SIGNING_KEY[TOLLDNS_KEY_LEN] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};

/* SHA256(""), the root of the empty tree. */
static const uint8_t EMPTY_ROOT[TOLLDNS_HASH_LEN] = {
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55};

/* Registries for tolldns_receipt_verify: userdata points to one of these. */
typedef struct {
    uint8_t status;
    uint32_t policy;
    bool seen;
    unsigned calls;
} registry;

static uint8_t operator_status(void *userdata, const uint8_t *operator_id, uint8_t role,
                               uint64_t window_id) {
    registry *r = (registry *)userdata;
    (void)operator_id;
    r->calls++;
    return (role == TOLLDNS_ROLE_EDGE_INGRESS && window_id == WINDOW_ID) ? r->status
                                                                          : TOLLDNS_OPERATOR_UNREGISTERED;
}

static bool policy_is_valid(void *userdata, uint32_t version, uint64_t window_id,
                            uint32_t window_len_s) {
    registry *r = (registry *)userdata;
    (void)window_id;
    r->calls++;
    return version == r->policy && window_len_s == 60;
}

static bool ledger_contains(void *userdata, const uint8_t *operator_id, const uint8_t *backend_id,
                            size_t backend_id_len, uint64_t window_id) {
    registry *r = (registry *)userdata;
    (void)operator_id;
    (void)window_id;
    r->calls++;
    return r->seen && backend_id_len == 12 && memcmp(backend_id, "edge-ingress", 12) == 0;
}

static tolldns_leaf make_leaf(uint64_t i) {
    tolldns_leaf leaf;
    static const char summary[] = "NOERROR A 1";
    memset(&leaf, 0, sizeof leaf);
    leaf.timestamp_ms = WINDOW_START_MS + i * 100u;
    leaf.transport = (i % 2 == 0) ? TOLLDNS_TRANSPORT_DOH : TOLLDNS_TRANSPORT_UDP;
    leaf.qtype = 1;
    leaf.rcode_class = TOLLDNS_RCODE_NOERROR;
    leaf.work_class = (i % 3 == 0) ? TOLLDNS_WORK_CACHE_HIT : TOLLDNS_WORK_CACHE_MISS;
    leaf.flags = (i % 3 == 0) ? TOLLDNS_LEAF_FLAG_CACHE_HIT : 0;
    leaf.latency_bucket = 1;
    leaf.response_bytes = (uint32_t)(100 + i);
    leaf.ticket[0] = (uint8_t)i;
    CHECK_RC(tolldns_name_hash(NAME_KEY, sizeof NAME_KEY, (const uint8_t *)NAME_VALID[i % NAME_VALID_COUNT].input,
                               NAME_VALID[i % NAME_VALID_COUNT].input_len, leaf.name_hash,
                               sizeof leaf.name_hash),
             TOLLDNS_RESULT_OK);
    CHECK_RC(tolldns_response_summary_hash((const uint8_t *)summary, sizeof summary - 1,
                                           leaf.response_summary_hash,
                                           sizeof leaf.response_summary_hash),
             TOLLDNS_RESULT_OK);
    return leaf;
}

/* Field by field: the structure has padding, whose bytes are unspecified. */
static int leaf_eq(const tolldns_leaf *a, const tolldns_leaf *b) {
    return a->timestamp_ms == b->timestamp_ms && a->transport == b->transport &&
           a->qtype == b->qtype && a->rcode_class == b->rcode_class &&
           a->work_class == b->work_class && a->flags == b->flags &&
           a->latency_bucket == b->latency_bucket && a->response_bytes == b->response_bytes &&
           memcmp(a->name_hash, b->name_hash, sizeof a->name_hash) == 0 &&
           memcmp(a->ticket, b->ticket, sizeof a->ticket) == 0 &&
           memcmp(a->response_summary_hash, b->response_summary_hash,
                  sizeof a->response_summary_hash) == 0;
}

static void test_leaves(void) {
    tolldns_leaf leaf = make_leaf(3);
    tolldns_leaf back;
    uint8_t bytes[TOLLDNS_LEAF_LEN];
    uint8_t hash[TOLLDNS_HASH_LEN];

    CHECK_RC(tolldns_leaf_encode(&leaf, bytes, sizeof bytes), TOLLDNS_RESULT_OK);
    CHECK(bytes[0] == 1); /* leaf version */
    CHECK_RC(tolldns_leaf_decode(bytes, sizeof bytes, &back), TOLLDNS_RESULT_OK);
    CHECK(leaf_eq(&back, &leaf));
    CHECK_RC(tolldns_leaf_hash(bytes, sizeof bytes, hash, sizeof hash), TOLLDNS_RESULT_OK);
    CHECK_RC(tolldns_leaf_decode(bytes, sizeof bytes - 1, &back), TOLLDNS_RESULT_RECEIPT_WRONG_LENGTH);
    bytes[0] = 9;
    CHECK_RC(tolldns_leaf_decode(bytes, sizeof bytes, &back),
             TOLLDNS_RESULT_RECEIPT_UNSUPPORTED_VERSION);
    leaf.flags = 0x80;
    CHECK_RC(tolldns_leaf_encode(&leaf, bytes, sizeof bytes), TOLLDNS_RESULT_RECEIPT_RESERVED_FLAGS);
    leaf.flags = 0;
    leaf.transport = 0;
    CHECK_RC(tolldns_leaf_encode(&leaf, bytes, sizeof bytes), TOLLDNS_RESULT_RECEIPT_UNKNOWN_TAG);
    CHECK_RC(tolldns_leaf_encode(NULL, bytes, sizeof bytes), TOLLDNS_RESULT_NULL_PARAMETER);
    CHECK_RC(tolldns_leaf_encode(&back, bytes, sizeof bytes - 1), TOLLDNS_RESULT_INSUFFICIENT_SIZE);
}

static void test_batch(void) {
    tolldns_batch_builder *builder = NULL;
    tolldns_batch *batch = NULL;
    tolldns_receipt_info info;
    tolldns_dropped_leaves dropped;
    tolldns_verify_callbacks callbacks;
    registry reg;
    uint8_t commitment[TOLLDNS_HASH_LEN];
    uint8_t operator_id[TOLLDNS_KEY_LEN];
    uint8_t receipt[1024];
    uint8_t leaf_bytes[TOLLDNS_LEAF_LEN];
    uint8_t hashes[LEAVES * TOLLDNS_HASH_LEN];
    uint8_t root[TOLLDNS_HASH_LEN];
    uint8_t proof[TOLLDNS_MERKLE_PROOF_MAX_LEN];
    uint8_t proof2[TOLLDNS_MERKLE_PROOF_MAX_LEN];
    uint8_t seed[TOLLDNS_KEY_LEN];
    uint64_t sample[LEAVES];
    uint64_t k = 0;
    size_t receipt_len = 0, needed = 0, proof_len = 0, proof2_len = 0, n = 0;
    uint64_t i;

    CHECK_RC(tolldns_batch_builder_new(TOLLDNS_ROLE_EDGE_INGRESS, (const uint8_t *)"edge-ingress", 12, 1,
                                       60, 2, 1000, &builder),
             TOLLDNS_RESULT_OK);
    CHECK(builder != NULL);
    if (builder == NULL) {
        return;
    }
    for (i = 0; i < LEAVES; i++) {
        tolldns_leaf leaf = make_leaf(i);
        CHECK_RC(tolldns_leaf_encode(&leaf, leaf_bytes, sizeof leaf_bytes), TOLLDNS_RESULT_OK);
        CHECK_RC(tolldns_batch_builder_add_leaf(builder, leaf_bytes, sizeof leaf_bytes),
                 TOLLDNS_RESULT_OK);
    }
    CHECK_RC(tolldns_batch_builder_add_leaf(builder, leaf_bytes, 3), TOLLDNS_RESULT_RECEIPT_WRONG_LENGTH);

    CHECK_RC(tolldns_name_key_commitment(NAME_KEY, sizeof NAME_KEY, commitment, sizeof commitment),
             TOLLDNS_RESULT_OK);
    CHECK_RC(tolldns_batch_builder_close(builder, WINDOW_ID, commitment, sizeof commitment,
                                         WINDOW_START_MS + 60000u, SIGNING_KEY, sizeof SIGNING_KEY,
                                         &batch),
             TOLLDNS_RESULT_OK);
    CHECK(batch != NULL);
    /* The window is closed: a late leaf is refused and counted. */
    CHECK_RC(tolldns_batch_builder_add_leaf(builder, leaf_bytes, sizeof leaf_bytes),
             TOLLDNS_RESULT_BATCH_LATE);
    CHECK_RC(tolldns_batch_builder_dropped(builder, &dropped), TOLLDNS_RESULT_OK);
    CHECK(dropped.late == 1 && dropped.invalid == 1 && dropped.full == 0);
    tolldns_batch_builder_free(builder);
    if (batch == NULL) {
        return;
    }

    /* The receipt bytes: too small a buffer writes nothing. */
    CHECK_RC(tolldns_batch_receipt_len(batch, &needed), TOLLDNS_RESULT_OK);
    CHECK_RC(tolldns_batch_receipt(batch, receipt, 10, &receipt_len), TOLLDNS_RESULT_INSUFFICIENT_SIZE);
    CHECK(receipt_len == 0);
    CHECK_RC(tolldns_batch_receipt(batch, receipt, sizeof receipt, &receipt_len), TOLLDNS_RESULT_OK);
    CHECK(receipt_len == needed && receipt_len > TOLLDNS_SIGNATURE_LEN);

    CHECK_RC(tolldns_receipt_decode(receipt, receipt_len, &info), TOLLDNS_RESULT_OK);
    CHECK_RC(tolldns_operator_id(SIGNING_KEY, sizeof SIGNING_KEY, operator_id, sizeof operator_id),
             TOLLDNS_RESULT_OK);
    CHECK(info.receipt_type == 1 && info.operator_role == TOLLDNS_ROLE_EDGE_INGRESS);
    CHECK(memcmp(info.operator_id, operator_id, sizeof operator_id) == 0);
    CHECK(info.backend_id_len == 12 && memcmp(info.backend_id, "edge-ingress", 12) == 0);
    CHECK(info.window_id == WINDOW_ID && info.window_len_s == 60 && info.policy_version == 1);
    CHECK(info.request_count == LEAVES && info.leaf_count == LEAVES);
    CHECK(info.served_from_cache_count == 34);
    CHECK(memcmp(info.name_key_commitment, commitment, sizeof commitment) == 0);
    CHECK_RC(tolldns_receipt_decode(receipt, receipt_len - 1, &info),
             TOLLDNS_RESULT_RECEIPT_UNEXPECTED_END);

    /* Signature and the full rule set. */
    CHECK_RC(tolldns_receipt_verify_signature(receipt, receipt_len), TOLLDNS_RESULT_OK);
    memset(&reg, 0, sizeof reg);
    reg.status = TOLLDNS_OPERATOR_ACTIVE;
    reg.policy = 1;
    callbacks.userdata = &reg;
    callbacks.operator_status = operator_status;
    callbacks.policy_is_valid = policy_is_valid;
    callbacks.ledger_contains = ledger_contains;
    CHECK_RC(tolldns_receipt_verify(&callbacks, receipt, receipt_len, 30000), TOLLDNS_RESULT_OK);
    CHECK(reg.calls == 3);
    reg.seen = true;
    CHECK_RC(tolldns_receipt_verify(&callbacks, receipt, receipt_len, 30000),
             TOLLDNS_RESULT_VERIFY_DUPLICATE_RECEIPT);
    reg.seen = false;
    reg.status = TOLLDNS_OPERATOR_NOT_STAKED;
    CHECK_RC(tolldns_receipt_verify(&callbacks, receipt, receipt_len, 30000),
             TOLLDNS_RESULT_VERIFY_OPERATOR_NOT_STAKED);
    reg.status = TOLLDNS_OPERATOR_ACTIVE;
    reg.policy = 2;
    CHECK_RC(tolldns_receipt_verify(&callbacks, receipt, receipt_len, 30000),
             TOLLDNS_RESULT_VERIFY_INVALID_POLICY_VERSION);
    reg.policy = 1;
    callbacks.ledger_contains = NULL;
    CHECK_RC(tolldns_receipt_verify(&callbacks, receipt, receipt_len, 30000),
             TOLLDNS_RESULT_NULL_PARAMETER);
    callbacks.ledger_contains = ledger_contains;
    receipt[receipt_len - 1] ^= 0x01; /* the last signature byte */
    CHECK_RC(tolldns_receipt_verify_signature(receipt, receipt_len),
             TOLLDNS_RESULT_VERIFY_SIGNATURE_INVALID);
    CHECK_RC(tolldns_receipt_verify(&callbacks, receipt, receipt_len, 30000),
             TOLLDNS_RESULT_VERIFY_SIGNATURE_INVALID);
    receipt[receipt_len - 1] ^= 0x01;

    /* The Merkle root over the batch's leaves, recomputed from the leaves it serves. */
    for (i = 0; i < LEAVES; i++) {
        CHECK_RC(tolldns_batch_leaf(batch, i, leaf_bytes, sizeof leaf_bytes), TOLLDNS_RESULT_OK);
        CHECK_RC(tolldns_leaf_hash(leaf_bytes, sizeof leaf_bytes, hashes + i * TOLLDNS_HASH_LEN,
                                   TOLLDNS_HASH_LEN),
                 TOLLDNS_RESULT_OK);
    }
    CHECK_RC(tolldns_batch_leaf(batch, LEAVES, leaf_bytes, sizeof leaf_bytes),
             TOLLDNS_RESULT_PROOF_INDEX_OUT_OF_RANGE);
    CHECK_RC(tolldns_merkle_root(hashes, sizeof hashes, root, sizeof root), TOLLDNS_RESULT_OK);
    CHECK(memcmp(root, info.merkle_root, sizeof root) == 0);
    CHECK_RC(tolldns_merkle_root(hashes, sizeof hashes - 1, root, sizeof root),
             TOLLDNS_RESULT_INVALID_PARAMETER);
    CHECK_RC(tolldns_merkle_root(NULL, 0, root, sizeof root), TOLLDNS_RESULT_OK);
    CHECK(memcmp(root, EMPTY_ROOT, sizeof root) == 0);

    /* The audit: 44 leaves for 99 % confidence at 10 % fakes, each proof verified. */
    CHECK_RC(tolldns_audit_sample_size(0.99, 0.10, LEAVES, &k), TOLLDNS_RESULT_OK);
    CHECK(k == 44);
    CHECK_RC(tolldns_audit_sample_size(1.0, 0.10, LEAVES, &k), TOLLDNS_RESULT_AUDIT_CONFIDENCE);
    CHECK_RC(tolldns_audit_sample_size(0.99, 0.0, LEAVES, &k), TOLLDNS_RESULT_AUDIT_FAKE_FRACTION);
    memset(seed, 42, sizeof seed);
    CHECK_RC(tolldns_audit_sample(seed, sizeof seed, info.merkle_root, sizeof info.merkle_root, LEAVES,
                                  44, sample, 43, &n),
             TOLLDNS_RESULT_INSUFFICIENT_SIZE);
    CHECK_RC(tolldns_audit_sample(seed, sizeof seed, info.merkle_root, sizeof info.merkle_root, LEAVES,
                                  44, sample, LEAVES, &n),
             TOLLDNS_RESULT_OK);
    CHECK(n == 44);
    for (i = 0; i < n; i++) {
        size_t j;
        CHECK(sample[i] < LEAVES);
        for (j = 0; j < i; j++) {
            CHECK(sample[j] != sample[i]);
        }
        CHECK_RC(tolldns_batch_proof(batch, sample[i], proof, sizeof proof, &proof_len),
                 TOLLDNS_RESULT_OK);
        CHECK_RC(tolldns_merkle_proof(hashes, sizeof hashes, sample[i], proof2, sizeof proof2,
                                      &proof2_len),
                 TOLLDNS_RESULT_OK);
        CHECK(proof_len == proof2_len && memcmp(proof, proof2, proof_len) == 0);
        CHECK_RC(tolldns_merkle_proof_verify(proof, proof_len, hashes + sample[i] * TOLLDNS_HASH_LEN,
                                             TOLLDNS_HASH_LEN, info.merkle_root,
                                             sizeof info.merkle_root),
                 TOLLDNS_RESULT_OK);
        CHECK_RC(tolldns_merkle_proof_verify(proof, proof_len, hashes + ((sample[i] + 1) % LEAVES) * TOLLDNS_HASH_LEN,
                                             TOLLDNS_HASH_LEN, info.merkle_root,
                                             sizeof info.merkle_root),
                 TOLLDNS_RESULT_PROOF_ROOT_MISMATCH);
    }
    CHECK_RC(tolldns_merkle_proof_verify(proof, proof_len - 1, hashes, TOLLDNS_HASH_LEN, root,
                                         sizeof root),
             TOLLDNS_RESULT_RECEIPT_UNEXPECTED_END);
    CHECK_RC(tolldns_batch_proof(batch, LEAVES, proof, sizeof proof, &proof_len),
             TOLLDNS_RESULT_PROOF_INDEX_OUT_OF_RANGE);

    tolldns_batch_free(batch);
}

static void test_argument_checks(void) {
    tolldns_batch_builder *builder = NULL;
    tolldns_batch *batch = NULL;
    uint8_t zero[TOLLDNS_HASH_LEN] = {0};
    size_t n = 0;

    CHECK_RC(tolldns_batch_builder_new(0, (const uint8_t *)"edge", 4, 1, 60, 1, 10, &builder),
             TOLLDNS_RESULT_INVALID_PARAMETER);
    CHECK_RC(tolldns_batch_builder_new(TOLLDNS_ROLE_CACHE, (const uint8_t *)"", 0, 1, 60, 1, 10,
                                       &builder),
             TOLLDNS_RESULT_RECEIPT_INVALID_BACKEND_ID);
    CHECK_RC(tolldns_batch_builder_new(TOLLDNS_ROLE_CACHE, (const uint8_t *)"edge", 4, 1, 0, 1, 10,
                                       &builder),
             TOLLDNS_RESULT_RECEIPT_ZERO_WINDOW_LEN);
    CHECK_RC(tolldns_batch_builder_new(TOLLDNS_ROLE_CACHE, (const uint8_t *)"edge", 4, 1, 60, 1, 10,
                                       NULL),
             TOLLDNS_RESULT_NULL_PARAMETER);
    CHECK(builder == NULL);
    CHECK_RC(tolldns_batch_builder_add_leaf(NULL, zero, 0), TOLLDNS_RESULT_NULL_PARAMETER);
    CHECK_RC(tolldns_batch_builder_close(NULL, 0, zero, 32, 0, SIGNING_KEY, 32, &batch),
             TOLLDNS_RESULT_NULL_PARAMETER);
    CHECK_RC(tolldns_batch_receipt(NULL, zero, sizeof zero, &n), TOLLDNS_RESULT_NULL_PARAMETER);
    CHECK_RC(tolldns_receipt_decode(NULL, 10, NULL), TOLLDNS_RESULT_NULL_PARAMETER);
    CHECK_RC(tolldns_receipt_verify(NULL, zero, sizeof zero, 0), TOLLDNS_RESULT_NULL_PARAMETER);
    CHECK_RC(tolldns_merkle_proof_verify(zero, 0, zero, 31, zero, 32), TOLLDNS_RESULT_INVALID_PARAMETER);

    /* A builder closed with a wrong-sized key: error, and the handle still frees cleanly. */
    CHECK_RC(tolldns_batch_builder_new(TOLLDNS_ROLE_CACHE, (const uint8_t *)"edge", 4, 1, 60, 0, 10,
                                       &builder),
             TOLLDNS_RESULT_OK);
    CHECK_RC(tolldns_batch_builder_close(builder, 1, zero, 32, 0, SIGNING_KEY, 31, &batch),
             TOLLDNS_RESULT_INVALID_PARAMETER);
    CHECK(batch == NULL);
    /* An empty window closes into a receipt with no leaves. */
    CHECK_RC(tolldns_batch_builder_close(builder, 1, zero, 32, 90000, SIGNING_KEY, 32, &batch),
             TOLLDNS_RESULT_OK);
    tolldns_batch_free(batch);
    tolldns_batch_builder_free(builder);
    tolldns_batch_builder_free(NULL);
    tolldns_batch_free(NULL);
}

int main(void) {
    test_leaves();
    test_batch();
    test_argument_checks();
    return check_summary("receipts");
}
