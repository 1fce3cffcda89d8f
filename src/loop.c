/*
 * loop: epoll wrapper, binary min-heap of timers, deferred releases.
 */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#define LOOP_MAX_EVENTS 256

struct loop_deferred {
    loop_defer_fn *fn;
    void *ptr;
};

struct loop {
    int epfd;
    int stopped;
    int no_pwait2; /* kernel without epoll_pwait2 */
    uint64_t now_us;
    uint64_t timer_seq;       /* arming counter, see loop_timer.seq */
    struct loop_timer **heap; /* heap[0] is the earliest deadline */
    uint32_t heap_len, heap_cap;
    /* releases to run after this round; `spare` is the list being run
     * (a release may defer more), kept for the next round's swap */
    struct loop_deferred *deferred, *spare;
    size_t ndeferred, deferred_cap, spare_cap;
    loop_hook_fn *before_sleep;
    void *before_sleep_ctx;
    uint64_t round;  /* waits returned */
    bool round_full; /* the last wait filled events[]: some fd unreported */
    struct epoll_event events[LOOP_MAX_EVENTS];
};

uint64_t loop_clock_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

struct loop *loop_create(void)
{
    struct loop *loop = calloc(1, sizeof(*loop));
    if (!loop)
        return NULL;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0)
        goto fail;
    loop->now_us = loop_clock_us();
    return loop;
fail:
    free(loop);
    return NULL;
}

static void run_deferred(struct loop *loop)
{
    /* A deferred release may defer more; run until the list is empty.
     * The two lists swap: neither is allocated again each round. */
    while (loop->ndeferred > 0) {
        size_t n = loop->ndeferred;
        struct loop_deferred *d = loop->deferred;
        size_t cap = loop->deferred_cap;
        loop->deferred = loop->spare;
        loop->deferred_cap = loop->spare_cap;
        loop->ndeferred = 0;
        loop->spare = d;
        loop->spare_cap = cap;
        for (size_t i = 0; i < n; i++)
            d[i].fn(d[i].ptr);
    }
}

void loop_destroy(struct loop *loop)
{
    if (!loop)
        return;
    run_deferred(loop);
    if (loop->epfd >= 0)
        close(loop->epfd);
    free(loop->deferred);
    free(loop->spare);
    free(loop->heap);
    free(loop);
}

uint64_t loop_now(const struct loop *loop)
{
    return loop->now_us;
}

bool loop_io_maybe_ready(const struct loop *loop, const struct loop_io *io)
{
    return loop->round_full || io->pending_round == loop->round;
}

uint64_t loop_update_time(struct loop *loop)
{
    loop->now_us = loop_clock_us();
    return loop->now_us;
}

static uint32_t to_epoll(unsigned events)
{
    uint32_t e = 0;
    if (events & LOOP_READ)
        e |= EPOLLIN | EPOLLRDHUP;
    if (events & LOOP_WRITE)
        e |= EPOLLOUT;
    return e;
}

int loop_io_add(struct loop *loop, struct loop_io *io, int fd, unsigned events)
{
    struct epoll_event ev = {.events = to_epoll(events), .data.ptr = io};
    io->fd = fd;
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return -1;
    io->events = events;
    io->registered = 1;
    return 0;
}

int loop_io_mod(struct loop *loop, struct loop_io *io, unsigned events)
{
    if (!io->registered) {
        errno = EBADF;
        return -1;
    }
    if (io->events == events)
        return 0;
    struct epoll_event ev = {.events = to_epoll(events), .data.ptr = io};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, io->fd, &ev) < 0)
        return -1;
    io->events = events;
    return 0;
}

void loop_io_del(struct loop *loop, struct loop_io *io)
{
    if (!io->registered)
        return;
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    io->registered = 0;
    io->events = 0;
}

int loop_io_close(struct loop *loop, struct loop_io *io)
{
    (void)loop;
    io->registered = 0; /* stale events of this round are skipped */
    io->events = 0;
    return close(io->fd);
}

/* ---- timer heap ---- */

/* The heap's order: earlier deadline first, and among equal deadlines the
 * timer armed first, so that equal deadlines fire in FIFO order (a binary
 * heap alone does not keep the insertion order of equal keys). */
static int timer_before(const struct loop_timer *a, const struct loop_timer *b)
{
    if (a->when_us != b->when_us)
        return a->when_us < b->when_us;
    return a->seq < b->seq;
}

static void heap_place(struct loop *loop, uint32_t i, struct loop_timer *t)
{
    loop->heap[i] = t;
    t->heap_idx = i + 1;
}

static void heap_up(struct loop *loop, uint32_t i)
{
    struct loop_timer *t = loop->heap[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!timer_before(t, loop->heap[parent]))
            break;
        heap_place(loop, i, loop->heap[parent]);
        i = parent;
    }
    heap_place(loop, i, t);
}

static void heap_down(struct loop *loop, uint32_t i)
{
    struct loop_timer *t = loop->heap[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= loop->heap_len)
            break;
        if (c + 1 < loop->heap_len &&
            timer_before(loop->heap[c + 1], loop->heap[c]))
            c++;
        if (!timer_before(loop->heap[c], t))
            break;
        heap_place(loop, i, loop->heap[c]);
        i = c;
    }
    heap_place(loop, i, t);
}

void loop_timer_cancel(struct loop *loop, struct loop_timer *t)
{
    if (!t->heap_idx)
        return;
    uint32_t i = t->heap_idx - 1;
    t->heap_idx = 0;
    loop->heap_len--;
    if (i == loop->heap_len)
        return;
    struct loop_timer *last = loop->heap[loop->heap_len];
    heap_place(loop, i, last);
    heap_down(loop, i);
    heap_up(loop, last->heap_idx - 1);
}

void loop_timer_set(struct loop *loop, struct loop_timer *t, uint64_t when_us)
{
    /* Re-arming counts as arming anew: it goes behind the timers already
     * armed for the same deadline. */
    uint64_t seq = ++loop->timer_seq;
    if (t->heap_idx) {
        uint32_t i = t->heap_idx - 1;
        uint64_t old = t->when_us;
        t->when_us = when_us;
        t->seq = seq;
        /* The new key is (when_us, a larger seq): it sorts before the old
         * one only if the deadline moved earlier. */
        if (when_us < old)
            heap_up(loop, i);
        else
            heap_down(loop, i);
        return;
    }
    if (loop->heap_len == loop->heap_cap) {
        uint32_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
        struct loop_timer **h = realloc(loop->heap, cap * sizeof(*h));
        if (!h)
            abort(); /* a timer we cannot arm would hang a session */
        loop->heap = h;
        loop->heap_cap = cap;
    }
    t->when_us = when_us;
    t->seq = seq;
    loop->heap[loop->heap_len] = t;
    loop->heap_len++;
    heap_up(loop, loop->heap_len - 1);
}

void loop_timer_after(struct loop *loop, struct loop_timer *t,
                      uint64_t delay_us)
{
    loop_timer_set(loop, t, loop->now_us + delay_us);
}

static void run_timers(struct loop *loop)
{
    /* Bound the work per round so a timer that re-arms at `now` cannot spin. */
    uint32_t budget = loop->heap_len + 16;
    while (loop->heap_len > 0 && budget-- > 0) {
        struct loop_timer *t = loop->heap[0];
        if (t->when_us > loop->now_us)
            break;
        loop_timer_cancel(loop, t);
        t->fn(loop, t);
    }
}

int loop_defer(struct loop *loop, loop_defer_fn *fn, void *ptr)
{
    if (loop->ndeferred == loop->deferred_cap) {
        size_t cap = loop->deferred_cap ? loop->deferred_cap * 2 : 32;
        struct loop_deferred *d = realloc(loop->deferred, cap * sizeof(*d));
        if (!d) {
            fn(ptr);
            return -1;
        }
        loop->deferred = d;
        loop->deferred_cap = cap;
    }
    loop->deferred[loop->ndeferred].fn = fn;
    loop->deferred[loop->ndeferred].ptr = ptr;
    loop->ndeferred++;
    return 0;
}

void loop_set_before_sleep(struct loop *loop, loop_hook_fn *fn, void *ctx)
{
    loop->before_sleep = fn;
    loop->before_sleep_ctx = ctx;
}

void loop_stop(struct loop *loop)
{
    loop->stopped = 1;
}

/* Waits for events for at most wait_us (-1 = forever).  epoll_pwait2
 * keeps microsecond timer precision; epoll_wait rounds up to whole
 * milliseconds, which makes every timer fire late (an emulated 10 ms
 * service takes ~10.7 ms), so it is only the fallback for kernels before
 * 5.11. */
static int loop_wait(struct loop *loop, int64_t wait_us)
{
    if (!loop->no_pwait2) {
        struct timespec ts = {(time_t)(wait_us / 1000000),
                              (long)(wait_us % 1000000) * 1000};
        int n = epoll_pwait2(loop->epfd, loop->events, LOOP_MAX_EVENTS,
                             wait_us < 0 ? NULL : &ts, NULL);
        if (n >= 0 || errno != ENOSYS)
            return n;
        loop->no_pwait2 = 1;
    }
    int ms = wait_us < 0 ? -1 : (int)((wait_us + 999) / 1000);
    return epoll_wait(loop->epfd, loop->events, LOOP_MAX_EVENTS, ms);
}

/* The time is read once per wake-up, after the wait.  Before the next
 * wait the loop's time is late by the round's work (handlers, timers),
 * which would make the next timer fire as late: it is read again only
 * when that timer is due within this much, where a few microseconds
 * count (a timer further away is at most that late, and any event before
 * it reads the clock again). */
#define LOOP_REREAD_US 2000

int loop_run(struct loop *loop)
{
    loop->stopped = 0;
    while (!loop->stopped) {
        if (loop->before_sleep)
            loop->before_sleep(loop, loop->before_sleep_ctx);
        int64_t wait = -1;
        if (loop->heap_len > 0) {
            uint64_t when = loop->heap[0]->when_us;
            if (when < loop->now_us + LOOP_REREAD_US)
                loop_update_time(loop);
            wait = when > loop->now_us ? (int64_t)(when - loop->now_us) : 0;
        }
        int n = loop_wait(loop, wait);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        loop_update_time(loop);
        loop->round++;
        loop->round_full = n == LOOP_MAX_EVENTS;
        /* first mark every fd of the batch, so that a handler can tell an
         * fd whose event is still to come in this round (in a batch of
         * one there is none: its fd's mark is cleared before its handler
         * runs) */
        if (n > 1)
            for (int i = 0; i < n; i++)
                ((struct loop_io *)loop->events[i].data.ptr)->pending_round =
                    loop->round;
        for (int i = 0; i < n; i++) {
            struct loop_io *io = loop->events[i].data.ptr;
            uint32_t e = loop->events[i].events;
            io->pending_round = 0;
            if (!io->registered)
                continue; /* removed earlier in this round */
            unsigned ev = 0;
            if (e & (EPOLLIN | EPOLLRDHUP))
                ev |= LOOP_READ;
            if (e & EPOLLOUT)
                ev |= LOOP_WRITE;
            if (e & (EPOLLERR | EPOLLHUP))
                ev |= LOOP_READ | LOOP_WRITE;
            ev &= io->events ? io->events : ev;
            if (ev)
                io->fn(loop, io, ev);
        }
        run_timers(loop);
        run_deferred(loop);
    }
    return 0;
}

int loop_signalfd(const int *signals, size_t n)
{
    sigset_t mask;
    sigemptyset(&mask);
    for (size_t i = 0; i < n; i++)
        sigaddset(&mask, signals[i]);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    return signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
}
