/*
 * admin_paths: what the admin serves from disk - the listing of the CSV
 * logs, request paths decoded and kept inside the served directory, query
 * parameters, content types.  See include/admin_render.h.
 */
#include "admin_render.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_LOG_FILES 1000

/* ---- /logs/ ---- */

bool admin_log_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n < 5 || n > 200 || name[0] == '.' || strcmp(name + n - 4, ".csv"))
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
                  ch == '-' || ch == '+';
        if (!ok)
            return false;
    }
    return true;
}

struct log_entry {
    char name[208];
    long long size;
    long long mtime;
};

/* Newest first: the latest modification first, then the greater name (a
 * timestamped name sorts by its start time). */
static int cmp_entry(const void *a, const void *b)
{
    const struct log_entry *x = a, *y = b;
    if (x->mtime != y->mtime)
        return x->mtime < y->mtime ? 1 : -1;
    return strcmp(y->name, x->name);
}

int admin_render_logs(struct admin_buf *b, const char *dir, bool json)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    struct log_entry *e = malloc(MAX_LOG_FILES * sizeof(*e));
    if (!e) {
        closedir(d);
        errno = ENOMEM;
        return -1;
    }
    size_t n = 0;
    struct dirent *de;
    while (n < MAX_LOG_FILES && (de = readdir(d)) != NULL) {
        struct stat st;
        if (!admin_log_name_ok(de->d_name) ||
            fstatat(dirfd(d), de->d_name, &st, 0) < 0 || !S_ISREG(st.st_mode))
            continue;
        memcpy(e[n].name, de->d_name, strlen(de->d_name) + 1); /* <= 200 */
        e[n].size = (long long)st.st_size;
        e[n].mtime = (long long)st.st_mtime;
        n++;
    }
    closedir(d);
    qsort(e, n, sizeof(*e), cmp_entry);
    /* Names are restricted to [A-Za-z0-9._+-]: nothing to escape. */
    if (json) {
        admin_buf_str(b, "{\"files\":[");
        for (size_t i = 0; i < n; i++)
            admin_buf_printf(b,
                             "%s{\"name\":\"%s\",\"size\":%lld,\"mtime\":%lld,"
                             "\"url\":\"/logs/%s\"}",
                             i ? "," : "", e[i].name, e[i].size, e[i].mtime,
                             e[i].name);
        admin_buf_str(b, "]}");
    } else {
        admin_buf_str(b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8"
                         "\"><title>lbproxy logs</title></head><body>\n"
                         "<h1>CSV request logs</h1>\n<table>\n"
                         "<tr><th>file</th><th>bytes</th><th>modified "
                         "(UTC)</th></tr>\n");
        for (size_t i = 0; i < n; i++) {
            char ts[32];
            time_t t = (time_t)e[i].mtime;
            struct tm tm;
            gmtime_r(&t, &tm);
            strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
            admin_buf_printf(b,
                             "<tr><td><a href=\"/logs/%s\">%s</a></td>"
                             "<td>%lld</td><td>%s</td></tr>\n",
                             e[i].name, e[i].name, e[i].size, ts);
        }
        admin_buf_str(b, "</table>\n</body></html>\n");
    }
    free(e);
    return 0;
}

/* ---- paths ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int admin_sanitize_path(const char *target, size_t len, char *out,
                        size_t outlen)
{
    if (len == 0 || target[0] != '/' || outlen < 2)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = target[i];
        if (ch == '?' || ch == '#')
            break;
        if (ch == '%') {
            if (i + 2 >= len)
                return -1;
            int hi = hexval(target[i + 1]), lo = hexval(target[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            ch = (char)(hi * 16 + lo);
            i += 2;
        }
        if ((unsigned char)ch < 0x20 || ch == 0x7f || ch == '\\')
            return -1;
        if (o + 1 >= outlen)
            return -1;
        out[o++] = ch;
    }
    out[o] = '\0';
    /* Check each segment after the leading slash. */
    const char *seg = out + 1;
    for (;;) {
        const char *end = strchr(seg, '/');
        size_t n = end ? (size_t)(end - seg) : strlen(seg);
        if (n == 0 && end)
            return -1; /* "//" */
        if (n > 0 && seg[0] == '.')
            return -1; /* ".", "..", hidden files */
        if (!end)
            break;
        seg = end + 1;
    }
    return 0;
}

bool admin_query_param(const char *target, size_t len, const char *name,
                       char *out, size_t outlen)
{
    const char *q = memchr(target, '?', len);
    if (!q || outlen == 0)
        return false;
    const char *end = target + len;
    size_t nlen = strlen(name);
    const char *p = q + 1;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *hash = memchr(p, '#', (size_t)(stop - p));
        if (hash)
            stop = hash;
        if ((size_t)(stop - p) >= nlen && !memcmp(p, name, nlen) &&
            (p + nlen == stop || p[nlen] == '=')) {
            const char *val = p + nlen == stop ? stop : p + nlen + 1;
            size_t n = (size_t)(stop - val);
            if (n >= outlen)
                n = outlen - 1;
            memcpy(out, val, n);
            out[n] = '\0';
            return true;
        }
        if (!amp || hash)
            break;
        p = amp + 1;
    }
    return false;
}

const char *admin_content_type(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".htm", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".map", "application/json"},
        {".png", "image/png"},
        {".svg", "image/svg+xml"},
        {".ico", "image/x-icon"},
        {".csv", "text/csv; charset=utf-8"},
        {".txt", "text/plain; charset=utf-8"},
        {".woff2", "font/woff2"},
        {".woff", "font/woff"},
    };
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (dot && (!slash || dot > slash))
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
            if (!strcasecmp(dot, types[i].ext))
                return types[i].type;
    return "application/octet-stream";
}
