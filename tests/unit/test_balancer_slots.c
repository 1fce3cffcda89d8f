/*
 * Unit tests of the balancer's stable slots and administrative states: a
 * backend's index never moves, a removed one is never picked and its slot is
 * reused only once idle, weights change in place, drain and maint are never
 * picked (not even failed open to), and every policy copes with a count
 * that grows at run time.  Time is a fake clock in microseconds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "balancer.h"

#define MS 1000u

static const char *const modes[] = {"round-robin",   "adaptive_sma",
                                    "adaptive_ewma", "least-conn",
                                    "p2c-peak-ewma", "hash"};
#define NMODES (sizeof(modes) / sizeof(modes[0]))

static struct balancer *mk(const char *mode, size_t n, const unsigned *w)
{
    struct balancer_params p;
    struct balancer *b;
    balancer_params_default(&p);
    b = balancer_create(mode, &p, n, w);
    assert_non_null(b);
    return b;
}

/* Picks and completes `k` requests; counts the picks per index into hits. */
static void run(struct balancer *b, unsigned k, uint64_t *now,
                unsigned hits[BALANCER_MAX_BACKENDS])
{
    for (unsigned j = 0; j < k; j++) {
        unsigned x;
        int i = balancer_pick(b, 0, *now, &x);
        assert_true(i >= 0 && (size_t)i < balancer_count(b));
        hits[i]++;
        *now += MS;
        balancer_observe(b, (size_t)i, 1 * MS, BALANCER_OK, x, *now);
    }
}

static void test_remove_keeps_indices(void **st)
{
    (void)st;
    for (size_t m = 0; m < NMODES; m++) {
        struct balancer *b = mk(modes[m], 3, NULL);
        unsigned hits[BALANCER_MAX_BACKENDS] = {0};
        uint64_t now = 1000 * MS;
        assert_int_equal(balancer_remove(b, 1), 0);
        assert_int_equal(balancer_remove(b, 1), -1); /* already gone */
        assert_false(balancer_live(b, 1));
        assert_true(balancer_live(b, 0) && balancer_live(b, 2));
        assert_int_equal(balancer_count(b), 3);
        run(b, 300, &now, hits);
        assert_int_equal(hits[1], 0);
        assert_true(hits[0] > 0 && hits[2] > 0);
        balancer_destroy(b);
    }
}

static void test_add_reuses_idle_slot(void **st)
{
    (void)st;
    struct balancer *b = mk("round-robin", 3, NULL);
    unsigned x;
    /* a request in flight on 1 (the other two tried), then 1 is removed */
    assert_int_equal(balancer_pick(b, 1 | 4, 0, &x), 1);
    assert_int_equal(balancer_remove(b, 1), 0);
    /* not idle yet: a new backend takes a new slot */
    assert_int_equal(balancer_add(b, 2, 0), 3);
    assert_int_equal(balancer_count(b), 4);
    assert_int_equal(balancer_backend(b, 3)->weight, 2);
    balancer_observe(b, 1, MS, BALANCER_OK, x, 0); /* it finishes */
    assert_int_equal(balancer_backend(b, 1)->in_flight, 0);
    assert_int_equal(balancer_add(b, 0, 0), 1); /* reused, weight 1 */
    assert_true(balancer_live(b, 1));
    assert_int_equal(balancer_backend(b, 1)->weight, 1);
    assert_int_equal(balancer_backend(b, 1)->admin, BALANCER_READY);
    assert_int_equal(balancer_count(b), 4);
    balancer_destroy(b);
}

static void test_add_until_full(void **st)
{
    (void)st;
    for (size_t m = 0; m < NMODES; m++) {
        struct balancer *b = mk(modes[m], 1, NULL);
        unsigned hits[BALANCER_MAX_BACKENDS] = {0};
        uint64_t now = 1000 * MS;
        for (int k = 1; k < BALANCER_MAX_BACKENDS; k++)
            assert_int_equal(balancer_add(b, 1, now), k);
        assert_int_equal(balancer_add(b, 1, now), -1);
        /* every slot is reachable through the policy */
        run(b, 40 * BALANCER_MAX_BACKENDS, &now, hits);
        for (int k = 0; k < BALANCER_MAX_BACKENDS; k++)
            assert_true(hits[k] > 0);
        assert_int_equal(balancer_remove(b, 63), 0);
        assert_int_equal(balancer_add(b, 1, now), 63);
        balancer_destroy(b);
    }
}

/* Drain and maint: never picked, not even when every other backend is out
 * (the fail-open rule skips them); in-flight requests finish normally. */
static void test_drain_and_maint(void **st)
{
    (void)st;
    struct balancer *b = mk("least-conn", 2, NULL);
    unsigned hits[BALANCER_MAX_BACKENDS] = {0};
    uint64_t now = 0;
    unsigned x0, x1;
    assert_int_equal(balancer_pick(b, 0, now, &x0), 0);
    assert_int_equal(balancer_pick(b, 0, now, &x1), 1);
    assert_int_equal(balancer_set_admin(b, 1, BALANCER_DRAIN, now), 0);
    run(b, 50, &now, hits);
    assert_int_equal(hits[1], 0);
    assert_int_equal(balancer_backend(b, 1)->in_flight, 1);
    balancer_observe(b, 1, MS, BALANCER_OK, x1, now);
    assert_int_equal(balancer_backend(b, 1)->in_flight, 0);
    /* backend 0 down: the drained one is still not failed open to */
    balancer_set_health(b, 0, false, now);
    assert_int_equal(balancer_pick(b, 0, now, NULL), 0); /* fail-open */
    balancer_cancel(b, 0);
    assert_int_equal(balancer_set_admin(b, 0, BALANCER_MAINT, now), 0);
    assert_int_equal(balancer_pick(b, 0, now, NULL), -1);
    /* back to ready */
    assert_int_equal(balancer_set_admin(b, 1, BALANCER_READY, now), 0);
    assert_int_equal(balancer_pick(b, 0, now, NULL), 1);
    assert_int_equal(balancer_set_admin(b, 7, BALANCER_DRAIN, now), -1);
    balancer_observe(b, 0, MS, BALANCER_OK, x0, now);
    balancer_destroy(b);
    assert_string_equal(balancer_admin_str(BALANCER_DRAIN), "drain");
    assert_int_equal(balancer_admin_parse("maint"), BALANCER_MAINT);
    assert_int_equal(balancer_admin_parse("ready"), BALANCER_READY);
    assert_int_equal(balancer_admin_parse("up"), -1);
}

/* Weights change in place: smooth weighted round-robin follows at once. */
static void test_set_weight(void **st)
{
    (void)st;
    struct balancer *b = mk("round-robin", 2, NULL);
    unsigned hits[BALANCER_MAX_BACKENDS] = {0};
    uint64_t now = 0;
    assert_int_equal(balancer_set_weight(b, 1, 3), 0);
    assert_int_equal(balancer_set_weight(b, 1, 0), -1);
    run(b, 400, &now, hits);
    assert_int_equal(hits[0], 100);
    assert_int_equal(hits[1], 300);
    balancer_destroy(b);
}

/* A reused slot starts from nothing: the old occupant's estimate is gone. */
static void test_reused_slot_is_cold(void **st)
{
    (void)st;
    struct balancer *b = mk("adaptive_ewma", 2, NULL);
    unsigned x;
    assert_int_equal(balancer_pick(b, 2, 0, &x), 0);
    balancer_observe(b, 0, 50 * MS, BALANCER_OK, x, 0);
    assert_true(balancer_score(b, 0, 0) > 0.0);
    assert_int_equal(balancer_remove(b, 0), 0);
    assert_int_equal(balancer_add(b, 1, 0), 0);
    assert_true(balancer_score(b, 0, 0) == 0.0);
    balancer_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_remove_keeps_indices),
        cmocka_unit_test(test_add_reuses_idle_slot),
        cmocka_unit_test(test_add_until_full),
        cmocka_unit_test(test_drain_and_maint),
        cmocka_unit_test(test_set_weight),
        cmocka_unit_test(test_reused_slot_is_cold),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
