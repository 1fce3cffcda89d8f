/*
 * config_tls: the [tls] section's certificate/key pairs (repeatable, so
 * not rows of the key table) and the cross-field rules of TLS.  The other
 * [tls] keys (listen, min_version, ciphers, ciphersuites, resumption,
 * handshake_ms) are ordinary rows of the table in config.c.
 *
 * The upstream_tls_* keys of [pool] (TLS towards backends marked ",tls")
 * are rows of the table too; their cross-field rules are here.
 *
 * A `cert` starts a pair and the `key` after it completes it; the first
 * pair is the default certificate (for clients without SNI or whose name
 * no certificate has).
 */
#include "config.h"
#include "config_impl.h"
#include "net.h"

#include <string.h>
#include <strings.h>

bool config_tls_pair_key(const char *section, const char *key)
{
    return strcasecmp(section, "tls") == 0 &&
           (strcasecmp(key, "cert") == 0 || strcasecmp(key, "key") == 0);
}

int config_tls_add(struct config *c, const char *key, const char *path,
                   bool *replace, char *what, size_t wlen)
{
    bool is_key = strcasecmp(key, "key") == 0;
    struct config_cert *last =
        c->ntls_certs ? &c->tls_certs[c->ntls_certs - 1] : NULL;
    if (path[0] == '\0') {
        config_set_err(what, wlen, "a file name");
        return -1;
    }
    if (is_key) {
        if (!last || (replace && *replace) || last->key[0]) {
            config_set_err(what, wlen, "a key after its cert");
            return -1;
        }
        if (config_copy_str(last->key, sizeof(last->key), path) < 0) {
            config_set_err(what, wlen, "a path of at most %zu characters",
                           sizeof(last->key) - 1);
            return -1;
        }
        return 0;
    }
    if (replace && *replace) {
        c->ntls_certs = 0; /* the first one given replaces the file's */
        *replace = false;
    } else if (last && !last->key[0]) {
        config_set_err(what, wlen, "the key of the cert before (%s) first",
                       last->cert);
        return -1;
    }
    if (c->ntls_certs >= CONFIG_MAX_CERTS) {
        config_set_err(what, wlen, "at most %d certificates", CONFIG_MAX_CERTS);
        return -1;
    }
    struct config_cert *p = &c->tls_certs[c->ntls_certs];
    memset(p, 0, sizeof(*p));
    if (config_copy_str(p->cert, sizeof(p->cert), path) < 0) {
        config_set_err(what, wlen, "a path of at most %zu characters",
                       sizeof(p->cert) - 1);
        return -1;
    }
    c->ntls_certs++;
    return 0;
}

#define INVALID(...)                                                           \
    do {                                                                       \
        config_set_err(err, errlen, "invalid configuration: " __VA_ARGS__);    \
        return -1;                                                             \
    } while (0)

static bool version_ok(const char *v)
{
    return strcasecmp(v, "TLS1.2") == 0 || strcasecmp(v, "TLS1.3") == 0;
}

/* TLS towards backends: the version, the SNI override, and a name to
 * check each certificate against where the address gives none. */
static int validate_upstream(const struct config *c, char *err, size_t errlen)
{
    const char *v = c->upstream_tls_min_version;
    if (!version_ok(v))
        INVALID("[pool] upstream_tls_min_version: expected TLS1.2 or TLS1.3, "
                "got '%s'",
                v);
    const char *sni = c->upstream_tls_sni;
    if (sni[0] && !net_name_valid(sni))
        INVALID("[pool] upstream_tls_sni: expected a host name, got '%s'", sni);
    for (size_t i = 0; i < c->nbackends && i < CONFIG_MAX_BACKENDS; i++) {
        const struct config_backend *b = &c->backends[i];
        if (b->tls && b->unix_path[0] && c->upstream_tls_verify && !sni[0])
            INVALID("backend %s: TLS over unix:%s has no host name to "
                    "verify: set [pool] upstream_tls_sni (or "
                    "upstream_tls_verify = false)",
                    b->id, b->unix_path);
    }
    return 0;
}

int config_tls_validate(const struct config *c, char *err, size_t errlen)
{
    const char *v = c->tls_min_version;
    if (!version_ok(v))
        INVALID("[tls] min_version: expected TLS1.2 or TLS1.3, got '%s'", v);
    if (validate_upstream(c, err, errlen) < 0)
        return -1;
    if (c->ntls_certs > CONFIG_MAX_CERTS)
        INVALID("[tls] at most %d certificates", CONFIG_MAX_CERTS);
    for (size_t i = 0; i < c->ntls_certs; i++)
        if (!c->tls_certs[i].cert[0] || !c->tls_certs[i].key[0])
            INVALID("[tls] cert %s has no key (each cert = FILE needs a "
                    "key = FILE after it; --tls-cert needs --tls-key)",
                    c->tls_certs[i].cert[0] ? c->tls_certs[i].cert : "''");
    if (strcmp(c->tls_listen, "off") == 0)
        return 0;
    if (c->ntls_certs == 0)
        INVALID("[tls] listen %s needs a certificate (cert = FILE and "
                "key = FILE, or --tls-cert FILE --tls-key FILE)",
                c->tls_listen);
    if (strcmp(c->tls_listen, c->listen) == 0 ||
        strcmp(c->tls_listen, c->admin) == 0)
        INVALID("[tls] listen %s is already the plain or the admin "
                "listener",
                c->tls_listen);
    return 0;
}

void config_tls_print(const struct config *c, FILE *out)
{
    if (c->ntls_certs == 0)
        return;
    fprintf(out, "\n[tls]\n");
    for (size_t i = 0; i < c->ntls_certs && i < CONFIG_MAX_CERTS; i++)
        fprintf(out, "cert = %s\nkey = %s\n", c->tls_certs[i].cert,
                c->tls_certs[i].key);
}
