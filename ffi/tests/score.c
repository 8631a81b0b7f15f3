/*
 * score.c: miner scoring and reward allocation through the committed tolldns.h: the three
 * worked miners of the upstream example (raw scores 6,464,000 / 8,650,000 / 4,870,000), every
 * formula on its own, the allocation over caller arrays, and the argument checks.
 */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "tolldns.h"
#include "vectors.h"

static tolldns_u128 u128(uint64_t lo) {
    tolldns_u128 v;
    v.lo = lo;
    v.hi = 0;
    return v;
}

static int u128_eq(tolldns_u128 v, uint64_t lo) { return v.hi == 0 && v.lo == lo; }

static tolldns_score_config worked_config(void) {
    tolldns_score_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.epoch_len_slots = 100;
    cfg.alpha_correctness_bps = 5000;
    cfg.alpha_diversity_bps = 2000;
    cfg.alpha_timeliness_bps = 2000;
    cfg.alpha_uptime_bps = 1000;
    cfg.centralization_penalty_bps = 2000;
    cfg.dominance_threshold_bps = 2500;
    cfg.diversity_target = 100;
    cfg.per_miner_epoch_cap = 50000000000ull;
    cfg.min_miner_stake_weight = 1;
    return cfg;
}

static tolldns_miner_stats stats(uint64_t stake, uint32_t names, uint64_t first, uint16_t uptime,
                                 uint16_t correctness, uint16_t dominance) {
    tolldns_miner_stats s;
    memset(&s, 0, sizeof s);
    s.stake_weight = stake;
    s.unique_name_count = names;
    s.first_submit_slot = first;
    s.uptime_score = uptime;
    s.correctness_score = correctness;
    s.dominance_share_bps = dominance;
    return s;
}

static void test_worked_miners(void) {
    const tolldns_score_config cfg = worked_config();
    const tolldns_miner_stats miners[3] = {
        stats(1000, 10, 101, 9000, 10000, 4000), /* A: dominant, penalized 20 % */
        stats(1000, 40, 105, 9500, 10000, 2000), /* B */
        stats(500, 90, 102, 9800, 10000, 1000),  /* C */
    };
    const uint16_t timeliness[3] = {9900, 9500, 9800};
    const uint16_t diversity[3] = {1000, 4000, 9000};
    const uint16_t component[3] = {8080, 8650, 9740};
    const uint64_t raw[3] = {6464000, 8650000, 4870000};
    const uint64_t normalized[3] = {2542, 2941, 2206}; /* floor(sqrt(raw)) */
    tolldns_u128 weights[3];
    uint64_t rewards[3] = {0, 0, 0};
    tolldns_allocation totals;
    size_t i;

    CHECK_RC(tolldns_score_config_validate(&cfg), TOLLDNS_RESULT_OK);
    for (i = 0; i < 3; i++) {
        tolldns_miner_score s;
        memset(&s, 0, sizeof s);
        CHECK_RC(tolldns_miner_stats_validate(&miners[i], &cfg), TOLLDNS_RESULT_OK);
        CHECK_RC(tolldns_score_miner(&cfg, 1, &miners[i], &s), TOLLDNS_RESULT_OK);
        CHECK(s.timeliness_component == timeliness[i]);
        CHECK(s.diversity_component == diversity[i]);
        CHECK(s.component == component[i]);
        CHECK(u128_eq(s.raw_score, raw[i]));
        CHECK(u128_eq(s.normalized_score, normalized[i]));
        weights[i] = s.normalized_score;
    }

    /* A pool of 7689 base units over 2542 + 2941 + 2206 = 7689: exactly the weights. */
    CHECK_RC(tolldns_allocate(7689, weights, 3, 1000000, rewards, 3, &totals), TOLLDNS_RESULT_OK);
    CHECK(rewards[0] == 2542 && rewards[1] == 2941 && rewards[2] == 2206);
    CHECK(u128_eq(totals.total_normalized, 7689));
    CHECK(totals.allocated == 7689 && totals.unallocated == 0);

    /* A cap of 2600 leaves B's excess in the vault. */
    CHECK_RC(tolldns_allocate(7689, weights, 3, 2600, rewards, 3, &totals), TOLLDNS_RESULT_OK);
    CHECK(rewards[0] == 2542 && rewards[1] == 2600 && rewards[2] == 2206);
    CHECK(totals.allocated + totals.unallocated == 7689 && totals.unallocated == 341);
}

static void test_formulas(void) {
    const tolldns_score_config cfg = worked_config();
    uint16_t c16 = 0;
    tolldns_u128 v;
    uint64_t u = 0;
    bool ended = false;
    tolldns_miner_stats s = stats(1000, 10, 101, 9000, 10000, 4000);
    tolldns_miner_score score;

    CHECK_RC(tolldns_timeliness_component(100, 100, 101, &c16), TOLLDNS_RESULT_OK);
    CHECK(c16 == 9900);
    CHECK_RC(tolldns_timeliness_component(100, 100, 250, &c16), TOLLDNS_RESULT_OK);
    CHECK(c16 == 0);
    CHECK_RC(tolldns_diversity_component(40, 100, &c16), TOLLDNS_RESULT_OK);
    CHECK(c16 == 4000);
    CHECK_RC(tolldns_diversity_component(400, 100, &c16), TOLLDNS_RESULT_OK);
    CHECK(c16 == 10000);
    CHECK_RC(tolldns_weighted_component(&cfg, 10000, 9500, 4000, 9500, &c16), TOLLDNS_RESULT_OK);
    CHECK(c16 == 8650);
    CHECK_RC(tolldns_raw_score(1000, 8080, &v), TOLLDNS_RESULT_OK);
    CHECK(u128_eq(v, 8080000));
    CHECK_RC(tolldns_apply_centralization_penalty(u128(8080000), 4000, 2500, 2000, &v),
             TOLLDNS_RESULT_OK);
    CHECK(u128_eq(v, 6464000));
    /* Strictly above the threshold: equal is not penalized. */
    CHECK_RC(tolldns_apply_centralization_penalty(u128(8080000), 2500, 2500, 2000, &v),
             TOLLDNS_RESULT_OK);
    CHECK(u128_eq(v, 8080000));
    CHECK_RC(tolldns_penalize(u128(6464000), 5000, &v), TOLLDNS_RESULT_OK);
    CHECK(u128_eq(v, 3232000));
    CHECK_RC(tolldns_isqrt(u128(8650000), &v), TOLLDNS_RESULT_OK);
    CHECK(u128_eq(v, 2941));
    {
        /* isqrt(2^128 - 1) = 2^64 - 1. */
        tolldns_u128 max;
        max.lo = UINT64_MAX;
        max.hi = UINT64_MAX;
        CHECK_RC(tolldns_isqrt(max, &v), TOLLDNS_RESULT_OK);
        CHECK(u128_eq(v, UINT64_MAX));
    }
    CHECK_RC(tolldns_reward_share(30000000000ull, u128(1), u128(3), 50000000000ull, &u),
             TOLLDNS_RESULT_OK);
    CHECK(u == 10000000000ull);
    CHECK_RC(tolldns_reward_share(100, u128(0), u128(0), 100, &u), TOLLDNS_RESULT_OK);
    CHECK(u == 0);
    CHECK_RC(tolldns_epoch_start_slot(3, 100, &u), TOLLDNS_RESULT_OK);
    CHECK(u == 300);
    CHECK_RC(tolldns_epoch_end_slot(3, 100, &u), TOLLDNS_RESULT_OK);
    CHECK(u == 400);
    CHECK_RC(tolldns_epoch_has_ended(3, 100, 399, &ended), TOLLDNS_RESULT_OK);
    CHECK(!ended);
    CHECK_RC(tolldns_epoch_has_ended(3, 100, 400, &ended), TOLLDNS_RESULT_OK);
    CHECK(ended);

    /* penalize_miner(A, 5000): correctness 5000 and raw score 3,232,000. */
    CHECK_RC(tolldns_miner_stats_penalize(&s, 5000, &s), TOLLDNS_RESULT_OK);
    CHECK(s.correctness_score == 5000);
    s = stats(1000, 10, 101, 9000, 10000, 4000);
    CHECK_RC(tolldns_score_miner(&cfg, 1, &s, &score), TOLLDNS_RESULT_OK);
    CHECK_RC(tolldns_miner_score_penalize(&score, 5000, &score), TOLLDNS_RESULT_OK);
    CHECK(u128_eq(score.raw_score, 3232000) && u128_eq(score.normalized_score, 1271));
    CHECK(score.component == 8080);
}

static void test_errors(void) {
    tolldns_score_config cfg = worked_config();
    tolldns_miner_stats s = stats(1000, 10, 101, 9000, 10000, 4000);
    tolldns_miner_score score;
    tolldns_u128 v = u128(42);
    tolldns_u128 weights[2];
    uint64_t rewards[3] = {7, 7, 7};
    tolldns_allocation totals;
    uint16_t c16 = 77;
    uint64_t u = 77;

    memset(&score, 0xAB, sizeof score);
    weights[0] = u128(1);
    weights[1] = u128(2);
    memset(&totals, 0xCD, sizeof totals);

    cfg.alpha_uptime_bps = 999;
    CHECK_RC(tolldns_score_config_validate(&cfg), TOLLDNS_RESULT_SCORE_INVALID_WEIGHTS);
    CHECK_RC(tolldns_score_miner(&cfg, 1, &s, &score), TOLLDNS_RESULT_SCORE_INVALID_WEIGHTS);
    CHECK(score.component == 0xABAB); /* untouched */
    cfg = worked_config();
    cfg.epoch_len_slots = 0;
    CHECK_RC(tolldns_score_config_validate(&cfg), TOLLDNS_RESULT_SCORE_ZERO_EPOCH_LENGTH);
    cfg = worked_config();
    cfg.diversity_target = 0;
    CHECK_RC(tolldns_score_config_validate(&cfg), TOLLDNS_RESULT_SCORE_ZERO_DIVERSITY_TARGET);
    cfg = worked_config();
    cfg.min_miner_stake_weight = 5000;
    CHECK_RC(tolldns_miner_stats_validate(&s, &cfg), TOLLDNS_RESULT_SCORE_INSUFFICIENT_STAKE);
    cfg = worked_config();
    s.uptime_score = 10001;
    CHECK_RC(tolldns_score_miner(&cfg, 1, &s, &score), TOLLDNS_RESULT_SCORE_OUT_OF_RANGE);
    s.uptime_score = 9000;
    s.dominance_share_bps = 10001;
    CHECK_RC(tolldns_miner_stats_validate(&s, &cfg), TOLLDNS_RESULT_SCORE_BPS_OUT_OF_RANGE);
    CHECK_RC(tolldns_penalize(v, 10001, &v), TOLLDNS_RESULT_SCORE_BPS_OUT_OF_RANGE);
    CHECK(u128_eq(v, 42));
    CHECK_RC(tolldns_raw_score(1, 10001, &v), TOLLDNS_RESULT_SCORE_OUT_OF_RANGE);
    CHECK_RC(tolldns_timeliness_component(0, 0, 0, &c16), TOLLDNS_RESULT_SCORE_ZERO_EPOCH_LENGTH);
    CHECK_RC(tolldns_diversity_component(1, 0, &c16), TOLLDNS_RESULT_SCORE_ZERO_DIVERSITY_TARGET);
    CHECK(c16 == 77);
    CHECK_RC(tolldns_reward_share(1, u128(2), u128(1), 1, &u),
             TOLLDNS_RESULT_SCORE_NORMALIZED_ABOVE_TOTAL);
    CHECK_RC(tolldns_epoch_end_slot(UINT64_MAX, 2, &u), TOLLDNS_RESULT_SCORE_OVERFLOW);
    CHECK(u == 77);
    CHECK_RC(tolldns_allocate(90, weights, 2, 40, rewards, 3, &totals),
             TOLLDNS_RESULT_SCORE_LENGTH_MISMATCH);
    CHECK(rewards[0] == 7 && rewards[1] == 7 && rewards[2] == 7);
    CHECK(totals.allocated == 0xCDCDCDCDCDCDCDCDull);

    /* NULL checks. */
    CHECK_RC(tolldns_score_config_validate(NULL), TOLLDNS_RESULT_NULL_PARAMETER);
    CHECK_RC(tolldns_score_miner(NULL, 1, &s, &score), TOLLDNS_RESULT_NULL_PARAMETER);
    CHECK_RC(tolldns_score_miner(&cfg, 1, NULL, &score), TOLLDNS_RESULT_NULL_PARAMETER);
    CHECK_RC(tolldns_score_miner(&cfg, 1, &s, NULL), TOLLDNS_RESULT_NULL_PARAMETER);
    CHECK_RC(tolldns_isqrt(v, NULL), TOLLDNS_RESULT_NULL_PARAMETER);
    CHECK_RC(tolldns_allocate(90, NULL, 2, 40, rewards, 2, &totals),
             TOLLDNS_RESULT_NULL_PARAMETER);
    CHECK_RC(tolldns_allocate(90, weights, 2, 40, NULL, 2, &totals),
             TOLLDNS_RESULT_NULL_PARAMETER);
    CHECK_RC(tolldns_allocate(90, weights, 2, 40, rewards, 2, NULL),
             TOLLDNS_RESULT_NULL_PARAMETER);
    /* No miners: the whole pool stays in the vault. */
    CHECK_RC(tolldns_allocate(90, NULL, 0, 40, NULL, 0, &totals), TOLLDNS_RESULT_OK);
    CHECK(totals.allocated == 0 && totals.unallocated == 90);
}

static int score_eq(const tolldns_miner_score *a, const tolldns_miner_score *b) {
    return a->timeliness_component == b->timeliness_component &&
           a->diversity_component == b->diversity_component && a->component == b->component &&
           a->raw_score.lo == b->raw_score.lo && a->raw_score.hi == b->raw_score.hi &&
           a->normalized_score.lo == b->normalized_score.lo &&
           a->normalized_score.hi == b->normalized_score.hi;
}

static int stats_eq(const tolldns_miner_stats *a, const tolldns_miner_stats *b) {
    return a->stake_weight == b->stake_weight && a->unique_name_count == b->unique_name_count &&
           a->first_submit_slot == b->first_submit_slot && a->uptime_score == b->uptime_score &&
           a->correctness_score == b->correctness_score &&
           a->dominance_share_bps == b->dominance_share_bps;
}

static int u128_same(tolldns_u128 a, tolldns_u128 b) { return a.lo == b.lo && a.hi == b.hi; }

/* Every case of test-vectors/score.json, through the C API (tables in vectors.h). */
static void test_json_vectors(void) {
    size_t i, j;
    for (i = 0; i < SCORE_CONFIG_VALIDATE_COUNT; i++) {
        CHECK_RC(tolldns_score_config_validate(&SCORE_CONFIG_VALIDATE[i].cfg),
                 SCORE_CONFIG_VALIDATE[i].expected);
    }
    for (i = 0; i < SCORE_STATS_VALIDATE_COUNT; i++) {
        const tv_score_stats_validate *c = &SCORE_STATS_VALIDATE[i];
        CHECK_RC(tolldns_miner_stats_validate(&c->stats, &c->cfg), c->expected);
    }
    for (i = 0; i < SCORE_MINER_COUNT; i++) {
        const tv_score_miner *c = &SCORE_MINER[i];
        tolldns_miner_score out;
        memset(&out, 0, sizeof out);
        CHECK_RC(tolldns_score_miner(&c->cfg, c->epoch_id, &c->stats, &out), c->expected);
        if (c->expected == TOLLDNS_RESULT_OK) {
            CHECK(score_eq(&out, &c->score));
        }
    }
    for (i = 0; i < SCORE_PENALIZE_MINER_COUNT; i++) {
        const tv_score_penalize_miner *c = &SCORE_PENALIZE_MINER[i];
        tolldns_miner_stats stats_out = c->stats;
        tolldns_miner_score score_out = c->score;
        CHECK_RC(tolldns_miner_stats_penalize(&c->stats, c->penalty_bps, &stats_out), c->expected);
        CHECK_RC(tolldns_miner_score_penalize(&c->score, c->penalty_bps, &score_out), c->expected);
        if (c->expected == TOLLDNS_RESULT_OK) {
            CHECK(stats_eq(&stats_out, &c->expected_stats));
            CHECK(score_eq(&score_out, &c->expected_score));
        }
    }
    for (i = 0; i < SCORE_TIMELINESS_COUNT; i++) {
        const tv_score_timeliness *c = &SCORE_TIMELINESS[i];
        uint16_t out = 0;
        CHECK_RC(tolldns_timeliness_component(c->epoch_start_slot, c->epoch_len_slots,
                                              c->first_submit_slot, &out),
                 c->expected);
        CHECK(out == c->result);
    }
    for (i = 0; i < SCORE_DIVERSITY_COUNT; i++) {
        const tv_score_diversity *c = &SCORE_DIVERSITY[i];
        uint16_t out = 0;
        CHECK_RC(tolldns_diversity_component(c->unique_name_count, c->diversity_target, &out),
                 c->expected);
        CHECK(out == c->result);
    }
    for (i = 0; i < SCORE_WEIGHTED_COUNT; i++) {
        const tv_score_weighted *c = &SCORE_WEIGHTED[i];
        uint16_t out = 0;
        CHECK_RC(tolldns_weighted_component(&c->cfg, c->correctness_score, c->uptime_score,
                                            c->diversity_component, c->timeliness_component, &out),
                 c->expected);
        CHECK(out == c->result);
    }
    for (i = 0; i < SCORE_RAW_COUNT; i++) {
        const tv_score_raw *c = &SCORE_RAW[i];
        tolldns_u128 out = u128(0);
        CHECK_RC(tolldns_raw_score(c->stake_weight, c->component, &out), c->expected);
        CHECK(u128_same(out, c->result));
    }
    for (i = 0; i < SCORE_CENTRALIZATION_COUNT; i++) {
        const tv_score_centralization *c = &SCORE_CENTRALIZATION[i];
        tolldns_u128 out = u128(0);
        CHECK_RC(tolldns_apply_centralization_penalty(c->raw_score, c->dominance_share_bps,
                                                      c->dominance_threshold_bps,
                                                      c->centralization_penalty_bps, &out),
                 c->expected);
        CHECK(u128_same(out, c->result));
    }
    for (i = 0; i < SCORE_PENALIZE_COUNT; i++) {
        const tv_score_penalize *c = &SCORE_PENALIZE[i];
        tolldns_u128 out = u128(0);
        CHECK_RC(tolldns_penalize(c->value, c->penalty_bps, &out), c->expected);
        CHECK(u128_same(out, c->result));
    }
    for (i = 0; i < SCORE_ISQRT_COUNT; i++) {
        tolldns_u128 out = u128(0);
        CHECK_RC(tolldns_isqrt(SCORE_ISQRT[i].n, &out), SCORE_ISQRT[i].expected);
        CHECK(u128_same(out, SCORE_ISQRT[i].result));
    }
    for (i = 0; i < SCORE_REWARD_SHARE_COUNT; i++) {
        const tv_score_reward_share *c = &SCORE_REWARD_SHARE[i];
        uint64_t out = 0;
        CHECK_RC(tolldns_reward_share(c->pool, c->normalized, c->total_normalized, c->cap, &out),
                 c->expected);
        CHECK(out == c->result);
    }
    for (i = 0; i < SCORE_EPOCH_START_COUNT; i++) {
        const tv_score_epoch_start *c = &SCORE_EPOCH_START[i];
        uint64_t out = 0;
        CHECK_RC(tolldns_epoch_start_slot(c->epoch_id, c->epoch_len_slots, &out), c->expected);
        CHECK(out == c->result);
    }
    for (i = 0; i < SCORE_EPOCH_END_COUNT; i++) {
        const tv_score_epoch_end *c = &SCORE_EPOCH_END[i];
        uint64_t out = 0;
        CHECK_RC(tolldns_epoch_end_slot(c->epoch_id, c->epoch_len_slots, &out), c->expected);
        CHECK(out == c->result);
    }
    for (i = 0; i < SCORE_EPOCH_HAS_ENDED_COUNT; i++) {
        const tv_score_epoch_has_ended *c = &SCORE_EPOCH_HAS_ENDED[i];
        bool out = false;
        CHECK_RC(tolldns_epoch_has_ended(c->epoch_id, c->epoch_len_slots, c->current_slot, &out),
                 c->expected);
        CHECK((uint64_t)out == c->result);
    }
    for (i = 0; i < SCORE_ALLOCATE_COUNT; i++) {
        const tv_score_allocate *c = &SCORE_ALLOCATE[i];
        uint64_t rewards[SCORE_ALLOCATE_MAX_MINERS];
        tolldns_allocation totals;
        memset(rewards, 0xEE, sizeof rewards);
        memset(&totals, 0, sizeof totals);
        CHECK_RC(tolldns_allocate(c->pool, c->normalized_len == 0 ? NULL : c->normalized,
                                  c->normalized_len, c->cap, c->out_len == 0 ? NULL : rewards,
                                  c->out_len, &totals),
                 c->expected);
        if (c->expected == TOLLDNS_RESULT_OK) {
            for (j = 0; j < c->out_len; j++) {
                CHECK(rewards[j] == c->rewards[j]);
            }
            CHECK(u128_same(totals.total_normalized, c->total_normalized));
            CHECK(totals.allocated == c->allocated && totals.unallocated == c->unallocated);
        } else {
            CHECK(rewards[0] == 0xEEEEEEEEEEEEEEEEull); /* untouched */
        }
    }
}

int main(void) {
    test_json_vectors();
    test_worked_miners();
    test_formulas();
    test_errors();
    return check_summary("score");
}
