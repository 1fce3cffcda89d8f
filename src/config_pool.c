/*
 * config_pool: named pools and the routes to them.
 *
 *   [pool.api]               keys of [balancer], [health], [pool], [retry],
 *   mode = least-conn        the upstream timeouts and limits, mode and
 *                            persistent, set for this pool only
 *   [pool.api.backends]      the pool's backends, as in [backends]
 *   A = 127.0.0.1:8081
 *   [route.api]              which requests go to it
 *   host = api.example.com   exact, *.example.com, or absent (any host)
 *   path_prefix = /v1/       "/" when absent
 *   pool = api
 *
 * The sections are kept as written (the pool's keys as text, checked when
 * read) and a pool's configuration is built on demand: the global values
 * with its own keys applied, so a flag given after the file still reaches
 * every pool that does not set that key itself.  [backends] is the pool
 * named "default".
 */
#include "config.h"
#include "config_impl.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define EXT_MAX_POOLS 1024
#define EXT_MAX_ROUTES 65536
#define EXT_MAX_KEYS 65536

struct ext_pool {
    char name[32];
};
struct ext_backend {
    unsigned pool;
    struct config_backend b;
};
struct ext_key {
    unsigned pool;
    const struct config_key *key;
    char value[CONFIG_TEXT_MAX];
};

struct config_ext {
    struct ext_pool *pools;
    size_t npools;
    struct ext_backend *backends;
    size_t nbackends;
    struct ext_key *keys;
    size_t nkeys;
    struct config_route *routes;
    size_t nroutes;
};

/* ---- the heap part --------------------------------------------------- */

/* Grows *arr (of *n elements of size sz) by one zeroed element; NULL when
 * out of memory or at max. */
static void *grow(void *arrp, size_t *n, size_t sz, size_t max)
{
    void **arr = arrp;
    if (*n >= max)
        return NULL;
    /* capacity is the next power of two: grow when n is one */
    if ((*n & (*n - 1)) == 0) {
        size_t cap = *n ? *n * 2 : 4;
        void *p = realloc(*arr, cap * sz);
        if (!p)
            return NULL;
        *arr = p;
    }
    char *e = (char *)*arr + (*n)++ * sz;
    memset(e, 0, sz);
    return e;
}

static void *dup_array(const void *src, size_t n, size_t sz, bool *fail)
{
    if (n == 0)
        return NULL;
    size_t cap = 4;
    while (cap < n)
        cap *= 2;
    void *p = malloc(cap * sz);
    if (!p) {
        *fail = true;
        return NULL;
    }
    memcpy(p, src, n * sz);
    return p;
}

static void ext_free(struct config_ext *x)
{
    if (!x)
        return;
    free(x->pools);
    free(x->backends);
    free(x->keys);
    free(x->routes);
    free(x);
}

void config_release(struct config *c)
{
    ext_free(c->ext);
    c->ext = NULL;
}

int config_ext_dup(struct config *c)
{
    const struct config_ext *x = c->ext;
    if (!x)
        return 0;
    struct config_ext *y = calloc(1, sizeof(*y));
    if (!y)
        return -1;
    bool fail = false;
    *y = *x;
    y->pools = dup_array(x->pools, x->npools, sizeof(*x->pools), &fail);
    y->backends =
        dup_array(x->backends, x->nbackends, sizeof(*x->backends), &fail);
    y->keys = dup_array(x->keys, x->nkeys, sizeof(*x->keys), &fail);
    y->routes = dup_array(x->routes, x->nroutes, sizeof(*x->routes), &fail);
    if (fail) {
        ext_free(y);
        return -1;
    }
    c->ext = y;
    return 0;
}

/* ---- section names --------------------------------------------------- */

/* A pool or route name: letters, digits, '_' and '-' (a '.' would be read
 * as the section separator). */
static bool valid_name(const char *s, size_t n)
{
    if (n == 0 || n >= sizeof(((struct ext_pool *)0)->name))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
            return false;
    return true;
}

int config_ext_section(const char *section, char *name, size_t len)
{
    int kind;
    const char *rest;
    if (strncasecmp(section, "pool.", 5) == 0) {
        kind = CONFIG_SECTION_POOL;
        rest = section + 5;
    } else if (strncasecmp(section, "route.", 6) == 0) {
        kind = CONFIG_SECTION_ROUTE;
        rest = section + 6;
    } else {
        return 0;
    }
    size_t n = strlen(rest);
    const char *dot = strchr(rest, '.');
    if (dot && kind == CONFIG_SECTION_POOL &&
        strcasecmp(dot, ".backends") == 0) {
        kind = CONFIG_SECTION_POOL_BACKENDS;
        n = (size_t)(dot - rest);
    }
    if (!valid_name(rest, n) || n >= len)
        return 0;
    memcpy(name, rest, n);
    name[n] = '\0';
    return kind;
}

/* ---- loading --------------------------------------------------------- */

/* Whether key k may be set per pool: everything that is about choosing
 * and reaching backends, nothing about the listener or the log. */
static bool pool_key(const struct config_key *k)
{
    static const char *const sections[] = {"balancer", "health", "pool",
                                           "retry"};
    static const char *const keys[] = {"mode",
                                       "persistent",
                                       "connection",
                                       "max_retries",
                                       "max_conns",
                                       "max_queue",
                                       "queue_timeout_ms",
                                       "upstream_connect_ms",
                                       "upstream_ms",
                                       "resolve_interval_ms"};
    for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
        if (strcmp(k->section, sections[i]) == 0)
            return true;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strcmp(k->key, keys[i]) == 0)
            return true;
    return false;
}

const struct config_key *config_pool_key_find(const char *name)
{
    for (size_t i = 0; i < config_nkeys; i++)
        if (pool_key(&config_keys[i]) &&
            strcasecmp(config_keys[i].key, name) == 0)
            return &config_keys[i];
    return NULL;
}

static struct config_ext *ext_of(struct config *c)
{
    if (!c->ext)
        c->ext = calloc(1, sizeof(*c->ext));
    return c->ext;
}

/* The index of pool `name`, made when it is new; -1 when out of memory,
 * too many or the reserved name. */
static int pool_index(struct config_ext *x, const char *name)
{
    for (size_t i = 0; i < x->npools; i++)
        if (strcmp(x->pools[i].name, name) == 0)
            return (int)i;
    struct ext_pool *p =
        grow(&x->pools, &x->npools, sizeof(*x->pools), EXT_MAX_POOLS);
    if (!p)
        return -1;
    strcpy(p->name, name); /* valid_name checked the length */
    return (int)(x->npools - 1);
}

static int add_pool_key(struct config_ext *x, int pool, const char *key,
                        const char *value, char *msg, size_t len)
{
    const struct config_key *k = config_pool_key_find(key);
    if (!k) {
        config_set_err(msg, len,
                       "%s: unknown key (a pool takes the keys of [balancer], "
                       "[health], [pool] and [retry], mode, persistent, "
                       "the upstream timeouts and limits)",
                       key);
        return -1;
    }
    /* checked now, against a scratch copy, so the line is reported */
    struct config *scratch = calloc(1, sizeof(*scratch));
    char what[CONFIG_TEXT_MAX];
    if (!scratch) {
        config_set_err(msg, len, "out of memory");
        return -1;
    }
    int rc = config_key_apply(scratch, k, value, what, sizeof(what));
    free(scratch);
    if (rc < 0) {
        config_set_err(msg, len, "%s: expected %s, got '%s'", key, what, value);
        return -1;
    }
    struct ext_key *e = NULL;
    for (size_t i = 0; i < x->nkeys && !e; i++)
        if (x->keys[i].pool == (unsigned)pool && x->keys[i].key == k)
            e = &x->keys[i]; /* a later line wins, as for global keys */
    if (!e && !(e = grow(&x->keys, &x->nkeys, sizeof(*x->keys), EXT_MAX_KEYS)))
        goto nomem;
    e->pool = (unsigned)pool;
    e->key = k;
    if (config_copy_str(e->value, sizeof(e->value), value) < 0) {
        config_set_err(msg, len, "%s: value too long", key);
        return -1;
    }
    return 0;
nomem:
    config_set_err(msg, len, "too many pool keys (or out of memory)");
    return -1;
}

static int add_pool_backend(struct config_ext *x, int pool, const char *id,
                            const char *spec, char *msg, size_t len)
{
    /* config_backend_add checks the id and the spec, in a one-pool view */
    struct config *one = calloc(1, sizeof(*one));
    if (!one) {
        config_set_err(msg, len, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < x->nbackends; i++)
        if (x->backends[i].pool == (unsigned)pool &&
            one->nbackends < CONFIG_MAX_BACKENDS)
            one->backends[one->nbackends++] = x->backends[i].b;
    size_t before = one->nbackends;
    int rc = config_backend_add(one, id, spec, false, "", msg, len);
    struct ext_backend *e = NULL;
    if (rc == 0 && one->nbackends == before + 1) {
        e = grow(&x->backends, &x->nbackends, sizeof(*x->backends),
                 EXT_MAX_POOLS * CONFIG_MAX_BACKENDS);
        if (e) {
            e->pool = (unsigned)pool;
            e->b = one->backends[before];
        } else {
            config_set_err(msg, len, "out of memory");
            rc = -1;
        }
    }
    free(one);
    return rc;
}

/* A host pattern in lower case: a name, or "*." and a name. */
static int set_host(struct config_route *r, const char *v, char *msg,
                    size_t len)
{
    size_t n = strlen(v);
    const char *name = strncmp(v, "*.", 2) == 0 ? v + 2 : v;
    bool ok = n > 0 && n < sizeof(r->host) && *name && name[0] != '.' &&
              name[strlen(name) - 1] != '.';
    for (const char *p = name; ok && *p; p++)
        ok = isalnum((unsigned char)*p) || *p == '-' || *p == '.' || *p == '_';
    if (!ok) {
        config_set_err(msg, len,
                       "host: expected a host name or *.name (no port), got "
                       "'%s'",
                       v);
        return -1;
    }
    for (size_t i = 0; i <= n; i++)
        r->host[i] = (char)tolower((unsigned char)v[i]);
    return 0;
}

static int add_route_key(struct config_ext *x, const char *route,
                         const char *key, const char *value, char *msg,
                         size_t len)
{
    struct config_route *r = NULL;
    for (size_t i = 0; i < x->nroutes && !r; i++)
        if (strcmp(x->routes[i].name, route) == 0)
            r = &x->routes[i];
    if (!r) {
        r = grow(&x->routes, &x->nroutes, sizeof(*x->routes), EXT_MAX_ROUTES);
        if (!r) {
            config_set_err(msg, len, "too many routes (or out of memory)");
            return -1;
        }
        strcpy(r->name, route);
        strcpy(r->path_prefix, "/");
    }
    if (strcasecmp(key, "host") == 0)
        return set_host(r, value, msg, len);
    if (strcasecmp(key, "path_prefix") == 0) {
        if (value[0] != '/' || strpbrk(value, " \t\r\n?#") ||
            config_copy_str(r->path_prefix, sizeof(r->path_prefix), value) <
                0) {
            config_set_err(msg, len,
                           "path_prefix: expected a path starting with '/' "
                           "(no blanks, '?' or '#'), got '%s'",
                           value);
            return -1;
        }
        return 0;
    }
    if (strcasecmp(key, "pool") == 0) {
        if (!valid_name(value, strlen(value))) {
            config_set_err(msg, len, "pool: expected a pool name, got '%s'",
                           value);
            return -1;
        }
        strcpy(r->pool, value);
        return 0;
    }
    config_set_err(msg, len, "%s: unknown key (host, path_prefix, pool)", key);
    return -1;
}

int config_ext_key(struct config *c, int kind, const char *name,
                   const char *key, const char *value, char *msg, size_t len)
{
    struct config_ext *x = ext_of(c);
    if (!x) {
        config_set_err(msg, len, "out of memory");
        return -1;
    }
    if (kind == CONFIG_SECTION_ROUTE)
        return add_route_key(x, name, key, value, msg, len);
    if (strcmp(name, CONFIG_DEFAULT_POOL) == 0) {
        config_set_err(msg, len,
                       "the pool named \"" CONFIG_DEFAULT_POOL "\" is "
                       "[backends] with the global keys");
        return -1;
    }
    int pool = pool_index(x, name);
    if (pool < 0) {
        config_set_err(msg, len, "more than %d pools (or out of memory)",
                       EXT_MAX_POOLS);
        return -1;
    }
    if (kind == CONFIG_SECTION_POOL_BACKENDS)
        return add_pool_backend(x, pool, key, value, msg, len);
    return add_pool_key(x, pool, key, value, msg, len);
}

void config_ext_declare(struct config *c, int kind, const char *name)
{
    struct config_ext *x = ext_of(c);
    if (x && kind != CONFIG_SECTION_ROUTE &&
        strcmp(name, CONFIG_DEFAULT_POOL) != 0)
        (void)pool_index(x, name); /* an empty [pool.x] still is a pool */
}

/* ---- reading --------------------------------------------------------- */

size_t config_pool_count(const struct config *c)
{
    return (c->nbackends > 0 ? 1 : 0) + (c->ext ? c->ext->npools : 0);
}

int config_pool_build(const struct config *c, size_t i, struct config *out,
                      char *err, size_t errlen)
{
    struct config_ext *x = c->ext;
    *out = *c;
    out->ext = NULL;
    if (c->nbackends > 0) {
        if (i == 0) {
            strcpy(out->pool, CONFIG_DEFAULT_POOL);
            return 0;
        }
        i--;
    }
    if (!x || i >= x->npools) {
        config_set_err(err, errlen, "no pool %zu", i);
        return -1;
    }
    strcpy(out->pool, x->pools[i].name);
    out->nbackends = 0;
    for (size_t j = 0; j < x->nbackends; j++)
        if (x->backends[j].pool == i && out->nbackends < CONFIG_MAX_BACKENDS)
            out->backends[out->nbackends++] = x->backends[j].b;
    char what[CONFIG_TEXT_MAX];
    for (size_t j = 0; j < x->nkeys; j++) {
        const struct ext_key *e = &x->keys[j];
        if (e->pool == i &&
            config_key_apply(out, e->key, e->value, what, sizeof(what)) < 0) {
            config_set_err(err, errlen, "[pool.%s] %s: expected %s, got '%s'",
                           out->pool, e->key->key, what, e->value);
            return -1;
        }
    }
    return 0;
}

size_t config_route_count(const struct config *c)
{
    return c->ext ? c->ext->nroutes : 0;
}

const struct config_route *config_route(const struct config *c, size_t i)
{
    return c->ext && i < c->ext->nroutes ? &c->ext->routes[i] : NULL;
}

/* ---- validation and output ------------------------------------------- */

static bool pool_exists(const struct config *c, const char *name)
{
    if (strcmp(name, CONFIG_DEFAULT_POOL) == 0)
        return c->nbackends > 0;
    for (size_t i = 0; c->ext && i < c->ext->npools; i++)
        if (strcmp(c->ext->pools[i].name, name) == 0)
            return true;
    return false;
}

int config_pools_validate(const struct config *c,
                          int (*validate)(const struct config *, char *,
                                          size_t),
                          char *err, size_t errlen)
{
    const struct config_ext *x = c->ext;
    if (!x)
        return 0;
    for (size_t i = 0; i < x->nroutes; i++) {
        const struct config_route *r = &x->routes[i];
        if (!r->pool[0]) {
            config_set_err(err, errlen,
                           "invalid configuration: [route.%s] has no pool",
                           r->name);
            return -1;
        }
        if (!pool_exists(c, r->pool)) {
            config_set_err(err, errlen,
                           "invalid configuration: [route.%s] pool %s: no "
                           "such pool (a [pool.%s.backends] section%s)",
                           r->name, r->pool, r->pool,
                           strcmp(r->pool, CONFIG_DEFAULT_POOL) == 0
                               ? ", or [backends] for the default pool"
                               : "");
            return -1;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(x->routes[j].host, r->host) == 0 &&
                strcmp(x->routes[j].path_prefix, r->path_prefix) == 0) {
                config_set_err(err, errlen,
                               "invalid configuration: [route.%s] and "
                               "[route.%s] match the same host '%s' and "
                               "path_prefix '%s'",
                               x->routes[j].name, r->name, r->host,
                               r->path_prefix);
                return -1;
            }
    }
    struct config *one = malloc(sizeof(*one));
    if (!one) {
        config_set_err(err, errlen, "out of memory");
        return -1;
    }
    int rc = 0;
    size_t first = c->nbackends > 0 ? 1 : 0;
    for (size_t i = first; rc == 0 && i < config_pool_count(c); i++) {
        char msg[512];
        rc = config_pool_build(c, i, one, err, errlen);
        if (rc == 0 && one->nbackends == 0) {
            config_set_err(err, errlen,
                           "invalid configuration: pool %s has no backends "
                           "(add a [pool.%s.backends] section)",
                           one->pool, one->pool);
            rc = -1;
        } else if (rc == 0 && validate(one, msg, sizeof(msg)) < 0) {
            config_set_err(err, errlen, "pool %s: %s", one->pool, msg);
            rc = -1;
        }
    }
    free(one);
    return rc;
}

void config_pools_print(const struct config *c, FILE *out)
{
    const struct config_ext *x = c->ext;
    for (size_t i = 0; x && i < x->npools; i++) {
        fprintf(out, "\n[pool.%s]\n", x->pools[i].name);
        for (size_t j = 0; j < x->nkeys; j++)
            if (x->keys[j].pool == i)
                fprintf(out, "%s = %s\n", x->keys[j].key->key,
                        x->keys[j].value);
        fprintf(out, "\n[pool.%s.backends]\n", x->pools[i].name);
        for (size_t j = 0; j < x->nbackends; j++)
            if (x->backends[j].pool == i)
                config_backend_print(&x->backends[j].b, out);
    }
    for (size_t i = 0; x && i < x->nroutes; i++) {
        const struct config_route *r = &x->routes[i];
        fprintf(out, "\n[route.%s]\n", r->name);
        if (r->host[0])
            fprintf(out, "host = %s\n", r->host);
        fprintf(out, "path_prefix = %s\npool = %s\n", r->path_prefix, r->pool);
    }
}
