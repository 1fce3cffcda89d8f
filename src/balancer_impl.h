/*
 * balancer_impl: what the policy files share with balancer.c and with each
 * other.  Not part of the public interface (include/balancer.h).
 */
#ifndef LB_BALANCER_IMPL_H
#define LB_BALANCER_IMPL_H

#include "balancer.h"

struct shm_lock;

/* One balancer: the policy, its state and the backends it picks among
 * (balancer.c; balancer_shared.c adds what --workers N needs). */
struct balancer {
    const struct balancer_policy *pol;
    void *state;
    struct balancer_params p;
    size_t n;
    /* backends not up, ready and present (count_out): with none, pick
     * skips its look at each one */
    unsigned nout;
    struct balancer_backend be[BALANCER_MAX_BACKENDS];
    uint64_t rng;       /* slow start's draws */
    uint64_t window_us; /* start of the outlier window */
    /* balancer_pick_key's key, on its way through balancer_pick to the
     * policy (keyed is true only during that call) */
    bool keyed;
    uint64_t key;
    /* With a shared region (--workers N): the lock every public function
     * takes, each worker's in-flight row (rows[w * BALANCER_MAX_BACKENDS +
     * i], what a dead worker's requests leave behind) and which worker
     * holds each backend's recovery probe (index + 1, 0: none).  All NULL
     * in a single process. */
    struct shm_lock *lock;
    unsigned *rows;
    unsigned char *probe_owner;
};

/* balancer_shared.c: gives b its lock and rows when a shared region is
 * mapped (0; -1 when the region is full) and takes them back. */
int balancer_share(struct balancer *b);
void balancer_unshare(struct balancer *b);

/* The policy tables, one per file, listed in balancer.c's registry. */
extern const struct balancer_policy balancer_policy_rr;
extern const struct balancer_policy balancer_policy_least_conn;
extern const struct balancer_policy balancer_policy_sma;
extern const struct balancer_policy balancer_policy_ewma;
extern const struct balancer_policy balancer_policy_p2c;
extern const struct balancer_policy balancer_policy_hash;
extern const struct balancer_policy balancer_policy_prequal;

/*
 * What requests still in flight say about a backend that has stopped
 * answering: the lowest latency estimate consistent with having seen no
 * completion for `stall` = now - last_done_us while n requests are out.
 * By Little's law a backend completes n / latency requests per second, so
 * a gap far longer than latency / n between completions means the latency
 * is at least about n * stall; and nothing that is out can finish sooner
 * than the stall has lasted.  The floor is
 *     stall * max(1, n / BALANCER_STALL_MARGIN)
 * (0 when nothing is in flight).  On a healthy backend the gaps are about
 * exponential with mean latency / n, so n * stall exceeds MARGIN times the
 * latency only e^-MARGIN of the time; on a frozen one it grows without
 * bound from the first missing completion.  Every adaptive policy estimates
 * a backend at no less than this.
 */
#define BALANCER_STALL_MARGIN 4.0
double balancer_stall_floor_us(const struct balancer_backend *be,
                               uint64_t now_us);

/* A small deterministic RNG (splitmix64), seeded from params.seed. */
uint64_t balancer_rand(uint64_t *state);
/* A uniform integer in [0, n), n > 0. */
size_t balancer_rand_below(uint64_t *state, size_t n);

/*
 * The machinery the two adaptive policies (SMA, EWMA) share: cold start,
 * staleness probes, rotation tie-breaks, the score formulas and the
 * per-backend slope learner.  A policy keeps its own estimate arithmetic and
 * hands each new estimate to balancer_adaptive_update().
 */
/* In-flight levels the knee learner tells apart (higher ones share the
 * last level). */
#define BALANCER_KNEE_LEVELS 128

struct balancer_adaptive_slot {
    bool has;          /* at least one sample seen */
    double est_us;     /* the policy's latency estimate */
    double est_x;      /* the same average over in-flight-at-dispatch */
    uint64_t last_us;  /* when the estimate was last refreshed */
    uint64_t probe_us; /* when the last staleness probe was sent */
    bool probed;       /* probe_us is valid */
    bool probe_out;    /* a staleness probe awaits its sample */
    bool chase;        /* the probe came back much faster: probe again */
    /* Exponentially weighted least squares of latency on in-flight:
     * weight, means and co-moments (Welford form, numerically stable). */
    double fit_w, fit_mx, fit_my, fit_vxx, fit_cxy;
    uint64_t fit_us; /* time of the last fitted sample */
    /* The knee learner ("fill"): time-decayed weight and latency sum of
     * successful samples per in-flight-at-dispatch level, and the
     * concurrency fitted to them (0 = not fitted yet). */
    double knee_c[BALANCER_KNEE_LEVELS], knee_sy[BALANCER_KNEE_LEVELS];
    double knee_syy;   /* sum of squared latencies, same decay */
    unsigned knee_new; /* samples since the last fit */
    uint64_t knee_us;  /* time of the last fit */
    double knee_k;
    double knee_top;    /* highest level with KNEE_SEEN samples of weight */
    double knee_s;      /* the fitted service time */
    double knee_drift;  /* slow average of sample / fitted curve */
    unsigned knee_hold; /* samples left in which a changed speed keeps K */
    double fail;        /* recent failure rate (average of 0/1 outcomes) */
};

struct balancer_adaptive {
    struct balancer_params p;
    enum balancer_score_mode mode;
    const struct balancer_backend *be;
    size_t rot;                       /* rotation start for tie-breaks */
    struct balancer_adaptive_slot *s; /* BALANCER_MAX_BACKENDS of them */
};

/* Initialises the shared state for BALANCER_MAX_BACKENDS slots; the score
 * mode comes from p->ewma_score, or def when it is -1, and is forced to
 * LATENCY when load_aware is false.  Returns 0, or -1 (ENOMEM). */
int balancer_adaptive_init(struct balancer_adaptive *a,
                           const struct balancer_params *p,
                           const struct balancer_backend *be,
                           enum balancer_score_mode def);
/* Frees what balancer_adaptive_init allocated. */
void balancer_adaptive_fini(struct balancer_adaptive *a);
/* The shared pick: cold backends first, then one staleness probe per
 * probe_interval (sooner while probes keep coming back much faster than
 * the estimate), then the lowest score (ties in rotation). */
size_t balancer_adaptive_pick(struct balancer_adaptive *a, const bool *eligible,
                              size_t n, uint64_t now_us);
/* Stores a new estimate (est_us over latencies, est_x over in-flight at
 * dispatch) and, for a successful sample, feeds the slope learner. */
void balancer_adaptive_update(struct balancer_adaptive *a, size_t idx,
                              double est_us, double est_x, double latency_us,
                              bool ok, unsigned x, uint64_t now_us);
/* Forgets the outage of one backend that came back (it becomes cold; with
 * slow start, part of its load response is kept). */
void balancer_adaptive_reset(struct balancer_adaptive *a, size_t idx);
/* Forgets everything about slot idx (a new backend takes it). */
void balancer_adaptive_clear(struct balancer_adaptive *a, size_t idx);
/* The learned slope (microseconds per request in flight), >= 0. */
double balancer_adaptive_slope(const struct balancer_adaptive *a, size_t idx);
/* The knee learner's fit over per-level sums c[x] (weight) and sy[x]
 * (latency sum): the concurrency K in [1, levels] that best explains the
 * samples as latency = S for x < K and S * (x + 1) / K beyond, by least
 * squares; ties go to the larger K, and K = levels means no knee seen.
 * syy (the sum of squared latencies) sets the noise level: a knee that does
 * not clearly beat a flat line is not reported. */
unsigned balancer_knee_fit(const double *c, const double *sy, double syy,
                           size_t levels, double *svc);
/* The score the pick minimises, in microseconds; 0 for a cold backend. */
double balancer_adaptive_score(const struct balancer_adaptive *a, size_t idx,
                               uint64_t now_us);

#endif
