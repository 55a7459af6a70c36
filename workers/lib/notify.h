/*
 * notify: the service manager's readiness protocol (sd_notify(3)), without
 * libsystemd.  Under systemd with Type=notify, NOTIFY_SOCKET names a unix
 * datagram socket (a path, or "@name" in the abstract namespace); the
 * worker says READY=1 once it serves and STOPPING=1 when it drains.
 * Elsewhere NOTIFY_SOCKET is unset and this does nothing.
 */
#ifndef ENC_NOTIFY_H
#define ENC_NOTIFY_H

/* sends state ("READY=1", "STOPPING=1", "STATUS=...", lines joined by
   \n) to $NOTIFY_SOCKET; 0 when sent or when the variable is unset or
   empty, -1 (and a warning) when it names no usable socket */
int enc_notify(const char *state);

#endif /* ENC_NOTIFY_H */
