/*
 * buf: the pool of borrowed buffers (see buf.h).
 */
#include "buf.h"

#include <errno.h>
#include <stdlib.h>

int buf_pool_init(struct buf_pool *p, uint32_t size, unsigned max_free)
{
    p->size = size;
    p->max_free = max_free;
    p->nfree = 0;
    p->free = calloc(max_free ? max_free : 1, sizeof(*p->free));
    if (!p->free) {
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

void buf_pool_cleanup(struct buf_pool *p)
{
    if (!p->free)
        return;
    for (unsigned i = 0; i < p->nfree; i++)
        free(p->free[i]);
    free(p->free);
    p->free = NULL;
    p->nfree = 0;
}

bool buf_get(struct buf_pool *p, struct buf *b)
{
    if (b->data)
        return true;
    b->data = p->nfree > 0 ? p->free[--p->nfree] : malloc(p->size);
    b->off = b->len = 0;
    return b->data != NULL;
}

void buf_put(struct buf_pool *p, struct buf *b, bool force)
{
    if (!b->data || (!force && b->off != b->len))
        return;
    if (p->nfree < p->max_free)
        p->free[p->nfree++] = b->data;
    else
        free(b->data);
    b->data = NULL;
    b->off = b->len = 0;
}
