/*
 * admin_api: the runtime API on the admin listener (docs/api.md): list the
 * pools and their backends, add and remove a backend, set its weight, drain
 * it, put it in or out of maintenance.  JSON in and out (cJSON); every call
 * needs `Authorization: Bearer <token>` with the token of
 * [proxy] admin_token_file, else 401 and nothing changes.  The changes go
 * through the backendset module, reached by the admin_control table.
 *
 * Pure of sockets: the admin module hands it a parsed request and sends
 * what it renders, so it is unit-testable.
 */
#ifndef LB_ADMIN_API_H
#define LB_ADMIN_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "admin.h"
#include "admin_render.h"

/* The largest request body the API reads (a bigger one is 413). */
#define ADMIN_API_BODY_MAX 4096
/* The longest Authorization value kept; a longer one never matches. */
#define ADMIN_API_AUTH_MAX 300
/* Token length bounds in the token file. */
#define ADMIN_API_TOKEN_MIN 16
#define ADMIN_API_TOKEN_MAX 255

/* The Authorization header of a request, gathered while parsing. */
struct admin_api_auth {
    char field[16];   /* the header name being parsed (truncated) */
    size_t field_len; /* may exceed sizeof(field): not Authorization */
    bool in_auth;     /* the value being parsed is Authorization's */
    unsigned count;   /* Authorization headers seen */
    char value[ADMIN_API_AUTH_MAX + 1];
    size_t value_len; /* may exceed ADMIN_API_AUTH_MAX: never matches */
};
/* Forgets what was gathered (a new request). */
void admin_api_auth_reset(struct admin_api_auth *a);
/* Feeds a span of a header name, a span of its value, and the end of the
 * value (the llhttp callbacks). */
void admin_api_auth_field(struct admin_api_auth *a, const char *at, size_t n);
void admin_api_auth_value(struct admin_api_auth *a, const char *at, size_t n);
void admin_api_auth_value_done(struct admin_api_auth *a);

/* One request to the API. */
struct admin_api_req {
    const char *method; /* "GET", "POST", ... */
    const char *path;   /* decoded, without the query */
    const struct admin_api_auth *auth;
    const char *body;
    size_t body_len;  /* as received (may exceed body_kept) */
    size_t body_kept; /* bytes of body present */
};

/* Whether a path belongs to the API ("/api/pools" and below). */
bool admin_api_path(const char *path);
/* Answers one request: renders the JSON body into out and returns the
 * status; *extra receives header lines for the response ("" or e.g.
 * "WWW-Authenticate: Bearer\r\n").  token NULL or "" means the API is off
 * (404).  A change is made only for a 2xx answer. */
int admin_api_handle(const struct admin_sources *src, const char *token,
                     const struct admin_api_req *rq, uint64_t now_us,
                     struct admin_buf *out, const char **extra);

/* Reads the token file: its first line, 16..255 bytes of visible ASCII.
 * A file that others may read or write is refused.  Returns 0 with the
 * token in buf, or -1 with a message in err. */
int admin_api_read_token(const char *path, char *buf, size_t len, char *err,
                         size_t errlen);

#endif
