/*
 * http: llhttp glue, request checks, header rewrite and error responses.
 * Pure functions over buffers: no sockets, no event loop, so every rule here
 * is unit-testable.
 *
 * Header names and values are spans (offset + length) into the buffer the
 * head was parsed from; nothing is copied until a head is rebuilt.
 */
#ifndef LB_HTTP_H
#define LB_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <llhttp.h>

struct http_span {
    uint32_t off, len;
};

/* The header fields lbproxy gives a meaning to, recognised once per field
 * when its name is complete (so the checks and rebuilds switch on a kind
 * instead of comparing names again). */
enum http_hdr {
    HH_OTHER,
    HH_HOST,
    HH_CONTENT_LENGTH,
    HH_TRANSFER_ENCODING,
    HH_CONNECTION,
    HH_KEEP_ALIVE,
    HH_PROXY_CONNECTION,
    HH_TE,
    HH_TRAILER,
    HH_UPGRADE,
    HH_EXPECT,
    HH_X_FORWARDED_FOR,
    HH_X_FORWARDED_PROTO,
    HH_VIA,
    HH_X_REQUEST_ID,
    HH_EMPTY_NAME, /* ": value": llhttp admits it, a request check refuses it */
};

/* Hop-by-hop fields (RFC 9110 7.6.1; Content-Length and Transfer-Encoding
 * are rewritten by the framing rules), as a mask of 1 << kind. */
#define HTTP_HOP_BY_HOP                                                        \
    ((1u << HH_CONTENT_LENGTH) | (1u << HH_TRANSFER_ENCODING) |                \
     (1u << HH_CONNECTION) | (1u << HH_KEEP_ALIVE) |                           \
     (1u << HH_PROXY_CONNECTION) | (1u << HH_TE) | (1u << HH_TRAILER) |        \
     (1u << HH_UPGRADE))

/* A field: its name, its value (from llhttp's first non-blank byte; the
 * checks drop the trailing blanks of every field they judge, those of a
 * field of kind HH_OTHER stay until http_value), its kind. */
struct http_header {
    struct http_span name, value;
    uint8_t kind; /* enum http_hdr */
    /* set while parsing: the line reads "Name: value\r\n" (one blank
     * after the ':', none after the value, in one piece), so a rebuild
     * may copy it as it is (false: it is rewritten in that shape, the same
     * bytes for a line that has it) */
    bool canon;
};

#define HTTP_MAX_CONN_TOKENS 16

/* A parsed message head.  `headers` points at caller-owned storage of
 * `max_headers` entries. */
struct http_head {
    const char *base; /* buffer the spans refer to */
    struct http_header *headers;
    struct http_header *cur; /* the field being read (headers + nheaders - 1) */
    unsigned nheaders, max_headers;
    struct http_span url;    /* request target */
    struct http_span reason; /* response reason phrase */
    uint32_t seen;           /* 1 << kind of every field present */
    unsigned host;           /* 1 + index of the first Host field, 0: none */
    bool host_again;         /* a second Host field came */
    unsigned length;         /* 1 + index of the Content-Length field, 0:
                                none (llhttp refuses a second) */
    uint32_t canon_bytes;    /* the bytes of the canon lines, "Name: value"
                                and CR LF each (the rebuilds' one-run test) */
    bool too_many;           /* more than max_headers were seen */
    bool loose;              /* a value starts past "Name: ": every field
                                is scanned (an obs-fold may hide there) */
    bool split_value;        /* a value came in pieces that do not touch
                                (obs-fold: llhttp joins the lines) */
    unsigned char last;      /* 0 none, 1 name, 2 value (span building) */
};

/* A field's value without its trailing blanks. */
static inline struct http_span http_value(const struct http_head *h,
                                          const struct http_header *hd)
{
    struct http_span v = hd->value;
    while (v.len > 0 && (h->base[v.off + v.len - 1] == ' ' ||
                         h->base[v.off + v.len - 1] == '\t'))
        v.len--;
    return v;
}

/* Resets a head before parsing a new message from `base`. */
void http_head_reset(struct http_head *h, const char *base);

/* llhttp span callbacks that fill a struct http_head found through
 * parser->data (the caller's struct must start with a struct http_head, or
 * set parser->data to the head itself).  Install them into settings. */
void http_settings_init(llhttp_settings_t *s);

/* What the proxy needs to know about a request, after http_request_check. */
struct http_request {
    int status;        /* 0 = acceptable, else the error status to answer */
    const char *error; /* short reason for the error answer / log */
    bool keep_alive;   /* client connection may persist after this one */
    bool has_body;
    bool chunked; /* body framed by chunks (re-chunked upstream) */
    uint64_t content_length;
    bool expect_continue;
    bool idempotent;
    /* NULL after the check; the caller may then set the request id sent
     * upstream in place of every X-Request-Id field (NULL: those fields
     * pass on unchanged). */
    const char *request_id;
    size_t request_id_len;
    /* Connection names "upgrade" and an Upgrade field is present on a
     * body-less HTTP/1.1 request that does not offer h2c: both travel
     * upstream, and a 101 may turn the session into a tunnel.  An Upgrade
     * on any other request is dropped like any hop-by-hop field. */
    bool upgrade;
    bool tls; /* came over TLS: X-Forwarded-Proto https (the caller sets it
                 after http_request_check) */
    struct http_span conn_tokens[HTTP_MAX_CONN_TOKENS];
    unsigned nconn_tokens;
};

/* Checks a request head that llhttp accepted (strict mode) against the
 * rules llhttp leaves to us: version 1.0/1.1, exactly one Host (1.1),
 * Transfer-Encoding exactly "chunked" and never on 1.0, Connection not
 * naming framing headers, body within max_body, target form.  Trims
 * trailing whitespace from values.  Fills *req; returns req->status. */
int http_request_check(const llhttp_t *p, struct http_head *h,
                       uint64_t max_body, struct http_request *req);

/* Builds the head sent upstream from the parsed fields: request line,
 * end-to-end headers (hop-by-hop ones and those named in Connection
 * removed, Expect dropped), X-Forwarded-For with client_ip appended,
 * X-Forwarded-Proto (https when req->tls), Via, X-Request-Id when
 * req->request_id is set, framing (Content-Length or chunked) and
 * "Connection: close" when close_upstream; for an upgrade request
 * (req->upgrade) the Upgrade fields and "Connection: upgrade" instead, as
 * the exchange ends in a tunnel or a response after which the connection
 * is not reused for a tunnel.  Returns the length written, or
 * -1 if it does not fit in cap. */
int http_build_request_head(char *out, size_t cap, const llhttp_t *p,
                            const struct http_head *h,
                            const struct http_request *req,
                            const char *client_ip, size_t client_ip_len,
                            bool close_upstream);

/* How the response body travels to the client. */
enum http_body_mode {
    HTTP_BODY_NONE,    /* HEAD, 1xx, 204, 304, or empty */
    HTTP_BODY_LENGTH,  /* Content-Length, copied as is */
    HTTP_BODY_CHUNKED, /* re-chunked from decoded data */
    HTTP_BODY_CLOSE,   /* delimited by closing the client connection */
};

struct http_response {
    int status; /* 0 = acceptable, else 502 */
    const char *error;
    enum http_body_mode mode;
    /* NULL after the check; the caller may then set a request id echoed to
     * the client in place of the backend's X-Request-Id fields. */
    const char *request_id;
    size_t request_id_len;
    struct http_span conn_tokens[HTTP_MAX_CONN_TOKENS];
    unsigned nconn_tokens;
    bool upstream_keep_alive; /* the backend allows reuse */
    bool interim;             /* 1xx (not 101): a final response follows */
    bool tunnel;              /* 101 to an upgrade request: bytes follow */
    uint64_t content_length;
};

/* Interim (1xx) responses relayed before one final response, at most: a
 * backend that sends more gets a 502, so it cannot hold a session. */
#define HTTP_MAX_INTERIM 32

/* Decides the framing of a response to a request of `method` for a client
 * speaking HTTP/1.minor, and checks the response head.  Call from
 * on_headers_complete of the response parser.  A 1xx other than 101 is
 * checked like any head and marked resp->interim (no body).  A 101 is
 * accepted only when the request asked to upgrade (`upgrade`) and the
 * answer names its protocol in Upgrade: then resp->tunnel (no body, no
 * reuse); any other 101 is refused.  Returns resp->status. */
int http_response_check(const llhttp_t *p, struct http_head *h, int method,
                        int client_minor, bool upgrade,
                        struct http_response *resp);

/* Builds the response head sent to the client.  keep_alive says whether
 * the client connection persists.  For an interim response (resp->interim)
 * it writes the 1xx as an HTTP/1.1 client reads it: end-to-end headers and
 * Via, no framing or Connection header; for a tunnel (resp->tunnel) the
 * Upgrade fields and "Connection: upgrade".  X-Request-Id is echoed on the
 * final response when resp->request_id is set.  Returns the length, or -1 if it
 * does not fit. */
int http_build_response_head(char *out, size_t cap, const llhttp_t *p,
                             const struct http_head *h,
                             const struct http_response *resp, int client_minor,
                             bool keep_alive);

/* Writes a complete small error response ("Connection: close" when close;
 * a 503 says "Retry-After: 1").  Returns its length (always fits in 512
 * bytes). */
int http_error_response(char *out, size_t cap, int status, bool close);

/* The answer to a request llhttp refused with err at offset err_off of
 * the len bytes it was given from buf: 505 for a well-formed but
 * unsupported HTTP version ("HTTP/1.2" at the end of the request line),
 * else 400. */
int http_parse_error_status(llhttp_errno_t err, const char *buf, size_t len,
                            size_t err_off);

/* The name of an llhttp method and its length. */
const char *http_method_name(int method, size_t *len);

/* The standard reason phrase of a status code ("Unknown" otherwise). */
const char *http_status_text(int status);

/* Formats the chunk-size line for n bytes ("1a2\r\n"); returns its length. */
int http_chunk_header(char *out, size_t n);

/* Appends len body bytes at out, as one chunk when chunked ("%zx\r\n" data
 * "\r\n") or as they are; out must have room for len + 20.  Returns the
 * bytes written (0 for len 0: an empty span is never a last chunk). */
size_t http_frame_body(char *out, const char *at, size_t len, bool chunked);

#endif
