/*
 * balancer_registry: the policies by name (with the other spellings they
 * are known by), the names of the enums and the tunables' defaults.
 */
#include "balancer.h"
#include "balancer_impl.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Every policy, under its canonical mode name (policy->name). */
/* clang-format off */
static const struct balancer_policy *const policies[] = {
    &balancer_policy_rr,
    &balancer_policy_sma,
    &balancer_policy_ewma,
    &balancer_policy_least_conn,
    &balancer_policy_p2c,
    &balancer_policy_hash,
    &balancer_policy_prequal,
};
/* clang-format on */

/* Other spellings accepted for the canonical names (on top of ignoring case
 * and treating '-' and '_' alike: round_robin, least_conn, ...). */
static const struct {
    const char *alias;
    const char *name;
} aliases[] = {
    {"rr", "round-robin"},
    {"roundrobin", "round-robin"},
    {"weighted-round-robin", "round-robin"},
    {"sma", "adaptive_sma"},
    {"ewma", "adaptive_ewma"},
    {"adaptive", "adaptive_ewma"},
    {"leastconn", "least-conn"},
    {"least-connections", "least-conn"},
    {"lc", "least-conn"},
    {"p2c", "p2c-peak-ewma"},
    {"peak-ewma", "p2c-peak-ewma"},
    {"consistent-hash", "hash"},
    {"chash", "hash"},
};

#define NPOLICIES (sizeof(policies) / sizeof(policies[0]))
#define NALIASES (sizeof(aliases) / sizeof(aliases[0]))

const char *balancer_outcome_str(enum balancer_outcome o)
{
    switch (o) {
    case BALANCER_OK:
        return "ok";
    case BALANCER_HTTP_ERROR:
        return "http_error";
    case BALANCER_CONNECT_ERR:
        return "connect_error";
    case BALANCER_TIMEOUT:
        return "timeout";
    case BALANCER_RESET:
        return "reset";
    }
    return "?";
}

const char *balancer_health_str(enum balancer_health h)
{
    switch (h) {
    case BALANCER_UP:
        return "up";
    case BALANCER_EJECTED:
        return "ejected";
    case BALANCER_PROBING:
        return "probing";
    case BALANCER_DOWN:
        return "down";
    }
    return "?";
}

const char *balancer_probe_result_str(enum balancer_probe_result r)
{
    switch (r) {
    case BALANCER_PROBE_OK:
        return "ok";
    case BALANCER_PROBE_UNSUPPORTED:
        return "unsupported";
    case BALANCER_PROBE_FAILED:
        return "failed";
    }
    return "?";
}

const char *balancer_admin_str(enum balancer_admin a)
{
    switch (a) {
    case BALANCER_READY:
        return "ready";
    case BALANCER_DRAIN:
        return "drain";
    case BALANCER_MAINT:
        return "maint";
    }
    return "?";
}

int balancer_admin_parse(const char *name)
{
    static const enum balancer_admin all[] = {BALANCER_READY, BALANCER_DRAIN,
                                              BALANCER_MAINT};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (strcmp(name, balancer_admin_str(all[i])) == 0)
            return (int)all[i];
    return -1;
}

const char *balancer_score_mode_str(enum balancer_score_mode m)
{
    switch (m) {
    case BALANCER_SCORE_LATENCY:
        return "latency";
    case BALANCER_SCORE_LATENCY_X_INFLIGHT:
        return "latency_x_inflight";
    case BALANCER_SCORE_PREDICTED:
        return "predicted";
    case BALANCER_SCORE_FILL:
        return "fill";
    }
    return "?";
}

int balancer_score_mode_parse(const char *name)
{
    static const enum balancer_score_mode all[] = {
        BALANCER_SCORE_LATENCY,
        BALANCER_SCORE_LATENCY_X_INFLIGHT,
        BALANCER_SCORE_PREDICTED,
        BALANCER_SCORE_FILL,
    };
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (strcasecmp(name, balancer_score_mode_str(all[i])) == 0)
            return (int)all[i];
    return -1;
}

void balancer_params_default(struct balancer_params *p)
{
    memset(p, 0, sizeof(*p));
    p->sma_window = 20;
    p->ewma_alpha = 0.3;
    p->ewma_decay_ms = 0;
    p->load_aware = true;
    p->ewma_score = -1;
    p->probe_interval_ms = 1000;
    p->penalty_ms = 5000;
    p->peak_tau_ms = 10000;
    p->max_fails = 3;
    p->fail_timeout_ms = 2000;
    p->max_eject_ms = 30000;
    p->slow_start_ms = 0;
    p->outlier_window_ms = 0;
    p->outlier_min_requests = 20;
    p->outlier_min_fail_pct = 10;
    p->outlier_factor = 5;
    p->seed = 1;
    p->hash_balance_factor = 1.25;
    p->prequal_probe_rate = 3.0;
    p->prequal_max_probe_rate = 1000;
    p->prequal_pool_size = 16;
    p->prequal_max_age_ms = 1000;
    p->prequal_reuse = 0;
    p->prequal_q_rif = 0.84;
    p->prequal_idle_probe_ms = 100;
}

bool balancer_name_eq(const char *a, const char *b)
{
    for (;; a++, b++) {
        char x = *a == '_' ? '-' : (char)tolower((unsigned char)*a);
        char y = *b == '_' ? '-' : (char)tolower((unsigned char)*b);
        if (x != y)
            return false;
        if (x == '\0')
            return true;
    }
}

const struct balancer_policy *balancer_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < NALIASES; i++)
        if (balancer_name_eq(name, aliases[i].alias)) {
            name = aliases[i].name;
            break;
        }
    for (size_t i = 0; i < NPOLICIES; i++)
        if (balancer_name_eq(name, policies[i]->name))
            return policies[i];
    return NULL;
}

void balancer_names(char *buf, size_t len)
{
    size_t off = 0;
    if (len == 0)
        return;
    buf[0] = '\0';
    for (size_t i = 0; i < NPOLICIES && off < len; i++) {
        int w = snprintf(buf + off, len - off, "%s%s", i ? ", " : "",
                         policies[i]->name);
        if (w < 0)
            break;
        off += (size_t)w;
    }
}
