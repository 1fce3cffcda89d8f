/*
 * lbsim: what the simulator's engine and report (lbsim.c) share with its
 * asserting checks (lbsim_check.c).
 */
#ifndef LB_LBSIM_H
#define LB_LBSIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MAX_BE 8
/* Closed-loop clients, or open-loop request slots (requests in flight). */
#define MAX_CLIENTS 4096
#define SEC 1000000ull

enum dist { DIST_EXP, DIST_LOGNORMAL };

struct be_spec {
    const char *id;
    unsigned k;     /* workers; 0 = unlimited */
    double mean_ms; /* mean service time */
    enum dist dist;
    double sigma; /* lognormal shape */
};

struct set_spec {
    const char *name;
    const char *what;
    size_t n;
    struct be_spec be[MAX_BE];
    unsigned clients;
    /* Open loop: Poisson arrivals at `rate` requests per second, each held
     * in one of MAX_CLIENTS slots while in flight (an arrival that finds
     * none free is dropped and counted); 0 = closed loop with `clients`. */
    double rate;
    unsigned seconds;
    unsigned warmup;
    /* Backend `ev_be` is changed between ev_from and ev_to seconds: service
     * times multiplied by ev_factor, or, with ev_fail, every request fails
     * after ev_fail_ms without using a worker, or, with ev_hang, it is
     * frozen (SIGSTOP): no service progresses during the event, so what it
     * holds, and what it is sent meanwhile, completes only after it. */
    int ev_be;
    double ev_factor;
    bool ev_fail;
    double ev_fail_ms;
    bool ev_hang;
    bool ev_busiest; /* the event hits the backend holding the most
                      * requests at ev_from (the policy's favourite) */
    unsigned ev_from, ev_to;
};

struct pol_spec {
    const char *label;
    const char *mode; /* NULL = oracle */
    int score;        /* -1 = the policy's default */
    bool load_aware;
};

#define WINDOW_US (2 * SEC)
#define MAX_WINDOWS 64

struct result {
    double rps;
    double p50_ms, p90_ms, p99_ms, p999_ms, mean_ms;
    uint64_t done, errors;
    uint64_t dropped; /* open loop: arrivals with no free slot */
    double share[MAX_BE];                  /* picks, after warmup */
    double win_share[MAX_WINDOWS][MAX_BE]; /* picks per 2 s window */
    double sec_share[128];                 /* ev_be share per 1 s */
    size_t nwin;
    /* ev_hang: requests sent to the frozen backend during the event, and
     * the most it held at once (clients stuck on it). */
    uint64_t hang_picks;
    unsigned hang_stuck;
    int ev_be; /* the event's backend */
    double probes_per_req; /* probes sent per finished request (prequal) */
};

extern const struct set_spec lbsim_sets[];
extern const size_t lbsim_nsets;
extern const struct pol_spec lbsim_pols[];
extern const size_t lbsim_npols;

/* lbsim_probe.c: probes for a policy that wants them (prequal), answered
 * from the simulated backends' true state after a round trip. */
struct balancer;
struct lbsim_probes;
/* Backend idx's state as a probe finds it: requests in flight at the
 * server and its recent median latency; false when it cannot answer. */
typedef bool lbsim_state_fn(void *ctx, size_t idx, unsigned *rif,
                            uint64_t *lat_us);
struct lbsim_probes *lbsim_probes_new(struct balancer *b, uint64_t delay_us,
                                      lbsim_state_fn *state, void *ctx);
/* Delivers the answers due by now and, at the prober's cadence, sends the
 * probes the balancer asks for. */
void lbsim_probes_pump(struct lbsim_probes *p, uint64_t now);
/* Probes sent so far (0 for NULL). */
uint64_t lbsim_probes_sent(const struct lbsim_probes *p);
void lbsim_probes_free(struct lbsim_probes *p);

/* Runs one set under one policy with the given seed into r. */
void lbsim_run(const struct set_spec *set, const struct pol_spec *pol,
               uint64_t seed, struct result *r);
/* Sum of K / S in requests per second; 0 when some K is unlimited. */
double lbsim_capacity(const struct set_spec *set);
/* A set by name, NULL if unknown; a policy by its label (aborts if
 * unknown: the checks name only policies that exist). */
const struct set_spec *lbsim_find_set(const char *name);
const struct pol_spec *lbsim_find_pol(const char *label);
/* The asserting run of `make sim`: 0 when every bound holds, else 1. */
int lbsim_check(uint64_t seed);

/* lbsim_open.c: the open-loop report of one set (NULL: every set it has a
 * plan for), whether it has one, and the open-loop checks, which report
 * through lbsim_check's expect. */
typedef void lbsim_expect_fn(bool ok, const char *fmt, ...);
void lbsim_open_report(const char *set, uint64_t seed);
bool lbsim_open_has(const char *set);
void lbsim_open_check(uint64_t seed, lbsim_expect_fn *expect);

#endif
