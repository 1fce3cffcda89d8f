/*
 * main: flags -> config -> run.
 */
#include <stdio.h>

#include "config.h"
#include "master.h"
#include "server.h"

int main(int argc, char **argv)
{
    static struct config cfg;
    char err[512] = "";
    int rc = config_from_args(&cfg, argc, argv, err, sizeof(err));
    if (rc > 0)
        return 0;
    if (rc < 0) { /* config_from_args has validated everything */
        fprintf(stderr, "lbproxy: %s\n", err);
        return 2;
    }
    if (master_worker_count(&cfg) > 1)
        return master_run(&cfg, argc, argv);
    if (server_start(&cfg, argc, argv, err, sizeof(err)) < 0) {
        fprintf(stderr, "lbproxy: %s\n", err);
        return 1;
    }
    return server_run();
}
