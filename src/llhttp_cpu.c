/*
 * llhttp_cpu: the build of llhttp this CPU runs.  On x86-64 the Makefile
 * compiles Debian's llhttp.c twice with its entry points renamed: a
 * baseline build (llhttp__internal_execute_base) and one for CPUs with
 * SSE4.2 (llhttp__internal_execute_sse42), whose header-value scan takes 16
 * bytes at a time.  llhttp_execute (api.c) calls llhttp__internal_execute,
 * which is defined here and goes to the one chosen once at start-up.  Both
 * builds come from the same source: a parser's state means the same to
 * either (tests/unit/test_llhttp_cpu.c holds them to the same results).
 */
#include <llhttp.h>

#include "llhttp_cpu.h"

typedef int (*execute_fn)(llhttp__internal_t *s, const char *p,
                          const char *endp);

static execute_fn execute = llhttp__internal_execute_base;

/* Before main, so before any worker or thread: set once, then only read. */
__attribute__((constructor)) static void choose(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2"))
        execute = llhttp__internal_execute_sse42;
}

int llhttp__internal_execute(llhttp__internal_t *s, const char *p,
                             const char *endp)
{
    return execute(s, p, endp);
}
