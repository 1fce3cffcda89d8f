/*
 * libFuzzer harness: the route table (src/route.c) on hostile Host values
 * and paths.  The input is "HOST\nPATH" (no newline: all host).  The
 * table's answer must equal a plain linear reference written from the
 * documented order (exact host, wildcards nearest first, host-less
 * routes, the default pool; the longest prefix within each; 421 when no
 * route names the host, else 404), with and without a default pool; and
 * it must not change with the host's case or an appended port.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "route.h"

static const char *const pools[] = {"default", "a", "b", "c", "d", "e"};
#define NP (sizeof(pools) / sizeof(pools[0]))

static const struct {
    const char *host, *prefix, *pool;
} spec[] = {
    {"api.example.com", "/v1/", "a"},
    {"api.example.com", "/v1/b/", "b"},
    {"*.example.com", "/", "c"},
    {"*.eu.example.com", "/x", "d"},
    {"", "/static/", "e"},
    {"", "/s", "a"},
    {"[::1]", "/", "b"},
    {"127.0.0.1", "/", "c"},
    {"*.com", "/deep/", "d"},
    {"x", "/", "e"},
};
#define NR (sizeof(spec) / sizeof(spec[0]))

static struct config_route routes[NR];
static struct route_table *tab[2];

static void build(void)
{
    char err[128];
    for (size_t i = 0; i < NR; i++) {
        snprintf(routes[i].name, sizeof(routes[i].name), "r%zu", i);
        snprintf(routes[i].host, sizeof(routes[i].host), "%s", spec[i].host);
        snprintf(routes[i].path_prefix, sizeof(routes[i].path_prefix), "%s",
                 spec[i].prefix);
        snprintf(routes[i].pool, sizeof(routes[i].pool), "%s", spec[i].pool);
    }
    for (int d = 0; d < 2; d++)
        if (!(tab[d] = route_table_create(routes, NR, pools, NP, d ? 0 : -1,
                                          err, sizeof(err))))
            abort();
}

static int pool_index(const char *name)
{
    for (size_t i = 0; i < NP; i++)
        if (strcmp(pools[i], name) == 0)
            return (int)i;
    abort();
}

/* The longest prefix among routes whose host is exactly the hl bytes at
 * h (hl 0: host-less routes); -1 none; *named says whether any route has
 * that host.  Host bytes are opaque (a NUL is a byte like another). */
static int best(const char *h, size_t hl, const char *path, size_t pl,
                int *named)
{
    int pool = -1;
    size_t longest = 0;
    for (size_t i = 0; i < NR; i++) {
        if (strlen(spec[i].host) != hl || memcmp(spec[i].host, h, hl) != 0)
            continue;
        *named = 1;
        size_t n = strlen(spec[i].prefix);
        if (n <= pl && memcmp(spec[i].prefix, path, n) == 0 &&
            (pool < 0 || n > longest)) {
            pool = pool_index(spec[i].pool);
            longest = n;
        }
    }
    return pool;
}

static int reference(const char *host, size_t hl, const char *path, size_t pl,
                     int def)
{
    char h[1100], w[1104];
    size_t n = 0;
    int named = 0, p;
    int v6 = hl > 0 && host[0] == '[';
    for (size_t i = 0; i < hl; i++) {
        if (!v6 && host[i] == ':')
            break;
        h[n++] = (char)tolower((unsigned char)host[i]);
        if (v6 && host[i] == ']')
            break;
    }
    while (n > 0 && h[n - 1] == '.')
        n--;
    int ok = n > 0 && n <= 255;
    if (ok && (p = best(h, n, path, pl, &named)) >= 0)
        return p;
    for (size_t i = 0; ok && i < n; i++) {
        if (h[i] != '.')
            continue;
        w[0] = '*';
        memcpy(w + 1, h + i, n - i);
        if ((p = best(w, n - i + 1, path, pl, &named)) >= 0)
            return p;
    }
    if ((p = best("", 0, path, pl, &named)) >= 0)
        return p;
    if (def >= 0)
        return def;
    return named ? ROUTE_NOT_FOUND : ROUTE_MISDIRECTED;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!tab[0])
        build();
    if (size > 1024)
        size = 1024;
    const char *s = (const char *)data;
    const char *nl = memchr(s, '\n', size);
    size_t hl = nl ? (size_t)(nl - s) : size;
    const char *path = nl ? nl + 1 : "/";
    size_t pl = nl ? size - hl - 1 : 1;
    for (int d = 0; d < 2; d++) {
        int got = route_lookup(tab[d], s, hl, path, pl);
        int want = reference(s, hl, path, pl, d ? 0 : -1);
        if (got != want) {
            fprintf(stderr, "host '%.*s' path '%.*s': got %d, want %d\n",
                    (int)hl, s, (int)pl, path, got, want);
            abort();
        }
        /* the same host in upper case, and with a port */
        char up[1100];
        size_t n = hl < 1000 ? hl : 1000;
        for (size_t i = 0; i < n; i++)
            up[i] = (char)toupper((unsigned char)s[i]);
        if (n == hl && !memchr(s, ':', hl) && hl > 0 && s[0] != '[') {
            memcpy(up + n, ":8080", 5);
            if (route_lookup(tab[d], up, n + 5, path, pl) != got)
                abort();
        }
    }
    return 0;
}
