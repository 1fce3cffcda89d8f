/*
 * hashkey: what the `hash` policy hashes - the `[balancer] hash_key` spec
 * (a header, a cookie, the client address or the path) parsed once at
 * configuration time, and the 64-bit key of one request computed from its
 * parsed head.  Pure functions over spans: no sockets, no allocation.
 *
 * A request that lacks what the spec names (no such header, no such
 * cookie, or an empty value) is keyed by the client address instead, so
 * that one client's keyless requests still stick to one backend.
 */
#ifndef LB_HASHKEY_H
#define LB_HASHKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct http_head;

/* Where the key comes from. */
enum hashkey_kind {
    HASHKEY_CLIENT, /* the client's address (no port) */
    HASHKEY_PATH,   /* the request target's path, without ?query */
    HASHKEY_HEADER, /* the first value of a named header field */
    HASHKEY_COOKIE, /* a named cookie of the Cookie field(s) */
};
/* "client", "path", "header", "cookie". */
const char *hashkey_kind_str(enum hashkey_kind k);

#define HASHKEY_NAME_MAX 63

/* A parsed hash_key spec. */
struct hashkey {
    int kind;          /* enum hashkey_kind */
    unsigned name_len; /* header or cookie name length, else 0 */
    char name[HASHKEY_NAME_MAX + 1];
};

/* Parses "client", "path", "header:NAME" or "cookie:NAME" (the words in
 * any case; NAME an HTTP token of 1..HASHKEY_NAME_MAX characters).  Fills
 * *k (zeroed first) and returns 0, or -1 when spec is none of these. */
int hashkey_parse(const char *spec, struct hashkey *k);
/* Writes the spec back as hashkey_parse reads it; returns buf. */
const char *hashkey_format(const struct hashkey *k, char *buf, size_t len);

/* The 64-bit hash of len bytes: FNV-1a, then a finalising mix so that
 * every input bit reaches every output bit. */
uint64_t hashkey_hash(const void *p, size_t len);

/* The key of a request: the hash of what k names in head h (whose values
 * are spans into h->base), or of client[0..client_len) when it is absent.
 * *used (may be NULL) tells which source gave the key. */
uint64_t hashkey_of(const struct hashkey *k, const struct http_head *h,
                    const char *client, size_t client_len,
                    enum hashkey_kind *used);

/* Finds cookie `name` in one Cookie field value (hostile input: any bytes,
 * bounded by len): pairs split on ';', blanks around them ignored, a
 * value in double quotes unquoted.  True with *off and *vlen set (relative to
 * v) when found with a non-empty value. */
bool hashkey_cookie(const char *v, size_t len, const char *name,
                    size_t name_len, size_t *off, size_t *vlen);

#endif
