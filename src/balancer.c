/*
 * balancer: the registry of policies by name, and the generic bookkeeping
 * that lives beside the backends — in-flight counts, passive health
 * (consecutive failures, ejection with exponential back-off, one probe at a
 * time), active health (DOWN), the `tried` set of a retried request and the
 * fail-open rule.  Policies only ever see which backends are eligible.
 */
#include "balancer.h"
#include "balancer_impl.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "shm.h"

/* The smallest share of the picks a warming backend is offered. */
#define SLOW_START_MIN 0.05

struct balancer *balancer_create(const char *mode,
                                 const struct balancer_params *p, size_t n,
                                 const unsigned *weights)
{
    const struct balancer_policy *pol = balancer_find(mode);
    struct balancer *b = NULL;

    if (!pol || n > BALANCER_MAX_BACKENDS) { /* 0: all added later */
        errno = EINVAL;
        return NULL;
    }
    b = shm_calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    if (balancer_share(b) < 0)
        goto fail;
    b->pol = pol;
    if (p)
        b->p = *p;
    else
        balancer_params_default(&b->p);
    if (b->p.sma_window == 0)
        b->p.sma_window = 1;
    if (!(b->p.ewma_alpha > 0.0 && b->p.ewma_alpha <= 1.0))
        b->p.ewma_alpha = 0.3;
    if (b->p.peak_tau_ms == 0)
        b->p.peak_tau_ms = 1;
    b->n = n;
    b->rng = b->p.seed ^ 0x5105u;
    for (size_t i = 0; i < n; i++) {
        b->be[i].weight = weights && weights[i] ? weights[i] : 1;
        b->be[i].health = BALANCER_UP;
        b->be[i].last_fail = BALANCER_OK;
    }
    b->nout = 0; /* every backend up and ready (BALANCER_READY is 0) */
    b->state = pol->create(&b->p, b->be);
    if (!b->state)
        goto fail;
    return b;
fail:
    balancer_unshare(b);
    shm_free(b);
    return NULL;
}

void balancer_destroy(struct balancer *b)
{
    if (!b)
        return;
    b->pol->destroy(b->state);
    balancer_unshare(b);
    shm_free(b);
}

/* Recounts the backends that are not up, ready and present (b->nout):
 * after every change of a backend's health, admin state or presence. */
static void count_out(struct balancer *b)
{
    unsigned k = 0;
    for (size_t i = 0; i < b->n; i++)
        k += b->be[i].removed || b->be[i].admin != BALANCER_READY ||
             b->be[i].health != BALANCER_UP;
    b->nout = k;
}

/* The one place a backend's health changes. */
static void set_health(struct balancer *b, struct balancer_backend *be,
                       enum balancer_health h)
{
    be->health = h;
    count_out(b);
}

/* An ejection whose time is up turns into PROBING. */
static void refresh(struct balancer *b, struct balancer_backend *be,
                    uint64_t now_us)
{
    if (be->health == BALANCER_EJECTED && now_us >= be->ejected_until_us) {
        set_health(b, be, BALANCER_PROBING);
        be->probe_in_flight = false;
    }
}

static void eject(struct balancer *b, struct balancer_backend *be,
                  uint64_t now_us)
{
    const struct balancer_params *p = &b->p;
    uint64_t ms = p->fail_timeout_ms ? p->fail_timeout_ms : 1;
    uint64_t cap = p->max_eject_ms > ms ? p->max_eject_ms : ms;

    be->ejections++;
    for (unsigned i = 1; i < be->ejections && ms < cap; i++)
        ms *= 2;
    if (ms > cap)
        ms = cap;
    set_health(b, be, BALANCER_EJECTED);
    be->ejected_until_us = now_us + ms * 1000u;
    be->probe_in_flight = false;
    be->eject_fails = be->consecutive_fails;
    be->outlier = false;
}

/* How bad a non-eligible backend is, for the fail-open rule: a probing one
 * (probe busy) before an ejected one, ejected ones by soonest expiry, a
 * DOWN one last; then fewest consecutive failures, fewest in flight. */
static int worse(const struct balancer_backend *a,
                 const struct balancer_backend *b)
{
    static const int rank[] = {
        [BALANCER_UP] = 0,
        [BALANCER_PROBING] = 1,
        [BALANCER_EJECTED] = 2,
        [BALANCER_DOWN] = 3,
    };
    if (rank[a->health] != rank[b->health])
        return rank[a->health] > rank[b->health];
    if (a->health == BALANCER_EJECTED &&
        a->ejected_until_us != b->ejected_until_us)
        return a->ejected_until_us > b->ejected_until_us;
    if (a->consecutive_fails != b->consecutive_fails)
        return a->consecutive_fails > b->consecutive_fails;
    return a->in_flight > b->in_flight;
}

/* Slow start: a warming backend stays eligible for a share of the picks
 * that grows linearly over slow_start_ms (from SLOW_START_MIN), as long as
 * a backend that is not warming is eligible too.  Returns the eligible
 * count left. */
static size_t slow_start_filter(struct balancer *b, bool *eligible,
                                uint64_t now_us)
{
    uint64_t ramp = (uint64_t)b->p.slow_start_ms * 1000u;
    size_t warm = 0, left = 0;

    for (size_t i = 0; i < b->n; i++) {
        struct balancer_backend *be = &b->be[i];
        if (be->warming && (ramp == 0 || now_us >= be->warm_from_us + ramp))
            be->warming = false;
        if (eligible[i] && !be->warming)
            warm++;
    }
    for (size_t i = 0; i < b->n; i++) {
        struct balancer_backend *be = &b->be[i];
        if (eligible[i] && be->warming && warm > 0) {
            double f = (double)(now_us - be->warm_from_us) / (double)ramp;
            double u =
                (double)(balancer_rand(&b->rng) >> 11) / 9007199254740992.0;
            if (u >= (f > SLOW_START_MIN ? f : SLOW_START_MIN))
                eligible[i] = false;
        }
        if (eligible[i])
            left++;
    }
    return left;
}

uint64_t balancer_latency_tail_us(const struct balancer *b, size_t idx)
{
    if (idx >= b->n)
        return 0;
    const struct balancer_backend *be = &b->be[idx];
    return (uint64_t)(be->tail_mean_us + 4 * be->tail_dev_us);
}

static void slow_start(struct balancer *b, size_t idx, uint64_t now_us)
{
    if (idx >= b->n || b->p.slow_start_ms == 0)
        return;
    b->be[idx].warming = true;
    b->be[idx].warm_from_us = now_us;
}

void balancer_slow_start(struct balancer *b, size_t idx, uint64_t now_us)
{
    shm_lock(b->lock);
    slow_start(b, idx, now_us);
    shm_unlock(b->lock);
}

/* Outlier ejection, at the end of each window: a backend whose failure
 * rate is far above the others' is ejected even when its failures are not
 * consecutive.  The fail-open rule is untouched (an outlier is an ejected
 * backend like any other); at most half of the backends are out at once. */
static void outlier_sweep(struct balancer *b, uint64_t now_us)
{
    double rate[BALANCER_MAX_BACKENDS];
    size_t out = 0, qual = 0;
    double sum = 0.0;
    size_t live = 0;
    for (size_t i = 0; i < b->n; i++) {
        const struct balancer_backend *be = &b->be[i];
        rate[i] = -1.0;
        if (be->removed)
            continue;
        live++;
        if (be->health != BALANCER_UP || be->admin != BALANCER_READY)
            out++;
        if (be->win_req >= b->p.outlier_min_requests && be->win_req > 0) {
            rate[i] = (double)be->win_fail / (double)be->win_req;
            sum += rate[i];
            qual++;
        }
    }
    for (size_t i = 0; i < b->n && qual >= 2; i++) {
        struct balancer_backend *be = &b->be[i];
        double others;
        if (rate[i] < 0.0 || be->health != BALANCER_UP ||
            be->admin != BALANCER_READY)
            continue;
        others = (sum - rate[i]) / (double)(qual - 1);
        if (rate[i] * 100.0 >= (double)b->p.outlier_min_fail_pct &&
            rate[i] > (double)b->p.outlier_factor * others &&
            2 * (out + 1) <= live) {
            eject(b, be, now_us);
            be->eject_fails = be->win_fail;
            be->outlier = true;
            out++;
        }
    }
    for (size_t i = 0; i < b->n; i++)
        b->be[i].win_req = b->be[i].win_fail = 0;
    b->window_us = now_us;
}

/* Runs the sweep when a window is over (inline: with windows off, the
 * default, or mid-window, nothing happens). */
static inline void outlier_window(struct balancer *b, uint64_t now_us)
{
    uint64_t win = (uint64_t)b->p.outlier_window_ms * 1000u;
    if (win == 0)
        return;
    if (b->window_us == 0 || now_us < b->window_us) {
        b->window_us = now_us;
        return;
    }
    if (now_us - b->window_us >= win)
        outlier_sweep(b, now_us);
}

/* The policy's pick, by key for balancer_pick_key. */
static size_t policy_pick(struct balancer *b, const bool *eligible,
                          uint64_t now_us)
{
    if (b->keyed && b->pol->pick_key)
        return b->pol->pick_key(b->state, eligible, b->n, b->key, now_us);
    return b->pol->pick(b->state, eligible, b->n, now_us);
}

static int pick(struct balancer *b, uint64_t tried, uint64_t now_us,
                unsigned *inflight_at_dispatch)
{
    bool eligible[BALANCER_MAX_BACKENDS];
    size_t neligible = 0, probe = b->n, least_bad = b->n;
    size_t idx;

    if (b->nout == 0 && tried == 0 && !b->p.slow_start_ms && b->n > 0) {
        /* every backend up, ready and present (the usual case): each is
         * eligible, none probes, none is failed open to */
        static const bool every[BALANCER_MAX_BACKENDS] = {
            [0 ... BALANCER_MAX_BACKENDS - 1] = true};
        idx = policy_pick(b, every, now_us);
        goto picked;
    }
    for (size_t i = 0; i < b->n; i++) {
        struct balancer_backend *be = &b->be[i];
        bool up = false; /* stored once per backend (no memset first) */
        refresh(b, be, now_us);
        if ((tried & ((uint64_t)1 << i)) || be->removed ||
            be->admin != BALANCER_READY) {
            /* removed, drained and in maintenance: not even failed open to */
        } else if (be->health == BALANCER_PROBING && !be->probe_in_flight) {
            /* The first expired ejection gets the next request. */
            if (probe == b->n ||
                be->ejected_until_us < b->be[probe].ejected_until_us)
                probe = i;
        } else if (be->health == BALANCER_UP) {
            up = true;
            neligible++;
        } else if (least_bad == b->n || worse(&b->be[least_bad], be)) {
            least_bad = i;
        }
        eligible[i] = up;
    }
    if (neligible > 1 && b->p.slow_start_ms) /* off: nothing warms */
        neligible = slow_start_filter(b, eligible, now_us);
    if (probe < b->n) {
        idx = probe;
        b->be[idx].probe_in_flight = true;
        if (b->probe_owner)
            b->probe_owner[idx] = (unsigned char)(shm_worker + 1);
    } else if (neligible > 0) {
        idx = policy_pick(b, eligible, now_us);
    } else if (least_bad < b->n) {
        idx = least_bad; /* fail open rather than refuse */
    } else {
        return -1; /* every backend was tried */
    }
picked:
    if (inflight_at_dispatch)
        *inflight_at_dispatch = b->be[idx].in_flight;
    if (b->be[idx].in_flight == 0) /* a stall can only start now */
        b->be[idx].last_done_us = now_us;
    b->be[idx].in_flight++;
    if (b->rows)
        b->rows[shm_worker * BALANCER_MAX_BACKENDS + idx]++;
    return (int)idx;
}

int balancer_pick(struct balancer *b, uint64_t tried, uint64_t now_us,
                  unsigned *inflight_at_dispatch)
{
    shm_lock(b->lock);
    int idx = pick(b, tried, now_us, inflight_at_dispatch);
    shm_unlock(b->lock);
    return idx;
}

bool balancer_wants_key(const struct balancer *b)
{
    return b->pol->pick_key != NULL;
}

int balancer_pick_key(struct balancer *b, uint64_t tried, uint64_t key,
                      uint64_t now_us, unsigned *inflight_at_dispatch)
{
    shm_lock(b->lock);
    b->keyed = true;
    b->key = key;
    int idx = pick(b, tried, now_us, inflight_at_dispatch);
    b->keyed = false;
    shm_unlock(b->lock);
    return idx;
}

bool balancer_wants_probes(const struct balancer *b)
{
    return b->pol->probe_due != NULL;
}

size_t balancer_probe_due(struct balancer *b, uint64_t now_us, uint64_t busy,
                          unsigned *out, size_t max)
{
    bool eligible[BALANCER_MAX_BACKENDS];
    size_t k = 0, neligible = 0;

    if (!b->pol->probe_due || max == 0)
        return 0;
    shm_lock(b->lock);
    for (size_t i = 0; i < b->n; i++) {
        struct balancer_backend *be = &b->be[i];
        refresh(b, be, now_us);
        eligible[i] = !be->removed && be->admin == BALANCER_READY &&
                      be->health == BALANCER_UP && !(busy & ((uint64_t)1 << i));
        neligible += eligible[i];
    }
    if (neligible > 0)
        k = b->pol->probe_due(b->state, eligible, b->n, now_us, out, max);
    for (size_t j = 0; j < k; j++)
        b->be[out[j]].probes_sent++;
    shm_unlock(b->lock);
    return k;
}

void balancer_probe_result(struct balancer *b, size_t idx,
                           enum balancer_probe_result res, unsigned rif,
                           uint64_t latency_us, uint64_t now_us)
{
    if (!balancer_live(b, idx) || !b->pol->probe_result)
        return;
    shm_lock(b->lock);
    switch (res) {
    case BALANCER_PROBE_OK:
        b->pol->probe_result(b->state, idx, true, rif, latency_us, now_us);
        break;
    case BALANCER_PROBE_UNSUPPORTED:
        b->be[idx].probes_fallback++;
        b->pol->probe_result(b->state, idx, false, 0, 0, now_us);
        break;
    case BALANCER_PROBE_FAILED:
        b->be[idx].probes_failed++;
        break;
    }
    shm_unlock(b->lock);
}

static void observe(struct balancer *b, size_t idx, uint64_t latency_us,
                    enum balancer_outcome outcome,
                    unsigned inflight_at_dispatch, uint64_t now_us)
{
    struct balancer_backend *be;
    bool ok = outcome == BALANCER_OK;
    uint64_t sample = latency_us;
    uint64_t penalty_us = (uint64_t)b->p.penalty_ms * 1000u;

    if (idx >= b->n)
        return;
    be = &b->be[idx];
    if (be->in_flight > 0)
        be->in_flight--;
    if (b->rows && b->rows[shm_worker * BALANCER_MAX_BACKENDS + idx] > 0)
        b->rows[shm_worker * BALANCER_MAX_BACKENDS + idx]--;
    be->last_done_us = now_us;
    /* A failure never looks fast: it counts at least the penalty. */
    if (!ok && sample < penalty_us)
        sample = penalty_us;
    refresh(b, be, now_us);
    /* A successful probe starts the backend over: its first sample is this
     * one, not the penalties of the outage. */
    if (ok && be->health == BALANCER_PROBING && b->pol->reset)
        b->pol->reset(b->state, idx);
    if (b->pol->observe)
        b->pol->observe(b->state, idx, sample, ok, inflight_at_dispatch,
                        now_us);
    be->win_req++;
    if (!ok)
        be->win_fail++;
    outlier_window(b, now_us);

    if (ok) {
        /* alpha 1/8, as TCP's RTT estimator: a tail that follows within
         * a few dozen requests and forgets one outlier */
        double d = (double)latency_us - be->tail_mean_us;
        if (be->tail_mean_us == 0) {
            be->tail_mean_us = (double)latency_us;
            be->tail_dev_us = (double)latency_us / 2;
        } else {
            be->tail_mean_us += d / 8;
            be->tail_dev_us += ((d < 0 ? -d : d) - be->tail_dev_us) / 8;
        }
        be->consecutive_fails = 0;
        if (be->health == BALANCER_PROBING) {
            set_health(b, be, BALANCER_UP);
            be->ejections = 0;
            be->probe_in_flight = false;
            be->outlier = false;
            slow_start(b, idx, now_us);
        }
        return;
    }
    be->fail_total++;
    be->last_fail = outcome;
    be->consecutive_fails++;
    switch (be->health) {
    case BALANCER_UP:
        if (b->p.max_fails > 0 && be->consecutive_fails >= b->p.max_fails)
            eject(b, be, now_us);
        break;
    case BALANCER_PROBING: /* the probe failed: back off for longer */
        eject(b, be, now_us);
        break;
    case BALANCER_EJECTED: /* a request from before the ejection, or a */
    case BALANCER_DOWN:    /* fail-open one: already out, nothing to add */
        break;
    }
}

void balancer_observe(struct balancer *b, size_t idx, uint64_t latency_us,
                      enum balancer_outcome outcome,
                      unsigned inflight_at_dispatch, uint64_t now_us)
{
    shm_lock(b->lock);
    observe(b, idx, latency_us, outcome, inflight_at_dispatch, now_us);
    shm_unlock(b->lock);
}

void balancer_cancel(struct balancer *b, size_t idx)
{
    if (idx >= b->n)
        return;
    shm_lock(b->lock);
    if (b->be[idx].in_flight > 0)
        b->be[idx].in_flight--;
    if (b->rows && b->rows[shm_worker * BALANCER_MAX_BACKENDS + idx] > 0)
        b->rows[shm_worker * BALANCER_MAX_BACKENDS + idx]--;
    if (b->be[idx].health == BALANCER_PROBING)
        b->be[idx].probe_in_flight = false;
    shm_unlock(b->lock);
}

void balancer_set_health(struct balancer *b, size_t idx, bool up,
                         uint64_t now_us)
{
    struct balancer_backend *be;

    if (!balancer_live(b, idx))
        return;
    shm_lock(b->lock);
    be = &b->be[idx];
    if (!up) {
        set_health(b, be, BALANCER_DOWN);
        be->probe_in_flight = false;
    } else if (be->health == BALANCER_DOWN) {
        set_health(b, be, BALANCER_UP);
        be->consecutive_fails = 0;
        be->ejections = 0;
        be->outlier = false;
        if (b->pol->reset)
            b->pol->reset(b->state, idx);
        slow_start(b, idx, now_us);
    }
    shm_unlock(b->lock);
}

bool balancer_live(const struct balancer *b, size_t idx)
{
    return idx < b->n && !b->be[idx].removed;
}

int balancer_add(struct balancer *b, unsigned weight, uint64_t now_us)
{
    shm_lock(b->lock);
    size_t idx = b->n;

    for (size_t i = 0; i < b->n; i++)
        if (b->be[i].removed && b->be[i].in_flight == 0) {
            idx = i;
            break;
        }
    if (idx == BALANCER_MAX_BACKENDS) {
        shm_unlock(b->lock);
        return -1;
    }
    memset(&b->be[idx], 0, sizeof(b->be[idx]));
    b->be[idx].weight = weight ? weight : 1;
    b->be[idx].health = BALANCER_UP;
    b->be[idx].last_fail = BALANCER_OK;
    b->be[idx].admin = BALANCER_READY;
    if (b->pol->clear)
        b->pol->clear(b->state, idx);
    if (idx == b->n)
        b->n++;
    count_out(b);
    slow_start(b, idx, now_us);
    shm_unlock(b->lock);
    return (int)idx;
}

int balancer_remove(struct balancer *b, size_t idx)
{
    if (!balancer_live(b, idx))
        return -1;
    shm_lock(b->lock);
    b->be[idx].removed = true;
    b->be[idx].probe_in_flight = false;
    b->be[idx].warming = false;
    count_out(b);
    shm_unlock(b->lock);
    return 0;
}

int balancer_set_weight(struct balancer *b, size_t idx, unsigned weight)
{
    if (!balancer_live(b, idx) || weight == 0)
        return -1;
    b->be[idx].weight = weight;
    return 0;
}

int balancer_set_admin(struct balancer *b, size_t idx, enum balancer_admin a,
                       uint64_t now_us)
{
    if (!balancer_live(b, idx))
        return -1;
    shm_lock(b->lock);
    if (a == BALANCER_READY && b->be[idx].admin != BALANCER_READY)
        slow_start(b, idx, now_us);
    b->be[idx].admin = a;
    count_out(b);
    shm_unlock(b->lock);
    return 0;
}

size_t balancer_count(const struct balancer *b)
{
    return b->n;
}

const char *balancer_mode(const struct balancer *b)
{
    return b->pol->name;
}

const struct balancer_backend *balancer_backend(const struct balancer *b,
                                                size_t idx)
{
    return idx < b->n ? &b->be[idx] : NULL;
}

double balancer_score(struct balancer *b, size_t idx, uint64_t now_us)
{
    if (idx >= b->n)
        return 0.0;
    shm_lock(b->lock);
    refresh(b, &b->be[idx], now_us);
    double score = b->pol->score(b->state, idx, now_us);
    shm_unlock(b->lock);
    return score;
}

const char *balancer_reason(const struct balancer *b, size_t idx, char *buf,
                            size_t len)
{
    const struct balancer_backend *be;

    if (len == 0)
        return buf;
    buf[0] = '\0';
    if (idx >= b->n)
        return buf;
    be = &b->be[idx];
    switch (be->health) {
    case BALANCER_UP:
        break;
    case BALANCER_EJECTED:
        if (be->outlier)
            snprintf(buf, len, "ejected: failure rate outlier (%u failed)",
                     be->eject_fails);
        else
            snprintf(buf, len, "ejected: %u consecutive %s", be->eject_fails,
                     balancer_outcome_str(be->last_fail));
        break;
    case BALANCER_PROBING:
        snprintf(buf, len, "probing");
        break;
    case BALANCER_DOWN:
        snprintf(buf, len, "health check failed");
        break;
    }
    return buf;
}

double balancer_stall_floor_us(const struct balancer_backend *be,
                               uint64_t now_us)
{
    double stall, n = (double)be->in_flight;

    if (be->in_flight == 0 || now_us <= be->last_done_us)
        return 0.0;
    stall = (double)(now_us - be->last_done_us);
    return n > BALANCER_STALL_MARGIN ? stall * n / BALANCER_STALL_MARGIN
                                     : stall;
}

uint64_t balancer_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

size_t balancer_rand_below(uint64_t *state, size_t n)
{
    /* The modulo bias is below 2^-50 for any n we use. */
    return (size_t)(balancer_rand(state) % n);
}
