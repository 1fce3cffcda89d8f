/*
 * admin_routes: what each admin path answers — the API documents, the
 * event post, the runtime API (admin_api.c), the logs and the static files
 * of the dashboard.  Connections and parsing are admin.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "admin_impl.h"
#include "config.h"
#include "http.h"

/* Serves a regular file (dir + "/" + rel), or a 404. */
static void serve_file(struct admin_conn *c, const char *dir, const char *rel,
                       const char *cache, bool head)
{
    char path[PATH_MAX + 16];
    int n = snprintf(path, sizeof(path), "%s%s", dir, rel);
    if (n < 0 || (size_t)n >= sizeof(path) - 16) {
        admin_respond_text(c, 404, "", "", head);
        return;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        if (path[n - 1] != '/') {
            /* A directory without its slash: relative links need it. */
            char loc[URL_MAX + 64];
            snprintf(loc, sizeof(loc), "Location: %.*s/\r\n",
                     (int)strcspn(c->url, "?#"), c->url);
            admin_respond_text(c, 301, loc, "", head);
            return;
        }
        strcpy(path + n, "index.html");
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd >= 0 && fstat(fd, &st) < 0) {
            close(fd);
            fd = -1;
        }
    }
    if (fd < 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        admin_respond_text(c, 404, "", "", head);
        return;
    }
    char extra[128];
    snprintf(extra, sizeof(extra), "Cache-Control: %s\r\n", cache);
    admin_put_head(c, 200, admin_content_type(path), (long long)st.st_size,
                   extra);
    if (head || st.st_size == 0) {
        close(fd);
        return;
    }
    c->file_fd = fd;
    c->file_off = 0;
    c->file_end = st.st_size;
}

/* POST /api/event: from this machine only (403), else admin_events_post. */
static void post_event(struct admin_conn *c)
{
    struct timespec ts;
    uint64_t id = 0;
    const char *why = "events are taken from loopback only";
    int status = 403;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (admin_peer_is_loopback(c->io.fd))
        status =
            admin_events_post(&c->a->events, c->url, c->url_len, c->body,
                              c->body_bytes, ADMIN_EVENT_TEXT_MAX + 2,
                              (double)ts.tv_sec + ts.tv_nsec / 1e9, &id, &why);
    if (status != 200) {
        admin_respond_text(c, status, "", why, false);
        return;
    }
    char body[48];
    int n =
        snprintf(body, sizeof(body), "{\"id\":%llu}", (unsigned long long)id);
    admin_respond(c, 200, "application/json", API_HEADERS, body, (size_t)n,
                  false);
}

/* The runtime API (admin_api.c): a JSON answer, never cached. */
static void api_request(struct admin_conn *c, const char *path, bool head)
{
    struct admin *a = c->a;
    size_t kept =
        c->body_bytes < sizeof(c->body) ? c->body_bytes : sizeof(c->body);
    struct admin_api_req rq = {
        .method = llhttp_method_name(llhttp_get_method(&c->parser)),
        .path = path,
        .auth = &c->auth,
        .body = c->body,
        .body_len = c->body_bytes,
        .body_kept = kept,
    };
    const char *extra = "";
    char hdr[256];
    int st = admin_api_handle(a->src, a->src->token, &rq, loop_now(a->loop),
                              &a->render, &extra);
    snprintf(hdr, sizeof(hdr), "Cache-Control: no-store\r\n%s", extra);
    admin_respond(c, st, "application/json", hdr, a->render.p, a->render.len,
                  head);
    a->render.len = 0;
}

void admin_handle_request(struct admin_conn *c)
{
    struct admin *a = c->a;
    const struct config *cfg = a->src->config;
    uint8_t method = llhttp_get_method(&c->parser);
    bool head = method == HTTP_HEAD;
    c->keep_alive = llhttp_should_keep_alive(&c->parser);
    char path[URL_MAX];
    if (admin_sanitize_path(c->url, c->url_len, path, sizeof(path)) < 0) {
        admin_respond_text(c, 400, "", "bad path", head);
        return;
    }
    if (admin_api_path(path)) {
        api_request(c, path, head);
        return;
    }
    if (method == HTTP_POST && !strcmp(path, "/api/event")) {
        post_event(c);
        return;
    }
    if (method != HTTP_GET && method != HTTP_HEAD) {
        admin_respond_text(c, 405, "Allow: GET, HEAD\r\n", "", false);
        return;
    }
    uint64_t now = loop_now(a->loop);
    if (!strcmp(path, "/api/stats")) {
        char arg[16];
        unsigned window = ADMIN_WINDOW_S;
        if (admin_query_param(c->url, c->url_len, "window", arg, sizeof(arg)))
            window = (unsigned)strtoul(arg, NULL, 10);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        admin_render_stats(&a->render, a->src, now,
                           (double)ts.tv_sec + ts.tv_nsec / 1e9, window);
        admin_events_append_json(&a->events, &a->render);
        admin_respond_render(c, "application/json", head);
    } else if (!strcmp(path, "/api/stream")) {
        admin_start_stream(c, head);
    } else if (!strcmp(path, "/metrics")) {
        admin_render_metrics(&a->render, a->src, now);
        admin_respond_render(c, "text/plain; version=0.0.4; charset=utf-8",
                             head);
    } else if (!strcmp(path, "/logs") || !strcmp(path, "/logs/")) {
        char fmt[16] = "";
        admin_query_param(c->url, c->url_len, "format", fmt, sizeof(fmt));
        bool json = !strcmp(fmt, "json");
        const char *dir = cfg ? cfg->logs_dir : "logs";
        if (admin_render_logs(&a->render, dir, json) < 0) {
            admin_respond_text(c, 404, "", "no logs directory", head);
            return;
        }
        admin_respond_render(
            c, json ? "application/json" : "text/html; charset=utf-8", head);
    } else if (!strncmp(path, "/logs/", 6)) {
        if (!admin_log_name_ok(path + 6)) {
            admin_respond_text(c, 404, "", "", head);
            return;
        }
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s/", cfg ? cfg->logs_dir : "logs");
        serve_file(c, dir, path + 6, "no-store", head);
    } else if (!strncmp(path, "/vendor/", 8)) {
        serve_file(c, a->vendor_root, path + 7, "no-cache", head);
    } else {
        serve_file(c, cfg ? cfg->dashboard_dir : "dashboard", path, "no-cache",
                   head);
    }
}
