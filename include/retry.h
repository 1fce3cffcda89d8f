/*
 * retry: which failures may be retried, and the retry budget that bounds
 * how many extra attempts run at once (Envoy's rule: at most
 * budget_percent of the requests in flight, but always at least
 * budget_min), so that when every backend slows down together lbproxy
 * never multiplies the load.  Pure functions.
 */
#ifndef LB_RETRY_H
#define LB_RETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What may be retried on another backend (the [retry] on key). */
enum retry_on {
    RETRY_CONNECT = 1 << 0, /* connect refused or timed out */
    RETRY_RESET = 1 << 1,   /* closed or reset before any response byte */
    RETRY_TIMEOUT = 1 << 2, /* no response within upstream_ms */
    RETRY_5XX = 1 << 3,     /* a 5xx head, before any byte reached the client */
};

/* Parses "connect,reset,timeout,5xx" (any subset, any order, or "none")
 * into a mask of enum retry_on.  Returns 0, or -1 for an unknown word. */
int retry_on_parse(const char *text, unsigned *mask);
/* Writes the mask the way retry_on_parse reads it ("none" for 0). */
void retry_on_format(unsigned mask, char *buf, size_t len);

/* Whether one more attempt may start: `active_retries` extra attempts are
 * running while `active_requests` requests are in flight. */
bool retry_budget_allows(unsigned active_requests, unsigned active_retries,
                         unsigned budget_percent, unsigned budget_min);

/* The per-try deadline in ms for a backend whose latency tail is tail_us
 * (0: no sample yet): factor x the tail, rounded up, within [min_ms,
 * max_ms] (max_ms before the first sample); 0 (no per-try deadline) when
 * min_ms is 0 or the deadline would not come before upstream_ms. */
unsigned retry_per_try_ms(uint64_t tail_us, unsigned factor, unsigned min_ms,
                          unsigned max_ms, unsigned upstream_ms);

#endif
