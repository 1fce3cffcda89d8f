/*
 * cpulist: CPU lists as taskset and /sys spell them ("0,1", "0-3,6"), for
 * [proxy] worker_cpus.
 */
#ifndef LB_CPULIST_H
#define LB_CPULIST_H
#include <stddef.h>

#define CPULIST_MAX 64 /* CPUs a list may name */

/* Parses text into cpus[] (in the order written, ranges expanded, each CPU
 * number below 1024).  Returns how many, or -1 when the text is not a list
 * of that form, names more than max CPUs or names one twice.  "" is 0. */
int cpulist_parse(const char *text, int *cpus, size_t max);
#endif
