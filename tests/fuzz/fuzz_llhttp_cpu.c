/*
 * libFuzzer harness: the two builds of llhttp that lbproxy carries on
 * x86-64 (include/llhttp_cpu.h), the baseline and the SSE4.2 one that
 * src/llhttp_cpu.c picks on this machine, held to the same results.  The
 * other HTTP harnesses fuzz the baseline build; this one is what carries
 * their findings over to the build lbproxy runs.
 *
 * The first input byte picks how the rest is fed: bit 0 the parser type
 * (request or response), bit 1 a pause after each head, resumed where it
 * stopped, as lbproxy's sessions do; bits 2-7 the piece size (0: whole,
 * else 1..63 bytes per call).  Invariant: the same callbacks with the same
 * spans, the same pauses, the same error at the same place, and the same
 * parser state at the end (llhttp_trace.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "llhttp_trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t flags = data[0];
    llhttp_type_t type = (flags & 1) ? HTTP_RESPONSE : HTTP_REQUEST;
    struct llhttp_feed feed = {(size_t)(flags >> 2), (flags & 2) != 0};
    char why[256];
    if (!llhttp_trace_same(type, (const char *)data + 1, size - 1, feed, why,
                           sizeof(why))) {
        fprintf(stderr, "llhttp builds differ: %s\n", why);
        abort();
    }
    return 0;
}
