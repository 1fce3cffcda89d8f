/*
 * health: active health checks, one slot per backend.
 *
 * A slot is IDLE (its timer is the start of the next check) or busy
 * (CONNECTING, SENDING, READING; its timer is the check's deadline).  Each
 * check uses a fresh connection from upstream_connect() that is closed
 * when the check ends, so a check never touches the request pools and a
 * slot owns at most one socket.  The status line is the whole verdict: the
 * check stops reading as soon as it is complete.  A backend marked ",tls"
 * is checked over TLS (the connection's transport; its handshake is part
 * of the connect, and a failed one fails the check), with the session
 * its requests resume.
 */
#include "health.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "balancer.h"
#include "config.h"
#include "log.h"
#include "loop.h"
#include "proxyproto.h"
#include "upstream.h"

#define HEALTH_BUF 256           /* enough for any sane status line */
#define HEALTH_REQ 320           /* path <= 127 + host <= 96 + fixed text */
#define HEALTH_GRACE_US 1000000u /* deadline = connect timeout + this */

enum hstate {
    HS_IDLE,
    HS_CONNECTING,
    HS_SENDING,
    HS_READING,
};

struct hslot {
    struct health *h;
    unsigned idx;
    bool active; /* the slot holds a backend that is checked */
    bool paused; /* ... but not now (maintenance) */
    enum hstate state;
    struct loop_timer timer;  /* next start (IDLE) or deadline (busy) */
    struct upstream_conn *uc; /* the check's connection while busy */
    uint64_t started_us;
    size_t req_len, sent;
    size_t len;             /* bytes of the response kept in buf */
    unsigned passes, fails; /* consecutive results */
    bool down;              /* what we last told the balancer */
    uint64_t done;
    char req[HEALTH_REQ];
    char buf[HEALTH_BUF];
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

static void start_check(struct hslot *s);

static void schedule_next(struct hslot *s)
{
    struct health *h = s->h;
    uint64_t now = loop_now(h->loop);
    uint64_t next = s->started_us + h->interval_us;
    /* Never closer than a quarter interval: no burst after a slow check. */
    if (next < now + h->interval_us / 4)
        next = now + h->interval_us / 4;
    s->state = HS_IDLE;
    loop_timer_set(h->loop, &s->timer, next);
}

/* Ends the current check with a verdict and schedules the next one. */
static void finish(struct hslot *s, bool ok, const char *why)
{
    struct health *h = s->h;
    uint64_t now = loop_now(h->loop);
    const char *id = upstream_id(h->up, s->idx);

    if (s->uc) {
        /* A failed check may have left bytes unread: reset, no TIME_WAIT. */
        upstream_close(s->uc, !ok);
        s->uc = NULL;
    }
    loop_timer_cancel(h->loop, &s->timer);
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
    if (s->uc) {
        upstream_close(s->uc, true);
        s->uc = NULL;
    }
    if (now - h->last_local_warn > 10000000u || h->last_local_warn == 0) {
        log_warn("health check of backend %s not started",
                 upstream_id(h->up, s->idx));
        h->last_local_warn = now;
    }
    loop_timer_cancel(h->loop, &s->timer);
    schedule_next(s);
}

/* Judges "HTTP/1.x DDD ..." in s->buf: 1 pass, 0 fail, -1 incomplete. */
static int judge_status(const struct hslot *s, const char **why)
{
    const char *b = s->buf;
    const char *nl = memchr(b, '\n', s->len);
    if (!nl) {
        if (s->len >= sizeof(s->buf)) {
            *why = "status line too long";
            return 0;
        }
        return -1;
    }
    size_t n = (size_t)(nl - b);
    if (n < 12 || memcmp(b, "HTTP/1.", 7) != 0 ||
        (b[7] != '0' && b[7] != '1') || b[8] != ' ' || b[9] < '1' ||
        b[9] > '5' || b[10] < '0' || b[10] > '9' || b[11] < '0' ||
        b[11] > '9' || (n > 12 && b[12] != ' ' && b[12] != '\r')) {
        *why = "invalid status line";
        return 0;
    }
    if (b[9] == '2' || b[9] == '3')
        return 1;
    *why = b[9] == '5'   ? "5xx status"
           : b[9] == '4' ? "4xx status"
                         : "1xx status";
    return 0;
}

/* Waits for ev and for what the transport (TLS) waits for on its own. */
static void want(struct hslot *s, unsigned ev)
{
    struct upstream_conn *uc = s->uc;
    if (uc->tr->wants)
        ev |= uc->tr->wants(uc->tr_state);
    if (loop_io_mod(s->h->loop, &uc->io, ev) < 0)
        abandon(s);
}

static void on_readable(struct hslot *s)
{
    const char *why = "closed before a status line";
    for (;;) {
        size_t room = sizeof(s->buf) - s->len;
        if (room == 0)
            break;
        struct upstream_conn *uc = s->uc;
        ssize_t r =
            uc->tr->read(uc->io.fd, uc->tr_state, s->buf + s->len, room);
        if (r > 0) {
            s->len += (size_t)r;
            int v = judge_status(s, &why);
            if (v >= 0) {
                finish(s, v == 1, why);
                return;
            }
            continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            want(s, LOOP_READ);
            return;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            why = "read error";
        finish(s, false, why);
        return;
    }
    judge_status(s, &why);
    finish(s, false, why);
}

static void on_writable(struct hslot *s)
{
    while (s->sent < s->req_len) {
        struct upstream_conn *uc = s->uc;
        ssize_t w = uc->tr->write(uc->io.fd, uc->tr_state, s->req + s->sent,
                                  s->req_len - s->sent);
        if (w > 0) {
            s->sent += (size_t)w;
            continue;
        }
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            want(s, LOOP_WRITE);
            return;
        }
        if (w < 0 && errno == EINTR)
            continue;
        finish(s, false, "write error");
        return;
    }
    s->state = HS_READING;
    want(s, LOOP_READ);
}

static void on_io(struct loop *loop, struct loop_io *io, unsigned events)
{
    (void)loop;
    struct hslot *s = io->ctx;
    (void)events; /* each state tries its step on any event */
    switch (s->state) {
    case HS_IDLE:
        return;           /* cannot happen: an idle slot has no socket */
    case HS_CONNECTING: { /* writable, or a TLS handshake's event */
        int rc = upstream_finish_connect(s->uc);
        if (rc == 0)
            return;
        if (rc < 0) {
            finish(s, false,
                   s->uc->tls_failed       ? "TLS handshake failed"
                   : errno == ECONNREFUSED ? "connection refused"
                                           : "connect failed");
            return;
        }
        s->state = HS_SENDING;
    }
        /* fall through */
    case HS_SENDING:
        on_writable(s);
        return;
    case HS_READING: /* readable, or writable for a TLS read */
        on_readable(s);
        return;
    }
}

static void on_timer(struct loop *loop, struct loop_timer *t)
{
    (void)loop;
    struct hslot *s = t->ctx;
    if (s->state == HS_IDLE)
        start_check(s);
    else
        finish(s, false,
               s->state == HS_CONNECTING ? "connect timeout"
                                         : "response timeout");
}

static void start_check(struct hslot *s)
{
    struct health *h = s->h;
    struct upstream_conn *uc = NULL;

    s->started_us = loop_now(h->loop);
    s->sent = 0;
    s->len = 0;
    switch (upstream_connect(h->up, s->idx, true, h->pre, h->prelen, &uc)) {
    case UPSTREAM_REFUSED:
        finish(s, false, "connection refused");
        return;
    case UPSTREAM_ERROR:
        abandon(s);
        return;
    case UPSTREAM_CONNECTED:
    case UPSTREAM_IN_PROGRESS:
        break;
    }
    s->uc = uc;
    uc->io.fn = on_io;
    uc->io.ctx = s;
    /* Connected or not, writability says when to send (or that the connect
     * finished, with its result in SO_ERROR). */
    s->state = uc->connected ? HS_SENDING : HS_CONNECTING;
    if (loop_io_add(h->loop, &uc->io, uc->io.fd, LOOP_WRITE) < 0) {
        abandon(s);
        return;
    }
    loop_timer_set(h->loop, &s->timer, s->started_us + h->timeout_us);
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
    if (cfg->send_proxy != CONFIG_SEND_PROXY_OFF) {
        int pl =
            proxyproto_build(cfg->send_proxy == CONFIG_SEND_PROXY_V1 ? 1 : 2,
                             h->pre, sizeof(h->pre), NULL, NULL);
        h->prelen = pl > 0 ? (size_t)pl : 0;
    }
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
    if (s->uc) {
        upstream_close(s->uc, true);
        s->uc = NULL;
    }
    s->state = HS_IDLE;
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
