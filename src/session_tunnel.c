/*
 * session_tunnel: a session after a 101 Switching Protocols - two halves
 * relaying bytes blindly, each direction bounded by the buffers the halves
 * already have (upstream.in -> client.out, client.in -> upstream.out), so
 * a peer that stops reading stops the other side's reads (half_may_read)
 * and lbproxy never holds more than those four buffers.  A side that ends
 * its sending direction has its end forwarded with the transport's
 * shutdown once its last byte is out; the tunnel closes when both ended,
 * on an error, or after tunnel_idle_ms without a byte either way.  It
 * answers to session.c through enum step and never calls it.
 */
#include "session_impl.h"

#include "log.h"

static void arm_idle(struct session *s)
{
    half_deadline(s->ctx->loop, &s->client, HW_TUNNEL,
                  now_us(s) + (uint64_t)cfg_of(s)->tunnel_idle_ms * 1000);
}

void tunnel_begin(struct session *s)
{
    struct request *r = s->req;
    r->t_tunnel = now_us(s);
    s->ctx->tunnels_open++;
    s->ctx->tunnels_total++;
    s->keep_alive = false;
    s->want_close = true;
    /* the request head was sent whole (or what is left of it goes first):
     * nothing is kept for a resend any more */
    s->upstream.retain = false;
    upstream_nodelay(s->uc); /* small frames must not wait for Nagle */
    half_deadline_clear(&s->upstream);
    arm_idle(s);
    log_debug("%s: tunnel to %s", s->addr,
              upstream_id(r->pool->up, (size_t)r->backend));
}

void tunnel_end(struct session *s)
{
    s->ctx->tunnels_open--;
}

void tunnel_woken(struct half *h, const struct buf_pool *pool)
{
    if (!half_may_read(h, pool))
        h->error = true;
}

/* Moves what `from` holds to `to` as room allows: the storage itself when
 * `to` has none, else a copy.  Returns the bytes moved. */
static uint32_t pass(struct buf_pool *pool, struct buf *from, struct buf *to)
{
    uint32_t n = from->data ? buf_pending(from) : 0;
    if (n == 0)
        return 0;
    if (!to->data) {
        *to = *from;
        from->data = NULL;
        from->off = from->len = 0;
        return n;
    }
    buf_compact_if_low(pool, to);
    uint32_t room = pool->size - to->len;
    if (n > room)
        n = room;
    if (n == 0)
        return 0;
    buf_append(pool, to, buf_start(from), n);
    buf_consume(from, n);
    buf_put(pool, from, false);
    return n;
}

static bool drained(const struct buf *b)
{
    return !b->data || buf_pending(b) == 0;
}

/* Forwards the end of `from`'s stream to `to` once every byte of it left:
 * returns true when that direction is over. */
static bool forward_end(struct half *from, struct half *to, bool *shut)
{
    if (*shut)
        return true;
    if (!from->eof || !drained(&from->in) || !drained(&to->out))
        return false;
    to->tr->shutdown(to->io->fd, to->tr_state);
    *shut = true;
    return true;
}

/* A read that filled `in` may have left bytes in the socket: once they
 * moved on, read again now rather than after another epoll round (a bulk
 * transfer then costs one recv and one send per buffer).  Returns the
 * bytes read; an end or an error is left in the half's flags. */
static int read_on(struct half *h, struct buf_pool *pool)
{
    if (!h->filled || !half_may_read(h, pool))
        return 0;
    h->filled = false;
    int n = half_read(h, pool);
    return n > 0 ? n : 0;
}

enum step tunnel_relay(struct session *s)
{
    struct request *r = s->req;
    struct buf_pool *pool = pool_of(s);
    struct half *c = &s->client, *u = &s->upstream;
    int rd = read_on(c, pool) + read_on(u, pool);
    if (c->error)
        return step_close(r, RECORD_CLIENT_CLOSED);
    if (u->error)
        return step_close(r, RECORD_UPSTREAM_RESET);
    uint32_t up = pass(pool, &c->in, &u->out);
    r->req_bytes += up;
    int wu = half_flush(u, pool);
    if (wu < 0)
        return step_close(r, RECORD_UPSTREAM_RESET);
    uint32_t down = pass(pool, &u->in, &c->out);
    int wc = half_flush(c, pool);
    if (wc < 0)
        return step_close(r, RECORD_CLIENT_CLOSED);
    bool client_done = forward_end(c, u, &r->shut_client);
    bool upstream_done = forward_end(u, c, &r->shut_upstream);
    if (client_done && upstream_done)
        return STEP_CLOSE; /* both directions ended: a clean end */
    if (rd == 0 && up == 0 && down == 0 && wu == 0 && wc == 0)
        return STEP_WAIT;
    arm_idle(s);
    return STEP_MOVED;
}

enum step tunnel_io(struct session *s, unsigned events)
{
    struct half *u = &s->upstream;
    if (!(events & (LOOP_READ | (half_tr_wants(u) & LOOP_WRITE))))
        return STEP_MOVED; /* writable: the relay flushes */
    tunnel_woken(u, pool_of(s));
    if (u->error)
        return step_close(s->req, RECORD_UPSTREAM_RESET);
    int n = half_read(u, pool_of(s));
    if (n < 0 && u->error)
        return step_close(s->req, RECORD_UPSTREAM_RESET);
    return STEP_MOVED; /* bytes, or an end the relay forwards */
}
