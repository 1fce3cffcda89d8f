/*
 * resolver: c-ares on the event loop.  c-ares tells us which sockets it
 * wants watched (ARES_OPT_SOCK_STATE_CB); each becomes a loop_io whose
 * events go to ares_process_fd, and one loop_timer follows ares_timeout
 * for c-ares' own retries and timeouts.  Each watch has a timer for its
 * next resolution and at most one resolution in flight; a resolution is a
 * getaddrinfo (A and AAAA) for a host, or an SRV query and then a
 * getaddrinfo per distinct target.  The answer is built in the watch
 * (src/resolver_answer.c does the sorting and comparing) and reported when
 * it differs from the last one reported (include/resolver.h).
 *
 * Re-entrancy: c-ares calls our callbacks from inside ares_process_fd,
 * ares_getaddrinfo (a name from /etc/hosts answers at once) and
 * ares_destroy.  Every entry into c-ares goes through enter()/leave(); a
 * resolver_destroy() made inside (from a user callback) only marks the
 * resolver dead, and the last leave() tears it down.  Watches, sockets and
 * the resolver itself are freed through loop_defer, so a stale event or a
 * user still holding the answer in its callback never touches freed
 * memory.
 */
#include "resolver.h"

#include "loop.h"
#include "net.h"

#include <ares.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define RESOLVER_TRIES 2 /* per server; c-ares doubles the timeout */

struct rsock {
    struct loop_io io;
    struct resolver *r;
    struct rsock *next;
};

/* One getaddrinfo of a watch: the name, and for SRV the first record that
 * names it (the others with the same target follow in w->srv). */
struct rtarget {
    struct resolver_watch *w;
    const char *name;
    size_t first_rec;
};

struct resolver_watch {
    struct resolver *r;
    struct resolver_watch *next;
    enum resolver_kind kind;
    char name[RESOLVER_NAME_MAX + 1];
    unsigned port;
    unsigned interval_ms;
    resolver_fn *fn;
    void *arg;
    struct loop_timer timer; /* the next resolution */
    bool removed;
    unsigned refs; /* queries in flight, plus one while launching them */

    /* the resolution in flight */
    enum resolver_status round_status; /* the worst failure seen */
    char round_reason[160];
    struct resolver_answer cur;
    struct resolver_srv srv[RESOLVER_MAX_ADDRS];
    size_t nsrv;
    struct rtarget targets[RESOLVER_MAX_ADDRS];
    size_t ntargets;

    /* what was reported */
    bool reported;
    enum resolver_status last_status;
    char last_reason[160];
    bool have_good;
    struct resolver_answer good; /* the last ok answer reported */
    unsigned failures;
};

struct resolver {
    struct loop *loop;
    ares_channel ch;
    bool ch_ok;
    struct loop_timer timer; /* ares_timeout */
    struct rsock *socks;
    struct resolver_watch *watches;
    size_t nwatches;
    size_t queries; /* in c-ares */
    unsigned depth; /* nested entries into c-ares */
    bool dead;      /* resolver_destroy was called */
    bool torn_down;
};

static void teardown(struct resolver *r);

/* ---- c-ares on the loop ---- */

static void enter(struct resolver *r)
{
    r->depth++;
}

/* Leaves c-ares: re-arms the timeout timer, or finishes a destroy that was
 * asked for inside. */
static void leave(struct resolver *r)
{
    if (--r->depth > 0)
        return;
    if (r->dead) {
        teardown(r);
        return;
    }
    struct timeval tv, *tvp = ares_timeout(r->ch, NULL, &tv);
    if (tvp)
        loop_timer_after(r->loop, &r->timer,
                         (uint64_t)tvp->tv_sec * 1000000u +
                             (uint64_t)tvp->tv_usec);
    else
        loop_timer_cancel(r->loop, &r->timer);
}

static void on_sock(struct loop *loop, struct loop_io *io, unsigned events)
{
    (void)loop;
    struct rsock *s = io->ctx;
    struct resolver *r = s->r;
    int fd = io->fd;
    if (r->dead)
        return;
    enter(r);
    ares_process_fd(r->ch, (events & LOOP_READ) ? fd : ARES_SOCKET_BAD,
                    (events & LOOP_WRITE) ? fd : ARES_SOCKET_BAD);
    leave(r);
}

static void on_ares_timer(struct loop *loop, struct loop_timer *t)
{
    (void)loop;
    struct resolver *r = t->ctx;
    if (r->dead)
        return;
    enter(r);
    ares_process_fd(r->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    leave(r);
}

/* c-ares opens, changes or (readable = writable = 0) closes a socket. */
static void on_sock_state(void *data, ares_socket_t fd, int readable,
                          int writable)
{
    struct resolver *r = data;
    struct rsock **pp = &r->socks, *s;
    while ((s = *pp) != NULL && s->io.fd != fd)
        pp = &s->next;
    unsigned events = (readable ? LOOP_READ : 0) | (writable ? LOOP_WRITE : 0);
    if (events == 0) {
        if (s) {
            loop_io_del(r->loop, &s->io); /* c-ares closes the fd next */
            *pp = s->next;
            loop_defer(r->loop, free, s);
        }
        return;
    }
    if (s) {
        loop_io_mod(r->loop, &s->io, events);
        return;
    }
    s = calloc(1, sizeof(*s));
    if (!s)
        return; /* its queries time out */
    s->r = r;
    s->io.fn = on_sock;
    s->io.ctx = s;
    if (loop_io_add(r->loop, &s->io, fd, events) < 0) {
        free(s);
        return;
    }
    s->next = r->socks;
    r->socks = s;
}

/* ---- a watch's resolution ---- */

/* Notes a failure of the resolution in flight; the first failure of the
 * worst kind (error over empty) is the reason reported. */
static void __attribute__((format(printf, 3, 4)))
fail(struct resolver_watch *w, enum resolver_status st, const char *fmt, ...)
{
    if (w->round_status == RESOLVER_ERROR ||
        (w->round_status == RESOLVER_EMPTY && st == RESOLVER_EMPTY))
        return;
    w->round_status = st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->round_reason, sizeof(w->round_reason), fmt, ap);
    va_end(ap);
}

/* What a c-ares status means for the answer, and a short reason. */
static enum resolver_status classify(int st, const char **why)
{
    switch (st) {
    case ARES_ENOTFOUND:
        *why = "nxdomain";
        return RESOLVER_EMPTY;
    case ARES_ENODATA:
        *why = "no records";
        return RESOLVER_EMPTY;
    case ARES_ETIMEOUT:
        *why = "timeout";
        break;
    case ARES_EBADRESP:
        *why = "malformed answer";
        break;
    case ARES_ESERVFAIL:
        *why = "server failure";
        break;
    case ARES_EREFUSED:
        *why = "refused";
        break;
    case ARES_ECONNREFUSED: /* every server: SERVFAIL, REFUSED, NOTIMP */
        *why = "servers refused or failed";
        break;
    case ARES_EFORMERR:
        *why = "format error";
        break;
    default:
        *why = ares_strerror(st);
        break;
    }
    return RESOLVER_ERROR;
}

static void report(struct resolver_watch *w);

static void watch_free(void *p)
{
    free(p);
}

/* Drops one reference of the resolution in flight: the last one ends it. */
static void release(struct resolver_watch *w)
{
    if (--w->refs > 0)
        return;
    if (w->removed || w->r->dead) {
        if (w->removed)
            loop_defer(w->r->loop, watch_free, w);
        return; /* a dead resolver's teardown frees the rest */
    }
    report(w);
}

static void on_addrinfo(void *arg, int status, int timeouts,
                        struct ares_addrinfo *res)
{
    (void)timeouts;
    struct rtarget *t = arg;
    struct resolver_watch *w = t->w;
    w->r->queries--;
    if (w->removed || w->r->dead) {
        ares_freeaddrinfo(res);
        release(w);
        return;
    }
    const char *why;
    if (status != ARES_SUCCESS) {
        enum resolver_status st = classify(status, &why);
        if (w->kind == RESOLVER_HOST)
            fail(w, st, "%s", why);
        else
            fail(w, st, "target %s: %s", t->name, why);
    } else {
        unsigned found = 0;
        for (struct ares_addrinfo_node *n = res ? res->nodes : NULL; n;
             n = n->ai_next) {
            if (n->ai_family != AF_INET && n->ai_family != AF_INET6)
                continue;
            found++;
            uint32_t ttl = n->ai_ttl > 0 ? (uint32_t)n->ai_ttl : 0;
            if (ttl < w->cur.ttl_s)
                w->cur.ttl_s = ttl;
            if (w->kind == RESOLVER_HOST) {
                resolver_answer_add(&w->cur, n->ai_addr, w->port, 1, 0,
                                    w->name);
                continue;
            }
            for (size_t i = t->first_rec; i < w->nsrv; i++)
                if (strcmp(w->srv[i].target, t->name) == 0)
                    resolver_answer_add(&w->cur, n->ai_addr, w->srv[i].port,
                                        w->srv[i].weight, w->srv[i].priority,
                                        t->name);
        }
        /* an alias lives as long as the shortest link of its chain */
        for (struct ares_addrinfo_cname *c = res ? res->cnames : NULL;
             c && found > 0; c = c->next)
            if (c->ttl >= 0 && (uint32_t)c->ttl < w->cur.ttl_s)
                w->cur.ttl_s = (uint32_t)c->ttl;
        if (found == 0 && w->kind == RESOLVER_HOST)
            fail(w, RESOLVER_EMPTY, "no address");
        else if (found == 0)
            fail(w, RESOLVER_EMPTY, "target %s: no address", t->name);
    }
    ares_freeaddrinfo(res);
    release(w);
}

static void lookup(struct resolver_watch *w, const char *name, size_t rec)
{
    struct rtarget *t = &w->targets[w->ntargets++];
    t->w = w;
    t->name = name;
    t->first_rec = rec;
    struct ares_addrinfo_hints hints = {
        .ai_flags = ARES_AI_NOSORT, /* sorting would connect() sockets */
        .ai_family = AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
    };
    w->refs++;
    w->r->queries++;
    ares_getaddrinfo(w->r->ch, name, NULL, &hints, on_addrinfo, t);
}

/* Copies the SRV records (at most RESOLVER_MAX_ADDRS, valid names only),
 * keeps the lowest priority and starts one lookup per distinct target. */
static bool srv_usable(const struct ares_srv_reply *s)
{
    return s->port != 0 && s->host[0] != '\0' && strcmp(s->host, ".") != 0 &&
           strlen(s->host) <= RESOLVER_NAME_MAX && net_name_valid(s->host);
}

static void srv_targets(struct resolver_watch *w, struct ares_srv_reply *list)
{
    size_t bad = 0, total = 0, root = 0;
    unsigned best = UINT32_MAX;
    /* the lowest priority first, so that the cap below keeps its records
     * however many others the answer lists before them */
    for (struct ares_srv_reply *s = list; s; s = s->next)
        if (srv_usable(s) && s->priority < best)
            best = s->priority;
    w->nsrv = 0;
    for (struct ares_srv_reply *s = list; s; s = s->next) {
        total++;
        if (s->host[0] == '\0' || strcmp(s->host, ".") == 0) {
            root++; /* RFC 2782: "." says the service is not offered */
            continue;
        }
        if (!srv_usable(s)) {
            bad += s->port != 0;
            continue;
        }
        if (s->priority != best)
            continue;
        if (w->nsrv == RESOLVER_MAX_ADDRS) {
            w->cur.dropped++;
            continue;
        }
        struct resolver_srv *r = &w->srv[w->nsrv++];
        snprintf(r->target, sizeof(r->target), "%s", s->host);
        r->port = s->port;
        r->weight = s->weight;
        r->priority = s->priority;
    }
    w->nsrv = resolver_srv_select(w->srv, w->nsrv);
    if (w->nsrv == 0) {
        if (bad > 0)
            fail(w, RESOLVER_ERROR, "bad target name in answer");
        else
            fail(w, RESOLVER_EMPTY, "%s",
                 root > 0 && root == total ? "service not offered"
                                           : "no usable record");
        return;
    }
    for (size_t i = 0; i < w->nsrv; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(w->srv[j].target, w->srv[i].target) == 0;
        if (!seen)
            lookup(w, w->srv[i].target, i);
    }
}

static void on_srv(void *arg, int status, int timeouts, unsigned char *abuf,
                   int alen)
{
    (void)timeouts;
    struct resolver_watch *w = arg;
    w->r->queries--;
    if (w->removed || w->r->dead) {
        release(w);
        return;
    }
    const char *why;
    struct ares_srv_reply *list = NULL;
    if (status != ARES_SUCCESS) {
        enum resolver_status st = classify(status, &why);
        fail(w, st, "%s", why);
    } else if ((status = ares_parse_srv_reply(abuf, alen, &list)) !=
               ARES_SUCCESS) {
        enum resolver_status st = classify(status, &why);
        fail(w, st, "%s", why);
    } else {
        uint32_t ttl;
        if (resolver_msg_min_ttl(abuf, (size_t)alen, ns_t_srv, &ttl) == 0 &&
            ttl < w->cur.ttl_s)
            w->cur.ttl_s = ttl;
        srv_targets(w, list); /* on_srv's own reference is held here */
        ares_free_data(list);
    }
    release(w);
}

static void start(struct loop *loop, struct loop_timer *timer)
{
    (void)loop;
    struct resolver_watch *w = timer->ctx;
    struct resolver *r = w->r;
    if (w->refs > 0 || w->removed || r->dead)
        return; /* one resolution at a time */
    resolver_answer_clear(&w->cur);
    w->round_status = RESOLVER_OK;
    w->round_reason[0] = '\0';
    w->ntargets = 0;
    w->nsrv = 0;
    enter(r);
    w->refs = 1; /* held while launching: answers may come at once */
    if (w->kind == RESOLVER_HOST) {
        lookup(w, w->name, 0);
    } else {
        w->refs++;
        r->queries++;
        ares_search(r->ch, w->name, ns_c_in, ns_t_srv, on_srv, w);
    }
    release(w);
    leave(r);
}

/* A resolution ended: the answer's status, the next one's time, and the
 * callback when the answer differs from the last one reported. */
static void report(struct resolver_watch *w)
{
    struct resolver_answer *a = &w->cur;
    resolver_answer_sort(a);
    if (w->round_status == RESOLVER_ERROR || a->n == 0) {
        a->status =
            w->round_status == RESOLVER_OK ? RESOLVER_EMPTY : w->round_status;
        snprintf(a->reason, sizeof(a->reason), "%s",
                 w->round_reason[0] ? w->round_reason : "no address");
        a->n = 0;
    } else {
        a->status = RESOLVER_OK; /* a target gone (NXDOMAIN) drops out */
        a->reason[0] = '\0';
    }
    bool ok = a->status == RESOLVER_OK;
    if (a->ttl_s == UINT32_MAX)
        a->ttl_s = 0;
    w->failures = ok ? 0 : w->failures + 1;
    a->failures = w->failures;
    a->next_ms = resolver_next_ms(ok, a->ttl_s, w->failures, w->interval_ms);
    loop_timer_after(w->r->loop, &w->timer, (uint64_t)a->next_ms * 1000u);
    a->changed = ok && !(w->have_good && resolver_answer_same_set(a, &w->good));
    bool differs = !w->reported || a->status != w->last_status ||
                   strcmp(a->reason, w->last_reason) != 0 || a->changed;
    w->reported = true;
    w->last_status = a->status;
    snprintf(w->last_reason, sizeof(w->last_reason), "%s", a->reason);
    if (a->changed) {
        w->good = *a;
        w->have_good = true;
    }
    if (differs)
        w->fn(w->arg, a); /* last: the callback may unwatch or destroy */
}

/* ---- the API ---- */

struct resolver *resolver_create(struct loop *loop, const char *servers,
                                 unsigned timeout_ms, char *err, size_t errlen)
{
    struct resolver *r = calloc(1, sizeof(*r));
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->loop = loop;
    r->timer.fn = on_ares_timer;
    r->timer.ctx = r;
    int st = ares_library_init(ARES_LIB_INIT_ALL);
    if (st != ARES_SUCCESS) {
        snprintf(err, errlen, "c-ares: %s", ares_strerror(st));
        free(r);
        return NULL;
    }
    struct ares_options o;
    memset(&o, 0, sizeof(o));
    o.sock_state_cb = on_sock_state;
    o.sock_state_cb_data = r;
    o.timeout = (int)(timeout_ms ? timeout_ms : 2000);
    o.tries = RESOLVER_TRIES;
    int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
    st = ares_init_options(&r->ch, &o, mask);
    if (st != ARES_SUCCESS) {
        snprintf(err, errlen, "c-ares: %s", ares_strerror(st));
        goto fail;
    }
    r->ch_ok = true;
    if (servers && servers[0] != '\0' &&
        (st = ares_set_servers_ports_csv(r->ch, servers)) != ARES_SUCCESS) {
        snprintf(err, errlen, "DNS servers '%s': %s", servers,
                 ares_strerror(st));
        goto fail;
    }
    return r;
fail:
    if (r->ch_ok)
        ares_destroy(r->ch);
    ares_library_cleanup();
    free(r);
    return NULL;
}

static void resolver_free(void *p)
{
    free(p);
}

/* Destroys the channel (its callbacks see r->dead) and frees everything
 * after the current dispatch round. */
static void teardown(struct resolver *r)
{
    if (r->torn_down)
        return;
    r->torn_down = true;
    r->depth++; /* callbacks from ares_destroy must not re-enter */
    loop_timer_cancel(r->loop, &r->timer);
    for (struct resolver_watch *w = r->watches; w; w = w->next)
        loop_timer_cancel(r->loop, &w->timer);
    ares_destroy(r->ch); /* closes the sockets: on_sock_state frees them */
    ares_library_cleanup();
    struct resolver_watch *w = r->watches;
    while (w) {
        struct resolver_watch *next = w->next;
        loop_defer(r->loop, watch_free, w); /* removed ones are not here */
        w = next;
    }
    r->watches = NULL;
    while (r->socks) { /* any c-ares did not close */
        struct rsock *s = r->socks;
        r->socks = s->next;
        loop_io_del(r->loop, &s->io);
        loop_defer(r->loop, free, s);
    }
    loop_defer(r->loop, resolver_free, r);
}

void resolver_destroy(struct resolver *r)
{
    if (!r || r->dead)
        return;
    r->dead = true;
    if (r->depth == 0)
        teardown(r);
}

struct resolver_watch *resolver_watch(struct resolver *r,
                                      enum resolver_kind kind, const char *name,
                                      unsigned port, unsigned interval_ms,
                                      resolver_fn *fn, void *arg, char *err,
                                      size_t errlen)
{
    if (!name || strlen(name) > RESOLVER_NAME_MAX || !net_name_valid(name)) {
        snprintf(err, errlen, "'%s' is not a DNS name", name ? name : "");
        return NULL;
    }
    if (kind == RESOLVER_HOST && (port < 1 || port > 65535)) {
        snprintf(err, errlen, "port %u not in 1..65535", port);
        return NULL;
    }
    if (r->nwatches >= RESOLVER_MAX_WATCHES) {
        snprintf(err, errlen, "more than %d names watched",
                 RESOLVER_MAX_WATCHES);
        return NULL;
    }
    struct resolver_watch *w = calloc(1, sizeof(*w));
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->r = r;
    w->kind = kind;
    snprintf(w->name, sizeof(w->name), "%s", name);
    w->port = kind == RESOLVER_HOST ? port : 0;
    w->interval_ms = interval_ms < RESOLVER_MIN_INTERVAL_MS
                         ? RESOLVER_MIN_INTERVAL_MS
                         : interval_ms;
    w->fn = fn;
    w->arg = arg;
    w->cur.name = w->name;
    w->cur.kind = kind;
    w->good.name = w->name;
    w->good.kind = kind;
    w->timer.fn = start;
    w->timer.ctx = w;
    w->next = r->watches;
    r->watches = w;
    r->nwatches++;
    /* From the loop, not from here: the first answer (from /etc/hosts, at
     * once) must not reach the callback before the caller has the watch. */
    loop_timer_after(r->loop, &w->timer, 0);
    return w;
}

void resolver_unwatch(struct resolver_watch *w)
{
    if (!w || w->removed)
        return;
    struct resolver *r = w->r;
    w->removed = true;
    loop_timer_cancel(r->loop, &w->timer);
    struct resolver_watch **pp = &r->watches;
    while (*pp && *pp != w)
        pp = &(*pp)->next;
    if (*pp)
        *pp = w->next;
    r->nwatches--;
    if (w->refs == 0)
        loop_defer(r->loop, watch_free, w);
    /* else the last query's callback frees it (release) */
}

size_t resolver_queries(const struct resolver *r)
{
    return r->queries;
}
