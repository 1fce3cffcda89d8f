/*
 * be_server: the emulator's HTTP/1.1 server — listener, connections,
 * workers with a FIFO queue, latency timers, fault injection, /health,
 * /stats, echo, request log.  Runs on the project's event loop.
 */
#ifndef LB_BE_SERVER_H
#define LB_BE_SERVER_H

#include <stddef.h>

#include "be_options.h"

struct loop;
struct be_server;

/* Binds the listener and registers it with the loop.  The options must
 * outlive the server.  Returns NULL with a message in err on failure. */
struct be_server *be_server_create(struct loop *loop,
                                   const struct be_options *o, char *err,
                                   size_t errlen);

/* The port actually bound (useful with --port 0). */
int be_server_port(const struct be_server *s);

/* Closes every connection and the listener and frees the server; NULL is a
 * no-op.  Call it outside loop callbacks (after loop_run returns). */
void be_server_destroy(struct be_server *s);

#endif
