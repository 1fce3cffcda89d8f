/*
 * pool_balancer: a pool's balancer from its configuration
 * (include/pool_balancer.h).
 */
#include "pool_balancer.h"

#include "balancer.h"
#include "config.h"

struct balancer *pool_cfg_balancer(const struct config *pcfg)
{
    unsigned weights[CONFIG_MAX_BACKENDS];
    for (size_t j = 0; j < pcfg->nbackends; j++)
        weights[j] = pcfg->backends[j].weight ? pcfg->backends[j].weight : 1;
    return balancer_create(pcfg->mode, &pcfg->balancer, pcfg->nbackends,
                           weights);
}
