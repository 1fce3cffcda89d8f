/*
 * csvlog: one CSV row per finished request, quoted with libcsv, buffered in
 * memory and written by plain write() when the buffer fills, on a loop timer
 * and at close.  A failed write (disk full, I/O error) is reported once and
 * drops records: logging never stalls or stops the proxy.
 *
 * Columns (header row written when the file is new or empty):
 * timestamp,client,method,path,backend_id,backend_addr,status,req_bytes,
 * resp_bytes,connect_ms,ttfb_ms,upstream_ms,total_ms,reused,mode,conn_model,
 * retries,error
 */
#ifndef LB_CSVLOG_H
#define LB_CSVLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;
struct record;
struct csvlog;

/* The header row, with its trailing newline. */
extern const char csvlog_header[];

/* Opens (creates, appends to) path; mode is the balancer mode written in
 * every row, persistent selects conn_model; flush_ms bounds how long a row
 * stays in memory (clamped to 1..1000).  loop may be NULL (then rows are
 * written only when the buffer fills and at close).  Returns NULL with errno
 * set on failure. */
struct csvlog *csvlog_open(struct loop *loop, const char *path,
                           const char *mode, bool persistent,
                           unsigned flush_ms);
/* Appends one row to the buffer (no system call unless the buffer is
 * full). */
void csvlog_write(struct csvlog *l, const struct record *r);
/* Writes out the buffer now.  Returns 0, or -1 with errno set when the write
 * failed (the buffered rows are then dropped). */
int csvlog_flush(struct csvlog *l);
/* Log rotation (SIGUSR1): flushes, reopens the same path (a header when the
 * file is new) and closes the old file.  Returns 0, or -1 with errno set when
 * the path cannot be opened (the old file stays in use). */
int csvlog_reopen(struct csvlog *l);
/* Points latest.csv beside path at path's file name (a relative symlink,
 * replaced atomically through a hidden temporary name), so that one name
 * always opens the newest run's log.  Returns 0, or -1 with errno set. */
int csvlog_link_latest(const char *path);
/* Flushes and closes; NULL is a no-op. */
void csvlog_close(struct csvlog *l);

/* Rows dropped because a write failed, since open. */
uint64_t csvlog_dropped(const struct csvlog *l);

/* Formats one row (with its newline) into buf; returns its length, or 0 if
 * it does not fit (len >= CSVLOG_ROW_MAX always fits). */
size_t csvlog_format(char *buf, size_t len, const struct record *r,
                     const char *mode, bool persistent);
/* A row is at most this long: the path is cut at CSVLOG_PATH_MAX bytes,
 * the other strings at 256. */
#define CSVLOG_PATH_MAX 8192
#define CSVLOG_ROW_MAX (2 * CSVLOG_PATH_MAX + 4096)

#endif
