/*
 * cpulist: parsing CPU lists (include/cpulist.h).
 */
#include "cpulist.h"

#include <ctype.h>
#include <stdlib.h>

#define CPU_NUM_MAX 1023

/* One decimal CPU number at *p; -1 when there is none or it is too big. */
static long number(const char **p)
{
    if (!isdigit((unsigned char)**p))
        return -1;
    long v = 0;
    while (isdigit((unsigned char)**p)) {
        v = v * 10 + (**p - '0');
        if (v > CPU_NUM_MAX)
            return -1;
        (*p)++;
    }
    return v;
}

int cpulist_parse(const char *text, int *cpus, size_t max)
{
    size_t n = 0;
    const char *p = text;
    if (*p == '\0')
        return 0;
    for (;;) {
        while (*p == ' ')
            p++;
        long lo = number(&p), hi = lo;
        if (lo < 0)
            return -1;
        if (*p == '-') {
            p++;
            hi = number(&p);
            if (hi < lo)
                return -1;
        }
        for (long c = lo; c <= hi; c++) {
            if (n == max)
                return -1;
            for (size_t i = 0; i < n; i++)
                if (cpus[i] == c)
                    return -1;
            cpus[n++] = (int)c;
        }
        while (*p == ' ')
            p++;
        if (*p == '\0')
            return (int)n;
        if (*p++ != ',')
            return -1;
    }
}
