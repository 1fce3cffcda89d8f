/*
 * route: the route table (include/route.h).  One open-addressing hash
 * table holds every exact host and every wildcard suffix; each entry owns
 * a run of (prefix, pool) pairs, longest prefix first.  Routes without a
 * host form one more run.
 */
#include "route.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define ROUTE_HOST_MAX 255

struct rule {
    const char *prefix; /* into the table's copy of the routes */
    size_t prefix_len;
    int pool;
};

struct entry {
    const char *name; /* host, or wildcard suffix without "*." */
    size_t len;
    uint64_t hash;
    bool wildcard;
    unsigned first, n; /* its rules */
};

struct route_table {
    struct config_route *routes; /* owned copy */
    struct rule *rules;          /* grouped by entry, then the any-host run */
    struct entry *slots;         /* hash table, name == NULL: empty */
    size_t mask;
    size_t nroutes;
    unsigned any_first, any_n;
    bool has_wildcards;
    int default_pool;
};

static uint64_t hash_name(const char *s, size_t n, bool wildcard)
{
    uint64_t h = 0xcbf29ce484222325ull ^ (wildcard ? 0x9e37u : 0);
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h ^ (h >> 29);
}

static struct entry *slot_find(const struct route_table *t, const char *name,
                               size_t len, bool wildcard, uint64_t h)
{
    for (size_t i = h & t->mask;; i = (i + 1) & t->mask) {
        struct entry *e = &t->slots[i];
        if (!e->name)
            return e; /* the empty slot where it would go */
        if (e->hash == h && e->len == len && e->wildcard == wildcard &&
            memcmp(e->name, name, len) == 0)
            return e;
    }
}

static int pool_of(const char *name, const char *const *pools, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(pools[i], name) == 0)
            return (int)i;
    return -1;
}

/* Rules of one entry sort by entry, then longest prefix first. */
struct keyed {
    struct entry *e; /* NULL: any host */
    struct rule r;
};

static int cmp_keyed(const void *a, const void *b)
{
    const struct keyed *x = a, *y = b;
    if (x->e != y->e)
        return x->e ? (y->e ? (x->e < y->e ? -1 : 1) : -1) : 1;
    return x->r.prefix_len > y->r.prefix_len   ? -1
           : x->r.prefix_len < y->r.prefix_len ? 1
                                               : 0;
}

struct route_table *route_table_create(const struct config_route *routes,
                                       size_t n, const char *const *pools,
                                       size_t npools, int default_pool,
                                       char *err, size_t errlen)
{
    struct route_table *t = calloc(1, sizeof(*t));
    struct keyed *k = calloc(n ? n : 1, sizeof(*k));
    size_t cap = 8;
    while (cap < 2 * n + 2)
        cap *= 2;
    if (t) {
        t->default_pool = default_pool;
        t->nroutes = n;
        t->mask = cap - 1;
        t->routes = calloc(n ? n : 1, sizeof(*t->routes));
        t->rules = calloc(n ? n : 1, sizeof(*t->rules));
        t->slots = calloc(cap, sizeof(*t->slots));
    }
    if (!t || !k || !t->routes || !t->rules || !t->slots) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (n)
        memcpy(t->routes, routes, n * sizeof(*routes));
    for (size_t i = 0; i < n; i++) {
        const struct config_route *r = &t->routes[i];
        int pool = pool_of(r->pool, pools, npools);
        if (pool < 0) {
            snprintf(err, errlen, "route %s: no pool %s", r->name, r->pool);
            goto fail;
        }
        k[i].r = (struct rule){r->path_prefix, strlen(r->path_prefix), pool};
        if (!r->host[0])
            continue;
        bool wild = strncmp(r->host, "*.", 2) == 0;
        const char *name = wild ? r->host + 2 : r->host;
        size_t len = strlen(name);
        uint64_t h = hash_name(name, len, wild);
        struct entry *e = slot_find(t, name, len, wild, h);
        if (!e->name)
            *e = (struct entry){name, len, h, wild, 0, 0};
        t->has_wildcards |= wild;
        k[i].e = e;
    }
    qsort(k, n, sizeof(*k), cmp_keyed);
    for (size_t i = 0; i < n; i++) {
        t->rules[i] = k[i].r;
        struct entry *e = k[i].e;
        if (e && e->n++ == 0)
            e->first = (unsigned)i;
        if (!e && t->any_n++ == 0)
            t->any_first = (unsigned)i;
    }
    free(k);
    return t;
fail:
    free(k);
    route_table_destroy(t);
    return NULL;
}

void route_table_destroy(struct route_table *t)
{
    if (!t)
        return;
    free(t->routes);
    free(t->rules);
    free(t->slots);
    free(t);
}

/* The host in lower case without its port and trailing dots, into
 * name[cap]; its length, 0 when it does not fit (then it matches only
 * host-less routes). */
static size_t host_key(const char *host, size_t hostlen, char *name, size_t cap)
{
    size_t len = 0;
    bool ipv6 = hostlen > 0 && host[0] == '[';
    for (size_t i = 0; i < hostlen; i++) {
        char ch = host[i];
        if (ch == ':' && !ipv6)
            break; /* the port */
        if (len == cap)
            return 0;
        name[len++] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
        if (ch == ']' && ipv6)
            break;
    }
    while (len > 0 && name[len - 1] == '.')
        len--;
    return len;
}

static int match_run(const struct route_table *t, unsigned first, unsigned n,
                     const char *path, size_t pathlen)
{
    for (unsigned i = first; i < first + n; i++) {
        const struct rule *r = &t->rules[i];
        if (r->prefix_len <= pathlen &&
            memcmp(r->prefix, path, r->prefix_len) == 0)
            return r->pool;
    }
    return -1;
}

int route_lookup(const struct route_table *t, const char *host, size_t hostlen,
                 const char *path, size_t pathlen)
{
    if (!t)
        return ROUTE_NOT_FOUND;
    if (t->nroutes == 0)
        return t->default_pool >= 0 ? t->default_pool : ROUTE_MISDIRECTED;
    char name[ROUTE_HOST_MAX + 1];
    size_t len = host ? host_key(host, hostlen, name, sizeof(name)) : 0;
    bool host_known = false;
    int pool;
    if (len > 0) {
        const struct entry *e =
            slot_find(t, name, len, false, hash_name(name, len, false));
        if (e->name) {
            host_known = true;
            if ((pool = match_run(t, e->first, e->n, path, pathlen)) >= 0)
                return pool;
        }
        /* the parent domains, nearest (longest suffix) first */
        for (size_t i = 0; t->has_wildcards && i < len; i++) {
            if (name[i] != '.')
                continue;
            const char *s = name + i + 1;
            size_t sl = len - i - 1;
            e = slot_find(t, s, sl, true, hash_name(s, sl, true));
            if (!e->name)
                continue;
            host_known = true;
            if ((pool = match_run(t, e->first, e->n, path, pathlen)) >= 0)
                return pool;
        }
    }
    if (t->any_n) {
        host_known = true;
        if ((pool = match_run(t, t->any_first, t->any_n, path, pathlen)) >= 0)
            return pool;
    }
    if (t->default_pool >= 0)
        return t->default_pool;
    return host_known ? ROUTE_NOT_FOUND : ROUTE_MISDIRECTED;
}
