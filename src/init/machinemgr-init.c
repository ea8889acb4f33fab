/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * machinemgr-init: PID 1 of a container that does not boot an init of its own (Boot=no).
 *
 * It starts the payload, reaps every zombie of the pid namespace, passes signals on, and exits with
 * the payload's status so the manager can report it. Linked statically and free of libsystemd: the
 * guest may be a busybox rootfs without any shared libraries.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* After the payload is gone, stragglers get this long between SIGTERM and SIGKILL. */
#define STRAGGLER_TIMEOUT_SEC 2

#define streq(a, b) (strcmp((a), (b)) == 0)

static const char *program = "machinemgr-init";

static const int forwarded_signals[] = {
    SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT,
};

static void log_error(const char *fmt, const char *arg, int err)
{
        fprintf(stderr, "%s: ", program);
        fprintf(stderr, fmt, arg);
        if (err > 0)
                fprintf(stderr, ": %s", strerror(err));
        fputc('\n', stderr);
}

static int status_to_exit_code(int status)
{
        if (WIFEXITED(status))
                return WEXITSTATUS(status);
        if (WIFSIGNALED(status))
                return 128 + WTERMSIG(status);
        return 1;
}

/* The manager's power-off signal means "stop the payload cleanly", which for a shell or daemon is
 * SIGTERM; anything else is passed on as it came. */
static int translate_signal(int sig)
{
        if (sig == SIGRTMIN + 4)
                return SIGTERM;
        return sig;
}

static int notify_ready(void)
{
        const char *path = getenv("NOTIFY_SOCKET");
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        static const char msg[] = "READY=1";
        socklen_t len;
        int fd, r = 0;

        if (!path || !*path)
                return 0;
        /* The manager binds a path under /run/host; an abstract address ('@…') works as with
         * sd_notify(), so the program is usable under other managers too. */
        if (strlen(path) >= sizeof(sa.sun_path))
                return -EINVAL;
        strncpy(sa.sun_path, path, sizeof(sa.sun_path) - 1);
        if (sa.sun_path[0] == '@')
                sa.sun_path[0] = 0;
        len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
        if (path[0] != '@')
                len++; /* include the NUL of a path address */

        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (sendto(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL, (struct sockaddr *)&sa, len) < 0)
                r = -errno;
        close(fd);
        return r;
}

static pid_t spawn_payload(char **argv, const sigset_t *orig_mask)
{
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                /* Own process group, so a terminal's job control and our group-wide signals
                 * address the payload, not us. */
                (void)setpgid(0, 0);
                if (isatty(STDIN_FILENO)) {
                        /* tcsetpgrp() from a background group raises SIGTTOU; we are not yet the
                         * foreground group, so ignore it for the call. */
                        struct sigaction sa = {.sa_handler = SIG_IGN}, old;
                        sigaction(SIGTTOU, &sa, &old);
                        (void)tcsetpgrp(STDIN_FILENO, getpid());
                        sigaction(SIGTTOU, &old, NULL);
                }
                for (size_t i = 0; i < sizeof(forwarded_signals) / sizeof(forwarded_signals[0]); i++)
                        signal(forwarded_signals[i], SIG_DFL);
                sigprocmask(SIG_SETMASK, orig_mask, NULL);
                unsetenv("NOTIFY_SOCKET"); /* READY=1 is ours to send, not the payload's */
                execvp(argv[0], argv);
                log_error("failed to execute %s", argv[0], errno);
                _exit(errno == ENOENT ? 127 : 126);
        }
        /* Also from the parent, so the group exists before any signal is forwarded to it. */
        (void)setpgid(pid, pid);
        return pid;
}

/* Reaps everything that has exited. Returns true once the payload has been reaped. */
static bool reap_children(pid_t payload, int *payload_status)
{
        bool payload_done = false;
        for (;;) {
                int status;
                pid_t pid = waitpid(-1, &status, WNOHANG);
                if (pid <= 0)
                        break;
                if (pid == payload) {
                        *payload_status = status;
                        payload_done = true;
                }
        }
        return payload_done;
}

static void forward_signal(pid_t payload, int sig)
{
        sig = translate_signal(sig);
        /* To the group first so a shell's children see ^C-style signals as they would on a
         * terminal; fall back to the process if the payload left its group. */
        if (kill(-payload, sig) < 0)
                (void)kill(payload, sig);
}

/* Signals every process that is left. As PID 1 of the namespace kill(-1) reaches exactly the
 * container's processes. Outside a pid namespace (run by hand or by a test) kill(-1) would hit the
 * whole system, so there only our direct children are signalled; their orphans are reparented to us
 * (we are a subreaper) and caught on the next round. */
static void signal_rest(int sig)
{
        char path[64], buf[4096];
        ssize_t n;
        int fd;

        if (getpid() == 1) {
                (void)kill(-1, sig);
                return;
        }
        snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)getpid());
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return;
        buf[n] = 0;
        for (char *p = buf, *e; *p; p = e) {
                long pid = strtol(p, &e, 10);
                if (e == p)
                        break;
                if (pid > 0)
                        (void)kill((pid_t)pid, sig);
        }
}

static bool deadline_passed(const struct timespec *deadline)
{
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        return now.tv_sec > deadline->tv_sec ||
               (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

/* Once the payload is gone: SIGTERM to whatever is left, up to STRAGGLER_TIMEOUT_SEC for it to go,
 * then SIGKILL, reaping all the while. */
static void kill_stragglers(void)
{
        struct timespec deadline;
        const struct timespec tick = {.tv_nsec = 20 * 1000 * 1000};
        bool killing = false;

        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += STRAGGLER_TIMEOUT_SEC;
        signal_rest(SIGTERM);
        for (;;) {
                pid_t pid = waitpid(-1, NULL, WNOHANG);
                if (pid < 0 && errno == ECHILD)
                        return;
                if (pid > 0)
                        continue;
                if (!killing && deadline_passed(&deadline))
                        killing = true;
                /* Repeated: a killed process's orphans are reparented to us and need it too. */
                if (killing)
                        signal_rest(SIGKILL);
                nanosleep(&tick, NULL);
        }
}

int main(int argc, char **argv)
{
        static char *default_argv[] = {(char *)"/bin/sh", NULL};
        char **cmd = default_argv;
        sigset_t mask, orig_mask;
        int sfd, r, payload_status = 0;
        pid_t payload;

        if (argc > 0 && argv[0])
                program = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
        if (argc > 1 && (streq(argv[1], "-h") || streq(argv[1], "--help"))) {
                printf("Usage: %s [--] [CMD [ARGS…]]\n\n"
                       "PID 1 for a machinemgr container that does not boot an init of its own:\n"
                       "runs CMD (default /bin/sh), reaps zombies, forwards signals, and exits with\n"
                       "CMD's exit status (128+N if it was killed by signal N).\n",
                       program);
                return 0;
        }
        if (argc > 1) {
                int first = 1;
                if (streq(argv[1], "--"))
                        first = 2;
                if (first < argc)
                        cmd = argv + first;
        }

        /* Everything we handle arrives through the signalfd; as PID 1 nothing else would deliver a
         * signal to us anyway unless we install a handler or block it. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigaddset(&mask, SIGRTMIN + 4);
        for (size_t i = 0; i < sizeof(forwarded_signals) / sizeof(forwarded_signals[0]); i++)
                sigaddset(&mask, forwarded_signals[i]);
        if (sigprocmask(SIG_BLOCK, &mask, &orig_mask) < 0) {
                log_error("%s", "sigprocmask", errno);
                return 1;
        }
        sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (sfd < 0) {
                log_error("%s", "signalfd", errno);
                return 1;
        }

        /* Outside a pid namespace (e.g. run by hand or by a test) orphans would go to the real init;
         * as a subreaper we collect them just as PID 1 would. */
        if (getpid() != 1)
                (void)prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

        payload = spawn_payload(cmd, &orig_mask);
        if (payload < 0) {
                log_error("%s", "fork", (int)-payload);
                return 1;
        }

        r = notify_ready();
        if (r < 0)
                log_error("failed to send READY=1 to %s", getenv("NOTIFY_SOCKET"), -r);

        for (;;) {
                struct pollfd pfd = {.fd = sfd, .events = POLLIN};
                struct signalfd_siginfo si;
                if (poll(&pfd, 1, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        log_error("%s", "poll", errno);
                        return 1;
                }

                ssize_t n;
                bool payload_done = false;
                while ((n = read(sfd, &si, sizeof(si))) == (ssize_t)sizeof(si)) {
                        int sig = (int)si.ssi_signo;
                        if (sig == SIGCHLD) {
                                if (reap_children(payload, &payload_status))
                                        payload_done = true;
                        } else if (sig == SIGHUP && si.ssi_code == SI_KERNEL) {
                                /* A hangup of the console (its master was closed, e.g. the
                                 * manager was restarted): the container lives on and the manager
                                 * re-attaches, so it is not passed on. */
                                continue;
                        } else
                                forward_signal(payload, sig);
                }
                /* SIGCHLD coalesces; reap once more in case one was merged into an earlier one. */
                if (!payload_done && reap_children(payload, &payload_status))
                        payload_done = true;
                if (payload_done)
                        break;
        }

        kill_stragglers();
        close(sfd);
        return status_to_exit_code(payload_status);
}
