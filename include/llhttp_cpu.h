/*
 * llhttp_cpu: the two builds of llhttp.c on x86-64 (LLHTTP_SSE42=1 in the
 * Makefile), one of which src/llhttp_cpu.c picks for this CPU.
 */
#ifndef LB_LLHTTP_CPU_H
#define LB_LLHTTP_CPU_H

#include <llhttp.h>

/* The two builds of llhttp.c (the Makefile renames their entry points). */
int llhttp__internal_execute_base(llhttp__internal_t *s, const char *p,
                                  const char *endp);
int llhttp__internal_execute_sse42(llhttp__internal_t *s, const char *p,
                                   const char *endp);

#endif
