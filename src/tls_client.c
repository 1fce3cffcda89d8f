/*
 * tls_client: the client contexts and handshakes towards backends (see
 * tls_client.h).  A handshake's state is the transport's own struct
 * tls_conn (tls_impl.h), so a finished connection needs no hand-over.
 *
 * OpenSSL's error queue is emptied after every failure, so SSL_get_error
 * never reads a stale entry.
 */
#include "tls_client.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "tls_impl.h"

struct tls_client {
    SSL_CTX *ctx;
    bool verify;
};

static struct tls_client_counters counters;
static int conn_index = -1; /* SSL ex_data: the struct tls_conn */

const struct tls_client_counters *tls_client_counters(void)
{
    return &counters;
}

bool tls_client_wanted(const struct config *cfg)
{
    if (cfg->upstream_tls_ca_file[0])
        return true; /* ready for TLS backends added later (runtime API) */
    for (size_t i = 0; i < cfg->nbackends && i < CONFIG_MAX_BACKENDS; i++)
        if (cfg->backends[i].tls)
            return true;
    return false;
}

bool tls_client_verifies(const struct tls_client *tc)
{
    return tc->verify;
}

void tls_resume_clear(struct tls_resume *r)
{
    SSL_SESSION_free(r->session);
    r->session = NULL;
    r->gen++;
}

/* A session the backend issued (after the handshake in TLS 1.3, with the
 * first read): kept for the connection's backend, replacing the last. */
static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    struct tls_conn *c = SSL_get_ex_data(ssl, conn_index);
    if (!c || !c->resume || c->resume->gen != c->resume_gen ||
        !SSL_SESSION_is_resumable(sess))
        return 0; /* OpenSSL frees it */
    SSL_SESSION_free(c->resume->session);
    c->resume->session = sess;
    return 1; /* the reference is ours */
}

/* The protocol lbproxy speaks to backends (wire format). */
static const unsigned char alpn_h1[] = "\x08http/1.1";

struct tls_client *tls_client_create(const struct config *cfg, char *err,
                                     size_t errlen)
{
    const char *what = "context";
    char why[256] = "unknown error";
    struct tls_client *tc = calloc(1, sizeof(*tc));
    if (!tc) {
        snprintf(err, errlen, "upstream TLS: out of memory");
        return NULL;
    }
    if (conn_index < 0)
        conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    tc->ctx = SSL_CTX_new(TLS_client_method());
    if (conn_index < 0 || !tc->ctx)
        goto fail;
    bool v13 = strcasecmp(cfg->upstream_tls_min_version, "TLS1.3") == 0;
    SSL_CTX_set_min_proto_version(tc->ctx,
                                  v13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_options(tc->ctx, SSL_OP_NO_RENEGOTIATION |
                                     SSL_OP_NO_COMPRESSION |
                                     SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* as the server side: buffers given back while idle, writes per
     * record, retried from a moved buffer */
    SSL_CTX_set_mode(tc->ctx, SSL_MODE_RELEASE_BUFFERS |
                                  SSL_MODE_ENABLE_PARTIAL_WRITE |
                                  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(tc->ctx, 1); /* a record in one read() */
    what = "ALPN";
    if (SSL_CTX_set_alpn_protos(tc->ctx, alpn_h1, sizeof(alpn_h1) - 1) != 0)
        goto fail;
    /* sessions are kept per backend by on_new_session, not in a cache */
    SSL_CTX_set_session_cache_mode(tc->ctx, SSL_SESS_CACHE_CLIENT |
                                                SSL_SESS_CACHE_NO_INTERNAL);
    SSL_CTX_sess_set_new_cb(tc->ctx, on_new_session);
    const char *ca = cfg->upstream_tls_ca_file;
    what = ca[0] ? ca : "the default verify paths";
    if (ca[0] ? !SSL_CTX_load_verify_locations(tc->ctx, ca, NULL)
              : !SSL_CTX_set_default_verify_paths(tc->ctx))
        goto fail;
    tc->verify = cfg->upstream_tls_verify;
    SSL_CTX_set_verify(tc->ctx, tc->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE,
                       NULL);
    return tc;
fail:;
    unsigned long e = ERR_peek_last_error();
    if (e)
        ERR_error_string_n(e, why, sizeof(why));
    ERR_clear_error();
    snprintf(err, errlen, "upstream TLS: %s: %s", what, why);
    tls_client_destroy(tc);
    return NULL;
}

void tls_client_destroy(struct tls_client *tc)
{
    if (!tc)
        return;
    SSL_CTX_free(tc->ctx);
    free(tc);
}

int tls_client_check(const struct config *cfg, char *err, size_t errlen)
{
    struct config *one = malloc(sizeof(*one));
    if (!one) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < config_pool_count(cfg); i++) {
        rc = config_pool_build(cfg, i, one, err, errlen);
        if (rc == 0 && tls_client_wanted(one)) {
            struct tls_client *tc = tls_client_create(one, err, errlen);
            rc = tc ? 0 : -1;
            tls_client_destroy(tc);
        }
    }
    free(one);
    return rc;
}

static bool is_ip(const char *s)
{
    unsigned char b[16];
    return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

void *tls_client_start(struct tls_client *tc, int fd, const char *sni,
                       const char *verify_name, struct tls_resume *slot)
{
    struct tls_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->ssl = SSL_new(tc->ctx);
    if (!c->ssl || !SSL_set_fd(c->ssl, fd) ||
        !SSL_set_ex_data(c->ssl, conn_index, c))
        goto fail;
    SSL_set_connect_state(c->ssl);
    if (sni && sni[0] && !SSL_set_tlsext_host_name(c->ssl, sni))
        goto fail;
    if (tc->verify && verify_name) {
        X509_VERIFY_PARAM *p = SSL_get0_param(c->ssl);
        X509_VERIFY_PARAM_set_hostflags(p,
                                        X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (is_ip(verify_name)
                ? !X509_VERIFY_PARAM_set1_ip_asc(p, verify_name)
                : !X509_VERIFY_PARAM_set1_host(p, verify_name, 0))
            goto fail;
    }
    if (slot) {
        c->resume = slot;
        c->resume_gen = slot->gen;
        if (slot->session && !SSL_set_session(c->ssl, slot->session))
            goto fail;
    }
    tls_idle_adopt(&c->idle, c->ssl);
    return c;
fail:
    ERR_clear_error();
    SSL_free(c->ssl);
    free(c);
    return NULL;
}

/* Why a handshake failed, for the log and the counters. */
static void failure(struct tls_conn *c, int e, char *why, size_t len)
{
    long vr = SSL_get_verify_result(c->ssl);
    unsigned long err = ERR_peek_last_error();
    counters.failures++;
    if (vr != X509_V_OK) {
        counters.verify_failures++;
        snprintf(why, len, "certificate verify failed: %s",
                 X509_verify_cert_error_string(vr));
    } else if (e == SSL_ERROR_SSL && err) {
        char buf[160];
        ERR_error_string_n(err, buf, sizeof(buf));
        snprintf(why, len, "%s", buf);
    } else {
        snprintf(why, len, "closed during the handshake");
    }
    ERR_clear_error();
    c->fatal = true; /* no close_notify on a failed handshake */
    /* a session that would not resume is not offered again */
    if (c->resume && c->resume->gen == c->resume_gen && c->resume->session &&
        SSL_get_session(c->ssl) == c->resume->session) {
        SSL_SESSION_free(c->resume->session);
        c->resume->session = NULL;
    }
}

enum tls_client_step tls_client_handshake(void *state, char *why, size_t len)
{
    struct tls_conn *c = state;
    tls_idle_touch(&c->idle);
    int rc = SSL_do_handshake(c->ssl);
    if (rc == 1) {
        counters.handshakes++;
        if (SSL_session_reused(c->ssl))
            counters.resumed++;
        return TLSC_DONE;
    }
    int e = SSL_get_error(c->ssl, rc);
    if (e == SSL_ERROR_WANT_READ)
        return TLSC_WANT_READ;
    if (e == SSL_ERROR_WANT_WRITE)
        return TLSC_WANT_WRITE;
    failure(c, e, why, len);
    return TLSC_FAILED;
}
