/*
 * lbsim_open: the simulator at a fixed offered load (`lbsim open [SET...]`,
 * part of `make sim-report`), the way the literature compares policies:
 * Poisson arrivals that do not wait for answers, latency from each
 * arrival.  Every policy meets the same arrivals.  A set with a capacity
 * bound runs at 50, 80 and 95% of it; the others at request rates of
 * their own (the real benchmark's `open_rates` where it has the set).
 *
 * lbsim_open_check() is the open-loop part of `make sim`: the engine
 * against Erlang C on one M/M/K backend, and the policies' ranking at
 * 80% and 95% of the capped set.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lbsim.h"

#define NRATES 3
#define MMK_SEEDS 4

struct open_plan {
    const char *set;
    double rate[NRATES]; /* a fraction of the bound when <= 1 */
    const char *why;
};

static const struct open_plan plans[] = {
    {"capped", {0.5, 0.8, 0.95}, NULL},
    {"mixed", {0.5, 0.8, 0.95}, NULL},
    {"degrade",
     {340, 544, 646},
     "50, 80 and 95% of the slowed phase's bound (680 req/s: A at "
     "4 / 50 ms)"},
    {"hetero", {2000, 5000, 10000}, "no worker limit"},
    {"hang", {500, 1000, 2000}, "no worker limit; the real hang set's rates"},
    {"hang-a", {500, 1000, 2000}, "no worker limit"},
};

/* The set at offered rate r (a fraction of its bound when <= 1). */
static struct set_spec at_rate(const struct set_spec *set, double r)
{
    struct set_spec s = *set;
    s.rate = r <= 1.0 ? r * lbsim_capacity(set) : r;
    return s;
}

static void report_plan(const struct open_plan *pl, uint64_t seed)
{
    const struct set_spec *set = lbsim_find_set(pl->set);
    double cap;

    if (!set)
        return;
    cap = lbsim_capacity(set);
    printf("\n### %s, open loop —", set->name);
    for (size_t i = 0; i < set->n; i++)
        printf("%s %s K=%u %s %.0f ms", i ? "," : "", set->be[i].id,
               set->be[i].k, set->be[i].dist == DIST_EXP ? "exp" : "lognormal",
               set->be[i].mean_ms);
    printf("%s\n\n", set->ev_be >= 0 ? "; with the set's event" : "");
    printf("Poisson arrivals, %u s simulated (first %u s not measured); ",
           set->seconds, set->warmup);
    if (pl->rate[0] <= 1.0)
        printf("offered 50 / 80 / 95%% of the bound %.0f req/s", cap);
    else
        printf("offered %.0f / %.0f / %.0f req/s (%s)", pl->rate[0],
               pl->rate[1], pl->rate[2], pl->why);
    printf(". p50 / p99 / p99.9 ms; a * marks a run that did not keep up "
           "(delivered "
           "< 98%% of offered, or arrivals dropped).\n\n| policy |");
    for (int k = 0; k < NRATES; k++) {
        struct set_spec s = at_rate(set, pl->rate[k]);
        printf(" %.0f/s p50 | p99 | p99.9 |", s.rate);
    }
    printf("\n|---|");
    for (int k = 0; k < NRATES; k++)
        printf("---:|---:|---:|");
    printf("\n");
    for (size_t p = 0; p < lbsim_npols; p++) {
        printf("| %s |", lbsim_pols[p].label);
        for (int k = 0; k < NRATES; k++) {
            struct set_spec s = at_rate(set, pl->rate[k]);
            struct result r;
            double measured = s.seconds - s.warmup;
            lbsim_run(&s, &lbsim_pols[p], seed, &r);
            bool short_ = r.dropped > 0 || r.rps < 0.98 * s.rate ||
                          r.errors > 0.01 * s.rate * measured;
            printf(" %.1f | %.1f | %.1f%s |", r.p50_ms, r.p99_ms, r.p999_ms,
                   short_ ? " *" : "");
        }
        printf("\n");
    }
}

void lbsim_open_report(const char *name, uint64_t seed)
{
    for (size_t i = 0; i < sizeof(plans) / sizeof(plans[0]); i++)
        if (!name || strcmp(plans[i].set, name) == 0)
            report_plan(&plans[i], seed);
}

bool lbsim_open_has(const char *name)
{
    for (size_t i = 0; i < sizeof(plans) / sizeof(plans[0]); i++)
        if (strcmp(plans[i].set, name) == 0)
            return true;
    return false;
}

/* Erlang C: the mean wait in queue of M/M/k with arrival rate lam and
 * mean service time s (seconds). */
static double erlang_c_wait(unsigned k, double lam, double s)
{
    double a = lam * s, rho = a / k, term = 1.0, sum = 1.0, pk, c;
    for (unsigned n = 1; n < k; n++) {
        term *= a / n;
        sum += term;
    }
    pk = term * a / k / (1.0 - rho);
    c = pk / (sum + pk);
    return c * s / (k * (1.0 - rho));
}

void lbsim_open_check(uint64_t seed, lbsim_expect_fn *expect)
{
    struct set_spec mmk = {
        .name = "mmk",
        .what = "one backend, K=8, exp 10 ms",
        .n = 1,
        .be = {{"A", 8, 10, DIST_EXP, 0}},
        .seconds = 125,
        .warmup = 20, /* it starts empty: let the queue reach its level */
        .ev_be = -1,
    };
    struct result r, lc, def;
    double want, got;
    const struct set_spec *capped = lbsim_find_set("capped");

    /* One M/M/8 backend at 80% and 95%: the engine's queueing delay is the
     * theory's.  A run's wait follows its own arrivals (at 95% it moves
     * twenty times as fast as the load), so the mean is over MMK_SEEDS runs:
     * within 8% at 80%, 15% at 95% (the real generator's bound is 20%,
     * tests/bench/test_openloop.py). */
    for (int k = 0; k < 2; k++) {
        double rho = k ? 0.95 : 0.80, tol = k ? 0.15 : 0.08, rps = 0;
        uint64_t dropped = 0;
        mmk.rate = rho * 800.0;
        got = 0;
        for (uint64_t i = 0; i < MMK_SEEDS; i++) {
            lbsim_run(&mmk, lbsim_find_pol("least-conn"), seed + i, &r);
            got += (r.mean_ms - 10.0) / MMK_SEEDS;
            rps += r.rps / MMK_SEEDS;
            dropped += r.dropped;
        }
        want = erlang_c_wait(8, mmk.rate, 0.010) * 1000.0;
        printf("open loop, M/M/8 at %.0f%%: mean wait %.2f ms, Erlang C "
               "%.2f ms\n",
               100 * rho, got, want);
        expect(fabs(got - want) <= tol * want,
               "queueing delay within %.0f%% of Erlang C (%.2f vs %.2f ms)",
               100 * tol, got, want);
        expect(dropped == 0 && fabs(rps - mmk.rate) <= 0.01 * mmk.rate,
               "delivered %.0f of %.0f req/s, %llu dropped", rps, mmk.rate,
               (unsigned long long)dropped);
    }

    /* Capped at 80% and 95%: the default keeps up, and at 80% its p99 is
     * below least-conn's, as in the real runs (docs/benchmarks.md). */
    for (int k = 1; k < NRATES; k++) {
        struct set_spec s = at_rate(capped, plans[0].rate[k]);
        lbsim_run(&s, lbsim_find_pol("ewma predicted *"), seed, &def);
        lbsim_run(&s, lbsim_find_pol("least-conn"), seed, &lc);
        printf("open loop, capped at %.0f%%: default p99 %.1f ms, "
               "least-conn %.1f ms\n",
               100 * plans[0].rate[k], def.p99_ms, lc.p99_ms);
        expect(def.dropped == 0 && def.rps >= 0.98 * s.rate,
               "default delivers %.0f of %.0f req/s", def.rps, s.rate);
        /* At 95% the default's queue on the fastest backend makes its
         * tail seed-dependent (below least-conn's at seed 42, above at
         * seed 1): reported, asserted at 80% only. */
        if (k == 1)
            expect(def.p99_ms < lc.p99_ms,
                   "default p99 %.1f < least-conn's %.1f", def.p99_ms,
                   lc.p99_ms);
    }
}
