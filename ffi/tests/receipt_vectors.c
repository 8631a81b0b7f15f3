/*
 * receipt_vectors.c: test-vectors/receipts.json through the committed tolldns.h: the seven
 * leaves, their Merkle root and proofs, the audit sample, the signed receipt (rebuilt with the
 * batch builder, byte for byte) and the negative cases.
 */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "tolldns.h"
#include "vectors.h"

static uint8_t accept_operator(void *userdata, const uint8_t *operator_id, uint8_t role,
                               uint64_t window_id) {
    (void)userdata;
    (void)role;
    (void)window_id;
    return memcmp(operator_id, RECEIPT_OPERATOR_ID, 32) == 0 ? TOLLDNS_OPERATOR_ACTIVE
                                                            : TOLLDNS_OPERATOR_UNREGISTERED;
}

static bool accept_policy(void *userdata, uint32_t version, uint64_t window_id, uint32_t len_s) {
    (void)userdata;
    (void)window_id;
    (void)len_s;
    return version == RECEIPT_POLICY_VERSION;
}

static bool never_seen(void *userdata, const uint8_t *operator_id, const uint8_t *backend_id,
                       size_t backend_id_len, uint64_t window_id) {
    (void)userdata;
    (void)operator_id;
    (void)backend_id;
    (void)backend_id_len;
    (void)window_id;
    return false;
}

int main(void) {
    uint8_t hashes[RECEIPT_LEAVES_COUNT * TOLLDNS_HASH_LEN];
    uint8_t out32[32];
    uint8_t proof[TOLLDNS_MERKLE_PROOF_MAX_LEN];
    uint8_t receipt[1024];
    uint64_t indices[RECEIPT_LEAVES_COUNT];
    size_t n = 0, i;
    tolldns_receipt_info info;
    tolldns_batch_builder *builder = NULL;
    tolldns_batch *batch = NULL;
    tolldns_verify_callbacks cb;

    cb.userdata = NULL;
    cb.operator_status = accept_operator;
    cb.policy_is_valid = accept_policy;
    cb.ledger_contains = never_seen;

    /* Keys. */
    CHECK_RC(tolldns_operator_id(RECEIPT_SIGNING_KEY, 32, out32, sizeof out32), TOLLDNS_RESULT_OK);
    CHECK(memcmp(out32, RECEIPT_OPERATOR_ID, 32) == 0);
    CHECK_RC(tolldns_name_key_commitment(RECEIPT_NAME_KEY, 32, out32, sizeof out32),
             TOLLDNS_RESULT_OK);
    CHECK(memcmp(out32, RECEIPT_NAME_KEY_COMMITMENT, 32) == 0);

    /* Leaves: decode/encode round trip, leaf hash, name hash. */
    for (i = 0; i < RECEIPT_LEAVES_COUNT; i++) {
        const tv_receipt_leaf *c = &RECEIPT_LEAVES[i];
        tolldns_leaf leaf;
        uint8_t again[TOLLDNS_LEAF_LEN];
        uint8_t name_hash[TOLLDNS_NAME_HASH_LEN];
        CHECK_RC(tolldns_leaf_decode(c->leaf, sizeof c->leaf, &leaf), TOLLDNS_RESULT_OK);
        CHECK_RC(tolldns_leaf_encode(&leaf, again, sizeof again), TOLLDNS_RESULT_OK);
        CHECK(memcmp(again, c->leaf, sizeof again) == 0);
        CHECK_RC(tolldns_leaf_hash(c->leaf, sizeof c->leaf, hashes + i * TOLLDNS_HASH_LEN,
                                   TOLLDNS_HASH_LEN),
                 TOLLDNS_RESULT_OK);
        CHECK(memcmp(hashes + i * TOLLDNS_HASH_LEN, c->leaf_hash, TOLLDNS_HASH_LEN) == 0);
        CHECK_RC(tolldns_name_hash(RECEIPT_NAME_KEY, 32, (const uint8_t *)c->name, c->name_len,
                                   name_hash, sizeof name_hash),
                 TOLLDNS_RESULT_OK);
        CHECK(memcmp(name_hash, c->name_hash, sizeof name_hash) == 0);
        CHECK(memcmp(leaf.name_hash, c->name_hash, sizeof name_hash) == 0);
    }

    /* Root and proofs. */
    CHECK_RC(tolldns_merkle_root(hashes, sizeof hashes, out32, sizeof out32), TOLLDNS_RESULT_OK);
    CHECK(memcmp(out32, RECEIPT_MERKLE_ROOT, 32) == 0);
    for (i = 0; i < RECEIPT_PROOFS_COUNT; i++) {
        const tv_receipt_proof *c = &RECEIPT_PROOFS[i];
        CHECK_RC(tolldns_merkle_proof(hashes, sizeof hashes, c->leaf_index, proof, sizeof proof, &n),
                 TOLLDNS_RESULT_OK);
        CHECK(n == c->proof_len && memcmp(proof, c->proof, n) == 0);
        CHECK_RC(tolldns_merkle_proof_verify(c->proof, c->proof_len,
                                             hashes + c->leaf_index * TOLLDNS_HASH_LEN,
                                             TOLLDNS_HASH_LEN, RECEIPT_MERKLE_ROOT, 32),
                 TOLLDNS_RESULT_OK);
    }
    for (i = 0; i < RECEIPT_BAD_PROOFS_COUNT; i++) {
        const tv_bad_proof *c = &RECEIPT_BAD_PROOFS[i];
        CHECK_RC(tolldns_leaf_hash(c->leaf, sizeof c->leaf, out32, sizeof out32), TOLLDNS_RESULT_OK);
        CHECK_RC(tolldns_merkle_proof_verify(c->proof, c->proof_len, out32, 32, c->root, 32),
                 c->expected);
    }

    /* Audit sample. */
    CHECK_RC(tolldns_audit_sample(RECEIPT_AUDIT_SEED, 32, RECEIPT_MERKLE_ROOT, 32,
                                  RECEIPT_LEAVES_COUNT, RECEIPT_AUDIT_K, indices,
                                  RECEIPT_LEAVES_COUNT, &n),
             TOLLDNS_RESULT_OK);
    CHECK(n == RECEIPT_AUDIT_INDICES_COUNT &&
          memcmp(indices, RECEIPT_AUDIT_INDICES, n * sizeof indices[0]) == 0);

    /* The receipt: decode, verify, and rebuild it byte for byte with the batch builder. */
    CHECK_RC(tolldns_receipt_decode(RECEIPT_BYTES, RECEIPT_BYTES_LEN, &info), TOLLDNS_RESULT_OK);
    CHECK(memcmp(info.merkle_root, RECEIPT_MERKLE_ROOT, 32) == 0);
    CHECK(memcmp(info.operator_id, RECEIPT_OPERATOR_ID, 32) == 0);
    CHECK(info.leaf_count == RECEIPT_LEAVES_COUNT && info.window_id == RECEIPT_WINDOW_ID);
    CHECK_RC(tolldns_receipt_verify_signature(RECEIPT_BYTES, RECEIPT_BYTES_LEN), TOLLDNS_RESULT_OK);
    CHECK_RC(tolldns_receipt_verify(&cb, RECEIPT_BYTES, RECEIPT_BYTES_LEN, 30000), TOLLDNS_RESULT_OK);
    for (i = 0; i < RECEIPT_BAD_RECEIPTS_COUNT; i++) {
        const tv_bad_receipt *c = &RECEIPT_BAD_RECEIPTS[i];
        CHECK_RC(tolldns_receipt_verify(&cb, c->receipt, c->receipt_len, 30000), c->expected);
    }
    CHECK_RC(tolldns_batch_builder_new(TOLLDNS_ROLE_EDGE_INGRESS, (const uint8_t *)RECEIPT_BACKEND_ID,
                                       strlen(RECEIPT_BACKEND_ID), RECEIPT_POLICY_VERSION,
                                       RECEIPT_WINDOW_LEN_S, 1, 64, &builder),
             TOLLDNS_RESULT_OK);
    for (i = 0; i < RECEIPT_LEAVES_COUNT; i++) {
        CHECK_RC(tolldns_batch_builder_add_leaf(builder, RECEIPT_LEAVES[i].leaf, TOLLDNS_LEAF_LEN),
                 TOLLDNS_RESULT_OK);
    }
    CHECK_RC(tolldns_batch_builder_close(builder, RECEIPT_WINDOW_ID, RECEIPT_NAME_KEY_COMMITMENT, 32,
                                         RECEIPT_TIMESTAMP_MS, RECEIPT_SIGNING_KEY, 32, &batch),
             TOLLDNS_RESULT_OK);
    if (batch != NULL) {
        CHECK_RC(tolldns_batch_receipt(batch, receipt, sizeof receipt, &n), TOLLDNS_RESULT_OK);
        CHECK(n == RECEIPT_BYTES_LEN && memcmp(receipt, RECEIPT_BYTES, n) == 0);
        for (i = 0; i < RECEIPT_PROOFS_COUNT; i++) {
            const tv_receipt_proof *c = &RECEIPT_PROOFS[i];
            CHECK_RC(tolldns_batch_proof(batch, c->leaf_index, proof, sizeof proof, &n),
                     TOLLDNS_RESULT_OK);
            CHECK(n == c->proof_len && memcmp(proof, c->proof, n) == 0);
        }
    }
    tolldns_batch_free(batch);
    tolldns_batch_builder_free(builder);
    return check_summary("receipt_vectors");
}
