/*
 * notify: sd_notify(3) for Type=notify units.  See notify.h.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "notify.h"


int
enc_notify(const char *state)
{
    int                 fd;
    size_t              n;
    ssize_t             sent;
    socklen_t           len;
    const char         *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un  sa;

    if (path == NULL || path[0] == '\0') {
        return 0;
    }
    n = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || n >= sizeof(sa.sun_path)) {
        enc_log_warn("notify: NOTIFY_SOCKET \"%s\" is not a unix socket"
                     " path", path);
        return -1;
    }

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, n);
    if (path[0] == '@') {
        sa.sun_path[0] = '\0';          /* the abstract namespace */
    }
    len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n
                       + (path[0] == '@' ? 0 : 1));

    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        enc_log_warn("notify: socket() failed: %s", strerror(errno));
        return -1;
    }
    do {
        sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL,
                      (struct sockaddr *) &sa, len);
    } while (sent < 0 && errno == EINTR);
    if (sent < 0) {
        enc_log_warn("notify: cannot tell the service manager \"%s\""
                     " through %s: %s", state, path, strerror(errno));
    }
    close(fd);
    return sent < 0 ? -1 : 0;
}
