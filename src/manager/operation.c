/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Worker processes for long image operations; see operation.h. */
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "log.h"
#include "operation.h"
#include "util.h"

#define MAX_LOCKS 2

typedef struct Operation {
        sd_bus_message *message;
        sd_event_source *source;
        int pidfd;
        int errno_fd; /* read end: the worker's errno (int) then its error text */
        char *image_path;
        int lock_fds[MAX_LOCKS];
        char *lock_names[MAX_LOCKS];
        size_t n_locks;
} Operation;

static unsigned n_operations;

unsigned operation_count(void)
{
        return n_operations;
}

static void release_locks(const char *image_path, int *fds, char **names, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                fds[i] =
                    image_path && names[i] ? image_unlock(image_path, names[i], fds[i]) : safe_close(fds[i]);
                names[i] = mfree(names[i]);
        }
}

static Operation *operation_free(Operation *o)
{
        if (!o)
                return NULL;
        sd_event_source_disable_unref(o->source);
        sd_bus_message_unref(o->message);
        safe_close(o->pidfd);
        safe_close(o->errno_fd);
        release_locks(o->image_path, o->lock_fds, o->lock_names, o->n_locks);
        free(o->image_path);
        free(o);
        n_operations--;
        return NULL;
}

/* The worker wrote at most one small message before exiting: one read gets all of it. */
static int read_worker_error(int fd, char *text, size_t len)
{
        struct {
                int32_t error;
                char text[sizeof(((ImageError *)NULL)->text)];
        } msg = {0};
        ssize_t n = read(fd, &msg, sizeof msg - 1);
        if (n < (ssize_t)sizeof msg.error)
                return 0;
        snprintf(text, len, "%s", msg.text);
        return msg.error < 0 ? msg.error : -EIO;
}

static int on_worker_exit(sd_event_source *source, const siginfo_t *si, void *userdata)
{
        Operation *o = userdata;
        char text[sizeof(((ImageError *)NULL)->text)] = "";
        int r = read_worker_error(o->errno_fd, text, sizeof text);

        if (r == 0 && (si->si_code != CLD_EXITED || si->si_status != 0)) {
                r = -EIO;
                snprintf(text, sizeof text, "worker process %s %d",
                         si->si_code == CLD_EXITED ? "exited with status" : "killed by signal",
                         si->si_status);
        }
        if (r < 0)
                r = sd_bus_reply_method_errnof(o->message, r, "%s", text[0] ? text : strerror(-r));
        else
                r = sd_bus_reply_method_return(o->message, NULL);
        if (r < 0)
                log_warning_errno(r, "Failed to send the reply of an image operation: %m");
        operation_free(o);
        return 0;
}

typedef struct OperationRun {
        OperationWork work;
        void *userdata;
} OperationRun;

static void operation_run(int errno_fd, void *userdata)
{
        OperationRun *o = userdata;
        ImageError e = {};
        int r = o->work(o->userdata, &e);
        if (r < 0) {
                struct {
                        int32_t error;
                        char text[sizeof e.text];
                } msg = {.error = r};
                memcpy(msg.text, e.text, sizeof e.text);
                (void)!write(errno_fd, &msg, sizeof msg.error + strnlen(e.text, sizeof e.text - 1) + 1);
        }
        _exit(r < 0 ? EXIT_FAILURE : EXIT_SUCCESS);
}

int worker_fork(WorkerRun run, void *userdata, int *ret_pidfd, int *ret_result_fd)
{
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        pid_t pid = fork();
        if (pid < 0) {
                safe_close(p[0]);
                safe_close(p[1]);
                return -errno;
        }
        if (pid == 0) {
                /* No orphaned copy or walk keeps going when the daemon dies. */
                (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
                safe_close(p[0]);
                run(p[1], userdata);
                _exit(EXIT_FAILURE);
        }
        safe_close(p[1]);
        /* Not reaped before this: the pid cannot have been reused. */
        int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (pidfd < 0) {
                int r = -errno;
                (void)kill(pid, SIGKILL);
                (void)waitpid(pid, NULL, 0);
                safe_close(p[0]);
                return r;
        }
        *ret_pidfd = pidfd;
        *ret_result_fd = p[0];
        return 0;
}

int operation_start(Manager *m, sd_bus_message *message, OperationWork work, void *userdata, int *lock_fds,
                    const char *const *lock_names, size_t n_locks)
{
        Operation *o = n_operations < OPERATIONS_MAX && n_locks <= MAX_LOCKS ? calloc(1, sizeof *o) : NULL;
        int r = !o ? (n_operations < OPERATIONS_MAX ? -ENOMEM : -EBUSY) : 0;
        if (!o) {
                for (size_t i = 0; i < n_locks; i++)
                        lock_fds[i] = image_unlock(m->image_path, lock_names[i], lock_fds[i]);
                return r;
        }
        n_operations++;
        o->pidfd = o->errno_fd = -1;
        for (size_t i = 0; i < n_locks; i++) {
                o->lock_fds[o->n_locks] = TAKE_FD(lock_fds[i]);
                o->lock_names[o->n_locks++] = strdup(lock_names[i]);
                if (!o->lock_names[i])
                        r = -ENOMEM;
        }
        if (r >= 0 && !(o->image_path = strdup(m->image_path)))
                r = -ENOMEM;
        OperationRun run = {work, userdata}; /* read by the worker, in its copy of our memory */
        if (r >= 0)
                r = worker_fork(operation_run, &run, &o->pidfd, &o->errno_fd);
        if (r >= 0)
                r = sd_event_add_child_pidfd(m->event, &o->source, o->pidfd, WEXITED, on_worker_exit, o);
        if (r < 0) {
                if (o->pidfd >= 0) {
                        (void)syscall(SYS_pidfd_send_signal, o->pidfd, SIGKILL, NULL, 0);
                        (void)waitid(P_PIDFD, (id_t)o->pidfd, NULL, WEXITED);
                }
                operation_free(o);
                return r;
        }
        o->message = sd_bus_message_ref(message);
        return 1;
}
