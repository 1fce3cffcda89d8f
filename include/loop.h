/*
 * loop: a small epoll event loop with fd handlers, a timer heap, deferred
 * releases and a cached monotonic clock.  It knows nothing of protocols.
 *
 * Ownership: a struct loop_io and a struct loop_timer are embedded in the
 * caller's objects; the loop only points at them.  Before freeing an object
 * that embeds one, call loop_io_del()/loop_timer_cancel(), and free it via
 * loop_defer() when inside a callback so that stale events of the current
 * dispatch round never touch freed memory.
 */
#ifndef LB_LOOP_H
#define LB_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;
struct loop_io;
struct loop_timer;

enum {
    LOOP_READ = 1,
    LOOP_WRITE = 2,
};

/* Called with the events that fired (LOOP_READ/LOOP_WRITE; errors and hangups
 * are reported as both, so the handler's read or write sees the error). */
typedef void loop_io_fn(struct loop *loop, struct loop_io *io, unsigned events);
typedef void loop_timer_fn(struct loop *loop, struct loop_timer *timer);
typedef void loop_defer_fn(void *ptr);
typedef void loop_hook_fn(struct loop *loop, void *ctx);

struct loop_io {
    int fd;
    unsigned events;     /* current interest set */
    unsigned registered; /* 1 while in the epoll set */
    loop_io_fn *fn;
    void *ctx;
    uint64_t pending_round; /* the round whose batch holds an event for this
                             * fd not yet dispatched (loop_io_maybe_ready) */
};

struct loop_timer {
    uint64_t when_us; /* absolute monotonic deadline */
    uint64_t seq;     /* arming order: equal deadlines fire first-armed first */
    uint32_t heap_idx; /* 0 = not armed, else index + 1 */
    loop_timer_fn *fn;
    void *ctx;
};

/* Creates a loop; returns NULL with errno set on failure. */
struct loop *loop_create(void);
/* Frees the loop and runs pending deferred releases; NULL is a no-op. */
void loop_destroy(struct loop *loop);

/* Current monotonic time in microseconds, cached per dispatch round. */
uint64_t loop_now(const struct loop *loop);
/* True when io may be ready without the loop having dispatched it: an
 * event for it is still to come in this round, or this round's wait may
 * not have reported every ready fd (its batch was full).  False: as of
 * this round's wait the kernel had nothing for io that is not handled, so
 * for an fd whose read interest was on, nothing had arrived unread
 * (level-triggered) - without a syscall; bytes that came after the wait
 * are not seen. */
bool loop_io_maybe_ready(const struct loop *loop, const struct loop_io *io);
/* Refreshes the cached clock from CLOCK_MONOTONIC and returns it. */
uint64_t loop_update_time(struct loop *loop);
/* Reads CLOCK_MONOTONIC directly (microseconds). */
uint64_t loop_clock_us(void);

/* Starts watching io->fd for `events` (may be 0).  Returns 0, or -1 with
 * errno set.  io->fn and io->ctx must be set by the caller. */
int loop_io_add(struct loop *loop, struct loop_io *io, int fd, unsigned events);
/* Changes the interest set; epoll_ctl only runs when it changes.
 * Returns 0 or -1 with errno set. */
int loop_io_mod(struct loop *loop, struct loop_io *io, unsigned events);
/* Stops watching (does not close the fd).  Safe on an unregistered io. */
void loop_io_del(struct loop *loop, struct loop_io *io);
/* Stops watching and closes the fd in one syscall: closing the last
 * descriptor of a socket removes it from the epoll set, so no EPOLL_CTL_DEL
 * is needed.  Only for fds that are not dup()ed.  Returns close()'s
 * result. */
int loop_io_close(struct loop *loop, struct loop_io *io);

/* Arms (or re-arms) a timer for the absolute monotonic time when_us.  Timers
 * with equal deadlines fire in the order they were (last) armed. */
void loop_timer_set(struct loop *loop, struct loop_timer *t, uint64_t when_us);
/* Arms a timer `delay_us` after the loop's current time. */
void loop_timer_after(struct loop *loop, struct loop_timer *t,
                      uint64_t delay_us);
/* Disarms a timer; safe on one that is not armed. */
void loop_timer_cancel(struct loop *loop, struct loop_timer *t);
static inline int loop_timer_armed(const struct loop_timer *t)
{
    return t->heap_idx != 0;
}

/* Runs fn(ptr) after the current dispatch round (or at loop_destroy).
 * Returns 0, or -1 if out of memory (then fn(ptr) was called at once). */
int loop_defer(struct loop *loop, loop_defer_fn *fn, void *ptr);

/* Sets a hook called before each epoll_wait (e.g. to flush buffers). */
void loop_set_before_sleep(struct loop *loop, loop_hook_fn *fn, void *ctx);

/* Runs until loop_stop(); returns 0, or -1 if epoll_wait failed. */
int loop_run(struct loop *loop);
void loop_stop(struct loop *loop);

/* Blocks the n signals and returns a non-blocking, close-on-exec signalfd
 * that reads them (the server's and the master's), or -1 with errno. */
int loop_signalfd(const int *signals, size_t n);

#endif
