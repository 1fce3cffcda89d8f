/*
 * health: active health checks.  Every check_interval_ms each backend gets
 * `GET <check_path>` over its own short non-blocking connection on the
 * event loop; a 2xx or 3xx status line counts as a pass, anything else
 * (refused, timeout, 4xx/5xx, garbage, close before a status line) as a
 * fail.  HEALTH_FALL consecutive fails mark the backend DOWN in the
 * balancer, HEALTH_RISE consecutive passes bring it back.  Memory is one
 * fixed slot per backend and at most one socket per backend.
 */
#ifndef LB_HEALTH_H
#define LB_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct balancer;
struct config;
struct loop;
struct upstream;

/* Consecutive results needed to change a backend's state. */
#define HEALTH_FALL 2
#define HEALTH_RISE 2

struct health;

/* Whether cfg asks for active checks (a health_check_path is set).  Checks
 * being off is not an error: callers ask this before health_create(). */
bool health_enabled(const struct config *cfg);

/* Starts checking every backend of one generation (upstream + balancer,
 * which must outlive the checker); only when health_enabled(cfg).  Returns
 * the checker, or NULL with errno set and a message in err. */
struct health *health_create(struct loop *loop, const struct config *cfg,
                             struct upstream *up, struct balancer *bal,
                             char *err, size_t errlen);

/* Stops every check, closes their sockets and frees the checker; NULL is a
 * no-op.  Safe inside a loop callback. */
void health_destroy(struct health *h);

/* Starts checking slot idx of the upstream table (a backend just added
 * there), first at once; the slot starts as up.  NULL h is a no-op.
 * Returns 0, or -1 with a message in err. */
int health_add(struct health *h, unsigned idx, char *err, size_t errlen);
/* Stops checking slot idx (its backend was removed); NULL h is a no-op. */
void health_remove(struct health *h, unsigned idx);
/* Pauses (a check under way is dropped without a verdict) or resumes the
 * checks of slot idx: a backend in maintenance is not checked.  NULL h is
 * a no-op. */
void health_pause(struct health *h, unsigned idx, bool paused);

/* Checks completed so far for backend idx (passes + fails), for tests. */
uint64_t health_checks_done(const struct health *h, unsigned idx);

#endif
