/*
 * notify: sd_notify's datagram reaches a socket named by NOTIFY_SOCKET,
 * by path and in the abstract namespace; nothing is sent without the
 * variable, and a socket that is not there is an error, not a crash.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dgram.h"
#include "log.h"
#include "notify.h"


static void
test_path_socket(void **state)
{
    int   fd;
    char  path[108], buf[256];

    snprintf(path, sizeof(path), "/tmp/enc-test-notify-%d.sock",
             (int) getpid());
    fd = dgram_listen(path);
    assert_true(fd >= 0);
    assert_int_equal(setenv("NOTIFY_SOCKET", path, 1), 0);

    assert_int_equal(enc_notify("READY=1\nSTATUS=serving"), 0);
    dgram_receive(fd, buf, sizeof(buf), 5000);
    assert_string_equal(buf, "READY=1\nSTATUS=serving");
    assert_int_equal(enc_notify("STOPPING=1"), 0);
    dgram_receive(fd, buf, sizeof(buf), 5000);
    assert_string_equal(buf, "STOPPING=1");

    close(fd);
    (void) unlink(path);
    /* the socket gone: an error the caller may ignore */
    assert_int_equal(enc_notify("READY=1"), -1);
    unsetenv("NOTIFY_SOCKET");
}


static void
test_abstract_socket(void **state)
{
    int   fd;
    char  name[108], buf[256];

    snprintf(name, sizeof(name), "@enc-test-notify-%d", (int) getpid());
    fd = dgram_listen(name);
    assert_true(fd >= 0);
    assert_int_equal(setenv("NOTIFY_SOCKET", name, 1), 0);
    assert_int_equal(enc_notify("READY=1"), 0);
    dgram_receive(fd, buf, sizeof(buf), 5000);
    assert_string_equal(buf, "READY=1");
    close(fd);
    unsetenv("NOTIFY_SOCKET");
}


static void
test_unset_or_bad(void **state)
{
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(enc_notify("READY=1"), 0);
    assert_int_equal(setenv("NOTIFY_SOCKET", "", 1), 0);
    assert_int_equal(enc_notify("READY=1"), 0);

    /* neither a path nor an abstract name; and one too long for sun_path */
    assert_int_equal(setenv("NOTIFY_SOCKET", "relative.sock", 1), 0);
    assert_int_equal(enc_notify("READY=1"), -1);
    assert_int_equal(setenv("NOTIFY_SOCKET", "/tmp/"
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.sock", 1), 0);
    assert_int_equal(enc_notify("READY=1"), -1);
    unsetenv("NOTIFY_SOCKET");
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_path_socket),
        cmocka_unit_test(test_abstract_socket),
        cmocka_unit_test(test_unset_or_bad),
    };

    enc_log_init("test", ENC_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
