/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Long-running work for a D-Bus method (clone, remove of a big tree): done in a forked worker process so the
 * daemon's event loop never blocks; the method reply is sent when the worker exits, carrying the worker's
 * errno and error text (passed back over a pipe) on failure. */

#include <stddef.h>
#include <systemd/sd-bus.h>

#include "image.h"
#include "manager.h"

#define OPERATIONS_MAX 64

/* Runs in the worker: >= 0 on success, else a negative errno with e->text saying what failed. */
typedef int (*OperationWork)(void *userdata, ImageError *e);

/* Forks the worker and replies to `message` when it ends. Takes the lock fds (image_lock()) in every case
 * and releases them once the worker has exited; lock_names[i] is the image name lock_fds[i] was taken for.
 * Returns 1 when the reply is pending, or a negative errno (nothing forked, locks released). */
int operation_start(Manager *m, sd_bus_message *message, OperationWork work, void *userdata, int *lock_fds,
                    const char *const *lock_names, size_t n_locks);

unsigned operation_count(void);

/* The fork under operation_start() and image-usage.c's walks: run(result_fd, userdata) in a child that dies
 * with the daemon (PR_SET_PDEATHSIG) and exits when run() returns; result_fd is the write end of a pipe
 * whose read end is returned with the child's pidfd. The child is a copy of the daemon, every fd
 * included: run() closes what it must not hold. */
typedef void (*WorkerRun)(int result_fd, void *userdata);
int worker_fork(WorkerRun run, void *userdata, int *ret_pidfd, int *ret_result_fd);
