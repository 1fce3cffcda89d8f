/*
 * lbsim_check: the simulator's asserting run (`make sim`): capacity,
 * p99 and throughput against the oracle, degrade, hang.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "lbsim.h"

static int failures;

static void expect(bool ok, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void expect(bool ok, const char *fmt, ...)
{
    va_list ap;
    printf("  %-4s ", ok ? "ok" : "FAIL");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    if (!ok)
        failures++;
}

/* Mean share of the event backend over [from, to) seconds. */
static double mean_share(const struct result *r, unsigned from, unsigned to)
{
    double sum = 0;
    for (unsigned t = from; t < to; t++)
        sum += r->sec_share[t];
    return sum / (to - from);
}

static void check_degrade(const struct set_spec *set, const char *label,
                          uint64_t seed)
{
    struct result r;
    double base, low, mid;
    unsigned away = 0, back = 0;

    lbsim_run(set, lbsim_find_pol(label), seed, &r);
    base = mean_share(&r, set->warmup, set->ev_from);
    low = mean_share(&r, set->ev_from + 5, set->ev_to);
    mid = (base + low) / 2;
    /* The first whole second after the event in which the share has
     * crossed the midpoint between the steady states. */
    for (unsigned t = set->ev_from; t < set->ev_to; t++)
        if (r.sec_share[t] < mid) {
            away = t + 1 - set->ev_from;
            break;
        }
    for (unsigned t = set->ev_to; t < set->seconds; t++)
        if (r.sec_share[t] > mid) {
            back = t + 1 - set->ev_to;
            break;
        }
    printf("%s, %s: share of A %.0f%% before, %.0f%% during\n", set->name,
           label, 100 * base, 100 * low);
    expect(low < 0.5 * base, "share during the slowdown %.3f < half of %.3f",
           low, base);
    expect(away > 0 && away <= 2, "moved away within %u s (bound 2 s)", away);
    expect(back > 0 && back <= 5, "came back within %u s (bound 5 s)", back);
    expect(mean_share(&r, set->ev_to + 5, set->seconds) > 0.8 * base,
           "share after recovery %.3f > 0.8 x before (%.3f)",
           mean_share(&r, set->ev_to + 5, set->seconds), base);
}

/* A frozen backend produces no sample; what is still in flight on it must
 * keep it from being sent more than a handful of requests while frozen
 * (before the stall floor: up to 37 on these sets, and with the default on
 * "hang" 94 of the 100 clients stuck).  The clients it held at the freeze
 * cannot be helped by a pick: they are reported, not bounded. */
static void check_hang(uint64_t seed)
{
    const char *hang_sets[] = {"hang", "hang-a"};
    const char *adaptive[] = {
        "ewma predicted *",         "ewma fill",     "ewma latency_x_inflight",
        "sma latency_x_inflight *", "sma predicted", "p2c-peak-ewma"};
    struct result r;

    for (size_t k = 0; k < sizeof(hang_sets) / sizeof(hang_sets[0]); k++)
        for (size_t p = 0; p < sizeof(adaptive) / sizeof(adaptive[0]); p++) {
            lbsim_run(lbsim_find_set(hang_sets[k]), lbsim_find_pol(adaptive[p]),
                      seed, &r);
            printf("%s, %s: %llu sent while frozen, %u stuck, %.0f req/s\n",
                   hang_sets[k], adaptive[p], (unsigned long long)r.hang_picks,
                   r.hang_stuck, r.rps);
            expect(r.hang_picks <= 5, "sent to the frozen backend %llu <= 5",
                   (unsigned long long)r.hang_picks);
        }
}

/* prequal: the throughput it reaches where load matters (capped, mixed),
 * that it leaves a slowed backend and comes back, and that a frozen one
 * (whose probes go unanswered) gets few requests.  Bounds with a margin
 * below what it reached (docs/balancing.md "prequal"); it is not asked to
 * match latency-driven policies on hetero, where its RIF rule spreads
 * load like least-conn. */
static void check_prequal(uint64_t seed)
{
    const char *capacity[] = {"capped", "mixed"};
    const char *hang_sets[] = {"hang", "hang-a"};
    struct result r;

    for (size_t k = 0; k < 2; k++) {
        const struct set_spec *set = lbsim_find_set(capacity[k]);
        double cap = lbsim_capacity(set);
        lbsim_run(set, lbsim_find_pol("prequal"), seed, &r);
        printf("%s, prequal: %.0f req/s, p99 %.1f ms, %.2f probes per "
               "request\n",
               set->name, r.rps, r.p99_ms, r.probes_per_req);
        expect(r.rps >= 0.95 * cap, "throughput %.0f >= 95%% of bound (%.0f)",
               r.rps, 0.95 * cap);
    }
    check_degrade(lbsim_find_set("degrade"), "prequal", seed);
    for (size_t k = 0; k < 2; k++) {
        lbsim_run(lbsim_find_set(hang_sets[k]), lbsim_find_pol("prequal"), seed,
                  &r);
        printf("%s, prequal: %llu sent while frozen, %u stuck\n", hang_sets[k],
               (unsigned long long)r.hang_picks, r.hang_stuck);
        expect(r.hang_picks <= 60, "sent to the frozen backend %llu <= 60",
               (unsigned long long)r.hang_picks);
    }
}

int lbsim_check(uint64_t seed)
{
    const struct set_spec *capped = lbsim_find_set("capped");
    double cap = lbsim_capacity(capped);
    const char *load_aware[] = {"ewma predicted *", "ewma fill",
                                "sma latency_x_inflight *",
                                "ewma latency_x_inflight", "sma predicted"};
    const char *adaptive[] = {"ewma predicted *", "ewma fill"};
    struct result r, oracle;
    const struct be_spec *slow = &capped->be[2];
    double rr_bound = 3.0 * slow->k / (slow->mean_ms / 1000.0);

    printf("capped: capacity bound %.0f req/s\n", cap);
    for (size_t k = 0; k < sizeof(load_aware) / sizeof(load_aware[0]); k++) {
        lbsim_run(capped, lbsim_find_pol(load_aware[k]), seed, &r);
        printf("%s: %.0f req/s, p99 %.1f ms\n", load_aware[k], r.rps, r.p99_ms);
        expect(r.rps >= 0.97 * cap, "throughput %.0f >= 97%% of bound (%.0f)",
               r.rps, 0.97 * cap);
    }
    lbsim_run(capped, lbsim_find_pol("round-robin"), seed, &r);
    printf("round-robin: %.0f req/s\n", r.rps);
    expect(r.rps <= 1.03 * rr_bound,
           "throughput %.0f <= 3 K_slow/S_slow + 3%% (%.0f)", r.rps,
           1.03 * rr_bound);
    lbsim_run(capped, lbsim_find_pol("ewma latency (load_aware=0)"), seed, &r);
    printf("ewma latency (load_aware=0): %.0f req/s\n", r.rps);
    expect(r.rps < 0.9 * cap, "herding loses: %.0f < 90%% of bound (%.0f)",
           r.rps, 0.9 * cap);

    /* The default and "fill" against the oracle: p99 on capped, throughput
     * on hetero.  Asserted with a wider margin than the aim. */
    for (size_t k = 0; k < sizeof(adaptive) / sizeof(adaptive[0]); k++) {
        lbsim_run(capped, lbsim_find_pol("oracle (SED)"), seed, &oracle);
        lbsim_run(capped, lbsim_find_pol(adaptive[k]), seed, &r);
        printf("capped p99: %s %.1f ms, oracle %.1f ms\n", adaptive[k],
               r.p99_ms, oracle.p99_ms);
        expect(r.p99_ms <= 1.25 * oracle.p99_ms,
               "p99 %.1f <= 1.25 x oracle %.1f", r.p99_ms, oracle.p99_ms);
        lbsim_run(lbsim_find_set("hetero"), lbsim_find_pol("oracle (SED)"),
                  seed, &oracle);
        lbsim_run(lbsim_find_set("hetero"), lbsim_find_pol(adaptive[k]), seed,
                  &r);
        printf("hetero: %s %.0f req/s, oracle %.0f req/s\n", adaptive[k], r.rps,
               oracle.rps);
        expect(r.rps >= 0.9 * oracle.rps,
               "throughput %.0f >= 90%% of oracle %.0f", r.rps, oracle.rps);
    }

    /* degrade32 (the bench's degrade): every worker is needed, so "fill"
     * must keep up with least-conn, at a p99 no worse.  (The default,
     * "predicted", reaches about 70%: reported by lbsim report.) */
    lbsim_run(lbsim_find_set("degrade32"), lbsim_find_pol("least-conn"), seed,
              &oracle);
    lbsim_run(lbsim_find_set("degrade32"), lbsim_find_pol("ewma fill"), seed,
              &r);
    printf("degrade32: ewma fill %.0f req/s p99 %.1f ms, least-conn %.0f "
           "req/s p99 %.1f ms\n",
           r.rps, r.p99_ms, oracle.rps, oracle.p99_ms);
    expect(r.rps >= 0.97 * oracle.rps,
           "throughput %.0f >= 97%% of least-conn %.0f", r.rps, oracle.rps);
    expect(r.p99_ms <= 1.05 * oracle.p99_ms,
           "p99 %.1f <= 1.05 x least-conn %.1f", r.p99_ms, oracle.p99_ms);

    for (size_t k = 0; k < sizeof(adaptive) / sizeof(adaptive[0]); k++) {
        check_degrade(lbsim_find_set("degrade"), adaptive[k], seed);
        check_degrade(lbsim_find_set("degrade-hetero"), adaptive[k], seed);
    }

    check_hang(seed);
    check_prequal(seed);
    lbsim_open_check(seed, expect);

    printf("%s: %d failed\n", failures ? "FAIL" : "PASS", failures);
    return failures ? 1 : 0;
}
