/*
 * lbsim: the real balancer code (through include/balancer.h, unchanged)
 * against simulated backends, in virtual time.
 *
 * Each backend is an M/G/K queue: K workers (0 = unlimited), a service-time
 * distribution (exponential or lognormal) and a FIFO queue.  C closed-loop
 * clients each send their next request the moment the previous answer
 * arrives (zero think time), so the offered load is whatever the backends
 * can take.  A discrete-event loop over a binary heap advances virtual time;
 * the balancer sees the virtual clock, real in-flight counts, and each
 * latency sample (dispatch to completion) with the in-flight count at
 * dispatch.  No proxy overhead is modelled.
 *
 *   lbsim report [SET...]   table of every policy + the oracle per set
 *   lbsim check             the asserting run for `make sim` (exit 1 on a
 *                           failed bound; lbsim_check.c)
 *
 * With a rate (open loop) requests arrive instead as a Poisson stream that
 * does not wait for answers, from a random stream of its own (every policy
 * meets the same arrivals), and latency runs from the arrival.
 *
 * The ORACLE is shortest expected delay with perfect knowledge: it knows
 * each backend's K and mean service time S and sends a request where its
 * expected completion is soonest: S if in_flight < K, else
 * S * (1 + (in_flight - K + 1) / K).
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balancer.h"
#include "lbsim.h"

/* clang-format off */
#define CAPPED_BACKENDS                                                        \
    .n = 3, .be = {                                                            \
        {"A", 4, 5, DIST_EXP, 0},                                              \
        {"B", 4, 10, DIST_EXP, 0},                                             \
        {"C", 4, 20, DIST_EXP, 0},                                             \
    }
#define HETERO_BACKENDS                                                        \
    .n = 3, .be = {                                                            \
        {"A", 0, 5, DIST_LOGNORMAL, 0.6},                                      \
        {"B", 0, 15, DIST_LOGNORMAL, 0.6},                                     \
        {"C", 0, 40, DIST_LOGNORMAL, 0.6},                                     \
    }

#define HANG_BACKENDS                                                          \
    .n = 3, .be = {                                                            \
        {"A", 0, 2, DIST_EXP, 0},                                              \
        {"B", 0, 2, DIST_EXP, 0},                                              \
        {"C", 0, 2, DIST_EXP, 0},                                              \
    }

const struct set_spec lbsim_sets[] = {
    {
        .name = "capped",
        .what = "saturating: K=4 each, exp 5/10/20 ms, 100 clients",
        CAPPED_BACKENDS,
        .clients = 100, .seconds = 60, .warmup = 5, .ev_be = -1,
    },
    {
        .name = "hetero",
        .what = "spare concurrency: K unlimited, lognormal 5/15/40 ms",
        HETERO_BACKENDS,
        .clients = 100, .seconds = 30, .warmup = 5, .ev_be = -1,
    },
    {
        .name = "mixed",
        .what = "partial: K=16/8/4, lognormal 5/10/20 ms, 100 clients",
        .n = 3,
        .be = {
            {"A", 16, 5, DIST_LOGNORMAL, 0.6},
            {"B", 8, 10, DIST_LOGNORMAL, 0.6},
            {"C", 4, 20, DIST_LOGNORMAL, 0.6},
        },
        .clients = 100, .seconds = 60, .warmup = 5, .ev_be = -1,
    },
    {
        .name = "degrade",
        .what = "capped, A 10x slower from 20 s to 40 s",
        CAPPED_BACKENDS,
        .clients = 100, .seconds = 60, .warmup = 5,
        .ev_be = 0, .ev_factor = 10, .ev_from = 20, .ev_to = 40,
    },
    {
        .name = "degrade32",
        .what = "the bench's degrade: K=32 each, exp 5/10/20 ms, "
                "A 10x slower from 20 s to 40 s",
        .n = 3,
        .be = {
            {"A", 32, 5, DIST_EXP, 0},
            {"B", 32, 10, DIST_EXP, 0},
            {"C", 32, 20, DIST_EXP, 0},
        },
        .clients = 100, .seconds = 60, .warmup = 5,
        .ev_be = 0, .ev_factor = 10, .ev_from = 20, .ev_to = 40,
    },
    {
        .name = "degrade-hetero",
        .what = "hetero, A 10x slower from 20 s to 40 s",
        HETERO_BACKENDS,
        .clients = 100, .seconds = 60, .warmup = 5,
        .ev_be = 0, .ev_factor = 10, .ev_from = 20, .ev_to = 40,
    },
    {
        .name = "failing",
        .what = "capped, A fails every request in 1 ms from 20 s to 40 s",
        CAPPED_BACKENDS,
        .clients = 100, .seconds = 60, .warmup = 5,
        .ev_be = 0, .ev_factor = 1, .ev_fail = true, .ev_fail_ms = 1,
        .ev_from = 20, .ev_to = 40,
    },
    {
        .name = "hang",
        .what = "three exp 2 ms, K unlimited; the backend holding the most "
                "requests at 10 s frozen (SIGSTOP) until 16 s",
        HANG_BACKENDS,
        .clients = 100, .seconds = 30, .warmup = 5,
        .ev_be = 0, .ev_factor = 1, .ev_hang = true, .ev_busiest = true,
        .ev_from = 10, .ev_to = 16,
    },
    {
        .name = "hang-a",
        .what = "hang, but A frozen whatever it holds",
        HANG_BACKENDS,
        .clients = 100, .seconds = 30, .warmup = 5,
        .ev_be = 0, .ev_factor = 1, .ev_hang = true,
        .ev_from = 10, .ev_to = 16,
    },
};
/* clang-format on */
#define NSETS (sizeof(lbsim_sets) / sizeof(lbsim_sets[0]))
const size_t lbsim_nsets = NSETS;

const struct pol_spec lbsim_pols[] = {
    {"oracle (SED)", NULL, -1, true},
    {"oracle (fill, then SED)", NULL, -2, true},
    {"round-robin", "round-robin", -1, true},
    {"least-conn", "least-conn", -1, true},
    {"p2c-peak-ewma", "p2c-peak-ewma", -1, true},
    {"sma latency (load_aware=0)", "adaptive_sma", -1, false},
    {"sma latency_x_inflight *", "adaptive_sma", -1, true},
    {"sma predicted", "adaptive_sma", BALANCER_SCORE_PREDICTED, true},
    {"ewma latency (load_aware=0)", "adaptive_ewma", -1, false},
    {"ewma latency_x_inflight", "adaptive_ewma",
     BALANCER_SCORE_LATENCY_X_INFLIGHT, true},
    {"ewma predicted *", "adaptive_ewma", -1, true},
    {"ewma fill", "adaptive_ewma", BALANCER_SCORE_FILL, true},
    {"prequal", "prequal", -1, true},
};
#define NPOLS (sizeof(lbsim_pols) / sizeof(lbsim_pols[0]))
const size_t lbsim_npols = NPOLS;

/* ---- random numbers (xoshiro256**, seeded by splitmix64) ---- */

struct rng {
    uint64_t s[4];
};

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static void rng_seed(struct rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) {
        uint64_t z = (seed += 0x9e3779b97f4a7c15u);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
        r->s[i] = z ^ (z >> 31);
    }
}

static uint64_t rng_next(struct rng *r)
{
    uint64_t *s = r->s, res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return res;
}

/* Uniform in (0, 1). */
static double rng_unit(struct rng *r)
{
    return ((double)(rng_next(r) >> 11) + 0.5) / 9007199254740992.0;
}

static double rng_normal(struct rng *r)
{
    return sqrt(-2.0 * log(rng_unit(r))) * cos(2.0 * M_PI * rng_unit(r));
}

static uint64_t service_us(struct rng *r, const struct be_spec *b,
                           double factor)
{
    double mean = b->mean_ms * 1000.0 * factor, v;
    if (b->dist == DIST_EXP)
        v = -mean * log(rng_unit(r));
    else
        v = exp(log(mean) - b->sigma * b->sigma / 2.0 +
                b->sigma * rng_normal(r));
    return v < 1.0 ? 1 : (uint64_t)(v + 0.5);
}

/* ---- the event heap ---- */

struct event {
    uint64_t t;
    uint64_t seq;    /* FIFO among equal times: deterministic */
    unsigned client; /* ARRIVAL: the next open-loop arrival */
};

#define ARRIVAL UINT32_MAX

struct heap {
    struct event *e;
    size_t len, cap;
};

static bool ev_before(const struct event *a, const struct event *b)
{
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void heap_push(struct heap *h, struct event ev)
{
    size_t i;
    if (h->len == h->cap) {
        h->cap = h->cap ? 2 * h->cap : 256;
        h->e = realloc(h->e, h->cap * sizeof(*h->e));
        if (!h->e)
            abort();
    }
    i = h->len++;
    while (i > 0 && ev_before(&ev, &h->e[(i - 1) / 2])) {
        h->e[i] = h->e[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->e[i] = ev;
}

static struct event heap_pop(struct heap *h)
{
    struct event top = h->e[0], last = h->e[--h->len];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->len)
            break;
        if (c + 1 < h->len && ev_before(&h->e[c + 1], &h->e[c]))
            c++;
        if (!ev_before(&h->e[c], &last))
            break;
        h->e[i] = h->e[c];
        i = c;
    }
    if (h->len > 0)
        h->e[i] = last;
    return top;
}

/* ---- one run: a set under a policy ---- */

/* A probe's round trip (prequal), and the recent requests a backend's
 * latency estimate is the median of. */
#define PROBE_DELAY_US 200
#define RECENT 32

struct sim_be {
    uint32_t recent[RECENT]; /* latencies of its last requests (ring) */
    unsigned nrecent, rpos;
    unsigned busy;
    unsigned *queue; /* FIFO of waiting clients (ring) */
    size_t qhead, qlen;
    unsigned in_flight; /* busy + queued, as the oracle sees it */
};

struct sim_client {
    int be;
    uint64_t dispatch;
    unsigned x;
    bool failing; /* this request fails (ev_fail) */
    uint64_t tried;
    uint64_t started;   /* first dispatch of this request (retries) */
    uint64_t svc_start; /* when its service began (ev_hang) */
    bool frozen;        /* its completion was moved past the freeze */
};

struct sim {
    const struct set_spec *set;
    const struct pol_spec *pol;
    struct balancer *b;
    struct lbsim_probes *probes; /* NULL: the policy wants none */
    struct rng rng;
    struct rng arrivals; /* open loop: the gaps between arrivals */
    unsigned free_slot[MAX_CLIENTS];
    size_t nfree;
    uint64_t dropped;
    struct heap heap;
    uint64_t seq, now;
    struct sim_be be[MAX_BE];
    struct sim_client cl[MAX_CLIENTS];
    size_t oracle_rot;
    int ev_be; /* the event's backend (ev_busiest: chosen at ev_from) */
    /* measurements */
    uint32_t *lat;
    size_t nlat, latcap;
    uint64_t picks_win[MAX_WINDOWS][MAX_BE];
    uint64_t picks_sec[128][MAX_BE];
    uint64_t picks[MAX_BE];
    uint64_t done, errors;
    uint64_t all_done; /* warm-up included, for probes per request */
    uint64_t hang_picks;
    unsigned hang_stuck;
};

static bool in_event(const struct sim *s, int be)
{
    return be == s->ev_be && s->now >= s->set->ev_from * SEC &&
           s->now < s->set->ev_to * SEC;
}

static int oracle_pick(struct sim *s, uint64_t tried)
{
    int best = -1;
    double best_d = 0;
    for (size_t k = 0; k < s->set->n; k++) {
        size_t i = (s->oracle_rot + k) % s->set->n;
        const struct be_spec *b = &s->set->be[i];
        double S = b->mean_ms, x = s->be[i].in_flight, d;
        if (tried & (1ull << i))
            continue;
        if (in_event(s, (int)i))
            S *= s->set->ev_fail || s->set->ev_hang ? 1e6 : s->set->ev_factor;
        if (b->k == 0 || x < b->k)
            d = S;
        else
            d = S * (1.0 + (x - b->k + 1.0) / b->k);
        /* The work-conserving variant: any free worker before a queue. */
        if (s->pol->score == -2 && ((b->k != 0 && x >= b->k) ||
                                    (s->set->ev_fail && in_event(s, (int)i))))
            d += 1e9;
        if (best < 0 || d < best_d) {
            best = (int)i;
            best_d = d;
        }
    }
    if (best >= 0) {
        s->oracle_rot = (size_t)best + 1;
        s->be[best].in_flight++;
    }
    return best;
}

static void schedule(struct sim *s, unsigned c, uint64_t t)
{
    heap_push(&s->heap, (struct event){t, s->seq++, c});
}

static void start_service(struct sim *s, unsigned c)
{
    int i = s->cl[c].be;
    double f = in_event(s, i) ? s->set->ev_factor : 1.0;
    s->be[i].busy++;
    s->cl[c].svc_start = s->now;
    s->cl[c].frozen = false;
    schedule(s, c, s->now + service_us(&s->rng, &s->set->be[i], f));
}

/* ev_hang: a frozen backend makes no progress from ev_from to ev_to, so a
 * service that was still running at the freeze, or began during it, ends
 * that much later.  Returns true when client c's completion at t was moved
 * (the event is pushed again). */
static bool thaw_later(struct sim *s, unsigned c, uint64_t t)
{
    struct sim_client *cl = &s->cl[c];
    uint64_t from = s->set->ev_from * SEC, to = s->set->ev_to * SEC;

    if (!s->set->ev_hang || cl->be != s->ev_be || cl->failing || cl->frozen ||
        t <= from || cl->svc_start >= to)
        return false;
    cl->frozen = true;
    schedule(s, c, t + (to - (cl->svc_start > from ? cl->svc_start : from)));
    return true;
}

/* Sends client c's request (first try or retry) to a backend. */
static void dispatch(struct sim *s, unsigned c)
{
    struct sim_client *cl = &s->cl[c];
    struct sim_be *be;
    unsigned x = 0;
    int i;

    if (s->b) {
        i = balancer_pick(s->b, cl->tried, s->now, &x);
        if (i >= 0)
            s->be[i].in_flight++;
    } else {
        i = oracle_pick(s, cl->tried);
        if (i >= 0)
            x = s->be[i].in_flight - 1;
    }
    if (i < 0)
        abort(); /* tried is never full here */
    cl->be = i;
    cl->dispatch = s->now;
    cl->x = x;
    cl->tried |= 1ull << i;
    if (s->now >= s->set->warmup * SEC)
        s->picks[i]++;
    if (s->now / WINDOW_US < MAX_WINDOWS) /* sets longer than the tables */
        s->picks_win[s->now / WINDOW_US][i]++;
    if (s->now / SEC < 128)
        s->picks_sec[s->now / SEC][i]++;
    be = &s->be[i];
    if (s->set->ev_hang && in_event(s, i))
        s->hang_picks++;
    cl->failing = s->set->ev_fail && in_event(s, i);
    if (cl->failing) { /* refused fast, no worker used */
        schedule(s, c, s->now + (uint64_t)(s->set->ev_fail_ms * 1000.0));
        return;
    }
    if (s->set->be[i].k == 0 || be->busy < s->set->be[i].k) {
        start_service(s, c);
    } else {
        size_t cap = MAX_CLIENTS;
        be->queue[(be->qhead + be->qlen++) % cap] = c;
    }
}

static void new_request(struct sim *s, unsigned c)
{
    s->cl[c].tried = 0;
    s->cl[c].started = s->now;
    dispatch(s, c);
}

static void record(struct sim *s, uint64_t us)
{
    if (s->nlat == s->latcap) {
        s->latcap = s->latcap ? 2 * s->latcap : 65536;
        s->lat = realloc(s->lat, s->latcap * sizeof(*s->lat));
        if (!s->lat)
            abort();
    }
    s->lat[s->nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static void complete(struct sim *s, unsigned c)
{
    struct sim_client *cl = &s->cl[c];
    int i = cl->be;
    struct sim_be *be = &s->be[i];
    uint64_t lat = s->now - cl->dispatch;
    bool measured = s->now >= s->set->warmup * SEC;

    be->in_flight--;
    be->recent[be->rpos] = lat > UINT32_MAX ? UINT32_MAX : (uint32_t)lat;
    be->rpos = (be->rpos + 1) % RECENT;
    if (be->nrecent < RECENT)
        be->nrecent++;
    if (!cl->failing) {
        be->busy--;
        if (be->qlen > 0) {
            unsigned next = be->queue[be->qhead];
            be->qhead = (be->qhead + 1) % MAX_CLIENTS;
            be->qlen--;
            start_service(s, next);
        }
    }
    if (s->b)
        balancer_observe(s->b, (size_t)i, lat,
                         cl->failing ? BALANCER_CONNECT_ERR : BALANCER_OK,
                         cl->x, s->now);
    if (!cl->failing && !measured)
        s->all_done++;
    if (cl->failing) {
        /* The proxy retries once on another backend, then gives up. */
        if (__builtin_popcountll(cl->tried) < 2) {
            dispatch(s, c);
            return;
        }
        if (measured)
            s->errors++;
    } else if (measured) {
        s->all_done++;
        s->done++;
        record(s, s->now - cl->started);
    }
    if (s->set->rate > 0)
        s->free_slot[s->nfree++] = c;
    else
        new_request(s, c);
}

/* Open loop: the arrival at now takes a free slot, and the next one is
 * due an exponential gap later. */
static void arrive(struct sim *s)
{
    double gap = -log(rng_unit(&s->arrivals)) / s->set->rate;

    heap_push(&s->heap, (struct event){s->now + (uint64_t)(gap * SEC + 0.5),
                                       s->seq++, ARRIVAL});
    if (s->nfree == 0) {
        if (s->now >= s->set->warmup * SEC)
            s->dropped++;
        return;
    }
    new_request(s, s->free_slot[--s->nfree]);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* A probe's view of backend i (lbsim_state_fn): what the emulator's probe
 * endpoint answers, its requests in flight and its recent median latency;
 * a backend failing fast or frozen does not answer. */
static bool probe_state(void *ctx, size_t i, unsigned *rif, uint64_t *lat)
{
    struct sim *s = ctx;
    const struct sim_be *be = &s->be[i];
    uint32_t v[RECENT];

    if (in_event(s, (int)i) && (s->set->ev_fail || s->set->ev_hang))
        return false;
    *rif = be->in_flight;
    memcpy(v, be->recent, be->nrecent * sizeof(v[0]));
    qsort(v, be->nrecent, sizeof(v[0]), cmp_u32);
    *lat = be->nrecent ? v[be->nrecent / 2] : 0;
    return true;
}

void lbsim_run(const struct set_spec *set, const struct pol_spec *pol,
               uint64_t seed, struct result *r)
{
    struct sim *s = calloc(1, sizeof(*s));
    uint64_t end = set->seconds * SEC;
    double sum = 0;
    bool chosen = false;

    if (!s)
        abort();
    s->set = set;
    s->pol = pol;
    s->ev_be = set->ev_be;
    rng_seed(&s->rng, seed);
    for (size_t i = 0; i < set->n; i++) {
        s->be[i].queue = calloc(MAX_CLIENTS, sizeof(unsigned));
        if (!s->be[i].queue)
            abort();
    }
    if (pol->mode) {
        struct balancer_params p;
        balancer_params_default(&p);
        p.seed = seed;
        p.load_aware = pol->load_aware;
        p.ewma_score = pol->score;
        s->b = balancer_create(pol->mode, &p, set->n, NULL);
        if (!s->b)
            abort();
        if (balancer_wants_probes(s->b))
            s->probes = lbsim_probes_new(s->b, PROBE_DELAY_US, probe_state, s);
    }
    if (set->rate > 0) {
        rng_seed(&s->arrivals, seed ^ 0x6f70656e6c6f6f70u);
        for (unsigned c = MAX_CLIENTS; c-- > 0;)
            s->free_slot[s->nfree++] = c;
        arrive(s);
    } else {
        for (unsigned c = 0; c < set->clients; c++)
            new_request(s, c);
    }
    while (s->heap.len > 0) {
        struct event ev = heap_pop(&s->heap);
        if (ev.t >= end)
            break;
        if (set->ev_busiest && !chosen && ev.t >= set->ev_from * SEC) {
            chosen = true;
            for (size_t i = 0; i < set->n; i++)
                if (s->be[i].in_flight > s->be[s->ev_be].in_flight)
                    s->ev_be = (int)i;
        }
        /* Clients stuck on the frozen backend when it resumes. */
        if (set->ev_hang && !s->hang_stuck && ev.t >= set->ev_to * SEC)
            s->hang_stuck = s->be[s->ev_be].in_flight;
        if (ev.client != ARRIVAL && thaw_later(s, ev.client, ev.t))
            continue;
        s->now = ev.t;
        if (s->probes)
            lbsim_probes_pump(s->probes, s->now);
        if (ev.client == ARRIVAL)
            arrive(s);
        else
            complete(s, ev.client);
    }

    memset(r, 0, sizeof(*r));
    r->done = s->done;
    r->errors = s->errors;
    r->dropped = s->dropped;
    r->hang_picks = s->hang_picks;
    r->hang_stuck = s->hang_stuck;
    r->ev_be = s->ev_be;
    r->rps = (double)s->done / (set->seconds - set->warmup);
    r->probes_per_req =
        s->all_done ? (double)lbsim_probes_sent(s->probes) / (double)s->all_done
                    : 0;
    if (s->nlat > 0) {
        qsort(s->lat, s->nlat, sizeof(*s->lat), cmp_u32);
        r->p50_ms = s->lat[s->nlat / 2] / 1000.0;
        r->p90_ms = s->lat[(size_t)(s->nlat * 0.90)] / 1000.0;
        r->p99_ms = s->lat[(size_t)(s->nlat * 0.99)] / 1000.0;
        r->p999_ms = s->lat[(size_t)(s->nlat * 0.999)] / 1000.0;
        for (size_t k = 0; k < s->nlat; k++)
            sum += s->lat[k];
        r->mean_ms = sum / s->nlat / 1000.0;
    }
    {
        uint64_t tot = 0;
        for (size_t i = 0; i < set->n; i++)
            tot += s->picks[i];
        for (size_t i = 0; i < set->n; i++)
            r->share[i] = tot ? (double)s->picks[i] / tot : 0;
    }
    r->nwin = end / WINDOW_US < MAX_WINDOWS ? end / WINDOW_US : MAX_WINDOWS;
    for (size_t w = 0; w < r->nwin && w < MAX_WINDOWS; w++) {
        uint64_t tot = 0;
        for (size_t i = 0; i < set->n; i++)
            tot += s->picks_win[w][i];
        for (size_t i = 0; i < set->n; i++)
            r->win_share[w][i] = tot ? (double)s->picks_win[w][i] / tot : 0;
    }
    for (size_t sec = 0; sec < set->seconds && sec < 128; sec++) {
        uint64_t tot = 0;
        int e = s->ev_be >= 0 ? s->ev_be : 0;
        for (size_t i = 0; i < set->n; i++)
            tot += s->picks_sec[sec][i];
        r->sec_share[sec] = tot ? (double)s->picks_sec[sec][e] / tot : 0;
    }
    lbsim_probes_free(s->probes);
    balancer_destroy(s->b);
    for (size_t i = 0; i < set->n; i++)
        free(s->be[i].queue);
    free(s->heap.e);
    free(s->lat);
    free(s);
}

double lbsim_capacity(const struct set_spec *set)
{
    double c = 0;
    for (size_t i = 0; i < set->n; i++) {
        if (set->be[i].k == 0)
            return 0;
        c += set->be[i].k / (set->be[i].mean_ms / 1000.0);
    }
    return c;
}

const struct set_spec *lbsim_find_set(const char *name)
{
    for (size_t i = 0; i < NSETS; i++)
        if (strcmp(lbsim_sets[i].name, name) == 0)
            return &lbsim_sets[i];
    return NULL;
}

const struct pol_spec *lbsim_find_pol(const char *label)
{
    for (size_t p = 0; p < NPOLS; p++)
        if (strcmp(lbsim_pols[p].label, label) == 0)
            return &lbsim_pols[p];
    abort();
}
