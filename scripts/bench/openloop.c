/*
 * openloop: an open-loop HTTP/1.1 load generator for the benchmarks - a
 * fixed offered rate with Poisson arrivals (exponential gaps) that do not
 * wait for responses, latency measured from each request's intended send
 * time, so that coordinated omission cannot hide queueing delay.
 *
 *     openloop --target 127.0.0.1:9090 --rate 1000 --duration 10
 *              [--path /] [--conns 256] [--warmup 1] [--seed 1]
 *              [--timeout 10] [--out result.json] [--dump-schedule FILE]
 *     openloop --rate 1000 --duration 10 --dry-run      (schedule only)
 *
 * The schedule (every arrival's intended time) is drawn before the run
 * from a seeded generator.  At each arrival the request goes out on an
 * idle keep-alive connection of a pool opened at start (--conns); when
 * none is idle it waits, in arrival order, for the next one to come free,
 * and is counted in "waited": a run where that count is not small did not
 * offer the rate it names.  A connection that fails is counted and opened
 * again.  Responses are parsed with llhttp; a request still unanswered
 * --timeout seconds after the last arrival counts as unfinished.
 *
 * Prints one JSON line (and writes it to --out): the offered and delivered
 * rates, requests measured (arrivals after --warmup), errors, unfinished,
 * waited, latency percentiles and mean in ms from the intended time, the
 * send lag (actual minus intended send time, p99), and the schedule's
 * mean gap and coefficient of variation over the measured arrivals.
 * Built by mk/bench.mk on the project's event loop; tested by
 * tests/bench/test_openloop.py.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "llhttp.h"
#include "loop.h"
#include "net.h"

#define REQ_MAX 512

enum conn_state { C_CONNECTING, C_IDLE, C_BUSY };

struct conn {
    struct loop_io io;
    llhttp_t parser;
    enum conn_state state;
    long arrival; /* the arrival it carries (C_BUSY), -1 none */
    size_t sent;
    bool done; /* the parser saw the whole response */
    int status;
    struct conn *next_idle;
};

struct run {
    struct loop *loop;
    struct net_addr addr;
    char req[REQ_MAX];
    size_t req_len;
    /* the schedule, in us from t0 */
    uint64_t *at;
    long n, next;
    uint64_t t0, measure_from;
    struct loop_timer arrive, stop;
    /* arrivals waiting for a connection, oldest first (a ring) */
    long *fifo;
    long fifo_head, fifo_len;
    /* results per arrival: latency us (UINT32_MAX: none) and send lag */
    uint32_t *lat, *lag;
    bool *failed;
    long completed, errors, status_errors, waited, outstanding, reconnects;
    struct conn *conns, *idle;
    int nconns;
    llhttp_settings_t settings;
    double timeout_s;
    bool finishing;
};

static struct run R;

/* ---- the schedule ---- */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    /* splitmix64 */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Exponential gaps of mean 1/rate seconds, as microseconds from 0. */
static int make_schedule(double rate, double seconds, uint64_t seed)
{
    rng_state = seed;
    long cap = (long)(rate * seconds * 1.2) + 64;
    R.at = malloc((size_t)cap * sizeof(*R.at));
    if (!R.at)
        return -1;
    double t = 0.0, end = seconds * 1e6;
    R.n = 0;
    for (;;) {
        double u = (double)(rng_next() >> 11) * 0x1.0p-53; /* [0, 1) */
        t += -log1p(-u) / rate * 1e6;
        if (t >= end)
            break;
        if (R.n == cap) {
            cap *= 2;
            uint64_t *p = realloc(R.at, (size_t)cap * sizeof(*p));
            if (!p)
                return -1;
            R.at = p;
        }
        R.at[R.n++] = (uint64_t)t;
    }
    return 0;
}

/* Mean gap (ms) and coefficient of variation of the arrivals from index
 * `from` on. */
static void schedule_stats(long from, double *mean_ms, double *cv)
{
    double s = 0, ss = 0;
    long k = 0;
    for (long i = from + 1; i < R.n; i++, k++) {
        double g = (double)(R.at[i] - R.at[i - 1]);
        s += g;
        ss += g * g;
    }
    if (k < 2) {
        *mean_ms = *cv = 0;
        return;
    }
    double m = s / (double)k;
    double var = ss / (double)k - m * m;
    *mean_ms = m / 1000.0;
    *cv = m > 0 ? sqrt(var > 0 ? var : 0) / m : 0;
}

/* ---- connections ---- */

static void conn_io(struct loop *loop, struct loop_io *io, unsigned events);

static int on_message_complete(llhttp_t *p)
{
    struct conn *c = p->data;
    c->done = true;
    c->status = p->status_code;
    return HPE_PAUSED;
}

static void conn_open(struct conn *c)
{
    int fd = -1;
    char err[128];
    enum net_connect_result r = net_connect(&R.addr, &fd, err, sizeof(err));
    c->state = C_CONNECTING;
    c->arrival = -1;
    if (r != NET_CONNECTED && r != NET_IN_PROGRESS) {
        fprintf(stderr, "openloop: %s\n", err);
        exit(2);
    }
    c->io.fn = conn_io;
    c->io.ctx = c;
    if (loop_io_add(R.loop, &c->io, fd, LOOP_WRITE) < 0) {
        perror("openloop: epoll");
        exit(2);
    }
}

static void send_on(struct conn *c, long arrival);
static void finish(struct conn *c, bool ok);

/* A connection is free: the oldest waiting arrival takes it, else it
 * goes to the idle list. */
/* Stops the loop once the last arrival went out and every request
 * ended. */
static void maybe_done(void)
{
    if (R.next == R.n && R.outstanding == 0)
        loop_stop(R.loop);
}

static void conn_free(struct conn *c)
{
    if (R.fifo_len > 0) {
        long a = R.fifo[R.fifo_head];
        R.fifo_head = (R.fifo_head + 1) % R.n;
        R.fifo_len--;
        send_on(c, a);
        return;
    }
    c->state = C_IDLE;
    c->next_idle = R.idle;
    R.idle = c;
    loop_io_mod(R.loop, &c->io, LOOP_READ); /* a close shows as readable */
}

static void conn_write(struct conn *c)
{
    while (c->sent < R.req_len) {
        ssize_t n =
            send(c->io.fd, R.req + c->sent, R.req_len - c->sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                loop_io_mod(R.loop, &c->io, LOOP_READ | LOOP_WRITE);
                return;
            }
            return; /* the read side sees the error */
        }
        c->sent += (size_t)n;
    }
    loop_io_mod(R.loop, &c->io, LOOP_READ);
}

static void send_on(struct conn *c, long arrival)
{
    uint64_t now = loop_update_time(R.loop);
    c->state = C_BUSY;
    c->arrival = arrival;
    c->sent = 0;
    c->done = false;
    llhttp_init(&c->parser, HTTP_RESPONSE, &R.settings);
    c->parser.data = c;
    uint64_t intended = R.t0 + R.at[arrival];
    R.lag[arrival] = (uint32_t)(now > intended ? now - intended : 0);
    conn_write(c);
}

static void finish(struct conn *c, bool ok)
{
    long a = c->arrival;
    uint64_t now = loop_update_time(R.loop);
    uint64_t intended = R.t0 + R.at[a];
    R.lat[a] = (uint32_t)(now > intended ? now - intended : 0);
    R.failed[a] = !ok;
    R.outstanding--;
    if (ok) {
        R.completed++;
        if (c->status >= 500 && R.at[a] >= R.measure_from)
            R.status_errors++;
    } else {
        R.errors++;
    }
    c->arrival = -1;
    maybe_done();
}

static void conn_failed(struct conn *c)
{
    if (c->state == C_BUSY)
        finish(c, false);
    if (c->state == C_IDLE) { /* unlink from the idle list */
        struct conn **pp = &R.idle;
        while (*pp && *pp != c)
            pp = &(*pp)->next_idle;
        if (*pp)
            *pp = c->next_idle;
    }
    loop_io_close(R.loop, &c->io);
    R.reconnects++;
    conn_open(c);
}

static void conn_io(struct loop *loop, struct loop_io *io, unsigned events)
{
    (void)loop;
    struct conn *c = io->ctx;
    if (c->state == C_CONNECTING) {
        if (net_connect_finish(io->fd) < 0) {
            fprintf(stderr, "openloop: connect: %s\n", strerror(errno));
            exit(2);
        }
        conn_free(c);
        return;
    }
    if ((events & LOOP_WRITE) && c->state == C_BUSY)
        conn_write(c);
    if (!(events & LOOP_READ))
        return;
    char buf[16384];
    ssize_t n = recv(io->fd, buf, sizeof(buf), 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (n <= 0 || c->state != C_BUSY) {
        conn_failed(c); /* closed, reset, or bytes nobody asked for */
        return;
    }
    llhttp_errno_t e = llhttp_execute(&c->parser, buf, (size_t)n);
    if (e != HPE_OK && e != HPE_PAUSED) {
        conn_failed(c);
        return;
    }
    if (c->done) {
        bool extra =
            e == HPE_PAUSED && llhttp_get_error_pos(&c->parser) != buf + n;
        finish(c, true);
        if (extra || !llhttp_should_keep_alive(&c->parser)) {
            c->state = C_IDLE; /* not on the idle list: reopen it */
            loop_io_close(R.loop, &c->io);
            R.reconnects++;
            conn_open(c);
            return;
        }
        conn_free(c);
    }
}

/* ---- arrivals ---- */

static void on_stop(struct loop *loop, struct loop_timer *t)
{
    (void)t;
    loop_stop(loop);
}

static void on_arrive(struct loop *loop, struct loop_timer *t)
{
    (void)t;
    uint64_t now = loop_update_time(loop);
    while (R.next < R.n && R.t0 + R.at[R.next] <= now) {
        long a = R.next++;
        R.outstanding++;
        struct conn *c = R.idle;
        if (c) {
            R.idle = c->next_idle;
            send_on(c, a);
        } else {
            R.fifo[(R.fifo_head + R.fifo_len) % R.n] = a;
            R.fifo_len++;
            if (R.at[a] >= R.measure_from)
                R.waited++;
        }
    }
    if (R.next < R.n) {
        loop_timer_set(loop, &R.arrive, R.t0 + R.at[R.next]);
    } else if (!R.finishing) {
        R.finishing = true;
        R.stop.fn = on_stop;
        loop_timer_after(loop, &R.stop, (uint64_t)(R.timeout_s * 1e6));
        maybe_done();
    }
}

/* ---- results ---- */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(const uint32_t *v, long n, double q)
{
    if (n == 0)
        return 0;
    long i = (long)ceil(q * (double)n) - 1;
    if (i < 0)
        i = 0;
    if (i >= n)
        i = n - 1;
    return (double)v[i] / 1000.0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: openloop --target HOST:PORT --rate R --duration S "
            "[--path P] [--conns N]\n"
            "                [--warmup S] [--seed N] [--timeout S] "
            "[--out FILE] [--dump-schedule FILE]\n"
            "       openloop --rate R --duration S --dry-run [--seed N]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *target = NULL, *path = "/", *out = NULL, *dump = NULL;
    double rate = 0, duration = 0, warmup = 0;
    uint64_t seed = 1;
    int nconns = 256;
    bool dry = false;
    R.timeout_s = 10;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--dry-run")) {
            dry = true;
            continue;
        }
        if (!v)
            usage();
        i++;
        if (!strcmp(a, "--target"))
            target = v;
        else if (!strcmp(a, "--rate"))
            rate = atof(v);
        else if (!strcmp(a, "--duration"))
            duration = atof(v);
        else if (!strcmp(a, "--warmup"))
            warmup = atof(v);
        else if (!strcmp(a, "--path"))
            path = v;
        else if (!strcmp(a, "--conns"))
            nconns = atoi(v);
        else if (!strcmp(a, "--seed"))
            seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--timeout"))
            R.timeout_s = atof(v);
        else if (!strcmp(a, "--out"))
            out = v;
        else if (!strcmp(a, "--dump-schedule"))
            dump = v;
        else
            usage();
    }
    if (!(rate > 0) || !(duration > 0) || warmup < 0 || warmup >= duration ||
        nconns < 1 || nconns > 10000 || (!dry && !target) ||
        strlen(path) > 256 || !(R.timeout_s > 0))
        usage();
    if (make_schedule(rate, duration, seed) < 0) {
        perror("openloop");
        return 2;
    }
    R.measure_from = (uint64_t)(warmup * 1e6);
    long first = 0;
    while (first < R.n && R.at[first] < R.measure_from)
        first++;
    double gap_ms, cv;
    schedule_stats(first, &gap_ms, &cv);
    if (dump) {
        FILE *f = fopen(dump, "w");
        if (!f) {
            perror(dump);
            return 2;
        }
        for (long i = 0; i < R.n; i++)
            fprintf(f, "%llu\n", (unsigned long long)R.at[i]);
        fclose(f);
    }
    if (dry) {
        printf("{\"arrivals\":%ld,\"offered_rps\":%.3f,\"gap_mean_ms\":%.6f,"
               "\"gap_cv\":%.6f}\n",
               R.n - first, rate, gap_ms, cv);
        return 0;
    }
    char err[160];
    if (net_parse(target, &R.addr, err, sizeof(err)) < 0) {
        fprintf(stderr, "openloop: %s\n", err);
        return 2;
    }
    R.req_len =
        (size_t)snprintf(R.req, sizeof(R.req),
                         "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, target);
    signal(SIGPIPE, SIG_IGN);
    R.loop = loop_create();
    R.fifo = malloc((size_t)(R.n ? R.n : 1) * sizeof(*R.fifo));
    R.lat = malloc((size_t)(R.n ? R.n : 1) * sizeof(*R.lat));
    R.lag = calloc((size_t)(R.n ? R.n : 1), sizeof(*R.lag));
    R.failed = calloc((size_t)(R.n ? R.n : 1), sizeof(*R.failed));
    R.conns = calloc((size_t)nconns, sizeof(*R.conns));
    if (!R.loop || !R.fifo || !R.lat || !R.lag || !R.failed || !R.conns) {
        perror("openloop");
        return 2;
    }
    for (long i = 0; i < R.n; i++)
        R.lat[i] = UINT32_MAX;
    llhttp_settings_init(&R.settings);
    R.settings.on_message_complete = on_message_complete;
    R.nconns = nconns;
    for (int i = 0; i < nconns; i++)
        conn_open(&R.conns[i]);
    /* the pool connects first; the schedule starts 200 ms later */
    R.t0 = loop_update_time(R.loop) + 200000;
    R.arrive.fn = on_arrive;
    if (R.n > 0)
        loop_timer_set(R.loop, &R.arrive, R.t0 + R.at[0]);
    else
        loop_timer_after(R.loop, &R.arrive, 200000);
    loop_run(R.loop);

    /* measured: arrivals from the warm-up on */
    long measured = R.n - first, ok = 0, bad = 0, unfinished = 0;
    uint32_t *v = malloc((size_t)(measured ? measured : 1) * sizeof(*v));
    uint32_t *lags = malloc((size_t)(measured ? measured : 1) * sizeof(*v));
    double sum = 0;
    for (long i = first; i < R.n; i++) {
        lags[i - first] = R.lag[i];
        if (R.lat[i] == UINT32_MAX) {
            unfinished++;
            continue;
        }
        if (R.failed[i]) {
            bad++;
            continue;
        }
        v[ok++] = R.lat[i];
        sum += R.lat[i];
    }
    qsort(v, (size_t)ok, sizeof(*v), cmp_u32);
    qsort(lags, (size_t)measured, sizeof(*lags), cmp_u32);
    double span = duration - warmup;
    char line[1024];
    snprintf(line, sizeof(line),
             "{\"offered_rps\":%.3f,\"delivered_rps\":%.3f,"
             "\"requests\":%ld,\"ok\":%ld,\"errors\":%ld,"
             "\"status_errors\":%ld,\"unfinished\":%ld,\"waited\":%ld,"
             "\"conns\":%d,\"reconnects\":%ld,"
             "\"mean_ms\":%.3f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,"
             "\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f,"
             "\"send_lag_p99_ms\":%.3f,\"gap_mean_ms\":%.6f,"
             "\"gap_cv\":%.6f}",
             rate, (double)ok / span, measured, ok, bad, R.status_errors,
             unfinished, R.waited, nconns, R.reconnects,
             ok ? sum / (double)ok / 1000.0 : 0, pct(v, ok, 0.50),
             pct(v, ok, 0.90), pct(v, ok, 0.99), pct(v, ok, 0.999),
             ok ? (double)v[ok - 1] / 1000.0 : 0, pct(lags, measured, 0.99),
             gap_ms, cv);
    printf("%s\n", line);
    if (out) {
        FILE *f = fopen(out, "w");
        if (!f) {
            perror(out);
            return 2;
        }
        fprintf(f, "%s\n", line);
        fclose(f);
    }
    return 0;
}
