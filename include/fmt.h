/*
 * fmt: number formatting for hot paths, where snprintf's cost shows.
 */
#ifndef LB_FMT_H
#define LB_FMT_H

#include <stddef.h>
#include <stdint.h>

/* Room for any uint64_t in decimal. */
#define FMT_U64_LEN 20

/* Writes v in decimal at the end of buf and returns the index of its first
 * digit: the digits are buf[start .. FMT_U64_LEN). */
static inline size_t fmt_u64(char buf[FMT_U64_LEN], uint64_t v)
{
    size_t i = FMT_U64_LEN;
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return i;
}

#endif
