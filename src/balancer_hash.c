/*
 * balancer_hash: consistent hashing with bounded load (mode = hash).
 *
 * Each backend owns points on a 64-bit ring, HASH_POINTS per unit of
 * weight (fewer, in proportion, when the total would pass HASH_MAX_POINTS).
 * A key goes to the owner of the first point at or after the key's place;
 * an ineligible backend (ejected, down, tried, full) is passed over, so
 * losing one of N backends moves only the keys it owned, about 1/N.  A
 * point's place depends on its backend's slot index and its replica
 * number only, so the ring is the same in every run with the same slots.
 *
 * Bounded load (Mirrokni, Thorup and Zadimoghaddam, 2017; HAProxy's
 * hash-balance-factor): with T requests in flight on the eligible
 * backends and W their total weight, backend i may take the request only
 * if in_flight_i + 1 <= ceil(c * (T + 1) * w_i / W); otherwise the walk
 * goes on to the next backend on the ring.  The capacities add up to at
 * least T + 1 when c >= 1, so some eligible backend always has room, and
 * after the pick no backend holds more than c times the mean (+1 for the
 * rounding).  c = 0 turns the bound off.
 *
 * The ring is built at the first pick and again when a pick sees other
 * slots (n) or a changed weight; eligibility changes need no rebuild.  A pick
 * costs a binary search plus a short walk.
 */
#include "balancer_impl.h"
#include "shm.h"

#include <math.h>
#include <stdlib.h>

/* Points per unit of weight: with 5 equal backends a share's standard
 * deviation is about 0.2 / sqrt(1024), 0.6 percentage points. */
#define HASH_POINTS 1024u
#define HASH_MAX_POINTS 65536u

struct point {
    uint64_t at;
    uint32_t be;
};

struct hash {
    size_t n; /* backend slots the ring was built for (0: none yet) */
    const struct balancer_backend *be;
    double factor;
    uint64_t seq; /* keyless picks: a sequence of keys */
    struct point *ring;
    size_t npoints;
    unsigned weight[BALANCER_MAX_BACKENDS]; /* those the ring was built for */
};

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static int point_cmp(const void *a, const void *b)
{
    const struct point *x = a, *y = b;
    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    return x->be < y->be ? -1 : x->be > y->be;
}

/* Builds the ring for backends 0..n-1 at their current weights; -1 when
 * out of memory (the old ring, if any, stays). */
static int build(struct hash *h, size_t n)
{
    uint64_t total = 0;
    size_t np = 0;
    for (size_t i = 0; i < n; i++)
        total += h->be[i].weight ? h->be[i].weight : 1;
    double scale = (double)HASH_POINTS;
    if (total * HASH_POINTS > HASH_MAX_POINTS)
        scale = (double)HASH_MAX_POINTS / (double)total;
    size_t per[BALANCER_MAX_BACKENDS];
    for (size_t i = 0; i < n; i++) {
        unsigned w = h->be[i].weight ? h->be[i].weight : 1;
        per[i] = (size_t)(w * scale + 0.5);
        if (per[i] == 0)
            per[i] = 1;
        np += per[i];
    }
    struct point *ring = shm_calloc(1, np * sizeof(*ring));
    if (!ring)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < per[i]; j++) {
            ring[k].at = mix64(((uint64_t)(i + 1) << 32) ^ (uint64_t)j ^
                               0x9e3779b97f4a7c15u);
            ring[k++].be = (uint32_t)i;
        }
    qsort(ring, np, sizeof(*ring), point_cmp);
    shm_free(h->ring);
    h->ring = ring;
    h->npoints = np;
    h->n = n;
    for (size_t i = 0; i < n; i++)
        h->weight[i] = h->be[i].weight;
    return 0;
}

static void *hash_create(const struct balancer_params *p,
                         const struct balancer_backend *backends)
{
    struct hash *h = shm_calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->be = backends; /* the ring is built at the first pick */
    h->factor = p->hash_balance_factor >= 1.0 ? p->hash_balance_factor : 0.0;
    return h;
}

static void hash_destroy(void *state)
{
    struct hash *h = state;
    if (!h)
        return;
    shm_free(h->ring);
    shm_free(h);
}

/* The first point at or after `at` (wrapping to 0). */
static size_t lower_bound(const struct hash *h, uint64_t at)
{
    size_t lo = 0, hi = h->npoints;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (h->ring[mid].at < at)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == h->npoints ? 0 : lo;
}

/* Whether the ring must be built again: other slots, or a weight that
 * changed since. */
static bool stale(const struct hash *h, size_t n)
{
    if (n != h->n)
        return true;
    for (size_t i = 0; i < n; i++)
        if (h->be[i].weight != h->weight[i])
            return true;
    return false;
}

static size_t hash_pick_key(void *state, const bool *eligible, size_t n,
                            uint64_t key, uint64_t now_us)
{
    struct hash *h = state;
    uint64_t mask = 0, seen = 0, inflight = 0, wsum = 0;
    size_t least = n;
    (void)now_us;

    if (stale(h, n))
        (void)build(h, n); /* out of memory: the old ring goes on */
    for (size_t i = 0; i < n; i++) {
        if (!eligible[i])
            continue;
        mask |= (uint64_t)1 << i;
        inflight += h->be[i].in_flight;
        wsum += h->be[i].weight;
        if (least == n ||
            (uint64_t)h->be[i].in_flight * h->be[least].weight <
                (uint64_t)h->be[least].in_flight * h->be[i].weight)
            least = i;
    }
    /* A well-mixed place on the ring even for sequential keys. */
    size_t pos = lower_bound(h, mix64(key ^ 0x2545f4914f6cdd1du));
    for (size_t step = 0; step < h->npoints && seen != mask; step++) {
        size_t i = h->ring[(pos + step) % h->npoints].be;
        uint64_t bit = (uint64_t)1 << i;
        if (i >= n || !(mask & bit) || (seen & bit))
            continue;
        seen |= bit;
        if (h->factor == 0.0)
            return i;
        /* The cap, less a hair so that an exact integer is not rounded
         * up by floating-point noise. */
        double cap = ceil(h->factor * (double)(inflight + 1) *
                              (double)h->be[i].weight / (double)wsum -
                          1e-9);
        if ((double)h->be[i].in_flight + 1.0 <= cap)
            return i;
    }
    /* Not reached when factor >= 1 (some cap has room) unless a ring
     * could not be built for these slots. */
    return least;
}

/* Without a key (a caller that has none): successive keys, so the picks
 * spread over the ring under the same bound. */
static size_t hash_pick(void *state, const bool *eligible, size_t n,
                        uint64_t now_us)
{
    struct hash *h = state;
    return hash_pick_key(state, eligible, n, h->seq++, now_us);
}

static void hash_observe(void *state, size_t idx, uint64_t latency_us, bool ok,
                         unsigned x, uint64_t now_us)
{
    (void)state, (void)idx, (void)latency_us, (void)ok, (void)x, (void)now_us;
}

/* The dashboard number: requests in flight per unit of weight. */
static double hash_score(void *state, size_t idx, uint64_t now_us)
{
    struct hash *h = state;
    (void)now_us;
    return (double)h->be[idx].in_flight /
           (h->be[idx].weight ? h->be[idx].weight : 1);
}

const struct balancer_policy balancer_policy_hash = {
    .name = "hash",
    .create = hash_create,
    .destroy = hash_destroy,
    .pick = hash_pick,
    .observe = hash_observe,
    .score = hash_score,
    .pick_key = hash_pick_key,
};
