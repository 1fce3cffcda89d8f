/*
 * prequal_probe: the probes of mode = prequal over the event loop
 * (include/prequal_probe.h).
 *
 * One timer: every PREQUAL_PROBE_TICK_US while probes are being sent (the
 * policy owes r_probe of them per request), else every
 * PREQUAL_PROBE_IDLE_TICK_US (or the idle probe interval if shorter), it
 * asks the balancer which backends to probe, leaving out those with a
 * probe under way.  One slot per backend: a checkconn exchange on a
 * connection kept for the next probe, the request built at each send.
 */
#include "prequal_probe.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balancer.h"
#include "checkconn.h"
#include "config.h"
#include "log.h"
#include "loop.h"
#include "proxyproto.h"
#include "upstream.h"

#define PROBE_REQ 320 /* path <= 127 + host <= 127 + fixed text */

struct pslot {
    struct prequal_probe *p;
    unsigned idx;
    struct checkconn cc;
    uint64_t no_endpoint_until; /* answers without the fields: not before */
    char req[PROBE_REQ];
};

struct prequal_probe {
    struct loop *loop;
    struct upstream *up;
    struct balancer *bal;
    uint64_t timeout_us, idle_tick_us;
    struct loop_timer tick;
    uint8_t pre[PROXYPROTO_V1_MAX + 1];
    size_t prelen;
    char path[128];
    struct pslot slots[CONFIG_MAX_BACKENDS];
};

/* A decimal field of the head: 1 with *v set, else 0. */
static int num_field(const char *head, size_t len, const char *name,
                     uint64_t *v)
{
    size_t vl;
    const char *s = checkconn_field(head, len, name, &vl);
    uint64_t x = 0;
    if (!s || vl == 0 || vl > 18)
        return 0;
    for (size_t i = 0; i < vl; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        x = x * 10 + (uint64_t)(s[i] - '0');
    }
    *v = x;
    return 1;
}

int prequal_probe_parse(const char *head, size_t len, unsigned *rif,
                        uint64_t *latency_us)
{
    int status;
    const char *why;
    uint64_t r, l;
    if (checkconn_status_line(head, len, len, &status, &why) != 1 ||
        status / 100 != 2 || !num_field(head, len, PREQUAL_HDR_RIF, &r) ||
        !num_field(head, len, PREQUAL_HDR_LATENCY, &l) || r > UINT32_MAX)
        return 0;
    *rif = (unsigned)r;
    *latency_us = l;
    return 1;
}

static void on_probe_done(struct checkconn *cc, enum checkconn_result r,
                          const char *why)
{
    struct pslot *s = cc->ctx;
    struct prequal_probe *p = s->p;
    uint64_t now = loop_now(p->loop), lat;
    unsigned rif;

    switch (r) {
    case CHECKCONN_LOCAL:
    case CHECKCONN_FAILED:
        log_debug("backend %s: probe failed: %s", upstream_id(p->up, s->idx),
                  why);
        balancer_probe_result(p->bal, s->idx, BALANCER_PROBE_FAILED, 0, 0, now);
        return;
    case CHECKCONN_DONE:
        break;
    }
    if (prequal_probe_parse(cc->buf, cc->len, &rif, &lat)) {
        balancer_probe_result(p->bal, s->idx, BALANCER_PROBE_OK, rif, lat, now);
        return;
    }
    log_info("backend %s: no prequal probe answer at %s (status %d): "
             "lbproxy's own view of it stands in, next try in %u s",
             upstream_id(p->up, s->idx), p->path, cc->status,
             PREQUAL_PROBE_RETRY_US / 1000000u);
    s->no_endpoint_until = now + PREQUAL_PROBE_RETRY_US;
    balancer_probe_result(p->bal, s->idx, BALANCER_PROBE_UNSUPPORTED, 0, 0,
                          now);
}

/* Sends one probe to slot s's backend (or, for a backend known to have
 * no endpoint, reports that at once). */
static void send_probe(struct prequal_probe *p, struct pslot *s, uint64_t now)
{
    if (now < s->no_endpoint_until) {
        balancer_probe_result(p->bal, s->idx, BALANCER_PROBE_UNSUPPORTED, 0, 0,
                              now);
        return;
    }
    const char *addr = upstream_addr(p->up, s->idx);
    int len = snprintf(s->req, sizeof(s->req),
                       "GET %s HTTP/1.1\r\nHost: %.127s\r\n"
                       "User-Agent: lbproxy-prequal\r\n\r\n",
                       p->path,
                       /* a socket path is no Host name */
                       strncmp(addr, "unix:", 5) == 0 ? "localhost" : addr);
    if (len < 0 || (size_t)len >= sizeof(s->req)) {
        balancer_probe_result(p->bal, s->idx, BALANCER_PROBE_FAILED, 0, 0, now);
        return;
    }
    s->cc.loop = p->loop;
    s->cc.up = p->up;
    s->cc.idx = s->idx;
    s->cc.head = true;
    s->cc.keep = true;
    s->cc.pre = p->pre;
    s->cc.prelen = p->prelen;
    s->cc.done = on_probe_done;
    s->cc.ctx = s;
    checkconn_start(&s->cc, s->req, (size_t)len, now + p->timeout_us);
}

static void on_tick(struct loop *loop, struct loop_timer *t)
{
    struct prequal_probe *p = t->ctx;
    unsigned idx[CONFIG_MAX_BACKENDS];
    uint64_t now = loop_now(loop), busy = 0;
    size_t n = upstream_count(p->up);

    for (size_t i = 0; i < n && i < CONFIG_MAX_BACKENDS; i++) {
        struct pslot *s = &p->slots[i];
        if (checkconn_busy(&s->cc))
            busy |= (uint64_t)1 << i;
        else if (s->cc.uc && !upstream_live(p->up, i))
            checkconn_stop(&s->cc); /* a removed backend's connection */
        if (!upstream_live(p->up, i))
            s->no_endpoint_until = 0;
    }
    size_t k = balancer_probe_due(p->bal, now, busy, idx, CONFIG_MAX_BACKENDS);
    for (size_t j = 0; j < k; j++)
        if (idx[j] < CONFIG_MAX_BACKENDS)
            send_probe(p, &p->slots[idx[j]], now);
    loop_timer_set(loop, t,
                   now + (k > 0 ? PREQUAL_PROBE_TICK_US : p->idle_tick_us));
}

struct prequal_probe *prequal_probe_create(struct loop *loop,
                                           const struct config *cfg,
                                           struct upstream *up,
                                           struct balancer *bal, char *err,
                                           size_t errlen)
{
    struct prequal_probe *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "prequal probes: out of memory");
        return NULL;
    }
    p->loop = loop;
    p->up = up;
    p->bal = bal;
    snprintf(p->path, sizeof(p->path), "%s", cfg->prequal_probe_path);
    p->prelen = checkconn_preamble(cfg->send_proxy, p->pre, sizeof(p->pre));
    p->timeout_us = (uint64_t)cfg->prequal_probe_timeout_ms * 1000u;
    p->idle_tick_us = PREQUAL_PROBE_IDLE_TICK_US;
    uint64_t idle = (uint64_t)cfg->balancer.prequal_idle_probe_ms * 1000u;
    if (idle > 0 && idle < p->idle_tick_us)
        p->idle_tick_us = idle;
    for (unsigned i = 0; i < CONFIG_MAX_BACKENDS; i++) {
        p->slots[i].p = p;
        p->slots[i].idx = i;
    }
    p->tick.fn = on_tick;
    p->tick.ctx = p;
    loop_timer_set(loop, &p->tick, loop_now(loop));
    return p;
}

void prequal_probe_destroy(struct prequal_probe *p)
{
    if (!p)
        return;
    loop_timer_cancel(p->loop, &p->tick);
    for (unsigned i = 0; i < CONFIG_MAX_BACKENDS; i++)
        checkconn_stop(&p->slots[i].cc);
    /* Events of this round may still name a slot's closed io; those are
     * skipped by the loop, and the memory lives until the round ends. */
    loop_defer(p->loop, free, p);
}
