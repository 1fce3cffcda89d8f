/*
 * libFuzzer harness: the PROXY protocol header parser (src/proxyproto.c)
 * on hostile bytes, fed as proxyaccept.c feeds it: the whole input, and
 * every prefix a slow sender could deliver.  Invariants: a header length
 * is within the input and the PROXYPROTO_MAX bound (v1 within 107 bytes);
 * "more" is only ever said of fewer bytes than the bound, and every prefix
 * of a complete header is "more" (so consuming a prefix never eats an HTTP
 * byte); the parse does not depend on bytes after the header; an address
 * read back through the builders of the same version parses to the same
 * address.
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxyproto.h"

static void same_addr(const struct sockaddr_storage *a,
                      const struct sockaddr_storage *b)
{
    size_t n = a->ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                       : sizeof(struct sockaddr_in6);
    if (a->ss_family != b->ss_family || memcmp(a, b, n) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4 * PROXYPROTO_MAX)
        size = 4 * PROXYPROTO_MAX;
    struct proxyproto_hdr h;
    int r = proxyproto_parse(data, size, &h);
    if (r == PROXYPROTO_MORE && size >= PROXYPROTO_MAX)
        abort();
    if (r < PROXYPROTO_INVALID || r > (int)size || r > PROXYPROTO_MAX)
        abort();
    if (r <= 0)
        return 0;
    if (h.version == 1 && r > PROXYPROTO_V1_MAX)
        abort();
    struct proxyproto_hdr again;
    for (size_t i = 0; i < (size_t)r; i++)
        if (proxyproto_parse(data, i, &again) != PROXYPROTO_MORE)
            abort();
    /* only the header's own bytes decide */
    uint8_t *copy = malloc((size_t)r);
    if (!copy)
        return 0;
    memcpy(copy, data, (size_t)r);
    if (proxyproto_parse(copy, (size_t)r, &again) != r ||
        again.has_addr != h.has_addr || again.version != h.version)
        abort();
    free(copy);
    if (!h.has_addr)
        return 0;
    uint8_t out[PROXYPROTO_V1_MAX + 1];
    int n =
        proxyproto_build(h.version, out, sizeof(out), (struct sockaddr *)&h.src,
                         (struct sockaddr *)&h.dst);
    if (n <= 0 || proxyproto_parse(out, (size_t)n, &again) != n ||
        !again.has_addr)
        abort();
    same_addr(&h.src, &again.src);
    same_addr(&h.dst, &again.dst);
    return 0;
}
