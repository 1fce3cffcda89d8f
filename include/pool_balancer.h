/*
 * pool_balancer: the balancer of one pool's configuration (a
 * config_pool_build result), as a pool makes it in one process and the
 * master makes it in the shared region for --workers N.
 */
#ifndef LB_POOL_BALANCER_H
#define LB_POOL_BALANCER_H

struct balancer;
struct config;

/* The balancer of pool_cfg's mode, tunables and backends' weights; NULL
 * on failure. */
struct balancer *pool_cfg_balancer(const struct config *pool_cfg);
#endif
