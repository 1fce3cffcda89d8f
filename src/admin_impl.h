/*
 * admin_impl: what admin.c (connections, parsing, the tick, the listener)
 * shares with admin_routes.c (what each path answers).  Not part of the
 * public interface (include/admin.h).
 */
#ifndef LB_ADMIN_IMPL_H
#define LB_ADMIN_IMPL_H

#include <limits.h>
#include <llhttp.h>
#include <stdbool.h>
#include <sys/types.h>

#include "admin.h"
#include "admin_api.h"
#include "admin_events.h"
#include "admin_render.h"
#include "loop.h"

#define MAX_CONNS 128
#define IN_SIZE 4096
#define MAX_HEAD 16384 /* request line + headers */
#define MAX_BODY 65536 /* admin requests carry no real body */
#define URL_MAX 2048
#define IDLE_US (30 * 1000000ull)
#define SSE_MAX_PENDING (256 * 1024) /* a slower subscriber skips events */
#define SEND_CHUNK (256 * 1024)      /* file bytes per writable event */
#define ACCEPT_BATCH 32
#define ADMIN_BACKLOG 128
#define REQUESTS_PER_EVENT 8 /* pipelined requests answered per event */
#define TICK_OFFSET_US 20000 /* tick just after each second turns */

struct admin_conn {
    struct admin *a;
    struct admin_conn *prev, *next;
    struct loop_io io;
    struct loop_timer timer;
    llhttp_t parser;
    char in[IN_SIZE];
    size_t in_len;
    char url[URL_MAX];
    size_t url_len;
    size_t head_bytes, body_bytes;
    char body[ADMIN_API_BODY_MAX + 2]; /* an event line or an API body */
    struct admin_api_auth auth;        /* the Authorization header */
    int too_large;                     /* 0, 414, 431 or 413 */
    bool msg_done; /* a request is complete and waits for handling */
    bool keep_alive;
    bool sse;
    bool peer_eof;
    bool close_after; /* close once the output is written */
    bool closed;
    struct admin_buf out;
    size_t out_off;
    int file_fd;
    off_t file_off, file_end;
};

struct admin {
    struct loop *loop;
    const struct admin_sources *src; /* the caller's: changes are seen */
    int fd;
    int port;
    struct loop_io io;
    struct loop_timer tick;
    struct loop_timer accept_resume;
    uint64_t last_accept_warn;
    struct admin_conn *conns;
    size_t nconns;
    llhttp_settings_t settings;
    struct admin_buf render;            /* scratch for rendered documents */
    uint64_t flow_retries, flow_hedges; /* the counters at the last tick */
    struct admin_events events;         /* POST /api/event */
    char vendor_root[PATH_MAX];
};

#define API_HEADERS                                                            \
    "Cache-Control: no-store\r\nAccess-Control-Allow-Origin: *\r\n"

/* Appends a status line and the common headers; `extra` is "" or complete
 * header lines. */
void admin_put_head(struct admin_conn *c, int status, const char *type,
                    long long length, const char *extra);
/* A complete response with len bytes of body (none for HEAD). */
void admin_respond(struct admin_conn *c, int status, const char *type,
                   const char *extra, const char *body, size_t len, bool head);
/* A text/plain "STATUS Reason: msg" response. */
void admin_respond_text(struct admin_conn *c, int status, const char *extra,
                        const char *msg, bool head);
/* A 200 with what is rendered in the admin's render buffer (500 after an
 * allocation failure), which it empties. */
void admin_respond_render(struct admin_conn *c, const char *type, bool head);
/* Turns the connection into a server-sent event stream. */
void admin_start_stream(struct admin_conn *c, bool head);
/* Answers the complete request parsed on c (admin_routes.c). */
void admin_handle_request(struct admin_conn *c);

#endif
