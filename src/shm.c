/*
 * shm: the shared region, its allocator and its locks (include/shm.h).
 *
 * The region is a header, then blocks laid end to end, each a struct blk
 * followed by its payload.  Allocation walks the blocks for the first free
 * one that fits and splits it; freeing marks the block free and merges it
 * with free neighbours.  The walk is linear: the region holds a few objects
 * per pool (a balancer, its policy state, its stats), allocated at start
 * and on reload, never per request.
 */
#include "shm.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define ALIGN 64 /* a cache line: objects of two workers never share one */

struct blk {
    size_t size; /* bytes of the block, header included; a multiple of ALIGN */
    size_t free; /* 1 when free */
    char pad[ALIGN - 2 * sizeof(size_t)];
};

struct region {
    pthread_mutex_t mu; /* the allocator's */
    size_t size;        /* bytes of the blocks */
    size_t used;        /* bytes in allocated blocks, headers included */
    char pad[ALIGN];
};

struct shm_lock {
    pthread_mutex_t mu;
};

static struct region *reg;
unsigned shm_worker;

static struct blk *first(void)
{
    return (struct blk *)((char *)reg +
                          ((sizeof(*reg) + ALIGN - 1) / ALIGN * ALIGN));
}

static struct blk *next(struct blk *b)
{
    return (struct blk *)((char *)b + b->size);
}

static struct blk *end(void)
{
    return (struct blk *)((char *)first() + reg->size);
}

static int init_mutex(pthread_mutex_t *mu)
{
    pthread_mutexattr_t a;
    if (pthread_mutexattr_init(&a) != 0)
        return -1;
    int rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED) ||
             pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST) ||
             pthread_mutex_init(mu, &a);
    pthread_mutexattr_destroy(&a);
    return rc ? -1 : 0;
}

/* Takes mu; a holder that died leaves it to us, consistent from now on
 * (what it protects is counters and estimates: a half-made update is one
 * wrong sample, never a broken structure the allocator or a policy would
 * trip over, since none of them links objects). */
static void take(pthread_mutex_t *mu)
{
    if (pthread_mutex_lock(mu) == EOWNERDEAD)
        pthread_mutex_consistent(mu);
}

int shm_init(size_t bytes)
{
    if (reg) {
        errno = EBUSY;
        return -1;
    }
    size_t head = (sizeof(struct region) + ALIGN - 1) / ALIGN * ALIGN;
    bytes = (bytes + ALIGN - 1) / ALIGN * ALIGN;
    if (bytes < head + 2 * sizeof(struct blk)) {
        errno = EINVAL;
        return -1;
    }
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    reg = p;
    if (init_mutex(&reg->mu) < 0) {
        munmap(p, bytes);
        reg = NULL;
        errno = ENOMEM;
        return -1;
    }
    reg->size = bytes - head;
    struct blk *b = first();
    b->size = reg->size;
    b->free = 1;
    return 0;
}

bool shm_active(void)
{
    return reg != NULL;
}

static bool in_region(const void *p)
{
    return reg && (const char *)p >= (const char *)first() &&
           (const char *)p < (const char *)end();
}

void *shm_calloc(size_t n, size_t size)
{
    if (!reg)
        return calloc(n, size);
    if (size && n > SIZE_MAX / size - 2 * ALIGN) {
        errno = ENOMEM;
        return NULL;
    }
    size_t want = (n * size + sizeof(struct blk) + ALIGN - 1) / ALIGN * ALIGN;
    void *out = NULL;
    take(&reg->mu);
    for (struct blk *b = first(); b < end(); b = next(b)) {
        if (!b->free || b->size < want)
            continue;
        if (b->size - want >= 2 * sizeof(struct blk)) { /* split */
            struct blk *rest = (struct blk *)((char *)b + want);
            rest->size = b->size - want;
            rest->free = 1;
            b->size = want;
        }
        b->free = 0;
        reg->used += b->size;
        out = b + 1;
        break;
    }
    pthread_mutex_unlock(&reg->mu);
    if (!out) {
        errno = ENOMEM;
        return NULL;
    }
    memset(out, 0, ((struct blk *)out - 1)->size - sizeof(struct blk));
    return out;
}

void shm_free(void *p)
{
    if (!p)
        return;
    if (!in_region(p)) {
        free(p);
        return;
    }
    take(&reg->mu);
    struct blk *b = (struct blk *)p - 1;
    b->free = 1;
    reg->used -= b->size;
    /* merge every run of free blocks (the walk finds b's predecessor) */
    for (struct blk *a = first(); a < end(); a = next(a))
        while (a->free && next(a) < end() && next(a)->free)
            a->size += next(a)->size;
    pthread_mutex_unlock(&reg->mu);
}

void shm_usage(size_t *used, size_t *size)
{
    *used = reg ? reg->used : 0;
    *size = reg ? reg->size : 0;
}

struct shm_lock *shm_lock_new(void)
{
    if (!reg)
        return NULL;
    struct shm_lock *l = shm_calloc(1, sizeof(*l));
    if (l && init_mutex(&l->mu) < 0) {
        shm_free(l);
        return NULL;
    }
    return l;
}

void shm_lock_free(struct shm_lock *l)
{
    if (!l)
        return;
    pthread_mutex_destroy(&l->mu);
    shm_free(l);
}

void shm_lock(struct shm_lock *l)
{
    if (l)
        take(&l->mu);
}

void shm_unlock(struct shm_lock *l)
{
    if (l)
        pthread_mutex_unlock(&l->mu);
}
