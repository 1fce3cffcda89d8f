/*
 * balancer_adaptive: what adaptive_sma and adaptive_ewma share — cold start,
 * one staleness probe per interval, rotation tie-breaks, the three score
 * formulas, and the per-backend slope learner behind "predicted".
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
 */
#include "balancer_impl.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Per-sample forgetting of the fit: memory of about 50 samples. */
#define FIT_FORGET 0.98
/* Weight of the prior slope, in (samples x in-flight^2). */
#define FIT_PRIOR 2.0

int balancer_adaptive_init(struct balancer_adaptive *a,
                           const struct balancer_params *p, size_t n,
                           const struct balancer_backend *be,
                           enum balancer_score_mode def)
{
    memset(a, 0, sizeof(*a));
    a->p = *p;
    a->n = n;
    a->be = be;
    if (p->ewma_score >= (int)BALANCER_SCORE_LATENCY &&
        p->ewma_score <= (int)BALANCER_SCORE_PREDICTED)
        a->mode = (enum balancer_score_mode)p->ewma_score;
    else
        a->mode = def;
    if (!p->load_aware)
        a->mode = BALANCER_SCORE_LATENCY;
    a->s = calloc(n, sizeof(*a->s));
    if (!a->s) {
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

void balancer_adaptive_fini(struct balancer_adaptive *a)
{
    free(a->s);
    a->s = NULL;
}

void balancer_adaptive_reset(struct balancer_adaptive *a, size_t idx)
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

static double score_with(const struct balancer_adaptive *a, size_t idx,
                         double est, double est_x)
{
    double x = (double)a->be[idx].in_flight;
    double pred, floor;

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
    }
    return est;
}

double balancer_adaptive_score(const struct balancer_adaptive *a, size_t idx,
                               uint64_t now_us)
{
    const struct balancer_adaptive_slot *s = &a->s[idx];
    (void)now_us;
    if (!s->has)
        return 0.0;
    return score_with(a, idx, s->est_us, s->est_x);
}

size_t balancer_adaptive_pick(struct balancer_adaptive *a, const bool *eligible,
                              uint64_t now_us)
{
    uint64_t interval = (uint64_t)a->p.probe_interval_ms * 1000u;
    size_t n = a->n, best = n;
    double best_score = 0.0, known_sum = 0.0;
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
        if (!eligible[i])
            continue;
        if (a->s[i].has)
            sc = score_with(a, i, a->s[i].est_us, a->s[i].est_x);
        else if (known > 0) /* busy and cold: assume the average */
            sc = known_sum / (double)known * ((double)a->be[i].in_flight + 1.0);
        else /* nothing known anywhere: fewest in flight */
            sc = (double)a->be[i].in_flight;
        if (best == n || sc < best_score) {
            best = i;
            best_score = sc;
        }
    }
done:
    a->rot = (best + 1) % n;
    return best;
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
}
