/*
 * half: one side of a proxied session - the client connection or the
 * upstream connection.  Both are the same type: a socket watch, a
 * transport, a deadline, an `in` and an `out` buffer borrowed only while
 * they hold bytes, byte counts, end-of-stream and error, and the state of
 * the message this side is reading.  Reading, flushing and the
 * backpressure rule are written once, here, for both sides.
 *
 * I/O steps return >0 progress, 0 would block (or nothing to do), -1 when
 * the side can move no more bytes that way (h->eof or h->error says why).
 */
#ifndef LB_HALF_H
#define LB_HALF_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "loop.h"
#include "transport.h"

/* The message a half is reading: a request on the client side, a response
 * on the upstream side. */
enum half_msg {
    HALF_IDLE, /* between messages */
    HALF_HEAD, /* reading a head */
    HALF_BODY, /* head done, body (possibly empty) under way */
    HALF_DONE, /* the message was read whole */
};

/* What a half's deadline is waiting for. */
enum half_wait {
    HW_NONE,
    HW_KEEPALIVE, /* client: the next request's first byte */
    HW_HEADER,    /* client: the rest of a request head */
    HW_BODY,      /* client: the next request body bytes */
    HW_WRITE,     /* client: a slow reader taking our bytes */
    HW_CONNECT,   /* upstream: connect() */
    HW_RESPONSE,  /* upstream: the next response bytes */
    HW_QUEUE,     /* upstream: a free backend (circuit breaker queue) */
    HW_TUNNEL,    /* client: a byte either way through the tunnel */
};

struct half {
    struct loop_io *io; /* the socket watch (the upstream one belongs to
                           the pooled connection); NULL when detached */
    const struct transport *tr;
    void *tr_state;
    /* Deadlines are lazy: moving one later only stores it; the timer
     * fires at the older time and is re-armed then (half_deadline_due). */
    struct loop_timer timer;
    uint64_t deadline_us; /* 0: none */
    enum half_wait wait;
    struct buf in, out;
    uint64_t bytes_in, bytes_out;
    enum half_msg msg;
    bool eof;    /* the peer ended its sending direction */
    bool error;  /* the socket failed */
    bool filled; /* the last read filled `in`: more may be waiting */
    bool retain; /* keep written bytes of `out` (a request that may have
                    to be sent again on another connection) */
};

/* Reads what the transport has into h->in (borrowed from the pool when
 * needed), as room allows: >0 bytes read, 0 would block or no room, -1 at
 * end of stream (h->eof) or error (h->error, errno kept). */
int half_read(struct half *h, struct buf_pool *pool);
/* Writes h->out to the transport; returns its storage when emptied (unless
 * h->retain): >0 bytes written, 0 would block or nothing pending, -1 error
 * (errno kept; h->error is left for the read side, which may still find
 * an early answer in the socket). */
int half_flush(struct half *h, struct buf_pool *pool);
/* The backpressure rule: a half may read while it has not seen the end of
 * its stream and its `in` has room; bytes only leave `in` when the peer's
 * `out` has room, so a slow peer stops this side's reads. */
bool half_may_read(const struct half *h, const struct buf_pool *pool);

/* The socket events the transport waits for on its own (transport.h
 * `wants`), to be added to the half's interest: 0 for plain TCP. */
static inline unsigned half_tr_wants(const struct half *h)
{
    return h->tr->wants ? h->tr->wants(h->tr_state) : 0;
}
/* Whether the transport holds decoded bytes no socket event will
 * announce: the owner reads again while the half may read. */
static inline bool half_tr_buffered(const struct half *h)
{
    return h->tr->buffered && h->tr->buffered(h->tr_state);
}

/* Sets the deadline (absolute, microseconds) and what it waits for. */
void half_deadline(struct loop *loop, struct half *h, enum half_wait w,
                   uint64_t when_us);
/* Clears the deadline (the timer may still fire once, and finds none). */
void half_deadline_clear(struct half *h);
/* From the timer callback: what the deadline that passed was waiting for
 * (and clears it), or HW_NONE when there is none or it moved later (the
 * timer is re-armed for it). */
enum half_wait half_deadline_due(struct loop *loop, struct half *h);
/* Stops the timer for good (before the half is freed). */
void half_deadline_stop(struct loop *loop, struct half *h);

/* Returns both buffers to the pool, dropping what they hold. */
void half_drop_buffers(struct half *h, struct buf_pool *pool);

#endif
