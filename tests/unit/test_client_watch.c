/* server/client_watch.c over socket pairs: a peer that closes or resets is seen and its token
 * cancelled within a fraction of a second; a peer that sends more data is not; a socket no
 * longer watched is never touched again; a full watcher says so; many sockets at once. (The
 * server uses it for the requests inside the pipeline: tests/server/test_clients.py.) */
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server/client_watch.h"
#include "test_support.h"

/* Whether t is cancelled within ms milliseconds. */
static bool cancelled_within(const dc_cancel_token *t, int ms) {
    for (int i = 0; i < ms / 5; i++) {
        if (dc_cancel_token_cancelled(t)) return true;
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return dc_cancel_token_cancelled(t);
}

static void pair(int sv[2]) { assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0); }

static void test_close_and_reset(void **state) {
    (void)state;
    dc_client_watch *w = NULL;
    assert_int_equal(dc_client_watch_start(4, &w), DC_OK);
    int a[2], b[2];
    pair(a), pair(b);
    dc_cancel_token *ta = NULL, *tb = NULL;
    assert_int_equal(dc_cancel_token_create(&ta), DC_OK);
    assert_int_equal(dc_cancel_token_create(&tb), DC_OK);
    uint32_t sa, sb;
    assert_int_equal(dc_client_watch_add(w, a[0], ta, &sa), DC_OK);
    assert_int_equal(dc_client_watch_add(w, b[0], tb, &sb), DC_OK);
    /* more data from the client (a pipelined request) is not a departure */
    assert_int_equal(write(b[1], "GET / HTTP/1.1\r\n", 16), 16);
    assert_false(cancelled_within(ta, 150));
    assert_false(cancelled_within(tb, 10));
    close(a[1]); /* the client of a goes away */
    assert_true(cancelled_within(ta, 5000));
    assert_false(cancelled_within(tb, 100));
    close(b[1]); /* b's pipelined bytes still unread on the server side: gone all the same */
    assert_true(cancelled_within(tb, 5000));
    dc_client_watch_remove(w, sa);
    dc_client_watch_remove(w, sb);
    dc_client_watch_stop(w);
    close(a[0]), close(b[0]);
    dc_cancel_token_destroy(ta), dc_cancel_token_destroy(tb);
}

static void test_removed_is_left_alone(void **state) {
    (void)state;
    dc_client_watch *w = NULL;
    assert_int_equal(dc_client_watch_start(1, &w), DC_OK);
    int a[2], b[2];
    pair(a), pair(b);
    dc_cancel_token *t = NULL, *u = NULL;
    assert_int_equal(dc_cancel_token_create(&t), DC_OK);
    assert_int_equal(dc_cancel_token_create(&u), DC_OK);
    uint32_t s;
    assert_int_equal(dc_client_watch_add(w, a[0], t, &s), DC_OK);
    /* one slot: a second socket is refused, and says so */
    uint32_t s2;
    assert_int_equal(dc_client_watch_add(w, b[0], u, &s2), DC_ERR_OVERLOADED);
    assert_non_null(strstr(dc_error_detail(), "1 slots taken"));
    dc_client_watch_remove(w, s);
    dc_cancel_token_destroy(t); /* the watcher must not touch it any more */
    close(a[1]);
    /* the slot is free again, for another socket */
    assert_int_equal(dc_client_watch_add(w, b[0], u, &s2), DC_OK);
    assert_false(cancelled_within(u, 150));
    close(b[1]);
    assert_true(cancelled_within(u, 5000));
    dc_client_watch_remove(w, s2);
    dc_client_watch_stop(w);
    close(a[0]), close(b[0]);
    dc_cancel_token_destroy(u);
}

static void test_many(void **state) {
    (void)state;
    enum { N = 64 };
    dc_client_watch *w = NULL;
    assert_int_equal(dc_client_watch_start(N, &w), DC_OK);
    int sv[N][2];
    dc_cancel_token *t[N];
    uint32_t slot[N];
    for (int i = 0; i < N; i++) {
        pair(sv[i]);
        assert_int_equal(dc_cancel_token_create(&t[i]), DC_OK);
        assert_int_equal(dc_client_watch_add(w, sv[i][0], t[i], &slot[i]), DC_OK);
    }
    for (int i = 0; i < N; i += 2) close(sv[i][1]); /* every other client leaves */
    for (int i = 0; i < N; i += 2) assert_true(cancelled_within(t[i], 5000));
    for (int i = 1; i < N; i += 2) assert_false(dc_cancel_token_cancelled(t[i]));
    for (int i = 0; i < N; i++) {
        dc_client_watch_remove(w, slot[i]);
        close(sv[i][0]);
        if (i % 2) close(sv[i][1]);
        dc_cancel_token_destroy(t[i]);
    }
    dc_client_watch_stop(w);
    dc_client_watch_stop(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_close_and_reset),
        cmocka_unit_test(test_removed_is_left_alone),
        cmocka_unit_test(test_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
