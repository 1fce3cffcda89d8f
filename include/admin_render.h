/*
 * admin_render: the pure half of the admin module — a growable output
 * buffer, the /api/stats JSON, the Prometheus exposition, the /logs/ listing
 * and URL path sanitising.  No sockets, no loop: unit-testable.
 */
#ifndef LB_ADMIN_RENDER_H
#define LB_ADMIN_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "admin.h"
#include "log.h"

#ifndef LBPROXY_VERSION
#define LBPROXY_VERSION "0.1.0"
#endif

/* Default window (seconds) of rps and percentiles in /api/stats. */
#define ADMIN_WINDOW_S 10

/* A byte buffer that keeps its capacity; after an allocation failure `oom`
 * is set and further appends are ignored. */
struct admin_buf {
    char *p;
    size_t len, cap;
    bool oom;
};

void admin_buf_free(struct admin_buf *b);
/* Appends n bytes. */
void admin_buf_add(struct admin_buf *b, const void *s, size_t n);
void admin_buf_str(struct admin_buf *b, const char *s);
void admin_buf_printf(struct admin_buf *b, const char *fmt, ...)
    LOG_PRINTF(2, 3);
/* Removes the first n bytes. */
void admin_buf_consume(struct admin_buf *b, size_t n);

/* Renders the /api/stats document (one line, no newline) for monotonic time
 * now_us, wall clock wall_s (seconds since the epoch) and a window of
 * window_s seconds (1..60). */
void admin_render_stats(struct admin_buf *b, const struct admin_sources *src,
                        uint64_t now_us, double wall_s, unsigned window_s);
/* Renders the Prometheus text exposition (format 0.0.4). */
void admin_render_metrics(struct admin_buf *b, const struct admin_sources *src,
                          uint64_t now_us);
/* Renders the listing of the *.csv files of dir as HTML or JSON.  Returns
 * 0, or -1 with errno set when dir cannot be read. */
int admin_render_logs(struct admin_buf *b, const char *dir, bool json);

/* Decodes the path of a request target (query and fragment removed,
 * %XX decoded) into out.  Returns 0, or -1 when it is malformed or could
 * escape the served directory (a "." or ".." segment, any segment starting
 * with a dot, a backslash, a NUL or control byte, an empty segment). */
int admin_sanitize_path(const char *target, size_t len, char *out,
                        size_t outlen);
/* Copies the value of query parameter `name` of a request target into out
 * (not decoded); returns true if present. */
bool admin_query_param(const char *target, size_t len, const char *name,
                       char *out, size_t outlen);
/* True for a file name /logs/ may serve: [A-Za-z0-9._+-], no leading dot,
 * ending in ".csv". */
bool admin_log_name_ok(const char *name);
/* The Content-Type for a file name, by extension. */
const char *admin_content_type(const char *path);

#endif
