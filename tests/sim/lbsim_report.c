/*
 * lbsim_report: the simulator's command line and its closed-loop report
 * (`lbsim report [SET...]`, `make sim-report`): every policy and the
 * oracle on each set, and for a set with an event the share of the event's
 * backend over time.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lbsim.h"

static void print_backends(const struct set_spec *set)
{
    double cap = lbsim_capacity(set);
    printf("\n### %s — %s\n\n", set->name, set->what);
    printf("%u clients, %u s simulated (first %u s not measured). ",
           set->clients, set->seconds, set->warmup);
    if (cap > 0)
        printf("Capacity bound Σ K/S = %.0f req/s.\n\n", cap);
    else
        printf("Capacity unbounded (K unlimited); all clients on the "
               "fastest backend give %.0f req/s.\n\n",
               set->clients / (set->be[0].mean_ms / 1000.0));
}

static void report_set(const struct set_spec *set, uint64_t seed)
{
    struct result *r = malloc(sizeof(*r) * lbsim_npols);
    double cap = lbsim_capacity(set);
    bool windows = set->ev_be >= 0;

    if (!r)
        abort();
    print_backends(set);
    printf("| policy | req/s | %% of %s | p50 ms | p99 ms | share",
           cap > 0 ? "bound" : "oracle");
    for (size_t i = 0; i < set->n; i++)
        printf(" %s", set->be[i].id);
    printf(" |%s%s\n", set->ev_fail ? " errors |" : "",
           set->ev_hang ? " sent while frozen | stuck |" : "");
    printf("|---|---:|---:|---:|---:|---|%s%s\n", set->ev_fail ? "---:|" : "",
           set->ev_hang ? "---:|---:|" : "");
    for (size_t p = 0; p < lbsim_npols; p++) {
        double ref;
        lbsim_run(set, &lbsim_pols[p], seed, &r[p]);
        ref = cap > 0 ? cap : r[0].rps;
        printf("| %s | %.0f | %.1f | %.1f | %.1f |", lbsim_pols[p].label,
               r[p].rps, 100.0 * r[p].rps / ref, r[p].p50_ms, r[p].p99_ms);
        for (size_t i = 0; i < set->n; i++)
            printf(" %.0f", 100.0 * r[p].share[i]);
        printf(" |");
        if (set->ev_fail)
            printf(" %llu |", (unsigned long long)r[p].errors);
        if (set->ev_hang)
            printf(" %llu | %u |", (unsigned long long)r[p].hang_picks,
                   r[p].hang_stuck);
        printf("\n");
    }
    for (size_t p = 0; p < lbsim_npols; p++)
        if (r[p].probes_per_req > 0)
            printf("\n%s: %.2f probes per request.\n", lbsim_pols[p].label,
                   r[p].probes_per_req);
    if (windows) {
        printf("\nShare of backend %s's picks (%%) per 2-s window; "
               "event from %u s to %u s:\n\n",
               set->ev_busiest ? "X (each policy's busiest at the event)"
                               : set->be[set->ev_be].id,
               set->ev_from, set->ev_to);
        printf("| policy |");
        for (size_t w = 0; w < r[0].nwin; w++)
            printf(" %zu |", w * 2);
        printf("\n|---|");
        for (size_t w = 0; w < r[0].nwin; w++)
            printf("---:|");
        printf("\n");
        for (size_t p = 0; p < lbsim_npols; p++) {
            printf("| %s |", lbsim_pols[p].label);
            for (size_t w = 0; w < r[p].nwin; w++)
                printf(" %.0f |", 100.0 * r[p].win_share[w][r[p].ev_be]);
            printf("\n");
        }
    }
    free(r);
}

static void usage(void)
{
    fprintf(stderr, "usage: lbsim report [SET...] | lbsim open [SET...] | "
                    "lbsim check\n"
                    "sets:");
    for (size_t i = 0; i < lbsim_nsets; i++)
        fprintf(stderr, " %s", lbsim_sets[i].name);
    fprintf(stderr, "\n");
}

int main(int argc, char **argv)
{
    uint64_t seed = 42;
    const char *env = getenv("LBSIM_SEED");

    if (env)
        seed = strtoull(env, NULL, 10);
    if (argc >= 2 && strcmp(argv[1], "check") == 0)
        return lbsim_check(seed);
    if (argc >= 2 && strcmp(argv[1], "report") == 0) {
        if (argc == 2)
            for (size_t i = 0; i < lbsim_nsets; i++)
                report_set(&lbsim_sets[i], seed);
        for (int a = 2; a < argc; a++) {
            const struct set_spec *set = lbsim_find_set(argv[a]);
            if (!set) {
                usage();
                return 2;
            }
            report_set(set, seed);
        }
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "open") == 0) {
        if (argc == 2)
            lbsim_open_report(NULL, seed);
        for (int a = 2; a < argc; a++) {
            if (!lbsim_open_has(argv[a])) {
                usage();
                return 2;
            }
            lbsim_open_report(argv[a], seed);
        }
        return 0;
    }
    usage();
    return 2;
}
