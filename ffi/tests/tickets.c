/*
 * tickets.c: toll-ticket verification through the committed tolldns.h, with the tokens of
 * test-vectors/tickets.json: the challenge digest, every case's result code and ticket id,
 * outputs left untouched on failure, NULL and length handling, and key management.
 */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "tolldns.h"
#include "vectors.h"

#define UNTOUCHED 0xA5

static int all_bytes(const uint8_t *p, size_t n, uint8_t value) {
    size_t i;
    for (i = 0; i < n; i++) {
        if (p[i] != value) {
            return 0;
        }
    }
    return 1;
}

/* A verifier for the vectors' challenge holding the vectors' issuer key, or NULL. */
static tolldns_token_verifier *vector_verifier(uint64_t not_after) {
    tolldns_token_verifier *v = NULL;
    CHECK_RC(tolldns_token_verifier_new(TICKET_CHALLENGE_DIGEST, sizeof TICKET_CHALLENGE_DIGEST,
                                        &v),
             TOLLDNS_RESULT_OK);
    CHECK(v != NULL);
    CHECK_RC(tolldns_token_verifier_add_key(v, TICKET_ISSUER_SPKI, sizeof TICKET_ISSUER_SPKI,
                                            TICKET_KEY_NOT_BEFORE, not_after),
             TOLLDNS_RESULT_OK);
    return v;
}

static void challenge_digest(void) {
    const char *issuer = TICKET_ISSUER_NAME;
    const char *deployment = TICKET_DEPLOYMENT;
    uint8_t digest[TOLLDNS_CHALLENGE_DIGEST_LEN];
    uint8_t other[TOLLDNS_CHALLENGE_DIGEST_LEN];

    CHECK_RC(tolldns_token_challenge_digest((const uint8_t *)issuer, strlen(issuer),
                                            (const uint8_t *)deployment, strlen(deployment),
                                            digest, sizeof digest),
             TOLLDNS_RESULT_OK);
    CHECK(memcmp(digest, TICKET_CHALLENGE_DIGEST, sizeof digest) == 0);

    /* Another deployment is another challenge; an empty one is allowed. */
    CHECK_RC(tolldns_token_challenge_digest((const uint8_t *)issuer, strlen(issuer),
                                            (const uint8_t *)"other", 5, other, sizeof other),
             TOLLDNS_RESULT_OK);
    CHECK(memcmp(digest, other, sizeof digest) != 0);
    CHECK_RC(tolldns_token_challenge_digest((const uint8_t *)issuer, strlen(issuer), NULL, 0,
                                            other, sizeof other),
             TOLLDNS_RESULT_OK);

    /* Refused: empty issuer, non-UTF-8, NULL, short output. Nothing is written. */
    memset(other, UNTOUCHED, sizeof other);
    CHECK_RC(tolldns_token_challenge_digest(NULL, 0, (const uint8_t *)deployment,
                                            strlen(deployment), other, sizeof other),
             TOLLDNS_RESULT_INVALID_PARAMETER);
    CHECK_RC(tolldns_token_challenge_digest((const uint8_t *)"\377", 1,
                                            (const uint8_t *)deployment, strlen(deployment),
                                            other, sizeof other),
             TOLLDNS_RESULT_INVALID_PARAMETER);
    CHECK_RC(tolldns_token_challenge_digest(NULL, 3, (const uint8_t *)deployment,
                                            strlen(deployment), other, sizeof other),
             TOLLDNS_RESULT_NULL_PARAMETER);
    CHECK_RC(tolldns_token_challenge_digest((const uint8_t *)issuer, strlen(issuer), NULL, 3,
                                            other, sizeof other),
             TOLLDNS_RESULT_NULL_PARAMETER);
    CHECK_RC(tolldns_token_challenge_digest((const uint8_t *)issuer, strlen(issuer),
                                            (const uint8_t *)deployment, strlen(deployment),
                                            NULL, sizeof other),
             TOLLDNS_RESULT_NULL_PARAMETER);
    CHECK_RC(tolldns_token_challenge_digest((const uint8_t *)issuer, strlen(issuer),
                                            (const uint8_t *)deployment, strlen(deployment),
                                            other, sizeof other - 1),
             TOLLDNS_RESULT_INSUFFICIENT_SIZE);
    CHECK(all_bytes(other, sizeof other, UNTOUCHED));
}

static void every_case(void) {
    tolldns_token_verifier *v = vector_verifier(TICKET_KEY_NOT_AFTER);
    size_t i;
    CHECK(TICKET_CASES_COUNT >= 10);
    for (i = 0; i < TICKET_CASES_COUNT; i++) {
        const tv_ticket *c = &TICKET_CASES[i];
        uint8_t id[TOLLDNS_TICKET_ID_LEN];
        uint8_t out[TOLLDNS_TICKET_ID_LEN];

        /* The ticket id is defined over any bytes, valid or not. */
        CHECK_RC(tolldns_ticket_id(c->token, c->token_len, id, sizeof id), TOLLDNS_RESULT_OK);
        CHECK(memcmp(id, c->ticket_id, sizeof id) == 0);

        memset(out, UNTOUCHED, sizeof out);
        CHECK_RC(tolldns_token_verifier_verify(v, c->token, c->token_len, c->now_unix_s, out,
                                               sizeof out),
                 c->expected);
        if (c->expected == TOLLDNS_RESULT_OK) {
            CHECK(memcmp(out, c->ticket_id, sizeof out) == 0);
        } else {
            CHECK(all_bytes(out, sizeof out, UNTOUCHED));
        }
    }
    tolldns_token_verifier_free(v);
}

static void verifier_variants(void) {
    const tv_ticket *valid = &TICKET_CASES[0];
    uint8_t out[TOLLDNS_TICKET_ID_LEN];
    uint8_t other_digest[TOLLDNS_CHALLENGE_DIGEST_LEN];
    tolldns_token_verifier *v = NULL;
    size_t i;

    CHECK(valid->expected == TOLLDNS_RESULT_OK);

    /* No end (not_after = 0): the expired cases verify. */
    v = vector_verifier(0);
    for (i = 0; i < TICKET_CASES_COUNT; i++) {
        const tv_ticket *c = &TICKET_CASES[i];
        if (c->expected == TOLLDNS_RESULT_TICKET_EXPIRED_KEY &&
            c->now_unix_s >= TICKET_KEY_NOT_AFTER) {
            CHECK_RC(tolldns_token_verifier_verify(v, c->token, c->token_len, c->now_unix_s,
                                                   out, sizeof out),
                     TOLLDNS_RESULT_OK);
            CHECK(memcmp(out, c->ticket_id, sizeof out) == 0);
        }
    }
    /* Adding the key again replaces its validity: now it starts after the valid case. */
    CHECK_RC(tolldns_token_verifier_add_key(v, TICKET_ISSUER_SPKI, sizeof TICKET_ISSUER_SPKI,
                                            valid->now_unix_s + 1, 0),
             TOLLDNS_RESULT_OK);
    CHECK_RC(tolldns_token_verifier_verify(v, valid->token, valid->token_len, valid->now_unix_s,
                                           out, sizeof out),
             TOLLDNS_RESULT_TICKET_EXPIRED_KEY);
    tolldns_token_verifier_free(v);

    /* A verifier without keys knows no issuer. */
    v = NULL;
    CHECK_RC(tolldns_token_verifier_new(TICKET_CHALLENGE_DIGEST, sizeof TICKET_CHALLENGE_DIGEST,
                                        &v),
             TOLLDNS_RESULT_OK);
    CHECK_RC(tolldns_token_verifier_verify(v, valid->token, valid->token_len, valid->now_unix_s,
                                           out, sizeof out),
             TOLLDNS_RESULT_TICKET_WRONG_ISSUER);
    tolldns_token_verifier_free(v);

    /* A verifier for another deployment refuses the token as bound to another challenge. */
    CHECK_RC(tolldns_token_challenge_digest((const uint8_t *)TICKET_ISSUER_NAME,
                                            strlen(TICKET_ISSUER_NAME),
                                            (const uint8_t *)"elsewhere", 9, other_digest,
                                            sizeof other_digest),
             TOLLDNS_RESULT_OK);
    v = NULL;
    CHECK_RC(tolldns_token_verifier_new(other_digest, sizeof other_digest, &v),
             TOLLDNS_RESULT_OK);
    CHECK_RC(tolldns_token_verifier_add_key(v, TICKET_ISSUER_SPKI, sizeof TICKET_ISSUER_SPKI, 0,
                                            0),
             TOLLDNS_RESULT_OK);
    CHECK_RC(tolldns_token_verifier_verify(v, valid->token, valid->token_len, valid->now_unix_s,
                                           out, sizeof out),
             TOLLDNS_RESULT_TICKET_WRONG_CHALLENGE);
    tolldns_token_verifier_free(v);
}

static void null_and_lengths(void) {
    const tv_ticket *valid = &TICKET_CASES[0];
    uint8_t out[TOLLDNS_TICKET_ID_LEN];
    static char marker;
    tolldns_token_verifier *v = NULL;
    /* Not a handle: only compared, to see that failed calls leave *out alone. */
    tolldns_token_verifier *sentinel = (tolldns_token_verifier *)(void *)&marker;
    tolldns_token_verifier *h = sentinel;

    /* _new: the digest must be 32 bytes; *out is written only on success. */
    CHECK_RC(tolldns_token_verifier_new(NULL, 32, &h), TOLLDNS_RESULT_NULL_PARAMETER);
    CHECK_RC(tolldns_token_verifier_new(TICKET_CHALLENGE_DIGEST, 31, &h),
             TOLLDNS_RESULT_INVALID_PARAMETER);
    CHECK_RC(tolldns_token_verifier_new(TICKET_CHALLENGE_DIGEST, 33, &h),
             TOLLDNS_RESULT_INVALID_PARAMETER);
    CHECK_RC(tolldns_token_verifier_new(TICKET_CHALLENGE_DIGEST, 32, NULL),
             TOLLDNS_RESULT_NULL_PARAMETER);
    CHECK(h == sentinel);

    v = vector_verifier(TICKET_KEY_NOT_AFTER);

    /* _add_key: bad keys have their own code; the verifier is unchanged after an error. */
    CHECK_RC(tolldns_token_verifier_add_key(v, TICKET_ISSUER_SPKI, sizeof TICKET_ISSUER_SPKI - 1,
                                            0, 0),
             TOLLDNS_RESULT_TICKET_BAD_KEY);
    CHECK_RC(tolldns_token_verifier_add_key(v, (const uint8_t *)"not a key", 9, 0, 0),
             TOLLDNS_RESULT_TICKET_BAD_KEY);
    CHECK_RC(tolldns_token_verifier_add_key(v, NULL, 0, 0, 0), TOLLDNS_RESULT_TICKET_BAD_KEY);
    CHECK_RC(tolldns_token_verifier_add_key(v, NULL, sizeof TICKET_ISSUER_SPKI, 0, 0),
             TOLLDNS_RESULT_NULL_PARAMETER);
    CHECK_RC(tolldns_token_verifier_add_key(NULL, TICKET_ISSUER_SPKI, sizeof TICKET_ISSUER_SPKI,
                                            0, 0),
             TOLLDNS_RESULT_NULL_PARAMETER);
    /* An empty validity window (not_after not after not_before) is refused. */
    CHECK_RC(tolldns_token_verifier_add_key(v, TICKET_ISSUER_SPKI, sizeof TICKET_ISSUER_SPKI,
                                            100, 100),
             TOLLDNS_RESULT_INVALID_PARAMETER);
    CHECK_RC(tolldns_token_verifier_add_key(v, TICKET_ISSUER_SPKI, sizeof TICKET_ISSUER_SPKI,
                                            100, 99),
             TOLLDNS_RESULT_INVALID_PARAMETER);
    memset(out, UNTOUCHED, sizeof out);
    CHECK_RC(tolldns_token_verifier_verify(v, valid->token, valid->token_len, valid->now_unix_s,
                                           out, sizeof out),
             TOLLDNS_RESULT_OK);
    CHECK(memcmp(out, valid->ticket_id, sizeof out) == 0);

    /* _verify: NULLs, a short output (checked before any work), an empty token. */
    memset(out, UNTOUCHED, sizeof out);
    CHECK_RC(tolldns_token_verifier_verify(NULL, valid->token, valid->token_len,
                                           valid->now_unix_s, out, sizeof out),
             TOLLDNS_RESULT_NULL_PARAMETER);
    CHECK_RC(tolldns_token_verifier_verify(v, NULL, valid->token_len, valid->now_unix_s, out,
                                           sizeof out),
             TOLLDNS_RESULT_NULL_PARAMETER);
    CHECK_RC(tolldns_token_verifier_verify(v, valid->token, valid->token_len, valid->now_unix_s,
                                           NULL, sizeof out),
             TOLLDNS_RESULT_NULL_PARAMETER);
    CHECK_RC(tolldns_token_verifier_verify(v, valid->token, valid->token_len, valid->now_unix_s,
                                           out, sizeof out - 1),
             TOLLDNS_RESULT_INSUFFICIENT_SIZE);
    CHECK_RC(tolldns_token_verifier_verify(v, valid->token, valid->token_len, valid->now_unix_s,
                                           NULL, 0),
             TOLLDNS_RESULT_INSUFFICIENT_SIZE);
    CHECK_RC(tolldns_token_verifier_verify(v, NULL, 0, valid->now_unix_s, out, sizeof out),
             TOLLDNS_RESULT_TICKET_MALFORMED);
    CHECK(all_bytes(out, sizeof out, UNTOUCHED));

    /* tolldns_ticket_id: the empty token has an id; NULL and short outputs are refused. */
    CHECK_RC(tolldns_ticket_id(NULL, 0, out, sizeof out), TOLLDNS_RESULT_OK);
    memset(out, UNTOUCHED, sizeof out);
    CHECK_RC(tolldns_ticket_id(NULL, 1, out, sizeof out), TOLLDNS_RESULT_NULL_PARAMETER);
    CHECK_RC(tolldns_ticket_id(valid->token, valid->token_len, NULL, sizeof out),
             TOLLDNS_RESULT_NULL_PARAMETER);
    CHECK_RC(tolldns_ticket_id(valid->token, valid->token_len, out, sizeof out - 1),
             TOLLDNS_RESULT_INSUFFICIENT_SIZE);
    CHECK(all_bytes(out, sizeof out, UNTOUCHED));

    tolldns_token_verifier_free(v);
    tolldns_token_verifier_free(NULL);
}

static void messages(void) {
    static const tolldns_result codes[] = {
        TOLLDNS_RESULT_TICKET_MALFORMED,      TOLLDNS_RESULT_TICKET_WRONG_ISSUER,
        TOLLDNS_RESULT_TICKET_EXPIRED_KEY,    TOLLDNS_RESULT_TICKET_WRONG_CHALLENGE,
        TOLLDNS_RESULT_TICKET_BAD_SIGNATURE,  TOLLDNS_RESULT_TICKET_BAD_KEY,
        TOLLDNS_RESULT_TICKET_INVALID,
    };
    char buf[TOLLDNS_RESULT_MESSAGE_MAX_LEN];
    size_t i, n = 0;
    for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        CHECK_RC(tolldns_result_message(codes[i], buf, sizeof buf, &n), TOLLDNS_RESULT_OK);
        CHECK(n > 0 && n == strlen(buf) && strcmp(buf, "unknown result code") != 0);
    }
}

int main(void) {
    challenge_digest();
    every_case();
    verifier_variants();
    null_and_lengths();
    messages();
    return check_summary("tickets");
}
