/*
 * balancer_adaptive: what adaptive_sma and adaptive_ewma share — cold start,
 * one staleness probe per interval, rotation tie-breaks, the four score
 * formulas, the per-backend slope learner behind "predicted" and the knee
 * learner behind "fill".
 *
 * The slope learner.  A backend with K workers and mean service time S
 * answers a request that finds x others ahead in about S while x < K and
 * S * (x + 1) / K beyond: flat when it has spare concurrency, steep when it
 * queues.  Each backend fits latency ~ a + b * x by exponentially weighted
 * least squares over (inflight_at_dispatch, latency) of its own successful
 * samples, and the pick predicts the latency of one more request from the
 * policy's estimate moved along that line:
 *     predicted = est + b * (in_flight_now - est_x)
 * where est_x is the same average (SMA or EWMA) over the in-flight counts
 * the estimate's samples were dispatched at.  Until the samples spread in x
 * the slope is pulled (ridge prior) toward est / (est_x + 1), the
 * single-queue slope that makes "predicted" behave like
 * estimate * (in_flight + 1) anchored at the operating point.
 *
 * "predicted" approximates shortest expected delay, which is selfish: under
 * closed-loop load it queues behind a fast backend's workers while a slower
 * backend's workers sit idle, and throughput is clients / mean latency.
 * "fill" sends a request to a free worker first (the fastest backend that
 * has one) and only when every backend is busy to the shortest expected
 * delay.  That needs each backend's concurrency K: the knee learner fits
 * the hinge latency = S for x < K, S * (x + 1) / K beyond, to per-level
 * latency sums (see the KNEE_ constants).
 */
#include "balancer_impl.h"
#include "shm.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Per-sample forgetting of the fit: memory of about 50 samples. */
#define FIT_FORGET 0.98
/* Weight of the prior slope, in (samples x in-flight^2). */
#define FIT_PRIOR 2.0
/*
 * The knee learner ("fill").  Samples are summed per in-flight level with a
 * time decay of KNEE_TAU_MS (a backend's worker count rarely changes), and
 * refitted every KNEE_EVERY samples.  A knee is believed only when it beats
 * a flat line by KNEE_EVIDENCE residual variances.
 */
#define KNEE_TAU_MS 3000.0
#define KNEE_EVERY 32
#define KNEE_EVIDENCE 3.0
/* The curve is trusted up to the highest level with KNEE_SEEN samples of
 * weight, plus max(KNEE_SLACK_MIN, KNEE_SLACK x that level): beyond, load
 * explores upward a step at a time instead of flooding on a guess. */
#define KNEE_SEEN 4.0
#define KNEE_SLACK 0.25
#define KNEE_SLACK_MIN 2.0
/* A worker counts as free up to KNEE_MARGIN above the fitted knee: the fit
 * is good to a request or two, and an idle worker costs throughput where a
 * request queued behind one costs only a little latency. */
#define KNEE_MARGIN 1.0
/* The failure rate (an average with weight FILL_FAIL_W per sample) above
 * which a backend's free workers are not preferred. */
#define FILL_FAIL_W 0.02
#define FILL_FAIL_MAX 0.01
/* The drift detector: a slow average (weight KNEE_DRIFT per sample) of
 * sample / fitted curve.  Outside [1/KNEE_DRIFT_HI, KNEE_DRIFT_HI] the
 * backend has changed speed, and all but KNEE_FORGET_ON_DRIFT of the table
 * (which describes the old speed) is forgotten. */
#define KNEE_DRIFT 0.05
#define KNEE_DRIFT_HI 2.0
#define KNEE_FORGET_ON_DRIFT 0.05
/* After such a change, for KNEE_HOLD samples, a fit without a knee keeps
 * the knee found before. */
#define KNEE_HOLD 512

static void knee_decay(struct balancer_adaptive_slot *s, double d);

int balancer_adaptive_init(struct balancer_adaptive *a,
                           const struct balancer_params *p,
                           const struct balancer_backend *be,
                           enum balancer_score_mode def)
{
    memset(a, 0, sizeof(*a));
    a->p = *p;
    a->be = be;
    if (p->ewma_score >= (int)BALANCER_SCORE_LATENCY &&
        p->ewma_score <= (int)BALANCER_SCORE_FILL)
        a->mode = (enum balancer_score_mode)p->ewma_score;
    else
        a->mode = def;
    if (!p->load_aware)
        a->mode = BALANCER_SCORE_LATENCY;
    a->s = shm_calloc(BALANCER_MAX_BACKENDS, sizeof(*a->s));
    if (!a->s) {
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

void balancer_adaptive_fini(struct balancer_adaptive *a)
{
    shm_free(a->s);
    a->s = NULL;
}

/* With slow start, what was learnt about the backend's response to load
 * (the slope fit, the knee table and knee) is kept at KEEP_ON_RETURN of its
 * weight: it is decayed, not thrown away, while the estimate, full of the
 * outage's penalties, starts over.  Without, everything is forgotten. */
#define KEEP_ON_RETURN 0.5

void balancer_adaptive_reset(struct balancer_adaptive *a, size_t idx)
{
    struct balancer_adaptive_slot *s = &a->s[idx];
    struct balancer_adaptive_slot keep = *s;

    memset(s, 0, sizeof(*s));
    if (a->p.slow_start_ms == 0)
        return;
    s->fit_w = keep.fit_w * KEEP_ON_RETURN;
    s->fit_mx = keep.fit_mx;
    s->fit_my = keep.fit_my;
    s->fit_vxx = keep.fit_vxx * KEEP_ON_RETURN;
    s->fit_cxy = keep.fit_cxy * KEEP_ON_RETURN;
    s->fit_us = keep.fit_us;
    memcpy(s->knee_c, keep.knee_c, sizeof(s->knee_c));
    memcpy(s->knee_sy, keep.knee_sy, sizeof(s->knee_sy));
    s->knee_syy = keep.knee_syy;
    knee_decay(s, KEEP_ON_RETURN);
    s->knee_k = keep.knee_k;
    s->knee_top = keep.knee_top;
    s->knee_s = keep.knee_s;
    s->knee_us = keep.knee_us;
    s->knee_drift = keep.knee_drift;
}

void balancer_adaptive_clear(struct balancer_adaptive *a, size_t idx)
{
    memset(&a->s[idx], 0, sizeof(a->s[idx]));
}

double balancer_adaptive_slope(const struct balancer_adaptive *a, size_t idx)
{
    const struct balancer_adaptive_slot *s = &a->s[idx];
    double prior = s->est_us / (s->est_x + 1.0);
    double b = (s->fit_cxy + FIT_PRIOR * prior) / (s->fit_vxx + FIT_PRIOR);
    return b > 0.0 ? b : 0.0;
}

unsigned balancer_knee_fit(const double *c, const double *sy, double syy,
                           size_t levels, double *svc)
{
    /* Below K the model is S; from K on it is S * (x + 1) / K.  With the
     * level sums split at K, the least-squares S is A / B and the fit is
     * best where A^2 / B is largest:
     *   A = sum_{x<K} sy + (1/K) sum_{x>=K} sy (x+1)
     *   B = sum_{x<K} c + (1/K^2) sum_{x>=K} c (x+1)^2 */
    double hi_sy = 0.0, hi_c = 0.0, lo_sy = 0.0, lo_c = 0.0, best = -1.0;
    double flat, n, sse, best_s = 0.0;
    unsigned best_k = (unsigned)levels;

    for (size_t x = 0; x < levels; x++) {
        hi_sy += sy[x] * (double)(x + 1);
        hi_c += c[x] * (double)(x + 1) * (double)(x + 1);
    }
    for (size_t k = 1; k <= levels; k++) {
        double kd = (double)k, A, B, q;
        lo_sy += sy[k - 1];
        lo_c += c[k - 1];
        hi_sy -= sy[k - 1] * kd;
        hi_c -= c[k - 1] * kd * kd;
        A = lo_sy + hi_sy / kd;
        B = lo_c + hi_c / (kd * kd);
        if (!(B > 0.0))
            continue;
        q = A * A / B;
        if (q >= best * (1.0 - 1e-9)) {
            best = q;
            best_k = (unsigned)k;
            best_s = A / B;
        }
    }
    /* A knee must explain clearly more than no knee (K = levels: latency
     * flat everywhere) would: KNEE_EVIDENCE residual variances. */
    flat = lo_c > 0.0 ? lo_sy * lo_sy / lo_c : 0.0;
    n = lo_c;
    sse = syy - best;
    if (best_k < levels && n > 2.0 &&
        best - flat < KNEE_EVIDENCE * (sse > 0.0 ? sse : 0.0) / (n - 2.0)) {
        *svc = lo_c > 0.0 ? lo_sy / lo_c : 0.0;
        return (unsigned)levels;
    }
    *svc = best_s;
    return best_k;
}

/* The "fill" prediction for one more request on backend idx with x in
 * flight: the service time while a worker is free, the queueing line
 * beyond; *queued tells which. */
static double fill_predict(const struct balancer_adaptive *a, size_t idx,
                           double est, double est_x, double x, bool *queued)
{
    const struct balancer_adaptive_slot *s = &a->s[idx];
    double k = s->knee_k, g, svc, known;

    *queued = false;
    if (!(k > 0.0)) /* no fit yet: the predicted line */
        return est + balancer_adaptive_slope(a, idx) * (x - est_x);
    /* A backend that fails more than now and then has no worker worth
     * filling: it competes as a queue, on its penalised estimate. */
    if (s->fail > FILL_FAIL_MAX) {
        *queued = true;
        return est * (x + 1.0) / (est_x + 1.0);
    }
    known = s->knee_top + 1.0 + fmax(KNEE_SLACK_MIN, KNEE_SLACK * s->knee_top);
    if (k > known)
        k = known;
    /* The service time the estimate implies at its operating point. */
    g = (est_x + 1.0) / k;
    svc = g > 1.0 ? est / g : est;
    if (x < k + KNEE_MARGIN)
        return svc;
    *queued = true;
    return svc * (x + 1.0) / k;
}

static double score_with(const struct balancer_adaptive *a, size_t idx,
                         double est, double est_x, bool *queued,
                         uint64_t now_us)
{
    double x = (double)a->be[idx].in_flight;
    double pred, floor, stall = balancer_stall_floor_us(&a->be[idx], now_us);

    bool stalled = est < stall;

    /* What is still out bounds the estimate from below: a backend that has
     * stopped answering produces no sample to say so. */
    if (stalled)
        est = stall;
    *queued = false;
    switch (a->mode) {
    case BALANCER_SCORE_LATENCY:
        return est;
    case BALANCER_SCORE_LATENCY_X_INFLIGHT:
        return est * (x + 1.0);
    case BALANCER_SCORE_PREDICTED:
        pred = est + balancer_adaptive_slope(a, idx) * (x - est_x);
        /* Below the operating point the line is extrapolated; never trust
         * it below the single-queue bound est / (est_x + 1). */
        floor = est / (est_x + 1.0);
        return pred > floor ? pred : floor;
    case BALANCER_SCORE_FILL:
        pred = fill_predict(a, idx, est, est_x, x, queued);
        /* A backend that has stopped answering has no free worker. */
        *queued = *queued || stalled;
        return pred;
    }
    return est;
}
double balancer_adaptive_score(const struct balancer_adaptive *a, size_t idx,
                               uint64_t now_us)
{
    const struct balancer_adaptive_slot *s = &a->s[idx];
    bool queued;
    if (!s->has)
        return 0.0;
    return score_with(a, idx, s->est_us, s->est_x, &queued, now_us);
}

size_t balancer_adaptive_pick(struct balancer_adaptive *a, const bool *eligible,
                              size_t n, uint64_t now_us)
{
    uint64_t interval = (uint64_t)a->p.probe_interval_ms * 1000u;
    size_t best = n;
    double best_score = 0.0, known_sum = 0.0;
    bool best_queued = false;
    size_t known = 0;

    /* Cold start: an idle backend without samples goes first. */
    for (size_t k = 0; k < n; k++) {
        size_t i = (a->rot + k) % n;
        if (eligible[i] && !a->s[i].has && a->be[i].in_flight == 0) {
            best = i;
            goto done;
        }
    }
    /* Staleness: the estimate that has gone longest without a sample, if
     * older than the interval, gets one real request per interval. */
    if (interval > 0) {
        uint64_t oldest = 0;
        for (size_t i = 0; i < n; i++) {
            const struct balancer_adaptive_slot *s = &a->s[i];
            uint64_t age;
            if (!eligible[i] || !s->has || a->be[i].in_flight > 0)
                continue;
            age = now_us > s->last_us ? now_us - s->last_us : 0;
            if (!s->chase) {
                if (age < interval)
                    continue;
                if (s->probed && now_us - s->probe_us < interval)
                    continue;
            } else {
                age = UINT64_MAX; /* a chase goes first */
            }
            if (best == n || age > oldest) {
                best = i;
                oldest = age;
            }
        }
        if (best < n) {
            a->s[best].probed = true;
            a->s[best].probe_us = now_us;
            a->s[best].probe_out = true;
            a->s[best].chase = false;
            goto done;
        }
    }
    for (size_t i = 0; i < n; i++)
        if (a->s[i].has) {
            known_sum += a->s[i].est_us;
            known++;
        }
    for (size_t k = 0; k < n; k++) {
        size_t i = (a->rot + k) % n;
        double sc;
        bool q = false;
        if (!eligible[i])
            continue;
        if (a->s[i].has) {
            sc = score_with(a, i, a->s[i].est_us, a->s[i].est_x, &q, now_us);
        } else if (known > 0) { /* busy and cold: assume the average */
            sc = fmax(known_sum / (double)known,
                      balancer_stall_floor_us(&a->be[i], now_us)) *
                 ((double)a->be[i].in_flight + 1.0);
            /* Its capacity is unknown: no better than a queue. */
            q = a->mode == BALANCER_SCORE_FILL;
        } else { /* nothing known anywhere: fewest in flight */
            sc = (double)a->be[i].in_flight;
        }
        /* Any free worker ("fill") before any queue, then the score. */
        if (best == n || (!q && best_queued) ||
            (q == best_queued && sc < best_score)) {
            best = i;
            best_score = sc;
            best_queued = q;
        }
    }
done:
    a->rot = (best + 1) % n;
    return best;
}

static void knee_decay(struct balancer_adaptive_slot *s, double d)
{
    for (size_t i = 0; i < BALANCER_KNEE_LEVELS; i++) {
        s->knee_c[i] *= d;
        s->knee_sy[i] *= d;
    }
    s->knee_syy *= d;
}

/* Adds one successful sample to the knee learner and refits when due. */
static void knee_add(struct balancer_adaptive_slot *s, double latency_us,
                     unsigned x, uint64_t now_us)
{
    size_t lvl = x < BALANCER_KNEE_LEVELS ? x : BALANCER_KNEE_LEVELS - 1;
    unsigned k;

    if (s->knee_k > 0.0 && s->knee_s > 0.0) {
        double g = ((double)x + 1.0) / s->knee_k;
        double r = latency_us / (s->knee_s * (g > 1.0 ? g : 1.0));
        s->knee_drift += KNEE_DRIFT * (r - s->knee_drift);
        if (s->knee_drift > KNEE_DRIFT_HI ||
            s->knee_drift < 1.0 / KNEE_DRIFT_HI) {
            knee_decay(s, KNEE_FORGET_ON_DRIFT);
            s->knee_drift = 1.0;
            s->knee_hold = KNEE_HOLD;
            s->knee_new = KNEE_EVERY; /* refit with this sample */
        }
    }
    if (s->knee_hold > 0)
        s->knee_hold--;
    s->knee_c[lvl] += 1.0;
    s->knee_sy[lvl] += latency_us;
    s->knee_syy += latency_us * latency_us;
    if (++s->knee_new < KNEE_EVERY && s->knee_k > 0.0)
        return;
    if (s->knee_us > 0 && now_us > s->knee_us)
        knee_decay(
            s, exp(-(double)(now_us - s->knee_us) / (KNEE_TAU_MS * 1000.0)));
    k = balancer_knee_fit(s->knee_c, s->knee_sy, s->knee_syy,
                          BALANCER_KNEE_LEVELS, &s->knee_s);
    /* A change of speed leaves the worker count alone: until the table has
     * refilled, no evidence of a knee does not erase the one known. */
    if (!(k == BALANCER_KNEE_LEVELS && s->knee_hold > 0 && s->knee_k > 0.0))
        s->knee_k = (double)k;
    if (!(s->knee_drift > 0.0))
        s->knee_drift = 1.0;
    s->knee_top = 0.0;
    for (size_t i = BALANCER_KNEE_LEVELS; i-- > 0;)
        if (s->knee_c[i] >= KNEE_SEEN) {
            s->knee_top = (double)i;
            break;
        }
    s->knee_new = 0;
    s->knee_us = now_us;
}

void balancer_adaptive_update(struct balancer_adaptive *a, size_t idx,
                              double est_us, double est_x, double latency_us,
                              bool ok, unsigned x, uint64_t now_us)
{
    struct balancer_adaptive_slot *s = &a->s[idx];
    double lam = FIT_FORGET, w, dx, xd = (double)x;

    /* A probe that finds the backend at less than half its estimate has
     * found a recovery: keep probing (still one at a time) until the
     * estimate has caught up, instead of one probe per interval. */
    if (s->probe_out) {
        s->probe_out = false;
        s->chase = ok && latency_us < 0.5 * s->est_us;
    }
    s->fail += FILL_FAIL_W * ((ok ? 0.0 : 1.0) - s->fail);
    s->has = true;
    s->est_us = est_us;
    s->est_x = est_x;
    s->last_us = now_us;
    /* A penalised failure says nothing about load: keep it out of the
     * fit (it already dominates the estimate). */
    if (!ok)
        return;
    if (a->p.ewma_decay_ms > 0 && s->fit_w > 0.0 && now_us > s->fit_us)
        lam *= exp(-(double)(now_us - s->fit_us) /
                   ((double)a->p.ewma_decay_ms * 1000.0));
    w = lam * s->fit_w + 1.0;
    dx = xd - s->fit_mx;
    s->fit_mx += dx / w;
    s->fit_my += (latency_us - s->fit_my) / w;
    s->fit_vxx = lam * s->fit_vxx + dx * (xd - s->fit_mx);
    s->fit_cxy = lam * s->fit_cxy + dx * (latency_us - s->fit_my);
    s->fit_w = w;
    s->fit_us = now_us;
    if (a->mode == BALANCER_SCORE_FILL)
        knee_add(s, latency_us, x, now_us);
}
