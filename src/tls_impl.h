/*
 * tls_impl: what the contexts (tls.c) and the client side (tls_client.c)
 * share with the acceptor and the transport (transport_tls.c).  Private to
 * those; the OpenSSL types stay here.
 */
#ifndef LB_TLS_IMPL_H
#define LB_TLS_IMPL_H

#include <openssl/ssl.h>

#include "tls.h"

struct tls_resume;

/* A connection's place on the list of tls_idle.c: its record buffers are
 * freed once it has taken no step for the delay.  Zeroed: on no list. */
struct tls_idle {
    struct tls_idle *prev, *next;
    SSL *ssl; /* NULL: forgotten */
    uint64_t last_us;
    bool linked;
};

/* Puts a new connection's ssl on the list (when tls_idle_start ran: its
 * buffers are then kept between records, SSL_MODE_RELEASE_BUFFERS off). */
void tls_idle_adopt(struct tls_idle *n, SSL *ssl);
/* The connection took a step (read, write, handshake): it moves to the
 * list's tail, unless it moved there less than half a delay ago.  O(1). */
void tls_idle_touch(struct tls_idle *n);
/* Takes it off the list for good (before SSL_free). */
void tls_idle_forget(struct tls_idle *n);

/* The state of transport_tls: one connection, server or client side. */
struct tls_conn {
    SSL *ssl;
    struct tls_idle idle;
    uint32_t handshake_us;
    bool read_wants_write; /* the last read said WANT_WRITE */
    bool write_wants_read; /* the last write said WANT_READ */
    bool fatal;            /* no close_notify after a fatal error */
    /* client side: where a session the backend issues is kept, while
     * that slot's generation is still resume_gen (tls_client.c) */
    struct tls_resume *resume;
    unsigned resume_gen;
};

/* A new server-side connection on the default context (SNI may switch
 * it during the handshake), or NULL when out of memory. */
SSL *tls_server_new_ssl(struct tls_server *ts);

/* Session tickets on ctx under the process's rotated keys
 * (tls_tickets.c).  0, or -1 (OpenSSL's queue says why). */
int tls_tickets_enable(SSL_CTX *ctx);

#endif
