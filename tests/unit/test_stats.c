/*
 * test_stats: histogram accuracy against exact sorted samples, slot rotation
 * over a fake clock, error kinds, totals and the cumulative histogram.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "record.h"
#include "stats.h"

#define SEC 1000000ull
#define T0 (1000 * SEC) /* fake monotonic start */

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static double uniform(void)
{
    return (double)(rng() >> 11) / 9007199254740992.0;
}

static struct record rec(int backend, int64_t upstream_us, int status)
{
    struct record r;
    memset(&r, 0, sizeof(r));
    r.backend = backend;
    r.status = status;
    r.upstream_us = upstream_us;
    r.total_us = upstream_us >= 0 ? upstream_us + 10 : 50;
    r.connect_us = -1;
    r.ttfb_us = -1;
    r.req_bytes = 100;
    r.resp_bytes = 1000;
    r.error = RECORD_OK;
    return r;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_bucket_bounds(void **state)
{
    (void)state;
    size_t prev = 0;
    for (uint64_t v = 0; v < (UINT64_C(1) << 27);
         v = v < 4096 ? v + 1 : v + v / 97) {
        size_t b = stats_bucket(v);
        assert_true(b < STATS_BUCKETS);
        assert_true(b >= prev); /* monotonic */
        prev = b;
        uint64_t lo = stats_bucket_low(b), w = stats_bucket_width(b);
        if (v < lo || v >= lo + w)
            fail_msg("value %llu in bucket %zu [%llu, %llu)",
                     (unsigned long long)v, b, (unsigned long long)lo,
                     (unsigned long long)(lo + w));
        if (v >= 128)
            assert_true((double)w / (double)lo <= 1.0 / 64 + 1e-12);
    }
    /* Every bucket's range starts where the previous one ends. */
    for (size_t i = 1; i < STATS_BUCKETS; i++)
        assert_int_equal(stats_bucket_low(i),
                         stats_bucket_low(i - 1) + stats_bucket_width(i - 1));
    assert_int_equal(stats_bucket(UINT64_C(1) << 40), STATS_BUCKETS - 1);
    assert_int_equal(stats_bucket(0), 0);
}

/* Exact quantile of sorted samples with the same rank rule. */
static double exact_q(const uint64_t *v, size_t n, double q)
{
    size_t rank = (size_t)ceil(q * (double)n - 1e-9);
    if (rank < 1)
        rank = 1;
    return (double)v[rank - 1];
}

static void check_close(const char *what, double got, double want)
{
    double tol = want * 0.02 + 0.0005; /* 2%, plus half a microsecond */
    if (fabs(got - want) > tol)
        fail_msg("%s: got %.6f want %.6f (tolerance %.6f)", what, got, want,
                 tol);
}

static void test_percentiles_match_sorted_samples(void **state)
{
    (void)state;
    enum { N = 20000 };
    static uint64_t v[N];
    struct stats *s = stats_create(2, T0);
    assert_non_null(s);
    /* Log-uniform latencies from 5 us to 5 s across two backends, all in
     * the same second. */
    for (size_t i = 0; i < N; i++) {
        v[i] = (uint64_t)exp(log(5.0) + uniform() * (log(5e6) - log(5.0)));
        struct record r = rec((int)(i % 2), (int64_t)v[i], 200);
        stats_record(s, &r, T0 + 2 * SEC + 100);
    }
    qsort(v, N, sizeof(v[0]), cmp_u64);
    struct stats_window w;
    stats_window(s, STATS_TOTAL, 10, T0 + 3 * SEC + 5, &w);
    assert_int_equal(w.requests, N);
    assert_int_equal(w.latency.count, N);
    assert_int_equal(w.seconds, 3);
    check_close("p50", w.latency.p50_ms, exact_q(v, N, 0.5) / 1000);
    check_close("p90", w.latency.p90_ms, exact_q(v, N, 0.9) / 1000);
    check_close("p99", w.latency.p99_ms, exact_q(v, N, 0.99) / 1000);
    check_close("p999", w.latency.p999_ms, exact_q(v, N, 0.999) / 1000);
    double sum = 0;
    for (size_t i = 0; i < N; i++)
        sum += (double)v[i];
    check_close("mean", w.latency.mean_ms, sum / N / 1000);

    /* Small exact values are exact. */
    uint64_t h[STATS_BUCKETS] = {0};
    for (uint64_t x = 1; x <= 100; x++)
        h[stats_bucket(x)]++;
    assert_true(stats_hist_quantile(h, 100, 0.5) == 50.0);
    assert_true(stats_hist_quantile(h, 100, 0.9) == 90.0);
    assert_true(stats_hist_quantile(h, 100, 1.0) == 100.0);
    assert_true(stats_hist_quantile(h, 0, 0.5) == 0.0);
    stats_destroy(s);
}

static void test_window_excludes_current_second(void **state)
{
    (void)state;
    struct stats *s = stats_create(1, T0);
    struct record r = rec(0, 1000, 200);
    /* 5 requests in each of seconds T0+1..T0+10, 7 in the current one. */
    for (uint64_t sec = 1; sec <= 10; sec++)
        for (int i = 0; i < 5; i++)
            stats_record(s, &r, T0 + sec * SEC + (uint64_t)i * 1000);
    for (int i = 0; i < 7; i++)
        stats_record(s, &r, T0 + 11 * SEC + 10);
    struct stats_window w;
    stats_window(s, 0, 10, T0 + 11 * SEC + 500000, &w);
    assert_int_equal(w.seconds, 10);
    assert_int_equal(w.requests, 50);
    assert_true(fabs(w.rps - 5.0) < 1e-9);
    stats_window(s, 0, 1, T0 + 11 * SEC + 500000, &w);
    assert_int_equal(w.requests, 5);
    /* Early on, rps divides by the seconds that exist. */
    stats_window(s, 0, 60, T0 + 11 * SEC, &w);
    assert_int_equal(w.seconds, 11);
    struct stats_counters c;
    stats_counters(s, 0, &c);
    assert_int_equal(c.requests, 57);
    assert_int_equal(c.bytes_in, 5700);
    assert_int_equal(c.bytes_out, 57000);
    stats_destroy(s);
}

static void test_history_rotates_over_time(void **state)
{
    (void)state;
    struct stats *s = stats_create(2, T0);
    /* Second k (1..150) gets k requests on backend 1, latency k ms. */
    for (uint64_t k = 1; k <= 150; k++) {
        struct record r = rec(1, (int64_t)(k * 1000), 200);
        for (uint64_t i = 0; i < k; i++)
            stats_record(s, &r, T0 + k * SEC + i);
        stats_set_score(s, 1, (double)k / 2, T0 + k * SEC + 999999);
    }
    struct stats_second h[STATS_HISTORY];
    uint64_t now = T0 + 151 * SEC + 1;
    stats_history(s, 1, now, h);
    for (unsigned i = 0; i < STATS_HISTORY; i++) {
        uint64_t k = 91 + i; /* oldest first: seconds 91..150 */
        assert_int_equal(h[i].sec, T0 / SEC + k);
        assert_int_equal(h[i].requests, k);
        assert_true(h[i].has_latency);
        check_close("p50", h[i].p50_ms, (double)k);
        assert_true(h[i].has_score);
        assert_true(h[i].score == (double)k / 2);
    }
    /* Backend 0 saw nothing; the total saw everything. */
    stats_history(s, 0, now, h);
    for (unsigned i = 0; i < STATS_HISTORY; i++) {
        assert_int_equal(h[i].requests, 0);
        assert_false(h[i].has_latency);
        assert_false(h[i].has_score);
    }
    stats_history(s, STATS_TOTAL, now, h);
    assert_int_equal(h[59].requests, 150);

    /* A gap: 30 s of silence, then the old seconds age out, and a slot
     * reused by the ring never shows stale data. */
    now = T0 + 181 * SEC;
    stats_history(s, 1, now, h);
    for (unsigned i = 0; i < 30; i++)
        assert_int_equal(h[i].requests, 121 + i);
    for (unsigned i = 30; i < 60; i++)
        assert_int_equal(h[i].requests, 0);
    struct record r = rec(1, 5, 200);
    stats_record(s, &r, T0 + 200 * SEC); /* lands in the slot of 136 */
    stats_history(s, 1, T0 + 201 * SEC, h);
    assert_int_equal(h[59].requests, 1);
    for (unsigned i = 0; i < 59; i++)
        if (h[i].sec != T0 / SEC + 200)
            assert_int_equal(h[i].requests, i + 141 <= 150 ? i + 141 : 0);
    /* After more than the ring's length, nothing old remains. */
    struct stats_window w;
    stats_window(s, 1, 60, T0 + 400 * SEC, &w);
    assert_int_equal(w.requests, 0);
    assert_int_equal(w.latency.count, 0);
    assert_true(w.latency.p99_ms == 0);
    stats_destroy(s);
}

static void test_error_kinds_and_total_only(void **state)
{
    (void)state;
    struct stats *s = stats_create(3, T0);
    uint64_t now = T0 + SEC;
    struct record r = rec(2, 100, 503);
    stats_record(s, &r, now); /* http_5xx on C */
    r = rec(2, -1, 502);
    r.error = RECORD_CONNECT;
    stats_record(s, &r, now); /* connect on C, latency = total_us */
    r = rec(0, 100, 504);
    r.error = RECORD_TIMEOUT;
    stats_record(s, &r, now);
    r = rec(-1, -1, 400);
    r.error = RECORD_BAD_REQUEST;
    stats_record(s, &r, now); /* lbproxy answered itself: total only */
    r = rec(1, 100, 200);
    stats_record(s, &r, now); /* fine */
    r = rec(7, 100, 200);
    stats_record(s, &r, now); /* out-of-range backend: total only */

    struct stats_counters c;
    stats_counters(s, 2, &c);
    assert_int_equal(c.requests, 2);
    assert_int_equal(c.errors, 2);
    assert_int_equal(c.err[STATS_ERR_HTTP_5XX], 1);
    assert_int_equal(c.err[STATS_ERR_CONNECT], 1);
    stats_counters(s, 0, &c);
    assert_int_equal(c.err[STATS_ERR_TIMEOUT], 1);
    stats_counters(s, 1, &c);
    assert_int_equal(c.requests, 1);
    assert_int_equal(c.errors, 0);
    stats_counters(s, STATS_TOTAL, &c);
    assert_int_equal(c.requests, 6);
    assert_int_equal(c.errors, 4);
    assert_int_equal(c.err[STATS_ERR_BAD_REQUEST], 1);
    stats_counters(s, 99, &c); /* unknown index: zeros */
    assert_int_equal(c.requests, 0);

    struct stats_window w;
    stats_window(s, 2, 10, now + SEC, &w);
    assert_int_equal(w.errors, 2);
    assert_int_equal(w.latency.count, 2);
    /* The connect error had no upstream time: total_us (50) counts. */
    assert_true(w.latency.p50_ms * 1000 >= 49 && w.latency.p50_ms * 1000 <= 51);
    for (int k = 0; k < STATS_ERR_COUNT; k++)
        assert_non_null(stats_err_str((enum stats_err)k));
    assert_string_equal(stats_err_str(STATS_ERR_RESET), "reset");
    stats_destroy(s);
}

static void test_retried_attempt_counts_on_its_backend_only(void **state)
{
    (void)state;
    struct stats *s = stats_create(3, T0);
    uint64_t now = T0 + SEC;
    stats_attempt_failed(s, 0, RECORD_CONNECT, 0, now);
    stats_attempt_failed(s, 0, RECORD_UPSTREAM_RESET, 0, now);
    stats_attempt_failed(s, 5, RECORD_CONNECT, 0, now); /* unknown: ignored */
    stats_attempt_failed(s, 1, RECORD_OK, 200, now);    /* not an error */
    stats_attempt_failed(s, 2, RECORD_OK, 503, now);    /* a 5xx retried */
    struct stats_counters c;
    stats_counters(s, 0, &c);
    assert_int_equal(c.requests, 0);
    assert_int_equal(c.errors, 2);
    assert_int_equal(c.err[STATS_ERR_CONNECT], 1);
    assert_int_equal(c.err[STATS_ERR_RESET], 1);
    stats_counters(s, 1, &c);
    assert_int_equal(c.errors, 0);
    stats_counters(s, 2, &c);
    assert_int_equal(c.errors, 1);
    assert_int_equal(c.err[STATS_ERR_HTTP_5XX], 1);
    stats_counters(s, STATS_TOTAL, &c);
    assert_int_equal(c.errors, 0);
    struct stats_window w;
    stats_window(s, 0, 10, now + SEC, &w);
    assert_int_equal(w.errors, 2);
    assert_int_equal(w.requests, 0);
    stats_destroy(s);
}

static void test_flow_is_kept_per_second_on_the_total(void **state)
{
    (void)state;
    struct stats *s = stats_create(2, T0);
    uint64_t now = T0 + 5 * SEC;
    stats_set_flow(s, 7, 2, 3, now);
    stats_set_flow(s, 1, 0, 9, now + SEC);
    struct stats_second h[STATS_HISTORY];
    stats_history(s, STATS_TOTAL, now + 2 * SEC, h);
    const struct stats_second *a = &h[STATS_HISTORY - 2];
    const struct stats_second *b = &h[STATS_HISTORY - 1];
    assert_true(a->has_flow && b->has_flow);
    assert_int_equal(a->retries, 7);
    assert_int_equal(a->hedges, 2);
    assert_int_equal(a->queue, 3);
    assert_int_equal(b->retries, 1);
    assert_int_equal(b->queue, 9);
    assert_false(h[STATS_HISTORY - 3].has_flow); /* never sampled */
    stats_history(s, 0, now + SEC + 1, h);       /* a backend has none */
    assert_false(h[STATS_HISTORY - 2].has_flow);
    stats_destroy(s);
}

static void test_remap_keeps_matching_backends(void **state)
{
    (void)state;
    struct stats *s = stats_create(3, T0); /* A B C */
    uint64_t now = T0 + SEC;
    for (int b = 0; b < 3; b++)
        for (int k = 0; k <= b; k++) {
            struct record r = rec(b, 1000 * (b + 1), 200);
            stats_record(s, &r, now);
        }
    /* new set: C, D (new), A */
    const int from[3] = {2, -1, 0};
    assert_int_equal(stats_remap(s, 3, from), 0);
    assert_int_equal(stats_count(s), 3);
    struct stats_counters c;
    stats_counters(s, 0, &c);
    assert_int_equal(c.requests, 3); /* C's */
    stats_counters(s, 1, &c);
    assert_int_equal(c.requests, 0);
    stats_counters(s, 2, &c);
    assert_int_equal(c.requests, 1); /* A's */
    stats_counters(s, STATS_TOTAL, &c);
    assert_int_equal(c.requests, 6);
    struct stats_window w;
    stats_window(s, 0, 10, now + SEC, &w);
    assert_int_equal(w.requests, 3);
    assert_true(fabs(w.latency.p50_ms - 3.0) <
                0.1); /* C's latency came along */
    stats_window(s, 1, 10, now + SEC, &w);
    assert_int_equal(w.requests, 0);
    /* the new backend counts from here on; an index past the set does not */
    struct record r = rec(1, 500, 200);
    stats_record(s, &r, now);
    r = rec(3, 500, 200);
    stats_record(s, &r, now);
    stats_counters(s, 1, &c);
    assert_int_equal(c.requests, 1);
    stats_counters(s, STATS_TOTAL, &c);
    assert_int_equal(c.requests, 8);
    /* shrinking to one backend */
    const int one[1] = {1};
    assert_int_equal(stats_remap(s, 1, one), 0);
    stats_counters(s, 0, &c);
    assert_int_equal(c.requests, 1);
    stats_destroy(s);
}

static void test_cumulative_duration(void **state)
{
    (void)state;
    struct stats *s = stats_create(1, T0);
    int64_t lats[] = {100, 500, 501, 1000, 2000, 40000000, 7000000};
    for (size_t i = 0; i < sizeof(lats) / sizeof(lats[0]); i++) {
        struct record r = rec(0, lats[i], 200);
        stats_record(s, &r, T0 + (uint64_t)i * 100 * SEC); /* over minutes */
    }
    uint64_t le[STATS_LE_COUNT], count, sum;
    stats_duration(s, 0, le, &count, &sum);
    assert_int_equal(count, 7);
    assert_int_equal(sum, 100 + 500 + 501 + 1000 + 2000 + 40000000 + 7000000);
    assert_int_equal(le[0], 2);  /* <= 0.5 ms */
    assert_int_equal(le[1], 4);  /* <= 1 ms */
    assert_int_equal(le[2], 5);  /* <= 2.5 ms */
    assert_int_equal(le[12], 5); /* <= 5 s */
    assert_int_equal(le[13], 6); /* <= 10 s */
    assert_int_equal(le[14], 6); /* <= 30 s; the 40 s one is only in +Inf */
    for (size_t i = 1; i < STATS_LE_COUNT; i++)
        assert_true(stats_le_bounds[i] > stats_le_bounds[i - 1]);
    stats_destroy(s);
    stats_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_bounds),
        cmocka_unit_test(test_percentiles_match_sorted_samples),
        cmocka_unit_test(test_window_excludes_current_second),
        cmocka_unit_test(test_history_rotates_over_time),
        cmocka_unit_test(test_error_kinds_and_total_only),
        cmocka_unit_test(test_retried_attempt_counts_on_its_backend_only),
        cmocka_unit_test(test_flow_is_kept_per_second_on_the_total),
        cmocka_unit_test(test_cumulative_duration),
        cmocka_unit_test(test_remap_keeps_matching_backends),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
