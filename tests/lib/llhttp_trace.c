/*
 * llhttp_trace: one parse by one build of llhttp, recorded (see
 * llhttp_trace.h).
 */
#include "llhttp_trace.h"

#include <stdio.h>

#include "llhttp_cpu.h"

static void mix(struct llhttp_trace *t, uint64_t v)
{
    t->hash = (t->hash ^ v) * 1099511628211u; /* FNV-1a, word-wise */
    t->events++;
}

static int note(llhttp_t *p, unsigned kind, const char *at, size_t len)
{
    struct llhttp_trace *t = p->data;
    mix(t, kind);
    mix(t, (uint64_t)(at - t->base));
    mix(t, len);
    return 0;
}

#define SPAN_CB(name, kind)                                                    \
    static int name(llhttp_t *p, const char *at, size_t len)                   \
    {                                                                          \
        return note(p, kind, at, len);                                         \
    }
#define CB(name, kind)                                                         \
    static int name(llhttp_t *p)                                               \
    {                                                                          \
        return note(p, kind, ((struct llhttp_trace *)p->data)->base, 0);       \
    }
SPAN_CB(on_url, 1)
SPAN_CB(on_status, 2)
SPAN_CB(on_field, 3)
SPAN_CB(on_value, 4)
SPAN_CB(on_body, 5)
SPAN_CB(on_method, 6)
SPAN_CB(on_version, 7)
CB(on_begin, 10)
CB(on_message_complete, 12)
CB(on_field_complete, 13)
CB(on_value_complete, 14)

static int on_headers_complete(llhttp_t *p)
{
    struct llhttp_trace *t = p->data;
    note(p, 11, t->base, 0);
    return t->pause_on_head ? HPE_PAUSED : 0;
}

static void settings_init(llhttp_settings_t *s)
{
    llhttp_settings_init(s);
    s->on_url = on_url;
    s->on_status = on_status;
    s->on_header_field = on_field;
    s->on_header_value = on_value;
    s->on_body = on_body;
    s->on_method = on_method;
    s->on_version = on_version;
    s->on_message_begin = on_begin;
    s->on_headers_complete = on_headers_complete;
    s->on_message_complete = on_message_complete;
    s->on_header_field_complete = on_field_complete;
    s->on_header_value_complete = on_value_complete;
}

struct llhttp_trace llhttp_trace_parse(llhttp_execute_fn exec,
                                       llhttp_type_t type, const char *data,
                                       size_t len, struct llhttp_feed feed)
{
    struct llhttp_trace t = {
        data, feed.pause_on_head, 14695981039346656037u, 0, 0, HPE_OK, -1};
    llhttp_settings_t settings;
    settings_init(&settings);
    llhttp_t p;
    llhttp_init(&p, type, &settings);
    p.data = &t;
    size_t off = 0;
    /* each call consumes bytes or ends the parse, but for a pause, which
     * comes once per message (a message takes at least one byte): so at
     * most len pauses, and any more is an error like another */
    while (off < len) {
        size_t n =
            feed.piece == 0 || len - off < feed.piece ? len - off : feed.piece;
        int e = exec(&p, data + off, data + off + n);
        if (e == HPE_PAUSED && t.pauses <= len) {
            const char *at = llhttp_get_error_pos(&p);
            mix(&t, (uint64_t)(at - data));
            t.pauses++;
            llhttp_resume(&p);
            off = (size_t)(at - data);
            continue;
        }
        if (e != HPE_OK) {
            t.err = e;
            t.err_pos = (long)(llhttp_get_error_pos(&p) - data);
            break;
        }
        off += n;
    }
    /* what the parser tells its caller after the last call */
    mix(&t, (uint64_t)p.error);
    mix(&t, p.flags);
    mix(&t, p.content_length);
    mix(&t, p.method);
    mix(&t, p.status_code);
    mix(&t, (uint64_t)p.http_major << 8 | p.http_minor);
    mix(&t, p.upgrade);
    mix(&t, (uint64_t)llhttp_should_keep_alive(&p));
    return t;
}

bool llhttp_trace_same(llhttp_type_t type, const char *data, size_t len,
                       struct llhttp_feed feed, char *why, size_t cap)
{
    struct llhttp_trace a = llhttp_trace_parse(llhttp__internal_execute_base,
                                               type, data, len, feed);
    struct llhttp_trace b = llhttp_trace_parse(llhttp__internal_execute_sse42,
                                               type, data, len, feed);
    if (a.hash == b.hash && a.events == b.events && a.pauses == b.pauses &&
        a.err == b.err && a.err_pos == b.err_pos)
        return true;
    snprintf(why, cap,
             "type %d, pieces of %zu%s: baseline %u events %u pauses err %d "
             "at %ld, sse4.2 %u events %u pauses err %d at %ld",
             (int)type, feed.piece, feed.pause_on_head ? ", paused" : "",
             a.events, a.pauses, a.err, a.err_pos, b.events, b.pauses, b.err,
             b.err_pos);
    return false;
}
