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

#include <stdint.h>

struct balancer;
struct config;
struct loop;
struct upstream;

/* Consecutive results needed to change a backend's state. */
#define HEALTH_FALL 2
#define HEALTH_RISE 2

struct health;

/* Starts checking every backend of one generation (upstream + balancer,
 * which must outlive the checker).  Returns NULL with errno 0 when
 * cfg->health_check_path is empty (checks off), or NULL with errno set on
 * failure. */
struct health *health_create(struct loop *loop, const struct config *cfg,
                             struct upstream *up, struct balancer *bal);

/* Stops every check, closes their sockets and frees the checker; NULL is a
 * no-op.  Safe inside a loop callback. */
void health_destroy(struct health *h);

/* Checks completed so far for backend idx (passes + fails), for tests. */
uint64_t health_checks_done(const struct health *h, unsigned idx);

#endif
