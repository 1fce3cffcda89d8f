/*
 * csvlog: buffered CSV request log.  Rows are formatted straight into one
 * 64 KiB buffer; the buffer always has room for a worst-case row because it
 * is written out (or dropped on error) before it could overflow.
 */
#include "csvlog.h"

#include <csv.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fmt.h"
#include "log.h"
#include "loop.h"
#include "record.h"

#define BUF_SIZE (64 * 1024)
#define STR_MAX 256 /* cut for strings other than the path */

const char csvlog_header[] =
    "timestamp,client,method,path,backend_id,backend_addr,status,req_bytes,"
    "resp_bytes,connect_ms,ttfb_ms,upstream_ms,total_ms,reused,mode,"
    "conn_model,retries,error,hedge,request_id,tls_version,tls_cipher,"
    "tls_resumed,tls_handshake_ms,pool\n";

struct csvlog {
    struct loop *loop;
    struct loop_timer timer;
    char *path;
    char mode[64];
    bool persistent;
    int fd;
    unsigned flush_ms;
    size_t len;   /* bytes in buf */
    size_t rows;  /* rows in buf */
    bool failing; /* the last write failed (reported once) */
    uint64_t dropped;
    uint64_t dropped_reported;
    char buf[BUF_SIZE];
};

/* ---- row formatting ---- */

struct out {
    char *p, *end;
    bool overflow;
};

static void put_mem(struct out *o, const char *s, size_t n)
{
    if ((size_t)(o->end - o->p) < n) {
        o->overflow = true;
        return;
    }
    memcpy(o->p, s, n);
    o->p += n;
}

static void put_ch(struct out *o, char c)
{
    put_mem(o, &c, 1);
}

static void put_u64(struct out *o, uint64_t v)
{
    char tmp[FMT_U64_LEN];
    size_t i = fmt_u64(tmp, v);
    put_mem(o, tmp + i, sizeof(tmp) - i);
}

/* Microseconds as milliseconds with 3 decimals; nothing when negative. */
static void put_ms(struct out *o, int64_t us)
{
    if (us < 0)
        return;
    put_u64(o, (uint64_t)us / 1000);
    char frac[4] = {'.', (char)('0' + us % 1000 / 100),
                    (char)('0' + us % 100 / 10), (char)('0' + us % 10)};
    put_mem(o, frac, sizeof(frac));
}

/* A field quoted by libcsv only when it needs it (so most rows stay easy to
 * grep); the cut keeps a row's size bounded. */
static void put_str(struct out *o, const char *s, size_t n, size_t max)
{
    if (!s)
        return;
    if (n > max)
        n = max;
    bool quote = n > 0 && (s[0] == ' ' || s[n - 1] == ' ');
    for (size_t i = 0; i < n && !quote; i++)
        quote = s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r';
    if (!quote) {
        put_mem(o, s, n);
        return;
    }
    size_t room = (size_t)(o->end - o->p);
    size_t need = csv_write(o->p, room, s, n);
    if (need > room) {
        o->overflow = true;
        return;
    }
    o->p += need;
}

static void put_cstr(struct out *o, const char *s)
{
    if (s)
        put_str(o, s, strlen(s), STR_MAX);
}

/* RFC 3339 UTC with microseconds; the seconds part is cached because
 * consecutive rows share it. */
static void put_time(struct out *o, uint64_t wall_us)
{
    static time_t cached_sec = (time_t)-1;
    static char cached[24];
    time_t sec = (time_t)(wall_us / 1000000u);
    if (sec != cached_sec) {
        struct tm tm;
        gmtime_r(&sec, &tm);
        strftime(cached, sizeof(cached), "%Y-%m-%dT%H:%M:%S.", &tm);
        cached_sec = sec;
    }
    put_mem(o, cached, strlen(cached));
    char us[7];
    uint64_t frac = wall_us % 1000000u;
    for (int i = 5; i >= 0; i--) {
        us[i] = (char)('0' + frac % 10);
        frac /= 10;
    }
    us[6] = 'Z';
    put_mem(o, us, sizeof(us));
}

size_t csvlog_format(char *buf, size_t len, const struct record *r,
                     const char *mode, bool persistent)
{
    struct out o = {buf, buf + len, false};
    put_time(&o, r->wall_us);
    put_ch(&o, ',');
    put_cstr(&o, r->client_addr);
    put_ch(&o, ',');
    put_cstr(&o, r->method);
    put_ch(&o, ',');
    if (r->path)
        put_str(&o, r->path, r->path_len, CSVLOG_PATH_MAX);
    put_ch(&o, ',');
    put_cstr(&o, r->backend_id);
    put_ch(&o, ',');
    put_cstr(&o, r->backend_addr);
    put_ch(&o, ',');
    put_u64(&o, r->status > 0 ? (uint64_t)r->status : 0);
    put_ch(&o, ',');
    put_u64(&o, r->req_bytes);
    put_ch(&o, ',');
    put_u64(&o, r->resp_bytes);
    put_ch(&o, ',');
    put_ms(&o, r->connect_us);
    put_ch(&o, ',');
    put_ms(&o, r->ttfb_us);
    put_ch(&o, ',');
    put_ms(&o, r->upstream_us);
    put_ch(&o, ',');
    put_ms(&o, r->total_us);
    put_ch(&o, ',');
    put_ch(&o, r->reused ? '1' : '0');
    put_ch(&o, ',');
    put_cstr(&o, mode);
    put_ch(&o, ',');
    put_cstr(&o, persistent ? "persistent" : "non_persistent");
    put_ch(&o, ',');
    put_u64(&o, r->retries);
    put_ch(&o, ',');
    put_cstr(&o, record_error_str(r->error));
    put_ch(&o, ',');
    put_cstr(&o, r->hedge == RECORD_HEDGE_WON    ? "won"
                 : r->hedge == RECORD_HEDGE_LOST ? "lost"
                                                 : "none");
    put_ch(&o, ',');
    put_cstr(&o, r->request_id);
    put_ch(&o, ',');
    put_cstr(&o, r->tls_version);
    put_ch(&o, ',');
    put_cstr(&o, r->tls_cipher);
    put_ch(&o, ',');
    if (r->tls_version)
        put_ch(&o, r->tls_resumed ? '1' : '0');
    put_ch(&o, ',');
    if (r->tls_version)
        put_ms(&o, r->tls_handshake_us);
    put_ch(&o, ',');
    put_cstr(&o, r->pool);
    put_ch(&o, '\n');
    return o.overflow ? 0 : (size_t)(o.p - buf);
}

/* ---- file ---- */

/* Writes all of [p, p+n); returns 0 or -1 with errno set. */
static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Opens the path for appending and writes the header if it is empty. */
static int open_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) < 0)
        goto fail;
    if (st.st_size == 0 &&
        write_all(fd, csvlog_header, sizeof(csvlog_header) - 1) < 0)
        goto fail;
    return fd;
fail:;
    int err = errno;
    close(fd);
    errno = err;
    return -1;
}

/* Writes the buffer to fd; on failure drops it and reports once. */
static int flush_to(struct csvlog *l, int fd)
{
    if (l->len == 0)
        return 0;
    int rc = write_all(fd, l->buf, l->len);
    if (rc < 0) {
        int err = errno;
        l->dropped += l->rows;
        if (!l->failing)
            log_warn("csvlog: %s: write failed, dropping log records", l->path);
        l->failing = true;
        errno = err;
    } else if (l->failing) {
        log_warnx("csvlog: %s: writing again; %llu records were dropped",
                  l->path,
                  (unsigned long long)(l->dropped - l->dropped_reported));
        l->dropped_reported = l->dropped;
        l->failing = false;
    }
    l->len = 0;
    l->rows = 0;
    return rc;
}

int csvlog_flush(struct csvlog *l)
{
    if (l->loop)
        loop_timer_cancel(l->loop, &l->timer);
    return flush_to(l, l->fd);
}

static void on_timer(struct loop *loop, struct loop_timer *t)
{
    (void)loop;
    csvlog_flush(t->ctx);
}

struct csvlog *csvlog_open(struct loop *loop, const char *path,
                           const char *mode, bool persistent, unsigned flush_ms)
{
    struct csvlog *l = malloc(sizeof(*l));
    if (!l)
        return NULL;
    memset(l, 0, offsetof(struct csvlog, buf));
    l->fd = -1;
    l->loop = loop;
    l->timer.fn = on_timer;
    l->timer.ctx = l;
    l->persistent = persistent;
    l->flush_ms = flush_ms < 1 ? 1 : flush_ms > 1000 ? 1000 : flush_ms;
    snprintf(l->mode, sizeof(l->mode), "%s", mode ? mode : "");
    l->path = strdup(path);
    if (!l->path)
        goto fail;
    l->fd = open_file(path);
    if (l->fd < 0)
        goto fail;
    return l;
fail:;
    int err = errno;
    free(l->path);
    free(l);
    errno = err;
    return NULL;
}

void csvlog_write(struct csvlog *l, const struct record *r)
{
    if (BUF_SIZE - l->len < CSVLOG_ROW_MAX)
        csvlog_flush(l);
    size_t n = csvlog_format(
        l->buf + l->len, BUF_SIZE - l->len, r, r->mode ? r->mode : l->mode,
        r->conn_model ? strcmp(r->conn_model, "persistent") == 0
                      : l->persistent);
    if (n == 0)
        return; /* cannot happen: the buffer has room for CSVLOG_ROW_MAX */
    l->len += n;
    l->rows++;
    if (l->loop && !loop_timer_armed(&l->timer))
        loop_timer_after(l->loop, &l->timer, (uint64_t)l->flush_ms * 1000);
}

int csvlog_reopen(struct csvlog *l)
{
    int fd = open_file(l->path);
    if (fd < 0) {
        log_warn("csvlog: %s: reopen failed, keeping the old file", l->path);
        return -1;
    }
    csvlog_flush(l); /* the rows buffered so far belong to the old file */
    close(l->fd);
    l->fd = fd;
    return 0;
}

int csvlog_link_latest(const char *path)
{
    char link[1024], tmp[1024];
    const char *slash = strrchr(path, '/');
    int dirlen = slash ? (int)(slash - path) + 1 : 0;
    const char *base = path + dirlen;
    if (base[0] == '\0' || strcmp(base, "latest.csv") == 0) {
        errno = EINVAL;
        return -1;
    }
    if (snprintf(link, sizeof(link), "%.*slatest.csv", dirlen, path) >=
            (int)sizeof(link) ||
        snprintf(tmp, sizeof(tmp), "%.*s.latest.csv.%ld", dirlen, path,
                 (long)getpid()) >= (int)sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    unlink(tmp);
    if (symlink(base, tmp) < 0)
        return -1;
    if (rename(tmp, link) < 0) {
        int err = errno;
        unlink(tmp);
        errno = err;
        return -1;
    }
    return 0;
}

void csvlog_close(struct csvlog *l)
{
    if (!l)
        return;
    csvlog_flush(l);
    if (l->fd >= 0)
        close(l->fd);
    free(l->path);
    free(l);
}

uint64_t csvlog_dropped(const struct csvlog *l)
{
    return l->dropped;
}
