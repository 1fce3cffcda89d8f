/*
 * log: stderr logging with a monotonic-free wall timestamp.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int log_verbosity = 1;
char log_tag[16];

static void vlog(const char *level, const char *fmt, va_list ap, int err)
{
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    char msg[1024];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (err)
        fprintf(stderr, "%s %s%s %s: %s\n", ts, log_tag, level, msg,
                strerror(err));
    else
        fprintf(stderr, "%s %s%s %s\n", ts, log_tag, level, msg);
}

void log_debug(const char *fmt, ...)
{
    if (log_verbosity < 2)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog("debug", fmt, ap, 0);
    va_end(ap);
}

void log_info(const char *fmt, ...)
{
    if (log_verbosity < 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog("info", fmt, ap, 0);
    va_end(ap);
}

void log_warnx(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog("warn", fmt, ap, 0);
    va_end(ap);
}

void log_warn(const char *fmt, ...)
{
    int err = errno;
    va_list ap;
    va_start(ap, fmt);
    vlog("warn", fmt, ap, err);
    va_end(ap);
}

void log_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog("fatal", fmt, ap, 0);
    va_end(ap);
    exit(1);
}
