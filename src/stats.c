/*
 * stats: one-second slots in a ring, rotated lazily by tagging each slot with
 * the second it holds; a slot whose tag is not the second asked for is
 * empty.  The ring has more slots than the history so that the current,
 * incomplete second never overwrites one of the 60 complete ones.
 */
#include "stats.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"
#include "shm.h"

#define RING 64 /* > STATS_HISTORY + 1, a power of two */
#define NO_SEC UINT64_MAX

struct slot {
    uint64_t sec; /* the second this slot holds, NO_SEC when never used */
    uint32_t requests;
    uint32_t errors;
    uint64_t lat_sum_us;
    uint32_t lat_count;
    bool has_score;
    double score;
    bool has_flow;
    uint32_t retries, hedges, queue;
    uint32_t hist[STATS_BUCKETS];
};

struct series {
    struct stats_counters c;
    uint64_t le[STATS_LE_COUNT]; /* per-bound counts (not yet cumulative) */
    uint64_t dur_count;
    uint64_t dur_sum_us;
    struct slot ring[RING];
};

struct stats {
    size_t n;
    uint64_t start_us;
    struct series *series;           /* n backends, then the total */
    struct shm_lock *lock;           /* writers of several workers; NULL: one */
    uint64_t scratch[STATS_BUCKETS]; /* merged histogram for queries */
};

const double stats_le_bounds[STATS_LE_COUNT] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25,   0.5,   1.0,    2.5,   5.0,  10.0,  30.0,
};

/* The same bounds in microseconds, for integer comparisons. */
static const uint64_t le_us[STATS_LE_COUNT] = {
    500,    1000,   2500,    5000,    10000,   25000,    50000,    100000,
    250000, 500000, 1000000, 2500000, 5000000, 10000000, 30000000,
};

const char *stats_err_str(enum stats_err e)
{
    switch (e) {
    case STATS_ERR_HTTP_5XX:
        return "http_5xx";
    case STATS_ERR_CONNECT:
        return "connect";
    case STATS_ERR_TIMEOUT:
        return "timeout";
    case STATS_ERR_RESET:
        return "reset";
    case STATS_ERR_BAD_RESPONSE:
        return "bad_response";
    case STATS_ERR_BAD_REQUEST:
        return "bad_request";
    case STATS_ERR_CLIENT_CLOSED:
        return "client_closed";
    case STATS_ERR_CLIENT_TIMEOUT:
        return "client_timeout";
    case STATS_ERR_SHUTDOWN:
        return "shutdown";
    }
    return "?";
}

/* ---- histogram ---- */

size_t stats_bucket(uint64_t us)
{
    if (us < 128)
        return (size_t)us;
    if (us >= (UINT64_C(1) << STATS_MAX_EXP))
        return STATS_BUCKETS - 1;
    unsigned k = 63u - (unsigned)__builtin_clzll(us); /* 7 .. MAX_EXP-1 */
    uint64_t sub = (us >> (k - STATS_SUB_BITS)) - 64;
    return 128 + (size_t)(k - 7) * 64 + (size_t)sub;
}

uint64_t stats_bucket_low(size_t i)
{
    if (i < 128)
        return i;
    size_t j = i - 128;
    unsigned k = 7 + (unsigned)(j / 64);
    return (uint64_t)(64 + j % 64) << (k - STATS_SUB_BITS);
}

uint64_t stats_bucket_width(size_t i)
{
    if (i < 128)
        return 1;
    unsigned k = 7 + (unsigned)((i - 128) / 64);
    return UINT64_C(1) << (k - STATS_SUB_BITS);
}

/* Rank of quantile q among total samples (1-based, at least 1). */
static uint64_t quantile_rank(uint64_t total, double q)
{
    if (q < 0)
        q = 0;
    if (q > 1)
        q = 1;
    /* The epsilon keeps 0.9 * 10 from rounding up to rank 10. */
    uint64_t rank = (uint64_t)ceil(q * (double)total - 1e-9);
    return rank < 1 ? 1 : rank;
}

static double bucket_mid(size_t i)
{
    return (double)stats_bucket_low(i) +
           (double)(stats_bucket_width(i) - 1) / 2.0;
}

/* The bucket holding the q-quantile of `total` samples counted in hist,
 * written once for the 64-bit totals and the 32-bit slot counts. */
#define HIST_QUANTILE(hist, total, q)                                          \
    do {                                                                       \
        if ((total) == 0)                                                      \
            return 0;                                                          \
        uint64_t rank_ = quantile_rank(total, q), seen_ = 0;                   \
        for (size_t i_ = 0; i_ < STATS_BUCKETS; i_++) {                        \
            seen_ += (hist)[i_];                                               \
            if (seen_ >= rank_)                                                \
                return bucket_mid(i_);                                         \
        }                                                                      \
        return bucket_mid(STATS_BUCKETS - 1);                                  \
    } while (0)

double stats_hist_quantile(const uint64_t *hist, uint64_t total, double q)
{
    HIST_QUANTILE(hist, total, q);
}

/* The same over one slot's 32-bit counts (no copy per history second). */
static double slot_quantile(const uint32_t *hist, uint64_t total, double q)
{
    HIST_QUANTILE(hist, total, q);
}

/* ---- life cycle ---- */

struct stats *stats_create(size_t nbackends, uint64_t now_us)
{
    struct stats *s = shm_calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->series = shm_calloc(nbackends + 1, sizeof(*s->series));
    s->lock = shm_lock_new();
    if (!s->series || (shm_active() && !s->lock))
        goto fail;
    s->n = nbackends;
    s->start_us = now_us;
    for (size_t i = 0; i <= nbackends; i++)
        for (size_t j = 0; j < RING; j++)
            s->series[i].ring[j].sec = NO_SEC;
    return s;
fail:
    shm_free(s->series);
    shm_free(s);
    errno = ENOMEM;
    return NULL;
}

void stats_destroy(struct stats *s)
{
    if (!s)
        return;
    shm_lock_free(s->lock);
    shm_free(s->series);
    shm_free(s);
}

int stats_remap(struct stats *s, size_t nbackends, const int *from)
{
    struct series *ns = shm_calloc(nbackends + 1, sizeof(*ns));
    if (!ns) {
        errno = ENOMEM;
        return -1;
    }
    shm_lock(s->lock);
    for (size_t i = 0; i < nbackends; i++) {
        if (from[i] >= 0 && (size_t)from[i] < s->n) {
            ns[i] = s->series[from[i]];
        } else {
            for (size_t j = 0; j < RING; j++)
                ns[i].ring[j].sec = NO_SEC;
        }
    }
    ns[nbackends] = s->series[s->n]; /* the total */
    shm_free(s->series);
    s->series = ns;
    s->n = nbackends;
    shm_unlock(s->lock);
    return 0;
}

struct stats *stats_clone(struct stats *s, size_t nbackends, const int *from)
{
    struct stats *c = stats_create(nbackends, s->start_us);
    if (!c)
        return NULL;
    shm_lock(s->lock);
    for (size_t i = 0; i < nbackends; i++)
        if (from[i] >= 0 && (size_t)from[i] < s->n)
            c->series[i] = s->series[from[i]];
    c->series[nbackends] = s->series[s->n];
    shm_unlock(s->lock);
    return c;
}

size_t stats_count(const struct stats *s)
{
    return s->n;
}

uint64_t stats_start_us(const struct stats *s)
{
    return s->start_us;
}

/* Series for an index, or NULL when out of range. */
static struct series *series_of(const struct stats *s, size_t idx)
{
    if (!s)
        return NULL; /* no stats: every series reads as empty */
    if (idx == STATS_TOTAL)
        return &s->series[s->n];
    if (idx < s->n)
        return &s->series[idx];
    return NULL;
}

/* The slot for second `sec`, cleared if it held an older second. */
static struct slot *slot_for_write(struct series *se, uint64_t sec)
{
    struct slot *sl = &se->ring[sec % RING];
    if (sl->sec != sec) {
        memset(sl, 0, sizeof(*sl));
        sl->sec = sec;
    }
    return sl;
}

/* The slot for second `sec`, or NULL when that second has no data. */
static const struct slot *slot_for_read(const struct series *se, uint64_t sec)
{
    const struct slot *sl = &se->ring[sec % RING];
    return sl->sec == sec ? sl : NULL;
}

/* ---- recording ---- */

/* The error kind of a record, or -1 when it is not an error. */
static int error_kind(const struct record *r)
{
    switch (r->error) {
    case RECORD_OK:
        return r->status >= 500 ? STATS_ERR_HTTP_5XX : -1;
    case RECORD_BAD_REQUEST:
        return STATS_ERR_BAD_REQUEST;
    case RECORD_CONNECT:
    case RECORD_UPSTREAM_TLS: /* a connect that failed in its handshake */
        return STATS_ERR_CONNECT;
    case RECORD_TIMEOUT:
        return STATS_ERR_TIMEOUT;
    case RECORD_UPSTREAM_RESET:
        return STATS_ERR_RESET;
    case RECORD_BAD_RESPONSE:
        return STATS_ERR_BAD_RESPONSE;
    case RECORD_CLIENT_CLOSED:
        return STATS_ERR_CLIENT_CLOSED;
    case RECORD_CLIENT_TIMEOUT:
        return STATS_ERR_CLIENT_TIMEOUT;
    case RECORD_SHUTDOWN:
        return STATS_ERR_SHUTDOWN;
    }
    return -1;
}

/* Where one latency sample goes: its histogram bucket and its
 * Prometheus bound (STATS_LE_COUNT: above the last), found once for both
 * series a request counts in. */
struct sample {
    uint64_t us;
    size_t bucket, le;
};

static void account(struct series *se, uint64_t sec, int kind,
                    const struct sample *lat, const struct record *r)
{
    se->c.requests++;
    se->c.bytes_in += r->req_bytes;
    se->c.bytes_out += r->resp_bytes;
    struct slot *sl = slot_for_write(se, sec);
    sl->requests++;
    if (kind >= 0) {
        se->c.errors++;
        se->c.err[kind]++;
        sl->errors++;
    }
    if (!lat)
        return;
    sl->hist[lat->bucket]++;
    sl->lat_sum_us += lat->us;
    sl->lat_count++;
    se->dur_count++;
    se->dur_sum_us += lat->us;
    if (lat->le < STATS_LE_COUNT)
        se->le[lat->le]++;
}

void stats_record(struct stats *s, const struct record *r, uint64_t now_us)
{
    stats_record_as(s, r, r->backend, now_us);
}

void stats_record_as(struct stats *s, const struct record *r, int backend,
                     uint64_t now_us)
{
    uint64_t sec = now_us / 1000000u;
    int kind = error_kind(r);
    bool be = backend >= 0 && (size_t)backend < s->n;
    int64_t lat = be && r->upstream_us >= 0 ? r->upstream_us : r->total_us;
    struct sample smp = {(uint64_t)lat, 0, 0};
    if (lat >= 0) {
        smp.bucket = stats_bucket(smp.us);
        while (smp.le < STATS_LE_COUNT && smp.us > le_us[smp.le])
            smp.le++;
    }
    const struct sample *sp = lat >= 0 ? &smp : NULL;
    shm_lock(s->lock);
    if (be)
        account(&s->series[backend], sec, kind, sp, r);
    account(&s->series[s->n], sec, kind, sp, r);
    shm_unlock(s->lock);
}

void stats_attempt_failed(struct stats *s, size_t idx, int err, int status,
                          uint64_t now_us)
{
    if (idx >= s->n)
        return;
    struct record r = {.error = (enum record_error)err, .status = status};
    int kind = error_kind(&r);
    if (kind < 0)
        return;
    shm_lock(s->lock);
    struct series *se = &s->series[idx];
    se->c.errors++;
    se->c.err[kind]++;
    slot_for_write(se, now_us / 1000000u)->errors++;
    shm_unlock(s->lock);
}

void stats_set_score(struct stats *s, size_t idx, double score, uint64_t now_us)
{
    struct series *se = series_of(s, idx);
    if (!se)
        return;
    shm_lock(s->lock);
    struct slot *sl = slot_for_write(se, now_us / 1000000u);
    sl->score = score;
    sl->has_score = true;
    shm_unlock(s->lock);
}

void stats_set_flow(struct stats *s, uint32_t retries, uint32_t hedges,
                    uint32_t queue, uint64_t now_us)
{
    shm_lock(s->lock);
    struct slot *sl = slot_for_write(&s->series[s->n], now_us / 1000000u);
    sl->has_flow = true;
    sl->retries = retries;
    sl->hedges = hedges;
    sl->queue = queue;
    shm_unlock(s->lock);
}

/* ---- queries ---- */

void stats_counters(const struct stats *s, size_t idx,
                    struct stats_counters *out)
{
    const struct series *se = series_of(s, idx);
    if (!se) {
        memset(out, 0, sizeof(*out));
        return;
    }
    *out = se->c;
}

void stats_window(struct stats *s, size_t idx, unsigned seconds,
                  uint64_t now_us, struct stats_window *out)
{
    memset(out, 0, sizeof(*out));
    const struct series *se = series_of(s, idx);
    if (!se)
        return;
    if (seconds > STATS_HISTORY)
        seconds = STATS_HISTORY;
    uint64_t cur = now_us / 1000000u;
    uint64_t first = s->start_us / 1000000u;
    /* Only seconds since start count: rps is not diluted by the time
     * before stats existed.  The starting second itself is partial but
     * counted (it holds requests). */
    uint64_t avail = cur > first ? cur - first : 0;
    if (seconds > avail)
        seconds = (unsigned)avail;
    out->seconds = seconds;
    memset(s->scratch, 0, sizeof(s->scratch));
    uint64_t sum = 0;
    for (unsigned i = 1; i <= seconds; i++) {
        const struct slot *sl = slot_for_read(se, cur - i);
        if (!sl)
            continue;
        out->requests += sl->requests;
        out->errors += sl->errors;
        out->latency.count += sl->lat_count;
        sum += sl->lat_sum_us;
        if (sl->lat_count == 0)
            continue;
        for (size_t b = 0; b < STATS_BUCKETS; b++)
            s->scratch[b] += sl->hist[b];
    }
    if (seconds > 0)
        out->rps = (double)out->requests / seconds;
    struct stats_latency *l = &out->latency;
    if (l->count == 0)
        return;
    l->mean_ms = (double)sum / (double)l->count / 1000.0;
    l->p50_ms = stats_hist_quantile(s->scratch, l->count, 0.50) / 1000.0;
    l->p90_ms = stats_hist_quantile(s->scratch, l->count, 0.90) / 1000.0;
    l->p99_ms = stats_hist_quantile(s->scratch, l->count, 0.99) / 1000.0;
    l->p999_ms = stats_hist_quantile(s->scratch, l->count, 0.999) / 1000.0;
}

void stats_history(const struct stats *s, size_t idx, uint64_t now_us,
                   struct stats_second out[STATS_HISTORY])
{
    const struct series *se = series_of(s, idx);
    uint64_t cur = now_us / 1000000u;
    for (unsigned i = 0; i < STATS_HISTORY; i++) {
        struct stats_second *o = &out[i];
        memset(o, 0, sizeof(*o));
        o->sec = cur - STATS_HISTORY + i;
        const struct slot *sl = se ? slot_for_read(se, o->sec) : NULL;
        if (!sl)
            continue;
        o->requests = sl->requests;
        o->errors = sl->errors;
        o->has_score = sl->has_score;
        o->score = sl->score;
        o->has_flow = sl->has_flow;
        o->retries = sl->retries;
        o->hedges = sl->hedges;
        o->queue = sl->queue;
        if (sl->lat_count == 0)
            continue;
        o->has_latency = true;
        o->p50_ms = slot_quantile(sl->hist, sl->lat_count, 0.50) / 1000.0;
        o->p99_ms = slot_quantile(sl->hist, sl->lat_count, 0.99) / 1000.0;
    }
}

void stats_duration(const struct stats *s, size_t idx,
                    uint64_t le[STATS_LE_COUNT], uint64_t *count,
                    uint64_t *sum_us)
{
    const struct series *se = series_of(s, idx);
    uint64_t acc = 0;
    for (size_t i = 0; i < STATS_LE_COUNT; i++) {
        acc += se ? se->le[i] : 0;
        le[i] = acc;
    }
    *count = se ? se->dur_count : 0;
    *sum_us = se ? se->dur_sum_us : 0;
}
