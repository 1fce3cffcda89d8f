/*
 * upstream: the backend table (addresses), per-backend pools of idle
 * keep-alive connections (LIFO, bounded, idle timeout, closed-by-peer
 * detection) and non-blocking connect.  It hands out connections and knows
 * nothing of requests.
 */
#ifndef LB_UPSTREAM_H
#define LB_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "loop.h"
#include "transport.h"

struct config;
struct upstream;

/* One upstream connection.  While it is handed out, the holder sets io.fn
 * and io.ctx; while idle the pool does.  Its bytes move through tr (plain
 * TCP, or TLS to a backend marked ",tls", whose state travels with the
 * connection into the pool and out again). */
struct upstream_conn {
    struct loop_io io;
    const struct transport *tr;
    void *tr_state;
    uint64_t idle_since_us; /* loop time it entered the pool */
    struct upstream *up;
    size_t backend;
    unsigned gen; /* the slot's generation when it was made */
    struct upstream_conn *prev, *next; /* idle list of the backend */
    bool connected;   /* usable: connect() (and a TLS handshake) done */
    bool tls;         /* a TLS handshake follows the connect */
    bool handshaking; /* ... and is under way */
    bool tls_failed;  /* the TLS handshake failed (counted and logged) */
    bool nodelay;     /* TCP_NODELAY set (or Unix socket) */
    uint16_t prelen;  /* bytes of pre still to send */
    uint8_t *pre;     /* a preamble (PROXY protocol header) that must precede
                         the first request, while the connect is in progress */
};

/* Builds the backend table from the config (resolving addresses) and the
 * pools, with room for CONFIG_MAX_BACKENDS slots: backend i of the config is
 * slot i.  Returns NULL with a message in err on failure. */
struct upstream *upstream_create(struct loop *loop, const struct config *cfg,
                                 char *err, size_t errlen);
/* Makes the TLS context of the backends that upstream_add is asked to
 * reach over TLS, from cfg's upstream_tls_* keys (upstream_create does
 * when cfg has such a backend; a pool whose only TLS backends are names
 * calls it itself).  0, or -1 with the reason (the CA file) in err. */
int upstream_enable_tls(struct upstream *up, const struct config *cfg,
                        char *err, size_t errlen);
/* Closes every idle connection and frees the table; handed-out connections
 * must have been released before.  NULL is a no-op. */
void upstream_destroy(struct upstream *up);

/* Number of slots, live and removed (see upstream_live). */
size_t upstream_count(const struct upstream *up);
/* Whether slot idx holds a backend (not removed). */
bool upstream_live(const struct upstream *up, size_t idx);
/* A slot's backend id and address ("host:port", "[v6]:port",
 * "unix:PATH"); a removed slot keeps them until it is reused. */
const char *upstream_id(const struct upstream *up, size_t idx);
const char *upstream_addr(const struct upstream *up, size_t idx);
/* Puts backend `id` at `addr` ("ADDR:PORT" or "unix:PATH", as in the
 * configuration) into slot idx, which must be free (removed, or the next
 * one after the last).  tls_host NULL: plain TCP; else TLS, with the host
 * name the backend was configured or resolved by ("" for a numeric
 * address), sent as SNI and checked against its certificate (unless
 * [pool] upstream_tls_sni overrides both; a numeric address is checked
 * against the certificate's IP addresses).  Connections of a previous
 * occupant that are still handed out are closed when released, never
 * pooled.  Returns 0, or -1 with a message in err (bad address, idx taken
 * or out of range, TLS asked of a pool without a TLS context). */
int upstream_add(struct upstream *up, size_t idx, const char *id,
                 const char *addr, const char *tls_host, char *err,
                 size_t errlen);
/* A slot's tls_host as given to upstream_add: NULL for plain TCP. */
const char *upstream_tls_host(const struct upstream *up, size_t idx);
/* Removes the backend of slot idx: its idle connections are closed, those
 * handed out are closed when released.  Returns 0, or -1 when idx is no
 * live slot. */
int upstream_remove(struct upstream *up, size_t idx);
size_t upstream_idle_count(const struct upstream *up, size_t idx);
/* Same, with the signature the admin module expects. */
size_t upstream_pool_idle(void *up, size_t idx);

/* Takes the most recently used idle connection of a backend (LIFO) that
 * has no unread byte waiting (others are closed on the way), or NULL when
 * none is left. */
struct upstream_conn *upstream_get_idle(struct upstream *up, size_t idx);

/* Outcome of upstream_connect. */
enum upstream_connect_result {
    UPSTREAM_CONNECTED,   /* usable now */
    UPSTREAM_IN_PROGRESS, /* wait for writability, then upstream_finish_connect
                           */
    UPSTREAM_REFUSED,     /* try another backend */
    UPSTREAM_ERROR,       /* local failure (EMFILE, ...); errno kept */
};

/* Starts a non-blocking connect to backend idx; *out receives a new
 * connection (not yet registered with interest) for CONNECTED and
 * IN_PROGRESS.  With `nodelay` false TCP_NODELAY is left for
 * upstream_nodelay(): a connection that carries one request written in one
 * send() never meets Nagle's delay, and the setsockopt is a syscall.
 * prelen bytes at pre (0 for none; at most UPSTREAM_PREAMBLE_MAX) are the
 * connection's first bytes: sent at once when connected (a failure then is
 * REFUSED), else kept for upstream_finish_connect or upstream_send_preamble.
 * A pooled connection carries its preamble once, from its first user. */
#define UPSTREAM_PREAMBLE_MAX 512
enum upstream_connect_result upstream_connect(struct upstream *up, size_t idx,
                                              bool nodelay, const void *pre,
                                              size_t prelen,
                                              struct upstream_conn **out);
/* Sends a kept preamble if the connect has completed: 1 nothing (more) to
 * send, 0 still connecting (errno EAGAIN), -1 error (errno; a short write
 * into a fresh socket is EIO). */
int upstream_send_preamble(struct upstream_conn *uc);
/* Sets TCP_NODELAY unless it is set; call before every write but a
 * connection's first. */
void upstream_nodelay(struct upstream_conn *uc);
/* After an event on an in-progress connect: 1 when connected (a kept
 * preamble sent, and for TLS the handshake finished), 0 while a TLS
 * handshake goes on (the watch's interest is set to what it waits for),
 * -1 with errno set when it failed (uc->tls_failed: the handshake). */
int upstream_finish_connect(struct upstream_conn *uc);

/* Gives a reusable connection back into its backend's pool (evicting the
 * least recently used one when full); closes it instead when pooling is
 * off, when its TLS holds decoded bytes, or, with check_socket, when
 * unread bytes wait in it. */
void upstream_release(struct upstream_conn *uc, bool check_socket);
/* Whether a handed-out connection kept by its holder between exchanges
 * can carry another: its slot still holds the backend it was made for
 * and no byte (nor a close) waits in it. */
bool upstream_conn_reusable(const struct upstream_conn *uc);
/* Closes a handed-out connection; with `reset` the peer gets an RST. */
void upstream_close(struct upstream_conn *uc, bool reset);

#endif
