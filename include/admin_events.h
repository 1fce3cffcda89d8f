/*
 * admin_events: a bounded ring of short text lines that scripts on this
 * machine post to the admin listener (POST /api/event, level in the query)
 * so that the dashboard's Events panel names what they do — the demo names
 * its phases this way.  The ring keeps the newest ADMIN_EVENTS_MAX lines;
 * /api/stats and every /api/stream snapshot carry them.
 */
#ifndef LB_ADMIN_EVENTS_H
#define LB_ADMIN_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "admin_render.h"

#define ADMIN_EVENTS_MAX 32
#define ADMIN_EVENT_TEXT_MAX 160

enum admin_event_level {
    ADMIN_EVENT_INFO,
    ADMIN_EVENT_OK,
    ADMIN_EVENT_WARN,
    ADMIN_EVENT_BAD,
};

struct admin_event {
    uint64_t id; /* 1, 2, ... in posting order; 0 = an empty slot */
    double time; /* wall clock, seconds since the epoch */
    enum admin_event_level level;
    char text[ADMIN_EVENT_TEXT_MAX + 1];
};

struct admin_events {
    struct admin_event ring[ADMIN_EVENTS_MAX];
    uint64_t last_id;
};

/* "info", "ok", "warn", "bad" and back; parse returns 0, or -1 for another
 * name. */
const char *admin_event_level_str(enum admin_event_level level);
int admin_event_level_parse(const char *name, enum admin_event_level *level);

/* Adds one line (len bytes; one trailing CR/LF is dropped), replacing the
 * oldest when the ring is full.  Accepts 1..ADMIN_EVENT_TEXT_MAX bytes of
 * printable ASCII (a tab counts as a space).  Returns the new id, or 0 with
 * errno EINVAL (empty, other bytes) or EMSGSIZE (too long). */
uint64_t admin_events_add(struct admin_events *e, const char *text, size_t len,
                          enum admin_event_level level, double wall_s);

/* The rule of POST /api/event[?level=info|ok|warn|bad] (url as received,
 * body_bytes the body's length of which the first `kept` bytes are in
 * body): adds the line and returns 200 with *id set, or 400 or 413 with *why
 * set to a short reason. */
int admin_events_post(struct admin_events *e, const char *url, size_t url_len,
                      const char *body, size_t body_bytes, size_t kept,
                      double wall_s, uint64_t *id, const char **why);

/* Appends ,"events":[{"id","time","level","text"},...] (oldest first) inside
 * the JSON object that b ends with: b's last byte must be '}' (else nothing
 * is changed and -1 is returned; 0 on success). */
int admin_events_append_json(const struct admin_events *e, struct admin_buf *b);

/* True when the socket's peer is a loopback address (127.0.0.0/8, ::1 or
 * ::ffff:127.x): only local scripts may post events. */
bool admin_peer_is_loopback(int fd);

#endif
