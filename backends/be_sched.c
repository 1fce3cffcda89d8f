/*
 * be_sched: workers and the FIFO queue (see be_sched.h).
 */
#include "be_sched.h"

void be_sched_init(struct be_sched *s, int workers, be_sched_sample_fn *sample,
                   be_sched_start_fn *start, void *ctx)
{
    *s = (struct be_sched){
        .workers = workers < 0 ? 0 : workers,
        .sample = sample,
        .start = start,
        .ctx = ctx,
    };
}

static int worker_free(const struct be_sched *s)
{
    return s->workers == 0 || s->busy < s->workers;
}

/* Adds the idle worker time up to t before the busy count changes.  Times
 * come in as deadlines and arrivals, not always in order: a span is counted
 * once, from the latest time seen. */
static void idle_advance(struct be_sched *s, uint64_t t)
{
    if (s->idle_at == 0)
        s->idle_at = t;
    if (t <= s->idle_at)
        return;
    if (s->workers > 0 && s->busy < s->workers)
        s->idle_us += (uint64_t)(s->workers - s->busy) * (t - s->idle_at);
    s->idle_at = t;
}

uint64_t be_sched_idle_us(struct be_sched *s, uint64_t now_us)
{
    idle_advance(s, now_us);
    return s->idle_us;
}

static void queue_push(struct be_sched *s, struct be_sched_job *j)
{
    j->next = NULL;
    j->prev = s->tail;
    if (s->tail)
        s->tail->next = j;
    else
        s->head = j;
    s->tail = j;
    j->queued = 1;
    s->queued++;
    if (s->queued > s->max_queued)
        s->max_queued = s->queued;
}

static void queue_remove(struct be_sched *s, struct be_sched_job *j)
{
    if (j->prev)
        j->prev->next = j->next;
    else
        s->head = j->next;
    if (j->next)
        j->next->prev = j->prev;
    else
        s->tail = j->prev;
    j->next = j->prev = NULL;
    j->queued = 0;
    s->queued--;
}

/* Gives j a worker whose service starts at start_us. */
static void take_worker(struct be_sched *s, struct be_sched_job *j,
                        uint64_t start_us)
{
    idle_advance(s, start_us);
    j->has_worker = 1;
    s->busy++;
    j->start_us = start_us;
    j->service_us = s->sample(s->ctx);
}

int be_sched_submit(struct be_sched *s, struct be_sched_job *j, uint64_t now_us)
{
    j->queue_us = 0;
    j->service_us = 0;
    if (worker_free(s)) {
        take_worker(s, j, now_us);
        return 1;
    }
    j->queued_at = now_us;
    queue_push(s, j);
    return 0;
}

void be_sched_pump(struct be_sched *s, uint64_t freed_us)
{
    while (s->head && worker_free(s)) {
        struct be_sched_job *j = s->head;
        queue_remove(s, j);
        /* A worker freed before j arrived (a forget) starts j at arrival. */
        uint64_t start = freed_us > j->queued_at ? freed_us : j->queued_at;
        j->queue_us = start - j->queued_at;
        take_worker(s, j, start);
        s->start(j, s->ctx);
    }
}

int be_sched_forget(struct be_sched *s, struct be_sched_job *j, uint64_t t)
{
    if (j->queued)
        queue_remove(s, j);
    if (!j->has_worker)
        return 0;
    idle_advance(s, t);
    j->has_worker = 0;
    s->busy--;
    return 1;
}

void be_sched_done(struct be_sched *s, struct be_sched_job *j, uint64_t done_us)
{
    if (be_sched_forget(s, j, done_us))
        be_sched_pump(s, done_us);
}
