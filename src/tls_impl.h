/*
 * tls_impl: what the contexts (tls.c) share with the acceptor and the
 * transport (transport_tls.c).  Private to those two; the OpenSSL types
 * stay here.
 */
#ifndef LB_TLS_IMPL_H
#define LB_TLS_IMPL_H

#include <openssl/ssl.h>

#include "tls.h"

/* A new server-side connection on the default context (SNI may switch
 * it during the handshake), or NULL when out of memory. */
SSL *tls_server_new_ssl(struct tls_server *ts);

/* Session tickets on ctx under the process's rotated keys
 * (tls_tickets.c).  0, or -1 (OpenSSL's queue says why). */
int tls_tickets_enable(SSL_CTX *ctx);

#endif
