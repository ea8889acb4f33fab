/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Direct mode's fd store. Under a service manager the daemon keeps each console's pty master in the
 * service's fd store; without one, a single holder process does the same job for every machine: it holds
 * fds, nothing else (no supervision, no per-container process). It matters beyond logging: once the last
 * master of a console closes, the guest's writes to /dev/console fail with EIO, and systemd retries each
 * console open for a second — a re-adopted guest without its master shuts down at one line per second.
 *
 * The holder listens on RUNTIME_DIR/fdstore (SOCK_SEQPACKET) and understands three requests:
 *   "PUT name" + fd [+ owner pidfd]     keep it, replacing any fd of that name, until the owner exits
 *   "REMOVE name"                      close it
 *   "GET"                              answered by "FD name" + fd for each, then "END"
 * It exits once it holds no fd and no client is connected. */

#include <stddef.h>

typedef struct FdStore FdStore;

/* Connects to the holder for runtime_dir, starting one (machinemgrd --fd-holder) if none runs. */
int fdstore_connect(const char *runtime_dir, FdStore **ret);
/* owner_pidfd: the machine's leader; the holder drops the fd once that process has exited. */
int fdstore_put(FdStore *s, const char *name, int fd, int owner_pidfd);
int fdstore_remove(FdStore *s, const char *name);
/* Copies of every stored fd (the holder keeps its own). */
int fdstore_get_all(FdStore *s, char ***ret_names, int **ret_fds, size_t *ret_n);
FdStore *fdstore_free(FdStore *s);

/* The service manager's fd store (FDSTORE=1) closes and forgets any fd that reports EPOLLHUP, and a pty
 * master does so whenever no slave is open: before the guest opened /dev/console, and whenever the guest
 * has it closed for a moment. So a console goes into that store inside an envelope: an AF_UNIX datagram
 * socket whose receive queue holds the master (SCM_RIGHTS). A datagram socket never reports EPOLLHUP
 * (not even when its peer is gone), so the store keeps it for as long as we want. */
int fdstore_wrap_fd(int fd, int *ret_envelope);
/* The fd inside an envelope, read with MSG_PEEK so that the envelope (shared with the store) keeps it. */
int fdstore_unwrap_fd(int envelope, int *ret_fd);

/* The holder's main loop: listen_fd is the bound, listening socket. Returns the exit status. */
int fdstore_holder_run(int listen_fd);
