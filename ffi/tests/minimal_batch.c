/*
 * minimal_batch.c: the smallest useful program for an appliance: record leaves, close the
 * window into a signed batch receipt, and verify the receipt's signature and one inclusion
 * proof. docs/BENCHMARKS.md measures its size. Exits 0 and prints a PASS line on success.
 */
#include <stdio.h>
#include <string.h>

#include "tolldns.h"

#define WINDOW_START_MS 1760000100000ull
#define WINDOW_ID 29333335ull

int main(void) {
    static const uint8_t key[TOLLDNS_KEY_LEN] = {7};
    static const uint8_t commitment[TOLLDNS_HASH_LEN] = {9};
    uint8_t leaf_bytes[TOLLDNS_LEAF_LEN];
    uint8_t receipt[512];
    uint8_t proof[TOLLDNS_MERKLE_PROOF_MAX_LEN];
    uint8_t leaf_hash[TOLLDNS_HASH_LEN];
    tolldns_receipt_info info;
    tolldns_batch_builder *builder = NULL;
    tolldns_batch *batch = NULL;
    size_t receipt_len = 0, proof_len = 0;
    unsigned i;
    int ok = 1;

    if (tolldns_batch_builder_new(TOLLDNS_ROLE_EDGE_INGRESS, (const uint8_t *)"edge-ingress", 12, 1, 60,
                                  1, 4096, &builder) != TOLLDNS_RESULT_OK) {
        return 1;
    }
    for (i = 0; i < 1000; i++) {
        tolldns_leaf leaf;
        memset(&leaf, 0, sizeof leaf);
        leaf.timestamp_ms = WINDOW_START_MS + i;
        leaf.transport = TOLLDNS_TRANSPORT_UDP;
        leaf.qtype = 1;
        leaf.rcode_class = TOLLDNS_RCODE_NOERROR;
        leaf.work_class = TOLLDNS_WORK_CACHE_HIT;
        leaf.flags = TOLLDNS_LEAF_FLAG_CACHE_HIT;
        leaf.latency_bucket = 1;
        leaf.response_bytes = 80;
        ok &= tolldns_leaf_encode(&leaf, leaf_bytes, sizeof leaf_bytes) == TOLLDNS_RESULT_OK;
        ok &= tolldns_batch_builder_add_leaf(builder, leaf_bytes, sizeof leaf_bytes) ==
              TOLLDNS_RESULT_OK;
    }
    ok &= tolldns_batch_builder_close(builder, WINDOW_ID, commitment, sizeof commitment,
                                      WINDOW_START_MS + 60000u, key, sizeof key,
                                      &batch) == TOLLDNS_RESULT_OK;
    tolldns_batch_builder_free(builder);
    if (!ok || batch == NULL) {
        return 1;
    }
    ok &= tolldns_batch_receipt(batch, receipt, sizeof receipt, &receipt_len) == TOLLDNS_RESULT_OK;
    ok &= tolldns_receipt_verify_signature(receipt, receipt_len) == TOLLDNS_RESULT_OK;
    ok &= tolldns_receipt_decode(receipt, receipt_len, &info) == TOLLDNS_RESULT_OK;
    ok &= tolldns_batch_leaf(batch, 500, leaf_bytes, sizeof leaf_bytes) == TOLLDNS_RESULT_OK;
    ok &= tolldns_leaf_hash(leaf_bytes, sizeof leaf_bytes, leaf_hash, sizeof leaf_hash) ==
          TOLLDNS_RESULT_OK;
    ok &= tolldns_batch_proof(batch, 500, proof, sizeof proof, &proof_len) == TOLLDNS_RESULT_OK;
    ok &= tolldns_merkle_proof_verify(proof, proof_len, leaf_hash, sizeof leaf_hash, info.merkle_root,
                                      sizeof info.merkle_root) == TOLLDNS_RESULT_OK;
    ok &= info.leaf_count == 1000;
    tolldns_batch_free(batch);
    if (!ok) {
        printf("FAIL minimal_batch\n");
        return 1;
    }
    printf("PASS minimal_batch: receipt of %u bytes for %u leaves\n", (unsigned)receipt_len,
           (unsigned)info.leaf_count);
    return 0;
}
