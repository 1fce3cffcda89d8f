/*
 * balancer_least_conn: least-conn — the backend with the fewest requests in
 * flight per unit of weight; ties are broken in rotation (the scan starts
 * after the last pick) so equal backends share evenly.
 */
#include "balancer_impl.h"
#include "shm.h"

#include <stdlib.h>

struct lc {
    const struct balancer_backend *be;
    size_t rot;
};

static void *lc_create(const struct balancer_params *p,
                       const struct balancer_backend *backends)
{
    struct lc *l = shm_calloc(1, sizeof(*l));
    (void)p;
    if (!l)
        return NULL;
    l->be = backends;
    return l;
}

static void lc_destroy(void *state)
{
    shm_free(state);
}

static size_t lc_pick(void *state, const bool *eligible, size_t n,
                      uint64_t now_us)
{
    struct lc *l = state;
    size_t best = n;

    (void)now_us;
    for (size_t k = 0; k < n; k++) {
        size_t i = (l->rot + k) % n;
        if (!eligible[i])
            continue;
        /* in_flight[i] / w[i] < in_flight[best] / w[best], in integers */
        if (best == n || (uint64_t)l->be[i].in_flight * l->be[best].weight <
                             (uint64_t)l->be[best].in_flight * l->be[i].weight)
            best = i;
    }
    l->rot = (best + 1) % n;
    return best;
}

static void lc_observe(void *state, size_t idx, uint64_t latency_us, bool ok,
                       unsigned x, uint64_t now_us)
{
    (void)state, (void)idx, (void)latency_us, (void)ok, (void)x, (void)now_us;
}

/* The dashboard number: requests in flight per unit of weight. */
static double lc_score(void *state, size_t idx, uint64_t now_us)
{
    struct lc *l = state;
    (void)now_us;
    return (double)l->be[idx].in_flight / l->be[idx].weight;
}

const struct balancer_policy balancer_policy_least_conn = {
    .name = "least-conn",
    .create = lc_create,
    .destroy = lc_destroy,
    .pick = lc_pick,
    .observe = lc_observe,
    .score = lc_score,
};
