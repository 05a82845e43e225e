/* notify.h: the service manager's readiness protocol (sd_notify(3)) without libsystemd: one
 * datagram to the socket named by $NOTIFY_SOCKET. Any thread; does not block. */
#pragma once

/* Sends state (e.g. "READY=1") to $NOTIFY_SOCKET. 0 when sent, 0 too when the variable is
 * unset (not under a service manager that asked), -errno when it could not be sent. */
int notify_send(const char *state);
