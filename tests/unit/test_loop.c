/*
 * test_loop: the timer heap, and loop_io_maybe_ready.  Timers fire in deadline
 * order, equal deadlines in the order they were armed (FIFO), a re-armed timer
 * moves (and counts as armed anew), a cancelled one never fires, and thousands
 * of random arm/re-arm/cancel steps keep the heap invariant and the firing
 * order.
 *
 * Timers fire through the real loop_run(): deadlines are put at or before
 * the loop's clock, so they are all due in the first dispatch round and fire
 * in heap order; the test includes loop.c to check the heap's invariant
 * between steps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../src/loop.c"

#define NT 4096

struct rec {
    struct loop_timer t;
    int id;
};

/* What fired, in order; loop_run stops once `want` timers fired. */
static int fired[NT];
static size_t nfired, want;

static void on_fire(struct loop *loop, struct loop_timer *t)
{
    struct rec *r = t->ctx;
    assert_true(nfired < NT);
    fired[nfired++] = r->id;
    if (nfired == want)
        loop_stop(loop);
}

/* Ends a run that would otherwise hang (a timer that never fired). */
static void on_guard(struct loop *loop, struct loop_timer *t)
{
    (void)t;
    loop_stop(loop);
    fail_msg("guard timer: %zu of %zu timers fired", nfired, want);
}

static void init(struct rec *r, size_t n)
{
    memset(r, 0, n * sizeof(*r));
    for (size_t i = 0; i < n; i++) {
        r[i].id = (int)i;
        r[i].t.fn = on_fire;
        r[i].t.ctx = &r[i];
    }
}

/* A new loop and n unarmed timers that record their index when fired. */
static struct loop *start(struct rec *r, size_t n)
{
    struct loop *loop = loop_create();
    assert_non_null(loop);
    init(r, n);
    return loop;
}

/* Every parent's (deadline, arming order) is below its children's. */
static void check_heap(const struct loop *loop)
{
    for (uint32_t i = 0; i < loop->heap_len; i++) {
        const struct loop_timer *t = loop->heap[i];
        assert_int_equal(t->heap_idx, i + 1);
        if (i == 0)
            continue;
        const struct loop_timer *p = loop->heap[(i - 1) / 2];
        assert_false(timer_before(t, p));
    }
}

/* Runs the loop until `n` timers fired (a guard stops it after 5 s). */
static void run_until(struct loop *loop, size_t n)
{
    struct loop_timer guard = {.fn = on_guard};
    nfired = 0;
    want = n;
    loop_timer_after(loop, &guard, 5000000u);
    assert_int_equal(loop_run(loop), 0);
    loop_timer_cancel(loop, &guard);
    assert_int_equal(nfired, n);
}

/* A deadline `us` after the clock's origin: long past (the monotonic clock
 * has run for more than a few microseconds), so every timer of a test is
 * due when the loop runs. */
static uint64_t past(const struct loop *loop, uint64_t us)
{
    assert_true(loop_now(loop) > 1000000u);
    return us;
}

static void test_ordering(void **st)
{
    static const uint64_t when[] = {50, 10, 40, 30, 20, 60, 5, 45};
    static const int order[] = {6, 1, 4, 3, 2, 7, 0, 5};
    struct rec r[8];
    struct loop *loop = start(r, 8);
    (void)st;
    for (int i = 0; i < 8; i++)
        loop_timer_set(loop, &r[i].t, past(loop, when[i]));
    check_heap(loop);
    run_until(loop, 8);
    assert_memory_equal(fired, order, sizeof(order));
    for (int i = 0; i < 8; i++)
        assert_false(loop_timer_armed(&r[i].t));
    loop_destroy(loop);
}

static void test_fifo_on_equal_deadlines(void **st)
{
    /* Interleaved with other deadlines so that heap moves happen between
     * the equal ones; each group must fire in arming order. */
    enum { N = 64 };
    struct rec r[N];
    struct loop *loop = start(r, N);
    (void)st;
    for (int i = 0; i < N; i++)
        loop_timer_set(loop, &r[i].t, past(loop, (uint64_t)(i % 3) * 100));
    check_heap(loop);
    run_until(loop, N);
    size_t k = 0;
    for (int g = 0; g < 3; g++)
        for (int i = g; i < N; i += 3)
            assert_int_equal(fired[k++], i);
    loop_destroy(loop);
}

static void test_rearm(void **st)
{
    struct rec r[4];
    struct loop *loop = start(r, 4);
    (void)st;
    for (int i = 0; i < 4; i++)
        loop_timer_set(loop, &r[i].t, past(loop, 100 + (uint64_t)i));
    /* Earlier, later, and to the same deadline as another timer: re-arming
     * counts as arming anew, so 1 now fires after 3 (both at 103). */
    loop_timer_set(loop, &r[2].t, past(loop, 1));
    loop_timer_set(loop, &r[0].t, past(loop, 500));
    loop_timer_set(loop, &r[1].t, past(loop, 103));
    check_heap(loop);
    assert_int_equal(loop->heap_len, 4);
    run_until(loop, 4);
    static const int order[] = {2, 3, 1, 0};
    assert_memory_equal(fired, order, sizeof(order));

    /* A fired timer is disarmed and can be armed again. */
    for (int k = 0; k < 2; k++) {
        assert_false(loop_timer_armed(&r[0].t));
        loop_timer_set(loop, &r[0].t, past(loop, 0));
        assert_true(loop_timer_armed(&r[0].t));
        run_until(loop, 1);
        assert_int_equal(fired[0], 0);
    }
    loop_destroy(loop);
}

static void test_cancel(void **st)
{
    enum { N = 10 };
    struct rec r[N];
    struct loop *loop = start(r, N);
    (void)st;
    for (int i = 0; i < N; i++)
        loop_timer_set(loop, &r[i].t, past(loop, (uint64_t)(N - i)));
    /* The root, a leaf, one in the middle, and one twice. */
    loop_timer_cancel(loop, &r[N - 1].t);
    loop_timer_cancel(loop, &r[0].t);
    loop_timer_cancel(loop, &r[4].t);
    loop_timer_cancel(loop, &r[4].t);
    check_heap(loop);
    assert_int_equal(loop->heap_len, N - 3);
    assert_false(loop_timer_armed(&r[4].t));
    /* Cancelling a timer that was never armed is a no-op too. */
    struct rec idle;
    init(&idle, 1);
    loop_timer_cancel(loop, &idle.t);
    assert_int_equal(loop->heap_len, N - 3);
    run_until(loop, N - 3);
    static const int order[] = {8, 7, 6, 5, 3, 2, 1};
    assert_memory_equal(fired, order, sizeof(order));
    loop_destroy(loop);
}

static void test_many_timers(void **st)
{
    /* Random arms, re-arms and cancels over few distinct deadlines (many
     * ties); a model of each timer's (deadline, arming step) gives the
     * order in which the armed ones must fire. */
    static struct rec r[NT];
    static uint64_t when[NT], step[NT];
    static int armed[NT], expect[NT];
    struct loop *loop = start(r, NT);
    (void)st;
    memset(armed, 0, sizeof(armed));
    srand(7);
    for (uint64_t s = 1; s <= 4 * NT; s++) {
        int i = rand() % NT;
        if (armed[i] && rand() % 4 == 0) {
            loop_timer_cancel(loop, &r[i].t);
            armed[i] = 0;
        } else {
            when[i] = (uint64_t)(rand() % 64);
            step[i] = s;
            armed[i] = 1;
            loop_timer_set(loop, &r[i].t, past(loop, when[i]));
        }
        if (s % 512 == 0)
            check_heap(loop);
    }
    check_heap(loop);
    size_t n = 0;
    for (int i = 0; i < NT; i++)
        if (armed[i])
            expect[n++] = i;
    assert_int_equal(loop->heap_len, n);
    /* Insertion sort by (deadline, step): n is a few thousand. */
    for (size_t a = 1; a < n; a++) {
        int x = expect[a];
        size_t b = a;
        while (b > 0 && (when[expect[b - 1]] > when[x] ||
                         (when[expect[b - 1]] == when[x] &&
                          step[expect[b - 1]] > step[x]))) {
            expect[b] = expect[b - 1];
            b--;
        }
        expect[b] = x;
    }
    run_until(loop, n);
    for (size_t k = 0; k < n; k++)
        assert_int_equal(fired[k], expect[k]);
    assert_int_equal(loop->heap_len, 0);
    loop_destroy(loop);
}

/* ---- loop_io_maybe_ready ---- */

struct pair_io {
    struct loop_io io;
    int peer; /* the socketpair end the test writes to */
    struct pair_io *other;
    int handled;
    bool other_maybe, self_maybe;
};

static void on_pair_read(struct loop *loop, struct loop_io *io, unsigned ev)
{
    (void)ev;
    struct pair_io *p = io->ctx;
    char b[16];
    assert_true(read(io->fd, b, sizeof(b)) > 0);
    p->handled++;
    p->self_maybe = loop_io_maybe_ready(loop, io);
    p->other_maybe = loop_io_maybe_ready(loop, &p->other->io);
    if (p->other->handled)
        loop_stop(loop);
}

static void on_check_quiet(struct loop *loop, struct loop_timer *t)
{
    struct pair_io *p = t->ctx;
    /* a later round with nothing ready: neither may be ready */
    assert_false(loop_io_maybe_ready(loop, &p[0].io));
    assert_false(loop_io_maybe_ready(loop, &p[1].io));
    loop_stop(loop);
}

/* Two fds ready in one round: while the first is handled, the second's
 * event is still to come (maybe ready) and the first's own is not; once
 * both are handled and nothing else arrived, neither is. */
static void test_maybe_ready(void **state)
{
    (void)state;
    struct loop *loop = loop_create();
    assert_non_null(loop);
    struct pair_io p[2];
    memset(p, 0, sizeof(p));
    for (int i = 0; i < 2; i++) {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        p[i].io.fn = on_pair_read;
        p[i].io.ctx = &p[i];
        p[i].peer = sv[1];
        p[i].other = &p[1 - i];
        assert_int_equal(loop_io_add(loop, &p[i].io, sv[0], LOOP_READ), 0);
    }
    for (int i = 0; i < 2; i++)
        assert_int_equal(write(p[i].peer, "x", 1), 1);
    struct loop_timer guard = {.fn = on_guard};
    loop_timer_set(loop, &guard, loop_now(loop) + 5000000);
    assert_int_equal(loop_run(loop), 0);
    struct pair_io *first = p[0].other_maybe ? &p[0] : &p[1];
    assert_int_equal(p[0].handled + p[1].handled, 2);
    assert_true(first->other_maybe); /* the second's event was to come */
    assert_false(first->self_maybe); /* its own was being handled */
    assert_false(first->other->other_maybe); /* the first's was done */
    assert_false(first->other->self_maybe);
    struct loop_timer t = {.fn = on_check_quiet, .ctx = p};
    loop_timer_set(loop, &t, loop_now(loop));
    assert_int_equal(loop_run(loop), 0);
    loop_timer_cancel(loop, &guard);
    for (int i = 0; i < 2; i++) {
        loop_io_del(loop, &p[i].io);
        close(p[i].io.fd);
        close(p[i].peer);
    }
    loop_destroy(loop);
}

/* Deferred releases: what a release defers runs in the same pass, after
 * the list it came from; every one runs once, in order. */
struct deferral {
    struct loop *loop;
    int order[256];
    int n;
};
static struct deferral dfr;

static void on_deferred(void *ptr)
{
    int id = (int)(intptr_t)ptr;
    dfr.order[dfr.n++] = id;
    if (id < 40) /* the first 40 each defer one more, id + 100 */
        loop_defer(dfr.loop, on_deferred, (void *)(intptr_t)(id + 100));
}

static void test_deferred_releases(void **state)
{
    (void)state;
    struct loop *loop = loop_create();
    assert_non_null(loop);
    for (int round = 0; round < 3; round++) {
        memset(&dfr, 0, sizeof(dfr));
        dfr.loop = loop;
        for (int i = 0; i < 70; i++) /* more than the first capacity */
            assert_int_equal(loop_defer(loop, on_deferred, (void *)(intptr_t)i),
                             0);
        run_deferred(loop);
        assert_int_equal(dfr.n, 110);
        for (int i = 0; i < 70; i++)
            assert_int_equal(dfr.order[i], i);
        for (int i = 0; i < 40; i++)
            assert_int_equal(dfr.order[70 + i], 100 + i);
        assert_int_equal(loop->ndeferred, 0);
        /* both lists are kept, with their room, for the next round (not
         * freed after the pass) */
        assert_non_null(loop->deferred);
        assert_non_null(loop->spare);
        assert_true(loop->deferred_cap + loop->spare_cap >= 70 + 40);
    }
    loop_destroy(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ordering),
        cmocka_unit_test(test_fifo_on_equal_deadlines),
        cmocka_unit_test(test_rearm),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_many_timers),
        cmocka_unit_test(test_maybe_ready),
        cmocka_unit_test(test_deferred_releases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
