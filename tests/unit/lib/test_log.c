/*
 * log: JSON escaping, levels, the line format and the thread request id.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"


static void
esc(const char *in, const char *want)
{
    char    buf[256];
    size_t  pos = 0;

    enc_log_json_escape(buf, sizeof(buf), &pos, in);
    assert_string_equal(buf, want);
    assert_int_equal(pos, strlen(want));
}


static void
test_escape(void **state)
{
    static const struct {
        const char  *in;
        const char  *want;
    } cases[] = {
        { "plain", "plain" },
        { "q\"b\\", "q\\\"b\\\\" },
        { "a\nb\tc\r", "a\\nb\\tc\\r" },
        { "\x01\x1f\x7f", "\\u0001\\u001f\\u007f" },
        { "h\xc3\xa9", "h\xc3\xa9" },                         /* é kept */
        { "\xf0\x9f\x8e\xb5", "\xf0\x9f\x8e\xb5" },           /* 4 bytes */
        { "\xff", "\\ufffd" },                                /* invalid */
        { "\xc3", "\\ufffd" },                                /* truncated */
        { "\xc0\xaf", "\\ufffd\\ufffd" },                     /* overlong */
        { "\xed\xa0\x80", "\\ufffd\\ufffd\\ufffd" },          /* surrogate */
        { "", "" },
    };
    size_t  i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        esc(cases[i].in, cases[i].want);
    }
}


static void
test_escape_truncates_whole_tokens(void **state)
{
    char    buf[8];
    size_t  pos = 0;

    enc_log_json_escape(buf, sizeof(buf), &pos, "abc\"\"\"\"");
    /* "abc" + two escaped quotes = 7 bytes + NUL; a third would split */
    assert_int_equal(pos, 7);
    assert_string_equal(buf, "abc\\\"\\\"");
}


static void
test_level_parse(void **state)
{
    enc_log_level_t  l;

    assert_int_equal(enc_log_level_parse("debug", &l), 0);
    assert_int_equal(l, ENC_LOG_DEBUG);
    assert_int_equal(enc_log_level_parse("WARN", &l), 0);
    assert_int_equal(l, ENC_LOG_WARN);
    assert_int_equal(enc_log_level_parse("warning", &l), 0);
    assert_int_equal(enc_log_level_parse("error", &l), 0);
    assert_int_equal(l, ENC_LOG_ERROR);
    assert_int_equal(enc_log_level_parse("loud", &l), -1);
    assert_int_equal(enc_log_level_parse(NULL, &l), -1);
}


/* captures one enc_log call's output through a pipe */
static json_t *
capture(enc_log_level_t lvl, const char *msg)
{
    int           fds[2];
    char          buf[16384];
    ssize_t       n;
    json_t       *j;
    json_error_t  err;

    assert_int_equal(pipe(fds), 0);
    enc_log_set_fd(fds[1]);
    enc_log(lvl, "%s", msg);
    enc_log_set_fd(2);
    close(fds[1]);
    n = read(fds[0], buf, sizeof(buf) - 1);
    close(fds[0]);
    if (n <= 0) {
        return NULL;
    }
    buf[n] = '\0';
    assert_int_equal(buf[n - 1], '\n');
    assert_null(strchr(buf, '\n') != buf + n - 1 ? buf : NULL);
    j = json_loads(buf, 0, &err);
    if (j == NULL) {
        fail_msg("not JSON: %s (%s)", buf, err.text);
    }
    return j;
}


static void
test_line_format(void **state)
{
    json_t  *j;
    char     big[20000];

    enc_log_init("auth", ENC_LOG_INFO);
    enc_log_set_request_id(NULL);

    assert_null(capture(ENC_LOG_DEBUG, "hidden"));

    j = capture(ENC_LOG_INFO, "hello \"world\"\n\xff");
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "level")),
                        "info");
    assert_string_equal(json_string_value(json_object_get(j, "worker")),
                        "auth");
    assert_string_equal(json_string_value(json_object_get(j, "msg")),
                        "hello \"world\"\n\xef\xbf\xbd");
    assert_null(json_object_get(j, "request_id"));
    assert_int_equal(strlen(json_string_value(json_object_get(j, "ts"))), 24);
    json_decref(j);

    enc_log_set_request_id("req-1");
    assert_string_equal(enc_log_request_id(), "req-1");
    j = capture(ENC_LOG_ERROR, "x");
    assert_string_equal(json_string_value(json_object_get(j, "request_id")),
                        "req-1");
    json_decref(j);

    /* an oversized message full of escapes still yields one valid line
       with the request id */
    memset(big, '"', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    j = capture(ENC_LOG_WARN, big);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "request_id")),
                        "req-1");
    json_decref(j);

    enc_log_set_request_id(NULL);
    assert_null(enc_log_request_id());
}


/* the whole of a file, NUL-terminated ("" if it cannot be read) */
static char *
slurp(const char *path)
{
    char    *buf;
    size_t   n = 0;
    FILE    *f;

    buf = calloc(1, 65536);
    assert_non_null(buf);
    f = fopen(path, "r");
    if (f != NULL) {
        n = fread(buf, 1, 65535, f);
        fclose(f);
    }
    buf[n] = '\0';
    return buf;
}


/*
 * log.file and SIGUSR1's reopen (issue 7): after the file was renamed
 * (log rotation), the next line lands in a new file of the same name and
 * the renamed one keeps what was written before.  The lines keep their
 * format (the time, formatted once a second, included).
 */
static void
test_reopen(void **state)
{
    int           fd;
    char          path[64], rotated[80], gone[96], *a, *b;
    json_t       *j;
    const char   *ts;
    json_error_t  err;

    snprintf(path, sizeof(path), "/tmp/enc-test-log-%d.log", (int) getpid());
    snprintf(rotated, sizeof(rotated), "%s.1", path);
    (void) unlink(path);
    (void) unlink(rotated);

    /* a descriptor of our own stands in for stderr */
    fd = open("/dev/null", O_WRONLY);
    assert_true(fd > 2);
    enc_log_set_fd(fd);
    enc_log_init("auth", ENC_LOG_INFO);

    assert_int_equal(enc_log_open(path), 0);
    enc_log_info("before rotation");
    assert_int_equal(rename(path, rotated), 0);
    enc_log_info("after the rename, before the reopen");
    assert_int_equal(enc_log_reopen(), 0);
    enc_log_info("after the reopen");

    a = slurp(rotated);
    b = slurp(path);
    assert_non_null(strstr(a, "before rotation"));
    assert_non_null(strstr(a, "after the rename, before the reopen"));
    assert_non_null(strstr(a, "log: reopening"));
    assert_null(strstr(a, "after the reopen\""));
    assert_non_null(strstr(b, "log: reopened"));
    assert_non_null(strstr(b, "after the reopen"));
    assert_null(strstr(b, "before rotation"));

    /* one JSON object per line, the time as before */
    assert_non_null(strchr(b, '\n'));
    *strchr(b, '\n') = '\0';
    j = json_loads(b, 0, &err);
    assert_non_null(j);
    ts = json_string_value(json_object_get(j, "ts"));
    assert_non_null(ts);
    assert_int_equal(strlen(ts), 24);
    assert_true(ts[4] == '-' && ts[10] == 'T' && ts[13] == ':'
                && ts[19] == '.' && ts[23] == 'Z');
    json_decref(j);
    free(a);
    free(b);

    /* a file that cannot be opened: an error, the old file stays (and
       is still the one reopened) */
    snprintf(gone, sizeof(gone), "/tmp/enc-test-log-%d.d/x.log",
             (int) getpid());
    assert_int_equal(enc_log_open(gone), -1);
    enc_log_info("still here");
    assert_int_equal(enc_log_reopen(), 0);
    b = slurp(path);
    assert_non_null(strstr(b, "cannot open log.file"));
    assert_non_null(strstr(b, "still here"));
    free(b);

    /* without a log.file there is nothing to reopen */
    assert_int_equal(enc_log_open(NULL), 0);
    assert_int_equal(enc_log_reopen(), 0);

    enc_log_set_fd(2);
    close(fd);
    (void) unlink(path);
    (void) unlink(rotated);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_escape_truncates_whole_tokens),
        cmocka_unit_test(test_level_parse),
        cmocka_unit_test(test_line_format),
        cmocka_unit_test(test_reopen),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
