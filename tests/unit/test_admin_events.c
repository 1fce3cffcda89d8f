/*
 * Unit tests of the posted-event ring: what a line may hold, the newest
 * ADMIN_EVENTS_MAX kept in order when it wraps, the JSON spliced into the
 * stats object (escaped, parseable shape), the POST rule's statuses, and
 * the loopback-only check on real sockets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "admin_events.h"

static void test_lines_and_levels(void **state)
{
    (void)state;
    static struct admin_events e;
    enum admin_event_level lv;
    assert_int_equal(admin_event_level_parse("warn", &lv), 0);
    assert_int_equal(lv, ADMIN_EVENT_WARN);
    assert_string_equal(admin_event_level_str(ADMIN_EVENT_BAD), "bad");
    assert_int_equal(admin_event_level_parse("WARN", &lv), -1);

    assert_int_equal(
        admin_events_add(&e, "B slows\tdown\r\n", 14, ADMIN_EVENT_WARN, 10.5),
        1);
    assert_string_equal(e.ring[0].text, "B slows down");
    assert_int_equal(admin_events_add(&e, "\n", 1, ADMIN_EVENT_INFO, 1), 0);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(admin_events_add(&e, "a\nb", 3, ADMIN_EVENT_INFO, 1), 0);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(
        admin_events_add(&e, "caf\xc3\xa9", 5, ADMIN_EVENT_INFO, 1), 0);
    char big[ADMIN_EVENT_TEXT_MAX + 2];
    memset(big, 'x', sizeof(big));
    assert_int_equal(admin_events_add(&e, big, ADMIN_EVENT_TEXT_MAX + 1,
                                      ADMIN_EVENT_INFO, 1),
                     0);
    assert_int_equal(errno, EMSGSIZE);
    assert_int_equal(
        admin_events_add(&e, big, ADMIN_EVENT_TEXT_MAX, ADMIN_EVENT_INFO, 1),
        2);
    assert_int_equal(e.last_id, 2);
}

static void test_ring_wraps_and_json(void **state)
{
    (void)state;
    static struct admin_events e;
    struct admin_buf b = {0};
    admin_buf_str(&b, "{\"x\":1}");
    assert_int_equal(admin_events_append_json(&e, &b), 0);
    admin_buf_add(&b, "", 1);
    assert_string_equal(b.p, "{\"x\":1,\"events\":[]}");
    b.len = 0;
    admin_buf_str(&b, "not an object");
    assert_int_equal(admin_events_append_json(&e, &b), -1);
    assert_int_equal(b.len, strlen("not an object"));

    char line[32];
    for (int i = 1; i <= ADMIN_EVENTS_MAX + 5; i++) {
        int n = snprintf(line, sizeof(line), "line %d", i);
        assert_int_equal(
            admin_events_add(&e, line, (size_t)n, ADMIN_EVENT_OK, 100.0 + i),
            (uint64_t)i);
    }
    assert_int_equal(
        admin_events_add(&e, "say \"hi\" \\o/", 12, ADMIN_EVENT_BAD, 200.25),
        ADMIN_EVENTS_MAX + 6);
    b.len = 0;
    admin_buf_str(&b, "{}");
    assert_int_equal(admin_events_append_json(&e, &b), 0);
    admin_buf_add(&b, "", 1);
    /* the oldest kept is number 7: 32 newest of 38 */
    assert_null(strstr(b.p, "\"line 6\""));
    const char *first = strstr(b.p, "{\"id\":7,\"time\":107.000,\"level\":"
                                    "\"ok\",\"text\":\"line 7\"}");
    const char *last = strstr(b.p, "{\"id\":38,\"time\":200.250,\"level\":"
                                   "\"bad\",\"text\":\"say \\\"hi\\\" "
                                   "\\\\o/\"}]}");
    assert_non_null(first);
    assert_non_null(last);
    assert_true(first < last);
    assert_true(strncmp(b.p, "{,\"events\":[{\"id\":7,", 20) == 0);
    admin_buf_free(&b);
}

static void test_post_rule(void **state)
{
    (void)state;
    static struct admin_events e;
    uint64_t id = 0;
    const char *why = NULL;
    const char *url = "/api/event?level=warn";
    assert_int_equal(admin_events_post(&e, url, strlen(url), "B slow", 6, 162,
                                       1.0, &id, &why),
                     200);
    assert_int_equal(id, 1);
    assert_int_equal(e.ring[0].level, ADMIN_EVENT_WARN);
    url = "/api/event";
    assert_int_equal(
        admin_events_post(&e, url, strlen(url), "x", 1, 162, 1.0, &id, &why),
        200);
    assert_int_equal(e.ring[1].level, ADMIN_EVENT_INFO);
    /* a body longer than what the connection kept */
    assert_int_equal(
        admin_events_post(&e, url, strlen(url), "x", 5000, 162, 1.0, &id, &why),
        413);
    url = "/api/event?level=loud";
    assert_int_equal(
        admin_events_post(&e, url, strlen(url), "x", 1, 162, 1.0, &id, &why),
        400);
    assert_non_null(strstr(why, "level"));
    url = "/api/event";
    assert_int_equal(
        admin_events_post(&e, url, strlen(url), "", 0, 162, 1.0, &id, &why),
        400);
    assert_int_equal(e.last_id, 2);
}

static void test_loopback_peer(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_false(admin_peer_is_loopback(sv[0]));
    close(sv[0]);
    close(sv[1]);

    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &len), 0);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
    int s = accept(l, NULL, NULL);
    assert_true(s >= 0);
    assert_true(admin_peer_is_loopback(s));
    close(s);
    close(c);
    close(l);
    assert_false(admin_peer_is_loopback(-1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_and_levels),
        cmocka_unit_test(test_ring_wraps_and_json),
        cmocka_unit_test(test_post_rule),
        cmocka_unit_test(test_loopback_peer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
