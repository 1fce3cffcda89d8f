/*
 * reqid: request ids (X-Request-Id).  A client's id is kept when it is
 * sane: one field, 1..REQID_MAX bytes of visible ASCII (0x21..0x7e) other
 * than ',' (no space, tab, control byte or list separator), so it can be
 * logged and forwarded as it came.  Otherwise lbproxy makes one: 128
 * random bits written as a UUID version 4 ("8-4-4-4-12" lowercase hex, 36
 * characters).  The random bits come from a fast generator (wyrand, 64
 * bits of state per call) seeded once from getrandom(GRND_NONBLOCK), never
 * from rand(); an id is unique, not a secret.  Pure but for that seed: no
 * socket, no loop.
 */
#ifndef LB_REQID_H
#define LB_REQID_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"

#define REQID_MAX 128     /* longest client id kept */
#define REQID_UUID_LEN 36 /* a generated one */

/* True when the n bytes at s are a sane id (the rule above). */
bool reqid_sane(const char *s, size_t n);

/* Writes a new UUIDv4 text into out (REQID_UUID_LEN characters and a
 * NUL). */
void reqid_generate(char out[REQID_UUID_LEN + 1]);

/* The id of a parsed request head: the client's X-Request-Id when there
 * is exactly one and it is sane, else a generated one.  Writes it with a
 * NUL into out and returns its length. */
size_t reqid_assign(const struct http_head *h, char out[REQID_MAX + 1]);

/* Seeds the generator explicitly (tests); without a call the first
 * reqid_generate seeds it from getrandom. */
void reqid_seed(unsigned long long seed);

#endif
