/*
 * tls: the server contexts of one configuration (see tls.h): one SSL_CTX
 * per certificate/key pair with the same settings, the SNI choice between
 * them, ALPN, resumption, and the reference count that lets a reload
 * replace them while handshakes on the old ones finish.
 */
#include "tls_impl.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"

#define TLS_CACHE_SIZE 20000 /* sessions in the server-side cache */
#define TLS_MAX_NAMES 64     /* DNS names kept per certificate */
#define TLS_NAME_MAX 253     /* longest DNS name */

struct tls_cert {
    SSL_CTX *ctx;
    char *names[TLS_MAX_NAMES]; /* lower case; "*.example.com" wildcards */
    size_t nnames;
};

struct tls_server {
    unsigned refs;
    size_t ncerts;
    struct tls_cert certs[CONFIG_MAX_CERTS];
};

const char *tls_fail_str(enum tls_fail f)
{
    switch (f) {
    case TLS_FAIL_TIMEOUT:
        return "timeout";
    case TLS_FAIL_CLOSED:
        return "closed";
    case TLS_FAIL_PROTOCOL:
        return "protocol";
    case TLS_FAIL_VERSION:
        return "version";
    case TLS_FAIL_CIPHER:
        return "cipher";
    case TLS_FAIL_OTHER:
        return "other";
    case TLS_FAIL_COUNT:
        break;
    }
    return "?";
}

/* ---- names ---- */

bool tls_name_matches(const char *pattern, const char *host)
{
    /* RFC 6125 6.4.3, narrowed: "*" only as the whole left-most label; it
     * matches exactly one label, never an empty one, and a pattern needs
     * at least two labels after it ("*.com" matches nothing). */
    if (pattern[0] == '*' && pattern[1] == '.') {
        const char *rest = pattern + 1; /* ".example.com" */
        if (!strchr(rest + 1, '.'))
            return false;
        const char *dot = strchr(host, '.');
        if (!dot || dot == host)
            return false;
        return strcasecmp(dot, rest) == 0;
    }
    return strcasecmp(pattern, host) == 0;
}

/* The certificate for an SNI host name: an exact name first, then a
 * wildcard, in the order the pairs were given; 0 (the default) when none
 * matches. */
static size_t pick_cert(const struct tls_server *ts, const char *host)
{
    for (int wild = 0; wild < 2; wild++)
        for (size_t i = 0; i < ts->ncerts; i++)
            for (size_t j = 0; j < ts->certs[i].nnames; j++) {
                const char *p = ts->certs[i].names[j];
                if ((p[0] == '*') == (wild == 1) && tls_name_matches(p, host))
                    return i;
            }
    return 0;
}

static int add_name(struct tls_cert *c, const unsigned char *s, int len)
{
    if (len <= 0 || len > TLS_NAME_MAX || memchr(s, '\0', (size_t)len) ||
        c->nnames >= TLS_MAX_NAMES)
        return 0; /* not a usable DNS name: never matched */
    char *n = malloc((size_t)len + 1);
    if (!n)
        return -1;
    memcpy(n, s, (size_t)len);
    n[len] = '\0';
    c->names[c->nnames++] = n;
    return 0;
}

/* The names SNI is matched against: the subjectAltName DNS names, or the
 * subject's common name when there are none (RFC 6125 6.4.4). */
static int load_names(struct tls_cert *c)
{
    X509 *x = SSL_CTX_get0_certificate(c->ctx);
    if (!x)
        return -1;
    GENERAL_NAMES *san = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int rc = 0;
    for (int i = 0; san && i < sk_GENERAL_NAME_num(san) && rc == 0; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(san, i);
        if (g->type == GEN_DNS)
            rc = add_name(c, ASN1_STRING_get0_data(g->d.dNSName),
                          ASN1_STRING_length(g->d.dNSName));
    }
    GENERAL_NAMES_free(san);
    if (rc == 0 && c->nnames == 0) {
        X509_NAME *subj = X509_get_subject_name(x);
        int at = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
        X509_NAME_ENTRY *e = at >= 0 ? X509_NAME_get_entry(subj, at) : NULL;
        ASN1_STRING *cn = e ? X509_NAME_ENTRY_get_data(e) : NULL;
        if (cn)
            rc = add_name(c, ASN1_STRING_get0_data(cn), ASN1_STRING_length(cn));
    }
    return rc;
}

/* ---- callbacks ---- */

static int on_servername(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    const struct tls_server *ts = arg;
    const char *host = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!host)
        return SSL_TLSEXT_ERR_NOACK;
    size_t i = pick_cert(ts, host);
    if (i > 0 && !SSL_set_SSL_CTX(ssl, ts->certs[i].ctx))
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    return SSL_TLSEXT_ERR_OK;
}

/* The protocols lbproxy speaks, in its order of preference (wire format:
 * length-prefixed names; "h2" goes first once it is spoken). */
static const unsigned char alpn_ours[] = "\x08http/1.1";

static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    unsigned char *sel;
    if (SSL_select_next_proto(&sel, outlen, alpn_ours, sizeof(alpn_ours) - 1,
                              in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK; /* none in common: go on without */
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* An encrypted key is refused rather than prompted for on a terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return 0;
}

/* ---- contexts ---- */

/* OpenSSL's reason for the last failure, and an empty error queue. */
static void ssl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_peek_last_error();
    if (e)
        ERR_error_string_n(e, buf, len);
    else
        snprintf(buf, len, "unknown error");
    ERR_clear_error();
}

static int min_version(const char *v)
{
    return strcasecmp(v, "TLS1.3") == 0 || strcasecmp(v, "TLSv1.3") == 0
               ? TLS1_3_VERSION
               : TLS1_2_VERSION;
}

static SSL_CTX *make_ctx(const struct config *cfg, struct tls_server *ts,
                         const struct config_cert *p, char *err, size_t errlen)
{
    char why[256];
    const char *what = "context";
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        goto fail;
    SSL_CTX_set_min_proto_version(ctx, min_version(cfg->tls_min_version));
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* idle connections give their read and write buffers back; writes
     * return per record and may be retried from a moved buffer */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS |
                              SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* a record in one read(), not its header and then its body (the
     * transport's `buffered` sees what was read ahead: SSL_has_pending) */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_max_early_data(ctx, 0); /* no 0-RTT */
    what = "[tls] ciphers";
    if (cfg->tls_ciphers[0] && !SSL_CTX_set_cipher_list(ctx, cfg->tls_ciphers))
        goto fail;
    what = "[tls] ciphersuites";
    if (cfg->tls_ciphersuites[0] &&
        !SSL_CTX_set_ciphersuites(ctx, cfg->tls_ciphersuites))
        goto fail;
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
    what = p->cert;
    if (!SSL_CTX_use_certificate_chain_file(ctx, p->cert))
        goto fail;
    what = p->key;
    if (!SSL_CTX_use_PrivateKey_file(ctx, p->key, SSL_FILETYPE_PEM) ||
        !SSL_CTX_check_private_key(ctx))
        goto fail;
    if (cfg->tls_resumption) {
        static const unsigned char sid[] = "lbproxy";
        SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
        SSL_CTX_sess_set_cache_size(ctx, TLS_CACHE_SIZE);
        what = "session ticket keys";
        if (tls_tickets_enable(ctx) < 0)
            goto fail;
    } else {
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_num_tickets(ctx, 0);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    }
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn, NULL);
    SSL_CTX_set_tlsext_servername_callback(ctx, on_servername);
    SSL_CTX_set_tlsext_servername_arg(ctx, ts);
    return ctx;
fail:
    ssl_reason(why, sizeof(why));
    snprintf(err, errlen, "TLS: %s: %s", what, why);
    SSL_CTX_free(ctx);
    return NULL;
}

static void free_server(struct tls_server *ts)
{
    for (size_t i = 0; i < ts->ncerts; i++) {
        SSL_CTX_free(ts->certs[i].ctx);
        for (size_t j = 0; j < ts->certs[i].nnames; j++)
            free(ts->certs[i].names[j]);
    }
    free(ts);
}

struct tls_server *tls_server_create(const struct config *cfg, char *err,
                                     size_t errlen)
{
    struct tls_server *ts = calloc(1, sizeof(*ts));
    if (!ts) {
        snprintf(err, errlen, "TLS: out of memory");
        return NULL;
    }
    ts->refs = 1;
    for (size_t i = 0; i < cfg->ntls_certs; i++) {
        struct tls_cert *c = &ts->certs[ts->ncerts];
        c->ctx = make_ctx(cfg, ts, &cfg->tls_certs[i], err, errlen);
        if (!c->ctx)
            goto fail;
        ts->ncerts++;
        if (load_names(c) < 0) {
            snprintf(err, errlen, "TLS: %s: cannot read its names",
                     cfg->tls_certs[i].cert);
            goto fail;
        }
    }
    if (ts->ncerts == 0) {
        snprintf(err, errlen, "TLS: no certificate ([tls] cert and key)");
        goto fail;
    }
    return ts;
fail:
    free_server(ts);
    return NULL;
}

struct tls_server *tls_server_ref(struct tls_server *ts)
{
    ts->refs++;
    return ts;
}

void tls_server_put(struct tls_server *ts)
{
    if (ts && --ts->refs == 0)
        free_server(ts);
}

SSL *tls_server_new_ssl(struct tls_server *ts)
{
    return SSL_new(ts->certs[0].ctx);
}
