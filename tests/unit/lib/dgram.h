/*
 * A unix datagram socket for tests that stand in for systemd's
 * NOTIFY_SOCKET (test_notify, test_worker).
 */
#ifndef ENC_TEST_DGRAM_H
#define ENC_TEST_DGRAM_H

#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>


/* bound to name: a path, or "@..." in the abstract namespace; -1 on
   failure */
static inline int
dgram_listen(const char *name)
{
    int                 fd;
    size_t              n = strlen(name);
    struct sockaddr_un  sa;

    if (n >= sizeof(sa.sun_path)) {
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, name, n);
    if (name[0] == '@') {
        sa.sun_path[0] = '\0';
    } else {
        (void) unlink(name);
        n++;
    }
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && bind(fd, (struct sockaddr *) &sa,
                        offsetof(struct sockaddr_un, sun_path) + n) != 0)
    {
        close(fd);
        fd = -1;
    }
    return fd;
}


/* the next datagram on fd into buf, or "" when none comes within ms */
static inline void
dgram_receive(int fd, char *buf, size_t cap, int ms)
{
    ssize_t        n;
    struct pollfd  p = { fd, POLLIN, 0 };

    buf[0] = '\0';
    if (poll(&p, 1, ms) == 1) {
        n = recv(fd, buf, cap - 1, 0);
        buf[n > 0 ? n : 0] = '\0';
    }
}

#endif /* ENC_TEST_DGRAM_H */
