/*
 * config_cli: the command line.  One table of options drives getopt_long,
 * the flags' actions, their error messages and the --help text, so the
 * usage cannot drift from what is parsed.  A flag that stands for an INI key
 * goes through the key table (config_key_apply) and takes the same values
 * as the file; every other key is reachable as --set SECTION.KEY=VALUE.
 */
#include "config.h"
#include "config_impl.h"

#include <getopt.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

enum cli_action {
    CLI_CONFIG,  /* --config FILE, read in the first pass */
    CLI_KEY,     /* sets [section] key to the value, or to `value` */
    CLI_BACKEND, /* --backend SPEC */
    CLI_TLS,     /* --tls-cert FILE, --tls-key FILE: a [tls] pair */
    CLI_SET,     /* --set SECTION.KEY=VALUE */
    CLI_CHECK,
    CLI_PRINT,
    CLI_VERBOSE,
    CLI_HELP,
    CLI_VERSION,
};

/* What the usage adds to a CLI_KEY option's help, from the key table. */
enum cli_show {
    CLI_SHOW_NONE,
    CLI_SHOW_DEFAULT, /* " (default VALUE)" */
    CLI_SHOW_VALUES,  /* ": " and what the key's type accepts */
};

struct cli_option {
    const char *name;
    char short_name; /* 0: long only */
    const char *arg; /* what the value looks like; NULL: none */
    enum cli_action action;
    const char *section, *key; /* CLI_KEY: the key it sets */
    const char *value;         /* CLI_KEY without arg: the value it sets */
    enum cli_show show;
    const char *help;
};

/* A flag with a job of its own (no key behind it). */
#define OPT(name, sh, arg, action, help)                                       \
    {                                                                          \
        name, sh, arg, action, NULL, NULL, NULL, CLI_SHOW_NONE, help           \
    }
/* A flag that sets [section] key to its value; show: what --help adds. */
#define OPT_KEY(name, arg, section, key, show, help)                           \
    {                                                                          \
        name, 0, arg, CLI_KEY, section, key, NULL, show, help                  \
    }
/* A flag without a value that sets [section] key to value. */
#define OPT_FIXED(name, section, key, value, help)                             \
    {                                                                          \
        name, 0, NULL, CLI_KEY, section, key, value, CLI_SHOW_NONE, help       \
    }

/* clang-format off */
static const struct cli_option cli_options[] = {
    OPT("config", 0, "FILE", CLI_CONFIG,
        "INI file (default: " CONFIG_DEFAULT_FILE " if it exists)"),
    OPT_KEY("mode", "NAME", "proxy", "mode", CLI_SHOW_VALUES,
            "balancing policy"),
    OPT_FIXED("persistent", "proxy", "persistent", "true",
              "reuse upstream connections (pooled keep-alive)"),
    OPT_FIXED("non-persistent", "proxy", "persistent", "false",
              "one upstream connection per request"),
    OPT_KEY("listen", "ADDR:PORT", "proxy", "listen", CLI_SHOW_DEFAULT,
            "client listener"),
    OPT("backend", 0, "ADDR:PORT|unix:PATH[,weight=N][,id=NAME][,tls]",
        CLI_BACKEND,
        "a backend (TCP, or a Unix stream socket); repeat for more. The "
        "first --backend replaces the file's [backends]; ids default to A, "
        "B, C... in order; ,tls speaks TLS to it ([pool] upstream_tls_*)"),
    OPT_FIXED("proxy-protocol", "proxy", "proxy_protocol", "true",
              "the listener expects a PROXY protocol v1/v2 header on every "
              "connection (refuses one without)"),
    OPT_KEY("send-proxy", "off|v1|v2", "proxy", "send_proxy",
            CLI_SHOW_DEFAULT,
            "write a PROXY protocol header on each new backend connection"),
    OPT_KEY("request-id", "true|false", "proxy", "request_id",
            CLI_SHOW_DEFAULT,
            "keep a sane X-Request-Id or generate one (UUIDv4)"),
    OPT_FIXED("request-id-echo", "proxy", "request_id_echo", "true",
              "send the request id back in the response"),
    OPT_KEY("workers", "N|auto", "proxy", "workers", CLI_SHOW_DEFAULT,
            "worker processes, each one event loop (auto: one per usable "
            "CPU); more than 1 starts a master that runs them"),
    OPT_KEY("worker-cpus", "LIST", "proxy", "worker_cpus", CLI_SHOW_NONE,
            "pin worker i to the i-th CPU of LIST (0,1 or 0-3)"),
    OPT_FIXED("shared-listener", "proxy", "reuseport", "false",
              "with workers, one listener the master binds and every worker "
              "accepts on (default: a SO_REUSEPORT listener per worker)"),
    OPT_KEY("tls-listen", "ADDR:PORT|off", "tls", "listen", CLI_SHOW_DEFAULT,
            "TLS (https) client listener beside the plain one"),
    OPT("tls-cert", 0, "FILE", CLI_TLS,
        "certificate chain (PEM) for --tls-listen, followed by its "
        "--tls-key; repeat the pair for more (chosen by SNI; the first is "
        "the default). The first --tls-cert replaces the file's [tls] pairs"),
    OPT("tls-key", 0, "FILE", CLI_TLS,
        "private key (PEM) of the --tls-cert before it"),
    OPT_KEY("admin", "ADDR:PORT|off", "proxy", "admin", CLI_SHOW_DEFAULT,
            "admin and dashboard listener"),
    OPT_KEY("log", "FILE|off", "proxy", "log", CLI_SHOW_NONE,
            "CSV request log, appended to (default: a new "
            "<logs_dir>/<mode>_<model>-<UTC time>.csv per run, "
            "linked as <logs_dir>/latest.csv)"),
    OPT_KEY("seed", "N", "balancer", "seed", CLI_SHOW_DEFAULT,
            "random seed of the balancer"),
    OPT_KEY("tunnel-idle-ms", "MS", "timeouts", "tunnel_idle_ms",
            CLI_SHOW_DEFAULT,
            "close a WebSocket/Upgrade tunnel idle this long either way"),
    OPT("set", 0, "SECTION.KEY=VALUE", CLI_SET,
        "any INI key, e.g. --set timeouts.upstream_ms=5000"),
    OPT("check", 0, NULL, CLI_CHECK,
        "validate, print the effective configuration, exit"),
    OPT("print-config", 0, NULL, CLI_PRINT,
        "print the effective configuration, then run"),
    OPT("verbose", 'v', NULL, CLI_VERBOSE,
        "more log output (repeat for more)"),
    OPT("help", 'h', NULL, CLI_HELP, "this help"),
    OPT("version", 0, NULL, CLI_VERSION, "print the version"),
};
/* clang-format on */
#define CLI_NOPTIONS (sizeof(cli_options) / sizeof(cli_options[0]))

/* getopt_long's value for option i: its short letter, or 256 + i. */
static int cli_val(size_t i)
{
    return cli_options[i].short_name ? cli_options[i].short_name : 256 + (int)i;
}

static const struct cli_option *cli_by_val(int val)
{
    for (size_t i = 0; i < CLI_NOPTIONS; i++)
        if (cli_val(i) == val)
            return &cli_options[i];
    return NULL;
}

/* The getopt tables, built from cli_options.  "+": stop at the first
 * non-option (no permutation of argv); ":": report a missing value as ':'
 * so that it gets its own message. */
struct cli_getopt {
    struct option longopts[CLI_NOPTIONS + 1];
    char optstring[3 + 2 * CLI_NOPTIONS];
};

static void cli_getopt_init(struct cli_getopt *g)
{
    size_t n = 0;
    memset(g, 0, sizeof(*g));
    g->optstring[n++] = '+';
    g->optstring[n++] = ':';
    for (size_t i = 0; i < CLI_NOPTIONS; i++) {
        const struct cli_option *o = &cli_options[i];
        g->longopts[i].name = o->name;
        g->longopts[i].has_arg = o->arg ? required_argument : no_argument;
        g->longopts[i].val = cli_val(i);
        if (o->short_name) {
            g->optstring[n++] = o->short_name;
            if (o->arg)
                g->optstring[n++] = ':';
        }
    }
}

/* Where --help/--version/--check write; tests point it at a file. */
static FILE *config_stdout;

static FILE *config_out(void)
{
    return config_stdout ? config_stdout : stdout;
}

/* ---- usage ------------------------------------------------------------- */

#define USAGE_INDENT 24 /* column of the help texts */
#define USAGE_WIDTH 79

/* Writes "  FLAG" and then text word by word from USAGE_INDENT on, wrapped
 * at USAGE_WIDTH; a flag too long for its column gets a line of its own. */
static void usage_line(FILE *out, const char *flag, const char *text)
{
    int col = fprintf(out, "  %s", flag);
    if (col >= USAGE_INDENT) {
        fputc('\n', out);
        col = 0;
    }
    while (*text) {
        int n = (int)strcspn(text, " ");
        /* past USAGE_INDENT, a word is on the line already */
        if (col > USAGE_INDENT && col + 1 + n > USAGE_WIDTH) {
            fputc('\n', out);
            col = 0;
        }
        if (col < USAGE_INDENT)
            col += fprintf(out, "%*s", USAGE_INDENT - col, "");
        else
            col += fprintf(out, " ");
        col += fprintf(out, "%.*s", n, text);
        text += n;
        while (*text == ' ')
            text++;
    }
    fputc('\n', out);
}

/* The --help text: one entry per option of cli_options; defaults and
 * accepted values of the keys behind the flags come from the key table
 * (defaults holds config_defaults). */
static void usage(FILE *out, const struct config *defaults)
{
    fputs("usage: lbproxy [options]\n"
          "HTTP/1.1 reverse-proxy load balancer (one process, one epoll "
          "loop).\n\n",
          out);
    for (size_t i = 0; i < CLI_NOPTIONS; i++) {
        const struct cli_option *o = &cli_options[i];
        const struct config_key *k =
            o->key ? config_key_find(o->section, o->key) : NULL;
        char flag[96], text[CONFIG_TEXT_MAX], help[2 * CONFIG_TEXT_MAX];
        int n = 0;
        if (o->short_name)
            n = snprintf(flag, sizeof(flag), "-%c, ", o->short_name);
        snprintf(flag + n, sizeof(flag) - (size_t)n, "--%s%s%s", o->name,
                 o->arg ? " " : "", o->arg ? o->arg : "");
        if (k && o->show == CLI_SHOW_DEFAULT) {
            config_key_text(defaults, k, text, sizeof(text));
            snprintf(help, sizeof(help), "%s (default %s)", o->help, text);
        } else if (k && o->show == CLI_SHOW_VALUES) {
            k->type->expect(k, text, sizeof(text));
            snprintf(help, sizeof(help), "%s: %s", o->help, text);
        } else {
            snprintf(help, sizeof(help), "%s", o->help);
        }
        usage_line(out, flag, help);
    }
    fputs("\nBoth --flag VALUE and --flag=VALUE work.  Later flags override "
          "earlier\nones and the file.  Exit status 2 on a configuration "
          "error.\n",
          out);
}

/* ---- the flags --------------------------------------------------------- */

/* Turns a getopt error ('?' or ':') into a message naming the flag. */
static void option_error(int ch, char **argv, char *err, size_t errlen)
{
    const struct cli_option *o = cli_by_val(optopt);
    if (ch == ':' && o)
        config_set_err(err, errlen, "--%s: expected a value (%s)", o->name,
                       o->arg ? o->arg : "?");
    else if (optopt == 0)
        config_set_err(err, errlen,
                       "unknown or ambiguous option '%s' (see --help)",
                       argv[optind - 1]);
    else if (o && !o->short_name)
        config_set_err(err, errlen, "--%s: takes no value", o->name);
    else if (o)
        config_set_err(err, errlen, "--%s (-%c): takes no value", o->name,
                       o->short_name);
    else
        config_set_err(err, errlen, "unknown option '-%c' (see --help)",
                       optopt);
}

/* Sets the key behind a CLI_KEY flag; the message names the flag. */
static int flag_key(struct config *c, const struct cli_option *o, const char *v,
                    char *err, size_t errlen)
{
    const struct config_key *k = config_key_find(o->section, o->key);
    char what[CONFIG_TEXT_MAX];
    if (!o->arg)
        v = o->value;
    if (!k || config_key_apply(c, k, v, what, sizeof(what)) < 0) {
        config_set_err(err, errlen, "--%s: expected %s, got '%s'", o->name,
                       k ? what : "?", v);
        return -1;
    }
    return 0;
}

/* --set section.key=value, through the same table as the file. */
static int flag_set(struct config *c, const char *arg, char *err, size_t errlen)
{
    char buf[512], known[128], what[CONFIG_TEXT_MAX];
    if (config_copy_str(buf, sizeof(buf), arg) < 0) {
        config_set_err(err, errlen, "--set: value too long");
        return -1;
    }
    char *eq = strchr(buf, '=');
    char *dot = strchr(buf, '.');
    if (!eq || !dot || dot > eq) {
        config_set_err(err, errlen,
                       "--set: expected SECTION.KEY=VALUE, got '%s'", arg);
        return -1;
    }
    *dot = '\0';
    *eq = '\0';
    char *section = config_trim(buf), *key = config_trim(dot + 1);
    char *value = config_trim(eq + 1);
    if (strcasecmp(section, "backends") == 0)
        return config_backend_add(c, key, value, true, "--set ", err, errlen);
    if (config_tls_pair_key(section, key)) {
        if (config_tls_add(c, key, value, NULL, what, sizeof(what)) < 0) {
            config_set_err(err, errlen, "--set [tls] %s: expected %s, got '%s'",
                           key, what, value);
            return -1;
        }
        return 0;
    }
    if (!config_section_known(section)) {
        config_sections_text(known, sizeof(known));
        config_set_err(err, errlen,
                       "--set %s: unknown section [%s] (known: %s)", arg,
                       section, known);
        return -1;
    }
    const struct config_key *k = config_key_find(section, key);
    if (!k) {
        config_set_err(err, errlen, "--set %s: unknown key [%s] %s", arg,
                       section, key);
        return -1;
    }
    if (config_key_apply(c, k, value, what, sizeof(what)) < 0) {
        config_set_err(err, errlen, "--set [%s] %s: expected %s, got '%s'",
                       k->section, k->key, what, value);
        return -1;
    }
    return 0;
}

/* --backend SPEC: the first one replaces the file's list; ids default to
 * the position. */
static int flag_backend(struct config *c, const char *arg, bool *seen,
                        char *err, size_t errlen)
{
    struct config_backend b;
    bool has_id;
    char what[160];
    if (config_backend_parse(arg, true, &b, &has_id, what, sizeof(what)) < 0) {
        config_set_err(err, errlen, "--backend: expected %s, got '%s'", what,
                       arg);
        return -1;
    }
    if (!*seen) {
        c->nbackends = 0;
        *seen = true;
    }
    if (c->nbackends >= CONFIG_MAX_BACKENDS) {
        config_set_err(err, errlen, "--backend: more than %d backends",
                       CONFIG_MAX_BACKENDS);
        return -1;
    }
    if (!has_id)
        config_default_id(c->nbackends, b.id, sizeof(b.id));
    if (config_backend_index(c, b.id) >= 0) {
        config_set_err(err, errlen, "--backend %s: duplicate backend id '%s'",
                       arg, b.id);
        return -1;
    }
    c->backends[c->nbackends++] = b;
    return 0;
}

/* What the first pass over argv found. */
struct cli_first {
    const char *config_path;
    bool help, version;
    int bad; /* malformed flags seen */
    char err[512];
};

/* Pass 1: find --config (the file comes before every other flag), --help
 * and --version, and catch malformed flags.  optind = 0 makes glibc start
 * over. */
static void cli_first_pass(const struct cli_getopt *g, int argc, char **argv,
                           struct cli_first *f)
{
    int ch;
    opterr = 0;
    optind = 0;
    while ((ch = getopt_long(argc, argv, g->optstring, g->longopts, NULL)) !=
           -1) {
        const struct cli_option *o = cli_by_val(ch);
        if (!o) { /* '?' or ':' */
            if (!f->bad++)
                option_error(ch, argv, f->err, sizeof(f->err));
        } else if (o->action == CLI_CONFIG) {
            f->config_path = optarg;
        } else if (o->action == CLI_HELP) {
            f->help = true;
        } else if (o->action == CLI_VERSION) {
            f->version = true;
        }
    }
    if (!f->bad && optind < argc) {
        f->bad = 1;
        config_set_err(f->err, sizeof(f->err),
                       "unexpected argument '%s' (see --help)", argv[optind]);
    }
}

int config_from_args(struct config *c, int argc, char **argv, char *err,
                     size_t errlen)
{
    struct cli_getopt g;
    struct cli_first first = {0};
    bool check = false, print = false, backends_seen = false;
    bool tls_replace = true; /* the first --tls-cert replaces the file's */
    int ch, rc = 0;

    cli_getopt_init(&g);
    cli_first_pass(&g, argc, argv, &first);
    config_defaults(c);
    if (first.help) {
        usage(config_out(), c);
        return 1;
    }
    if (first.version) {
        fprintf(config_out(), "lbproxy %s\n", LBPROXY_VERSION);
        return 1;
    }
    if (first.bad) {
        config_set_err(err, errlen, "%s", first.err);
        return -1;
    }
    const char *path = first.config_path;
    if (!path && access(CONFIG_DEFAULT_FILE, F_OK) == 0)
        path = CONFIG_DEFAULT_FILE;
    if (path && config_load_file(c, path, err, errlen) < 0)
        return -1;

    /* Pass 2: the flags, in order, over the file. */
    optind = 0;
    while (rc == 0 && (ch = getopt_long(argc, argv, g.optstring, g.longopts,
                                        NULL)) != -1) {
        const struct cli_option *o = cli_by_val(ch);
        if (!o) /* cannot happen: pass 1 found no malformed flag */
            continue;
        switch (o->action) {
        case CLI_KEY:
            rc = flag_key(c, o, optarg, err, errlen);
            break;
        case CLI_BACKEND:
            rc = flag_backend(c, optarg, &backends_seen, err, errlen);
            break;
        case CLI_SET:
            rc = flag_set(c, optarg, err, errlen);
            break;
        case CLI_TLS: {
            char what[CONFIG_TEXT_MAX];
            const char *key = strcmp(o->name, "tls-key") == 0 ? "key" : "cert";
            rc = config_tls_add(c, key, optarg, &tls_replace, what,
                                sizeof(what));
            if (rc < 0)
                config_set_err(err, errlen, "--%s: expected %s, got '%s'",
                               o->name, what, optarg);
            break;
        }
        case CLI_CHECK:
            check = true;
            break;
        case CLI_PRINT:
            print = true;
            break;
        case CLI_VERBOSE:
            if (c->verbosity < 3)
                c->verbosity++;
            break;
        case CLI_CONFIG: /* read in pass 1 */
        case CLI_HELP:
        case CLI_VERSION:
            break;
        }
    }
    optind = 0;
    /* The one validation pass, before anything is bound or opened. */
    if (rc < 0 || config_validate(c, err, errlen) < 0) {
        config_release(c);
        return -1;
    }
    if (check || print)
        config_print(c, config_out());
    if (check) {
        fprintf(config_out(), "; configuration OK\n");
        config_release(c);
        return 1;
    }
    return 0;
}
