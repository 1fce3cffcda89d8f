/*
 * admin_events: the ring of posted event lines and its JSON.  See
 * include/admin_events.h.
 */
#include "admin_events.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"

const char *admin_event_level_str(enum admin_event_level level)
{
    switch (level) {
    case ADMIN_EVENT_INFO:
        return "info";
    case ADMIN_EVENT_OK:
        return "ok";
    case ADMIN_EVENT_WARN:
        return "warn";
    case ADMIN_EVENT_BAD:
        return "bad";
    }
    return "info";
}

int admin_event_level_parse(const char *name, enum admin_event_level *level)
{
    static const enum admin_event_level all[] = {
        ADMIN_EVENT_INFO, ADMIN_EVENT_OK, ADMIN_EVENT_WARN, ADMIN_EVENT_BAD};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (strcmp(name, admin_event_level_str(all[i])) == 0) {
            *level = all[i];
            return 0;
        }
    }
    return -1;
}

uint64_t admin_events_add(struct admin_events *e, const char *text, size_t len,
                          enum admin_event_level level, double wall_s)
{
    if (len > 0 && text[len - 1] == '\n')
        len--;
    if (len > 0 && text[len - 1] == '\r')
        len--;
    if (len == 0) {
        errno = EINVAL;
        return 0;
    }
    if (len > ADMIN_EVENT_TEXT_MAX) {
        errno = EMSGSIZE;
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)text[i];
        if ((ch < 0x20 && ch != '\t') || ch >= 0x7f) {
            errno = EINVAL;
            return 0;
        }
    }
    struct admin_event *ev = &e->ring[e->last_id % ADMIN_EVENTS_MAX];
    ev->id = ++e->last_id;
    ev->time = wall_s;
    ev->level = level;
    for (size_t i = 0; i < len; i++)
        ev->text[i] = text[i] == '\t' ? ' ' : text[i];
    ev->text[len] = '\0';
    return ev->id;
}

int admin_events_post(struct admin_events *e, const char *url, size_t url_len,
                      const char *body, size_t body_bytes, size_t kept,
                      double wall_s, uint64_t *id, const char **why)
{
    char lv[16] = "info";
    enum admin_event_level level;
    *why = "one line of at most 160 bytes of printable ASCII";
    if (body_bytes > kept)
        return 413;
    admin_query_param(url, url_len, "level", lv, sizeof(lv));
    if (admin_event_level_parse(lv, &level) < 0) {
        *why = "level: info, ok, warn or bad";
        return 400;
    }
    *id = admin_events_add(e, body, body_bytes, level, wall_s);
    if (*id == 0)
        return errno == EMSGSIZE ? 413 : 400;
    log_info("event %llu (%s): %s", (unsigned long long)*id, lv,
             e->ring[(*id - 1) % ADMIN_EVENTS_MAX].text);
    return 200;
}

int admin_events_append_json(const struct admin_events *e, struct admin_buf *b)
{
    if (b->len == 0 || b->p[b->len - 1] != '}')
        return -1;
    b->len--;
    admin_buf_str(b, ",\"events\":[");
    uint64_t first =
        e->last_id > ADMIN_EVENTS_MAX ? e->last_id - ADMIN_EVENTS_MAX + 1 : 1;
    for (uint64_t id = first; id <= e->last_id; id++) {
        const struct admin_event *ev = &e->ring[(id - 1) % ADMIN_EVENTS_MAX];
        admin_buf_printf(b,
                         "%s{\"id\":%llu,\"time\":%.3f,\"level\":\"%s\","
                         "\"text\":\"",
                         id == first ? "" : ",", (unsigned long long)ev->id,
                         ev->time, admin_event_level_str(ev->level));
        /* Printable ASCII only (admin_events_add): escape " and \. */
        for (const char *p = ev->text; *p; p++) {
            if (*p == '"' || *p == '\\')
                admin_buf_add(b, "\\", 1);
            admin_buf_add(b, p, 1);
        }
        admin_buf_str(b, "\"}");
    }
    admin_buf_str(b, "]}");
    return 0;
}

bool admin_peer_is_loopback(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
        return false;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (ss.ss_family == AF_INET6) {
        const struct in6_addr *a =
            &((const struct sockaddr_in6 *)&ss)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a))
            return true;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return false;
}
