/*
 * tls: TLS termination with OpenSSL.  Two parts:
 *
 * - the server contexts of one configuration (src/tls.c): one SSL_CTX per
 *   certificate/key pair, the pair chosen by the client's SNI against each
 *   certificate's subjectAltName DNS names (RFC 6125 wildcards in the
 *   left-most label only; the first pair is the default), ALPN http/1.1,
 *   min version, cipher lists, tickets and a session cache (or neither),
 *   no renegotiation, no 0-RTT.  Built whole or not at all, so a reload
 *   with a bad certificate keeps the running contexts.
 *
 * - the acceptor and the transport (src/transport_tls.c): each accepted
 *   connection runs its handshake on the loop, with its own deadline, and
 *   only a finished handshake is handed on (to session_accept_tr) with
 *   transport_tls and its state.  Failures are counted by reason.
 *
 * No OpenSSL type appears here, so the rest of lbproxy includes this
 * without OpenSSL's headers.
 */
#ifndef LB_TLS_H
#define LB_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "transport.h"

struct config;
struct loop;
struct tls_server;
struct tls_acceptor;

/* Why a handshake failed. */
enum tls_fail {
    TLS_FAIL_TIMEOUT,  /* not finished within [tls] handshake_ms */
    TLS_FAIL_CLOSED,   /* the client closed or reset during it */
    TLS_FAIL_PROTOCOL, /* not TLS, or a malformed or unexpected message */
    TLS_FAIL_VERSION,  /* no protocol version in common */
    TLS_FAIL_CIPHER,   /* no cipher, group or signature in common */
    TLS_FAIL_OTHER,    /* anything else (memory, an alert we sent) */
    TLS_FAIL_COUNT,
};
const char *tls_fail_str(enum tls_fail f);

/* What the acceptor counted since start (it survives reloads). */
struct tls_counters {
    uint64_t handshakes;   /* finished */
    uint64_t resumed;      /* of those, resumed sessions */
    uint64_t tls13;        /* of those, TLS 1.3 (the rest TLS 1.2) */
    uint64_t handshake_us; /* summed over the finished ones */
    uint64_t failed[TLS_FAIL_COUNT];
    uint64_t in_progress; /* handshakes under way now */
};

/* ---- contexts (tls.c) ---- */

/* Loads every certificate/key pair of cfg and builds the contexts.
 * Returns a server holding one reference, or NULL with a message naming
 * the file and OpenSSL's reason in err. */
struct tls_server *tls_server_create(const struct config *cfg, char *err,
                                     size_t errlen);
/* Whether SNI host name `host` is covered by certificate name `pattern`
 * (case ignored; "*" only as the whole left-most label, one label). */
bool tls_name_matches(const char *pattern, const char *host);
/* Takes one more reference. */
struct tls_server *tls_server_ref(struct tls_server *ts);
/* Drops a reference; the last frees the contexts (open connections keep
 * OpenSSL's own references to theirs).  NULL is a no-op. */
void tls_server_put(struct tls_server *ts);

/* ---- acceptor and transport (transport_tls.c) ---- */

/* Called with a connection whose handshake finished: takes ownership of
 * fd and of state (released with tr->release).  Returns 0, or -1 when it
 * could not (it closed fd and released state). */
typedef int tls_ready_fn(void *arg, int fd, const struct sockaddr *sa,
                         socklen_t salen, const struct transport *tr,
                         void *state);
/* Called when a handshake ended without a connection (a slot is free). */
typedef void tls_gone_fn(void *arg);

/* Creates an acceptor on loop that hands finished connections to ready
 * and uses ts (one reference taken).  NULL when out of memory. */
struct tls_acceptor *tls_acceptor_create(struct loop *loop,
                                         struct tls_server *ts,
                                         unsigned handshake_ms,
                                         tls_ready_fn *ready, tls_gone_fn *gone,
                                         void *arg);
/* New connections use ts (a reference is taken; the old one is dropped
 * when no handshake uses it any more) and the new timeout. */
void tls_acceptor_swap(struct tls_acceptor *a, struct tls_server *ts,
                       unsigned handshake_ms);
/* Takes an accepted non-blocking socket and starts its handshake.
 * Returns 0, or -1 (fd closed) when out of memory. */
int tls_accept(struct tls_acceptor *a, int fd, const struct sockaddr *sa,
               socklen_t salen);
/* Handshakes under way. */
size_t tls_acceptor_pending(const struct tls_acceptor *a);
/* The counters (valid while the acceptor lives; admin reads them). */
const struct tls_counters *tls_acceptor_counters(const struct tls_acceptor *a);
/* Closes every handshake under way (drain), counted as "other". */
void tls_acceptor_abort(struct tls_acceptor *a);
/* Closes every handshake under way and frees the acceptor.  NULL
 * is a no-op. */
void tls_acceptor_destroy(struct tls_acceptor *a);

/* The transport of a connection after its handshake: SSL_read/SSL_write
 * with the socket underneath; see transport.h for wants and info. */
extern const struct transport transport_tls;

/* Keeps OpenSSL's record buffers of each TLS connection (both sides) of
 * this process while it moves bytes, and frees them once it has taken no
 * step for delay_ms (tls_idle.c); before the first TLS connection.  Without
 * it they are freed after every record. */
void tls_idle_start(struct loop *loop, unsigned delay_ms);
/* The delay the server uses: several times the gap between requests of a
 * busy connection (a few ms), short enough that a burst of connections
 * going quiet leaves no more memory behind than freeing per record. */
#define TLS_IDLE_RELEASE_MS 20
/* Stops that (before loop is destroyed). */
void tls_idle_stop(void);
/* Connections whose buffers were freed that way, since start. */
uint64_t tls_idle_released(void);

/* --workers N: moves the session-ticket keys into the shared region (the
 * master calls it once, before forking), so every worker issues and opens
 * the same tickets.  0, or -1 when the region is full. */
int tls_tickets_share(void);

#endif
