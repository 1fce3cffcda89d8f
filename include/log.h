/*
 * log: tiny logging API for the daemons (stderr, with a level and a time).
 */
#ifndef LB_LOG_H
#define LB_LOG_H

#define LOG_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* 0 = warnings and errors only, 1 = info, 2 = debug. */
extern int log_verbosity;
/* Written before the level: "" in a single process, "master " and
 * "worker 0 " with --workers N. */
extern char log_tag[16];

void log_debug(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_info(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warnx(const char *fmt, ...) LOG_PRINTF(1, 2);
/* Appends ": strerror(errno)". */
void log_warn(const char *fmt, ...) LOG_PRINTF(1, 2);
/* Prints and exits with status 1 (start-up only). */
void log_fatal(const char *fmt, ...) LOG_PRINTF(1, 2) __attribute__((noreturn));

#endif
