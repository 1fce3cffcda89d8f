/*
 * Unit tests of the adaptive policies (adaptive_sma, adaptive_ewma) and the
 * machinery they share: window and EWMA arithmetic, time decay, cold start,
 * one staleness probe per interval (and the chase after a recovery), fast
 * failures never looking fast, unbiased tie-breaks, the score formulas, and
 * the slope learner converging on synthetic data; and the knee learner
 * behind "fill" (the fit, its evidence test, free workers before queues,
 * stepwise exploration, forgetting on drift, failing backends).  Fake
 * clock throughout.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "balancer.h"
#include "balancer_impl.h"

#define MS 1000u

/* Asserts |got - want| <= tol and prints both sides when it is not. */
#define assert_near(got, want, tol)                                            \
    do {                                                                       \
        double g_ = (got), w_ = (want);                                        \
        if (!(fabs(g_ - w_) <= (tol)))                                         \
            fail_msg("%s = %.6f, expected %.6f +- %.6f", #got, g_, w_,         \
                     (double)(tol));                                           \
    } while (0)

static struct balancer *mk(const char *mode, size_t n, bool load_aware,
                           int score, void (*tweak)(struct balancer_params *))
{
    struct balancer_params p;
    struct balancer *b;
    balancer_params_default(&p);
    p.load_aware = load_aware;
    p.ewma_score = score;
    if (tweak)
        tweak(&p);
    b = balancer_create(mode, &p, n, NULL);
    assert_non_null(b);
    return b;
}

/* Sends one request to backend `want` (asserting the pick) and completes
 * it with the given latency at time now. */
static void feed(struct balancer *b, int want, uint64_t lat, uint64_t now)
{
    unsigned x;
    int i = balancer_pick(b, 0, now, &x);
    assert_int_equal(i, want);
    balancer_observe(b, (size_t)i, lat, BALANCER_OK, x, now);
}

static void window3(struct balancer_params *p)
{
    p->sma_window = 3;
}

static void test_sma_window(void **st)
{
    struct balancer *b = mk("adaptive_sma", 1, false, -1, window3);
    (void)st;
    feed(b, 0, 10 * MS, 0);
    assert_near(balancer_score(b, 0, 0), 10.0, 1e-9);
    feed(b, 0, 20 * MS, 0);
    feed(b, 0, 30 * MS, 0);
    assert_near(balancer_score(b, 0, 0), 20.0, 1e-9);
    feed(b, 0, 60 * MS, 0); /* 10 leaves the window */
    assert_near(balancer_score(b, 0, 0), (20 + 30 + 60) / 3.0, 1e-9);
    feed(b, 0, 1 * MS, 0);
    feed(b, 0, 2 * MS, 0);
    assert_near(balancer_score(b, 0, 0), 21.0, 1e-9);
    balancer_destroy(b);
}

static void alpha_half(struct balancer_params *p)
{
    p->ewma_alpha = 0.5;
}

static void alpha_half_decay(struct balancer_params *p)
{
    p->ewma_alpha = 0.5;
    p->ewma_decay_ms = 1000;
}

static void test_ewma_arithmetic(void **st)
{
    struct balancer *b = mk("adaptive_ewma", 1, false, -1, alpha_half);
    (void)st;
    feed(b, 0, 10 * MS, 0);
    assert_near(balancer_score(b, 0, 0), 10.0, 1e-9);
    feed(b, 0, 20 * MS, 5 * MS);
    assert_near(balancer_score(b, 0, 5 * MS), 15.0, 1e-9);
    feed(b, 0, 40 * MS, 3000 * MS); /* no decay configured: time is moot */
    assert_near(balancer_score(b, 0, 3000 * MS), 27.5, 1e-9);
    balancer_destroy(b);
    /* Default alpha 0.3. */
    b = mk("adaptive_ewma", 1, false, -1, NULL);
    feed(b, 0, 10 * MS, 0);
    feed(b, 0, 20 * MS, 0);
    assert_near(balancer_score(b, 0, 0), 13.0, 1e-9);
    balancer_destroy(b);
}

static void test_ewma_decay(void **st)
{
    struct balancer *b = mk("adaptive_ewma", 1, false, -1, alpha_half_decay);
    double keep = 0.5 * exp(-1.0);
    (void)st;
    feed(b, 0, 10 * MS, 0);
    /* One decay constant later the old estimate keeps 0.5 * e^-1. */
    feed(b, 0, 20 * MS, 1000 * MS);
    assert_near(balancer_score(b, 0, 0), 20 * (1 - keep) + 10 * keep, 1e-9);
    /* Back to back, decay is negligible: plain alpha. */
    {
        double before = balancer_score(b, 0, 0);
        feed(b, 0, 40 * MS, 1000 * MS);
        assert_near(balancer_score(b, 0, 0), 0.5 * 40 + 0.5 * before, 1e-9);
    }
    balancer_destroy(b);
}

static void test_cold_start(void **st)
{
    struct balancer *b = mk("adaptive_ewma", 3, false, -1, NULL);
    unsigned x;
    (void)st;
    feed(b, 0, 50 * MS, 0);
    feed(b, 1, 5 * MS, 0); /* fastest known, but 2 is still cold */
    assert_int_equal(balancer_pick(b, 0, 0, &x), 2);
    /* 2 is cold but busy: the known fastest is picked now. */
    assert_int_equal(balancer_pick(b, 0, 0, &x), 1);
    balancer_observe(b, 1, 5 * MS, BALANCER_OK, x, 0);
    balancer_observe(b, 2, 20 * MS, BALANCER_OK, 0, 0);
    feed(b, 1, 5 * MS, 0);
    balancer_destroy(b);
}

static void test_staleness_probe(void **st)
{
    struct balancer *b = mk("adaptive_ewma", 2, false, -1, NULL);
    unsigned picks_b = 0, x;
    uint64_t t;
    (void)st;
    feed(b, 0, 10 * MS, 0);
    feed(b, 1, 50 * MS, 0);
    /* A request every 10 ms for 10 s: B (slower, unchanged) gets one probe
     * per second and no more. */
    for (t = 10 * MS; t < 10010 * MS; t += 10 * MS) {
        int i = balancer_pick(b, 0, t, &x);
        assert_true(i >= 0);
        if (i == 1) {
            picks_b++;
            /* The probe's answer arrives 50 ms later. */
            balancer_observe(b, 1, 50 * MS, BALANCER_OK, x, t + 50 * MS);
        } else {
            balancer_observe(b, 0, 10 * MS, BALANCER_OK, x, t);
        }
    }
    assert_in_range(picks_b, 9, 11);
    balancer_destroy(b);
}

static void test_probe_chase(void **st)
{
    struct balancer *b = mk("adaptive_ewma", 2, false, -1, NULL);
    unsigned x;
    int i;
    (void)st;
    feed(b, 0, 10 * MS, 0);
    feed(b, 1, 100 * MS, 0);
    feed(b, 0, 10 * MS, 999 * MS); /* keeps A fresh */
    /* After the interval B is probed and has recovered (2 ms). */
    feed(b, 1, 2 * MS, 1000 * MS);
    /* The recovery earns immediate further probes, one at a time. */
    i = balancer_pick(b, 0, 1001 * MS, &x);
    assert_int_equal(i, 1);
    assert_int_equal(balancer_pick(b, 0, 1001 * MS, &x), 0);
    balancer_observe(b, 0, 10 * MS, BALANCER_OK, x, 1001 * MS);
    balancer_observe(b, 1, 2 * MS, BALANCER_OK, 0, 1002 * MS);
    for (int k = 0; k < 20 && balancer_score(b, 1, 0) > 10.0; k++)
        feed(b, 1, 2 * MS, 1003 * MS);
    /* Now B is the better one in its own right. */
    assert_true(balancer_score(b, 1, 0) < 10.0);
    feed(b, 1, 2 * MS, 1004 * MS);
    balancer_destroy(b);
}

static void no_eject(struct balancer_params *p)
{
    p->max_fails = 0;
}

static void test_fast_failure_never_fast(void **st)
{
    struct balancer *b = mk("adaptive_ewma", 2, true, -1, no_eject);
    unsigned x, picks_a = 0;
    (void)st;
    /* A refuses in 0.1 ms every time; B answers in 40 ms. */
    for (uint64_t t = 0; t < 5000 * MS; t += 10 * MS) {
        int i = balancer_pick(b, 0, t, &x);
        assert_true(i >= 0);
        if (i == 0) {
            picks_a++;
            balancer_observe(b, 0, 100, BALANCER_CONNECT_ERR, x, t);
        } else {
            balancer_observe(b, 1, 40 * MS, BALANCER_OK, x, t);
        }
    }
    /* Cold start plus one staleness probe per second, out of 500. */
    assert_in_range(picks_a, 1, 7);
    assert_true(balancer_score(b, 0, 0) >= 5000.0);
    balancer_destroy(b);
}

static void test_ties_rotate(void **st)
{
    struct balancer *b = mk("adaptive_sma", 3, false, -1, NULL);
    unsigned count[3] = {0};
    (void)st;
    feed(b, 0, 10 * MS, 0);
    feed(b, 1, 10 * MS, 0);
    feed(b, 2, 10 * MS, 0);
    for (int k = 0; k < 30; k++) {
        unsigned x;
        int i = balancer_pick(b, 0, 0, &x);
        count[i]++;
        balancer_observe(b, (size_t)i, 10 * MS, BALANCER_OK, x, 0);
    }
    assert_int_equal(count[0], 10);
    assert_int_equal(count[1], 10);
    assert_int_equal(count[2], 10);
    balancer_destroy(b);
}

static void test_latency_x_inflight(void **st)
{
    struct balancer *b =
        mk("adaptive_ewma", 2, true, BALANCER_SCORE_LATENCY_X_INFLIGHT, NULL);
    unsigned x;
    (void)st;
    feed(b, 0, 10 * MS, 0);
    feed(b, 1, 25 * MS, 0);
    assert_int_equal(balancer_pick(b, 0, 0, &x), 0); /* 10 x 1 < 25 x 1 */
    assert_int_equal(balancer_pick(b, 0, 0, &x), 0); /* 10 x 2 < 25 x 1 */
    assert_near(balancer_score(b, 0, 0), 30.0, 1e-9);
    assert_int_equal(balancer_pick(b, 0, 0, &x), 1); /* 10 x 3 > 25 */
    assert_int_equal(balancer_pick(b, 0, 0, &x), 0); /* 30 < 25 x 2 */
    assert_int_equal(x, 2);
    balancer_destroy(b);
}

static void test_load_aware_off_forces_latency(void **st)
{
    struct balancer *b =
        mk("adaptive_ewma", 2, false, BALANCER_SCORE_PREDICTED, NULL);
    unsigned x;
    (void)st;
    feed(b, 0, 10 * MS, 0);
    feed(b, 1, 11 * MS, 0);
    for (int k = 0; k < 20; k++)
        assert_int_equal(balancer_pick(b, 0, 0, &x), 0); /* herds */
    assert_near(balancer_score(b, 0, 0), 10.0, 1e-9);
    balancer_destroy(b);
}

/* The learner alone, on y = 10 ms + 5 ms * x (+- 20% noise). */
static void test_slope_converges(void **st)
{
    struct balancer_backend be[1] = {{.weight = 1}};
    struct balancer_params p;
    struct balancer_adaptive a;
    uint64_t rng = 7;
    double est = 0, est_x = 0;
    (void)st;
    balancer_params_default(&p);
    assert_int_equal(
        balancer_adaptive_init(&a, &p, be, BALANCER_SCORE_PREDICTED), 0);
    for (int k = 0; k < 3000; k++) {
        unsigned x = (unsigned)balancer_rand_below(&rng, 16);
        double noise =
            0.8 + 0.4 * (double)balancer_rand_below(&rng, 1001) / 1000.0;
        double y = (10000.0 + 5000.0 * x) * noise;
        est = k ? 0.3 * y + 0.7 * est : y;
        est_x = k ? 0.3 * x + 0.7 * est_x : x;
        balancer_adaptive_update(&a, 0, est, est_x, y, true, x,
                                 (uint64_t)k * MS);
    }
    assert_near(balancer_adaptive_slope(&a, 0), 5000.0, 250.0);
    balancer_adaptive_fini(&a);
}

/* The same through the public API: predicted latency of one more request
 * at in_flight k is about 10 + 5k ms. */
static void test_predicted_through_api(void **st)
{
    struct balancer *b =
        mk("adaptive_ewma", 1, true, BALANCER_SCORE_PREDICTED, NULL);
    uint64_t rng = 3;
    unsigned x;
    (void)st;
    for (int k = 0; k < 2000; k++) {
        unsigned xs = (unsigned)balancer_rand_below(&rng, 12);
        assert_int_equal(balancer_pick(b, 0, (uint64_t)k * MS, &x), 0);
        balancer_observe(b, 0, 10 * MS + 5 * MS * xs, BALANCER_OK, xs,
                         (uint64_t)k * MS);
    }
    for (unsigned k = 0; k <= 10; k++) {
        assert_near(balancer_score(b, 0, 2000 * MS), 10.0 + 5.0 * k,
                    0.05 * (10.0 + 5.0 * k));
        assert_int_equal(balancer_pick(b, 0, 2000 * MS, &x), 0);
    }
    balancer_destroy(b);
}

static void test_slope_guards(void **st)
{
    struct balancer_backend be[2] = {{.weight = 1}, {.weight = 1}};
    struct balancer_params p;
    struct balancer_adaptive a;
    (void)st;
    balancer_params_default(&p);
    assert_int_equal(
        balancer_adaptive_init(&a, &p, be, BALANCER_SCORE_PREDICTED), 0);
    assert_int_equal(a.mode, BALANCER_SCORE_PREDICTED);
    for (int k = 0; k < 200; k++) {
        /* No spread in x: the single-queue slope est / (x + 1). */
        balancer_adaptive_update(&a, 0, 30000, 4, 30000, true, 4, 0);
        /* Latency falling with load: clamped to 0. */
        unsigned x = (unsigned)(k % 10);
        balancer_adaptive_update(&a, 1, 20000, 4.5, 50000.0 - 3000.0 * x, true,
                                 x, 0);
    }
    assert_near(balancer_adaptive_slope(&a, 0), 6000.0, 1e-6);
    assert_near(balancer_adaptive_slope(&a, 1), 0.0, 1e-9);
    /* Predicted at in_flight 9 for backend 0: 30 + 6 * (9 - 4) = 60 ms. */
    be[0].in_flight = 9;
    assert_near(balancer_adaptive_score(&a, 0, 0), 60000.0, 1e-6);
    /* Below the operating point, never under est / (est_x + 1). */
    be[0].in_flight = 0;
    assert_near(balancer_adaptive_score(&a, 0, 0), 6000.0, 1e-6);
    balancer_adaptive_reset(&a, 0);
    assert_near(balancer_adaptive_score(&a, 0, 0), 0.0, 0);
    balancer_adaptive_fini(&a);
}

/* A queueing backend (steep) against one with spare concurrency (flat):
 * predicted prefers the flat one once the steep one has a queue, which
 * plain latency would not see. */
static void test_predicted_prefers_flat(void **st)
{
    struct balancer *b =
        mk("adaptive_ewma", 2, true, BALANCER_SCORE_PREDICTED, NULL);
    uint64_t rng = 11;
    unsigned x;
    (void)st;
    for (int k = 0; k < 1000; k++) {
        unsigned xs = (unsigned)balancer_rand_below(&rng, 10);
        uint64_t t = (uint64_t)k * MS;
        int i = balancer_pick(b, 0, t, &x);
        /* 0: 5 ms + 5 ms per request ahead; 1: 22 ms flat. */
        balancer_observe(b, (size_t)i, i == 0 ? 5 * MS + 5 * MS * xs : 22 * MS,
                         BALANCER_OK, i == 0 ? xs : 0, t);
    }
    /* Backend 0 predicts 5, 10, 15, 20 ms with 0..3 ahead (< 22), then
     * 25 ms: the fifth request goes to the flat backend. */
    for (unsigned k = 0; k < 4; k++) {
        assert_int_equal(balancer_pick(b, 0, 1000 * MS, &x), 0);
        assert_int_equal(x, k);
    }
    assert_int_equal(balancer_pick(b, 0, 1000 * MS, &x), 1);
    balancer_destroy(b);
}

/* Fills per-level sums from an exact hinge: latency s below k, s * (x + 1)
 * / k from k on, `w` samples at each level in [lo, hi]. */
static void hinge(double *c, double *sy, double *syy, size_t levels,
                  unsigned lo, unsigned hi, double s, double k, double w)
{
    memset(c, 0, levels * sizeof(*c));
    memset(sy, 0, levels * sizeof(*sy));
    *syy = 0.0;
    for (unsigned x = lo; x <= hi; x++) {
        double g = (x + 1.0) / k, y = s * (g > 1.0 ? g : 1.0);
        c[x] = w;
        sy[x] = w * y;
        *syy += w * y * y;
    }
}

/* The knee fit finds K and S of an exact hinge, reports no knee for a flat
 * line, and for data that only show the queue (every level at or beyond
 * the knee) gives the largest K that explains them. */
static void test_knee_fit(void **st)
{
    enum { L = 64 };
    double c[L], sy[L], syy, svc = 0;
    (void)st;
    hinge(c, sy, &syy, L, 0, 40, 10000.0, 8.0, 10.0);
    assert_int_equal(balancer_knee_fit(c, sy, syy, L, &svc), 8);
    assert_near(svc, 10000.0, 1e-6);
    hinge(c, sy, &syy, L, 20, 40, 5000.0, 32.0, 10.0);
    assert_int_equal(balancer_knee_fit(c, sy, syy, L, &svc), 32);
    assert_near(svc, 5000.0, 1e-6);
    /* Flat: no knee (K = levels), S the mean. */
    hinge(c, sy, &syy, L, 0, 40, 7000.0, 1000.0, 10.0);
    assert_int_equal(balancer_knee_fit(c, sy, syy, L, &svc), L);
    assert_near(svc, 7000.0, 1e-6);
    /* Only queued levels 10..20: any K <= 11 fits; the largest wins. */
    hinge(c, sy, &syy, L, 10, 20, 4000.0, 4.0, 10.0);
    assert_int_equal(balancer_knee_fit(c, sy, syy, L, &svc), 11);
}

/* A knee that does not clearly beat a flat line is not reported: a small
 * bump (1% of the level) under noise of 30% is flat. */
static void test_knee_fit_needs_evidence(void **st)
{
    enum { L = 64 };
    double c[L], sy[L], syy, svc = 0;
    (void)st;
    hinge(c, sy, &syy, L, 0, 10, 10000.0, 10.0, 20.0);
    /* Level 10 is 1.1 x S: a knee at 10.  Add noise (variance 30% of S
     * squared per sample) to the sum of squares. */
    assert_int_equal(balancer_knee_fit(c, sy, syy, L, &svc), 10);
    syy += 220.0 * 0.09 * 10000.0 * 10000.0;
    assert_int_equal(balancer_knee_fit(c, sy, syy, L, &svc), L);
}

/* Default parameters and the fill score over n backends. */
static void fill_init(struct balancer_adaptive *a, struct balancer_params *p,
                      size_t n, struct balancer_backend *be)
{
    (void)n; /* the state is sized for BALANCER_MAX_BACKENDS */
    balancer_params_default(p);
    assert_int_equal(balancer_adaptive_init(a, p, be, BALANCER_SCORE_FILL), 0);
}

/* Drives backend i with `n` samples of a hinge (k workers, s us) at
 * in-flight levels 0..hi, through the shared update (EWMA estimate). */
static void drive(struct balancer_adaptive *a, size_t i, unsigned n,
                  unsigned hi, double s, double k, uint64_t *now)
{
    struct balancer_adaptive_slot *sl = &a->s[i];
    for (unsigned j = 0; j < n; j++) {
        unsigned x = j % (hi + 1);
        double g = (x + 1.0) / k, y = s * (g > 1.0 ? g : 1.0);
        double est = sl->has ? 0.3 * y + 0.7 * sl->est_us : y;
        double ex = sl->has ? 0.3 * x + 0.7 * sl->est_x : x;
        *now += 100;
        balancer_adaptive_update(a, i, est, ex, y, true, x, *now);
    }
}

/* Every adaptive score (sma, ewma with each formula) estimates a backend
 * that has stopped completing at no less than its stall floor: after the
 * freeze only a few requests follow the ones it holds, although its
 * estimate and its (flat) slope say it is as fast as ever. */
static void test_stall_floor_every_score(void **st)
{
    static const struct {
        const char *mode;
        int score;
    } cases[] = {
        {"adaptive_ewma", -1},
        {"adaptive_ewma", BALANCER_SCORE_FILL},
        {"adaptive_ewma", BALANCER_SCORE_LATENCY_X_INFLIGHT},
        {"adaptive_sma", -1},
        {"adaptive_sma", BALANCER_SCORE_PREDICTED},
    };
    (void)st;
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct balancer *b = mk(cases[c].mode, 2, true, cases[c].score, NULL);
        uint64_t now = 0;
        unsigned x;
        int frozen = 0;
        /* Both answer in 2 ms; 0 is frozen from now on, with what it
         * holds; 1 answers every request 2 ms after it is sent. */
        feed(b, 0, 2 * MS, now);
        feed(b, 1, 2 * MS, now);
        for (int k = 0; k < 1000; k++) {
            int i;
            now += 50;
            i = balancer_pick(b, 0, now, &x);
            if (i == 0)
                frozen++;
            else
                balancer_observe(b, 1, 2 * MS, BALANCER_OK, x, now);
        }
        if (frozen > 5)
            fail_msg("%s score %d: %d of 1000 sent to the frozen backend",
                     cases[c].mode, cases[c].score, frozen);
        /* Held for 50 ms: scored at 50 ms or more. */
        assert_true(balancer_score(b, 0, now) >= 50.0);
        balancer_destroy(b);
    }
}

/* "fill": a free worker anywhere before a queue anywhere.  Backend 0
 * (5 ms, 4 workers) with 5 in flight would answer in about 5 * 6 / 4 =
 * 7.5 ms, faster than backend 1's 20 ms, but backend 1 has a free worker.
 * Up to the knee (+ the margin of one) backend 0 is preferred. */
static void test_fill_free_worker_first(void **st)
{
    struct balancer_backend be[2] = {{.weight = 1}, {.weight = 1}};
    struct balancer_params p;
    struct balancer_adaptive a;
    bool ok[2] = {true, true};
    uint64_t now = 0;
    (void)st;
    fill_init(&a, &p, 2, be);
    drive(&a, 0, 2000, 12, 5000.0, 4.0, &now);
    drive(&a, 1, 2000, 12, 20000.0, 1000.0, &now);
    assert_near(a.s[0].knee_k, 4.0, 0);
    assert_near(a.s[1].knee_k, BALANCER_KNEE_LEVELS, 0);
    /* The samples have just come in: no backend is stalled. */
    be[0].last_done_us = be[1].last_done_us = now;
    be[1].in_flight = 3;
    for (unsigned x = 0; x <= 4; x++) {
        be[0].in_flight = x;
        assert_int_equal(balancer_adaptive_pick(&a, ok, 2, now), 0);
    }
    be[0].in_flight = 5;
    assert_int_equal(balancer_adaptive_pick(&a, ok, 2, now), 1);
    /* The dashboard score is the predicted latency, queue included (the
     * estimate is an EWMA over the last few levels: 2%). */
    assert_near(balancer_adaptive_score(&a, 0, now), 5000.0 * 6 / 4, 150.0);
    assert_near(balancer_adaptive_score(&a, 1, now), 20000.0, 400.0);
    /* Both queued: the shorter expected delay wins (7.5 ms < 20 ms). */
    a.s[1].knee_k = 2.0;
    assert_int_equal(balancer_adaptive_pick(&a, ok, 2, now), 0);
    balancer_adaptive_fini(&a);
}

/* With slow start a returning backend's estimate starts over, but its
 * slope fit and knee are kept at half weight (decayed, not thrown away). */
static void test_reset_keeps_learning_with_slow_start(void **st)
{
    struct balancer_backend be[1] = {{.weight = 1}};
    struct balancer_params p;
    struct balancer_adaptive a;
    uint64_t now = 0;
    double w, k;
    (void)st;
    balancer_params_default(&p);
    p.ewma_score = BALANCER_SCORE_FILL;
    p.slow_start_ms = 1000;
    assert_int_equal(balancer_adaptive_init(&a, &p, be, BALANCER_SCORE_FILL),
                     0);
    drive(&a, 0, 2000, 12, 5000.0, 4.0, &now);
    w = a.s[0].fit_w;
    k = a.s[0].knee_k;
    assert_near(k, 4.0, 0);
    balancer_adaptive_reset(&a, 0);
    assert_false(a.s[0].has);
    assert_near(a.s[0].fit_w, w / 2, 1e-9);
    assert_near(a.s[0].knee_k, k, 0);
    balancer_adaptive_fini(&a);
    /* Without slow start, everything goes. */
    p.slow_start_ms = 0;
    assert_int_equal(balancer_adaptive_init(&a, &p, be, BALANCER_SCORE_FILL),
                     0);
    drive(&a, 0, 2000, 12, 5000.0, 4.0, &now);
    balancer_adaptive_reset(&a, 0);
    assert_near(a.s[0].fit_w, 0.0, 0);
    assert_near(a.s[0].knee_k, 0.0, 0);
    balancer_adaptive_fini(&a);
}

/* Beyond the highest level seen (+ 1 + max(2, 25%)) the curve is unknown:
 * a backend never driven past 8 in flight counts as queued at 12 even
 * though no knee was seen. */
static void test_fill_explores_stepwise(void **st)
{
    struct balancer_backend be[2] = {{.weight = 1}, {.weight = 1}};
    struct balancer_params p;
    struct balancer_adaptive a;
    bool ok[2] = {true, true};
    uint64_t now = 0;
    (void)st;
    fill_init(&a, &p, 2, be);
    drive(&a, 0, 900, 8, 5000.0, 1000.0, &now);
    drive(&a, 1, 900, 8, 20000.0, 1000.0, &now);
    assert_near(a.s[0].knee_top, 8.0, 0);
    /* The samples have just come in: no backend is stalled. */
    be[0].last_done_us = be[1].last_done_us = now;
    be[1].in_flight = 3;
    /* Known up to 8 + 1 + 2 = 11, free below that + the margin of 1. */
    be[0].in_flight = 11;
    assert_int_equal(balancer_adaptive_pick(&a, ok, 2, now), 0);
    be[0].in_flight = 12;
    assert_int_equal(balancer_adaptive_pick(&a, ok, 2, now), 1);
    balancer_adaptive_fini(&a);
}

/* A backend that turns 10x slower drifts off its curve: the table is
 * mostly forgotten and the fitted service time follows within a few
 * hundred samples, while the knee stays where it was. */
static void test_fill_drift_forgets(void **st)
{
    struct balancer_backend be[1] = {{.weight = 1}};
    struct balancer_params p;
    struct balancer_adaptive a;
    uint64_t now = 0;
    (void)st;
    fill_init(&a, &p, 1, be);
    drive(&a, 0, 3000, 12, 5000.0, 4.0, &now);
    assert_near(a.s[0].knee_s, 5000.0, 1.0);
    drive(&a, 0, 300, 12, 50000.0, 4.0, &now);
    assert_near(a.s[0].knee_k, 4.0, 0);
    assert_near(a.s[0].knee_s, 50000.0, 5000.0);
    balancer_adaptive_fini(&a);
}

/* A backend that keeps failing loses the free-worker preference: it then
 * competes as a queue on its penalised estimate. */
static void test_fill_failing_not_preferred(void **st)
{
    struct balancer_backend be[2] = {{.weight = 1}, {.weight = 1}};
    struct balancer_params p;
    struct balancer_adaptive a;
    bool ok[2] = {true, true};
    uint64_t now = 0;
    (void)st;
    fill_init(&a, &p, 2, be);
    drive(&a, 0, 2000, 12, 5000.0, 1000.0, &now);
    drive(&a, 1, 2000, 12, 20000.0, 4.0, &now);
    /* The samples have just come in: no backend is stalled. */
    be[0].last_done_us = be[1].last_done_us = now;
    be[0].in_flight = 3;
    be[1].in_flight = 6; /* queued: 20 * 7 / 4 = 35 ms */
    assert_int_equal(balancer_adaptive_pick(&a, ok, 2, now), 0);
    /* Three failures in a row (penalised into the estimate): 6% > 1%. */
    for (int k = 0; k < 3; k++)
        balancer_adaptive_update(&a, 0, 200000.0, 3.0, 5000000.0, false, 3,
                                 now += 100);
    assert_int_equal(balancer_adaptive_pick(&a, ok, 2, now), 1);
    balancer_adaptive_fini(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sma_window),
        cmocka_unit_test(test_ewma_arithmetic),
        cmocka_unit_test(test_ewma_decay),
        cmocka_unit_test(test_cold_start),
        cmocka_unit_test(test_staleness_probe),
        cmocka_unit_test(test_probe_chase),
        cmocka_unit_test(test_fast_failure_never_fast),
        cmocka_unit_test(test_ties_rotate),
        cmocka_unit_test(test_latency_x_inflight),
        cmocka_unit_test(test_load_aware_off_forces_latency),
        cmocka_unit_test(test_slope_converges),
        cmocka_unit_test(test_predicted_through_api),
        cmocka_unit_test(test_slope_guards),
        cmocka_unit_test(test_predicted_prefers_flat),
        cmocka_unit_test(test_knee_fit),
        cmocka_unit_test(test_knee_fit_needs_evidence),
        cmocka_unit_test(test_stall_floor_every_score),
        cmocka_unit_test(test_fill_free_worker_first),
        cmocka_unit_test(test_fill_explores_stepwise),
        cmocka_unit_test(test_reset_keeps_learning_with_slow_start),
        cmocka_unit_test(test_fill_drift_forgets),
        cmocka_unit_test(test_fill_failing_not_preferred),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
