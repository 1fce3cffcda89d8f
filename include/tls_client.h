/*
 * tls_client: TLS towards backends marked ",tls".  Two parts:
 *
 * - the client context of one pool's configuration: the CA file (or the
 *   system's default verify paths), verification on or off, the minimum
 *   version, ALPN http/1.1, no renegotiation; built whole or not at all,
 *   so a reload with a bad CA file keeps the running pools;
 *
 * - the client handshake of one upstream connection, which its owner
 *   (upstream.c) steps on the loop as the socket allows; a finished one
 *   carries its bytes with transport_tls (tls.h), the same table as the
 *   server side.  The certificate is checked against the backend's host
 *   name or address (X509_VERIFY_PARAM_set1_host / set1_ip_asc).  Each
 *   backend keeps the last session its server issued (struct tls_resume),
 *   offered on its next connection, so connections without keep-alive
 *   resume instead of paying a full handshake.
 *
 * No OpenSSL type appears here.
 */
#ifndef LB_TLS_CLIENT_H
#define LB_TLS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct tls_client;

/* One backend's cached session.  A slot given to a new backend (or
 * cleared) changes gen, so a late ticket of a connection to the previous
 * occupant is not kept for the new one. */
struct tls_resume {
    void *session; /* an SSL_SESSION, owned; NULL: none */
    unsigned gen;
};

/* What the client handshakes did since start (every pool, health checks
 * included; it survives reloads). */
struct tls_client_counters {
    uint64_t handshakes;      /* finished */
    uint64_t resumed;         /* of those, resumed sessions */
    uint64_t failures;        /* failed (not counting timeouts) */
    uint64_t verify_failures; /* of those, the certificate was refused */
};

/* How a handshake step ended. */
enum tls_client_step {
    TLSC_DONE,       /* finished: the state is transport_tls's */
    TLSC_WANT_READ,  /* call again when the socket is readable */
    TLSC_WANT_WRITE, /* ... writable */
    TLSC_FAILED,     /* failed; the reason was written */
};

/* Whether cfg's pool needs a context: a backend marked ",tls", or an
 * upstream_tls_ca_file (ready for TLS backends the runtime API adds). */
bool tls_client_wanted(const struct config *cfg);
/* True when tc checks its backends' certificates (upstream_tls_verify). */
bool tls_client_verifies(const struct tls_client *tc);

/* Builds cfg's client context (reads the CA file).  NULL with a message
 * naming the file and OpenSSL's reason in err. */
struct tls_client *tls_client_create(const struct config *cfg, char *err,
                                     size_t errlen);
/* Frees the context (connections keep OpenSSL's references).  NULL is a
 * no-op. */
void tls_client_destroy(struct tls_client *tc);
/* Builds and frees the context of every pool of cfg that needs one: 0, or
 * -1 with err filled (the master's reload check). */
int tls_client_check(const struct config *cfg, char *err, size_t errlen);

/* The client side of a new connection on fd (its connect may still be
 * under way): SNI `sni` (NULL or "": none), the certificate checked
 * against `verify_name` (a host name or an IP address; NULL: the chain
 * only) when the context verifies, the session of `slot` offered and a
 * new one kept there (slot may be NULL).  Returns the transport state
 * (released with transport_tls.release), or NULL when out of memory. */
void *tls_client_start(struct tls_client *tc, int fd, const char *sni,
                       const char *verify_name, struct tls_resume *slot);
/* Runs the handshake as far as the socket allows; on TLSC_FAILED writes
 * why ("certificate verify failed: ...") and counts it. */
enum tls_client_step tls_client_handshake(void *state, char *why, size_t len);
/* Frees the slot's session and changes its generation. */
void tls_resume_clear(struct tls_resume *r);
/* The counters (process-wide). */
const struct tls_client_counters *tls_client_counters(void);

#endif
