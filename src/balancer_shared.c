/*
 * balancer_shared: what a balancer in the shared region (--workers N,
 * docs/workers.md) carries beside its state: the lock every public
 * function takes, and per worker a row of in-flight counts and the
 * recovery probes it holds, so that a worker that dies leaves no request
 * counted in flight and no probe taken for ever.
 */
#include "balancer.h"
#include "balancer_impl.h"

#include "shm.h"

int balancer_share(struct balancer *b)
{
    if (!shm_active())
        return 0;
    b->lock = shm_lock_new();
    b->rows = shm_calloc((size_t)SHM_MAX_WORKERS * BALANCER_MAX_BACKENDS,
                         sizeof(*b->rows));
    b->probe_owner = shm_calloc(BALANCER_MAX_BACKENDS, 1);
    return b->lock && b->rows && b->probe_owner ? 0 : -1;
}

void balancer_unshare(struct balancer *b)
{
    shm_lock_free(b->lock);
    shm_free(b->rows);
    shm_free(b->probe_owner);
    b->lock = NULL;
    b->rows = NULL;
    b->probe_owner = NULL;
}

void balancer_forget_worker(struct balancer *b, unsigned w)
{
    if (!b->rows || w >= SHM_MAX_WORKERS)
        return;
    shm_lock(b->lock);
    unsigned *row = &b->rows[(size_t)w * BALANCER_MAX_BACKENDS];
    for (size_t i = 0; i < b->n; i++) {
        struct balancer_backend *be = &b->be[i];
        be->in_flight = be->in_flight > row[i] ? be->in_flight - row[i] : 0;
        row[i] = 0;
        if (b->probe_owner[i] == w + 1) {
            b->probe_owner[i] = 0;
            be->probe_in_flight = false;
        }
    }
    shm_unlock(b->lock);
}

unsigned balancer_worker_in_flight(const struct balancer *b, unsigned w,
                                   size_t idx)
{
    if (!b->rows || w >= SHM_MAX_WORKERS || idx >= BALANCER_MAX_BACKENDS)
        return 0;
    return b->rows[(size_t)w * BALANCER_MAX_BACKENDS + idx];
}
