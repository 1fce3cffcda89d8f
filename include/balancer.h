/*
 * balancer: the selector interface, the registry of policies by name, and the
 * health bookkeeping (in-flight, consecutive failures, ejection) that lives
 * beside the backends so that policies stay pure.
 *
 * A policy never sees a socket or a connection: only the read-only array of
 * struct balancer_backend and the samples it is told about.  Time is passed in
 * (microseconds, monotonic) so every policy is testable with a fake clock.
 */
#ifndef LB_BALANCER_H
#define LB_BALANCER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BALANCER_MAX_BACKENDS 64

/* How a finished request went, as far as balancing is concerned. */
enum balancer_outcome {
    BALANCER_OK,          /* a response that is not 5xx/429 */
    BALANCER_HTTP_ERROR,  /* 5xx or 429 from the backend */
    BALANCER_CONNECT_ERR, /* connect refused / failed / timed out */
    BALANCER_TIMEOUT,     /* no (complete) response in time */
    BALANCER_RESET,       /* connection lost / invalid response */
};
const char *balancer_outcome_str(enum balancer_outcome o);

enum balancer_health {
    BALANCER_UP,
    BALANCER_EJECTED, /* passive: too many consecutive failures */
    BALANCER_PROBING, /* ejection expired; one probe request allowed */
    BALANCER_DOWN,    /* active health check failed */
};
const char *balancer_health_str(enum balancer_health h);

/* What an operator asked for a backend (the runtime API), beside its
 * health: a backend that is not READY is never picked, not even by the
 * fail-open rule; its requests in flight finish. */
enum balancer_admin {
    BALANCER_READY,
    BALANCER_DRAIN, /* no new requests; in-flight ones finish */
    BALANCER_MAINT, /* the same, and active health checks pause */
};
/* "ready", "drain", "maint". */
const char *balancer_admin_str(enum balancer_admin a);
/* Parses one of those names; returns the enum value, or -1 if unknown. */
int balancer_admin_parse(const char *name);

/* Score formula of the adaptive policies. */
enum balancer_score_mode {
    BALANCER_SCORE_LATENCY,            /* plain argmin of the estimate */
    BALANCER_SCORE_LATENCY_X_INFLIGHT, /* estimate * (in_flight + 1) */
    BALANCER_SCORE_PREDICTED,          /* learned a + b * in_flight */
    BALANCER_SCORE_FILL, /* predicted / spare capacity: free workers first */
};
/* The score mode's name: "latency", "latency_x_inflight", "predicted",
 * "fill"; "?" for a value that is not a score mode. */
const char *balancer_score_mode_str(enum balancer_score_mode m);
/* Parses a score mode name; returns the enum value, or -1 if unknown. */
int balancer_score_mode_parse(const char *name);

/* Everything tunable about selection and passive health. */
struct balancer_params {
    unsigned sma_window;        /* samples (default 20) */
    double ewma_alpha;          /* 0 < alpha <= 1 (default 0.3) */
    unsigned ewma_decay_ms;     /* 0 = no time decay */
    bool load_aware;            /* false = plain argmin (prototype) */
    int ewma_score;             /* enum balancer_score_mode; -1 = default */
    unsigned probe_interval_ms; /* stale estimate gets a real request */
    unsigned penalty_ms;        /* a failure counts as this latency */
    unsigned peak_tau_ms;       /* p2c-peak-ewma decay time constant */
    unsigned max_fails;         /* consecutive failures before ejection */
    unsigned fail_timeout_ms;   /* first ejection period (doubles) */
    unsigned max_eject_ms;      /* cap of the back-off */
    unsigned slow_start_ms;     /* a returning backend's ramp; 0 = none */
    /* Failure-rate outlier ejection (0 = off): every outlier_window_ms, a
     * backend with at least outlier_min_requests in the window whose
     * failure rate is at least outlier_min_fail_pct % and outlier_factor
     * times the others' is ejected, at most half of the backends. */
    unsigned outlier_window_ms;
    unsigned outlier_min_requests;
    unsigned outlier_min_fail_pct;
    unsigned outlier_factor;
    uint64_t seed; /* RNG seed (p2c, tie breaks) */
    /* hash: no backend takes more than this times the mean in flight
     * (>= 1.0; 0 = unbounded), default 1.25 */
    double hash_balance_factor;
    /* prequal (docs/balancing.md "prequal"): probes per request (r_probe),
     * the bound on probes per second, the probe pool's size (m), an
     * entry's longest life, its reuse budget (b_reuse; 0: derived from the
     * probe rate), the RIF quantile of the hot-cold rule (Q_RIF) and the
     * longest time without a probe (the idle probe) */
    double prequal_probe_rate;
    unsigned prequal_max_probe_rate;
    unsigned prequal_pool_size;
    unsigned prequal_max_age_ms;
    unsigned prequal_reuse;
    double prequal_q_rif;
    unsigned prequal_idle_probe_ms;
};
/* Fills p with the defaults of every tunable (the configuration's defaults
 * for the [balancer] and [health] keys come from here). */
void balancer_params_default(struct balancer_params *p);

/* The read-only view a policy gets of one backend. */
struct balancer_backend {
    unsigned weight;    /* >= 1 */
    unsigned in_flight; /* requests dispatched and not yet observed */
    enum balancer_health health;
    uint64_t ejected_until_us;
    unsigned consecutive_fails;
    unsigned ejections;   /* how many times ejected in a row (back-off) */
    unsigned eject_fails; /* consecutive failures that caused the ejection */
    uint64_t fail_total;
    enum balancer_outcome last_fail;
    bool probe_in_flight;
    /* While in_flight > 0: when the backend last completed a request, or
     * became busy if it has completed none since (the start of its current
     * stall).  See balancer_stall_floor_us(). */
    uint64_t last_done_us;
    /* Slow start: while warming, the backend is offered to the policy on a
     * share of the picks that grows from warm_from_us over slow_start_ms. */
    bool warming;
    uint64_t warm_from_us;
    /* Outlier ejection: this window's requests and failures; outlier says
     * the current ejection came from the failure rate. */
    unsigned win_req, win_fail;
    bool outlier;
    /* The latency tail of successful requests, for per-try deadlines: a
     * moving mean and mean absolute deviation (microseconds, 0: none). */
    double tail_mean_us, tail_dev_us;
    /* Slots: a backend's index never moves while the balancer lives.  A
     * removed slot is never picked; it is reused by balancer_add once
     * nothing is in flight on it. */
    bool removed;
    enum balancer_admin admin;
    /* Probes (a policy that asks for them, balancer_probe_due): sent,
     * failed (no answer), and answered without the probe endpoint (the
     * policy used its own view instead). */
    uint64_t probes_sent, probes_failed, probes_fallback;
};

/* What became of a probe (balancer_probe_result). */
enum balancer_probe_result {
    BALANCER_PROBE_OK,          /* answered: requests in flight, latency */
    BALANCER_PROBE_UNSUPPORTED, /* no probe endpoint (404, no fields) */
    BALANCER_PROBE_FAILED,      /* no answer: refused, timeout, garbage */
};
/* "ok", "unsupported", "failed". */
const char *balancer_probe_result_str(enum balancer_probe_result r);

/* A policy: one file, one table, one line in the registry (balancer.c).
 * Backends are slots 0..n-1 of the array given to create, n changing at run
 * time (balancer_add) up to BALANCER_MAX_BACKENDS: per-backend state is
 * sized for BALANCER_MAX_BACKENDS at create. */
struct balancer_policy {
    const char *name;
    /* Returns policy state, or NULL on failure. */
    void *(*create)(const struct balancer_params *p,
                    const struct balancer_backend *backends);
    void (*destroy)(void *state);
    /* Picks among backends 0..n-1 with eligible[i] true (at least one
     * is); returns the index. */
    size_t (*pick)(void *state, const bool *eligible, size_t n,
                   uint64_t now_us);
    /* One finished request: latency_us from dispatch to last byte (penalised
     * by the caller for failures), inflight_at_dispatch the backend's
     * in-flight count when it was picked (not counting this request).
     * NULL for a policy that learns nothing from a request (round-robin). */
    void (*observe)(void *state, size_t idx, uint64_t latency_us, bool ok,
                    unsigned inflight_at_dispatch, uint64_t now_us);
    /* The number the dashboard shows for a backend (lower = preferred). */
    double (*score)(void *state, size_t idx, uint64_t now_us);
    /* Optional (may be NULL): forget what was learnt about a backend that
     * has just come back (probe succeeded, health check up again), so the
     * penalties of its outage do not keep it away. */
    void (*reset)(void *state, size_t idx);
    /* Optional (may be NULL): a pick for a request with a key (the hash
     * policy's consistent hashing), among backends 0..n-1 with eligible[i]
     * true (at least one is); returns the index.  A policy that has it
     * wants a key (balancer_wants_key). */
    size_t (*pick_key)(void *state, const bool *eligible, size_t n,
                       uint64_t key, uint64_t now_us);
    /* Optional (NULL: no per-backend state): forget everything about slot
     * idx, which a new backend takes (balancer_add). */
    void (*clear)(void *state, size_t idx);
    /* Optional (NULL: the policy wants no probes): the backends to probe
     * now, among 0..n-1 with eligible[i] true (at least one is): at most
     * max distinct indices written to out; returns how many. */
    size_t (*probe_due)(void *state, const bool *eligible, size_t n,
                        uint64_t now_us, unsigned *out, size_t max);
    /* With probe_due: backend idx answered a probe with its requests in
     * flight (rif) and its latency estimate; answered false: it has no
     * probe endpoint, and the policy stands in its own view of it. */
    void (*probe_result)(void *state, size_t idx, bool answered, unsigned rif,
                         uint64_t latency_us, uint64_t now_us);
};

struct balancer;

/* Looks a policy up by mode name (accepts the prototype's names); NULL if
 * unknown. */
const struct balancer_policy *balancer_find(const char *name);
/* Writes the canonical mode names, in registry order, separated by ", "
 * into buf (truncated to len). */
void balancer_names(char *buf, size_t len);
/* Whether two mode names are the same name: case is ignored and '-' and '_'
 * are equal (round_robin is round-robin). */
bool balancer_name_eq(const char *a, const char *b);

/* Creates a balancer for n backends with the given weights; NULL on error. */
struct balancer *balancer_create(const char *mode,
                                 const struct balancer_params *p, size_t n,
                                 const unsigned *weights);
void balancer_destroy(struct balancer *b);

/* Picks a backend not in the `tried` bitmap (bit i = backend i), skipping
 * ejected ones; when all untried ones are ejected, fails open to the
 * least-bad one.  Returns the index and increments its in-flight count, or
 * -1 if every backend was tried.  *inflight_at_dispatch receives the
 * backend's in-flight count before this request. */
int balancer_pick(struct balancer *b, uint64_t tried, uint64_t now_us,
                  unsigned *inflight_at_dispatch);
/* Whether the policy picks by a request key (balancer_pick_key); false
 * for every policy without a pick_key, whose callers need compute none. */
bool balancer_wants_key(const struct balancer *b);
/* balancer_pick for a request with a 64-bit key: the same health, tried
 * and fail-open rules, and the policy's pick_key among the eligible
 * backends (its plain pick when it has none). */
int balancer_pick_key(struct balancer *b, uint64_t tried, uint64_t key,
                      uint64_t now_us, unsigned *inflight_at_dispatch);
/* Whether the policy asks for probes (balancer_probe_due); false for
 * every policy without a probe_due, whose pools start no prober. */
bool balancer_wants_probes(const struct balancer *b);
/* The backends the policy wants probed now (live, ready and up ones
 * only, none in the `busy` bitmap: bit i = a probe of backend i is under
 * way): at most max slot indices written to out, each counted as a probe
 * sent; returns how many (0 for a policy without probes). */
size_t balancer_probe_due(struct balancer *b, uint64_t now_us, uint64_t busy,
                          unsigned *out, size_t max);
/* What became of a probe of backend idx sent by balancer_probe_due: with
 * BALANCER_PROBE_OK its answer (requests in flight, latency estimate)
 * goes to the policy; UNSUPPORTED makes the policy use its own view of
 * the backend instead; FAILED is only counted.  No-op for a slot that is
 * not live. */
void balancer_probe_result(struct balancer *b, size_t idx,
                           enum balancer_probe_result res, unsigned rif,
                           uint64_t latency_us, uint64_t now_us);
/* Reports one finished request dispatched by balancer_pick (decrements the
 * in-flight count, feeds the policy, updates passive health). */
void balancer_observe(struct balancer *b, size_t idx, uint64_t latency_us,
                      enum balancer_outcome outcome,
                      unsigned inflight_at_dispatch, uint64_t now_us);
/* Releases a pick that never reached the backend and should not count as a
 * sample (e.g. the client went away before dispatch). */
void balancer_cancel(struct balancer *b, size_t idx);
/* Starts backend idx's slow start at now_us (no effect when slow_start_ms
 * is 0): for a backend that is new in a reloaded set, whose peers carry on
 * from the previous one.  Returning from ejection or DOWN starts it
 * implicitly. */
void balancer_slow_start(struct balancer *b, size_t idx, uint64_t now_us);
/* A high-quantile estimate of backend idx's latency: its recent mean plus
 * four mean absolute deviations of successful requests, in microseconds;
 * 0 before its first sample. */
uint64_t balancer_latency_tail_us(const struct balancer *b, size_t idx);
/* Active health check result for a backend. */
void balancer_set_health(struct balancer *b, size_t idx, bool up,
                         uint64_t now_us);

/* Adds a backend of the given weight (0 counts as 1) in a free slot — a
 * removed one with nothing in flight, the lowest first — or a new one at
 * the end; the policy forgets the slot's past and the backend slow-starts
 * at now_us.  Returns the index, or -1 when every one of
 * BALANCER_MAX_BACKENDS slots is taken. */
int balancer_add(struct balancer *b, unsigned weight, uint64_t now_us);
/* Removes backend idx: it is never picked again; its requests in flight
 * finish and are observed as usual.  Returns 0, or -1 when idx is no live
 * backend. */
int balancer_remove(struct balancer *b, size_t idx);
/* Sets backend idx's weight (>= 1).  Returns 0, or -1 when idx is no live
 * backend or the weight is 0. */
int balancer_set_weight(struct balancer *b, size_t idx, unsigned weight);
/* Sets backend idx's administrative state; back to READY, a backend
 * slow-starts at now_us.  Returns 0, or -1 when idx is no live backend. */
int balancer_set_admin(struct balancer *b, size_t idx, enum balancer_admin a,
                       uint64_t now_us);
/* Whether idx is a live (not removed) backend slot. */
bool balancer_live(const struct balancer *b, size_t idx);

/* Number of backend slots (live and removed: see balancer_live). */
size_t balancer_count(const struct balancer *b);
/* The policy's canonical mode name. */
const char *balancer_mode(const struct balancer *b);
/* The read-only view of backend idx; NULL when idx is out of range. */
const struct balancer_backend *balancer_backend(const struct balancer *b,
                                                size_t idx);
/* The policy's score of backend idx at now_us (0 when out of range). */
double balancer_score(struct balancer *b, size_t idx, uint64_t now_us);
/* A short human reason for the backend's state, written into buf and
 * returned: "" when up, "ejected: 5 consecutive connect_error", "probing",
 * "health check failed". */
const char *balancer_reason(const struct balancer *b, size_t idx, char *buf,
                            size_t len);

/* --workers N: forgets what worker w left in flight (it died): its row of
 * in-flight counts comes off every backend's count and a recovery probe it
 * held is free again.  Nothing in a single process. */
void balancer_forget_worker(struct balancer *b, unsigned w);
/* Worker w's requests in flight on backend idx (0 in a single process). */
unsigned balancer_worker_in_flight(const struct balancer *b, unsigned w,
                                   size_t idx);

#endif
