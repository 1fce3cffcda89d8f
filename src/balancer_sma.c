/*
 * balancer_sma: adaptive_sma — the estimate of a backend is the mean of its
 * last sma_window latency samples (failures enter penalised).  Default
 * score: estimate * (in_flight + 1) when load_aware; params.ewma_score
 * selects another formula (see balancer_adaptive.c).
 */
#include "balancer_impl.h"
#include "shm.h"

#include <stdlib.h>

struct sma {
    struct balancer_adaptive a;
    unsigned win;
    uint64_t *lat;   /* n rings of win latency samples (us) */
    unsigned *xs;    /* n rings of win in-flight-at-dispatch values */
    unsigned *count; /* samples in each ring (<= win) */
    unsigned *head;  /* next slot to write */
    uint64_t *sum;   /* exact sums: no drift */
    uint64_t *sumx;
};

static void sma_destroy(void *state)
{
    struct sma *s = state;
    if (!s)
        return;
    balancer_adaptive_fini(&s->a);
    shm_free(s->lat);
    shm_free(s->xs);
    shm_free(s->count);
    shm_free(s->head);
    shm_free(s->sum);
    shm_free(s->sumx);
    shm_free(s);
}

static void *sma_create(const struct balancer_params *p,
                        const struct balancer_backend *backends)
{
    size_t n = BALANCER_MAX_BACKENDS;
    struct sma *s = shm_calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->win = p->sma_window ? p->sma_window : 1;
    if (balancer_adaptive_init(&s->a, p, backends,
                               BALANCER_SCORE_LATENCY_X_INFLIGHT) < 0)
        goto fail;
    s->lat = shm_calloc(n * s->win, sizeof(*s->lat));
    s->xs = shm_calloc(n * s->win, sizeof(*s->xs));
    s->count = shm_calloc(n, sizeof(*s->count));
    s->head = shm_calloc(n, sizeof(*s->head));
    s->sum = shm_calloc(n, sizeof(*s->sum));
    s->sumx = shm_calloc(n, sizeof(*s->sumx));
    if (!s->lat || !s->xs || !s->count || !s->head || !s->sum || !s->sumx)
        goto fail;
    return s;
fail:
    sma_destroy(s);
    return NULL;
}

static size_t sma_pick(void *state, const bool *eligible, size_t n,
                       uint64_t now_us)
{
    struct sma *s = state;
    return balancer_adaptive_pick(&s->a, eligible, n, now_us);
}

static void sma_observe(void *state, size_t idx, uint64_t latency_us, bool ok,
                        unsigned x, uint64_t now_us)
{
    struct sma *s = state;
    size_t slot = idx * s->win + s->head[idx];

    if (s->count[idx] == s->win) {
        s->sum[idx] -= s->lat[slot];
        s->sumx[idx] -= s->xs[slot];
    } else {
        s->count[idx]++;
    }
    s->lat[slot] = latency_us;
    s->xs[slot] = x;
    s->sum[idx] += latency_us;
    s->sumx[idx] += x;
    s->head[idx] = (s->head[idx] + 1) % s->win;
    balancer_adaptive_update(&s->a, idx, (double)s->sum[idx] / s->count[idx],
                             (double)s->sumx[idx] / s->count[idx],
                             (double)latency_us, ok, x, now_us);
}

static void sma_reset(void *state, size_t idx)
{
    struct sma *s = state;
    s->count[idx] = 0;
    s->head[idx] = 0;
    s->sum[idx] = 0;
    s->sumx[idx] = 0;
    balancer_adaptive_reset(&s->a, idx);
}

static void sma_clear(void *state, size_t idx)
{
    struct sma *s = state;
    s->count[idx] = 0;
    s->head[idx] = 0;
    s->sum[idx] = 0;
    s->sumx[idx] = 0;
    balancer_adaptive_clear(&s->a, idx);
}

static double sma_score(void *state, size_t idx, uint64_t now_us)
{
    struct sma *s = state;
    return balancer_adaptive_score(&s->a, idx, now_us) / 1000.0;
}

const struct balancer_policy balancer_policy_sma = {
    .name = "adaptive_sma",
    .create = sma_create,
    .destroy = sma_destroy,
    .pick = sma_pick,
    .observe = sma_observe,
    .score = sma_score,
    .reset = sma_reset,
    .clear = sma_clear,
};
