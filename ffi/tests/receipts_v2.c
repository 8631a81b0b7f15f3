/*
 * receipts_v2.c: receipt format v2 through the committed tolldns.h: v2 leaves, the v2 batch
 * builder, receipt verification with a deployment and an arrival time, audits whose answers
 * carry each sampled leaf's right neighbour, the rule codes and their names, v1 material
 * through the v2 functions, and the cases of test-vectors/ffi-receipts-v2.json.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tolldns.h"
#include "vectors.h"

#define WINDOW_START_MS 1760000100000ull /* window 29333335 of 60 s */
#define WINDOW_END_MS 1760000160000ull
#define WINDOW_ID 29333335ull
#define LEAVES 100
#define ON_TIME_MS (WINDOW_END_MS + 1000u)

static const uint8_t SIGNING_KEY[TOLLDNS_KEY_LEN] = {
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2};

/* ---------------------------------------------------------------- registries and lookups */

/* What the callbacks answer; userdata points to one of these. */
typedef struct {
    uint8_t status;
    bool backend_ok;
    uint32_t policy;
    bool seen;    /* v1 ledger: a receipt for (operator, backend, window) exists */
    bool overlap; /* v2 ledger: an accepted receipt overlaps */
    uint64_t asked_start_ms, asked_end_ms;
    unsigned calls;
} registry;

static uint8_t operator_status(void *userdata, const uint8_t *operator_id, uint8_t role,
                               uint64_t window_id) {
    registry *r = (registry *)userdata;
    (void)operator_id;
    (void)window_id;
    r->calls++;
    return role == TOLLDNS_ROLE_EDGE_INGRESS ? r->status : TOLLDNS_OPERATOR_UNREGISTERED;
}

static bool backend_registered(void *userdata, const uint8_t *operator_id,
                               const uint8_t *backend_id, size_t backend_id_len) {
    registry *r = (registry *)userdata;
    (void)operator_id;
    r->calls++;
    return r->backend_ok && backend_id_len == 12 && memcmp(backend_id, "edge-ingress", 12) == 0;
}

static bool policy_is_valid(void *userdata, uint32_t version, uint64_t window_id,
                            uint32_t window_len_s) {
    registry *r = (registry *)userdata;
    (void)window_id;
    (void)window_len_s;
    r->calls++;
    return version == r->policy;
}

static bool ledger_contains(void *userdata, const uint8_t *operator_id, const uint8_t *backend_id,
                            size_t backend_id_len, uint64_t window_id) {
    registry *r = (registry *)userdata;
    (void)operator_id;
    (void)backend_id;
    (void)backend_id_len;
    (void)window_id;
    r->calls++;
    return r->seen;
}

static bool ledger_overlaps(void *userdata, const uint8_t *operator_id, uint64_t start_ms,
                            uint64_t end_ms) {
    registry *r = (registry *)userdata;
    (void)operator_id;
    r->calls++;
    r->asked_start_ms = start_ms;
    r->asked_end_ms = end_ms;
    return r->overlap;
}

static void init_registry(registry *r, tolldns_verify_callbacks_v2 *cb) {
    memset(r, 0, sizeof *r);
    r->status = TOLLDNS_OPERATOR_ACTIVE;
    r->backend_ok = true;
    r->policy = 1;
    cb->userdata = r;
    cb->operator_status = operator_status;
    cb->backend_registered = backend_registered;
    cb->policy_is_valid = policy_is_valid;
    cb->ledger_contains = ledger_contains;
    cb->ledger_overlaps = ledger_overlaps;
}

/* The ticket lookup: userdata points to one of these. */
typedef struct {
    uint8_t answer;
    unsigned calls;
} tickets;

static uint8_t ticket_status(void *userdata, const uint8_t *ticket) {
    tickets *t = (tickets *)userdata;
    static const uint8_t zero[TOLLDNS_TICKET_ID_LEN] = {0};
    t->calls++;
    /* The library only looks up ticketed leaves. */
    return memcmp(ticket, zero, sizeof zero) == 0 ? TOLLDNS_TICKET_STATUS_INVALID : t->answer;
}

/* A deployment with windows of 60 s and the reference values of everything else. */
static tolldns_deployment deployment_of(const uint8_t id[TOLLDNS_DEPLOYMENT_ID_LEN]) {
    tolldns_deployment d;
    memset(&d, 0, sizeof d);
    CHECK_RC(tolldns_deployment_new(id, TOLLDNS_DEPLOYMENT_ID_LEN, 60, &d), TOLLDNS_RESULT_OK);
    return d;
}

/* ---------------------------------------------------------------- audit answers */

typedef struct {
    uint8_t leaf[TOLLDNS_LEAF_V2_LEN];
    size_t leaf_len;
    uint8_t proof[TOLLDNS_MERKLE_PROOF_MAX_LEN];
    size_t proof_len;
    uint8_t next_leaf[TOLLDNS_LEAF_V2_LEN];
    size_t next_leaf_len;
    uint8_t next_proof[TOLLDNS_MERKLE_PROOF_MAX_LEN];
    size_t next_proof_len;
} answer_bytes;

static answer_bytes STORE[LEAVES];

/* The operator's side: the leaf, its proof and its right neighbour for a sampled index. */
static void serve(const tolldns_batch *batch, uint64_t leaf_count, uint64_t index,
                  answer_bytes *a) {
    memset(a, 0, sizeof *a);
    a->leaf_len = TOLLDNS_LEAF_V2_LEN;
    CHECK_RC(tolldns_batch_leaf(batch, index, a->leaf, sizeof a->leaf), TOLLDNS_RESULT_OK);
    CHECK_RC(tolldns_batch_proof(batch, index, a->proof, sizeof a->proof, &a->proof_len),
             TOLLDNS_RESULT_OK);
    if (index + 1 < leaf_count) {
        a->next_leaf_len = TOLLDNS_LEAF_V2_LEN;
        CHECK_RC(tolldns_batch_leaf(batch, index + 1, a->next_leaf, sizeof a->next_leaf),
                 TOLLDNS_RESULT_OK);
        CHECK_RC(tolldns_batch_proof(batch, index + 1, a->next_proof, sizeof a->next_proof,
                                     &a->next_proof_len),
                 TOLLDNS_RESULT_OK);
    }
}

/* The C view of stored answers. */
static void view(const answer_bytes *store, size_t n, tolldns_audit_answer *out) {
    size_t i;
    for (i = 0; i < n; i++) {
        const answer_bytes *a = &store[i];
        out[i].leaf = a->leaf;
        out[i].leaf_len = a->leaf_len;
        out[i].proof = a->proof;
        out[i].proof_len = a->proof_len;
        out[i].next_leaf = a->next_leaf_len ? a->next_leaf : NULL;
        out[i].next_leaf_len = a->next_leaf_len;
        out[i].next_proof = a->next_leaf_len ? a->next_proof : NULL;
        out[i].next_proof_len = a->next_proof_len;
    }
}

static int is_ticketed(const uint8_t *leaf) {
    tolldns_leaf_v2 l;
    size_t i;
    if (tolldns_leaf_v2_decode(leaf, TOLLDNS_LEAF_V2_LEN, &l) != TOLLDNS_RESULT_OK) {
        return -1;
    }
    for (i = 0; i < sizeof l.ticket; i++) {
        if (l.ticket[i] != 0) {
            return 1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- tests */

static void test_codes(void) {
    /* The v2 rule codes are 900 + the library's stable VerifyError code. */
    CHECK(TOLLDNS_RESULT_RULE_UNREGISTERED_OPERATOR == 901);
    CHECK(TOLLDNS_RESULT_RULE_SIGNATURE == 903);
    CHECK(TOLLDNS_RESULT_RULE_WRONG_DEPLOYMENT == 904);
    CHECK(TOLLDNS_RESULT_RULE_BYTES_EXCEED_MAXIMUM == 914);
    CHECK(TOLLDNS_RESULT_RULE_ARRIVED_TOO_LATE == 919);
    CHECK(TOLLDNS_RESULT_RULE_OVERLAPPING_RECEIPT == 921);
    CHECK(TOLLDNS_RESULT_RULE_MISSING_NEIGHBOUR == 927);
    CHECK(TOLLDNS_RESULT_RULE_LEAVES_OUT_OF_ORDER == 930);
    CHECK(TOLLDNS_RESULT_RULE_REPEAT_MISMATCH == 931);
    CHECK(TOLLDNS_RESULT_RULE_TICKET_OVER_QUOTA == 941);
    CHECK(TOLLDNS_RESULT_RULE_V1_NOT_ACCEPTED == 942);
    CHECK(TOLLDNS_RESULT_RULE_TOO_MANY_REPEATS == 944);
    CHECK(TOLLDNS_RESULT_RULE_INVALID == 999);
    /* The first API's codes are unchanged. */
    CHECK(TOLLDNS_RESULT_VERIFY_UNREGISTERED_OPERATOR == 500);
    CHECK(TOLLDNS_RESULT_VERIFY_SIGNATURE_INVALID == 503);
    CHECK(TOLLDNS_RESULT_VERIFY_DUPLICATE_RECEIPT == 513);
    CHECK(TOLLDNS_RESULT_VERIFY_LEAF_OUTSIDE_WINDOW == 518);

    CHECK(strcmp(tolldns_verify_error_name(904), "wrong_deployment") == 0);
    CHECK(strcmp(tolldns_verify_error_name(TOLLDNS_RESULT_RULE_ARRIVED_TOO_LATE),
                 "arrived_too_late") == 0);
    CHECK(strcmp(tolldns_verify_error_name(TOLLDNS_RESULT_RULE_LEAVES_OUT_OF_ORDER),
                 "leaves_out_of_order") == 0);
    CHECK(strcmp(tolldns_verify_error_name(TOLLDNS_RESULT_RULE_TICKET_OVER_QUOTA),
                 "ticket_over_quota") == 0);
    /* Codes of the first API name the same rules. */
    CHECK(strcmp(tolldns_verify_error_name(TOLLDNS_RESULT_VERIFY_UNREGISTERED_OPERATOR),
                 "unregistered_operator") == 0);
    CHECK(strcmp(tolldns_verify_error_name(TOLLDNS_RESULT_VERIFY_SIGNATURE_INVALID_KEY),
                 "signature") == 0);
    CHECK(strcmp(tolldns_verify_error_name(TOLLDNS_RESULT_VERIFY_SIGNATURE_INVALID),
                 "signature") == 0);
    CHECK(strcmp(tolldns_verify_error_name(TOLLDNS_RESULT_VERIFY_DUPLICATE_RECEIPT),
                 "duplicate_receipt") == 0);
    /* Anything else has no rule name. */
    CHECK(tolldns_verify_error_name(TOLLDNS_RESULT_OK) == NULL);
    CHECK(tolldns_verify_error_name(TOLLDNS_RESULT_BATCH_FULL) == NULL);
    CHECK(tolldns_verify_error_name(TOLLDNS_RESULT_VERIFY_INVALID) == NULL);
    CHECK(tolldns_verify_error_name(TOLLDNS_RESULT_RULE_INVALID) == NULL);
    CHECK(strcmp(tolldns_verify_error_name(TOLLDNS_RESULT_RULE_TOO_MANY_REPEATS),
                 "too_many_repeats") == 0);
    CHECK(strcmp(tolldns_verify_error_name(TOLLDNS_RESULT_RULE_ARRIVED_TOO_EARLY),
                 "arrived_too_early") == 0);
    CHECK(tolldns_verify_error_name(TOLLDNS_RESULT_RULE_ARRIVED_TOO_EARLY + 1) == NULL);
    CHECK(strcmp(check_message(TOLLDNS_RESULT_RULE_ARRIVED_TOO_LATE),
                 "receipt arrived after the deployment's delay bound") == 0);
}

static tolldns_leaf_v2 make_leaf(uint64_t i) {
    tolldns_leaf_v2 leaf;
    static const char summary[] = "NOERROR A 1";
    memset(&leaf, 0, sizeof leaf);
    leaf.timestamp_ms = WINDOW_START_MS + i * 100u;
    leaf.transport = (i % 2 == 0) ? TOLLDNS_TRANSPORT_DOH : TOLLDNS_TRANSPORT_UDP;
    leaf.qtype = 1;
    leaf.rcode_class = (i % 10 == 7) ? TOLLDNS_RCODE_NXDOMAIN : TOLLDNS_RCODE_NOERROR;
    leaf.work_class = (i % 3 == 0) ? TOLLDNS_WORK_CACHE_HIT : TOLLDNS_WORK_CACHE_MISS;
    leaf.flags = (i % 3 == 0) ? TOLLDNS_LEAF_FLAG_CACHE_HIT : 0;
    leaf.latency_bucket = 1;
    leaf.response_bytes = (uint32_t)(100 + i);
    if (i % 2 == 1) {
        leaf.ticket[0] = (uint8_t)i;
        leaf.ticket[15] = 0x7f;
    }
    CHECK_RC(tolldns_name_hash(NAME_KEY, sizeof NAME_KEY,
                               (const uint8_t *)NAME_VALID[i % NAME_VALID_COUNT].input,
                               NAME_VALID[i % NAME_VALID_COUNT].input_len, leaf.name_hash,
                               sizeof leaf.name_hash),
             TOLLDNS_RESULT_OK);
    CHECK_RC(tolldns_response_summary_hash((const uint8_t *)summary, sizeof summary - 1,
                                           leaf.response_summary_hash,
                                           sizeof leaf.response_summary_hash),
             TOLLDNS_RESULT_OK);
    return leaf;
}

static int leaf_v2_eq(const tolldns_leaf_v2 *a, const tolldns_leaf_v2 *b) {
    return a->timestamp_ms == b->timestamp_ms && a->transport == b->transport &&
           a->qtype == b->qtype && a->rcode_class == b->rcode_class &&
           a->work_class == b->work_class && a->flags == b->flags &&
           a->latency_bucket == b->latency_bucket && a->response_bytes == b->response_bytes &&
           memcmp(a->name_hash, b->name_hash, sizeof a->name_hash) == 0 &&
           memcmp(a->ticket, b->ticket, sizeof a->ticket) == 0 &&
           memcmp(a->response_summary_hash, b->response_summary_hash,
                  sizeof a->response_summary_hash) == 0 &&
           a->repeat == b->repeat;
}

/* The v1 structure with the same fields (repeat aside). */
static tolldns_leaf v1_of(const tolldns_leaf_v2 *l) {
    tolldns_leaf v;
    memset(&v, 0, sizeof v);
    v.timestamp_ms = l->timestamp_ms;
    v.transport = l->transport;
    v.qtype = l->qtype;
    v.rcode_class = l->rcode_class;
    v.work_class = l->work_class;
    v.flags = l->flags;
    v.latency_bucket = l->latency_bucket;
    v.response_bytes = l->response_bytes;
    memcpy(v.name_hash, l->name_hash, sizeof v.name_hash);
    memcpy(v.ticket, l->ticket, sizeof v.ticket);
    memcpy(v.response_summary_hash, l->response_summary_hash, sizeof v.response_summary_hash);
    return v;
}

static void test_leaves(void) {
    tolldns_leaf_v2 leaf = make_leaf(5), back;
    tolldns_leaf v1 = v1_of(&leaf), v1_back;
    uint8_t bytes[TOLLDNS_LEAF_V2_LEN], v1_bytes[TOLLDNS_LEAF_LEN];
    uint8_t hash[TOLLDNS_HASH_LEN], v1_hash[TOLLDNS_HASH_LEN];

    leaf.repeat = 0x0102;
    CHECK_RC(tolldns_leaf_v2_encode(&leaf, bytes, sizeof bytes), TOLLDNS_RESULT_OK);
    CHECK(bytes[0] == 2);                                     /* leaf version */
    CHECK(bytes[69] == 0x02 && bytes[70] == 0x01);            /* repeat, little-endian */
    CHECK_RC(tolldns_leaf_v2_decode(bytes, sizeof bytes, &back), TOLLDNS_RESULT_OK);
    CHECK(leaf_v2_eq(&back, &leaf));
    CHECK_RC(tolldns_leaf_v2_encode(&leaf, bytes, sizeof bytes - 1),
             TOLLDNS_RESULT_INSUFFICIENT_SIZE);

    /* The v1 encoding is the first 69 bytes with version 1; both hash, differently. */
    CHECK_RC(tolldns_leaf_encode(&v1, v1_bytes, sizeof v1_bytes), TOLLDNS_RESULT_OK);
    CHECK(v1_bytes[0] == 1 && memcmp(v1_bytes + 1, bytes + 1, TOLLDNS_LEAF_LEN - 1) == 0);
    CHECK_RC(tolldns_leaf_hash(bytes, sizeof bytes, hash, sizeof hash), TOLLDNS_RESULT_OK);
    CHECK_RC(tolldns_leaf_hash(v1_bytes, sizeof v1_bytes, v1_hash, sizeof v1_hash),
             TOLLDNS_RESULT_OK);
    CHECK(memcmp(hash, v1_hash, sizeof hash) != 0);

    /* A v1 leaf decodes into the v2 structure with repeat 0; the v1 decoder keeps v1 only. */
    CHECK_RC(tolldns_leaf_v2_decode(v1_bytes, sizeof v1_bytes, &back), TOLLDNS_RESULT_OK);
    leaf.repeat = 0;
    CHECK(leaf_v2_eq(&back, &leaf));
    CHECK_RC(tolldns_leaf_decode(bytes, sizeof bytes, &v1_back),
             TOLLDNS_RESULT_RECEIPT_WRONG_LENGTH);
    CHECK_RC(tolldns_leaf_v2_decode(bytes, 70, &back), TOLLDNS_RESULT_RECEIPT_WRONG_LENGTH);
    bytes[0] = 1;
    CHECK_RC(tolldns_leaf_v2_decode(bytes, sizeof bytes, &back),
             TOLLDNS_RESULT_RECEIPT_UNSUPPORTED_VERSION);

    /* No DNS message is larger than 65535 bytes: v2 refuses more, v1 still encodes it. */
    leaf.response_bytes = TOLLDNS_MAX_RESPONSE_BYTES + 1;
    CHECK_RC(tolldns_leaf_v2_encode(&leaf, bytes, sizeof bytes),
             TOLLDNS_RESULT_RECEIPT_RESPONSE_TOO_LARGE);
    v1.response_bytes = TOLLDNS_MAX_RESPONSE_BYTES + 1;
    CHECK_RC(tolldns_leaf_encode(&v1, v1_bytes, sizeof v1_bytes), TOLLDNS_RESULT_OK);
    leaf.response_bytes = 100;
    leaf.flags = 0x80;
    CHECK_RC(tolldns_leaf_v2_encode(&leaf, bytes, sizeof bytes),
             TOLLDNS_RESULT_RECEIPT_RESERVED_FLAGS);
    CHECK_RC(tolldns_leaf_v2_encode(NULL, bytes, sizeof bytes), TOLLDNS_RESULT_NULL_PARAMETER);
    CHECK_RC(tolldns_leaf_v2_decode(bytes, sizeof bytes, NULL), TOLLDNS_RESULT_NULL_PARAMETER);
}

static void test_deployment(void) {
    uint8_t id[TOLLDNS_DEPLOYMENT_ID_LEN];
    tolldns_deployment d;
    CHECK_RC(tolldns_deployment_id(RV2_PROGRAM_ID, 32, RV2_GENESIS_HASH, 32, id, sizeof id),
             TOLLDNS_RESULT_OK);
    CHECK(memcmp(id, RV2_DEPLOYMENT_ID, sizeof id) == 0);
    CHECK_RC(tolldns_deployment_id(RV2_PROGRAM_ID, 32, RV2_GENESIS_HASH, 31, id, sizeof id),
             TOLLDNS_RESULT_INVALID_PARAMETER);
    CHECK_RC(tolldns_deployment_id(RV2_PROGRAM_ID, 32, RV2_GENESIS_HASH, 32, id, 31),
             TOLLDNS_RESULT_INSUFFICIENT_SIZE);
    /* The reference values. */
    memset(&d, 0xff, sizeof d);
    CHECK_RC(tolldns_deployment_new(id, sizeof id, 60, &d), TOLLDNS_RESULT_OK);
    CHECK(memcmp(d.id, RV2_DEPLOYMENT_ID, sizeof d.id) == 0);
    CHECK(d.window_len_s == 60 && d.max_delay_ms == TOLLDNS_DEFAULT_MAX_DELAY_MS &&
          d.max_repeat_permille == TOLLDNS_DEFAULT_MAX_REPEAT_PERMILLE && !d.require_tickets &&
          !d.accept_v1);
    CHECK_RC(tolldns_deployment_new(id, sizeof id, 0, &d), TOLLDNS_RESULT_RECEIPT_ZERO_WINDOW_LEN);
    CHECK_RC(tolldns_deployment_new(id, 31, 60, &d), TOLLDNS_RESULT_INVALID_PARAMETER);
    CHECK_RC(tolldns_deployment_new(id, sizeof id, 60, NULL), TOLLDNS_RESULT_NULL_PARAMETER);
}

/* A v2 batch of LEAVES leaves built in C, verified and audited with every negative case the
 * caller's callbacks and answers can produce. */
static void test_batch(void) {
    tolldns_batch_builder *builder = NULL;
    tolldns_batch *batch = NULL;
    tolldns_receipt_info_v2 info;
    tolldns_receipt_info info_v1;
    tolldns_dropped_leaves dropped;
    tolldns_verify_callbacks_v2 cb;
    tolldns_verify_callbacks cb_v1;
    tolldns_deployment dep = deployment_of(RV2_DEPLOYMENT_ID);
    tolldns_audit_seed seed;
    tolldns_audit_report report;
    tolldns_audit_answer answers[LEAVES];
    tickets lookup;
    registry reg;
    uint8_t commitment[TOLLDNS_HASH_LEN];
    uint8_t receipt[1024];
    uint8_t leaf_bytes[TOLLDNS_LEAF_V2_LEN];
    uint8_t v1_bytes[TOLLDNS_LEAF_LEN];
    uint64_t sample[LEAVES];
    uint64_t k = 0, i, ticketed = 0, repeats = 0, neighbours = 0;
    size_t receipt_len = 0, n = 0, first = LEAVES;
    tolldns_leaf_v2 big;

    CHECK_RC(tolldns_batch_builder_new_v2(RV2_DEPLOYMENT_ID, 32, TOLLDNS_ROLE_EDGE_INGRESS,
                                          (const uint8_t *)"edge-ingress", 12, 1, 60, 2, 1000,
                                          &builder),
             TOLLDNS_RESULT_OK);
    if (builder == NULL) {
        return;
    }
    /* Leaf 41 (ticketed) is answered twice in the same millisecond: the second copy gets
     * repeat 1. Even leaves go in as v1 bytes, odd ones as v2 bytes: the builder takes both. */
    for (i = 0; i <= LEAVES - 1; i++) {
        tolldns_leaf_v2 leaf = make_leaf(i == LEAVES - 1 ? 41 : i);
        if (i % 2 == 0) {
            tolldns_leaf v1 = v1_of(&leaf);
            CHECK_RC(tolldns_leaf_encode(&v1, v1_bytes, sizeof v1_bytes), TOLLDNS_RESULT_OK);
            CHECK_RC(tolldns_batch_builder_add_leaf(builder, v1_bytes, sizeof v1_bytes),
                     TOLLDNS_RESULT_OK);
        } else {
            leaf.repeat = 7; /* ignored: the builder numbers repeats itself */
            CHECK_RC(tolldns_leaf_v2_encode(&leaf, leaf_bytes, sizeof leaf_bytes),
                     TOLLDNS_RESULT_OK);
            CHECK_RC(tolldns_batch_builder_add_leaf(builder, leaf_bytes, sizeof leaf_bytes),
                     TOLLDNS_RESULT_OK);
        }
    }
    /* A v1 leaf over 65535 bytes is refused at once and counted, not at close. */
    big = make_leaf(3);
    big.response_bytes = 70000;
    {
        tolldns_leaf v1 = v1_of(&big);
        CHECK_RC(tolldns_leaf_encode(&v1, v1_bytes, sizeof v1_bytes), TOLLDNS_RESULT_OK);
    }
    CHECK_RC(tolldns_batch_builder_add_leaf(builder, v1_bytes, sizeof v1_bytes),
             TOLLDNS_RESULT_RECEIPT_RESPONSE_TOO_LARGE);
    v1_bytes[6] = 0x80; /* reserved flag bit */
    CHECK_RC(tolldns_batch_builder_add_leaf(builder, v1_bytes, sizeof v1_bytes),
             TOLLDNS_RESULT_RECEIPT_RESERVED_FLAGS);
    CHECK_RC(tolldns_batch_builder_dropped(builder, &dropped), TOLLDNS_RESULT_OK);
    CHECK(dropped.invalid == 2 && dropped.full == 0 && dropped.late == 0);

    CHECK_RC(tolldns_name_key_commitment(NAME_KEY, sizeof NAME_KEY, commitment, sizeof commitment),
             TOLLDNS_RESULT_OK);
    CHECK_RC(tolldns_batch_builder_close(builder, WINDOW_ID, commitment, sizeof commitment,
                                         WINDOW_END_MS, SIGNING_KEY, sizeof SIGNING_KEY, &batch),
             TOLLDNS_RESULT_OK);
    tolldns_batch_builder_free(builder);
    if (batch == NULL) {
        return;
    }
    CHECK_RC(tolldns_batch_receipt(batch, receipt, sizeof receipt, &receipt_len),
             TOLLDNS_RESULT_OK);

    /* The v2 view of the receipt, and the v1 view of its common fields. */
    CHECK_RC(tolldns_receipt_decode_v2(receipt, receipt_len, &info), TOLLDNS_RESULT_OK);
    CHECK(info.version == TOLLDNS_RECEIPT_VERSION_V2);
    CHECK(memcmp(info.deployment_id, RV2_DEPLOYMENT_ID, 32) == 0);
    CHECK(info.info.leaf_count == LEAVES && info.info.request_count == LEAVES);
    CHECK(info.ticketed_leaf_count == 50); /* the odd leaves (the last is a copy of leaf 41) */
    CHECK(info.ticketed_repeat_count == 1);
    CHECK(info.distinct_names >= 1 && info.distinct_names <= info.ticketed_leaf_count);
    CHECK(info.info.window_id == WINDOW_ID && info.info.window_len_s == 60);
    CHECK_RC(tolldns_receipt_decode(receipt, receipt_len, &info_v1), TOLLDNS_RESULT_OK);
    CHECK(memcmp(info_v1.merkle_root, info.info.merkle_root, 32) == 0);
    CHECK_RC(tolldns_receipt_verify_signature(receipt, receipt_len), TOLLDNS_RESULT_OK);

    /* The first verifier refuses v2 receipts: it has no deployment and no arrival time. */
    memset(&reg, 0, sizeof reg);
    init_registry(&reg, &cb);
    cb_v1.userdata = &reg;
    cb_v1.operator_status = operator_status;
    cb_v1.policy_is_valid = policy_is_valid;
    cb_v1.ledger_contains = ledger_contains;
    CHECK_RC(tolldns_receipt_verify(&cb_v1, receipt, receipt_len, 30000),
             TOLLDNS_RESULT_RECEIPT_UNSUPPORTED_VERSION);

    /* Verification: accepted, then each rule the caller's inputs can break. */
    CHECK_RC(tolldns_receipt_verify_v2(&cb, &dep, receipt, receipt_len, ON_TIME_MS,
                                       TOLLDNS_DEFAULT_SKEW_MS),
             TOLLDNS_RESULT_OK);
    CHECK(reg.calls == 4); /* operator, backend, policy, overlap; no v1 ledger lookup */
    CHECK(reg.asked_start_ms == WINDOW_START_MS && reg.asked_end_ms == WINDOW_END_MS);
    CHECK_RC(tolldns_receipt_verify_v2(&cb, &dep, receipt, receipt_len,
                                       WINDOW_END_MS + TOLLDNS_DEFAULT_MAX_DELAY_MS, 30000),
             TOLLDNS_RESULT_OK);
    CHECK_RC(tolldns_receipt_verify_v2(&cb, &dep, receipt, receipt_len,
                                       WINDOW_END_MS + TOLLDNS_DEFAULT_MAX_DELAY_MS + 1, 30000),
             TOLLDNS_RESULT_RULE_ARRIVED_TOO_LATE);
    reg.overlap = true;
    CHECK_RC(tolldns_receipt_verify_v2(&cb, &dep, receipt, receipt_len, ON_TIME_MS, 30000),
             TOLLDNS_RESULT_RULE_OVERLAPPING_RECEIPT);
    reg.overlap = false;
    reg.seen = true; /* the v1 ledger is not consulted for a v2 receipt */
    CHECK_RC(tolldns_receipt_verify_v2(&cb, &dep, receipt, receipt_len, ON_TIME_MS, 30000),
             TOLLDNS_RESULT_OK);
    reg.seen = false;
    reg.backend_ok = false;
    CHECK_RC(tolldns_receipt_verify_v2(&cb, &dep, receipt, receipt_len, ON_TIME_MS, 30000),
             TOLLDNS_RESULT_RULE_UNREGISTERED_BACKEND);
    reg.backend_ok = true;
    reg.status = TOLLDNS_OPERATOR_NOT_STAKED;
    CHECK_RC(tolldns_receipt_verify_v2(&cb, &dep, receipt, receipt_len, ON_TIME_MS, 30000),
             TOLLDNS_RESULT_RULE_OPERATOR_NOT_STAKED);
    reg.status = TOLLDNS_OPERATOR_ACTIVE;
    reg.policy = 2;
    CHECK_RC(tolldns_receipt_verify_v2(&cb, &dep, receipt, receipt_len, ON_TIME_MS, 30000),
             TOLLDNS_RESULT_RULE_INVALID_POLICY_VERSION);
    reg.policy = 1;
    {
        tolldns_deployment other = deployment_of(RV2_OTHER_DEPLOYMENT_ID);
        CHECK_RC(tolldns_receipt_verify_v2(&cb, &other, receipt, receipt_len, ON_TIME_MS, 30000),
                 TOLLDNS_RESULT_RULE_WRONG_DEPLOYMENT);
        other = dep;
        other.window_len_s = 30;
        CHECK_RC(tolldns_receipt_verify_v2(&cb, &other, receipt, receipt_len, ON_TIME_MS, 30000),
                 TOLLDNS_RESULT_RULE_WINDOW_LEN_NOT_DEPLOYMENT);
        other.window_len_s = 0;
        CHECK_RC(tolldns_receipt_verify_v2(&cb, &other, receipt, receipt_len, ON_TIME_MS, 30000),
                 TOLLDNS_RESULT_RECEIPT_ZERO_WINDOW_LEN);
        other = dep;
        other.max_delay_ms = 0;
        CHECK_RC(tolldns_receipt_verify_v2(&cb, &other, receipt, receipt_len, WINDOW_END_MS, 30000),
                 TOLLDNS_RESULT_OK);
        CHECK_RC(tolldns_receipt_verify_v2(&cb, &other, receipt, receipt_len, WINDOW_END_MS + 1,
                                           30000),
                 TOLLDNS_RESULT_RULE_ARRIVED_TOO_LATE);
    }
    cb.ledger_overlaps = NULL;
    CHECK_RC(tolldns_receipt_verify_v2(&cb, &dep, receipt, receipt_len, ON_TIME_MS, 30000),
             TOLLDNS_RESULT_NULL_PARAMETER);
    cb.ledger_overlaps = ledger_overlaps;
    CHECK_RC(tolldns_receipt_verify_v2(&cb, NULL, receipt, receipt_len, ON_TIME_MS, 30000),
             TOLLDNS_RESULT_NULL_PARAMETER);
    receipt[receipt_len - 1] ^= 0x01; /* the last signature byte */
    CHECK_RC(tolldns_receipt_verify_v2(&cb, &dep, receipt, receipt_len, ON_TIME_MS, 30000),
             TOLLDNS_RESULT_RULE_SIGNATURE);
    CHECK_RC(tolldns_receipt_verify_signature(receipt, receipt_len),
             TOLLDNS_RESULT_VERIFY_SIGNATURE_INVALID);
    receipt[receipt_len - 1] ^= 0x01;
    CHECK_RC(tolldns_receipt_verify_v2(&cb, &dep, receipt, receipt_len - 1, ON_TIME_MS, 30000),
             TOLLDNS_RESULT_RECEIPT_UNEXPECTED_END);

    /* The audit: a seed from a slot after the receipt's, 44 leaves with their neighbours. */
    CHECK_RC(tolldns_audit_sample_size(0.99, 0.10, LEAVES, &k), TOLLDNS_RESULT_OK);
    CHECK(k == 44);
    seed.slot = 11;
    memset(seed.hash, 42, sizeof seed.hash);
    /* The seed is the hash of slot 11: the receipt was recorded at slot 10, the delay is 1. */
    CHECK_RC(tolldns_audit_sample_v2(&seed, 10, 0, info.info.merkle_root, 32, LEAVES, k, sample,
                                     LEAVES, &n),
             TOLLDNS_RESULT_AUDIT_SEED_NOT_AFTER_RECEIPT);
    CHECK_RC(tolldns_audit_sample_v2(&seed, 9, 1, info.info.merkle_root, 32, LEAVES, k, sample,
                                     LEAVES, &n),
             TOLLDNS_RESULT_AUDIT_SEED_SLOT_NOT_FIXED);
    CHECK_RC(tolldns_audit_sample_v2(&seed, 10, 1, info.info.merkle_root, 32, LEAVES, k, sample,
                                     43, &n),
             TOLLDNS_RESULT_INSUFFICIENT_SIZE);
    CHECK_RC(tolldns_audit_sample_v2(&seed, 10, 1, info.info.merkle_root, 32, LEAVES, k, sample,
                                     LEAVES, &n),
             TOLLDNS_RESULT_OK);
    CHECK(n == 44);
    if (n != 44) {
        tolldns_batch_free(batch);
        return;
    }
    for (i = 0; i < n; i++) {
        tolldns_leaf_v2 l;
        serve(batch, LEAVES, sample[i], &STORE[i]);
        CHECK_RC(tolldns_leaf_v2_decode(STORE[i].leaf, TOLLDNS_LEAF_V2_LEN, &l), TOLLDNS_RESULT_OK);
        ticketed += is_ticketed(STORE[i].leaf) == 1;
        repeats += l.repeat != 0;
        neighbours += STORE[i].next_leaf_len != 0;
        if (first == LEAVES && sample[i] + 2 < LEAVES) {
            first = (size_t)i; /* the first answer with two leaves after it */
        }
    }
    view(STORE, n, answers);
    memset(&lookup, 0, sizeof lookup);
    lookup.answer = TOLLDNS_TICKET_STATUS_VALID;
    memset(&report, 0, sizeof report);
    CHECK_RC(tolldns_receipt_audit_v2(&dep, ticket_status, &lookup, receipt, receipt_len, &seed,
                                      10, 1, k, answers, n, &report),
             TOLLDNS_RESULT_OK);
    CHECK(report.sampled == 44 && report.ticketed == ticketed && report.repeats == repeats &&
          report.neighbours == neighbours);
    CHECK(lookup.calls == ticketed && ticketed > 0);
    CHECK_RC(tolldns_receipt_audit_v2(&dep, ticket_status, &lookup, receipt, receipt_len, &seed,
                                      10, 1, k, answers, n, NULL),
             TOLLDNS_RESULT_NULL_PARAMETER);
    CHECK_RC(tolldns_receipt_audit_v2(&dep, ticket_status, &lookup, receipt, receipt_len, &seed,
                                      10, 2, k, answers, n, &report),
             TOLLDNS_RESULT_AUDIT_SEED_SLOT_NOT_FIXED);

    /* Ticket lookups: none given, no token found, a token that does not verify. */
    CHECK_RC(tolldns_receipt_audit_v2(&dep, NULL, NULL, receipt, receipt_len, &seed,
                                      10, 1, k, answers, n, &report),
             TOLLDNS_RESULT_RULE_TICKET_NOT_CHECKED);
    lookup.answer = TOLLDNS_TICKET_STATUS_UNKNOWN;
    CHECK_RC(tolldns_receipt_audit_v2(&dep, ticket_status, &lookup, receipt, receipt_len, &seed,
                                      10, 1, k, answers, n, &report),
             TOLLDNS_RESULT_RULE_TICKET_NOT_REDEEMED);
    lookup.answer = 77; /* anything else is invalid */
    CHECK_RC(tolldns_receipt_audit_v2(&dep, ticket_status, &lookup, receipt, receipt_len, &seed,
                                      10, 1, k, answers, n, &report),
             TOLLDNS_RESULT_RULE_TOKEN_INVALID);
    lookup.answer = TOLLDNS_TICKET_STATUS_VALID;
    {
        tolldns_deployment strict = dep;
        strict.require_tickets = true;
        CHECK_RC(tolldns_receipt_audit_v2(&strict, ticket_status, &lookup, receipt, receipt_len,
                                          &seed, 10, 1, k, answers, n, &report),
                 TOLLDNS_RESULT_RULE_UNTICKETED_LEAF);
    }

    /* Answers that do not answer. */
    CHECK_RC(tolldns_receipt_audit_v2(&dep, ticket_status, &lookup, receipt, receipt_len, &seed,
                                      10, 1, k, answers, n - 1, &report),
             TOLLDNS_RESULT_RULE_PROOF_COUNT_MISMATCH);
    CHECK(first < n);
    if (first < n) {
        tolldns_audit_answer saved = answers[first];
        answer_bytes further;
        /* The neighbour left out. */
        answers[first].next_leaf = NULL;
        answers[first].next_leaf_len = 0;
        answers[first].next_proof = NULL;
        answers[first].next_proof_len = 0;
        CHECK_RC(tolldns_receipt_audit_v2(&dep, ticket_status, &lookup, receipt, receipt_len, &seed,
                                          10, 1, k, answers, n, &report),
                 TOLLDNS_RESULT_RULE_MISSING_NEIGHBOUR);
        /* Half a neighbour. */
        answers[first].next_leaf = saved.next_leaf;
        answers[first].next_leaf_len = saved.next_leaf_len;
        CHECK_RC(tolldns_receipt_audit_v2(&dep, ticket_status, &lookup, receipt, receipt_len, &seed,
                                          10, 1, k, answers, n, &report),
                 TOLLDNS_RESULT_NULL_PARAMETER);
        /* The leaf two places on, with its own (valid) proof, offered as the neighbour. */
        serve(batch, LEAVES, sample[first] + 1, &further);
        answers[first].next_leaf = further.next_leaf;
        answers[first].next_leaf_len = further.next_leaf_len;
        answers[first].next_proof = further.next_proof;
        answers[first].next_proof_len = further.next_proof_len;
        CHECK_RC(tolldns_receipt_audit_v2(&dep, ticket_status, &lookup, receipt, receipt_len, &seed,
                                          10, 1, k, answers, n, &report),
                 TOLLDNS_RESULT_RULE_NEIGHBOUR_FOR_WRONG_LEAF);
        /* The right neighbour, altered. */
        memcpy(further.next_leaf, saved.next_leaf, TOLLDNS_LEAF_V2_LEN);
        further.next_leaf[30] ^= 0x01; /* a name-hash byte */
        answers[first].next_leaf = further.next_leaf;
        answers[first].next_proof = saved.next_proof;
        answers[first].next_proof_len = saved.next_proof_len;
        CHECK_RC(tolldns_receipt_audit_v2(&dep, ticket_status, &lookup, receipt, receipt_len, &seed,
                                          10, 1, k, answers, n, &report),
                 TOLLDNS_RESULT_RULE_INVALID_NEIGHBOUR_PROOF);
        answers[first] = saved;
        /* The sampled leaf itself, altered. */
        memcpy(further.leaf, saved.leaf, TOLLDNS_LEAF_V2_LEN);
        further.leaf[30] ^= 0x01;
        answers[first].leaf = further.leaf;
        CHECK_RC(tolldns_receipt_audit_v2(&dep, ticket_status, &lookup, receipt, receipt_len, &seed,
                                          10, 1, k, answers, n, &report),
                 TOLLDNS_RESULT_RULE_INVALID_PROOF);
        /* A v1 leaf in a v2 audit does not decode. */
        answers[first].leaf = v1_bytes;
        answers[first].leaf_len = sizeof v1_bytes;
        CHECK_RC(tolldns_receipt_audit_v2(&dep, ticket_status, &lookup, receipt, receipt_len, &seed,
                                          10, 1, k, answers, n, &report),
                 TOLLDNS_RESULT_RECEIPT_WRONG_LENGTH);
        answers[first] = saved;
        CHECK_RC(tolldns_receipt_audit_v2(&dep, ticket_status, &lookup, receipt, receipt_len, &seed,
                                          10, 1, k, answers, n, &report),
                 TOLLDNS_RESULT_OK);
    }
    tolldns_batch_free(batch);
}

/* v1 material through the v2 functions: v1 rules, v1 leaves, no neighbours. */
static void test_v1_through_v2(void) {
    tolldns_verify_callbacks_v2 cb;
    tolldns_deployment dep = deployment_of(RV2_DEPLOYMENT_ID);
    tolldns_audit_seed seed;
    tolldns_audit_report report;
    tolldns_audit_answer answers[RECEIPT_LEAVES_COUNT];
    tolldns_receipt_info_v2 info;
    registry reg;
    uint8_t hashes[RECEIPT_LEAVES_COUNT * TOLLDNS_HASH_LEN];
    uint64_t indices[RECEIPT_LEAVES_COUNT];
    size_t i, n = 0;

    init_registry(&reg, &cb);
    reg.policy = RECEIPT_POLICY_VERSION;
    CHECK_RC(tolldns_receipt_decode_v2(RECEIPT_BYTES, RECEIPT_BYTES_LEN, &info), TOLLDNS_RESULT_OK);
    CHECK(info.version == TOLLDNS_RECEIPT_VERSION_V1 && info.ticketed_leaf_count == 0);
    /* A deployment refuses v1 receipts unless it still accepts them. */
    CHECK_RC(tolldns_receipt_verify_v2(&cb, &dep, RECEIPT_BYTES, RECEIPT_BYTES_LEN, 0, 30000),
             TOLLDNS_RESULT_RULE_V1_NOT_ACCEPTED);
    CHECK(reg.calls == 0);
    dep.accept_v1 = true;
    /* A long-past arrival and another deployment do not matter to a v1 receipt. */
    dep.max_delay_ms = 0;
    CHECK_RC(tolldns_receipt_verify_v2(&cb, &dep, RECEIPT_BYTES, RECEIPT_BYTES_LEN, UINT64_MAX,
                                       30000),
             TOLLDNS_RESULT_OK);
    CHECK(reg.calls == 3); /* operator, policy, v1 ledger */
    reg.seen = true;
    CHECK_RC(tolldns_receipt_verify_v2(&cb, &dep, RECEIPT_BYTES, RECEIPT_BYTES_LEN, 0, 30000),
             TOLLDNS_RESULT_RULE_DUPLICATE_RECEIPT);
    reg.seen = false;
    for (i = 0; i < RECEIPT_BAD_RECEIPTS_COUNT; i++) {
        /* The same rules as tolldns_receipt_verify, under their v2 codes and the same names. */
        const tv_bad_receipt *c = &RECEIPT_BAD_RECEIPTS[i];
        tolldns_result rc = tolldns_receipt_verify_v2(&cb, &dep, c->receipt, c->receipt_len, 0,
                                                      30000);
        CHECK(rc >= 901 && rc <= 998);
        CHECK(tolldns_verify_error_name(rc) != NULL &&
              strcmp(tolldns_verify_error_name(rc), tolldns_verify_error_name(c->expected)) == 0);
    }

    /* The v1 audit of receipts.json: 69-byte leaves, proofs, no neighbours. */
    for (i = 0; i < RECEIPT_LEAVES_COUNT; i++) {
        CHECK_RC(tolldns_leaf_hash(RECEIPT_LEAVES[i].leaf, TOLLDNS_LEAF_LEN,
                                   hashes + i * TOLLDNS_HASH_LEN, TOLLDNS_HASH_LEN),
                 TOLLDNS_RESULT_OK);
    }
    seed.slot = 2;
    memcpy(seed.hash, RECEIPT_AUDIT_SEED, 32);
    CHECK_RC(tolldns_audit_sample_v2(&seed, 1, 1, RECEIPT_MERKLE_ROOT, 32, RECEIPT_LEAVES_COUNT,
                                     RECEIPT_AUDIT_K, indices, RECEIPT_LEAVES_COUNT, &n),
             TOLLDNS_RESULT_OK);
    CHECK(n == RECEIPT_AUDIT_INDICES_COUNT &&
          memcmp(indices, RECEIPT_AUDIT_INDICES, n * sizeof indices[0]) == 0);
    for (i = 0; i < n && i < RECEIPT_LEAVES_COUNT; i++) {
        answer_bytes *a = &STORE[i];
        memset(a, 0, sizeof *a);
        memcpy(a->leaf, RECEIPT_LEAVES[indices[i]].leaf, TOLLDNS_LEAF_LEN);
        a->leaf_len = TOLLDNS_LEAF_LEN;
        CHECK_RC(tolldns_merkle_proof(hashes, sizeof hashes, indices[i], a->proof, sizeof a->proof,
                                      &a->proof_len),
                 TOLLDNS_RESULT_OK);
    }
    view(STORE, n, answers);
    CHECK_RC(tolldns_receipt_audit_v2(&dep, NULL, NULL, RECEIPT_BYTES, RECEIPT_BYTES_LEN, &seed, 1,
                                      1, RECEIPT_AUDIT_K, answers, n, &report),
             TOLLDNS_RESULT_OK);
    CHECK(report.sampled == n && report.neighbours == 0 && report.ticketed == 0);
}

/* test-vectors/ffi-receipts-v2.json. */
static void test_vectors(void) {
    tolldns_verify_callbacks_v2 cb;
    tolldns_deployment main_dep = deployment_of(RV2_DEPLOYMENT_ID);
    tolldns_deployment other_dep = deployment_of(RV2_OTHER_DEPLOYMENT_ID);
    tolldns_audit_seed seed;
    tolldns_audit_answer answers[RV2_MAX_LEAVES];
    tolldns_audit_report report;
    tolldns_batch_builder *builder = NULL;
    tolldns_batch *batch = NULL;
    tickets lookup;
    registry reg;
    uint8_t receipt[1024];
    uint64_t indices[RV2_MAX_LEAVES];
    size_t b, c, i, n = 0;

    init_registry(&reg, &cb);
    reg.policy = RV2_POLICY_VERSION;
    main_dep.max_delay_ms = other_dep.max_delay_ms = RV2_MAX_DELAY_MS;
    main_dep.max_repeat_permille = other_dep.max_repeat_permille = RV2_MAX_REPEAT_PERMILLE;
    main_dep.window_len_s = other_dep.window_len_s = RV2_WINDOW_LEN_S;
    memset(&lookup, 0, sizeof lookup);
    lookup.answer = TOLLDNS_TICKET_STATUS_VALID;
    seed.slot = RV2_AUDIT_SEED_SLOT;
    memcpy(seed.hash, RV2_AUDIT_SEED_HASH, 32);

    /* Each batch's sample, drawn in C, is the file's. */
    for (b = 0; b < RV2_BATCHES_COUNT; b++) {
        const tv_rv2_batch *v = &RV2_BATCHES[b];
        tolldns_receipt_info_v2 info;
        if (v->leaf_count == 0) {
            continue;
        }
        CHECK_RC(tolldns_receipt_decode_v2(v->receipt, v->receipt_len, &info), TOLLDNS_RESULT_OK);
        CHECK(info.version == 2 && info.info.leaf_count == v->leaf_count);
        CHECK_RC(tolldns_audit_sample_v2(&seed, RV2_RECEIPT_SLOT, RV2_AUDIT_DELAY_SLOTS,
                                         info.info.merkle_root, 32, info.info.leaf_count, v->k,
                                         indices, RV2_MAX_LEAVES, &n),
                 TOLLDNS_RESULT_OK);
        CHECK(n == v->sample_len && memcmp(indices, v->sample, n * sizeof indices[0]) == 0);
    }

    for (c = 0; c < RV2_CASES_COUNT; c++) {
        const tv_rv2_case *t = &RV2_CASES[c];
        const tv_rv2_batch *v = &RV2_BATCHES[t->batch];
        const tolldns_deployment *dep = t->other_deployment ? &other_dep : &main_dep;
        if (!t->audit) {
            CHECK_RC(tolldns_receipt_verify_v2(&cb, dep, v->receipt, v->receipt_len, t->received_ms,
                                               RV2_SKEW_MS),
                     t->expected);
            continue;
        }
        /* The operator's answers: each sampled leaf, its proof, and the next leaf. */
        for (i = 0; i < v->sample_len; i++) {
            uint64_t j = v->sample[i];
            answers[i].leaf = v->leaves[j];
            answers[i].leaf_len = TOLLDNS_LEAF_V2_LEN;
            answers[i].proof = v->proofs[j];
            answers[i].proof_len = v->proof_lens[j];
            if (j + 1 < v->leaf_count) {
                answers[i].next_leaf = v->leaves[j + 1];
                answers[i].next_leaf_len = TOLLDNS_LEAF_V2_LEN;
                answers[i].next_proof = v->proofs[j + 1];
                answers[i].next_proof_len = v->proof_lens[j + 1];
            } else {
                answers[i].next_leaf = NULL;
                answers[i].next_leaf_len = 0;
                answers[i].next_proof = NULL;
                answers[i].next_proof_len = 0;
            }
        }
        CHECK_RC(tolldns_receipt_audit_v2(dep, ticket_status, &lookup, v->receipt, v->receipt_len,
                                          &seed, RV2_RECEIPT_SLOT, RV2_AUDIT_DELAY_SLOTS, v->k,
                                          answers, v->sample_len, &report),
                 t->expected);
        if (t->expected == TOLLDNS_RESULT_OK) {
            CHECK(report.sampled == v->leaf_count && report.neighbours == v->leaf_count - 1 &&
                  report.repeats == 1 && report.ticketed == 11);
        }
    }

    /* The honest batch is exactly what the v2 builder writes, whatever the arrival order. */
    CHECK(strcmp(RV2_BATCHES[0].name, "honest") == 0);
    CHECK_RC(tolldns_batch_builder_new_v2(RV2_DEPLOYMENT_ID, 32, TOLLDNS_ROLE_EDGE_INGRESS,
                                          (const uint8_t *)RV2_BACKEND_ID, strlen(RV2_BACKEND_ID),
                                          RV2_POLICY_VERSION, RV2_WINDOW_LEN_S, 1, 64, &builder),
             TOLLDNS_RESULT_OK);
    for (i = RV2_BATCHES[0].leaf_count; i > 0; i--) {
        CHECK_RC(tolldns_batch_builder_add_leaf(builder, RV2_BATCHES[0].leaves[i - 1],
                                                TOLLDNS_LEAF_V2_LEN),
                 TOLLDNS_RESULT_OK);
    }
    CHECK_RC(tolldns_batch_builder_close(builder, RV2_WINDOW_ID, RV2_NAME_KEY_COMMITMENT, 32,
                                         RV2_RECEIPT_TIMESTAMP_MS, RV2_SIGNING_KEY, 32, &batch),
             TOLLDNS_RESULT_OK);
    if (batch != NULL) {
        uint8_t leaf[TOLLDNS_LEAF_V2_LEN];
        CHECK_RC(tolldns_batch_receipt(batch, receipt, sizeof receipt, &n), TOLLDNS_RESULT_OK);
        CHECK(n == RV2_BATCHES[0].receipt_len && memcmp(receipt, RV2_BATCHES[0].receipt, n) == 0);
        for (i = 0; i < RV2_BATCHES[0].leaf_count; i++) {
            CHECK_RC(tolldns_batch_leaf(batch, i, leaf, sizeof leaf), TOLLDNS_RESULT_OK);
            CHECK(memcmp(leaf, RV2_BATCHES[0].leaves[i], sizeof leaf) == 0);
        }
    }
    tolldns_batch_free(batch);
    tolldns_batch_builder_free(builder);
}

int main(void) {
    test_codes();
    test_leaves();
    test_deployment();
    test_batch();
    test_v1_through_v2();
    test_vectors();
    return check_summary("receipts_v2");
}
