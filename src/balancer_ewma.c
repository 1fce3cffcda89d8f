/*
 * balancer_ewma: adaptive_ewma — estimate <- alpha * sample +
 * (1 - alpha) * estimate, per backend, failures penalised.  With
 * ewma_decay_ms > 0 the old estimate's weight also fades with the time since
 * the last sample: keep = (1 - alpha) * exp(-dt / decay), so a backend
 * sampled rarely (staleness probes) trusts a fresh sample more.  Default
 * score: predicted (the slope learner) when load_aware; ewma_score = fill
 * opts into free workers first (the knee learner).
 */
#include "balancer_impl.h"
#include "shm.h"

#include <math.h>
#include <stdlib.h>

struct ewma {
    struct balancer_adaptive a;
};

static void *ewma_create(const struct balancer_params *p,
                         const struct balancer_backend *backends)
{
    struct ewma *e = shm_calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    if (balancer_adaptive_init(&e->a, p, backends, BALANCER_SCORE_PREDICTED) <
        0) {
        shm_free(e);
        return NULL;
    }
    return e;
}

static void ewma_destroy(void *state)
{
    struct ewma *e = state;
    if (!e)
        return;
    balancer_adaptive_fini(&e->a);
    shm_free(e);
}

static size_t ewma_pick(void *state, const bool *eligible, size_t n,
                        uint64_t now_us)
{
    struct ewma *e = state;
    return balancer_adaptive_pick(&e->a, eligible, n, now_us);
}

static void ewma_observe(void *state, size_t idx, uint64_t latency_us, bool ok,
                         unsigned x, uint64_t now_us)
{
    struct ewma *e = state;
    const struct balancer_adaptive_slot *s = &e->a.s[idx];
    double y = (double)latency_us, xd = (double)x;
    double keep = 1.0 - e->a.p.ewma_alpha;
    double est = y, est_x = xd;

    if (s->has) {
        if (e->a.p.ewma_decay_ms > 0 && now_us > s->last_us)
            keep *= exp(-(double)(now_us - s->last_us) /
                        ((double)e->a.p.ewma_decay_ms * 1000.0));
        est = (1.0 - keep) * y + keep * s->est_us;
        est_x = (1.0 - keep) * xd + keep * s->est_x;
    }
    balancer_adaptive_update(&e->a, idx, est, est_x, y, ok, x, now_us);
}

static void ewma_reset(void *state, size_t idx)
{
    struct ewma *e = state;
    balancer_adaptive_reset(&e->a, idx);
}

static void ewma_clear(void *state, size_t idx)
{
    struct ewma *e = state;
    balancer_adaptive_clear(&e->a, idx);
}

static double ewma_score(void *state, size_t idx, uint64_t now_us)
{
    struct ewma *e = state;
    return balancer_adaptive_score(&e->a, idx, now_us) / 1000.0;
}

const struct balancer_policy balancer_policy_ewma = {
    .name = "adaptive_ewma",
    .create = ewma_create,
    .destroy = ewma_destroy,
    .pick = ewma_pick,
    .observe = ewma_observe,
    .score = ewma_score,
    .reset = ewma_reset,
    .clear = ewma_clear,
};
