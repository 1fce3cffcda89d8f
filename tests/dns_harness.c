/*
 * dns_harness: runs the resolver alone on a loop and prints every answer
 * it reports as one line of JSON, so tests/e2e/test_dns.py can check it
 * against a DNS server of its own (tests/lib/dnsserver.py).
 *
 *   dns_harness --servers ADDR:PORT[,...] [--timeout-ms MS]
 *               [--interval-ms MS] [SPEC]...
 *   SPEC: host:NAME:PORT | srv:NAME
 *
 * Prints {"event": "ready"} once the resolver exists, then one line per
 * answer ({"event": "answer", "watch": N, ...}).  Commands on stdin, one a
 * line: "watch SPEC", "unwatch N", "queries" (c-ares queries in flight),
 * "unwatch-on-answer N" / "destroy-on-answer" (do it from inside the next
 * callback), "destroy" (no answer may follow) and "quit".  End of input
 * quits too; quitting destroys the resolver and the loop, so the
 * sanitizer build checks for leaks.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loop.h"
#include "resolver.h"

#define MAX_WATCHES 64

struct harness;

/* One watch and what its callback needs to know. */
struct hwatch {
    struct harness *h;
    int id;
    struct resolver_watch *w;
};

struct harness {
    struct loop *loop;
    struct resolver *res;
    struct hwatch watch[MAX_WATCHES];
    size_t nwatch;
    unsigned interval_ms;
    uint64_t t0;
    struct loop_io in;
    char line[1024];
    size_t linelen;
    int unwatch_on_answer; /* watch id, or -1 */
    bool destroy_on_answer;
};

static void put_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void on_answer(void *arg, const struct resolver_answer *a)
{
    struct hwatch *hw = arg;
    struct harness *h = hw->h;
    const int *id = &hw->id;
    printf("{\"event\": \"answer\", \"watch\": %d, \"t_ms\": %llu, "
           "\"name\": ",
           *id, (unsigned long long)((loop_now(h->loop) - h->t0) / 1000u));
    put_str(a->name);
    printf(", \"kind\": \"%s\", \"status\": \"%s\", \"reason\": ",
           resolver_kind_str(a->kind), resolver_status_str(a->status));
    put_str(a->reason);
    printf(", \"changed\": %s, \"ttl\": %u, \"next_ms\": %u, "
           "\"failures\": %u, \"dropped\": %zu, \"addrs\": [",
           a->changed ? "true" : "false", a->ttl_s, a->next_ms, a->failures,
           a->dropped);
    for (size_t i = 0; i < a->n; i++) {
        const struct resolver_addr *e = &a->addrs[i];
        printf("%s{\"addr\": ", i ? ", " : "");
        put_str(e->addr);
        printf(", \"target\": ");
        put_str(e->target);
        printf(", \"port\": %u, \"weight\": %u, \"priority\": %u}", e->port,
               e->weight, e->priority);
    }
    printf("]}\n");
    fflush(stdout);
    if (h->unwatch_on_answer == *id) {
        h->unwatch_on_answer = -1;
        resolver_unwatch(hw->w);
        hw->w = NULL;
        printf("{\"event\": \"unwatched\", \"watch\": %d}\n", *id);
    }
    if (h->destroy_on_answer) {
        h->destroy_on_answer = false;
        resolver_destroy(h->res);
        h->res = NULL;
        printf("{\"event\": \"destroyed\"}\n");
    }
    fflush(stdout);
}

static void add_watch(struct harness *h, const char *spec)
{
    char err[256] = "", name[300];
    struct resolver_watch *w = NULL;
    if (!h->res) {
        snprintf(err, sizeof(err), "no resolver");
    } else if (h->nwatch >= MAX_WATCHES) {
        snprintf(err, sizeof(err), "too many watches");
    } else if (strncmp(spec, "srv:", 4) == 0) {
        w = resolver_watch(h->res, RESOLVER_SRV, spec + 4, 0, h->interval_ms,
                           on_answer, &h->watch[h->nwatch], err, sizeof(err));
    } else if (strncmp(spec, "host:", 5) == 0) {
        snprintf(name, sizeof(name), "%s", spec + 5);
        char *colon = strrchr(name, ':');
        unsigned port = 0;
        if (colon) {
            *colon = '\0';
            port = (unsigned)strtoul(colon + 1, NULL, 10);
        }
        w = resolver_watch(h->res, RESOLVER_HOST, name, port, h->interval_ms,
                           on_answer, &h->watch[h->nwatch], err, sizeof(err));
    } else {
        snprintf(err, sizeof(err), "expected host:NAME:PORT or srv:NAME");
    }
    if (!w) {
        printf("{\"event\": \"error\", \"spec\": ");
        put_str(spec);
        printf(", \"error\": ");
        put_str(err);
        printf("}\n");
    } else {
        h->watch[h->nwatch].w = w;
        printf("{\"event\": \"watch\", \"watch\": %zu, \"spec\": ", h->nwatch);
        put_str(spec);
        printf("}\n");
        h->nwatch++;
    }
    fflush(stdout);
}

static void quit(struct harness *h)
{
    resolver_destroy(h->res);
    h->res = NULL;
    loop_io_del(h->loop, &h->in);
    loop_stop(h->loop);
}

static void command(struct harness *h, char *cmd)
{
    unsigned long n = 0;
    if (strncmp(cmd, "watch ", 6) == 0) {
        add_watch(h, cmd + 6);
    } else if (sscanf(cmd, "unwatch-on-answer %lu", &n) == 1) {
        h->unwatch_on_answer = (int)n;
    } else if (sscanf(cmd, "unwatch %lu", &n) == 1 && n < h->nwatch) {
        resolver_unwatch(h->watch[n].w);
        h->watch[n].w = NULL;
        printf("{\"event\": \"unwatched\", \"watch\": %lu}\n", n);
    } else if (strcmp(cmd, "queries") == 0) {
        printf("{\"event\": \"queries\", \"n\": %zu}\n",
               h->res ? resolver_queries(h->res) : 0);
    } else if (strcmp(cmd, "destroy-on-answer") == 0) {
        h->destroy_on_answer = true;
    } else if (strcmp(cmd, "destroy") == 0) {
        resolver_destroy(h->res);
        h->res = NULL;
        printf("{\"event\": \"destroyed\"}\n");
    } else if (strcmp(cmd, "quit") == 0) {
        quit(h);
    } else {
        printf("{\"event\": \"error\", \"error\": \"unknown command\"}\n");
    }
    fflush(stdout);
}

static void on_stdin(struct loop *loop, struct loop_io *io, unsigned events)
{
    (void)loop;
    (void)events;
    struct harness *h = io->ctx;
    ssize_t n =
        read(io->fd, h->line + h->linelen, sizeof(h->line) - 1 - h->linelen);
    if (n <= 0) {
        quit(h);
        return;
    }
    h->linelen += (size_t)n;
    h->line[h->linelen] = '\0';
    char *nl;
    while ((nl = strchr(h->line, '\n')) != NULL) {
        *nl = '\0';
        command(h, h->line);
        size_t rest = h->linelen - (size_t)(nl + 1 - h->line);
        memmove(h->line, nl + 1, rest + 1);
        h->linelen = rest;
    }
    if (h->linelen == sizeof(h->line) - 1)
        h->linelen = 0; /* a line too long: dropped */
}

int main(int argc, char **argv)
{
    static struct harness h;
    const char *servers = "";
    unsigned timeout_ms = 500;
    int first_spec = argc;
    h.interval_ms = 1000;
    h.unwatch_on_answer = -1;
    for (int i = 0; i < MAX_WATCHES; i++)
        h.watch[i] = (struct hwatch){&h, i, NULL};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--servers") == 0 && i + 1 < argc) {
            servers = argv[++i];
        } else if (strcmp(argv[i], "--timeout-ms") == 0 && i + 1 < argc) {
            timeout_ms = (unsigned)strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--interval-ms") == 0 && i + 1 < argc) {
            h.interval_ms = (unsigned)strtoul(argv[++i], NULL, 10);
        } else {
            first_spec = i;
            break;
        }
    }
    char err[256];
    h.loop = loop_create();
    if (!h.loop)
        return 1;
    h.res = resolver_create(h.loop, servers, timeout_ms, err, sizeof(err));
    if (!h.res) {
        fprintf(stderr, "dns_harness: %s\n", err);
        loop_destroy(h.loop);
        return 2;
    }
    h.t0 = loop_now(h.loop);
    printf("{\"event\": \"ready\"}\n");
    fflush(stdout);
    for (int i = first_spec; i < argc; i++)
        add_watch(&h, argv[i]);
    h.in.fn = on_stdin;
    h.in.ctx = &h;
    if (loop_io_add(h.loop, &h.in, 0, LOOP_READ) < 0) {
        perror("dns_harness: stdin");
        quit(&h);
    }
    loop_run(h.loop);
    loop_destroy(h.loop);
    return 0;
}
