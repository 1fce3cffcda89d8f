/*
 * prequal_probe: the loop side of mode = prequal.  The policy
 * (src/balancer_prequal.c) says which backends it wants probed
 * (balancer_probe_due); this module sends each probe as a short
 * `GET <prequal_probe_path>` over a kept-alive connection of its own per
 * backend (checkconn), reads the backend's requests in flight and latency
 * estimate from the answer's head, and hands them to the policy
 * (balancer_probe_result).  At most one probe per backend is under way;
 * each has its own deadline (prequal_probe_timeout_ms).  A backend that
 * answers without the fields (a 404, an application page) is marked as
 * having no endpoint for PREQUAL_PROBE_RETRY_US: its probes then cost no
 * I/O, and the policy uses lbproxy's own view of it.
 */
#ifndef LB_PREQUAL_PROBE_H
#define LB_PREQUAL_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct balancer;
struct config;
struct loop;
struct upstream;

/* How often the prober asks the policy for probes: while probes are being
 * sent, and while none are (then also at the idle probe interval, if
 * shorter).  The simulator (tests/sim) uses the same cadence. */
#define PREQUAL_PROBE_TICK_US 2000u
#define PREQUAL_PROBE_IDLE_TICK_US 20000u
/* How long a backend without the probe endpoint goes unprobed. */
#define PREQUAL_PROBE_RETRY_US 10000000u

/* The answer's head fields: requests in flight, latency estimate (us). */
#define PREQUAL_HDR_RIF "X-Prequal-Rif"
#define PREQUAL_HDR_LATENCY "X-Prequal-Latency-Us"

struct prequal_probe;

/* Starts probing for balancer bal (whose policy wants probes,
 * balancer_wants_probes) over the backends of up; both must outlive the
 * prober.  Returns it, or NULL with a message in err. */
struct prequal_probe *prequal_probe_create(struct loop *loop,
                                           const struct config *cfg,
                                           struct upstream *up,
                                           struct balancer *bal, char *err,
                                           size_t errlen);
/* Stops every probe, closes their connections and frees the prober; NULL
 * is a no-op.  Safe inside a loop callback. */
void prequal_probe_destroy(struct prequal_probe *p);

/* Parses a probe answer's head (status line and fields, CRLF or LF):
 * 1 with *rif and *latency_us set when it is a 2xx carrying both fields,
 * 0 when it carries no probe answer (another status, a field missing or
 * malformed).  Pure, for the unit tests. */
int prequal_probe_parse(const char *head, size_t len, unsigned *rif,
                        uint64_t *latency_us);

#endif
