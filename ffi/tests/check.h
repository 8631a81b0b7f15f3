/*
 * check.h: a minimal check harness for the C tests of tolldns.h.
 *
 * Each test program calls CHECK / CHECK_RC any number of times and returns
 * check_summary("name") from main: exit status 0 and a "PASS" line when every check held.
 */
#ifndef TOLLDNS_TEST_CHECK_H
#define TOLLDNS_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

#include "tolldns.h"

static unsigned long check_count = 0;
static unsigned long check_failures = 0;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        check_count++;                                                                \
        if (!(cond)) {                                                                \
            check_failures++;                                                         \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                             \
    } while (0)

/* Checks that a call returns the expected result code, and says which one it returned. */
#define CHECK_RC(call, expected)                                                         \
    do {                                                                                 \
        tolldns_result check_rc_ = (call);                                               \
        check_count++;                                                                   \
        if (check_rc_ != (tolldns_result)(expected)) {                                   \
            check_failures++;                                                            \
            fprintf(stderr, "%s:%d: %s returned %u (%s), expected %u\n", __FILE__,       \
                    __LINE__, #call, (unsigned)check_rc_, check_message(check_rc_),      \
                    (unsigned)(expected));                                               \
        }                                                                                \
    } while (0)

static const char *check_message(tolldns_result rc) {
    static char buf[TOLLDNS_RESULT_MESSAGE_MAX_LEN];
    size_t n = 0;
    if (tolldns_result_message(rc, buf, sizeof buf, &n) != TOLLDNS_RESULT_OK) {
        return "(no message)";
    }
    return buf;
}

static int check_summary(const char *name) {
    if (check_failures != 0) {
        printf("FAIL %s: %lu of %lu checks failed\n", name, check_failures, check_count);
        return 1;
    }
    printf("PASS %s: %lu checks\n", name, check_count);
    return 0;
}

#endif /* TOLLDNS_TEST_CHECK_H */
