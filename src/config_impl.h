/*
 * config_impl: what config.c (the key table, the INI file, validation) shares
 * with config_cli.c (the flags).  Not part of the public interface
 * (include/config.h).
 */
#ifndef LB_CONFIG_IMPL_H
#define LB_CONFIG_IMPL_H

#include <sys/types.h>

#include "config.h"

#define CONFIG_FMT(a, b) __attribute__((format(printf, a, b)))

/* Largest field a key can have (log_path and the directories), and room for
 * any value as text. */
#define CONFIG_VALUE_MAX 256
#define CONFIG_TEXT_MAX 320

#define CONFIG_ADDR_TEXT                                                       \
    "ADDR:PORT (a.b.c.d:port or [ipv6]:port, port 1..65535)"

#define CF_SIZE 1u  /* accepts a k/m/g suffix (binary multiples) */
#define CF_ALIAS 2u /* another spelling of a key: not printed, no default */

struct config_key;

/* The operations of one value type of the key table, so that each type's
 * rules are written once and the loader, the validator and the printer
 * cannot disagree (Redis config.c `typeInterface`). */
struct config_type {
    /* Turns text into a value in dst (k->size bytes, zeroed by the caller).
     * 0, or -1 when the text is not of this type or out of range. */
    int (*parse)(const struct config_key *k, const char *text, void *dst);
    /* Whether a stored value is allowed (code and tests can store values
     * that never went through parse). */
    bool (*check)(const struct config_key *k, const void *p);
    /* What a value must look like, for "expected ..." messages. */
    void (*expect)(const struct config_key *k, char *buf, size_t len);
    /* The value as the file spells it; parse reads it back unchanged. */
    void (*print)(const struct config_key *k, const void *p, char *buf,
                  size_t len);
};

/* One key of the INI file (and of --set SECTION.KEY=VALUE). */
struct config_key {
    const char *section;
    const char *key;
    const struct config_type *type;
    unsigned flags;              /* CF_* */
    size_t off, size;            /* the field in struct config */
    unsigned long long min, max; /* integers: min..max */
    double dmin, dmax;           /* numbers: dmin < value <= dmax */
    const char *def;             /* the default, as the file would spell it;
                                  * NULL: the owning module's default (balancer
                                  * params) or an alias */
};

/* The value types (config_types.c). */
extern const struct config_type config_type_str;       /* any text that fits */
extern const struct config_type config_type_retry_on;  /* retry.h's words */
extern const struct config_type config_type_addr;      /* ADDR:PORT */
extern const struct config_type config_type_addr_off;  /* ADDR:PORT or off */
extern const struct config_type config_type_addr_list; /* ADDR:PORT,... */
extern const struct config_type config_type_int;       /* integer, min..max */
extern const struct config_type config_type_num;       /* double, dmin..dmax */
extern const struct config_type config_type_bool;
extern const struct config_type config_type_model;      /* (non-)persistent */
extern const struct config_type config_type_mode;       /* a balancer policy */
extern const struct config_type config_type_score;      /* an ewma_score name */
extern const struct config_type config_type_send_proxy; /* off, v1, v2 */
extern const struct config_type config_type_hash_key;   /* hashkey.h's spec */
extern const struct config_type config_type_factor;     /* 0, or dmin..dmax */
extern const struct config_type config_type_workers;    /* auto or min..max */
extern const struct config_type config_type_cpus;       /* a CPU list */

/* Decimal digits only (no sign, no blanks), with size_suffix optionally
 * k/m/g (x1024^n); 0, or -1 when not such a number or too large. */
int config_parse_ull(const char *v, bool size_suffix, unsigned long long *out);

/* The key table, in the order config_print writes it. */
extern const struct config_key config_keys[];
extern const size_t config_nkeys;

/* Formats into err (which may be NULL). */
void config_set_err(char *err, size_t errlen, const char *fmt, ...)
    CONFIG_FMT(3, 4);
/* Copies src into dst[size]; -1 (dst untouched) when it does not fit. */
int config_copy_str(char *dst, size_t size, const char *src);
/* Drops leading and trailing blanks in place; returns the new start. */
char *config_trim(char *s);

/* The key [section] key (case ignored), or NULL. */
const struct config_key *config_key_find(const char *section, const char *key);
/* Whether [section] exists (a section of the table, or backends). */
bool config_section_known(const char *section);
/* "proxy, timeouts, ..., backends": every section, for messages. */
void config_sections_text(char *buf, size_t len);
/* Stores text for key k into c; on error writes what was expected into
 * what[] and returns -1 with c untouched. */
int config_key_apply(struct config *c, const struct config_key *k,
                     const char *text, char *what, size_t wlen);
/* Key k's value in c as text (config_print's spelling). */
void config_key_text(const struct config *c, const struct config_key *k,
                     char *buf, size_t len);

/* Index of backend id in c, or -1. */
ssize_t config_backend_index(const struct config *c, const char *id);
/* Adds backend `id = spec` (replace: an existing id is overwritten rather
 * than an error).  0, or -1 with a complete message after `prefix`. */
int config_backend_add(struct config *c, const char *id, const char *spec,
                       bool replace, const char *prefix, char *err,
                       size_t errlen);
/* One "ID = ADDR[, weight=N][, tls]" line of a backends section. */
void config_backend_print(const struct config_backend *b, FILE *out);
/* [tls] cert / key (config_tls.c): whether section.key is one of them. */
bool config_tls_pair_key(const char *section, const char *key);
/* Adds a cert (starting a pair) or a key (completing the last pair).  With
 * *replace set, the first cert drops the pairs before it and clears
 * *replace; replace may be NULL.  0, or -1 with what[] filled. */
int config_tls_add(struct config *c, const char *key, const char *path,
                   bool *replace, char *what, size_t wlen);
/* The cross-field rules of [tls]; 0 or -1 with err filled. */
int config_tls_validate(const struct config *c, char *err, size_t errlen);
/* The pairs as a [tls] section of cert = / key = lines (none: nothing). */
void config_tls_print(const struct config *c, FILE *out);

/* Pools and routes (config_pool.c).  The kind of a [pool.NAME],
 * [pool.NAME.backends] or [route.NAME] section, with NAME copied into
 * name[len]; 0 for any other section or a bad name. */
enum {
    CONFIG_SECTION_POOL = 1,
    CONFIG_SECTION_POOL_BACKENDS,
    CONFIG_SECTION_ROUTE,
};
int config_ext_section(const char *section, char *name, size_t len);
/* A section header of that kind: an empty [pool.x] is a pool too. */
void config_ext_declare(struct config *c, int kind, const char *name);
/* One key = value line of such a section; 0, or -1 with msg filled. */
int config_ext_key(struct config *c, int kind, const char *name,
                   const char *key, const char *value, char *msg, size_t len);
/* The key a pool section may set under `name`, or NULL. */
const struct config_key *config_pool_key_find(const char *name);
/* Makes c->ext c's own copy (c is a copy of another configuration); 0 or -1
 * (ENOMEM, c->ext left shared: do not free it). */
int config_ext_dup(struct config *c);
/* The routes' rules and every pool built and checked with validate. */
int config_pools_validate(const struct config *c,
                          int (*validate)(const struct config *, char *,
                                          size_t),
                          char *err, size_t errlen);
/* The [pool.*] and [route.*] sections, as the file spells them. */
void config_pools_print(const struct config *c, FILE *out);

/* "A".."Z", then "AA", "AB", ... for the i-th backend without an id. */
void config_default_id(size_t i, char *buf, size_t len);

#endif
