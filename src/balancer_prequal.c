/*
 * balancer_prequal: prequal — Probing to Reduce Queuing and Latency
 * (Wydrowski, Kleinberg, Rumble, Archer; NSDI 2024).  Backends are probed
 * asynchronously for their requests in flight (RIF) and their latency
 * estimate; the answers wait in a small pool and each pick takes the best
 * entry by the hot-cold lexicographic rule: among the "cold" entries (RIF
 * at most the Q_RIF quantile of recently probed RIFs) the lowest latency,
 * and when every entry is "hot" the lowest RIF.
 *
 * The policy never sends a probe itself: it says which backends it wants
 * probed (probe_due: r_probe per pick, under a probes-per-second bound,
 * and one after an idle interval) and is told the answers (probe_result);
 * the loop-side prober (src/prequal_probe.c) does the I/O.  A backend
 * without the probe endpoint is stood in for by lbproxy's own view of it:
 * its in-flight count and an EWMA of its latencies.
 *
 * Pool upkeep: an entry lives at most max_age and serves at most b_reuse
 * picks; each pick adds one to its RIF (the request just sent is in flight
 * there now); a new answer replaces an older entry of the same backend;
 * when the pool is full the oldest entry makes room.  docs/balancing.md
 * "prequal" gives the parameters and where they differ from the paper.
 */
#include "balancer_impl.h"
#include "shm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PQ_POOL_MAX 64
#define PQ_HIST_MAX (2 * PQ_POOL_MAX)
#define PQ_CREDIT_MAX 16.0    /* probes owed to past picks, at most */
#define PQ_RATIO_WEIGHT 256.0 /* picks averaged by the probes-per-pick */
#define PQ_REUSE_MAX 64u      /* the derived reuse budget's cap */

struct pq_entry {
    unsigned idx;
    unsigned rif;  /* at the answer, plus one per pick since */
    double lat_us; /* the backend's latency estimate */
    uint64_t t_us; /* when the answer came */
    unsigned uses; /* picks it served */
};

struct pq {
    const struct balancer_backend *be;
    size_t m;            /* pool size */
    uint64_t max_age_us; /* an entry's longest life */
    unsigned reuse;      /* b_reuse; 0: derived from the probe rate */
    double q;            /* Q_RIF */
    double r_probe;      /* probes per pick */
    double max_rate;     /* probes per second, at most */
    uint64_t idle_us;    /* longest time without a probe */
    double alpha;        /* the own-view EWMA's weight */
    uint64_t rng;
    struct pq_entry pool[PQ_POOL_MAX];
    size_t len;
    /* The RIFs of the last answers (a ring): the distribution Q_RIF is a
     * quantile of. */
    unsigned hist[PQ_HIST_MAX];
    size_t hist_len, hist_pos, hist_cap;
    double credit;      /* probes owed to the picks so far */
    double tokens;      /* the rate bound's bucket */
    uint64_t tokens_us; /* its last refill */
    uint64_t last_probe_us;
    bool probed;  /* last_probe_us is valid */
    double ratio; /* probes sent per pick, recent average */
    size_t nview; /* backends the pool can hold views of: min(N, m) */
    /* lbproxy's own view of each backend, for one without the endpoint:
     * an EWMA of its latencies (penalised failures included) */
    double own_us[BALANCER_MAX_BACKENDS];
    bool own_has[BALANCER_MAX_BACKENDS];
};

static void *pq_create(const struct balancer_params *p,
                       const struct balancer_backend *backends)
{
    struct pq *s = shm_calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->be = backends;
    s->m = p->prequal_pool_size;
    if (s->m < 1)
        s->m = 1;
    if (s->m > PQ_POOL_MAX)
        s->m = PQ_POOL_MAX;
    s->max_age_us =
        (uint64_t)(p->prequal_max_age_ms ? p->prequal_max_age_ms : 1) * 1000u;
    s->reuse = p->prequal_reuse;
    s->q = p->prequal_q_rif > 0.0 && p->prequal_q_rif <= 1.0 ? p->prequal_q_rif
                                                             : 0.84;
    s->r_probe = p->prequal_probe_rate > 0.0 ? p->prequal_probe_rate : 0.0;
    s->max_rate = (double)p->prequal_max_probe_rate;
    s->idle_us = (uint64_t)p->prequal_idle_probe_ms * 1000u;
    s->alpha =
        p->ewma_alpha > 0.0 && p->ewma_alpha <= 1.0 ? p->ewma_alpha : 0.3;
    s->rng = p->seed ^ 0x9e0ca1u;
    s->hist_cap = 2 * s->m;
    s->ratio = s->r_probe;
    s->nview = 1;
    s->tokens = 1.0;
    return s;
}

static void pq_destroy(void *state)
{
    shm_free(state);
}

/* The reuse budget b_reuse: the configured one, or the fewest uses per
 * entry that keep the pool from running dry at the probe rate actually
 * reached.  About Q_RIF of the answers are cold enough to be picked, so
 * ratio * Q_RIF * b_reuse >= 1 per pick. */
static unsigned reuse_budget(const struct pq *s)
{
    if (s->reuse)
        return s->reuse;
    double supply = s->ratio * s->q / (double)s->nview;
    if (supply >= 1.0)
        return 1;
    if (supply <= 1.0 / PQ_REUSE_MAX)
        return PQ_REUSE_MAX;
    return (unsigned)ceil(1.0 / supply);
}

static void drop(struct pq *s, size_t k)
{
    s->pool[k] = s->pool[--s->len];
}

/* Drops the entries that are too old or used up. */
static void expire(struct pq *s, uint64_t now_us)
{
    unsigned b = reuse_budget(s);
    for (size_t k = s->len; k-- > 0;) {
        const struct pq_entry *e = &s->pool[k];
        if (now_us > e->t_us + s->max_age_us || e->uses >= b)
            drop(s, k);
    }
}

static int cmp_unsigned(const void *a, const void *b)
{
    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
    return (x > y) - (x < y);
}

/* The Q_RIF quantile of the recent answers' RIFs (linear interpolation
 * between order statistics); entries at or below it are cold. */
static double rif_threshold(const struct pq *s)
{
    unsigned v[PQ_HIST_MAX];
    size_t n = s->hist_len;
    if (n == 0)
        return INFINITY;
    memcpy(v, s->hist, n * sizeof(v[0]));
    qsort(v, n, sizeof(v[0]), cmp_unsigned);
    double pos = s->q * (double)(n - 1);
    size_t lo = (size_t)pos;
    if (lo + 1 >= n)
        return (double)v[n - 1];
    return v[lo] + (pos - (double)lo) * ((double)v[lo + 1] - (double)v[lo]);
}

/* Whether entry a beats entry b by the hot-cold lexicographic rule with
 * threshold th: cold before hot; among cold, lower latency; among hot,
 * lower RIF; then the other field, then the newer. */
static bool better(const struct pq_entry *a, const struct pq_entry *b,
                   double th)
{
    bool ca = a->rif <= th, cb = b->rif <= th;
    if (ca != cb)
        return ca;
    if (ca) {
        if (a->lat_us != b->lat_us)
            return a->lat_us < b->lat_us;
        if (a->rif != b->rif)
            return a->rif < b->rif;
    } else {
        if (a->rif != b->rif)
            return a->rif < b->rif;
        if (a->lat_us != b->lat_us)
            return a->lat_us < b->lat_us;
    }
    return a->t_us > b->t_us;
}

/* With nothing in the pool: the power of two choices over requests in
 * flight per unit of weight (two distinct random eligible backends). */
static size_t fallback_pick(struct pq *s, const bool *eligible, size_t n)
{
    size_t cand[BALANCER_MAX_BACKENDS], m = 0;
    for (size_t k = 0; k < n; k++)
        if (eligible[k])
            cand[m++] = k;
    if (m <= 1)
        return m ? cand[0] : 0;
    size_t i = balancer_rand_below(&s->rng, m);
    size_t j = balancer_rand_below(&s->rng, m - 1);
    if (j >= i)
        j++;
    i = cand[i];
    j = cand[j];
    const struct balancer_backend *a = &s->be[i], *b = &s->be[j];
    return (uint64_t)b->in_flight * a->weight <
                   (uint64_t)a->in_flight * b->weight
               ? j
               : i;
}

static size_t pq_pick(void *state, const bool *eligible, size_t n,
                      uint64_t now_us)
{
    struct pq *s = state;

    s->credit += s->r_probe;
    if (s->credit > PQ_CREDIT_MAX)
        s->credit = PQ_CREDIT_MAX;
    s->ratio -= s->ratio / PQ_RATIO_WEIGHT;
    expire(s, now_us);
    double th = rif_threshold(s);
    size_t best = s->len;
    for (size_t k = 0; k < s->len; k++) {
        const struct pq_entry *e = &s->pool[k];
        if (e->idx >= n || !eligible[e->idx])
            continue;
        if (best == s->len || better(e, &s->pool[best], th))
            best = k;
    }
    if (best == s->len)
        return fallback_pick(s, eligible, n);
    struct pq_entry *e = &s->pool[best];
    size_t idx = e->idx;
    e->uses++;
    e->rif++;
    if (e->uses >= reuse_budget(s))
        drop(s, best);
    return idx;
}

static size_t pq_probe_due(void *state, const bool *eligible, size_t n,
                           uint64_t now_us, unsigned *out, size_t max)
{
    struct pq *s = state;
    size_t cand[BALANCER_MAX_BACKENDS], m = 0, want;

    if (now_us > s->tokens_us) {
        double burst = s->max_rate / 20.0 > 1.0 ? s->max_rate / 20.0 : 1.0;
        s->tokens += (double)(now_us - s->tokens_us) * s->max_rate / 1e6;
        if (s->tokens > burst)
            s->tokens = burst;
    }
    s->tokens_us = now_us;
    for (size_t k = 0; k < n; k++)
        if (eligible[k])
            cand[m++] = k;
    s->nview = m < s->m ? m : s->m;
    want = (size_t)s->credit;
    if (want == 0 && (!s->probed || now_us >= s->last_probe_us + s->idle_us))
        want = 1; /* the idle probe: the pool never goes stale */
    if (want > (size_t)s->tokens)
        want = (size_t)s->tokens;
    if (want > max)
        want = max;
    if (want > m)
        want = m;
    /* distinct backends, uniformly at random (a partial shuffle) */
    for (size_t k = 0; k < want; k++) {
        size_t r = k + balancer_rand_below(&s->rng, m - k);
        size_t t = cand[k];
        cand[k] = cand[r];
        cand[r] = t;
        out[k] = (unsigned)cand[k];
    }
    if (want > 0) {
        s->credit = s->credit > (double)want ? s->credit - (double)want : 0.0;
        s->tokens -= (double)want;
        s->ratio += (double)want / PQ_RATIO_WEIGHT;
        s->last_probe_us = now_us;
        s->probed = true;
    }
    return want;
}

static void pq_probe_result(void *state, size_t idx, bool answered,
                            unsigned rif, uint64_t latency_us, uint64_t now_us)
{
    struct pq *s = state;
    struct pq_entry e = {(unsigned)idx, rif, (double)latency_us, now_us, 0};
    size_t k;

    if (!answered) { /* no probe endpoint: lbproxy's own view */
        e.rif = s->be[idx].in_flight;
        e.lat_us = s->own_has[idx] ? s->own_us[idx] : 0.0;
    }
    s->hist[s->hist_pos] = e.rif;
    s->hist_pos = (s->hist_pos + 1) % s->hist_cap;
    if (s->hist_len < s->hist_cap)
        s->hist_len++;
    expire(s, now_us);
    for (k = 0; k < s->len; k++)
        if (s->pool[k].idx == idx)
            break;
    if (k == s->len && s->len == s->m) { /* full: the oldest makes room */
        k = 0;
        for (size_t j = 1; j < s->len; j++)
            if (s->pool[j].t_us < s->pool[k].t_us)
                k = j;
    } else if (k == s->len) {
        s->len++;
    }
    s->pool[k] = e;
}

static void pq_observe(void *state, size_t idx, uint64_t latency_us, bool ok,
                       unsigned x, uint64_t now_us)
{
    struct pq *s = state;
    (void)ok, (void)x, (void)now_us;
    if (!s->own_has[idx])
        s->own_us[idx] = (double)latency_us;
    else
        s->own_us[idx] += s->alpha * ((double)latency_us - s->own_us[idx]);
    s->own_has[idx] = true;
}

/* Forgets what the pool and the own view say of backend idx. */
static void pq_forget(void *state, size_t idx)
{
    struct pq *s = state;
    for (size_t k = s->len; k-- > 0;)
        if (s->pool[k].idx == idx)
            drop(s, k);
    s->own_has[idx] = false;
    s->own_us[idx] = 0.0;
}

/* The dashboard number: the latency estimate (ms) of the backend's entry
 * in the pool, else lbproxy's own view of it (0 before any sample). */
static double pq_score(void *state, size_t idx, uint64_t now_us)
{
    struct pq *s = state;
    for (size_t k = 0; k < s->len; k++)
        if (s->pool[k].idx == idx && now_us <= s->pool[k].t_us + s->max_age_us)
            return s->pool[k].lat_us / 1000.0;
    return s->own_has[idx] ? s->own_us[idx] / 1000.0 : 0.0;
}

const struct balancer_policy balancer_policy_prequal = {
    .name = "prequal",
    .create = pq_create,
    .destroy = pq_destroy,
    .pick = pq_pick,
    .observe = pq_observe,
    .score = pq_score,
    .reset = pq_forget,
    .clear = pq_forget,
    .probe_due = pq_probe_due,
    .probe_result = pq_probe_result,
};
