/*
 * stats: per-backend and total counters and latency histograms, kept in
 * one-second slots (the last 60 complete seconds) plus cumulative totals.
 *
 * Pure code: no sockets, no loop.  Time is passed in (monotonic
 * microseconds), so every function is testable with a fake clock.  Memory is
 * allocated once by stats_create(); recording is O(1) and never allocates.
 *
 * Series: one per backend (index 0..n-1) and one for the total, addressed by
 * STATS_TOTAL.  Requests with no backend count in the total only.
 */
#ifndef LB_STATS_H
#define LB_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct record;
struct stats;

/* Complete seconds kept for history and windows. */
#define STATS_HISTORY 60
/* Index of the total series in every query function. */
#define STATS_TOTAL ((size_t)-1)

/* Error kinds counted per series (a request counts in at most one). */
enum stats_err {
    STATS_ERR_HTTP_5XX,       /* status >= 500 with no proxy-side error */
    STATS_ERR_CONNECT,        /* RECORD_CONNECT */
    STATS_ERR_TIMEOUT,        /* RECORD_TIMEOUT */
    STATS_ERR_RESET,          /* RECORD_UPSTREAM_RESET */
    STATS_ERR_BAD_RESPONSE,   /* RECORD_BAD_RESPONSE */
    STATS_ERR_BAD_REQUEST,    /* RECORD_BAD_REQUEST */
    STATS_ERR_CLIENT_CLOSED,  /* RECORD_CLIENT_CLOSED */
    STATS_ERR_CLIENT_TIMEOUT, /* RECORD_CLIENT_TIMEOUT */
    STATS_ERR_SHUTDOWN,       /* RECORD_SHUTDOWN */
};
#define STATS_ERR_COUNT 9
/* The kind's name as used in JSON keys and Prometheus labels. */
const char *stats_err_str(enum stats_err e);

/* Cumulative counters of one series since stats_create(). */
struct stats_counters {
    uint64_t requests;
    uint64_t errors; /* sum of err[] */
    uint64_t err[STATS_ERR_COUNT];
    uint64_t bytes_in;  /* from clients (record.req_bytes) */
    uint64_t bytes_out; /* to clients (record.resp_bytes) */
};

/* A latency summary in milliseconds; all 0 when count is 0. */
struct stats_latency {
    uint64_t count;
    double mean_ms, p50_ms, p90_ms, p99_ms, p999_ms;
};

/* One series over the last `seconds` complete seconds. */
struct stats_window {
    unsigned seconds; /* seconds actually covered (<= asked, >= 0) */
    uint64_t requests;
    uint64_t errors;
    double rps; /* requests / seconds (0 when seconds is 0) */
    struct stats_latency latency;
};

/* One complete second of one series. */
struct stats_second {
    uint64_t sec; /* monotonic second (now_us / 1e6) */
    uint32_t requests;
    uint32_t errors;
    bool has_latency; /* false when no request finished in it */
    double p50_ms, p99_ms;
    bool has_score; /* false when stats_set_score was not called in it */
    double score;
    /* the total series only: false when stats_set_flow was not called */
    bool has_flow;
    uint32_t retries, hedges, queue;
};

/* Creates stats for nbackends backends; NULL on ENOMEM (errno set). */
struct stats *stats_create(size_t nbackends, uint64_t now_us);
/* Frees everything; NULL is a no-op. */
void stats_destroy(struct stats *s);
/* Gives the stats a new backend set after a reload: backend i of the new
 * set keeps the counters, histograms and history of old backend from[i]
 * (from[i] < 0: a new backend, starting from zero); the total is kept.
 * Returns 0, or -1 with errno ENOMEM and the stats unchanged. */
int stats_remap(struct stats *s, size_t nbackends, const int *from);
/* A new stats object laid out as stats_remap would leave s, s unchanged
 * (--workers N: a new generation's copy while the old one's workers still
 * count their last requests in s).  NULL with errno ENOMEM. */
struct stats *stats_clone(struct stats *s, size_t nbackends, const int *from);
/* Number of backend series. */
size_t stats_count(const struct stats *s);
/* Monotonic microseconds passed to stats_create (for the uptime). */
uint64_t stats_start_us(const struct stats *s);

/* Accounts one finished request at now_us: O(1), no allocation.  The
 * latency recorded is r->upstream_us when the request reached a backend,
 * else r->total_us; negative latencies are not recorded. */
void stats_record(struct stats *s, const struct record *r, uint64_t now_us);
/* The same with the record counted for backend index `backend` (-1: the
 * total only) instead of r->backend. */
void stats_record_as(struct stats *s, const struct record *r, int backend,
                     uint64_t now_us);
/* Counts an error on backend idx for an attempt that was retried on
 * another backend: the backend's errors grow, its requests and the total
 * (which counts what clients saw) do not.  err is an enum record_error;
 * with RECORD_OK a status >= 500 (a 5xx retried elsewhere) counts. */
void stats_attempt_failed(struct stats *s, size_t idx, int err, int status,
                          uint64_t now_us);
/* Stores into the total series' current second what the retry machinery
 * did: extra attempts and hedges started since the previous call, and the
 * queue length now (the last call in a second wins). */
void stats_set_flow(struct stats *s, uint32_t retries, uint32_t hedges,
                    uint32_t queue, uint64_t now_us);
/* Stores the selector score of backend idx into the current second (the
 * last call in a second wins). */
void stats_set_score(struct stats *s, size_t idx, double score,
                     uint64_t now_us);

/* Cumulative counters of series idx (a backend index or STATS_TOTAL). */
void stats_counters(const struct stats *s, size_t idx,
                    struct stats_counters *out);
/* Requests, errors, rps and latency percentiles of series idx over the last
 * `seconds` (1..STATS_HISTORY) complete seconds before now_us. */
void stats_window(struct stats *s, size_t idx, unsigned seconds,
                  uint64_t now_us, struct stats_window *out);
/* Fills out[0..STATS_HISTORY-1] with the last STATS_HISTORY complete
 * seconds of series idx, oldest first. */
void stats_history(const struct stats *s, size_t idx, uint64_t now_us,
                   struct stats_second out[STATS_HISTORY]);

/* Upper bounds (seconds) of the cumulative Prometheus histogram, ascending,
 * without +Inf. */
#define STATS_LE_COUNT 15
extern const double stats_le_bounds[STATS_LE_COUNT];
/* Cumulative latency histogram of series idx since start: le[i] counts
 * requests with latency <= stats_le_bounds[i] (already cumulative across
 * buckets, as Prometheus wants); *count is the +Inf bucket. */
void stats_duration(const struct stats *s, size_t idx,
                    uint64_t le[STATS_LE_COUNT], uint64_t *count,
                    uint64_t *sum_us);

/* ---- the histogram itself, exported for tests and other users ---- */

/* Log-linear buckets: values below 128 us are exact; above, each power of
 * two is split into 64 linear sub-buckets (bucket width <= 1/64 of the
 * value, so the bucket midpoint is within 0.8%).  Values above ~134 s land
 * in the last bucket. */
#define STATS_SUB_BITS 6
#define STATS_MAX_EXP 27 /* 2^27 us = 134 s */
#define STATS_BUCKETS (128 + (STATS_MAX_EXP - 7) * 64)

/* Bucket index of a latency in microseconds. */
size_t stats_bucket(uint64_t us);
/* Smallest value (us) in bucket i. */
uint64_t stats_bucket_low(size_t i);
/* Number of values in bucket i (1 for the exact range). */
uint64_t stats_bucket_width(size_t i);
/* Quantile q (0..1) of a histogram with `total` samples, in microseconds
 * (the midpoint of the bucket holding rank ceil(q * total)); 0 if empty. */
double stats_hist_quantile(const uint64_t *hist, uint64_t total, double q);

#endif
