/*
 * server: listener, accept, signals, graceful drain, reload.
 */
#include "server.h"

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "admin_api.h"
#include "backendset.h"
#include "balancer.h"
#include "session.h"
#include "config.h"
#include "csvlog.h"
#include "health.h"
#include "log.h"
#include "loop.h"
#include "net.h"
#include "backendset.h"
#include "pool.h"
#include "pool_dns.h"
#include "resolver.h"
#include "proxyaccept.h"
#include "record.h"
#include "stats.h"
#include "tls.h"
#include "tls_client.h"
#include "upstream.h"
#include "sharedgen.h"
#include "workers.h"

#define SERVER_BACKLOG 4096 /* accept bursts of thousands of clients */

struct server {
    struct loop *loop;
    struct config cfg;
    int argc;
    char **argv;
    struct session_ctx ctx;
    struct proxyaccept pa; /* connections waiting for a PROXY header */
    struct loop_io listen_io;
    struct loop_io tls_listen_io; /* [tls] listen; unregistered when off */
    struct tls_acceptor *tls_acc; /* handshakes; NULL without TLS */
    struct loop_io sig_io;
    struct loop_timer accept_timer; /* resumes accept after EMFILE */
    struct loop_timer drain_timer;
    bool accept_paused;
    bool draining;
    uint64_t last_emfile_warn;
    struct csvlog *csv;
    struct stats *stats; /* the total; with one pool, that pool's too */
    struct admin *admin;
    struct admin_sources admin_src;
    struct resolver *resolver;    /* NULL until a pool has a named backend */
    char resolver_servers[256];   /* the [dns] resolvers it was made with */
    struct pool_dns *dns;         /* the current pools' named backends */
    struct admin_control control; /* the runtime API's view of the pools */
    char token[ADMIN_API_TOKEN_MAX + 1]; /* "" = no runtime API */
    struct loop_timer publish_timer;     /* --workers N: on_publish */
    struct worker_counters sum;          /* worker 0: every worker's */
};

static struct server srv;
/* --workers N: this process's place among the master's workers */
static struct worker_self wk;
static bool is_worker;

void server_set_worker(const struct worker_self *w)
{
    wk = *w;
    is_worker = true;
}

/* Every WORKER_PUBLISH_MS: this worker's own counters into its row; in
 * worker 0, their sum over the workers (the dead ones' included) into
 * srv.sum, which its admin shows. */
static void publish(void)
{
    workers_publish(&wk.rows[wk.index], &srv.ctx, &srv.pa,
                    srv.tls_acc ? tls_acceptor_counters(srv.tls_acc) : NULL);
    if (wk.index == 0)
        workers_sum(wk.rows, wk.count + 1, &srv.sum);
}

static void on_publish(struct loop *loop, struct loop_timer *t)
{
    publish();
    loop_timer_after(loop, t, WORKER_PUBLISH_MS * 1000u);
}

/* The figures this worker shows in its row of the shared region. */
static void row_connections(size_t n)
{
    if (is_worker)
        wk.rows[wk.index].connections = n;
}

static void set_accepting(bool on)
{
    if (srv.listen_io.registered)
        loop_io_mod(srv.loop, &srv.listen_io, on ? LOOP_READ : 0);
    if (srv.tls_listen_io.registered)
        loop_io_mod(srv.loop, &srv.tls_listen_io, on ? LOOP_READ : 0);
    srv.accept_paused = !on;
}

/* Client connections open, counting TLS handshakes under way. */
static size_t clients_now(void)
{
    return srv.ctx.nsessions + srv.pa.npending +
           tls_acceptor_pending(srv.tls_acc);
}

static void on_accept(struct loop *loop, struct loop_io *io, unsigned events)
{
    (void)events;
    /* Workers on one shared listener take one connection per wakeup, so
     * that every worker woken gets its turn (docs/workers.md). */
    int batch = is_worker && !srv.cfg.reuseport ? 1 : 64;
    for (int i = 0; i < batch; i++) {
        if (clients_now() >= srv.cfg.max_clients) {
            set_accepting(false); /* resumes when a client closes */
            return;
        }
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(io->fd, (struct sockaddr *)&ss, &sl,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
                errno == ECONNABORTED)
                return;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                errno == ENOMEM) {
                /* Never spin: pause accepting and retry a little later. */
                uint64_t now = loop_now(loop);
                if (now - srv.last_emfile_warn > 10000000u) {
                    log_warn("accept (pausing 100 ms)");
                    srv.last_emfile_warn = now;
                }
                set_accepting(false);
                loop_timer_after(loop, &srv.accept_timer, 100000);
                return;
            }
            log_warn("accept");
            return;
        }
        if (io == &srv.tls_listen_io) {
            tls_accept(srv.tls_acc, fd, (struct sockaddr *)&ss, sl);
        } else if (srv.cfg.proxy_protocol) {
            srv.pa.timeout_ms = srv.cfg.client_header_timeout_ms;
            proxyaccept_start(&srv.pa, fd, (struct sockaddr *)&ss, sl);
        } else {
            session_accept(&srv.ctx, fd, (struct sockaddr *)&ss, sl, NULL);
        }
        row_connections(clients_now());
    }
}

static void on_accept_timer(struct loop *loop, struct loop_timer *t)
{
    (void)loop;
    (void)t;
    if (!srv.draining)
        set_accepting(true);
}

static void on_client_close(void *arg)
{
    (void)arg;
    row_connections(clients_now());
    if (srv.draining) {
        if (clients_now() == 0)
            loop_stop(srv.loop);
        return;
    }
    if (srv.accept_paused && !loop_timer_armed(&srv.accept_timer) &&
        clients_now() < srv.cfg.max_clients)
        set_accepting(true);
}

/* A TLS handshake finished: the connection becomes a session. */
static int on_tls_ready(void *arg, int fd, const struct sockaddr *sa,
                        socklen_t salen, const struct transport *tr,
                        void *state)
{
    (void)arg;
    return session_accept_tr(&srv.ctx, fd, sa, salen, NULL, tr, state);
}

/* The current pool a record's pool stands for: the same pool when the
 * request ran on the current set, else (a request that started before a
 * reload) the pool with the same name, or NULL when the reload removed it
 * or the request was never routed. */
static struct pool *current_pool(const char *name, int index)
{
    struct pool_set *ps = srv.ctx.gen;
    if (!name || index < 0)
        return NULL;
    /* a record of this set names its pool by the pool's own string */
    if ((size_t)index < ps->npools &&
        (ps->pools[index]->cfg.pool == name ||
         strcmp(ps->pools[index]->cfg.pool, name) == 0))
        return ps->pools[index];
    return pool_set_find(ps, name);
}

/* The stats index of a backend of pool p named by a request: its slot
 * while it still holds that id, else the live backend of that id, or -1
 * when gone (backendset.h). */
static int stats_index(const struct pool *p, int backend, const char *id)
{
    return p ? backendset_stats_index(&p->set, backend, id) : -1;
}

/* The runtime API's pools: those of the current set. */
static struct backendset *pool_at(void *ctx, size_t i)
{
    (void)ctx;
    struct pool_set *ps = srv.ctx.gen;
    return i < ps->npools ? &ps->pools[i]->set : NULL;
}

static struct backendset *lookup_pool(void *ctx, const char *name)
{
    (void)ctx;
    struct pool *p = pool_set_find(srv.ctx.gen, name);
    return p ? &p->set : NULL;
}

/* Reads cfg's admin_token_file into buf ("" when unset): 0, or -1 with
 * err filled. */
static int read_token(const struct config *cfg, char *buf, size_t len,
                      char *err, size_t errlen)
{
    buf[0] = '\0';
    if (cfg->admin_token_file[0] == '\0')
        return 0;
    return admin_api_read_token(cfg->admin_token_file, buf, len, err, errlen);
}

static void on_record(void *arg, const struct record *r)
{
    (void)arg;
    if (srv.csv)
        csvlog_write(srv.csv, r);
    if (is_worker)
        wk.rows[wk.index].requests++;
    uint64_t now = loop_now(srv.loop);
    struct pool *p = current_pool(r->pool, r->pool_index);
    if (p && p->stats) {
        stats_record_as(p->stats, r, stats_index(p, r->backend, r->backend_id),
                        now);
        if (p->stats == srv.stats)
            return;
    }
    stats_record_as(srv.stats, r, -1, now); /* the total over every pool */
}

static void on_attempt_failed(void *arg, const struct pool *pool, int backend,
                              const char *backend_id, int err, int status)
{
    (void)arg;
    struct pool *p = current_pool(pool->cfg.pool, (int)pool->index);
    int i = stats_index(p, backend, backend_id);
    if (i >= 0 && p->stats)
        stats_attempt_failed(p->stats, (size_t)i, err, status,
                             loop_now(srv.loop));
}

/* Gives each pool of a new set its stats: with one pool, the total's
 * object (so a request is counted once); with more, each its own, taken
 * over from the old set's pool of the same name with the backends
 * following by id.  The old set keeps none. */
static int attach_stats(struct pool_set *ps, struct pool_set *old)
{
    int rc = 0;
    for (size_t i = 0; i < ps->npools; i++) {
        struct pool *p = ps->pools[i];
        struct pool *o = pool_set_find(old, p->cfg.pool);
        struct stats *st = NULL;
        bool follow = false; /* st holds o's backends: follow them by id */
        if (ps->npools == 1) {
            st = srv.stats;
            follow = o && o->stats == srv.stats;
        } else if (o && o->stats && o->stats != srv.stats) {
            st = o->stats;
            follow = true;
        }
        int from[CONFIG_MAX_BACKENDS];
        for (size_t j = 0; j < p->cfg.nbackends; j++) {
            from[j] = -1;
            if (follow) /* the old set's slot, runtime changes included */
                from[j] = backendset_find(&o->set, p->cfg.backends[j].id);
        }
        if (follow)
            o->stats = NULL;
        if (!st)
            st = stats_create(p->cfg.nbackends, loop_now(srv.loop));
        else if (stats_remap(st, p->cfg.nbackends, from) != 0)
            rc = -1; /* kept as it was: counts land by index */
        if (!st)
            return -1;
        p->stats = st;
        p->set.stats = st;
    }
    if (ps->npools != 1) {
        int none[1];
        if (stats_remap(srv.stats, 0, none) != 0)
            rc = -1;
    }
    for (size_t i = 0; old && i < old->npools; i++) {
        struct pool *o = old->pools[i];
        if (o->stats && o->stats != srv.stats)
            stats_destroy(o->stats); /* a pool the reload removed */
        o->stats = NULL;
        o->set.stats = NULL;
    }
    return rc;
}

/* Starts following the named backends of ps (replacing old's watches,
 * whose addresses it starts from): the resolver is made, or made again
 * when [dns] resolvers changed.  0, or -1 with err filled (the pools then
 * keep what they have). */
static int start_dns(struct pool_set *ps, const struct config *cfg, char *err,
                     size_t errlen)
{
    struct pool_dns *old = srv.dns, *d = NULL;
    if (!pool_dns_wanted(ps)) {
        srv.dns = NULL;
        pool_dns_stop(old);
        return 0;
    }
    struct resolver *r = srv.resolver;
    if (!r || strcmp(srv.resolver_servers, cfg->dns_resolvers) != 0)
        r = resolver_create(srv.loop, cfg->dns_resolvers, cfg->dns_timeout_ms,
                            err, errlen);
    if (r)
        d = pool_dns_start(r, srv.loop, ps, old, err, errlen);
    if (!d) {
        if (r && r != srv.resolver)
            resolver_destroy(r);
        return -1;
    }
    pool_dns_stop(old);
    if (r != srv.resolver) {
        resolver_destroy(srv.resolver);
        srv.resolver = r;
        snprintf(srv.resolver_servers, sizeof(srv.resolver_servers), "%s",
                 cfg->dns_resolvers);
    }
    srv.dns = d;
    return 0;
}

/* Frees the stats the pools own (at exit). */
static void attach_stats_release(struct pool_set *ps)
{
    for (size_t i = 0; i < ps->npools; i++) {
        if (ps->pools[i]->stats != srv.stats)
            stats_destroy(ps->pools[i]->stats);
        ps->pools[i]->stats = NULL;
        ps->pools[i]->set.stats = NULL;
    }
}

/* Worker 0 of --workers N: a pool's table changed (DNS, the runtime
 * API): the other workers follow. */
static void publish_pool(void *ctx, const struct backendset *s)
{
    shared_pool_publish(ctx, s->up);
}

/* The admin's view of the current pools. */
static size_t admin_pools_of(void *ctx, struct admin_pool *out, size_t max)
{
    (void)ctx;
    struct pool_set *ps = srv.ctx.gen;
    for (size_t i = 0; i < ps->npools && i < max; i++) {
        struct pool *p = ps->pools[i];
        out[i] = (struct admin_pool){p->cfg.pool, &p->set, &p->cfg,
                                     p->stats,    p->bal,  p->up};
    }
    return ps->npools;
}

/* Stops watching a socket of ours and closes it (nothing when unused). */
static void close_io(struct loop_io *io)
{
    if (!io->registered)
        return;
    loop_io_del(srv.loop, io);
    close(io->fd);
}

static void start_drain(void)
{
    if (srv.draining)
        return;
    srv.draining = true;
    log_info("draining %zu connection(s), deadline %u ms", srv.ctx.nsessions,
             srv.cfg.drain_timeout_ms);
    /* A SO_REUSEPORT listener's queue dies with it: take in what waits
     * there first (the others' listeners get everything after). */
    for (int i = 0; is_worker && srv.cfg.reuseport && i < 16; i++) {
        if (srv.listen_io.registered)
            on_accept(srv.loop, &srv.listen_io, 0);
        if (srv.tls_listen_io.registered)
            on_accept(srv.loop, &srv.tls_listen_io, 0);
    }
    close_io(&srv.listen_io);
    close_io(&srv.tls_listen_io);
    if (is_worker) /* the next generation's worker 0 takes it over */
        admin_stop_accepting(srv.admin);
    loop_timer_cancel(srv.loop, &srv.accept_timer);
    proxyaccept_close_all(&srv.pa);
    tls_acceptor_abort(srv.tls_acc); /* no new sessions while draining */
    session_drain_all(&srv.ctx);
    if (clients_now() == 0)
        loop_stop(srv.loop);
    else
        loop_timer_after(srv.loop, &srv.drain_timer,
                         (uint64_t)srv.cfg.drain_timeout_ms * 1000);
}

static void on_drain_deadline(struct loop *loop, struct loop_timer *t)
{
    (void)t;
    log_warnx("drain deadline passed: closing %zu connection(s)",
              srv.ctx.nsessions);
    session_close_all(&srv.ctx);
    loop_stop(loop);
}

static void reload(void)
{
    struct config cfg;
    char err[512];
    if (is_worker) {
        log_info("SIGHUP ignored: with workers, the master reloads");
        return;
    }
    if (config_from_args(&cfg, srv.argc, srv.argv, err, sizeof(err)) != 0) {
        /* config_from_args validates: a bad file keeps the running set */
        log_warnx("reload failed, keeping the running configuration: %s", err);
        return;
    }
    /* Sizes baked into live sessions and sockets need a restart. */
    cfg.buffer_bytes = srv.cfg.buffer_bytes;
    cfg.max_headers = srv.cfg.max_headers;
    memcpy(cfg.listen, srv.cfg.listen, sizeof(cfg.listen));
    memcpy(cfg.tls_listen, srv.cfg.tls_listen, sizeof(cfg.tls_listen));
    memcpy(cfg.admin, srv.cfg.admin, sizeof(cfg.admin));
    memcpy(cfg.log_path, srv.cfg.log_path, sizeof(cfg.log_path));
    /* certificates and keys are read again; a bad one refuses it all */
    struct tls_server *ts = NULL;
    struct pool_set *ps = NULL;
    char token[sizeof(srv.token)];
    if ((srv.tls_acc && !(ts = tls_server_create(&cfg, err, sizeof(err)))) ||
        read_token(&cfg, token, sizeof(token), err, sizeof(err)) < 0 ||
        !(ps = pool_set_create(srv.loop, &cfg, err, sizeof(err)))) {
        tls_server_put(ts);
        config_release(&cfg);
        log_warnx("reload failed, keeping the running configuration: %s", err);
        return;
    }
    if (ts) { /* new handshakes use them; open connections keep theirs */
        tls_acceptor_swap(srv.tls_acc, ts, cfg.tls_handshake_timeout_ms);
        tls_server_put(ts);
    }
    struct pool_set *old = srv.ctx.gen;
    /* backends follow by pool and id from the running sets (with their
     * runtime changes, which the file's sets replace): kept, new (ramping
     * up with health.slow_start_ms), gone */
    for (size_t i = 0; i < ps->npools; i++) {
        struct pool *p = ps->pools[i], *o = pool_set_find(old, p->cfg.pool);
        for (size_t j = 0; j < p->cfg.nbackends; j++)
            if (!o || backendset_find(&o->set, p->cfg.backends[j].id) < 0)
                balancer_slow_start(p->bal, j, loop_now(srv.loop));
    }
    if (attach_stats(ps, old) != 0)
        log_warn("reload: stats keep the previous backend set");
    if (start_dns(ps, &cfg, err, sizeof(err)) < 0)
        log_warnx("reload: backends by name not followed: %s", err);
    config_release(&srv.cfg);
    srv.cfg = cfg;
    memcpy(srv.token, token, sizeof(srv.token));
    srv.ctx.gen = ps;
    pool_set_stop_health(old); /* checks follow the current pools */
    if (pool_set_start_health(ps, srv.loop, err, sizeof(err)) < 0)
        log_warnx("reload: active health checks not started: %s", err);
    pool_set_put(old); /* freed once its last request finishes */
    log_info("reloaded: %zu pool(s), %zu route(s), mode %s, %zu backend(s) "
             "(runtime API changes replaced), %zu TLS certificate(s), "
             "runtime API %s",
             ps->npools, ps->nroutes, cfg.mode, cfg.nbackends,
             srv.tls_acc ? cfg.ntls_certs : 0, srv.token[0] ? "on" : "off");
}

static void on_signal(struct loop *loop, struct loop_io *io, unsigned events)
{
    (void)loop;
    (void)events;
    struct signalfd_siginfo si;
    while (read(io->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        switch (si.ssi_signo) {
        case SIGTERM:
        case SIGINT:
            start_drain();
            break;
        case SIGHUP:
            reload();
            break;
        case SIGUSR1:
            if (srv.csv && csvlog_reopen(srv.csv) < 0)
                log_warn("reopening the CSV log");
            break;
        }
    }
}

/* Each client may hold a client and an upstream socket, and the pools keep
 * idle ones: raise the soft fd limit toward what the configuration can use
 * (never above the hard limit; a lower hard limit is respected). */
static void raise_fd_limit(const struct config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    rlim_t want = (rlim_t)cfg->max_clients * 2 +
                  (rlim_t)cfg->nbackends * cfg->pool_max_idle + 64;
    if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max)
        want = rl.rlim_max;
    if (want <= rl.rlim_cur)
        return;
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
        log_info("file descriptor limit raised to %llu",
                 (unsigned long long)want);
}

/* Binds spec and accepts on it (on_accept): 0, or -1 with err filled. */
static int add_listener(const char *spec, int fd, struct loop_io *io, char *err,
                        size_t errlen)
{
    if (fd < 0) /* not one the master bound */
        fd = net_listen_spec_flags(
            spec, SERVER_BACKLOG,
            srv.cfg.reuseport && is_worker ? NET_LISTEN_REUSEPORT : 0, err,
            errlen);
    if (fd < 0)
        return -1;
    io->fn = on_accept;
    if (loop_io_add(srv.loop, io, fd, LOOP_READ) < 0) {
        snprintf(err, errlen, "epoll: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return 0;
}

int server_start(const struct config *cfg, int argc, char **argv, char *err,
                 size_t errlen)
{
    srv.cfg = *cfg;
    srv.argc = argc;
    srv.argv = argv;
    log_verbosity = cfg->verbosity;
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit(cfg);
    srv.loop = loop_create();
    if (!srv.loop) {
        snprintf(err, errlen, "event loop: %s", strerror(errno));
        return -1;
    }
    tls_idle_start(srv.loop, TLS_IDLE_RELEASE_MS);
    srv.ctx.loop = srv.loop;
    srv.ctx.cfg = &srv.cfg;
    if (session_ctx_init(&srv.ctx, cfg->buffer_bytes + 2048) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    srv.ctx.on_record = on_record;
    srv.ctx.on_attempt_failed = on_attempt_failed;
    srv.ctx.on_close = on_client_close;
    srv.pa.loop = srv.loop;
    srv.pa.sessions = &srv.ctx;
    srv.pa.on_close = on_client_close;
    if (read_token(cfg, srv.token, sizeof(srv.token), err, errlen) < 0)
        return -1;
    bool shared = is_worker && cfg->shared_balancers;
    srv.ctx.gen = pool_set_create_shared(
        srv.loop, &srv.cfg, shared ? wk.shared : NULL, err, errlen);
    /* a replacement starts from the table its predecessors published
     * (runtime and DNS changes), before its health checks are made */
    for (size_t i = 0; shared && srv.ctx.gen && i < srv.ctx.gen->npools; i++)
        pool_follow_sync(srv.ctx.gen->pools[i]);
    /* with workers, worker 0 checks and the shared balancers publish it */
    if (!srv.ctx.gen ||
        ((!shared || wk.index == 0) &&
         pool_set_start_health(srv.ctx.gen, srv.loop, err, errlen) < 0))
        return -1;

    if (strcmp(cfg->tls_listen, "off") != 0) {
        /* certificates are loaded before any socket is bound */
        struct tls_server *ts = tls_server_create(cfg, err, errlen);
        if (!ts)
            return -1;
        srv.tls_acc =
            tls_acceptor_create(srv.loop, ts, cfg->tls_handshake_timeout_ms,
                                on_tls_ready, on_client_close, NULL);
        tls_server_put(ts);
        if (!srv.tls_acc) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    if (add_listener(cfg->listen, is_worker ? wk.listen_fd : -1, &srv.listen_io,
                     err, errlen) < 0 ||
        (srv.tls_acc &&
         add_listener(cfg->tls_listen, is_worker ? wk.tls_listen_fd : -1,
                      &srv.tls_listen_io, err, errlen) < 0))
        return -1;
    srv.accept_timer.fn = on_accept_timer;
    srv.drain_timer.fn = on_drain_deadline;

    static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1};
    int sfd = loop_signalfd(sigs, sizeof(sigs) / sizeof(sigs[0]));
    if (sfd < 0) {
        snprintf(err, errlen, "signalfd: %s", strerror(errno));
        return -1;
    }
    srv.sig_io.fn = on_signal;
    loop_io_add(srv.loop, &srv.sig_io, sfd, LOOP_READ);

    if (is_worker)
        srv.stats = pool_set_attach_shared_stats(srv.ctx.gen, wk.shared);
    else
        srv.stats = stats_create(0, loop_now(srv.loop));
    if (!srv.stats || (!is_worker && attach_stats(srv.ctx.gen, NULL) != 0)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* with shared balancers, worker 0 resolves and the others follow the
     * table it publishes (sharedgen.h) */
    if (shared && wk.index == 0)
        for (size_t i = 0; i < srv.ctx.gen->npools; i++) {
            struct pool *p = srv.ctx.gen->pools[i];
            p->set.on_change = publish_pool;
            p->set.on_change_ctx = &wk.shared->pools[i];
        }
    if ((!shared || wk.index == 0) &&
        start_dns(srv.ctx.gen, cfg, err, errlen) < 0)
        return -1;
    srv.control.pool_at = pool_at;
    srv.control.lookup_pool = lookup_pool;
    char path[512];
    config_log_path(cfg, time(NULL), path, sizeof(path));
    if (is_worker)
        workers_log_path(path, sizeof(path), wk.index);
    if (path[0]) {
        srv.csv = csvlog_open(srv.loop, path, cfg->mode, cfg->persistent,
                              cfg->log_flush_ms);
        if (!srv.csv) {
            snprintf(err, errlen, "CSV log %s: %s", path, strerror(errno));
            return -1;
        }
        srv.ctx.record_detail = true; /* the stats need no more */
        /* A default name is new per run: latest.csv follows it. */
        if (cfg->log_path[0] == '\0' && (!is_worker || wk.index == 0) &&
            csvlog_link_latest(path) < 0)
            log_warn("CSV log: cannot point latest.csv at %s", path);
    }
    if (strcmp(cfg->admin, "off") != 0 && cfg->admin[0] &&
        (!is_worker || wk.index == 0)) {
        if (is_worker) {
            srv.admin_src.has_listen_fd = true;
            srv.admin_src.listen_fd = wk.admin_fd;
            srv.admin_src.workers = wk.rows;
            srv.admin_src.nworkers = wk.count;
        }
        srv.admin_src.config = &srv.cfg;
        srv.admin_src.stats = srv.stats;
        srv.admin_src.pool_idle = upstream_pool_idle;
        srv.admin_src.pools = admin_pools_of;
        srv.admin_src.retries = &srv.ctx.retries;
        srv.admin_src.retries_5xx = &srv.ctx.retries_5xx;
        srv.admin_src.retry_budget_refused = &srv.ctx.budget_refused;
        srv.admin_src.per_try_retries = &srv.ctx.per_try_retries;
        srv.admin_src.hedges = &srv.ctx.hedges;
        srv.admin_src.hedge_wins = &srv.ctx.hedge_wins;
        srv.admin_src.queued_now = &srv.ctx.queued_now;
        srv.admin_src.queued_total = &srv.ctx.queued_total;
        srv.admin_src.queue_full = &srv.ctx.queue_full;
        srv.admin_src.queue_timeouts = &srv.ctx.queue_timeouts;
        srv.admin_src.queue_wait_us = &srv.ctx.queue_wait_us;
        srv.admin_src.proxy_accepted = &srv.pa.accepted;
        srv.admin_src.proxy_refused = &srv.pa.refused;
        srv.admin_src.tunnels_open = &srv.ctx.tunnels_open;
        srv.admin_src.tunnels_total = &srv.ctx.tunnels_total;
        srv.admin_src.tls =
            srv.tls_acc ? tls_acceptor_counters(srv.tls_acc) : NULL;
        srv.admin_src.upstream_tls = tls_client_counters();
        if (is_worker) /* the sum over the workers, not this one's */
            workers_admin_sources(&srv.admin_src, &srv.sum,
                                  srv.tls_acc != NULL);
        srv.admin_src.control = &srv.control;
        srv.admin_src.token = srv.token;
        srv.admin_src.dns = &srv.dns;
        srv.admin = admin_create(srv.loop, cfg->admin, &srv.admin_src);
        if (!srv.admin) {
            snprintf(err, errlen, "admin listener on %s failed", cfg->admin);
            return -1;
        }
    }
    log_info("lbproxy %s listening on %s (TLS %s), mode %s, %s upstreams, "
             "%zu backend(s), admin %s, log %s",
             LBPROXY_VERSION, cfg->listen, cfg->tls_listen, cfg->mode,
             cfg->persistent ? "persistent" : "non-persistent", cfg->nbackends,
             cfg->admin, path[0] ? path : "off");
    if (is_worker) {
        srv.publish_timer.fn = on_publish;
        on_publish(srv.loop, &srv.publish_timer);
        unsigned char idx = (unsigned char)wk.index;
        if (write(wk.ready_fd, &idx, 1) != 1)
            log_warn("telling the master this worker serves");
        close(wk.ready_fd);
    }
    return 0;
}

int server_run(void)
{
    int rc = loop_run(srv.loop);
    if (is_worker) /* what it counted since the last time */
        publish();
    proxyaccept_close_all(&srv.pa);
    session_close_all(&srv.ctx);
    admin_destroy(srv.admin);
    tls_acceptor_destroy(srv.tls_acc); /* after the admin that reads it */
    csvlog_close(srv.csv);
    pool_dns_stop(srv.dns); /* before the pools and the resolver */
    srv.dns = NULL;
    resolver_destroy(srv.resolver);
    if (!is_worker) /* shared stats are the master's */
        attach_stats_release(srv.ctx.gen);
    pool_set_put(srv.ctx.gen); /* after the admin that reads it */
    close_io(&srv.sig_io);
    close_io(&srv.listen_io);
    close_io(&srv.tls_listen_io);
    tls_idle_stop();
    loop_destroy(srv.loop);
    if (!is_worker)
        stats_destroy(srv.stats);
    session_ctx_cleanup(&srv.ctx);
    config_release(&srv.cfg);
    log_info("stopped");
    return rc < 0 ? 1 : 0;
}
