/*
 * tls_idle: OpenSSL's record buffers of a TLS connection (about 33 KiB:
 * one record in, one out) are kept while it moves bytes and given back
 * once it has moved none for a while (see tls_impl.h).
 *
 * Giving them back after every record (SSL_MODE_RELEASE_BUFFERS) costs a
 * malloc and a free per direction per request; keeping them for good
 * costs the memory of every idle connection.  Here each connection sits
 * on one list in the order of its last read, write or handshake step, the
 * quietest at the head, and one timer armed for the head frees the
 * buffers of those quiet for `delay`: O(1) per step (a connection moves
 * at most once per half delay), one timer per process.  A connection with
 * bytes in its buffers keeps them (SSL_free_buffers refuses), and one
 * that moves again gets new ones from OpenSSL on its next read or write.
 *
 * The delay is short: the buffers of connections that went quiet are
 * freed in the middle of the heap, where the allocator keeps them
 * resident, so the longer a burst of connections holds them, the more
 * memory stays with the process after it (tlsidle, 5,000 connections:
 * a delay of 1 s left 0.6 KiB more per idle connection, 20 ms under 0.1).
 */
#include "tls_impl.h"

#include "loop.h"

static struct {
    struct loop *loop; /* NULL: not started (buffers go per record) */
    struct loop_timer timer;
    uint64_t delay_us;
    struct tls_idle *head, *tail; /* by last step, oldest first */
    uint64_t released;
} q;

static void unlink_node(struct tls_idle *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        q.head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        q.tail = n->prev;
    n->prev = n->next = NULL;
    n->linked = false;
}

static void on_sweep(struct loop *loop, struct loop_timer *t)
{
    uint64_t now = loop_now(loop);
    while (q.head && q.head->last_us + q.delay_us <= now) {
        struct tls_idle *n = q.head;
        unlink_node(n); /* its next step links it again */
        /* refused while a record or decoded bytes wait in them */
        if (!SSL_has_pending(n->ssl) && SSL_free_buffers(n->ssl))
            q.released++;
    }
    if (q.head)
        loop_timer_set(loop, t, q.head->last_us + q.delay_us);
}

void tls_idle_start(struct loop *loop, unsigned delay_ms)
{
    tls_idle_stop();
    q.loop = loop;
    q.delay_us = (uint64_t)delay_ms * 1000;
    q.timer.fn = on_sweep;
    q.timer.ctx = NULL;
}

void tls_idle_stop(void)
{
    if (!q.loop)
        return;
    loop_timer_cancel(q.loop, &q.timer);
    while (q.head) /* later forgets find them unlinked */
        unlink_node(q.head);
    q.loop = NULL;
}

uint64_t tls_idle_released(void)
{
    return q.released;
}

void tls_idle_adopt(struct tls_idle *n, SSL *ssl)
{
    n->ssl = ssl;
    if (!q.loop)
        return;
    SSL_clear_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
    tls_idle_touch(n);
}

void tls_idle_touch(struct tls_idle *n)
{
    if (!q.loop || !n->ssl)
        return;
    uint64_t now = loop_now(q.loop);
    /* moved less than half a delay ago: left in place, so a busy
     * connection moves once per half delay, not per record, and is freed
     * after between half and the whole delay of quiet */
    if (n->linked && now - n->last_us < q.delay_us / 2)
        return;
    n->last_us = now;
    if (n == q.tail)
        return; /* already the newest (the timer is armed for the head) */
    if (n->linked)
        unlink_node(n);
    n->prev = q.tail;
    if (q.tail)
        q.tail->next = n;
    else
        q.head = n;
    q.tail = n;
    n->linked = true;
    uint64_t due = n->last_us + q.delay_us;
    if (!loop_timer_armed(&q.timer) || q.timer.when_us > due)
        loop_timer_set(q.loop, &q.timer, due);
}

void tls_idle_forget(struct tls_idle *n)
{
    if (n->linked)
        unlink_node(n);
    n->ssl = NULL;
}
