/*
 * Unit tests of the emulator's worker queue (be_sched) in virtual time: K
 * workers with service time S serve exactly K/S requests per second; the
 * (K+1)th request waits exactly one service time; a queued request's
 * service starts when a worker is freed (the finished job's deadline), not
 * when the caller gets round to it; FIFO order; forget and unlimited
 * workers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../backends/be_sched.c"

#define S_US 10000u /* service time */
#define MAXJOBS 256

/* The scheduler under test, its jobs, and a fake caller: a fixed service
 * time and a record of every start from the queue. */
static struct {
    struct be_sched s;
    struct be_sched_job j[MAXJOBS];
    uint64_t service_us;
    struct be_sched_job *started[MAXJOBS];
    size_t nstarted;
} fx;

static uint64_t fake_sample(void *ctx)
{
    (void)ctx;
    return fx.service_us;
}

static void fake_start(struct be_sched_job *j, void *ctx)
{
    (void)ctx;
    assert_true(fx.nstarted < MAXJOBS);
    fx.started[fx.nstarted++] = j;
}

/* A fresh scheduler with `workers` workers and zeroed jobs. */
static struct be_sched *init(int workers)
{
    memset(&fx, 0, sizeof(fx));
    fx.service_us = S_US;
    be_sched_init(&fx.s, workers, fake_sample, fake_start, NULL);
    return &fx.s;
}

static void test_k_plus_one_waits_one_service_time(void **state)
{
    (void)state;
    enum { K = 4 };
    struct be_sched *s = init(K);
    struct be_sched_job *j = fx.j;
    for (int i = 0; i < K; i++) {
        assert_int_equal(be_sched_submit(s, &j[i], 0), 1);
        assert_int_equal(j[i].start_us, 0);
        assert_int_equal(j[i].service_us, S_US);
        assert_int_equal(j[i].queue_us, 0);
    }
    assert_int_equal(s->busy, K);
    assert_int_equal(be_sched_submit(s, &j[K], 0), 0);
    assert_int_equal(s->queued, 1);
    assert_int_equal(fx.nstarted, 0);

    /* The first worker is freed at its deadline: the queued one starts. */
    be_sched_done(s, &j[0], j[0].start_us + j[0].service_us);
    assert_int_equal(fx.nstarted, 1);
    assert_ptr_equal(fx.started[0], &j[K]);
    assert_int_equal(j[K].start_us, S_US);
    assert_int_equal(j[K].queue_us, S_US);
    assert_int_equal(s->busy, K);
    assert_int_equal(s->queued, 0);
    assert_int_equal(s->max_queued, 1);
}

static void test_service_starts_when_worker_freed_not_later(void **state)
{
    (void)state;
    struct be_sched *s = init(1);
    struct be_sched_job *a = &fx.j[0], *b = &fx.j[1];
    assert_int_equal(be_sched_submit(s, a, 1000), 1);
    assert_int_equal(be_sched_submit(s, b, 2000), 0);
    /* However late the caller reports it, a's service ended at its
     * deadline, and b's starts there. */
    uint64_t deadline = a->start_us + a->service_us;
    be_sched_done(s, a, deadline);
    assert_int_equal(fx.nstarted, 1);
    assert_int_equal(b->start_us, deadline);
    assert_int_equal(b->queue_us, deadline - 2000);
    /* b ends one service time after a did. */
    assert_int_equal(b->start_us + b->service_us, deadline + S_US);
}

/* N requests at t = 0 on K workers, each completion reported at its
 * deadline: the i-th completes at S * (i / K + 1), i.e. exactly K / S per
 * second, and never more than K are in service. */
static void run_capacity(int k, size_t n)
{
    uint64_t done_at[MAXJOBS];
    int done[MAXJOBS];
    assert_true(n <= MAXJOBS);
    memset(done, 0, sizeof(done));
    struct be_sched *s = init(k);
    struct be_sched_job *j = fx.j;
    for (size_t i = 0; i < n; i++)
        be_sched_submit(s, &j[i], 0);
    assert_int_equal(s->busy, k);
    assert_int_equal(s->queued, n - (size_t)k);
    for (size_t finished = 0; finished < n; finished++) {
        /* The next deadline among jobs in service (lowest index on ties,
         * as a FIFO timer heap would). */
        size_t best = n;
        for (size_t i = 0; i < n; i++)
            if (j[i].has_worker && !done[i] &&
                (best == n || j[i].start_us + j[i].service_us <
                                  j[best].start_us + j[best].service_us))
                best = i;
        assert_true(best < n);
        uint64_t deadline = j[best].start_us + j[best].service_us;
        done[best] = 1;
        done_at[best] = deadline;
        be_sched_done(s, &j[best], deadline);
        assert_true(s->busy <= k);
    }
    uint64_t last = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t want = (uint64_t)S_US * (i / (size_t)k + 1);
        if (done_at[i] != want)
            fail_msg("job %zu done at %llu us, want %llu us (K=%d)", i,
                     (unsigned long long)done_at[i], (unsigned long long)want,
                     k);
        assert_int_equal(j[i].queue_us, want - S_US);
        if (done_at[i] > last)
            last = done_at[i];
    }
    assert_int_equal(s->busy, 0);
    assert_int_equal(s->queued, 0);
    assert_int_equal(s->max_queued, n - (size_t)k);
    /* n jobs in n / K service times: K / S per second, exactly. */
    assert_int_equal(last, (uint64_t)S_US * ((n + (size_t)k - 1) / (size_t)k));
}

static void test_exact_capacity(void **state)
{
    (void)state;
    run_capacity(1, 10);
    run_capacity(4, 100);
    run_capacity(8, 200);
    run_capacity(3, 100); /* the last round is not full */
}

static void test_fifo_and_forget(void **state)
{
    (void)state;
    struct be_sched *s = init(1);
    struct be_sched_job *busy = &fx.j[0], *q = &fx.j[1];
    assert_int_equal(be_sched_submit(s, busy, 0), 1);
    for (int i = 0; i < 4; i++)
        assert_int_equal(be_sched_submit(s, &q[i], (uint64_t)i), 0);
    assert_int_equal(s->max_queued, 4);

    /* A queued job that leaves frees no worker; the others keep order. */
    assert_int_equal(be_sched_forget(s, &q[1], 0), 0);
    assert_int_equal(s->queued, 3);
    assert_int_equal(q[1].queued, 0);
    assert_int_equal(be_sched_forget(s, &q[1], 0), 0); /* twice is harmless */

    /* The job in service leaves at 5000: a worker is freed, nothing starts
     * until the caller pumps. */
    assert_int_equal(be_sched_forget(s, busy, 0), 1);
    assert_int_equal(fx.nstarted, 0);
    assert_int_equal(s->busy, 0);
    be_sched_pump(s, 5000);
    assert_int_equal(fx.nstarted, 1);
    assert_ptr_equal(fx.started[0], &q[0]);
    assert_int_equal(q[0].start_us, 5000);

    be_sched_done(s, &q[0], q[0].start_us + S_US);
    assert_ptr_equal(fx.started[1], &q[2]);
    be_sched_done(s, &q[2], q[2].start_us + S_US);
    assert_ptr_equal(fx.started[2], &q[3]);
    assert_int_equal(q[3].start_us, 5000 + 2 * S_US);
    assert_int_equal(s->queued, 0);
}

static void test_pump_never_starts_before_arrival(void **state)
{
    (void)state;
    struct be_sched *s = init(1);
    struct be_sched_job *a = &fx.j[0], *b = &fx.j[1];
    be_sched_submit(s, a, 0);
    be_sched_submit(s, b, 8000);
    /* a's worker was freed (say, by a close) at a time stamped before b
     * arrived: b's service starts at its arrival, it never waited. */
    assert_int_equal(be_sched_forget(s, a, 0), 1);
    be_sched_pump(s, 6000);
    assert_int_equal(b->start_us, 8000);
    assert_int_equal(b->queue_us, 0);
}

/* Idle worker time: what a balancer left unused, in worker-us. */
static void test_idle_worker_time(void **state)
{
    (void)state;
    struct be_sched *s = init(2);
    struct be_sched_job *a = &fx.j[0], *b = &fx.j[1], *c = &fx.j[2];
    be_sched_submit(s, a, 1000); /* the clock starts at the first arrival */
    be_sched_submit(s, b, 3000); /* one worker idle 1000..3000 */
    be_sched_submit(s, c, 4000); /* queued behind both */
    be_sched_done(s, a, a->start_us + S_US); /* c takes a's worker at once */
    assert_int_equal(be_sched_idle_us(s, 11000), 2000);
    /* A deadline earlier than a time already seen is not counted twice. */
    be_sched_done(s, b, b->start_us + S_US); /* 13000: one worker free */
    assert_int_equal(be_sched_idle_us(s, 12000), 2000);
    assert_int_equal(be_sched_idle_us(s, 14000), 3000);
    assert_int_equal(be_sched_forget(s, c, 15000), 1); /* both free now */
    assert_int_equal(be_sched_idle_us(s, 16000), 3000 + 1000 + 2 * 1000);

    s = init(0); /* unlimited workers are never idle */
    be_sched_submit(s, a, 1000);
    be_sched_done(s, a, 1000 + S_US);
    assert_int_equal(be_sched_idle_us(s, 50000), 0);
}

static void test_unlimited_workers(void **state)
{
    (void)state;
    struct be_sched *s = init(0);
    for (size_t i = 0; i < MAXJOBS; i++)
        assert_int_equal(be_sched_submit(s, &fx.j[i], 42), 1);
    assert_int_equal(s->busy, MAXJOBS);
    assert_int_equal(s->queued, 0);
    assert_int_equal(s->max_queued, 0);
    for (size_t i = 0; i < MAXJOBS; i++)
        be_sched_done(s, &fx.j[i], 42 + S_US);
    assert_int_equal(s->busy, 0);
    assert_int_equal(fx.nstarted, 0);
}

static void test_zero_service_time(void **state)
{
    (void)state;
    struct be_sched *s = init(1);
    struct be_sched_job *a = &fx.j[0], *b = &fx.j[1];
    fx.service_us = 0;
    /* The caller finishes a zero service at once; the worker is free for
     * the next request, which then never queues. */
    assert_int_equal(be_sched_submit(s, a, 100), 1);
    assert_int_equal(a->service_us, 0);
    be_sched_done(s, a, 100);
    assert_int_equal(be_sched_submit(s, b, 100), 1);
    assert_int_equal(b->queue_us, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_k_plus_one_waits_one_service_time),
        cmocka_unit_test(test_service_starts_when_worker_freed_not_later),
        cmocka_unit_test(test_exact_capacity),
        cmocka_unit_test(test_fifo_and_forget),
        cmocka_unit_test(test_pump_never_starts_before_arrival),
        cmocka_unit_test(test_idle_worker_time),
        cmocka_unit_test(test_unlimited_workers),
        cmocka_unit_test(test_zero_service_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
