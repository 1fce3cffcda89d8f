/*
 * master: the process that runs the workers of --workers N (docs/workers.md).
 *
 * It binds the listeners, maps the shared region, makes a generation of
 * shared balancers and stats (sharedgen.h) and forks one worker per index;
 * each worker is the single-process program (server.c) on those listeners.
 * The master never touches client traffic.  It restarts a worker that dies
 * (forgetting what it had in flight), answers SIGHUP with a new generation
 * (the configuration read again; new workers; the old ones drain), forwards
 * SIGUSR1 (log reopen) and answers SIGTERM/SIGINT by draining every worker
 * and exiting when the last has.
 *
 * Its states, changed only by the functions below: each generation is
 * SERVING (the current one), DRAINING (replaced, workers finishing) or
 * free; each worker process is STARTING (forked, not yet serving), UP, or
 * DOWN (dead, its restart due at restart_us).
 */
#include "master.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "cpulist.h"
#include "log.h"
#include "loop.h"
#include "net.h"
#include "server.h"
#include "sharedgen.h"
#include "tls.h"
#include "tls_client.h"
#include "shm.h"
#include "workers.h"

#define MASTER_BACKLOG 4096
#define MAX_GENS 4                  /* serving + draining at once */
#define SHM_BYTES ((size_t)1 << 30) /* reserved; touched only as used */
#define RESTART_PAUSE_US 1000000    /* a worker that died starting */
#define STOP_GRACE_US 2000000       /* after drain_ms: SIGKILL what is left */

enum gen_state { GEN_FREE, GEN_SERVING, GEN_DRAINING };
enum proc_state { PROC_STARTING, PROC_UP, PROC_DOWN };

struct proc {
    int pid;
    enum proc_state state;
    uint64_t restart_us; /* PROC_DOWN: when to fork it again */
};

struct gen {
    enum gen_state state;
    struct config cfg;
    struct shared_gen *shared;
    struct worker_row *rows; /* in the region, one per index */
    struct proc procs[SHM_MAX_WORKERS];
};

static struct master {
    unsigned n; /* workers per generation */
    int argc;
    char **argv;
    int listen_fd, tls_listen_fd, admin_fd;
    int ready[2]; /* workers write their index when serving */
    int sig_fd;
    struct gen gens[MAX_GENS];
    unsigned cur;    /* index in gens of the serving generation */
    unsigned nextid; /* the next generation's id */
    bool stopping;
    uint64_t stop_deadline_us;
    int cpus[CPULIST_MAX];
    int ncpus;
} m;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

unsigned master_worker_count(const struct config *cfg)
{
    if (cfg->workers > 0)
        return cfg->workers;
    cpu_set_t set;
    int n = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
    if (n < 1)
        n = 1;
    return n > SHM_MAX_WORKERS ? SHM_MAX_WORKERS : (unsigned)n;
}

/* ---- one worker process ---------------------------------------------- */

/* In the child: becomes worker i of generation g; never returns. */
static void run_worker(struct gen *g, unsigned i)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    prctl(PR_SET_PDEATHSIG, SIGTERM); /* the master gone: drain and exit */
    close(m.sig_fd);
    close(m.ready[0]);
    shm_worker = i;
    snprintf(log_tag, sizeof(log_tag), "worker %u ", i);
    if ((int)i < m.ncpus) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(m.cpus[i], &set);
        if (sched_setaffinity(0, sizeof(set), &set) < 0)
            log_warn("pinning to CPU %d", m.cpus[i]);
    }
    struct worker_self self = {
        .index = i,
        .count = m.n,
        .gen = g->shared->id,
        .listen_fd = m.listen_fd,
        .tls_listen_fd = m.tls_listen_fd,
        .admin_fd = i == 0 ? m.admin_fd : -1,
        .shared = g->shared,
        .rows = g->rows,
        .ready_fd = m.ready[1],
    };
    char err[512];
    server_set_worker(&self);
    if (server_start(&g->cfg, m.argc, m.argv, err, sizeof(err)) < 0) {
        log_warnx("%s", err);
        _exit(1);
    }
    _exit(server_run());
}

static int spawn(struct gen *g, unsigned i)
{
    struct proc *p = &g->procs[i];
    pid_t pid = fork();
    if (pid < 0) {
        log_warn("fork of worker %u", i);
        p->state = PROC_DOWN;
        p->pid = 0;
        p->restart_us = now_us() + RESTART_PAUSE_US;
        return -1;
    }
    if (pid == 0)
        run_worker(g, i);
    p->pid = pid;
    p->state = PROC_STARTING;
    g->rows[i].pid = pid;
    g->rows[i].started_us = now_us();
    g->rows[i].connections = 0;
    log_info("worker %u started (pid %d, generation %u)", i, (int)pid,
             g->shared->id);
    return 0;
}

static unsigned alive(const struct gen *g)
{
    unsigned k = 0;
    for (unsigned i = 0; i < m.n; i++)
        if (g->procs[i].pid > 0)
            k++;
    return k;
}

static void signal_gen(struct gen *g, int sig)
{
    for (unsigned i = 0; i < m.n; i++)
        if (g->procs[i].pid > 0)
            kill(g->procs[i].pid, sig);
}

static void free_gen(struct gen *g)
{
    shared_gen_destroy(g->shared);
    shm_free(g->rows);
    config_release(&g->cfg);
    memset(g, 0, sizeof(*g));
}

/* Makes generation slot s from cfg (taken over: released with the slot). */
static int make_gen(unsigned s, struct config *cfg, char *err, size_t errlen)
{
    /* the workers would each fail on a CA file that does not load */
    if (tls_client_check(cfg, err, errlen) < 0)
        return -1;
    struct gen *g = &m.gens[s];
    const struct shared_gen *old =
        m.gens[m.cur].state == GEN_SERVING ? m.gens[m.cur].shared : NULL;
    g->shared = shared_gen_create(cfg, old, m.nextid, now_us(), err, errlen);
    g->rows = shm_calloc(m.n + 1, sizeof(*g->rows)); /* + the departed */
    if (!g->shared || !g->rows) {
        if (g->shared && !g->rows)
            snprintf(err, errlen, "the shared region is full");
        shared_gen_destroy(g->shared);
        shm_free(g->rows);
        g->shared = NULL;
        g->rows = NULL;
        return -1;
    }
    g->cfg = *cfg;
    g->state = GEN_SERVING;
    m.nextid++;
    return 0;
}

/* A worker process ended (status as waitpid gave it). */
static void reaped(int pid, int status)
{
    for (unsigned s = 0; s < MAX_GENS; s++) {
        struct gen *g = &m.gens[s];
        for (unsigned i = 0; g->state != GEN_FREE && i < m.n; i++) {
            struct proc *p = &g->procs[i];
            if (p->pid != pid)
                continue;
            bool serving = g->state == GEN_SERVING && !m.stopping;
            bool started = p->state == PROC_UP;
            if (WIFSIGNALED(status))
                log_warnx("worker %u (pid %d) killed by signal %d%s", i, pid,
                          WTERMSIG(status), serving ? ", restarting" : "");
            else if (serving)
                log_warnx("worker %u (pid %d) exited with status %d, "
                          "restarting",
                          i, pid, WEXITSTATUS(status));
            shared_gen_forget_worker(g->shared, i);
            workers_depart(&g->rows[i], &g->rows[m.n]);
            g->rows[i].pid = 0;
            g->rows[i].connections = 0;
            p->pid = 0;
            p->state = PROC_DOWN;
            /* at once, unless it never got as far as serving (then
             * whatever stopped it may stop the next one: pause) */
            p->restart_us = now_us() + (started ? 0 : RESTART_PAUSE_US);
            if (serving) {
                g->rows[i].restarts++;
            } else if (alive(g) == 0 && g->state == GEN_DRAINING) {
                log_info("generation %u finished draining", g->shared->id);
                free_gen(g);
            }
            return;
        }
    }
}

/* ---- signals ---------------------------------------------------------- */

static void reload(void)
{
    struct config cfg;
    char err[512];
    struct gen *cur = &m.gens[m.cur];
    if (config_from_args(&cfg, m.argc, m.argv, err, sizeof(err)) != 0) {
        log_warnx("reload failed, keeping the running configuration: %s", err);
        return;
    }
    /* the listeners are the master's: what binds them stays */
    memcpy(cfg.listen, cur->cfg.listen, sizeof(cfg.listen));
    memcpy(cfg.tls_listen, cur->cfg.tls_listen, sizeof(cfg.tls_listen));
    memcpy(cfg.admin, cur->cfg.admin, sizeof(cfg.admin));
    memcpy(cfg.log_path, cur->cfg.log_path, sizeof(cfg.log_path));
    cfg.workers = cur->cfg.workers;
    cfg.reuseport = cur->cfg.reuseport;
    unsigned s = 0;
    while (s < MAX_GENS && m.gens[s].state != GEN_FREE)
        s++;
    if (s == MAX_GENS) {
        config_release(&cfg);
        log_warnx("reload refused: %d generations are still draining",
                  MAX_GENS - 1);
        return;
    }
    if (make_gen(s, &cfg, err, sizeof(err)) < 0) {
        config_release(&cfg);
        log_warnx("reload failed, keeping the running configuration: %s", err);
        return;
    }
    cur->state = GEN_DRAINING;
    m.cur = s;
    for (unsigned i = 0; i < m.n; i++)
        spawn(&m.gens[s], i);
    /* the old workers drain what they hold; the listeners stay open in
     * the new ones, so no connection waiting to be accepted is lost */
    signal_gen(cur, SIGTERM);
    log_info("reloaded: generation %u, %u worker(s); generation %u draining",
             m.gens[s].shared->id, m.n, cur->shared->id);
    if (alive(cur) == 0)
        free_gen(cur);
}

static void stop(void)
{
    if (m.stopping)
        return;
    m.stopping = true;
    unsigned drain = m.gens[m.cur].cfg.drain_timeout_ms;
    m.stop_deadline_us = now_us() + (uint64_t)drain * 1000u + STOP_GRACE_US;
    log_info("stopping: draining every worker");
    for (unsigned s = 0; s < MAX_GENS; s++)
        if (m.gens[s].state != GEN_FREE)
            signal_gen(&m.gens[s], SIGTERM);
}

static void on_signals(void)
{
    struct signalfd_siginfo si;
    while (read(m.sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        switch (si.ssi_signo) {
        case SIGTERM:
        case SIGINT:
            stop();
            break;
        case SIGHUP:
            if (!m.stopping)
                reload();
            break;
        case SIGUSR1:
            signal_gen(&m.gens[m.cur], SIGUSR1);
            break;
        case SIGCHLD:
            break; /* reaped below */
        }
    }
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        reaped((int)pid, status);
}

/* Workers that say they serve. */
static void on_ready(void)
{
    unsigned char idx[64];
    ssize_t k = read(m.ready[0], idx, sizeof(idx));
    for (ssize_t j = 0; j < k; j++) {
        struct proc *p = &m.gens[m.cur].procs[idx[j] % SHM_MAX_WORKERS];
        if (idx[j] < m.n && p->state == PROC_STARTING)
            p->state = PROC_UP;
    }
}

/* ---- set-up and the loop ---------------------------------------------- */

static int bind_all(const struct config *cfg, char *err, size_t errlen)
{
    m.listen_fd = m.tls_listen_fd = m.admin_fd = -1;
    if (!cfg->reuseport) {
        m.listen_fd = net_listen_spec(cfg->listen, MASTER_BACKLOG, err, errlen);
        if (m.listen_fd < 0)
            return -1;
        if (strcmp(cfg->tls_listen, "off") != 0) {
            m.tls_listen_fd =
                net_listen_spec(cfg->tls_listen, MASTER_BACKLOG, err, errlen);
            if (m.tls_listen_fd < 0)
                return -1;
        }
    }
    if (strcmp(cfg->admin, "off") != 0 && cfg->admin[0]) {
        char why[256];
        m.admin_fd = net_listen_spec(cfg->admin, 128, why, sizeof(why));
        if (m.admin_fd < 0) {
            snprintf(err, errlen, "admin: %s", why);
            return -1;
        }
    }
    return 0;
}

static int setup(struct config *cfg, int argc, char **argv, char *err,
                 size_t errlen)
{
    m.n = master_worker_count(cfg);
    m.argc = argc;
    m.argv = argv;
    m.nextid = 1;
    m.ncpus = cpulist_parse(cfg->worker_cpus, m.cpus, CPULIST_MAX);
    if (m.ncpus < 0)
        m.ncpus = 0;
    if (shm_init(SHM_BYTES) < 0) {
        snprintf(err, errlen, "shared region: %s", strerror(errno));
        return -1;
    }
    if (tls_tickets_share() < 0) {
        snprintf(err, errlen, "the shared region is full");
        return -1;
    }
    if (bind_all(cfg, err, errlen) < 0)
        return -1;
    if (pipe2(m.ready, O_CLOEXEC | O_NONBLOCK) < 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return -1;
    }
    static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGCHLD};
    m.sig_fd = loop_signalfd(sigs, sizeof(sigs) / sizeof(sigs[0]));
    if (m.sig_fd < 0) {
        snprintf(err, errlen, "signalfd: %s", strerror(errno));
        return -1;
    }
    return make_gen(0, cfg, err, errlen);
}

/* Until every worker of the first generation serves: 0, or -1 when one
 * died first (its own message said why). */
static int wait_started(void)
{
    struct gen *g = &m.gens[0];
    uint64_t deadline = now_us() + 30 * 1000000ull;
    for (;;) {
        unsigned up = 0;
        for (unsigned i = 0; i < m.n; i++) {
            if (g->procs[i].state == PROC_DOWN)
                return -1;
            up += g->procs[i].state == PROC_UP;
        }
        if (up == m.n)
            return 0;
        if (now_us() > deadline) {
            log_warnx("workers did not start within 30 s");
            return -1;
        }
        struct pollfd pf[2] = {{m.sig_fd, POLLIN, 0}, {m.ready[0], POLLIN, 0}};
        if (poll(pf, 2, 1000) < 0 && errno != EINTR)
            return -1;
        if (pf[1].revents)
            on_ready();
        if (pf[0].revents)
            on_signals();
        if (m.stopping)
            return -1;
    }
}

/* Forks the workers whose restart is due; the poll timeout until the next
 * one (ms, -1: none). */
static int restart_due(void)
{
    struct gen *g = &m.gens[m.cur];
    uint64_t now = now_us(), next = UINT64_MAX;
    for (unsigned i = 0; !m.stopping && i < m.n; i++) {
        struct proc *p = &g->procs[i];
        if (p->state != PROC_DOWN)
            continue;
        if (p->restart_us <= now)
            spawn(g, i);
        else if (p->restart_us < next)
            next = p->restart_us;
    }
    if (m.stopping)
        next = m.stop_deadline_us;
    if (next == UINT64_MAX)
        return -1;
    if (next <= now)
        return 0;
    return next - now > 1000000u ? 1000 : (int)((next - now) / 1000u + 1);
}

static unsigned alive_all(void)
{
    unsigned k = 0;
    for (unsigned s = 0; s < MAX_GENS; s++)
        if (m.gens[s].state != GEN_FREE)
            k += alive(&m.gens[s]);
    return k;
}

int master_run(struct config *cfg, int argc, char **argv)
{
    char err[512];
    snprintf(log_tag, sizeof(log_tag), "master ");
    log_verbosity = cfg->verbosity;
    signal(SIGPIPE, SIG_IGN);
    if (setup(cfg, argc, argv, err, sizeof(err)) < 0) {
        log_warnx("%s", err);
        return 1;
    }
    for (unsigned i = 0; i < m.n; i++)
        spawn(&m.gens[0], i);
    if (wait_started() < 0) {
        stop();
        for (unsigned i = 0; i < m.n; i++)
            if (m.gens[0].procs[i].pid > 0)
                kill(m.gens[0].procs[i].pid, SIGKILL);
        while (waitpid(-1, NULL, 0) > 0)
            ;
        return 1;
    }
    log_info("lbproxy %s: %u workers on %s (%s), admin %s", LBPROXY_VERSION,
             m.n, cfg->listen,
             cfg->reuseport ? "a SO_REUSEPORT listener each"
                            : "one shared listener",
             cfg->admin);
    while (!m.stopping || alive_all() > 0) {
        int timeout = restart_due();
        if (m.stopping && now_us() >= m.stop_deadline_us) {
            log_warnx("drain deadline passed: killing %u worker(s)",
                      alive_all());
            for (unsigned s = 0; s < MAX_GENS; s++)
                if (m.gens[s].state != GEN_FREE)
                    signal_gen(&m.gens[s], SIGKILL);
            m.stop_deadline_us = UINT64_MAX;
        }
        struct pollfd pf[2] = {{m.sig_fd, POLLIN, 0}, {m.ready[0], POLLIN, 0}};
        if (poll(pf, 2, timeout) < 0 && errno != EINTR) {
            log_warn("poll");
            break;
        }
        if (pf[1].revents)
            on_ready();
        if (pf[0].revents)
            on_signals();
    }
    for (unsigned s = 0; s < MAX_GENS; s++)
        if (m.gens[s].state != GEN_FREE)
            free_gen(&m.gens[s]);
    log_info("stopped");
    return 0;
}
