/*
 * server: the listener, accept (with EMFILE and max_clients back-off),
 * signals through signalfd (TERM/INT drain, HUP reload, USR1 log reopen),
 * and the wiring of the per-request record into the CSV log and stats.
 */
#ifndef LB_SERVER_H
#define LB_SERVER_H

#include <stddef.h>

struct config;

/* Builds everything from a validated config and binds the sockets.  argc and
 * argv are kept to re-read the same file and flags on SIGHUP.  Returns 0, or
 * -1 with a message in err. */
int server_start(const struct config *cfg, int argc, char **argv, char *err,
                 size_t errlen);

/* Makes this process worker w of a master's (--workers N, workers.h),
 * before server_start; w is copied. */
struct worker_self;
void server_set_worker(const struct worker_self *w);
/* Runs the event loop until shutdown completes; returns the exit status. */
int server_run(void);

#endif
