/*
 * health: active health checks, one slot per backend.
 *
 * A slot's timer starts its next check; the check itself is a checkconn
 * exchange (connect, send, status line, under its own deadline) on a
 * fresh connection that is closed when the check ends, so a check never
 * touches the request pools and a slot owns at most one socket.  The
 * status line is the whole verdict: the check stops reading as soon as it
 * is complete.  A backend marked ",tls" is checked over TLS (the
 * connection's transport; its handshake is part of the connect, and a
 * failed one fails the check), with the session its requests resume.
 */
#include "health.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "balancer.h"
#include "checkconn.h"
#include "config.h"
#include "log.h"
#include "loop.h"
#include "proxyproto.h"
#include "upstream.h"

#define HEALTH_REQ 320           /* path <= 127 + host <= 96 + fixed text */
#define HEALTH_GRACE_US 1000000u /* deadline = connect timeout + this */

struct hslot {
    struct health *h;
    unsigned idx;
    bool active;             /* the slot holds a backend that is checked */
    bool paused;             /* ... but not now (maintenance) */
    struct loop_timer timer; /* the next check's start */
    struct checkconn cc;     /* the check under way and its connection */
    uint64_t started_us;
    size_t req_len;
    unsigned passes, fails; /* consecutive results */
    bool down;              /* what we last told the balancer */
    uint64_t done;
    char req[HEALTH_REQ];
};

struct health {
    struct loop *loop;
    struct upstream *up;
    struct balancer *bal;
    uint64_t interval_us, timeout_us;
    uint64_t last_local_warn;
    /* send_proxy: checks open with a LOCAL header (v2) or "PROXY UNKNOWN"
     * (v1), which carry no client, as HAProxy's check-send-proxy does */
    uint8_t pre[PROXYPROTO_V1_MAX + 1];
    size_t prelen;
    char path[128];
    unsigned n; /* slots in use (live and removed) */
    struct hslot slots[CONFIG_MAX_BACKENDS];
};

static void schedule_next(struct hslot *s)
{
    struct health *h = s->h;
    uint64_t now = loop_now(h->loop);
    uint64_t next = s->started_us + h->interval_us;
    /* Never closer than a quarter interval: no burst after a slow check. */
    if (next < now + h->interval_us / 4)
        next = now + h->interval_us / 4;
    loop_timer_set(h->loop, &s->timer, next);
}

/* Records a check's verdict and schedules the next one. */
static void verdict(struct hslot *s, bool ok, const char *why)
{
    struct health *h = s->h;
    uint64_t now = loop_now(h->loop);
    const char *id = upstream_id(h->up, s->idx);

    s->done++;
    if (ok) {
        s->fails = 0;
        s->passes++;
        if (s->down && s->passes >= HEALTH_RISE) {
            s->down = false;
            balancer_set_health(h->bal, s->idx, true, now);
            log_info("backend %s (%s) is up: %u health checks passed", id,
                     upstream_addr(h->up, s->idx), s->passes);
        }
    } else {
        s->passes = 0;
        s->fails++;
        log_debug("backend %s: health check failed: %s", id, why);
        if (!s->down && s->fails >= HEALTH_FALL) {
            s->down = true;
            balancer_set_health(h->bal, s->idx, false, now);
            log_warnx("backend %s (%s) is down: %u health checks failed, "
                      "last: %s",
                      id, upstream_addr(h->up, s->idx), s->fails, why);
        }
    }
    schedule_next(s);
}

/* A check that could not start for a local reason (EMFILE, ...) says
 * nothing about the backend: no verdict, try again next interval. */
static void abandon(struct hslot *s)
{
    struct health *h = s->h;
    uint64_t now = loop_now(h->loop);
    if (now - h->last_local_warn > 10000000u || h->last_local_warn == 0) {
        log_warn("health check of backend %s not started",
                 upstream_id(h->up, s->idx));
        h->last_local_warn = now;
    }
    schedule_next(s);
}

/* The status line is the whole verdict: 2xx and 3xx pass. */
static void on_check_done(struct checkconn *cc, enum checkconn_result r,
                          const char *why)
{
    struct hslot *s = cc->ctx;
    switch (r) {
    case CHECKCONN_LOCAL:
        abandon(s);
        return;
    case CHECKCONN_FAILED:
        verdict(s, false, why);
        return;
    case CHECKCONN_DONE:
        break;
    }
    int c = cc->status / 100;
    verdict(s, c == 2 || c == 3,
            c == 5   ? "5xx status"
            : c == 4 ? "4xx status"
                     : "1xx status");
}

static void on_timer(struct loop *loop, struct loop_timer *t)
{
    (void)loop;
    struct hslot *s = t->ctx;
    struct health *h = s->h;
    s->started_us = loop_now(h->loop);
    checkconn_start(&s->cc, s->req, s->req_len, s->started_us + h->timeout_us);
}

bool health_enabled(const struct config *cfg)
{
    return cfg->health_check_path[0] != '\0';
}

struct health *health_create(struct loop *loop, const struct config *cfg,
                             struct upstream *up, struct balancer *bal,
                             char *err, size_t errlen)
{
    if (!health_enabled(cfg)) {
        snprintf(err, errlen, "health checks: no health_check_path");
        errno = EINVAL;
        return NULL;
    }
    unsigned n = (unsigned)upstream_count(up);
    struct health *h = calloc(1, sizeof(*h));
    if (!h) {
        snprintf(err, errlen, "health checks: out of memory");
        return NULL;
    }
    h->loop = loop;
    h->up = up;
    h->bal = bal;
    snprintf(h->path, sizeof(h->path), "%s", cfg->health_check_path);
    h->prelen = checkconn_preamble(cfg->send_proxy, h->pre, sizeof(h->pre));
    h->interval_us = (uint64_t)cfg->health_check_interval_ms * 1000u;
    if (h->interval_us == 0)
        h->interval_us = 1000000u;
    h->timeout_us =
        (uint64_t)cfg->upstream_connect_timeout_ms * 1000u + HEALTH_GRACE_US;
    if (h->timeout_us > h->interval_us)
        h->timeout_us = h->interval_us;
    uint64_t now = loop_now(loop);
    for (unsigned i = 0; i < n; i++) {
        if (!upstream_live(up, i))
            continue;
        if (health_add(h, i, err, errlen) < 0) {
            for (unsigned j = 0; j < i; j++)
                loop_timer_cancel(loop, &h->slots[j].timer);
            free(h);
            errno = ENAMETOOLONG;
            return NULL;
        }
        /* Spread the first checks over one interval: no synchronised
         * bursts, and the first backend is checked at once. */
        loop_timer_set(loop, &h->slots[i].timer, now + h->interval_us * i / n);
    }
    return h;
}

/* Stops a slot's check under way (no verdict) and its timer. */
static void stop_slot(struct hslot *s)
{
    loop_timer_cancel(s->h->loop, &s->timer);
    checkconn_stop(&s->cc);
}

int health_add(struct health *h, unsigned idx, char *err, size_t errlen)
{
    if (!h)
        return 0;
    if (idx >= CONFIG_MAX_BACKENDS || !upstream_live(h->up, idx)) {
        snprintf(err, errlen, "health check: no backend in slot %u", idx);
        return -1;
    }
    struct hslot *s = &h->slots[idx];
    s->h = h;
    stop_slot(s);
    const char *addr = upstream_addr(h->up, idx);
    int len = snprintf(s->req, sizeof(s->req),
                       "GET %s HTTP/1.1\r\nHost: %s\r\n"
                       "User-Agent: lbproxy-health\r\n"
                       "Connection: close\r\n\r\n",
                       h->path,
                       /* a socket path is no Host name */
                       strncmp(addr, "unix:", 5) == 0 ? "localhost" : addr);
    if (len < 0 || (size_t)len >= sizeof(s->req)) {
        snprintf(err, errlen,
                 "health check of backend %s: path and address too long "
                 "for a %zu-byte request",
                 upstream_id(h->up, idx), sizeof(s->req));
        return -1;
    }
    s->idx = idx;
    s->timer.fn = on_timer;
    s->timer.ctx = s;
    s->cc.loop = h->loop;
    s->cc.up = h->up;
    s->cc.idx = idx;
    s->cc.head = false;
    s->cc.keep = false;
    s->cc.pre = h->pre;
    s->cc.prelen = h->prelen;
    s->cc.done = on_check_done;
    s->cc.ctx = s;
    s->req_len = (size_t)len;
    s->passes = s->fails = 0;
    s->down = false;
    s->done = 0;
    s->active = true;
    s->paused = false;
    if (idx >= h->n)
        h->n = idx + 1;
    loop_timer_set(h->loop, &s->timer, loop_now(h->loop));
    return 0;
}

void health_remove(struct health *h, unsigned idx)
{
    if (!h || idx >= h->n || !h->slots[idx].active)
        return;
    stop_slot(&h->slots[idx]);
    h->slots[idx].active = false;
}

void health_pause(struct health *h, unsigned idx, bool paused)
{
    if (!h || idx >= h->n || !h->slots[idx].active ||
        h->slots[idx].paused == paused)
        return;
    struct hslot *s = &h->slots[idx];
    s->paused = paused;
    stop_slot(s);
    if (!paused)
        loop_timer_set(h->loop, &s->timer, loop_now(h->loop));
}

void health_destroy(struct health *h)
{
    if (!h)
        return;
    for (unsigned i = 0; i < h->n; i++)
        if (h->slots[i].active)
            stop_slot(&h->slots[i]);
    /* Events of this round may still name a slot's closed io; those are
     * skipped by the loop, and the memory lives until the round ends. */
    loop_defer(h->loop, free, h);
}

uint64_t health_checks_done(const struct health *h, unsigned idx)
{
    return h && idx < h->n ? h->slots[idx].done : 0;
}
