/*
 * balancer_rr: round-robin — smooth weighted round-robin, the nginx
 * algorithm: every eligible backend's current weight grows by its weight,
 * the largest is picked and loses the total.  Equal weights give strict
 * order (a b c a b c), weights 5,1,1 give a a b a c a a.  Ineligible
 * backends are skipped and keep their current weight.
 */
#include "balancer_impl.h"
#include "shm.h"

#include <stdlib.h>

struct rr {
    const struct balancer_backend *be;
    long long cur[BALANCER_MAX_BACKENDS];
};

static void *rr_create(const struct balancer_params *p,
                       const struct balancer_backend *backends)
{
    struct rr *r = shm_calloc(1, sizeof(*r));
    (void)p;
    if (!r)
        return NULL;
    r->be = backends;
    return r;
}

static void rr_destroy(void *state)
{
    shm_free(state);
}

static size_t rr_pick(void *state, const bool *eligible, size_t n,
                      uint64_t now_us)
{
    struct rr *r = state;
    long long total = 0;
    size_t best = n;

    (void)now_us;
    for (size_t i = 0; i < n; i++) {
        if (!eligible[i])
            continue;
        r->cur[i] += r->be[i].weight;
        total += r->be[i].weight;
        if (best == n || r->cur[i] > r->cur[best])
            best = i;
    }
    r->cur[best] -= total;
    return best;
}

/* A new backend in slot idx starts with no credit. */
static void rr_clear(void *state, size_t idx)
{
    struct rr *r = state;
    r->cur[idx] = 0;
}

/* The dashboard number: requests in flight per unit of weight. */
static double rr_score(void *state, size_t idx, uint64_t now_us)
{
    struct rr *r = state;
    (void)now_us;
    return (double)r->be[idx].in_flight / r->be[idx].weight;
}

const struct balancer_policy balancer_policy_rr = {
    .name = "round-robin",
    .create = rr_create,
    .destroy = rr_destroy,
    .pick = rr_pick,
    .observe = NULL, /* the order owes nothing to how requests went */
    .score = rr_score,
    .clear = rr_clear,
};
