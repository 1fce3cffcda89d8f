/*
 * session_deadline: the upstream side's deadlines - what a passed per-try
 * deadline does (a hedge at another backend, a retry elsewhere, or a
 * later look), a hedge's events and deadline, and upstream_ms passing
 * (504).  Called by session.c; it calls the upstream side
 * (session_upstream.c) for the attempt's connection and its failure, and
 * the attempt module, never session.c.
 */
#include "session_impl.h"

/* A per-try deadline passed with hedging on: a hedge starts at another
 * backend when one is left and the budget allows; the first attempt goes
 * on either way, until upstream_ms (`left` us from now) when a hedge
 * runs, else looked at again one per-try deadline later. */
static enum step per_try_hedge(struct session *s, uint64_t left)
{
    struct request *r = s->req;
    /* an upgrade is never hedged: two backends would each switch */
    if (!r->hedging && s->client.msg == HALF_DONE && !r->hreq.upgrade &&
        attempt_retry_possible(s) && hedge_start(s)) {
        if (attempt_may_retry(s)) {
            r->retries++;
            r->hedged = true;
        } else {
            hedge_cancel(s);
        }
    }
    uint64_t next = left;
    if (!r->hedging) {
        unsigned t = attempt_per_try_ms(s);
        if (t && (uint64_t)t * 1000 < left)
            next = (uint64_t)t * 1000;
    }
    half_deadline(s->ctx->loop, &s->upstream, HW_RESPONSE, now_us(s) + next);
    return STEP_WAIT;
}

/* A hedge failed while the first attempt waits for its first byte: look
 * at it again one per-try deadline from now (within upstream_ms). */
static void rearm_per_try(struct session *s)
{
    struct request *r = s->req;
    unsigned t = attempt_per_try_ms(s);
    if (t == 0 || s->upstream.bytes_in > 0 || s->state != SS_RELAY)
        return;
    uint64_t end =
        r->t_dispatch + (uint64_t)pcfg(s->req)->upstream_timeout_ms * 1000;
    uint64_t when = now_us(s) + (uint64_t)t * 1000;
    half_deadline(s->ctx->loop, &s->upstream, HW_RESPONSE,
                  when < end ? when : end);
}

enum step uside_hedge_io(struct session *s, unsigned events)
{
    struct request *r = s->req;
    if (!r)
        return STEP_WAIT;
    enum hedge_event ev = hedge_io(s, events);
    if (ev == HEDGE_FAILED)
        rearm_per_try(s); /* another hedge may go elsewhere */
    if (ev != HEDGE_WON)
        return STEP_WAIT;
    /* the hedge's head came first: the first attempt waited too long */
    attempt_observe(s, BALANCER_TIMEOUT);
    uside_drop(s, true);
    return uside_take_hedge(s);
}

enum step uside_hedge_timeout(struct session *s)
{
    if (hedge_timeout(s))
        rearm_per_try(s);
    return STEP_WAIT;
}

enum step uside_timeout(struct session *s, bool connecting)
{
    struct request *r = s->req;
    if (connecting)
        return uside_failed(s, BALANCER_CONNECT_ERR);
    if (s->upstream.bytes_in == 0 && r->hreq.idempotent) {
        uint64_t full = (uint64_t)pcfg(s->req)->upstream_timeout_ms * 1000;
        uint64_t waited = now_us(s) - r->t_dispatch;
        if (waited < full && pcfg(s->req)->hedge)
            return per_try_hedge(s, full - waited);
        if (waited < full) {
            /* a per-try deadline: another backend when one is left and
             * the budget allows, else this attempt goes on and is looked
             * at again later (cancelling it would turn a slow answer into
             * an error) */
            if (!attempt_retry_possible(s) || !attempt_another_backend(s)) {
                unsigned t = attempt_per_try_ms(s);
                uint64_t next = t ? (uint64_t)t * 1000 : full - waited;
                if (next > full - waited)
                    next = full - waited;
                half_deadline(s->ctx->loop, &s->upstream, HW_RESPONSE,
                              now_us(s) + next);
                return STEP_WAIT;
            }
            s->ctx->per_try_retries++;
        }
        return uside_failed(s, BALANCER_TIMEOUT); /* retried elsewhere */
    }
    attempt_observe(s, BALANCER_TIMEOUT);
    if (!r->resp_head_sent)
        return step_reply(r, 504, RECORD_TIMEOUT);
    return step_close(r, RECORD_TIMEOUT);
}
