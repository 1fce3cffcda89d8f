/*
 * be_sched: the emulator's workers and their FIFO queue, an M/G/K server
 * in the caller's time.  K workers (0 = unlimited) serve jobs; a job that
 * finds them all busy waits in one FIFO queue.  A queued job's service
 * starts at the moment a worker was freed (the finished job's deadline),
 * not when the caller got round to telling: so K workers with service time
 * S serve exactly K/S jobs per second however late the caller's timers
 * fire.
 *
 * Pure bookkeeping: no loop, no sockets, no clock of its own (every time is
 * passed in, in microseconds), so it is unit-tested in virtual time.  The
 * caller embeds a struct be_sched_job in each of its requests and arms its
 * own timer for start_us + service_us when a job gets a worker.
 */
#ifndef LB_BE_SCHED_H
#define LB_BE_SCHED_H

#include <stddef.h>
#include <stdint.h>

struct be_sched_job {
    struct be_sched_job *next, *prev; /* the queue, while queued */
    uint64_t queued_at;               /* when it joined the queue */
    uint64_t start_us;   /* when its service started (valid with a worker) */
    uint64_t queue_us;   /* time it waited for a worker */
    uint64_t service_us; /* drawn when it got a worker */
    int queued;
    int has_worker;
};

/* Draws a service time (microseconds) for a job that just got a worker. */
typedef uint64_t be_sched_sample_fn(void *ctx);
/* A queued job got a worker: its service runs from j->start_us for
 * j->service_us.  Called from be_sched_done() and be_sched_pump(). */
typedef void be_sched_start_fn(struct be_sched_job *j, void *ctx);

struct be_sched {
    int workers; /* 0 = unlimited */
    int busy;    /* jobs holding a worker */
    size_t queued;
    uint64_t max_queued; /* the longest the queue has been */
    /* Worker-microseconds spent idle (workers > 0 only), integrated over
     * the times passed in up to idle_at: what a balancer left unused. */
    uint64_t idle_us;
    uint64_t idle_at;
    struct be_sched_job *head, *tail;
    be_sched_sample_fn *sample;
    be_sched_start_fn *start;
    void *ctx;
};

/* Sets up an empty scheduler with `workers` workers (0 = unlimited); sample
 * and start are called with ctx. */
void be_sched_init(struct be_sched *s, int workers, be_sched_sample_fn *sample,
                   be_sched_start_fn *start, void *ctx);

/* A complete request arrives at now_us.  Returns 1 when it got a worker at
 * once (start_us = now_us, service_us drawn, queue_us 0; the caller starts
 * its service, and may finish a zero service time at once), or 0 when it
 * was queued (start is called when a worker takes it). */
int be_sched_submit(struct be_sched *s, struct be_sched_job *j,
                    uint64_t now_us);

/* j's service is over; done_us is its deadline (start_us + service_us),
 * however late the caller runs.  Frees its worker and gives free workers
 * to queued jobs, whose service starts at done_us. */
void be_sched_done(struct be_sched *s, struct be_sched_job *j,
                   uint64_t done_us);

/* Takes j out at now_us (a closing connection): it leaves the queue, or
 * gives back its worker without starting anything.  Returns 1 when a worker was
 * freed (then the caller calls be_sched_pump unless it is tearing down),
 * else 0.  A job that is neither queued nor served is left alone. */
int be_sched_forget(struct be_sched *s, struct be_sched_job *j,
                    uint64_t now_us);

/* The idle worker time (worker-microseconds) up to now_us; 0 with
 * unlimited workers. */
uint64_t be_sched_idle_us(struct be_sched *s, uint64_t now_us);

/* Gives free workers to queued jobs in FIFO order; each one's service
 * starts at freed_us, or at its arrival if that is later. */
void be_sched_pump(struct be_sched *s, uint64_t freed_us);

#endif
