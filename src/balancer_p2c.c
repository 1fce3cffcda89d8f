/*
 * balancer_p2c: p2c-peak-ewma — power of two random choices (Finagle,
 * Linkerd).  Two distinct eligible backends are drawn with the seeded RNG
 * and the one with the lower cost * (in_flight + 1) wins.  The cost is a
 * peak-sensitive EWMA in time: a sample above it replaces it at once, a
 * sample below pulls it with weight 1 - w, w = exp(-dt / tau), dt the time
 * since the previous sample (tau = peak_tau_ms).  While a backend gets no
 * samples its cost fades toward zero with the same tau, so an avoided
 * backend is eventually tried again.
 */
#include "balancer_impl.h"
#include "shm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct p2c_slot {
    bool has;
    double cost_us;
    uint64_t stamp_us;
};

struct p2c {
    const struct balancer_backend *be;
    double tau_us;
    double penalty_us;
    uint64_t rng;
    struct p2c_slot s[BALANCER_MAX_BACKENDS];
};

static void *p2c_create(const struct balancer_params *p,
                        const struct balancer_backend *backends)
{
    struct p2c *c = shm_calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->be = backends;
    c->tau_us = (double)(p->peak_tau_ms ? p->peak_tau_ms : 1) * 1000.0;
    c->penalty_us = (double)p->penalty_ms * 1000.0;
    c->rng = p->seed;
    return c;
}

static void p2c_destroy(void *state)
{
    shm_free(state);
}

static double cost_now(const struct p2c *c, size_t i, uint64_t now_us)
{
    const struct p2c_slot *s = &c->s[i];
    double dt = now_us > s->stamp_us ? (double)(now_us - s->stamp_us) : 0.0;
    return s->cost_us * exp(-dt / c->tau_us);
}

static double load(const struct p2c *c, size_t i, uint64_t now_us)
{
    double pending = (double)c->be[i].in_flight;
    /* A backend that has stopped answering costs at least its stall. */
    double stall = balancer_stall_floor_us(&c->be[i], now_us);
    if (!c->s[i].has) /* cold: free when idle, else a penalty (Finagle) */
        return pending == 0.0 ? 0.0 : fmax(c->penalty_us, stall) * pending;
    return fmax(cost_now(c, i, now_us), stall) * (pending + 1.0);
}

static size_t p2c_pick(void *state, const bool *eligible, size_t n,
                       uint64_t now_us)
{
    struct p2c *c = state;
    size_t cand[BALANCER_MAX_BACKENDS], m = 0, i, j;

    for (size_t k = 0; k < n; k++)
        if (eligible[k])
            cand[m++] = k;
    if (m <= 1) /* the caller guarantees one; stay safe without */
        return m ? cand[0] : 0;
    i = balancer_rand_below(&c->rng, m);
    j = balancer_rand_below(&c->rng, m - 1);
    if (j >= i)
        j++;
    i = cand[i];
    j = cand[j];
    return load(c, j, now_us) < load(c, i, now_us) ? j : i;
}

static void p2c_observe(void *state, size_t idx, uint64_t latency_us, bool ok,
                        unsigned x, uint64_t now_us)
{
    struct p2c *c = state;
    struct p2c_slot *s = &c->s[idx];
    double y = (double)latency_us;

    (void)ok, (void)x;
    if (!s->has || y > s->cost_us) {
        s->cost_us = y;
    } else {
        double dt = now_us > s->stamp_us ? (double)(now_us - s->stamp_us) : 0.0;
        double w = exp(-dt / c->tau_us);
        s->cost_us = s->cost_us * w + y * (1.0 - w);
    }
    s->has = true;
    s->stamp_us = now_us;
}

static void p2c_reset(void *state, size_t idx)
{
    struct p2c *c = state;
    c->s[idx].has = false;
}

static void p2c_clear(void *state, size_t idx)
{
    struct p2c *c = state;
    memset(&c->s[idx], 0, sizeof(c->s[idx]));
}

/* The dashboard number: the decayed cost in ms times (in_flight + 1). */
static double p2c_score(void *state, size_t idx, uint64_t now_us)
{
    struct p2c *c = state;
    return load(c, idx, now_us) / 1000.0;
}

const struct balancer_policy balancer_policy_p2c = {
    .name = "p2c-peak-ewma",
    .create = p2c_create,
    .destroy = p2c_destroy,
    .pick = p2c_pick,
    .observe = p2c_observe,
    .score = p2c_score,
    .reset = p2c_reset,
    .clear = p2c_clear,
};
