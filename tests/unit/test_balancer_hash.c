/*
 * Unit tests of the hash policy (src/balancer_hash.c): a key sticks to its
 * backend, losing one of five backends moves only that backend's keys (at
 * most 1/5 + 2% of 10,000), weights give proportional shares (also after a
 * weight changes at run time), a backend added moves only the keys it
 * takes, the bounded-load rule keeps every backend within factor x the
 * mean in flight + 1 under a hot key (and 0 turns it off), and eligible[]
 * is honoured.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "balancer.h"
#include "balancer_impl.h"

#define NKEYS 10000u

static struct balancer *mk(size_t n, double factor)
{
    struct balancer_params p;
    balancer_params_default(&p);
    p.hash_balance_factor = factor;
    struct balancer *b = balancer_create("hash", &p, n, NULL);
    assert_non_null(b);
    return b;
}

/* A keyed pick released at once (nothing stays in flight). */
static int pick1(struct balancer *b, uint64_t tried, uint64_t key)
{
    unsigned x;
    int i = balancer_pick_key(b, tried, key, 0, &x);
    if (i >= 0)
        balancer_cancel(b, (size_t)i);
    return i;
}

static void test_wants_key(void **st)
{
    (void)st;
    struct balancer *b = mk(3, 1.25);
    struct balancer *r = balancer_create("round-robin", NULL, 3, NULL);
    assert_true(balancer_wants_key(b));
    assert_false(balancer_wants_key(r));
    assert_string_equal(balancer_find("consistent_hash")->name, "hash");
    /* A policy without pick_key ignores the key: plain round-robin. */
    assert_int_equal(pick1(r, 0, 7), 0);
    assert_int_equal(pick1(r, 0, 7), 1);
    balancer_destroy(r);
    balancer_destroy(b);
}

/* The same key goes to the same backend, every time; different keys
 * cover every backend. */
static void test_sticky(void **st)
{
    (void)st;
    struct balancer *b = mk(4, 1.25);
    unsigned seen[4] = {0};
    for (uint64_t k = 0; k < 1000; k++) {
        int i = pick1(b, 0, k);
        assert_true(i >= 0 && i < 4);
        assert_int_equal(pick1(b, 0, k), i);
        seen[i]++;
    }
    for (int i = 0; i < 4; i++)
        assert_true(seen[i] > 150); /* a quarter is 250 */
    balancer_destroy(b);
}

/* Removing (health DOWN) one of five backends moves only the keys it had:
 * every other key keeps its backend, and the moved share is at most
 * 1/5 + 2%.  Bringing it back restores the first map. */
static void test_remove_one_of_five(void **st)
{
    (void)st;
    static int before[NKEYS];
    struct balancer *b = mk(5, 1.25);
    unsigned share[5] = {0};
    for (uint64_t k = 0; k < NKEYS; k++) {
        before[k] = pick1(b, 0, k);
        share[before[k]]++;
    }
    for (size_t j = 0; j < 5; j++) {
        unsigned moved = 0;
        balancer_set_health(b, j, false, 0);
        for (uint64_t k = 0; k < NKEYS; k++) {
            int now = pick1(b, 0, k);
            assert_int_not_equal(now, (int)j);
            if (now != before[k]) {
                assert_int_equal(before[k], (int)j); /* only j's keys */
                moved++;
            }
        }
        assert_int_equal(moved, share[j]);
        if (moved > NKEYS / 5 + NKEYS / 50)
            fail_msg("removing %zu moved %u of %u keys", j, moved, NKEYS);
        balancer_set_health(b, j, true, 0);
        for (uint64_t k = 0; k < NKEYS; k++)
            assert_int_equal(pick1(b, 0, k), before[k]);
    }
    balancer_destroy(b);
}

/* A retry excludes the backends tried: the key walks on along the ring,
 * and with every backend but one tried it gets that one. */
static void test_tried_honoured(void **st)
{
    (void)st;
    struct balancer *b = mk(5, 1.25);
    for (uint64_t k = 0; k < 500; k++) {
        int first = pick1(b, 0, k);
        int second = pick1(b, (uint64_t)1 << first, k);
        assert_true(second >= 0 && second != first);
        assert_int_equal(pick1(b, 0x1f & ~(1u << 3), k), 3);
        assert_int_equal(pick1(b, 0x1f, k), -1);
    }
    balancer_destroy(b);
}

/* Weights 3,1: shares about 3/4 and 1/4; after the weight of backend 1
 * changes to 3 (in the backend view the policy was given), about half. */
static void test_weights(void **st)
{
    (void)st;
    const struct balancer_policy *pol = balancer_find("hash");
    struct balancer_params p;
    struct balancer_backend be[2];
    bool el[2] = {true, true};
    balancer_params_default(&p);
    memset(be, 0, sizeof(be));
    be[0].weight = 3;
    be[1].weight = 1;
    void *h = pol->create(&p, be);
    assert_non_null(h);
    unsigned zero = 0;
    for (uint64_t k = 0; k < NKEYS; k++)
        zero += pol->pick_key(h, el, 2, k, 0) == 0;
    assert_in_range(zero, NKEYS * 72 / 100, NKEYS * 78 / 100);
    be[1].weight = 3;
    zero = 0;
    for (uint64_t k = 0; k < NKEYS; k++)
        zero += pol->pick_key(h, el, 2, k, 0) == 0;
    assert_in_range(zero, NKEYS * 47 / 100, NKEYS * 53 / 100);
    pol->destroy(h);
}

/* A sixth slot joins (pick told n = 6 instead of 5): the ring is rebuilt,
 * and the only keys that move are those the new backend takes, about a
 * sixth of them. */
static void test_slot_added(void **st)
{
    (void)st;
    const struct balancer_policy *pol = balancer_find("hash");
    struct balancer_params p;
    struct balancer_backend be[6];
    bool el[6] = {true, true, true, true, true, true};
    static size_t before[NKEYS];
    balancer_params_default(&p);
    memset(be, 0, sizeof(be));
    for (int i = 0; i < 6; i++)
        be[i].weight = 1;
    void *h = pol->create(&p, be);
    assert_non_null(h);
    for (uint64_t k = 0; k < NKEYS; k++) {
        before[k] = pol->pick_key(h, el, 5, k, 0);
        assert_true(before[k] < 5);
    }
    unsigned moved = 0;
    for (uint64_t k = 0; k < NKEYS; k++) {
        size_t now = pol->pick_key(h, el, 6, k, 0);
        if (now != before[k]) {
            assert_int_equal(now, 5);
            moved++;
        }
    }
    assert_in_range(moved, NKEYS / 6 - NKEYS / 50, NKEYS / 6 + NKEYS / 50);
    pol->destroy(h);
}

/* A tiny deterministic RNG for the load simulation. */
static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Requests arrive with a hot key range (70% of them on 4 keys) and finish
 * in random order; returns the largest excess of the picked backend over
 * factor x the mean in flight, right after its pick (in_flight_i -
 * factor * total / n: the bound holds when a request is placed; later
 * completions elsewhere may lower the mean under it). */
static double hot_run(double factor, unsigned *max_hot)
{
    struct balancer *b = mk(5, factor);
    uint64_t s = 88172645463325252u;
    int out[64];
    size_t nout = 0;
    double worst = -1e9;
    *max_hot = 0;
    for (int step = 0; step < 20000; step++) {
        /* Keep 10..40 requests in flight: finish one at random when full
         * or half of the time. */
        if (nout == 40 || (nout > 10 && rng(&s) % 2)) {
            size_t k = rng(&s) % nout;
            balancer_observe(b, (size_t)out[k], 1000, BALANCER_OK, 0, 0);
            out[k] = out[--nout];
            continue;
        }
        uint64_t key = rng(&s) % 10 < 7 ? rng(&s) % 4 : rng(&s);
        unsigned x;
        int i = balancer_pick_key(b, 0, key, 0, &x);
        assert_true(i >= 0);
        out[nout++] = i;
        unsigned total = 0;
        for (size_t j = 0; j < 5; j++)
            total += balancer_backend(b, j)->in_flight;
        assert_int_equal(total, nout);
        unsigned f = balancer_backend(b, (size_t)i)->in_flight;
        double excess = f - (factor ? factor : 1.0) * total / 5.0;
        if (excess > worst)
            worst = excess;
        if (f > *max_hot)
            *max_hot = f;
    }
    balancer_destroy(b);
    return worst;
}

static void test_bounded_load(void **st)
{
    (void)st;
    unsigned max_bounded, max_free;
    double excess = hot_run(1.25, &max_bounded);
    if (excess > 1.0)
        fail_msg("a backend was %.2f over 1.25 x the mean", excess);
    /* Unbounded, the hot keys pile up on their backends. */
    assert_true(hot_run(0.0, &max_free) > 5.0);
    assert_true(max_free > max_bounded + 5);
}

/* The rule with exact numbers: 3 equal backends, factor 1.25, a key of
 * backend 0.  Nothing in flight: cap ceil(1.25 * 1 / 3) = 1, so it goes
 * to 0; with that one out the cap stays 1 (ceil(1.25 * 2 / 3)) and the
 * key overflows elsewhere; with two out it is ceil(1.25 * 3 / 3) = 2 and
 * backend 0 takes it again.  Unbounded (0), 0 takes every one. */
static void test_bound_exact(void **st)
{
    (void)st;
    struct balancer *b = mk(3, 1.25);
    uint64_t key = 0;
    while (pick1(b, 0, key) != 0)
        key++;
    unsigned x;
    assert_int_equal(balancer_pick_key(b, 0, key, 0, &x), 0);
    assert_int_not_equal(balancer_pick_key(b, 0, key, 0, &x), 0);
    assert_int_equal(balancer_pick_key(b, 0, key, 0, &x), 0);
    assert_int_equal(balancer_backend(b, 0)->in_flight, 2);
    balancer_destroy(b);
    b = mk(3, 0.0);
    for (int k = 0; k < 20; k++)
        assert_int_equal(balancer_pick_key(b, 0, key, 0, &x), 0);
    balancer_destroy(b);
}

/* A pick without a key (balancer_pick) spreads over every backend. */
static void test_keyless(void **st)
{
    (void)st;
    struct balancer *b = mk(3, 1.25);
    unsigned seen[3] = {0};
    for (int k = 0; k < 3000; k++) {
        unsigned x;
        int i = balancer_pick(b, 0, 0, &x);
        assert_true(i >= 0 && i < 3);
        balancer_cancel(b, (size_t)i);
        seen[i]++;
    }
    for (int i = 0; i < 3; i++)
        assert_in_range(seen[i], 800, 1200);
    balancer_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wants_key),
        cmocka_unit_test(test_sticky),
        cmocka_unit_test(test_remove_one_of_five),
        cmocka_unit_test(test_tried_honoured),
        cmocka_unit_test(test_weights),
        cmocka_unit_test(test_slot_added),
        cmocka_unit_test(test_bounded_load),
        cmocka_unit_test(test_bound_exact),
        cmocka_unit_test(test_keyless),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
