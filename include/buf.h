/*
 * buf: a byte buffer borrowed from a pool only while it holds bytes.
 *
 * Invariant: off <= len <= cap; the bytes not yet consumed are
 * data[off, len), free room is data[len, cap).  A buffer with no data
 * pointer is empty and costs nothing; buf_get() borrows storage from the
 * pool, buf_put() gives it back once every byte was consumed.  The pool
 * keeps a bounded number of free buffers (beyond that they are freed), so
 * a burst of busy connections does not leave its memory behind.
 */
#ifndef LB_BUF_H
#define LB_BUF_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct buf {
    char *data;
    uint32_t off, len;
};

struct buf_pool {
    uint32_t size; /* bytes per buffer */
    unsigned max_free;
    unsigned nfree;
    char **free; /* max_free slots */
};

/* Sets a pool up for buffers of `size` bytes, keeping at most max_free
 * free ones.  Returns 0, or -1 (errno ENOMEM). */
int buf_pool_init(struct buf_pool *p, uint32_t size, unsigned max_free);
/* Frees the pool's free buffers. */
void buf_pool_cleanup(struct buf_pool *p);

/* Gives b storage if it has none.  Returns true when b has storage. */
bool buf_get(struct buf_pool *p, struct buf *b);
/* Returns b's storage to the pool when every byte was consumed (or when
 * `force`, dropping what is left); b keeps it otherwise. */
void buf_put(struct buf_pool *p, struct buf *b, bool force);

#ifdef NDEBUG
#define buf_check(b) ((void)0)
#else
#define buf_check(b) assert((b)->off <= (b)->len)
#endif

/* Bytes held, not yet consumed. */
static inline uint32_t buf_pending(const struct buf *b)
{
    return b->len - b->off;
}
static inline char *buf_start(const struct buf *b)
{
    return b->data + b->off;
}
static inline char *buf_end(const struct buf *b)
{
    return b->data + b->len;
}
/* Free room after the held bytes (0 without storage). */
static inline uint32_t buf_room(const struct buf_pool *p, const struct buf *b)
{
    return b->data ? p->size - b->len : 0;
}
/* Marks n bytes consumed; an emptied buffer starts over at its front. */
static inline void buf_consume(struct buf *b, uint32_t n)
{
    b->off += n;
    buf_check(b);
    if (b->off == b->len)
        b->off = b->len = 0;
}
/* Marks n bytes written at buf_end() as held. */
static inline void buf_commit(const struct buf_pool *p, struct buf *b,
                              uint32_t n)
{
    b->len += n;
    (void)p;
    assert(b->len <= p->size);
}
/* Appends n bytes; the caller made sure of the room. */
static inline void buf_append(const struct buf_pool *p, struct buf *b,
                              const char *s, uint32_t n)
{
    memcpy(b->data + b->len, s, n);
    buf_commit(p, b, n);
}
/* Moves the held bytes to the front, making all free room contiguous. */
static inline void buf_compact(struct buf *b)
{
    if (b->off == 0)
        return;
    memmove(b->data, b->data + b->off, b->len - b->off);
    b->len -= b->off;
    b->off = 0;
}
/* Compacts when the room left is under a quarter of the buffer (a memmove
 * of a few bytes beats splitting a read or a frame). */
static inline void buf_compact_if_low(const struct buf_pool *p, struct buf *b)
{
    if (b->off > 0 && p->size - b->len < p->size / 4)
        buf_compact(b);
}

#endif
