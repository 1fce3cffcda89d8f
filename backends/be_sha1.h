/*
 * be_sha1: SHA-1 (FIPS 180-4) and base64 (RFC 4648), from libcrypto, for the
 * WebSocket handshake's Sec-WebSocket-Accept (RFC 6455 4.2.2).  SHA-1 is
 * used here as RFC 6455 uses it - a fixed transform, not a security
 * mechanism.
 */
#ifndef LB_BE_SHA1_H
#define LB_BE_SHA1_H

#include <stddef.h>
#include <stdint.h>

#define BE_SHA1_LEN 20

/* The SHA-1 digest of n bytes at p into out. */
void be_sha1(const void *p, size_t n, uint8_t out[BE_SHA1_LEN]);

/* Writes the base64 form of n bytes (with '=' padding) and a NUL into out,
 * which holds 4 * ((n + 2) / 3) + 1 bytes.  Returns its length. */
size_t be_base64(const uint8_t *p, size_t n, char *out);

#endif
