/*
 * master: runs the workers of --workers N (src/master.c, docs/workers.md).
 */
#ifndef LB_MASTER_H
#define LB_MASTER_H

struct config;

/* The workers cfg asks for: [proxy] workers, or with auto the CPUs this
 * process may run on (at most SHM_MAX_WORKERS). */
unsigned master_worker_count(const struct config *cfg);
/* Runs the master until it is told to stop (cfg is taken over); the exit
 * status.  argc and argv are kept to read the configuration again on
 * SIGHUP. */
int master_run(struct config *cfg, int argc, char **argv);
#endif
