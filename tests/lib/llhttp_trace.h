/*
 * llhttp_trace: what one parse by one build of llhttp did, as a hash over
 * every callback (kind, offset, length) and the parser's state at the end,
 * so that the two builds (include/llhttp_cpu.h) can be held to the same
 * results.  Used by tests/unit/test_llhttp_cpu.c (fixed inputs) and
 * tests/fuzz/fuzz_llhttp_cpu.c (fuzzed ones).
 */
#ifndef LB_TEST_LLHTTP_TRACE_H
#define LB_TEST_LLHTTP_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <llhttp.h>

typedef int (*llhttp_execute_fn)(llhttp__internal_t *s, const char *p,
                                 const char *endp);

struct llhttp_trace {
    const char *base;
    bool pause_on_head; /* on_headers_complete pauses (llhttp_feed) */
    uint64_t hash;
    unsigned events;
    unsigned pauses; /* headers-complete pauses resumed */
    int err;
    long err_pos;
};

/* How a parse is fed: `piece` bytes per call (0: whole), and whether
 * on_headers_complete pauses the parser (as lbproxy's sessions do) to be
 * resumed where it stopped. */
struct llhttp_feed {
    size_t piece;
    bool pause_on_head;
};

/* Parses `data` as `type` with one build. */
struct llhttp_trace llhttp_trace_parse(llhttp_execute_fn exec,
                                       llhttp_type_t type, const char *data,
                                       size_t len, struct llhttp_feed feed);

/* Parses `data` with both builds; true when they did the same.  Otherwise
 * `why` (of `cap` bytes) says how they differed. */
bool llhttp_trace_same(llhttp_type_t type, const char *data, size_t len,
                       struct llhttp_feed feed, char *why, size_t cap);

#endif
