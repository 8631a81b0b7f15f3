/*
 * names.c: name normalization and name hashes against test-vectors/names.json, result codes,
 * messages and the version string, through the committed tolldns.h.
 */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "tolldns.h"
#include "vectors.h"

static void test_version_and_messages(void) {
    const char *v = tolldns_version();
    char buf[TOLLDNS_RESULT_MESSAGE_MAX_LEN];
    char tiny[4] = {'x', 'x', 'x', 'x'};
    size_t n = 12345;

    CHECK(v != NULL && strncmp(v, "tolldns-ffi/", 12) == 0);

    CHECK_RC(tolldns_result_message(TOLLDNS_RESULT_OK, buf, sizeof buf, &n), TOLLDNS_RESULT_OK);
    CHECK(strcmp(buf, "success") == 0 && n == 7);
    CHECK_RC(tolldns_result_message(TOLLDNS_RESULT_NAME_EMPTY_LABEL, buf, sizeof buf, &n),
             TOLLDNS_RESULT_OK);
    CHECK(n == strlen(buf) && n > 0);
    /* Unknown codes still get a message. */
    CHECK_RC(tolldns_result_message(99999u, buf, sizeof buf, &n), TOLLDNS_RESULT_OK);
    CHECK(strcmp(buf, "unknown result code") == 0);
    /* Too small: nothing written. */
    n = 12345;
    CHECK_RC(tolldns_result_message(TOLLDNS_RESULT_PANIC, tiny, sizeof tiny, &n),
             TOLLDNS_RESULT_INSUFFICIENT_SIZE);
    CHECK(n == 12345 && tiny[0] == 'x' && tiny[3] == 'x');
    CHECK_RC(tolldns_result_message(TOLLDNS_RESULT_OK, NULL, sizeof buf, &n),
             TOLLDNS_RESULT_NULL_PARAMETER);
    CHECK_RC(tolldns_result_message(TOLLDNS_RESULT_OK, buf, sizeof buf, NULL),
             TOLLDNS_RESULT_NULL_PARAMETER);
}

static void test_valid_names(void) {
    size_t i;
    for (i = 0; i < NAME_VALID_COUNT; i++) {
        const tv_name_valid *c = &NAME_VALID[i];
        uint8_t out[TOLLDNS_MAX_NAME_LEN];
        uint8_t hash[TOLLDNS_NAME_HASH_LEN];
        size_t n = 0;
        CHECK_RC(tolldns_name_normalize((const uint8_t *)c->input, c->input_len, out, sizeof out,
                                        &n),
                 TOLLDNS_RESULT_OK);
        CHECK(n == strlen(c->canonical) && memcmp(out, c->canonical, n) == 0);
        CHECK_RC(tolldns_name_hash(NAME_KEY, sizeof NAME_KEY, (const uint8_t *)c->input,
                                   c->input_len, hash, sizeof hash),
                 TOLLDNS_RESULT_OK);
        CHECK(memcmp(hash, c->name_hash, sizeof hash) == 0);
        /* The canonical form hashes the same. */
        CHECK_RC(tolldns_name_hash(NAME_KEY, sizeof NAME_KEY, out, n, hash, sizeof hash),
                 TOLLDNS_RESULT_OK);
        CHECK(memcmp(hash, c->name_hash, sizeof hash) == 0);
    }
}

static void test_invalid_names(void) {
    size_t i;
    for (i = 0; i < NAME_INVALID_COUNT; i++) {
        const tv_name_invalid *c = &NAME_INVALID[i];
        uint8_t out[TOLLDNS_MAX_NAME_LEN];
        uint8_t hash[TOLLDNS_NAME_HASH_LEN] = {0};
        uint8_t zero[TOLLDNS_NAME_HASH_LEN] = {0};
        size_t n = 777;
        CHECK_RC(tolldns_name_normalize((const uint8_t *)c->input, c->input_len, out, sizeof out,
                                        &n),
                 c->expected);
        CHECK(n == 777);
        CHECK_RC(tolldns_name_hash(NAME_KEY, sizeof NAME_KEY, (const uint8_t *)c->input,
                                   c->input_len, hash, sizeof hash),
                 c->expected);
        CHECK(memcmp(hash, zero, sizeof hash) == 0);
    }
}

static void test_argument_checks(void) {
    const uint8_t name[] = "example.com";
    uint8_t out[TOLLDNS_MAX_NAME_LEN];
    uint8_t hash[TOLLDNS_HASH_LEN];
    size_t n = 0;

    CHECK_RC(tolldns_name_normalize(NULL, 3, out, sizeof out, &n), TOLLDNS_RESULT_NULL_PARAMETER);
    CHECK_RC(tolldns_name_normalize(name, 11, NULL, sizeof out, &n),
             TOLLDNS_RESULT_NULL_PARAMETER);
    CHECK_RC(tolldns_name_normalize(name, 11, out, sizeof out, NULL),
             TOLLDNS_RESULT_NULL_PARAMETER);
    /* (NULL, 0) is the empty name. */
    CHECK_RC(tolldns_name_normalize(NULL, 0, out, sizeof out, &n), TOLLDNS_RESULT_NAME_EMPTY);
    CHECK_RC(tolldns_name_normalize(name, 11, out, 10, &n), TOLLDNS_RESULT_INSUFFICIENT_SIZE);
    CHECK_RC(tolldns_name_normalize(name, 11, out, 11, &n), TOLLDNS_RESULT_OK);
    CHECK(n == 11);

    CHECK_RC(tolldns_name_hash(NULL, 32, name, 11, hash, 16), TOLLDNS_RESULT_NULL_PARAMETER);
    CHECK_RC(tolldns_name_hash(NAME_KEY, 31, name, 11, hash, 16),
             TOLLDNS_RESULT_INVALID_PARAMETER);
    CHECK_RC(tolldns_name_hash(NAME_KEY, 32, name, 11, hash, 15),
             TOLLDNS_RESULT_INSUFFICIENT_SIZE);
    CHECK_RC(tolldns_name_hash(NAME_KEY, 32, name, 11, NULL, 16), TOLLDNS_RESULT_NULL_PARAMETER);

    CHECK_RC(tolldns_name_key_commitment(NAME_KEY, 32, hash, sizeof hash), TOLLDNS_RESULT_OK);
    CHECK_RC(tolldns_name_key_commitment(NAME_KEY, 32, hash, 31), TOLLDNS_RESULT_INSUFFICIENT_SIZE);
    CHECK_RC(tolldns_name_key_commitment(NULL, 32, hash, sizeof hash),
             TOLLDNS_RESULT_NULL_PARAMETER);
}

int main(void) {
    test_version_and_messages();
    test_valid_names();
    test_invalid_names();
    test_argument_checks();
    return check_summary("names");
}
