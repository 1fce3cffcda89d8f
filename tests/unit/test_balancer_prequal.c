/*
 * Unit tests of prequal with a fake clock: the probe pool's capacity
 * (the oldest makes room, one entry per backend), expiry and reuse budget
 * (each use adds one to the entry's RIF), the hot-cold rule (the cold
 * entry with the lowest latency; every entry hot: the lowest RIF), the
 * fallback with an empty pool, the probe rate bound and the idle probe,
 * and a backend without the probe endpoint standing in by lbproxy's own
 * view.  The test includes the policy's file to look into its pool.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "balancer_prequal.c"

#define MS 1000u

static struct balancer *mk(size_t n, void (*tune)(struct balancer_params *))
{
    struct balancer_params p;
    balancer_params_default(&p);
    if (tune)
        tune(&p);
    struct balancer *b = balancer_create("prequal", &p, n, NULL);
    assert_non_null(b);
    return b;
}

static struct pq *pool_of(struct balancer *b)
{
    return b->state;
}

static void ok(struct balancer *b, size_t i, unsigned rif, uint64_t lat_us,
               uint64_t now)
{
    balancer_probe_result(b, i, BALANCER_PROBE_OK, rif, lat_us, now);
}

static int pick(struct balancer *b, uint64_t now)
{
    unsigned x;
    int i = balancer_pick(b, 0, now, &x);
    assert_true(i >= 0);
    return i;
}

static void small_pool(struct balancer_params *p)
{
    p->prequal_pool_size = 4;
}

static void test_capacity_oldest_makes_room(void **st)
{
    (void)st;
    struct balancer *b = mk(8, small_pool);
    for (unsigned i = 0; i < 8; i++)
        ok(b, i, 1, 10 * MS, (i + 1) * MS);
    struct pq *s = pool_of(b);
    assert_int_equal(s->len, 4);
    for (size_t k = 0; k < s->len; k++)
        assert_true(s->pool[k].idx >= 4); /* 0..3 were the oldest */
    /* A new answer of a backend in the pool replaces its entry. */
    ok(b, 5, 7, 3 * MS, 9 * MS);
    assert_int_equal(s->len, 4);
    unsigned of5 = 0;
    for (size_t k = 0; k < s->len; k++)
        if (s->pool[k].idx == 5) {
            of5++;
            assert_int_equal(s->pool[k].rif, 7);
        }
    assert_int_equal(of5, 1);
    balancer_destroy(b);
}

static void reuse3(struct balancer_params *p)
{
    p->prequal_reuse = 3;
}

static void test_expiry(void **st)
{
    (void)st;
    struct balancer *b = mk(3, reuse3); /* max age 1000 ms */
    ok(b, 2, 0, 1 * MS, 0);
    assert_int_equal(pick(b, 1000 * MS), 2); /* exactly max age: alive */
    ok(b, 1, 0, 1 * MS, 1000 * MS);
    assert_int_equal(pool_of(b)->len, 2);
    /* past max age the entry of 2 is gone; 1's is left */
    assert_int_equal(pick(b, 1001 * MS), 1);
    for (size_t k = 0; k < pool_of(b)->len; k++)
        assert_int_not_equal(pool_of(b)->pool[k].idx, 2);
    assert_true(balancer_score(b, 2, 1001 * MS) == 0.0); /* nothing known */
    balancer_destroy(b);
}

static void test_reuse_budget(void **st)
{
    (void)st;
    struct balancer *b = mk(3, reuse3);
    struct pq *s = pool_of(b);
    ok(b, 1, 2, 5 * MS, 0);
    assert_int_equal(pick(b, 1 * MS), 1);
    assert_int_equal(s->len, 1);
    assert_int_equal(s->pool[0].rif, 3); /* the request just sent */
    assert_int_equal(s->pool[0].uses, 1);
    assert_int_equal(pick(b, 2 * MS), 1);
    assert_int_equal(pick(b, 3 * MS), 1);
    assert_int_equal(s->len, 0); /* used up after 3 picks */
    balancer_destroy(b);
}

static void test_reuse_derived(void **st)
{
    (void)st;
    struct balancer *b = mk(3, NULL);
    struct pq *s = pool_of(b);
    /* r_probe 3 on 3 backends, all cold: ceil(3 / (3 x 0.84)) = 2 */
    s->nview = 3;
    assert_int_equal(reuse_budget(s), 2);
    s->ratio = 0.1; /* the rate bound keeps probes far below r_probe */
    assert_int_equal(reuse_budget(s), 36); /* ceil(3 / 0.084) */
    s->ratio = 0.001;
    assert_int_equal(reuse_budget(s), PQ_REUSE_MAX);
    balancer_destroy(b);
}

static void test_hot_cold(void **st)
{
    (void)st;
    struct balancer *b = mk(5, NULL);
    const unsigned rif[5] = {1, 2, 3, 4, 20};
    const uint64_t lat[5] = {50 * MS, 40 * MS, 30 * MS, 20 * MS, 10 * MS};
    for (unsigned i = 0; i < 5; i++)
        ok(b, i, rif[i], lat[i], 0);
    /* Q_RIF 0.84 of {1, 2, 3, 4, 20} is 9.76: 4, the fastest, is hot;
     * the fastest cold one is 3. */
    assert_true(fabs(rif_threshold(pool_of(b)) - 9.76) < 1e-9);
    assert_int_equal(pick(b, 1 * MS), 3);
    balancer_destroy(b);
}

static void test_all_hot_lowest_rif(void **st)
{
    (void)st;
    struct balancer *b = mk(3, NULL);
    /* 30 answers of an idle backend 0 fill the history with RIF 0 ... */
    for (unsigned k = 0; k < 30; k++)
        ok(b, 0, 0, 1 * MS, k * MS);
    /* ... then 0 is gone (removed from the pool by age) and 1 and 2 are
     * both above the quantile: the lower RIF wins, not the lower latency */
    ok(b, 1, 5, 1 * MS, 2000 * MS);
    ok(b, 2, 3, 50 * MS, 2000 * MS);
    assert_true(rif_threshold(pool_of(b)) < 3.0);
    assert_int_equal(pick(b, 2001 * MS), 2);
    balancer_destroy(b);
}

static void test_empty_pool_fallback(void **st)
{
    (void)st;
    struct balancer *b = mk(2, NULL);
    /* Nothing probed: the power of two choices over requests in flight;
     * with two backends that is the one with fewer, so the counts never
     * drift apart. */
    for (int k = 0; k < 100; k++) {
        pick(b, (uint64_t)k);
        unsigned a = balancer_backend(b, 0)->in_flight;
        unsigned c = balancer_backend(b, 1)->in_flight;
        assert_true(a <= c + 1 && c <= a + 1);
    }
    assert_int_equal(balancer_backend(b, 0)->in_flight, 50);
    balancer_destroy(b);
}

static void rate100(struct balancer_params *p)
{
    p->prequal_max_probe_rate = 100;
}

static void test_probe_rate_bound(void **st)
{
    (void)st;
    struct balancer *b = mk(3, rate100);
    unsigned idx[BALANCER_MAX_BACKENDS];
    size_t sent = 0;
    /* 1000 requests in one second ask for 3000 probes; the prober asks
     * every 2 ms.  At most 100 per second go out (plus the first token),
     * and never two to one backend in one round. */
    for (uint64_t t = 0; t < 1000 * MS; t += MS) {
        pick(b, t);
        if (t % (2 * MS) == 0) {
            size_t k = balancer_probe_due(b, t, 0, idx, BALANCER_MAX_BACKENDS);
            for (size_t j = 0; j < k; j++)
                for (size_t l = j + 1; l < k; l++)
                    assert_int_not_equal(idx[j], idx[l]);
            sent += k;
        }
    }
    assert_true(sent <= 101);
    assert_true(sent >= 95);
    uint64_t counted = 0;
    for (size_t i = 0; i < 3; i++)
        counted += balancer_backend(b, i)->probes_sent;
    assert_int_equal(counted, sent);
    balancer_destroy(b);
}

static void test_idle_probe_and_busy(void **st)
{
    (void)st;
    struct balancer *b = mk(3, NULL); /* idle probe every 100 ms */
    unsigned idx[BALANCER_MAX_BACKENDS];
    size_t sent = 0;
    /* No requests: one probe per idle interval, none to a busy backend. */
    for (uint64_t t = 0; t < 1000 * MS; t += 2 * MS) {
        size_t k = balancer_probe_due(b, t, 1u << 0, idx, 8);
        for (size_t j = 0; j < k; j++)
            assert_int_not_equal(idx[j], 0);
        sent += k;
    }
    assert_int_equal(sent, 10);
    /* Every backend busy: nothing to probe. */
    assert_int_equal(balancer_probe_due(b, 5000 * MS, 7, idx, 8), 0);
    balancer_destroy(b);
}

static void test_unsupported_uses_own_view(void **st)
{
    (void)st;
    struct balancer *b = mk(2, NULL);
    unsigned x;
    /* lbproxy saw backend 1 answer in 7 ms, and has one request on it */
    int i;
    do
        i = balancer_pick(b, 0, 0, &x);
    while (i != 1 && (balancer_cancel(b, (size_t)i), 1));
    balancer_observe(b, 1, 7 * MS, BALANCER_OK, 0, 1 * MS);
    i = balancer_pick(b, 1u << 0, 2 * MS, &x);
    assert_int_equal(i, 1);
    balancer_probe_result(b, 1, BALANCER_PROBE_UNSUPPORTED, 0, 0, 3 * MS);
    struct pq *s = pool_of(b);
    assert_int_equal(s->len, 1);
    assert_int_equal(s->pool[0].rif, 1);
    assert_true(fabs(s->pool[0].lat_us - 7000.0) < 1e-9);
    assert_true(fabs(balancer_score(b, 1, 3 * MS) - 7.0) < 1e-9);
    balancer_probe_result(b, 0, BALANCER_PROBE_FAILED, 0, 0, 3 * MS);
    assert_int_equal(s->len, 1); /* a failed probe adds nothing */
    assert_int_equal(balancer_backend(b, 1)->probes_fallback, 1);
    assert_int_equal(balancer_backend(b, 0)->probes_failed, 1);
    balancer_destroy(b);
}

static void test_others_want_no_probes(void **st)
{
    (void)st;
    unsigned idx[4];
    struct balancer *b = balancer_create("least-conn", NULL, 2, NULL);
    assert_false(balancer_wants_probes(b));
    assert_int_equal(balancer_probe_due(b, 0, 0, idx, 4), 0);
    balancer_destroy(b);
    b = mk(2, NULL);
    assert_true(balancer_wants_probes(b));
    assert_string_equal(balancer_mode(b), "prequal");
    balancer_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_capacity_oldest_makes_room),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_reuse_budget),
        cmocka_unit_test(test_reuse_derived),
        cmocka_unit_test(test_hot_cold),
        cmocka_unit_test(test_all_hot_lowest_rif),
        cmocka_unit_test(test_empty_pool_fallback),
        cmocka_unit_test(test_probe_rate_bound),
        cmocka_unit_test(test_idle_probe_and_busy),
        cmocka_unit_test(test_unsupported_uses_own_view),
        cmocka_unit_test(test_others_want_no_probes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
