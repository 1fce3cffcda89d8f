/*
 * session_attempt: the bookkeeping of a request's attempts at backends -
 * the pick (a backend not tried yet and not at max_conns), what the
 * balancer hears of an attempt, the retry budget every extra attempt
 * takes a place in, the per-try deadline, and the hedge: a second attempt
 * at another backend, started when the first has waited past its per-try
 * deadline, that runs beside it until one of them has a response head.
 *
 * Called by session_upstream.c only; it calls the balancer, upstream,
 * half and buf modules, never session.c or session_upstream.c.
 */
#include "session_impl.h"

#include <errno.h>
#include <string.h>

#include "retry.h"

static loop_io_fn *hedge_io_fn;
static loop_timer_fn *hedge_timer_fn;

/* ---- the balancer's view ---- */

void attempt_observe(struct session *s, enum balancer_outcome outcome)
{
    struct request *r = s->req;
    if (!r->in_flight)
        return;
    r->in_flight = false;
    balancer_observe(r->pool->bal, (size_t)r->backend,
                     now_us(s) - r->t_dispatch, outcome,
                     r->inflight_at_dispatch, now_us(s));
}

void attempt_cancel(struct session *s)
{
    struct request *r = s->req;
    if (!r->in_flight)
        return;
    r->in_flight = false;
    balancer_cancel(r->pool->bal, (size_t)r->backend);
}

/* ---- the pick ---- */

/* The balancer's pick for this request: by its key when it has one. */
static int pick(struct session *s, uint64_t exclude, unsigned *inflight)
{
    struct request *r = s->req;
    struct pool *p = r->pool;
    for (;;) {          /* at most once per backend: each miss is excluded */
        pool_follow(p); /* --workers N: worker 0's additions and removals */
        int idx = r->keyed
                      ? balancer_pick_key(p->bal, exclude, r->hash_key,
                                          now_us(s), inflight)
                      : balancer_pick(p->bal, exclude, now_us(s), inflight);
        if (idx < 0 || !p->follow || upstream_live(p->up, (size_t)idx))
            return idx;
        /* a slot worker 0 has just filled and not yet published */
        balancer_cancel(p->bal, (size_t)idx);
        exclude |= (uint64_t)1 << idx;
    }
}

/* The backends at max_conns, as a bitmap (0 without a limit). */
static uint64_t full_backends(struct session *s)
{
    unsigned cap = pcfg(s->req)->max_conns;
    struct balancer *bal = s->req->pool->bal;
    uint64_t full = 0;
    if (cap == 0)
        return 0;
    size_t n = balancer_count(bal);
    for (size_t i = 0; i < n && i < 64; i++)
        if (balancer_backend(bal, i)->in_flight >= cap)
            full |= (uint64_t)1 << i;
    return full;
}

/* The backends this request must not go to now: those tried, the current
 * attempt's and the hedge's. */
static uint64_t excluded(const struct request *r)
{
    uint64_t x = r->tried;
    if (r->backend >= 0)
        x |= (uint64_t)1 << r->backend;
    if (r->hedging)
        x |= (uint64_t)1 << r->hedge.backend;
    return x;
}

int attempt_pick(struct session *s)
{
    struct request *r = s->req;
    unsigned inflight = 0;
    uint64_t full = full_backends(s) & ~r->tried;
    int idx = pick(s, r->tried | full, &inflight);
    if (idx < 0)
        return full ? -1 : 0;
    r->backend = idx;
    r->in_flight = true;
    r->inflight_at_dispatch = inflight;
    r->t_dispatch = now_us(s);
    return 1;
}

bool attempt_another_backend(struct session *s)
{
    struct request *r = s->req;
    unsigned inflight;
    int idx = pick(s, excluded(r) | full_backends(s), &inflight);
    if (idx < 0)
        return false;
    balancer_cancel(r->pool->bal, (size_t)idx);
    return true;
}

/* ---- the retry budget ---- */

bool attempt_retry_possible(const struct session *s)
{
    const struct request *r = s->req;
    const struct session_ctx *ctx = s->ctx;
    const struct config *cfg = pcfg(s->req);
    if (r->ub_discarded || r->retries >= cfg->max_retries)
        return false;
    return r->retrying || retry_budget_allows(
                              ctx->active_requests, ctx->active_retries,
                              cfg->retry_budget_percent, cfg->retry_budget_min);
}

bool attempt_may_retry(struct session *s)
{
    struct request *r = s->req;
    struct session_ctx *ctx = s->ctx;
    const struct config *cfg = pcfg(s->req);
    if (r->ub_discarded || r->retries >= cfg->max_retries)
        return false;
    if (!r->retrying) {
        if (!retry_budget_allows(ctx->active_requests, ctx->active_retries,
                                 cfg->retry_budget_percent,
                                 cfg->retry_budget_min)) {
            ctx->budget_refused++;
            return false;
        }
        r->retrying = true;
        ctx->active_retries++;
    }
    ctx->retries++;
    return true;
}

void attempt_leave_budget(struct session *s)
{
    struct request *r = s->req;
    if (r->retrying) {
        r->retrying = false;
        s->ctx->active_retries--;
    }
    if (r->active) {
        r->active = false;
        s->ctx->active_requests--;
    }
}

/* Tells the stats of an attempt at `backend` that failed while the
 * request goes on elsewhere (the client will not see it, but the
 * backend's error counters must). */
static void note_failed(struct session *s, int backend, enum record_error err,
                        int status)
{
    struct request *r = s->req;
    struct session_ctx *ctx = s->ctx;
    if (ctx->on_attempt_failed)
        ctx->on_attempt_failed(ctx->record_arg, r->pool, backend,
                               upstream_id(r->pool->up, (size_t)backend), err,
                               status);
    r->tried |= (uint64_t)1 << backend;
}

void attempt_note_failed(struct session *s, enum record_error err)
{
    note_failed(s, s->req->backend, err, s->req->status);
}

void attempt_note_retried(struct session *s, enum record_error err)
{
    note_failed(s, s->req->backend, err, 0);
    s->req->retries++;
}

/* ---- the per-try deadline ---- */

unsigned attempt_per_try_ms(struct session *s)
{
    const struct config *cfg = pcfg(s->req);
    struct request *r = s->req;
    if (cfg->per_try_min_ms == 0 || !r->hreq.idempotent || r->ub_discarded ||
        !(cfg->retry_on & RETRY_TIMEOUT))
        return 0;
    uint64_t tail = balancer_latency_tail_us(r->pool->bal, (size_t)r->backend);
    return retry_per_try_ms(tail, cfg->per_try_factor, cfg->per_try_min_ms,
                            cfg->per_try_max_ms, cfg->upstream_timeout_ms);
}

/* ---- the hedge ---- */

void hedge_init(loop_io_fn *io_fn, loop_timer_fn *timer_fn)
{
    hedge_io_fn = io_fn;
    hedge_timer_fn = timer_fn;
}

/* Watches the hedge's socket for what it waits on now. */
static int hedge_interest(struct session *s)
{
    struct hedge *h = &s->req->hedge;
    unsigned ev = LOOP_WRITE;
    if (!h->connecting)
        ev = LOOP_READ | half_tr_wants(&h->half) |
             (h->half.out.data && buf_pending(&h->half.out) ? LOOP_WRITE : 0);
    struct loop_io *io = &h->uc->io;
    return io->registered ? loop_io_mod(s->ctx->loop, io, ev)
                          : loop_io_add(s->ctx->loop, io, io->fd, ev);
}

static void hedge_arm(struct session *s, enum half_wait w, unsigned ms)
{
    struct half *h = &s->req->hedge.half;
    half_deadline(s->ctx->loop, h, w, now_us(s) + (uint64_t)ms * 1000);
}

/* Ends the hedge: its connection closed with an RST (never pooled: its
 * response, if any, is unread), its deadline stopped, its buffers given
 * back. */
static void hedge_end(struct session *s, bool keep_conn)
{
    struct request *r = s->req;
    struct hedge *h = &r->hedge;
    half_deadline_stop(s->ctx->loop, &h->half);
    if (h->uc && !keep_conn)
        upstream_close(h->uc, true);
    h->uc = NULL;
    half_drop_buffers(&h->half, pool_of(s));
    r->hedging = false;
}

void hedge_cancel(struct session *s)
{
    struct request *r = s->req;
    if (!r || !r->hedging)
        return;
    if (r->hedge.in_flight)
        balancer_cancel(r->pool->bal, (size_t)r->hedge.backend);
    hedge_end(s, false);
}

/* The hedge failed: the balancer and the stats hear of it, the first
 * attempt goes on alone. */
static void hedge_failed(struct session *s, enum balancer_outcome outcome,
                         enum record_error err)
{
    struct request *r = s->req;
    struct hedge *h = &r->hedge;
    if (h->in_flight)
        balancer_observe(r->pool->bal, (size_t)h->backend,
                         now_us(s) - h->t_dispatch, outcome,
                         h->inflight_at_dispatch, now_us(s));
    h->in_flight = false;
    note_failed(s, h->backend, err, 0);
    hedge_end(s, false);
}

bool hedge_start(struct session *s)
{
    struct request *r = s->req;
    const struct config *cfg = pcfg(s->req);
    struct buf *src = &s->upstream.out;
    struct hedge *h = &r->hedge;
    if (r->hedging || !src->data || src->len == 0)
        return false;
    unsigned inflight = 0;
    int idx = pick(s, excluded(r) | full_backends(s), &inflight);
    if (idx < 0)
        return false;
    struct upstream_conn *uc = NULL;
    bool connecting = false;
    if (cfg->persistent)
        uc = upstream_get_idle(r->pool->up, (size_t)idx);
    bool pooled = uc != NULL;
    if (!uc) {
        switch (upstream_connect(r->pool->up, (size_t)idx, true, s->pp_out,
                                 s->pp_len, &uc)) {
        case UPSTREAM_CONNECTED:
            break;
        case UPSTREAM_IN_PROGRESS:
            connecting = true;
            break;
        case UPSTREAM_REFUSED:
        case UPSTREAM_ERROR:
            balancer_observe(r->pool->bal, (size_t)idx, 0, BALANCER_CONNECT_ERR,
                             inflight, now_us(s));
            note_failed(s, idx, RECORD_CONNECT, 0);
            return false;
        }
    }
    memset(h, 0, sizeof(*h));
    half_use_conn(&h->half, uc); /* TLS when its backend speaks it */
    h->half.timer.fn = hedge_timer_fn;
    h->half.timer.ctx = s;
    h->half.retain = true;
    h->half.msg = HALF_HEAD;
    h->uc = uc;
    h->backend = idx;
    h->in_flight = true;
    h->inflight_at_dispatch = inflight;
    h->t_dispatch = h->t_connect = now_us(s);
    h->connecting = connecting;
    h->reused = pooled;
    uc->io.fn = hedge_io_fn;
    uc->io.ctx = s;
    r->hedging = true;
    if (!buf_get(pool_of(s), &h->half.out)) {
        hedge_cancel(s);
        return false;
    }
    buf_append(pool_of(s), &h->half.out, src->data, src->len);
    if (hedge_interest(s) < 0) {
        hedge_cancel(s);
        return false;
    }
    if (connecting)
        hedge_arm(s, HW_CONNECT, cfg->upstream_connect_timeout_ms);
    else
        hedge_arm(s, HW_RESPONSE, cfg->upstream_timeout_ms);
    s->ctx->hedges++;
    return true;
}

/* Whether the hedge's `in` holds a whole response head. */
static bool head_complete(const struct buf *in)
{
    return in->data && buf_pending(in) >= 4 &&
           memmem(buf_start(in), buf_pending(in), "\r\n\r\n", 4) != NULL;
}

enum hedge_event hedge_io(struct session *s, unsigned events)
{
    struct request *r = s->req;
    struct hedge *h = &r->hedge;
    struct half *hh = &h->half;
    const struct config *cfg = pcfg(s->req);
    (void)events; /* every event is a reason to try each step */
    if (!r->hedging)
        return HEDGE_WAIT;
    if (h->connecting) { /* writable, or a TLS handshake's event */
        int rc = upstream_finish_connect(h->uc);
        if (rc == 0)
            return HEDGE_WAIT;
        if (rc < 0) {
            hedge_failed(s, BALANCER_CONNECT_ERR,
                         h->uc->tls_failed ? RECORD_UPSTREAM_TLS
                                           : RECORD_CONNECT);
            return HEDGE_FAILED;
        }
        h->connecting = false;
        h->connect_us = (int64_t)(now_us(s) - h->t_connect);
        hedge_arm(s, HW_RESPONSE, cfg->upstream_timeout_ms);
    }
    if (hh->out.data && buf_pending(&hh->out) > 0 &&
        half_flush(hh, pool_of(s)) < 0 && hh->bytes_in == 0) {
        hedge_failed(s, BALANCER_RESET, RECORD_UPSTREAM_RESET);
        return HEDGE_FAILED;
    }
    int n = half_read(hh, pool_of(s));
    if (n > 0) {
        if (h->t_first_byte == 0)
            h->t_first_byte = now_us(s);
        if (head_complete(&hh->in))
            return HEDGE_WON;
        if (buf_room(pool_of(s), &hh->in) == 0) {
            hedge_failed(s, BALANCER_RESET, RECORD_BAD_RESPONSE);
            return HEDGE_FAILED;
        }
    } else if (n < 0) {
        hedge_failed(s, BALANCER_RESET, RECORD_UPSTREAM_RESET);
        return HEDGE_FAILED;
    }
    if (hedge_interest(s) < 0) {
        hedge_failed(s, BALANCER_RESET, RECORD_UPSTREAM_RESET);
        return HEDGE_FAILED;
    }
    return HEDGE_WAIT;
}

bool hedge_timeout(struct session *s)
{
    struct request *r = s->req;
    if (!r || !r->hedging)
        return false;
    enum half_wait w = half_deadline_due(s->ctx->loop, &r->hedge.half);
    if (w == HW_CONNECT)
        hedge_failed(s, BALANCER_CONNECT_ERR, RECORD_CONNECT);
    else if (w == HW_RESPONSE)
        hedge_failed(s, BALANCER_TIMEOUT, RECORD_TIMEOUT);
    return w != HW_NONE;
}

bool hedge_hand_over(struct session *s)
{
    struct request *r = s->req;
    struct hedge *h = &r->hedge;
    struct half *u = &s->upstream, *hh = &h->half;
    buf_put(pool_of(s), &u->in, true);
    u->in = hh->in; /* the buffer changes owner */
    hh->in = (struct buf){0};
    u->bytes_in = hh->bytes_in;
    u->bytes_out = hh->bytes_out;
    u->out.off = hh->out.off; /* the same request bytes, as far as sent */
    u->eof = hh->eof;
    u->error = hh->error;
    u->filled = hh->filled;
    s->uc = h->uc;
    half_use_conn(u, h->uc);
    r->tried |= (uint64_t)1 << r->backend;
    r->backend = h->backend;
    r->in_flight = h->in_flight;
    r->inflight_at_dispatch = h->inflight_at_dispatch;
    r->t_dispatch = h->t_dispatch;
    r->t_first_byte = h->t_first_byte;
    r->reused = h->reused;
    r->connect_us = h->reused ? -1 : h->connect_us;
    bool connecting = h->connecting;
    uint64_t due = hh->deadline_us;
    enum half_wait w = hh->wait;
    hedge_end(s, true);
    if (due)
        half_deadline(s->ctx->loop, u, w, due);
    return connecting;
}
