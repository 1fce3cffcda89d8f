/*
 * shm: the region the workers of `--workers N` share (docs/workers.md).
 *
 * One MAP_SHARED anonymous mapping, made by the master before it forks, so
 * it sits at the same address in every worker and a pointer into it means
 * the same thing everywhere.  It holds what must be one state for all
 * workers: the balancers (estimates, in-flight, passive health) and the
 * request stats.  Memory is handed out by a first-fit allocator under the
 * region's own lock; objects that several processes change carry a lock of
 * their own (shm_lock_new), a robust process-shared mutex, so a worker
 * killed while holding one does not wedge the others.
 *
 * Without a region (one process: the default), shm_calloc and shm_free are
 * calloc and free, and shm_lock_new returns NULL, which the lock functions
 * take as "no locking": the single-process path has no atomics.
 */
#ifndef LB_SHM_H
#define LB_SHM_H
#include <stdbool.h>
#include <stddef.h>

/* Workers a region can serve (the per-worker rows are sized by it). */
#define SHM_MAX_WORKERS 64

/* Maps a region of `bytes` (reserved, touched only as used).  0, or -1
 * with errno.  Once per process, before any fork. */
int shm_init(size_t bytes);
/* Whether a region is mapped (every worker of --workers N > 1 and its
 * master). */
bool shm_active(void);
/* Zeroed memory for n objects of size bytes: in the region when one is
 * mapped, else from calloc.  NULL (errno ENOMEM) when it is full. */
void *shm_calloc(size_t n, size_t size);
/* Frees memory from shm_calloc (NULL does nothing). */
void shm_free(void *p);
/* Bytes of the region in use and its size (0, 0 without one). */
void shm_usage(size_t *used, size_t *size);

/* This process's worker index: 0 in a single process and in the master. */
extern unsigned shm_worker;

struct shm_lock;
/* A new lock in the region, or NULL without one (or when it is full). */
struct shm_lock *shm_lock_new(void);
void shm_lock_free(struct shm_lock *l);
/* Take and release l; a NULL l does nothing. */
void shm_lock(struct shm_lock *l);
void shm_unlock(struct shm_lock *l);
#endif
