/*
 * lbsim_probe: the simulator's stand-in for src/prequal_probe.c.  At the
 * prober's cadence it asks the balancer which backends to probe
 * (balancer_probe_due); each probe reads the simulated backend's true
 * state when it is sent (requests in flight at the server, the median
 * latency of its recent requests) and is answered one round trip later.
 * A backend that cannot answer (failing fast, frozen) makes the probe
 * fail, as a refused or timed-out probe does.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "balancer.h"
#include "lbsim.h"
#include "prequal_probe.h"

#define RING 4096 /* answers under way: far more than the rate bound lets */

struct answer {
    uint64_t t;
    unsigned idx, rif;
    uint64_t lat;
};

struct lbsim_probes {
    struct balancer *b;
    lbsim_state_fn *state;
    void *ctx;
    uint64_t delay_us, next_tick;
    struct answer q[RING]; /* FIFO: every probe takes the same delay */
    size_t head, len;
    uint64_t sent, failed;
};

struct lbsim_probes *lbsim_probes_new(struct balancer *b, uint64_t delay_us,
                                      lbsim_state_fn *state, void *ctx)
{
    struct lbsim_probes *p = calloc(1, sizeof(*p));
    if (!p)
        abort();
    p->b = b;
    p->state = state;
    p->ctx = ctx;
    p->delay_us = delay_us;
    return p;
}

void lbsim_probes_pump(struct lbsim_probes *p, uint64_t now)
{
    unsigned idx[BALANCER_MAX_BACKENDS];

    while (p->len > 0 && p->q[p->head].t <= now) {
        const struct answer *a = &p->q[p->head];
        balancer_probe_result(p->b, a->idx, BALANCER_PROBE_OK, a->rif, a->lat,
                              now);
        p->head = (p->head + 1) % RING;
        p->len--;
    }
    if (now < p->next_tick)
        return;
    size_t k = balancer_probe_due(p->b, now, 0, idx, BALANCER_MAX_BACKENDS);
    for (size_t j = 0; j < k; j++) {
        struct answer a = {now + p->delay_us, idx[j], 0, 0};
        p->sent++;
        if (!p->state(p->ctx, idx[j], &a.rif, &a.lat) || p->len == RING) {
            p->failed++;
            balancer_probe_result(p->b, idx[j], BALANCER_PROBE_FAILED, 0, 0,
                                  now);
            continue;
        }
        p->q[(p->head + p->len++) % RING] = a;
    }
    p->next_tick =
        now + (k > 0 ? PREQUAL_PROBE_TICK_US : PREQUAL_PROBE_IDLE_TICK_US);
}

uint64_t lbsim_probes_sent(const struct lbsim_probes *p)
{
    return p ? p->sent : 0;
}

void lbsim_probes_free(struct lbsim_probes *p)
{
    free(p);
}
