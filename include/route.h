/*
 * route: which pool serves a request, from its Host and its path.
 *
 * Matching order, first match wins:
 *   1. routes whose host is the request's host exactly;
 *   2. routes whose host is "*.suffix" and the request's host ends in
 *      ".suffix" (any depth), the longest suffix first;
 *   3. routes without a host;
 *   4. the default pool ([backends]), when there is one.
 * Within 1-3, the longest path_prefix that the path starts with wins.  The
 * host is compared in lower case without its port and trailing dot.
 *
 * Nothing matching is ROUTE_MISDIRECTED (answered 421) when no route
 * names the host at all, so this listener does not serve that host, and
 * ROUTE_NOT_FOUND (404) when routes for the host exist but none of their
 * prefixes fits the path.
 *
 * Exact hosts and wildcard suffixes are found through one hash table, so
 * a lookup costs a hash of the host (and of each of its parent domains
 * while wildcards exist) whatever the number of routes.  Pure code.
 */
#ifndef LB_ROUTE_H
#define LB_ROUTE_H

#include <stddef.h>

struct config_route;
struct route_table;

#define ROUTE_NOT_FOUND (-1)
#define ROUTE_MISDIRECTED (-2)

/* Builds the table for n routes whose pool names are looked up in
 * pools[0..npools-1]; default_pool is the index of the default pool or -1.
 * NULL when out of memory or a route names a pool not in pools (err says
 * which). */
struct route_table *route_table_create(const struct config_route *routes,
                                       size_t n, const char *const *pools,
                                       size_t npools, int default_pool,
                                       char *err, size_t errlen);
void route_table_destroy(struct route_table *t);

/* The pool index for a request, or ROUTE_NOT_FOUND / ROUTE_MISDIRECTED.
 * host (may be NULL: no Host header) is the header's value as sent. */
int route_lookup(const struct route_table *t, const char *host, size_t hostlen,
                 const char *path, size_t pathlen);

#endif
