/*
 * lbbackend: a latency-emulating HTTP/1.1 backend.  main only wires the
 * options, the loop, the server and the signals together.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "be_options.h"
#include "be_server.h"
#include "loop.h"
#include "net.h"

static void on_signal(struct loop *loop, struct loop_io *io, unsigned events)
{
    (void)events;
    struct signalfd_siginfo si;
    if (read(io->fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
        loop_stop(loop);
}

int main(int argc, char **argv)
{
    static struct be_options opts;
    char err[512], prof[128];
    be_options_defaults(&opts);
    int rc = be_options_parse(&opts, argc, argv, err, sizeof(err));
    if (rc == 1) {
        fputs(be_options_usage, stdout);
        return 0;
    }
    if (rc < 0) {
        fprintf(stderr, "lbbackend: %s\n%s", err, be_options_usage);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    struct loop *loop = loop_create();
    if (sfd < 0 || !loop) {
        fprintf(stderr, "lbbackend: start-up: %s\n", strerror(errno));
        return 1;
    }
    struct loop_io sio = {.fn = on_signal};
    if (loop_io_add(loop, &sio, sfd, LOOP_READ) < 0) {
        fprintf(stderr, "lbbackend: epoll: %s\n", strerror(errno));
        return 1;
    }
    struct be_server *srv = be_server_create(loop, &opts, err, sizeof(err));
    if (!srv) {
        fprintf(stderr, "lbbackend: %s\n", err);
        return 1;
    }
    if (opts.verbose >= 1) {
        char port[8], addr[NET_ADDRSTRLEN];
        snprintf(port, sizeof(port), "%d", be_server_port(srv));
        if (opts.unix_path[0])
            snprintf(addr, sizeof(addr), "unix:%s", opts.unix_path);
        else
            net_join(addr, sizeof(addr), opts.listen_address, port);
        fprintf(stderr,
                "lbbackend %s listening on %s profile %s, %d phase(s), "
                "workers %d\n",
                opts.id, addr,
                be_profile_str(&opts.profile, prof, sizeof(prof)), opts.nphases,
                opts.workers);
    }
    rc = loop_run(loop);
    be_server_destroy(srv);
    loop_io_del(loop, &sio);
    close(sfd);
    loop_destroy(loop);
    if (opts.verbose >= 1)
        fprintf(stderr, "lbbackend %s: stopped\n", opts.id);
    return rc < 0 ? 1 : 0;
}
