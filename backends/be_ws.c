/*
 * be_ws: the emulator's WebSocket echo endpoint (RFC 6455) at /ws.  The
 * handshake answers Sec-WebSocket-Accept = base64(SHA-1(key + GUID)); then
 * every client frame is checked (masked, no RSV bits, known opcode, control
 * frames whole and at most 125 bytes, data frames at most WS_MAX_FRAME,
 * continuations only inside a fragmented message) and echoed: data frames
 * unmasked with the same FIN and opcode, streamed as their payload arrives
 * so that memory stays at the connection's two buffers; ping gets pong;
 * close gets close with the same code, then the connection closes.  A bad
 * frame gets close 1002 (1009 for one too big).  /ws?flood=N also sends N
 * bytes of binary frames of its own (a backend that talks a lot), as the
 * output drains.  Text payloads are not checked for UTF-8.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "be_internal.h"
#include "be_sha1.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define KEY_LEN 24    /* base64 of the 16-byte nonce */
#define HEAD_ROOM 256 /* output room needed before a new frame */
#define FLOOD_CHUNK 8192
#define ROUNDS 4096 /* frames handled per call, at most */

enum {
    OP_CONT = 0x0,
    OP_TEXT = 0x1,
    OP_BINARY = 0x2,
    OP_CLOSE = 0x8,
    OP_PING = 0x9,
    OP_PONG = 0xa,
};

/* ---- the handshake ---- */

/* True when the comma-separated list v[0, n) holds token (any case). */
static int has_token(const char *v, size_t n, const char *token)
{
    size_t tl = strlen(token), i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t start = i;
        while (i < n && v[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        if (end - start == tl && strncasecmp(v + start, token, tl) == 0)
            return 1;
    }
    return 0;
}

static int is_base64_key(const char *v, size_t n)
{
    if (n != KEY_LEN || v[22] != '=' || v[23] != '=')
        return 0;
    for (size_t i = 0; i < 22; i++) {
        char ch = v[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
              (ch >= '0' && ch <= '9') || ch == '+' || ch == '/'))
            return 0;
    }
    return 1;
}

/* ?flood=N in the request line's target (0 when absent or bad). */
static uint64_t flood_of(const char *head, size_t n)
{
    const char *eol = memchr(head, '\n', n);
    size_t ln = eol ? (size_t)(eol - head) : n;
    const char *q = memchr(head, '?', ln);
    if (!q)
        return 0;
    const char *end = head + ln;
    for (const char *p = q + 1; p + 6 <= end; p++) {
        if (memcmp(p, "flood=", 6) != 0 || (p[-1] != '?' && p[-1] != '&'))
            continue;
        uint64_t v = 0;
        for (p += 6; p < end && *p >= '0' && *p <= '9'; p++) {
            v = v * 10 + (uint64_t)(*p - '0');
            if (v > WS_MAX_FLOOD)
                return WS_MAX_FLOOD;
        }
        return v;
    }
    return 0;
}

void be_ws_head(struct conn *c, const char *head, size_t n)
{
    struct be_ws *w = &c->ws;
    const char *end = head + n;
    const char *line = memchr(head, '\n', n);
    const char *key = NULL;
    size_t key_len = 0;
    int upgrade = 0, connection = 0, version = 0;
    memset(w, 0, sizeof(*w));
    while (line && ++line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        if (!nl)
            break;
        const char *colon = memchr(line, ':', (size_t)(nl - line));
        if (colon) {
            size_t nlen = (size_t)(colon - line);
            const char *v = colon + 1;
            while (v < nl && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = nl;
            while (ve > v &&
                   (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            size_t vlen = (size_t)(ve - v);
            if (nlen == 7 && strncasecmp(line, "upgrade", 7) == 0)
                upgrade |= has_token(v, vlen, "websocket");
            else if (nlen == 10 && strncasecmp(line, "connection", 10) == 0)
                connection |= has_token(v, vlen, "upgrade");
            else if (nlen == 21 &&
                     strncasecmp(line, "sec-websocket-version", 21) == 0)
                version = vlen == 2 && memcmp(v, "13", 2) == 0;
            else if (nlen == 17 &&
                     strncasecmp(line, "sec-websocket-key", 17) == 0) {
                key = v;
                key_len = vlen;
            }
        }
        line = nl;
    }
    if (!upgrade || !connection || !version || !key ||
        !is_base64_key(key, key_len))
        return;
    char buf[KEY_LEN + sizeof(WS_GUID)];
    memcpy(buf, key, KEY_LEN);
    memcpy(buf + KEY_LEN, WS_GUID, sizeof(WS_GUID) - 1);
    uint8_t digest[BE_SHA1_LEN];
    be_sha1(buf, KEY_LEN + sizeof(WS_GUID) - 1, digest);
    be_base64(digest, sizeof(digest), w->accept);
    w->flood = flood_of(head, n);
}

int be_ws_accept(struct conn *c)
{
    if (!c->ws.accept[0] || c->http10 || c->is_head || c->body_bytes > 0 ||
        llhttp_get_method(&c->parser) != HTTP_GET) {
        c->srv->st.bad_requests++;
        return 0;
    }
    static const char a[] = "HTTP/1.1 101 Switching Protocols\r\n"
                            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                            "Sec-WebSocket-Accept: ";
    out_put(c, a, sizeof(a) - 1);
    out_put(c, c->ws.accept, strlen(c->ws.accept));
    out_put(c, "\r\nX-Backend-Id: ", 16);
    out_put(c, c->srv->o->id, strlen(c->srv->o->id));
    out_put(c, "\r\n\r\n", 4);
    c->srv->st.ws_upgrades++;
    return 1;
}

/* ---- frames ---- */

/* Queues an unmasked frame header for a payload of len bytes. */
static void put_header(struct conn *c, unsigned first, uint64_t len)
{
    uint8_t h[10];
    size_t n = 2;
    h[0] = (uint8_t)first;
    if (len < 126) {
        h[1] = (uint8_t)len;
    } else if (len <= 0xffff) {
        h[1] = 126;
        h[2] = (uint8_t)(len >> 8);
        h[3] = (uint8_t)len;
        n = 4;
    } else {
        h[1] = 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (uint8_t)(len >> (56 - 8 * i));
        n = 10;
    }
    out_put(c, h, n);
}

/* Queues close with `code` and ends the connection after it. */
static void ws_fail(struct conn *c, unsigned code)
{
    uint8_t p[2] = {(uint8_t)(code >> 8), (uint8_t)code};
    put_header(c, 0x80 | OP_CLOSE, 2);
    out_put(c, p, 2);
    c->close_after = 1;
}

static void consume(struct conn *c, size_t n)
{
    c->in_parse += n;
    c->in_start = c->in_parse;
}

/* A whole control frame (payload unmasked in p): answered. */
static void control(struct conn *c, unsigned op, const uint8_t *p, size_t len)
{
    switch (op) {
    case OP_PING:
        put_header(c, 0x80 | OP_PONG, len);
        out_put(c, p, len);
        return;
    case OP_PONG:
        return;
    case OP_CLOSE:
        if (len == 1) {
            ws_fail(c, 1002);
            return;
        }
        /* the same code back (none for none), then close (RFC 6455 5.5.1) */
        put_header(c, 0x80 | OP_CLOSE, len >= 2 ? 2 : 0);
        out_put(c, p, len >= 2 ? 2 : 0);
        c->close_after = 1;
        return;
    default:
        ws_fail(c, 1002);
        return;
    }
}

/* Parses one frame header at in_parse: 1 handled, 0 more bytes needed. */
static int frame_head(struct conn *c)
{
    struct be_ws *w = &c->ws;
    const uint8_t *p = (const uint8_t *)c->in + c->in_parse;
    size_t avail = c->in_len - c->in_parse;
    if (avail < 2)
        return 0;
    unsigned fin = p[0] & 0x80, op = p[0] & 0x0f;
    uint64_t len = p[1] & 0x7f;
    size_t hl = 2;
    if (len == 126) {
        if (avail < 4)
            return 0;
        len = (uint64_t)p[2] << 8 | p[3];
        hl = 4;
    } else if (len == 127) {
        if (avail < 10)
            return 0;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | p[2 + i];
        hl = 10;
    }
    if (!(p[1] & 0x80) || (p[0] & 0x70)) {
        ws_fail(c, 1002); /* client frames are masked; no extension is agreed */
        return 1;
    }
    if (avail < hl + 4)
        return 0;
    const uint8_t *mask = p + hl;
    hl += 4;
    c->srv->st.ws_frames++;
    if (op >= 8) {
        if (!fin || len > 125) {
            ws_fail(c, 1002);
            return 1;
        }
        if (avail < hl + len) {
            c->srv->st.ws_frames--; /* counted when it is whole */
            return 0;
        }
        uint8_t pl[125];
        for (size_t i = 0; i < len; i++)
            pl[i] = p[hl + i] ^ mask[i & 3];
        consume(c, hl + (size_t)len);
        control(c, op, pl, (size_t)len);
        return 1;
    }
    int ok = op == OP_CONT
                 ? w->in_message
                 : (op == OP_TEXT || op == OP_BINARY) && !w->in_message;
    if (!ok) {
        ws_fail(c, 1002);
        return 1;
    }
    if (len > WS_MAX_FRAME) {
        ws_fail(c, 1009);
        return 1;
    }
    w->in_message = !fin;
    memcpy(w->mask, mask, 4);
    w->mask_pos = 0;
    w->left = len;
    w->in_frame = len > 0;
    consume(c, hl);
    put_header(c, fin | op, len);
    return 1;
}

/* Echoes what has arrived of the current data frame's payload. */
static int frame_payload(struct conn *c)
{
    struct be_ws *w = &c->ws;
    size_t n = c->in_len - c->in_parse;
    if (n > out_free(c))
        n = out_free(c);
    if (n > w->left)
        n = (size_t)w->left;
    if (n == 0)
        return 0;
    const uint8_t *src = (const uint8_t *)c->in + c->in_parse;
    uint8_t *dst = (uint8_t *)c->out + c->out_len;
    for (size_t i = 0; i < n; i++)
        dst[i] = src[i] ^ w->mask[(w->mask_pos + i) & 3];
    w->mask_pos = (unsigned)((w->mask_pos + n) & 3);
    c->out_len += n;
    w->left -= n;
    w->in_frame = w->left > 0;
    consume(c, n);
    return 1;
}

/* Queues flood frames as output room allows. */
static void flood(struct conn *c)
{
    struct be_ws *w = &c->ws;
    while (w->flood > 0 && out_free(c) >= HEAD_ROOM + FLOOD_CHUNK) {
        size_t n = w->flood < FLOOD_CHUNK ? (size_t)w->flood : FLOOD_CHUNK;
        put_header(c, 0x80 | OP_BINARY, n);
        memset(c->out + c->out_len, 'f', n);
        c->out_len += n;
        w->flood -= n;
    }
}

int be_ws_input(struct conn *c)
{
    struct be_ws *w = &c->ws;
    size_t in0 = c->in_parse, out0 = c->out_len;
    for (int i = 0; i < ROUNDS && !c->close_after; i++) {
        if (w->in_frame) {
            if (!frame_payload(c))
                break;
            continue;
        }
        if (out_free(c) < HEAD_ROOM || c->in_parse == c->in_len ||
            !frame_head(c))
            break;
    }
    if (!c->close_after && !w->in_frame && !w->in_message)
        flood(c);
    return c->in_parse != in0 || c->out_len != out0;
}
