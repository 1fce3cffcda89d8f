/*
 * half: reading, flushing, backpressure and deadlines of one side of a
 * session (see half.h).
 */
#include "half.h"

#include <errno.h>

static bool would_block(void)
{
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

int half_read(struct half *h, struct buf_pool *pool)
{
    if (h->eof || h->error)
        return -1;
    if (!buf_get(pool, &h->in)) {
        errno = ENOMEM;
        return 0; /* no buffer now: try again on the next event */
    }
    uint32_t want = buf_room(pool, &h->in);
    if (want == 0)
        return 0;
    ssize_t n = h->tr->read(h->io->fd, h->tr_state, buf_end(&h->in), want);
    if (n > 0) {
        buf_commit(pool, &h->in, (uint32_t)n);
        h->bytes_in += (uint64_t)n;
        h->filled = (uint32_t)n == want;
        return (int)n;
    }
    buf_put(pool, &h->in, false);
    if (n < 0 && would_block())
        return 0;
    if (n == 0)
        h->eof = true;
    else
        h->error = true;
    return -1;
}

int half_flush(struct half *h, struct buf_pool *pool)
{
    uint32_t n = h->out.data ? buf_pending(&h->out) : 0;
    if (n == 0) {
        if (!h->retain)
            buf_put(pool, &h->out, false);
        return 0;
    }
    ssize_t w = h->tr->write(h->io->fd, h->tr_state, buf_start(&h->out), n);
    if (w > 0) {
        h->bytes_out += (uint64_t)w;
        if (h->retain) {
            h->out.off += (uint32_t)w;
            return (int)w;
        }
        buf_consume(&h->out, (uint32_t)w);
        buf_put(pool, &h->out, false);
        return (int)w;
    }
    if (w < 0 && would_block())
        return 0;
    return -1;
}

bool half_may_read(const struct half *h, const struct buf_pool *pool)
{
    return !h->eof && !h->error && (!h->in.data || buf_room(pool, &h->in) > 0);
}

void half_deadline(struct loop *loop, struct half *h, enum half_wait w,
                   uint64_t when_us)
{
    h->wait = w;
    h->deadline_us = when_us;
    if (!loop_timer_armed(&h->timer) || h->timer.when_us > when_us)
        loop_timer_set(loop, &h->timer, when_us);
}

void half_deadline_clear(struct half *h)
{
    h->wait = HW_NONE;
    h->deadline_us = 0;
}

enum half_wait half_deadline_due(struct loop *loop, struct half *h)
{
    if (h->deadline_us == 0)
        return HW_NONE;
    if (h->deadline_us > loop_now(loop)) {
        loop_timer_set(loop, &h->timer, h->deadline_us);
        return HW_NONE;
    }
    enum half_wait w = h->wait;
    half_deadline_clear(h);
    return w;
}

void half_deadline_stop(struct loop *loop, struct half *h)
{
    half_deadline_clear(h);
    loop_timer_cancel(loop, &h->timer);
}

void half_drop_buffers(struct half *h, struct buf_pool *pool)
{
    buf_put(pool, &h->in, true);
    buf_put(pool, &h->out, true);
}
