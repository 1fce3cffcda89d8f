/*
 * Unit tests of the generic balancer: the registry, round-robin (strict and
 * smooth weighted), least-conn, in-flight accounting, the tried bitmap,
 * penalties, passive ejection with back-off and the probe, active health
 * and the fail-open rule.  Time is a fake clock passed in microseconds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "balancer.h"

#define MS 1000u

static struct balancer *mk(const char *mode, size_t n, const unsigned *w)
{
    struct balancer_params p;
    struct balancer *b;
    balancer_params_default(&p);
    b = balancer_create(mode, &p, n, w);
    assert_non_null(b);
    return b;
}

/* Picks and immediately completes a request: returns the index. */
static int pick_done(struct balancer *b, uint64_t now)
{
    unsigned x;
    int i = balancer_pick(b, 0, now, &x);
    assert_true(i >= 0);
    balancer_observe(b, (size_t)i, 1 * MS, BALANCER_OK, x, now);
    return i;
}

static void fail_n(struct balancer *b, size_t idx, unsigned n, uint64_t now,
                   enum balancer_outcome o)
{
    for (unsigned k = 0; k < n; k++)
        balancer_observe(b, idx, 1 * MS, o, 0, now);
}

static void slow_params(struct balancer_params *p)
{
    balancer_params_default(p);
    p->max_fails = 1;
    p->fail_timeout_ms = 100;
    p->slow_start_ms = 1000;
}

/* Slow start: a backend back from ejection is offered a share of the picks
 * that grows over slow_start_ms, not an equal share at once. */
static void test_slow_start(void **st)
{
    for (int on = 0; on <= 1; on++) {
        struct balancer_params p;
        struct balancer *b;
        uint64_t now = 0;
        unsigned x, early = 0, late = 0;
        (void)st;
        slow_params(&p);
        if (!on)
            p.slow_start_ms = 0;
        b = balancer_create("adaptive_ewma", &p, 2, NULL);
        assert_non_null(b);
        for (int k = 0; k < 20; k++)
            pick_done(b, now += 1 * MS);
        /* Backend 0 fails once: ejected for 100 ms, then probed. */
        assert_int_equal(balancer_pick(b, 2, now, &x), 0);
        balancer_observe(b, 0, 1 * MS, BALANCER_CONNECT_ERR, x, now);
        assert_int_equal(balancer_backend(b, 0)->health, BALANCER_EJECTED);
        now += 101 * MS;
        assert_int_equal(pick_done(b, now), 0); /* the probe */
        assert_int_equal(balancer_backend(b, 0)->health, BALANCER_UP);
        assert_int_equal(balancer_backend(b, 0)->warming, on);
        /* The first tenth of the ramp, then after it. */
        for (int k = 0; k < 400; k++)
            early += pick_done(b, now += 250) == 0;
        now += 1000 * MS;
        for (int k = 0; k < 400; k++)
            late += pick_done(b, now += 250) == 0;
        if (on) {
            assert_true(early < 400 / 5); /* 5% .. 10%, not half */
            assert_false(balancer_backend(b, 0)->warming);
        } else {
            assert_true(early > 400 / 3);
        }
        assert_true(late > 400 / 3);
        balancer_destroy(b);
    }
}

/* slow start also follows an active health check's DOWN -> UP and the
 * explicit call for a backend new after a reload; 0 turns it off. */
static void test_slow_start_triggers(void **st)
{
    struct balancer_params p;
    struct balancer *b;
    (void)st;
    slow_params(&p);
    b = balancer_create("least-conn", &p, 2, NULL);
    assert_non_null(b);
    assert_false(balancer_backend(b, 1)->warming); /* a fresh set: no */
    balancer_set_health(b, 1, false, 10 * MS);
    balancer_set_health(b, 1, true, 20 * MS);
    assert_true(balancer_backend(b, 1)->warming);
    balancer_slow_start(b, 0, 30 * MS);
    assert_true(balancer_backend(b, 0)->warming);
    /* Both warming: nothing is held back (a backend that is not warming
     * must be eligible for one to be skipped). */
    for (int k = 0; k < 10; k++)
        pick_done(b, 40 * MS);
    balancer_destroy(b);
    p.slow_start_ms = 0;
    b = balancer_create("least-conn", &p, 2, NULL);
    assert_non_null(b);
    balancer_slow_start(b, 0, 30 * MS);
    assert_false(balancer_backend(b, 0)->warming);
    balancer_destroy(b);
}

static void outlier_params(struct balancer_params *p)
{
    balancer_params_default(p);
    p->max_fails = 0; /* no consecutive-failure ejection at all */
    p->outlier_window_ms = 1000;
}

/* Outlier ejection: backend 0 fails one request in three, never twice in a
 * row; the window's end ejects it; fail-open still reaches it. */
static void test_outlier_ejection(void **st)
{
    struct balancer_params p;
    struct balancer *b;
    char why[96];
    unsigned x;
    uint64_t now = 1 * MS;
    (void)st;
    outlier_params(&p);
    b = balancer_create("round-robin", &p, 3, NULL);
    assert_non_null(b);
    for (int k = 0; k < 110; k++) {
        int i = balancer_pick(b, 0, now += 10 * MS, &x);
        bool bad = i == 0 && (k / 3) % 3 == 0;
        balancer_observe(b, (size_t)i, 1 * MS,
                         bad ? BALANCER_HTTP_ERROR : BALANCER_OK, x, now);
        if (now < 1001 * MS)
            assert_int_equal(balancer_backend(b, 0)->health, BALANCER_UP);
    }
    assert_int_equal(balancer_backend(b, 0)->health, BALANCER_EJECTED);
    assert_int_equal(balancer_backend(b, 1)->health, BALANCER_UP);
    assert_non_null(strstr(balancer_reason(b, 0, why, sizeof(why)), "outlier"));
    /* Fail-open is unchanged: with the others tried, 0 still answers. */
    assert_int_equal(balancer_pick(b, 6, now, &x), 0);
    balancer_cancel(b, 0);
    balancer_destroy(b);
}

/* Below outlier_min_fail_pct, or everyone failing alike, is no outlier;
 * and never more than half of the backends go out. */
static void test_outlier_not_ejected(void **st)
{
    struct balancer_params p;
    struct balancer *b;
    unsigned x;
    uint64_t now = 1 * MS;
    (void)st;
    outlier_params(&p);
    b = balancer_create("round-robin", &p, 2, NULL);
    assert_non_null(b);
    /* 5% on backend 0 only: below 10%. */
    for (int k = 0; k < 400; k++) {
        int i = balancer_pick(b, 0, now += 5 * MS, &x);
        bool bad = i == 0 && k % 40 == 0;
        balancer_observe(b, (size_t)i, 1 * MS,
                         bad ? BALANCER_HTTP_ERROR : BALANCER_OK, x, now);
    }
    assert_int_equal(balancer_backend(b, 0)->health, BALANCER_UP);
    /* 50% on both: not far above the other. */
    for (int k = 0; k < 400; k++) {
        int i = balancer_pick(b, 0, now += 5 * MS, &x);
        balancer_observe(b, (size_t)i, 1 * MS,
                         k % 4 < 2 ? BALANCER_HTTP_ERROR : BALANCER_OK, x, now);
    }
    assert_int_equal(balancer_backend(b, 0)->health, BALANCER_UP);
    assert_int_equal(balancer_backend(b, 1)->health, BALANCER_UP);
    balancer_destroy(b);
}

static void test_registry(void **st)
{
    char names[256];
    (void)st;
    assert_string_equal(balancer_find("round-robin")->name, "round-robin");
    assert_string_equal(balancer_find("rr")->name, "round-robin");
    assert_string_equal(balancer_find("round_robin")->name, "round-robin");
    assert_string_equal(balancer_find("adaptive_sma")->name, "adaptive_sma");
    assert_string_equal(balancer_find("adaptive_ewma")->name, "adaptive_ewma");
    assert_string_equal(balancer_find("least_conn")->name, "least-conn");
    assert_string_equal(balancer_find("least-conn")->name, "least-conn");
    assert_string_equal(balancer_find("p2c")->name, "p2c-peak-ewma");
    assert_string_equal(balancer_find("P2C-Peak-EWMA")->name, "p2c-peak-ewma");
    assert_string_equal(balancer_find("Least_Connections")->name, "least-conn");
    assert_string_equal(balancer_find("adaptive-ewma")->name, "adaptive_ewma");
    assert_null(balancer_find("random"));
    assert_null(balancer_find("round-robi"));
    assert_null(balancer_find(NULL));
    assert_null(balancer_create("nope", NULL, 3, NULL));
    /* no backends yet (a pool of names before DNS answers): nothing to
     * pick until one is added */
    struct balancer *empty = balancer_create("rr", NULL, 0, NULL);
    assert_non_null(empty);
    assert_int_equal(balancer_pick(empty, 0, 0, NULL), -1);
    assert_int_equal(balancer_add(empty, 1, 0), 0);
    assert_int_equal(balancer_pick(empty, 0, 0, NULL), 0);
    balancer_destroy(empty);
    assert_null(balancer_create("rr", NULL, BALANCER_MAX_BACKENDS + 1, NULL));
    balancer_names(names, sizeof(names));
    assert_string_equal(names, "round-robin, adaptive_sma, adaptive_ewma, "
                               "least-conn, p2c-peak-ewma, hash, prequal");
    assert_int_equal(balancer_score_mode_parse("predicted"),
                     BALANCER_SCORE_PREDICTED);
    assert_int_equal(balancer_score_mode_parse("latency_x_inflight"),
                     BALANCER_SCORE_LATENCY_X_INFLIGHT);
    assert_int_equal(balancer_score_mode_parse("Fill"), BALANCER_SCORE_FILL);
    assert_int_equal(balancer_score_mode_parse("bogus"), -1);
    balancer_destroy(NULL);
}

static void test_rr_strict_order(void **st)
{
    struct balancer *b = mk("round-robin", 3, NULL);
    (void)st;
    for (int k = 0; k < 9; k++)
        assert_int_equal(pick_done(b, 0), k % 3);
    assert_string_equal(balancer_mode(b), "round-robin");
    assert_int_equal(balancer_count(b), 3);
    balancer_destroy(b);
}

static void test_rr_smooth_weighted(void **st)
{
    const unsigned w[] = {5, 1, 1};
    const char *want = "aabacaa"
                       "aabacaa"
                       "aabacaa";
    char got[32] = {0};
    struct balancer *b = mk("rr", 3, w);
    (void)st;
    for (size_t k = 0; k < strlen(want); k++)
        got[k] = (char)('a' + pick_done(b, 0));
    assert_string_equal(got, want);
    balancer_destroy(b);
}

static void test_rr_skips_ejected(void **st)
{
    struct balancer *b = mk("round-robin", 3, NULL);
    (void)st;
    fail_n(b, 1, 3, 0, BALANCER_CONNECT_ERR);
    assert_int_equal(balancer_backend(b, 1)->health, BALANCER_EJECTED);
    for (int k = 0; k < 6; k++)
        assert_int_equal(pick_done(b, 10 * MS), (k % 2) ? 2 : 0);
    balancer_destroy(b);
}

static void test_least_conn(void **st)
{
    const unsigned w[] = {1, 2, 1};
    struct balancer *b = mk("least-conn", 3, w);
    unsigned x;
    (void)st;
    /* All idle: rotation among ties. */
    assert_int_equal(pick_done(b, 0), 0);
    assert_int_equal(pick_done(b, 0), 1);
    assert_int_equal(pick_done(b, 0), 2);
    assert_int_equal(pick_done(b, 0), 0);
    /* Hold requests: weights count (0/1, 1/2, 0/1 -> 2 is next). */
    assert_int_equal(balancer_pick(b, 0, 0, &x), 1);
    assert_int_equal(balancer_pick(b, 0, 0, &x), 2);
    assert_int_equal(balancer_pick(b, 0, 0, &x), 0);
    /* 1/1, 1/2, 1/1: backend 1 has the lowest weighted load. */
    assert_int_equal(balancer_pick(b, 0, 0, &x), 1);
    assert_int_equal(x, 1);
    assert_true(balancer_score(b, 1, 0) == 1.0);
    balancer_destroy(b);
}

static void test_inflight_accounting(void **st)
{
    struct balancer *b = mk("least-conn", 2, NULL);
    unsigned x = 99;
    int i;
    (void)st;
    i = balancer_pick(b, 0, 0, &x);
    assert_int_equal(x, 0);
    assert_int_equal(balancer_backend(b, (size_t)i)->in_flight, 1);
    balancer_cancel(b, (size_t)i);
    assert_int_equal(balancer_backend(b, (size_t)i)->in_flight, 0);
    i = balancer_pick(b, 0, 0, NULL);
    assert_int_equal(balancer_backend(b, (size_t)i)->in_flight, 1);
    balancer_observe(b, (size_t)i, MS, BALANCER_OK, 0, 0);
    assert_int_equal(balancer_backend(b, (size_t)i)->in_flight, 0);
    /* Never below zero, and out-of-range indices are ignored. */
    balancer_cancel(b, (size_t)i);
    balancer_observe(b, 7, MS, BALANCER_OK, 0, 0);
    assert_int_equal(balancer_backend(b, (size_t)i)->in_flight, 0);
    assert_null(balancer_backend(b, 2));
    balancer_destroy(b);
}

static void test_tried_bitmap(void **st)
{
    struct balancer *b = mk("round-robin", 3, NULL);
    (void)st;
    for (int k = 0; k < 5; k++) {
        int i = balancer_pick(b, 0x1 | 0x4, 0, NULL);
        assert_int_equal(i, 1);
        balancer_cancel(b, 1);
    }
    assert_int_equal(balancer_pick(b, 0x7, 0, NULL), -1);
    /* Tried backends are excluded even from the fail-open choice. */
    fail_n(b, 0, 3, 0, BALANCER_TIMEOUT);
    assert_int_equal(balancer_pick(b, 0x2 | 0x4, 0, NULL), 0);
    balancer_destroy(b);
}

static void test_penalty_sample(void **st)
{
    struct balancer_params p;
    struct balancer *b;
    unsigned x;
    (void)st;
    balancer_params_default(&p);
    p.load_aware = false;
    p.max_fails = 0; /* keep it UP: only the estimate matters here */
    b = balancer_create("adaptive_ewma", &p, 2, NULL);
    assert_non_null(b);
    assert_int_equal(balancer_pick(b, 0, 0, &x), 0);
    assert_int_equal(balancer_pick(b, 0, 0, &x), 1);
    /* Backend 0 fails fast (1 ms), backend 1 answers in 40 ms. */
    balancer_observe(b, 0, 1 * MS, BALANCER_CONNECT_ERR, 0, 1 * MS);
    balancer_observe(b, 1, 40 * MS, BALANCER_OK, 0, 40 * MS);
    assert_true(balancer_score(b, 0, 40 * MS) >= 5000.0);
    assert_true(balancer_score(b, 1, 40 * MS) == 40.0);
    for (int k = 0; k < 10; k++)
        assert_int_equal(pick_done(b, 41 * MS), 1);
    /* A slow failure counts as its latency when above the penalty. */
    balancer_observe(b, 0, 9000 * MS, BALANCER_TIMEOUT, 0, 42 * MS);
    assert_true(balancer_score(b, 0, 42 * MS) >= 5000.0);
    assert_int_equal(balancer_backend(b, 0)->fail_total, 2);
    assert_int_equal(balancer_backend(b, 0)->health, BALANCER_UP);
    balancer_destroy(b);
}

static void test_ejection_threshold(void **st)
{
    struct balancer *b = mk("round-robin", 2, NULL);
    char buf[64];
    (void)st;
    fail_n(b, 0, 2, 0, BALANCER_CONNECT_ERR);
    balancer_observe(b, 0, MS, BALANCER_OK, 0, 0); /* resets the run */
    fail_n(b, 0, 2, 0, BALANCER_CONNECT_ERR);
    assert_int_equal(balancer_backend(b, 0)->health, BALANCER_UP);
    assert_string_equal(balancer_reason(b, 0, buf, sizeof(buf)), "");
    fail_n(b, 0, 1, 0, BALANCER_CONNECT_ERR);
    assert_int_equal(balancer_backend(b, 0)->health, BALANCER_EJECTED);
    assert_string_equal(balancer_reason(b, 0, buf, sizeof(buf)),
                        "ejected: 3 consecutive connect_error");
    /* More failures of older requests neither extend nor double it. */
    fail_n(b, 0, 5, 100 * MS, BALANCER_CONNECT_ERR);
    assert_int_equal(balancer_backend(b, 0)->ejections, 1);
    assert_int_equal(balancer_backend(b, 0)->ejected_until_us, 2000 * MS);
    balancer_destroy(b);
}

static void test_backoff_and_probe(void **st)
{
    struct balancer *b = mk("round-robin", 2, NULL);
    char buf[64];
    uint64_t t = 0;
    const uint64_t want[] = {2000, 4000, 8000, 16000, 30000, 30000};
    int i;
    (void)st;
    fail_n(b, 0, 3, t, BALANCER_CONNECT_ERR);
    for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
        const struct balancer_backend *be = balancer_backend(b, 0);
        assert_int_equal(be->health, BALANCER_EJECTED);
        assert_int_equal(be->ejected_until_us - t, want[k] * MS);
        /* Just before the expiry: only backend 1. */
        t = be->ejected_until_us - 1;
        for (int r = 0; r < 3; r++)
            assert_int_equal(pick_done(b, t), 1);
        /* At the expiry: exactly one probe goes to 0, the rest to 1. */
        t++;
        i = balancer_pick(b, 0, t, NULL);
        assert_int_equal(i, 0);
        assert_int_equal(be->health, BALANCER_PROBING);
        assert_string_equal(balancer_reason(b, 0, buf, sizeof(buf)), "probing");
        for (int r = 0; r < 5; r++)
            assert_int_equal(pick_done(b, t), 1);
        /* The probe fails: ejected again, for twice as long. */
        balancer_observe(b, 0, MS, BALANCER_TIMEOUT, 0, t);
    }
    /* Now a probe succeeds: UP again, back-off reset. */
    t = balancer_backend(b, 0)->ejected_until_us;
    assert_int_equal(balancer_pick(b, 0, t, NULL), 0);
    balancer_observe(b, 0, MS, BALANCER_OK, 0, t);
    assert_int_equal(balancer_backend(b, 0)->health, BALANCER_UP);
    assert_int_equal(balancer_backend(b, 0)->ejections, 0);
    fail_n(b, 0, 3, t, BALANCER_HTTP_ERROR);
    assert_int_equal(balancer_backend(b, 0)->ejected_until_us - t, 2000 * MS);
    balancer_destroy(b);
}

static void test_cancelled_probe(void **st)
{
    struct balancer *b = mk("round-robin", 2, NULL);
    uint64_t t = 2000 * MS;
    (void)st;
    fail_n(b, 0, 3, 0, BALANCER_RESET);
    assert_int_equal(balancer_pick(b, 0, t, NULL), 0);
    assert_int_equal(balancer_pick(b, 0, t, NULL), 1);
    balancer_cancel(b, 0); /* the probe never reached the backend */
    assert_int_equal(balancer_pick(b, 0, t, NULL), 0);
    assert_true(balancer_backend(b, 0)->probe_in_flight);
    balancer_destroy(b);
}

static void test_fail_open(void **st)
{
    struct balancer *b = mk("adaptive_ewma", 3, NULL);
    unsigned x;
    (void)st;
    fail_n(b, 0, 3, 0, BALANCER_CONNECT_ERR);        /* until 2.0 s */
    fail_n(b, 1, 3, 500 * MS, BALANCER_CONNECT_ERR); /* until 2.5 s */
    fail_n(b, 2, 3, 200 * MS, BALANCER_CONNECT_ERR); /* until 2.2 s */
    /* All ejected: fail open to the one whose ejection ends soonest. */
    assert_int_equal(balancer_pick(b, 0, 1000 * MS, &x), 0);
    assert_int_equal(balancer_pick(b, 1, 1000 * MS, &x), 2);
    assert_int_equal(balancer_pick(b, 1 | 4, 1000 * MS, &x), 1);
    assert_int_equal(balancer_pick(b, 7, 1000 * MS, &x), -1);
    /* A success during ejection does not end it (the probe does). */
    balancer_observe(b, 0, MS, BALANCER_OK, 0, 1000 * MS);
    assert_int_equal(balancer_backend(b, 0)->health, BALANCER_EJECTED);
    /* DOWN ranks after ejected. */
    balancer_set_health(b, 0, false, 1000 * MS);
    assert_int_equal(balancer_pick(b, 0, 1000 * MS, &x), 2);
    balancer_destroy(b);
}

static void test_active_health(void **st)
{
    struct balancer *b = mk("round-robin", 2, NULL);
    char buf[64];
    (void)st;
    balancer_set_health(b, 1, false, 0);
    assert_int_equal(balancer_backend(b, 1)->health, BALANCER_DOWN);
    assert_string_equal(balancer_reason(b, 1, buf, sizeof(buf)),
                        "health check failed");
    for (int k = 0; k < 4; k++)
        assert_int_equal(pick_done(b, 0), 0);
    /* Successes do not lift DOWN; only the health check does. */
    balancer_observe(b, 1, MS, BALANCER_OK, 0, 0);
    assert_int_equal(balancer_backend(b, 1)->health, BALANCER_DOWN);
    balancer_set_health(b, 1, true, 0);
    assert_int_equal(balancer_backend(b, 1)->health, BALANCER_UP);
    assert_int_not_equal(pick_done(b, 0), pick_done(b, 0));
    /* Both down: fail open rather than refuse. */
    balancer_set_health(b, 0, false, 0);
    balancer_set_health(b, 1, false, 0);
    assert_true(balancer_pick(b, 0, 0, NULL) >= 0);
    balancer_destroy(b);
}

static void test_strings(void **st)
{
    (void)st;
    assert_string_equal(balancer_outcome_str(BALANCER_CONNECT_ERR),
                        "connect_error");
    assert_string_equal(balancer_outcome_str(BALANCER_HTTP_ERROR),
                        "http_error");
    assert_string_equal(balancer_health_str(BALANCER_PROBING), "probing");
    assert_string_equal(balancer_score_mode_str(BALANCER_SCORE_PREDICTED),
                        "predicted");
    assert_string_equal(balancer_score_mode_str(BALANCER_SCORE_FILL), "fill");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_rr_strict_order),
        cmocka_unit_test(test_rr_smooth_weighted),
        cmocka_unit_test(test_rr_skips_ejected),
        cmocka_unit_test(test_least_conn),
        cmocka_unit_test(test_inflight_accounting),
        cmocka_unit_test(test_tried_bitmap),
        cmocka_unit_test(test_penalty_sample),
        cmocka_unit_test(test_ejection_threshold),
        cmocka_unit_test(test_backoff_and_probe),
        cmocka_unit_test(test_cancelled_probe),
        cmocka_unit_test(test_fail_open),
        cmocka_unit_test(test_active_health),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_slow_start),
        cmocka_unit_test(test_slow_start_triggers),
        cmocka_unit_test(test_outlier_ejection),
        cmocka_unit_test(test_outlier_not_ejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
