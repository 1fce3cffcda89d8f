/*
 * admin_api: the runtime API (docs/api.md).  Routes, bearer-token check,
 * JSON bodies parsed with cJSON and validated completely before anything
 * changes; the changes themselves are the backendset module's.
 */
#include "admin_api.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backendset.h"
#include "balancer.h"
#include "config.h"
#include "net.h"

#define AUTH_HEADER "WWW-Authenticate: Bearer realm=\"lbproxy\"\r\n"

/* ---- the Authorization header ---- */

void admin_api_auth_reset(struct admin_api_auth *a)
{
    memset(a, 0, sizeof(*a));
}

void admin_api_auth_field(struct admin_api_auth *a, const char *at, size_t n)
{
    for (size_t i = 0; i < n; i++, a->field_len++)
        if (a->field_len < sizeof(a->field))
            a->field[a->field_len] = at[i];
}

void admin_api_auth_value(struct admin_api_auth *a, const char *at, size_t n)
{
    if (!a->in_auth) {
        if (a->field_len != 13 || strncasecmp(a->field, "authorization", 13))
            return;
        a->in_auth = true;
        a->count++;
        a->value_len = 0;
    }
    for (size_t i = 0; i < n; i++, a->value_len++)
        if (a->value_len < ADMIN_API_AUTH_MAX)
            a->value[a->value_len] = at[i];
}

void admin_api_auth_value_done(struct admin_api_auth *a)
{
    a->in_auth = false;
    a->field_len = 0;
}

/* SHA-256 of n bytes (a fixed-size value to compare in constant time). */
static void digest(const void *p, size_t n, unsigned char md[32])
{
    unsigned int len = 0;
    if (!EVP_Digest(p, n, md, &len, EVP_sha256(), NULL))
        memset(md, 0, 32);
}

/* Whether the request carries exactly one "Bearer <token>": the token is
 * compared in constant time (as digests, so its length leaks nothing). */
static bool authorized(const struct admin_api_auth *a, const char *token)
{
    unsigned char want[32], got[32];
    const char *v = a->value;
    size_t n = a->value_len;
    if (a->count != 1 || n > ADMIN_API_AUTH_MAX || n < 7 ||
        strncasecmp(v, "Bearer ", 7) != 0)
        return false;
    v += 7, n -= 7;
    while (n > 0 && (*v == ' ' || *v == '\t'))
        v++, n--;
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    digest(token, strlen(token), want);
    digest(v, n, got);
    return CRYPTO_memcmp(want, got, sizeof(want)) == 0 && n > 0;
}

/* ---- the token file ---- */

int admin_api_read_token(const char *path, char *buf, size_t len, char *err,
                         size_t errlen)
{
    char line[ADMIN_API_TOKEN_MAX + 3];
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(err, errlen, "admin_token_file %s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "admin_token_file %s: not a regular file", path);
        close(fd);
        return -1;
    }
    if (st.st_mode & (S_IROTH | S_IWOTH)) {
        snprintf(err, errlen,
                 "admin_token_file %s: others may read or write it "
                 "(chmod o-rw)",
                 path);
        close(fd);
        return -1;
    }
    ssize_t got = read(fd, line, sizeof(line) - 1);
    close(fd);
    if (got < 0) {
        snprintf(err, errlen, "admin_token_file %s: %s", path, strerror(errno));
        return -1;
    }
    line[got] = '\0';
    size_t n = strcspn(line, "\r\n");
    bool ok = n >= ADMIN_API_TOKEN_MIN && n <= ADMIN_API_TOKEN_MAX && n < len;
    for (size_t i = 0; ok && i < n; i++)
        ok = line[i] >= 0x21 && line[i] <= 0x7e;
    if (!ok) {
        snprintf(err, errlen,
                 "admin_token_file %s: the first line must be a token of "
                 "%d..%d visible ASCII bytes",
                 path, ADMIN_API_TOKEN_MIN, ADMIN_API_TOKEN_MAX);
        return -1;
    }
    memcpy(buf, line, n);
    buf[n] = '\0';
    return 0;
}

/* ---- JSON out ---- */

/* Renders a cJSON document into out and frees it; 500 when it could not
 * be built or printed. */
static int send_json(struct admin_buf *out, cJSON *doc, int status)
{
    char *text = doc ? cJSON_PrintUnformatted(doc) : NULL;
    cJSON_Delete(doc);
    if (!text) {
        admin_buf_str(out, "{\"error\":\"out of memory\"}");
        return 500;
    }
    admin_buf_str(out, text);
    cJSON_free(text);
    return status;
}

static int error(struct admin_buf *out, int status, const char *msg)
{
    cJSON *doc = cJSON_CreateObject();
    if (doc)
        cJSON_AddStringToObject(doc, "error", msg);
    send_json(out, doc, status);
    return status;
}

static cJSON *backend_json(const struct backendset *s, size_t idx)
{
    cJSON *o = cJSON_CreateObject();
    const struct balancer_backend *be =
        s->bal ? balancer_backend(s->bal, idx) : NULL;
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "id", backendset_id(s, idx));
    cJSON_AddStringToObject(o, "address", backendset_addr(s, idx));
    const char *tls = backendset_tls_host(s, idx);
    cJSON_AddBoolToObject(o, "tls", tls != NULL);
    if (tls && tls[0])
        cJSON_AddStringToObject(o, "tls_name", tls);
    cJSON_AddNumberToObject(o, "weight", be ? be->weight : 1);
    cJSON_AddStringToObject(o, "state", backendset_state(s, idx));
    cJSON_AddStringToObject(
        o, "admin_state", balancer_admin_str(be ? be->admin : BALANCER_READY));
    cJSON_AddStringToObject(o, "health",
                            balancer_health_str(be ? be->health : BALANCER_UP));
    cJSON_AddNumberToObject(o, "in_flight", be ? be->in_flight : 0);
    return o;
}

static cJSON *pool_json(const struct backendset *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *list = cJSON_CreateArray();
    if (!o || !list) {
        cJSON_Delete(o);
        cJSON_Delete(list);
        return NULL;
    }
    cJSON_AddStringToObject(o, "name", s->name);
    if (s->bal)
        cJSON_AddStringToObject(o, "mode", balancer_mode(s->bal));
    cJSON_AddItemToObject(o, "backends", list);
    for (size_t i = 0; i < backendset_count(s); i++)
        if (backendset_live(s, i))
            cJSON_AddItemToArray(list, backend_json(s, i));
    return o;
}

/* ---- JSON in ---- */

/* What a POST or PATCH body asks for; has_* say which fields were given. */
struct change {
    const char *id, *address;
    const char *tls_name; /* NULL: none given */
    bool tls, has_tls;    /* "tls" as given (a tls_name implies true) */
    bool has_weight, has_state;
    unsigned weight;
    enum balancer_admin state;
};

/* Parses and checks a body against the allowed fields ("id", "address",
 * "tls", "tls_name" when adding; "weight", "state").  Returns 0, or 400 with a
 * message in *why.  *doc must be freed by the caller. */
static int parse_change(const struct admin_api_req *rq, bool for_add,
                        cJSON **doc, struct change *c, const char **why)
{
    memset(c, 0, sizeof(*c));
    *doc = cJSON_ParseWithLength(rq->body, rq->body_kept);
    if (!*doc || !cJSON_IsObject(*doc)) {
        *why = "the body must be a JSON object";
        return 400;
    }
    cJSON *f;
    cJSON_ArrayForEach(f, *doc)
    {
        const char *k = f->string;
        if (for_add && !strcmp(k, "id") && cJSON_IsString(f)) {
            c->id = f->valuestring;
        } else if (for_add && !strcmp(k, "address") && cJSON_IsString(f)) {
            c->address = f->valuestring;
        } else if (for_add && !strcmp(k, "tls") && cJSON_IsBool(f)) {
            c->tls = cJSON_IsTrue(f);
            c->has_tls = true;
        } else if (for_add && !strcmp(k, "tls_name") && cJSON_IsString(f)) {
            if (!net_name_valid(f->valuestring)) {
                *why = "tls_name: a host name expected";
                return 400;
            }
            c->tls_name = f->valuestring;
        } else if (!strcmp(k, "weight") && cJSON_IsNumber(f)) {
            double w = f->valuedouble;
            if (!(w >= 1 && w <= CONFIG_WEIGHT_MAX && floor(w) == w)) {
                *why = "weight: an integer in 1..10000 expected";
                return 400;
            }
            c->weight = (unsigned)w;
            c->has_weight = true;
        } else if (!strcmp(k, "state") && cJSON_IsString(f)) {
            int a = balancer_admin_parse(f->valuestring);
            if (a < 0) {
                *why = "state: \"ready\", \"drain\" or \"maint\" expected";
                return 400;
            }
            c->state = (enum balancer_admin)a;
            c->has_state = true;
        } else {
            *why = for_add ? "unknown or mistyped field (id, address, "
                             "tls, tls_name, weight, state expected)"
                           : "unknown or mistyped field (weight, state "
                             "expected)";
            return 400;
        }
    }
    if (c->tls_name && c->has_tls && !c->tls) {
        *why = "tls_name with \"tls\": false";
        return 400;
    }
    if (c->tls_name)
        c->tls = true;
    if (for_add && (!c->id || !c->address)) {
        *why = "id and address are required";
        return 400;
    }
    if (!for_add && !c->has_weight && !c->has_state) {
        *why = "weight or state expected";
        return 400;
    }
    return 0;
}

/* ---- routes ---- */

bool admin_api_path(const char *path)
{
    return !strcmp(path, "/api/pools") || !strncmp(path, "/api/pools/", 11);
}

/* Splits "/api/pools[/POOL[/backends[/ID]]]" into its parts; returns the
 * number of parts after /api/pools (0..3), or -1 for another shape. */
static int split(const char *path, char pool[128], char id[128])
{
    const char *p = path + strlen("/api/pools");
    char seg[3][128];
    int n = 0;
    while (*p == '/' && n < 4) {
        size_t len = strcspn(p + 1, "/");
        if (len == 0 || len >= sizeof(seg[0]) || n == 3)
            return -1;
        memcpy(seg[n], p + 1, len);
        seg[n][len] = '\0';
        n++;
        p += len + 1;
    }
    if (*p != '\0' || (n >= 2 && strcmp(seg[1], "backends") != 0))
        return -1;
    if (n >= 1)
        strcpy(pool, seg[0]);
    if (n == 3)
        strcpy(id, seg[2]);
    return n;
}

/* allow: complete "Allow: ...\r\n" header line */
static int method_not_allowed(struct admin_buf *out, const char **extra,
                              const char *allow)
{
    *extra = allow;
    return error(out, 405, "method not allowed");
}

static int list_pools(const struct admin_control *ctl, struct admin_buf *out)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *list = cJSON_CreateArray();
    if (!doc || !list) {
        cJSON_Delete(doc);
        cJSON_Delete(list);
        return send_json(out, NULL, 500);
    }
    cJSON_AddItemToObject(doc, "pools", list);
    struct backendset *s;
    for (size_t i = 0; (s = ctl->pool_at(ctl->ctx, i)) != NULL; i++)
        cJSON_AddItemToArray(list, pool_json(s));
    return send_json(out, doc, 200);
}

static int add_backend(struct backendset *s, const struct admin_api_req *rq,
                       uint64_t now_us, struct admin_buf *out)
{
    struct change c;
    cJSON *doc;
    const char *why = "";
    char err[256];
    int st = parse_change(rq, true, &doc, &c, &why);
    if (st) {
        cJSON_Delete(doc);
        return error(out, st, why);
    }
    const char *tls_host = c.tls ? (c.tls_name ? c.tls_name : "") : NULL;
    int idx =
        backendset_add(s, c.id, c.address, tls_host,
                       c.has_weight ? c.weight : 1, now_us, err, sizeof(err));
    if (idx >= 0 && c.has_state)
        backendset_set_state(s, c.id, c.state, now_us);
    cJSON_Delete(doc);
    if (idx < 0)
        return error(out, errno == EEXIST || errno == ENOSPC ? 409 : 400, err);
    return send_json(out, backend_json(s, (size_t)idx), 201);
}

static int change_backend(struct backendset *s, const char *id,
                          const struct admin_api_req *rq, uint64_t now_us,
                          struct admin_buf *out)
{
    struct change c;
    cJSON *doc;
    const char *why = "";
    int st = parse_change(rq, false, &doc, &c, &why);
    cJSON_Delete(doc);
    if (st)
        return error(out, st, why);
    int idx = backendset_find(s, id);
    if (idx < 0)
        return error(out, 404, "no such backend");
    /* both fields were checked: neither can fail now */
    if (c.has_weight)
        backendset_set_weight(s, id, c.weight);
    if (c.has_state)
        backendset_set_state(s, id, c.state, now_us);
    return send_json(out, backend_json(s, (size_t)idx), 200);
}

int admin_api_handle(const struct admin_sources *src, const char *token,
                     const struct admin_api_req *rq, uint64_t now_us,
                     struct admin_buf *out, const char **extra)
{
    const struct admin_control *ctl = src->control;
    const char *m = rq->method;
    char pool[128] = "", id[128] = "";

    *extra = "";
    if (!token || !token[0] || !ctl)
        return error(out, 404, "the runtime API is off (admin_token_file)");
    if (!authorized(rq->auth, token)) {
        *extra = AUTH_HEADER;
        return error(out, 401,
                     "a valid Authorization: Bearer token is "
                     "required");
    }
    if (rq->body_len > ADMIN_API_BODY_MAX || rq->body_len > rq->body_kept)
        return error(out, 413, "body too large");
    int parts = split(rq->path, pool, id);
    if (parts < 0)
        return error(out, 404, "no such resource");
    if (parts == 0)
        return strcmp(m, "GET")
                   ? method_not_allowed(out, extra, "Allow: GET\r\n")
                   : list_pools(ctl, out);
    struct backendset *s = ctl->lookup_pool(ctl->ctx, pool);
    if (!s)
        return error(out, 404, "no such pool");
    if (parts == 1 || parts == 2) {
        if (!strcmp(m, "GET"))
            return send_json(out, pool_json(s), 200);
        if (parts == 2 && !strcmp(m, "POST"))
            return add_backend(s, rq, now_us, out);
        return method_not_allowed(
            out, extra, parts == 1 ? "Allow: GET\r\n" : "Allow: GET, POST\r\n");
    }
    if (!strcmp(m, "PATCH") || !strcmp(m, "POST"))
        return change_backend(s, id, rq, now_us, out);
    int idx = backendset_find(s, id);
    if (strcmp(m, "GET") && strcmp(m, "DELETE"))
        return method_not_allowed(out, extra,
                                  "Allow: GET, PATCH, POST, DELETE\r\n");
    if (idx < 0)
        return error(out, 404, "no such backend");
    if (!strcmp(m, "GET"))
        return send_json(out, backend_json(s, (size_t)idx), 200);
    cJSON *doc = backend_json(s, (size_t)idx);
    backendset_remove(s, id);
    if (doc)
        cJSON_ReplaceItemInObject(doc, "state", cJSON_CreateString("removed"));
    return send_json(out, doc, 200);
}
