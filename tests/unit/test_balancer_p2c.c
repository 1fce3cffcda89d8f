/*
 * Unit tests of p2c-peak-ewma: two distinct random candidates from a
 * seeded RNG (deterministic), the cheaper one wins, the peak-sensitive
 * time-decayed cost (jumps up at once, decays toward lower samples with
 * w = exp(-dt / tau)), fading toward zero while unobserved, cold start.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "balancer.h"

#define MS 1000u

#define assert_near(got, want, tol)                                            \
    do {                                                                       \
        double g_ = (got), w_ = (want);                                        \
        if (!(fabs(g_ - w_) <= (tol)))                                         \
            fail_msg("%s = %.6f, expected %.6f +- %.6f", #got, g_, w_,         \
                     (double)(tol));                                           \
    } while (0)

static struct balancer *mk(size_t n, uint64_t seed)
{
    struct balancer_params p;
    struct balancer *b;
    balancer_params_default(&p);
    p.seed = seed;
    b = balancer_create("p2c-peak-ewma", &p, n, NULL);
    assert_non_null(b);
    return b;
}

static void test_distinct_and_cheaper(void **st)
{
    struct balancer *b = mk(3, 1234);
    const uint64_t lat[3] = {1 * MS, 2 * MS, 100 * MS};
    unsigned count[3] = {0}, x;
    (void)st;
    /* Cold start: a cold idle backend costs 0, so within a few picks each
     * has been tried. */
    for (int k = 0; k < 20; k++) {
        int i = balancer_pick(b, 0, 0, &x);
        assert_true(i >= 0);
        balancer_observe(b, (size_t)i, lat[i], BALANCER_OK, x, 0);
    }
    for (size_t i = 0; i < 3; i++)
        assert_true(balancer_score(b, i, 0) > 0.0);
    /* The slowest can only win against itself: never, if the two
     * candidates are distinct.  The fastest wins 2 pairs out of 3. */
    for (int k = 0; k < 3000; k++) {
        int i = balancer_pick(b, 0, 0, &x);
        count[i]++;
        balancer_cancel(b, (size_t)i);
    }
    assert_int_equal(count[2], 0);
    assert_in_range(count[0], 1850, 2150);
    assert_in_range(count[1], 850, 1150);
    balancer_destroy(b);
}

static void test_seeded_determinism(void **st)
{
    struct balancer *a = mk(5, 99), *c = mk(5, 99), *d = mk(5, 100);
    int same = 1, differ = 0;
    (void)st;
    for (int k = 0; k < 200; k++) {
        int ia = balancer_pick(a, 0, 0, NULL);
        int ic = balancer_pick(c, 0, 0, NULL);
        int id = balancer_pick(d, 0, 0, NULL);
        same &= ia == ic;
        differ |= ia != id;
        balancer_observe(a, (size_t)ia, (uint64_t)(ia + 1) * MS, BALANCER_OK, 0,
                         0);
        balancer_observe(c, (size_t)ic, (uint64_t)(ic + 1) * MS, BALANCER_OK, 0,
                         0);
        balancer_observe(d, (size_t)id, (uint64_t)(id + 1) * MS, BALANCER_OK, 0,
                         0);
    }
    assert_true(same);
    assert_true(differ);
    balancer_destroy(a);
    balancer_destroy(c);
    balancer_destroy(d);
}

static void test_peak_and_decay(void **st)
{
    struct balancer *b = mk(1, 1);
    const double tau = 10000 * MS; /* default peak_tau_ms */
    double e1 = exp(-1.0);
    (void)st;
    balancer_pick(b, 0, 0, NULL);
    balancer_observe(b, 0, 10 * MS, BALANCER_OK, 0, 0);
    assert_near(balancer_score(b, 0, 0), 10.0, 1e-9);
    /* A peak is taken at once. */
    balancer_pick(b, 0, 1 * MS, NULL);
    balancer_observe(b, 0, 50 * MS, BALANCER_OK, 0, 1 * MS);
    assert_near(balancer_score(b, 0, 1 * MS), 50.0, 1e-9);
    /* A lower sample one tau later: cost = 50 w + 10 (1 - w), w = e^-1. */
    balancer_pick(b, 0, 1 * MS + (uint64_t)tau, NULL);
    balancer_observe(b, 0, 10 * MS, BALANCER_OK, 0, 1 * MS + (uint64_t)tau);
    assert_near(balancer_score(b, 0, 1 * MS + (uint64_t)tau),
                50.0 * e1 + 10.0 * (1 - e1), 1e-9);
    /* Unobserved, it fades toward zero with the same tau; in flight
     * multiplies it. */
    {
        double c = 50.0 * e1 + 10.0 * (1 - e1);
        assert_near(balancer_score(b, 0, 1 * MS + 2 * (uint64_t)tau), c * e1,
                    1e-9);
        /* (Picked just now: a request out for longer would bound the cost
         * from below, see test_stall_floor.) */
        balancer_pick(b, 0, 1 * MS + 2 * (uint64_t)tau, NULL);
        assert_near(balancer_score(b, 0, 1 * MS + 2 * (uint64_t)tau),
                    2 * c * e1, 1e-9);
    }
    balancer_destroy(b);
}

/* A backend that stops answering produces no sample: what is in flight
 * bounds its cost from below (balancer_stall_floor_us), so the other one
 * gets the traffic within a few of its latencies. */
static void test_stall_floor(void **st)
{
    struct balancer *b = mk(2, 1);
    unsigned x;
    uint64_t now = 0;
    int sent_to_0 = 0;
    (void)st;
    /* Both learn 2 ms. */
    for (int k = 0; k < 4; k++) {
        for (size_t i = 0; i < 2; i++) {
            int idx = balancer_pick(b, (uint64_t)1 << (1 - i), now, &x);
            assert_int_equal(idx, (int)i);
            balancer_observe(b, i, 2 * MS, BALANCER_OK, x, now + 2 * MS);
        }
        now += 2 * MS;
    }
    /* Backend 0 freezes with 8 requests out; backend 1 keeps answering. */
    for (int k = 0; k < 8; k++)
        balancer_pick(b, 2, now, &x);
    assert_true(balancer_score(b, 0, now + 1 * MS) < 20.0);
    /* After 2 ms without a completion, 8 out: at least 8 * 2 / 4 = 4 ms. */
    assert_true(balancer_score(b, 0, now + 2 * MS) >= 4.0 * 9);
    for (int k = 0; k < 50; k++) {
        uint64_t t = now + 2 * MS + (uint64_t)k * 100;
        int idx = balancer_pick(b, 0, t, &x);
        if (idx == 0)
            sent_to_0++;
        else
            balancer_observe(b, 1, 2 * MS, BALANCER_OK, x, t);
    }
    assert_int_equal(sent_to_0, 0);
    balancer_destroy(b);
}

static void test_cold_first(void **st)
{
    struct balancer *b = mk(2, 5);
    unsigned x = 0;
    (void)st;
    balancer_pick(b, 0x2, 0, &x); /* backend 0, via tried */
    balancer_observe(b, 0, 1 * MS, BALANCER_OK, x, 0);
    /* Backend 1 is cold and idle: it is preferred to a 1 ms one... */
    assert_int_equal(balancer_pick(b, 0, 0, &x), 1);
    /* ...but a cold backend with a request out costs a penalty. */
    for (int k = 0; k < 10; k++) {
        assert_int_equal(balancer_pick(b, 0, 0, &x), 0);
        balancer_cancel(b, 0);
    }
    balancer_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_distinct_and_cheaper),
        cmocka_unit_test(test_seeded_determinism),
        cmocka_unit_test(test_peak_and_decay),
        cmocka_unit_test(test_cold_first),
        cmocka_unit_test(test_stall_floor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
