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

/* The manager's power-off signal: SIGRTMIN+4 as systemd and glibc count it, the kernel's signal 38.
 * Not SIGRTMIN + 4 here: musl reserves one more real-time signal than glibc, so its SIGRTMIN is 35. */
#define SIGNAL_POWEROFF 38

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
        if (sig == SIGNAL_POWEROFF)
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

/* execvp()'s search, done before vfork(): the child may only exec. Returns argv0 itself when it has a
 * slash or nothing on $PATH matches (execve() then reports why). */
static const char *resolve_command(const char *argv0, char *buf, size_t size)
{
        const char *path = getenv("PATH");

        if (strchr(argv0, '/'))
                return argv0;
        if (!path || !*path)
                path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        for (const char *p = path, *e; *p; p = *e ? e + 1 : e) {
                e = strchrnul(p, ':');
                int n = snprintf(buf, size, "%.*s/%s", (int)(e - p), p, argv0);
                if (n > 0 && (size_t)n < size && access(buf, X_OK) == 0)
                        return buf;
        }
        return argv0;
}

/* The payload's environment: ours without NOTIFY_SOCKET (READY=1 is ours to send, not the payload's). */
__attribute__((noinline)) static char **payload_environment(void)
{
        extern char **environ;
        size_t n = 0, j = 0;

        while (environ[n])
                n++;
        char **env = calloc(n + 1, sizeof(char *));
        if (!env)
                return environ;
        for (size_t i = 0; i < n; i++)
                if (strncmp(environ[i], "NOTIFY_SOCKET=", 14) != 0)
                        env[j++] = environ[i];
        return env;
}

/* vfork(), not fork(): a fork copies our page tables and the exec throws them away, which costs about
 * 0.9 ms on a virtualised host against 0.03 ms (docs/BENCHMARKS.md). Everything the child needs is made
 * before; the child only makes system calls on its own behalf, then execs or _exit()s. */
static pid_t spawn_payload(char **argv, const sigset_t *orig_mask)
{
        static char path_buf[4096];
        const char *path = resolve_command(argv[0], path_buf, sizeof(path_buf));
        char **env = payload_environment();
        bool tty = isatty(STDIN_FILENO);
        struct sigaction dfl = {.sa_handler = SIG_DFL}, ign = {.sa_handler = SIG_IGN};
        volatile int exec_errno = 0;

        pid_t pid = vfork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                /* Own process group, so a terminal's job control and our group-wide signals
                 * address the payload, not us. */
                (void)setpgid(0, 0);
                if (tty) {
                        /* tcsetpgrp() from a background group raises SIGTTOU; we are not yet the
                         * foreground group, so ignore it for the call. The dispositions are the
                         * child's own: vfork() shares memory, not signal handlers. */
                        sigaction(SIGTTOU, &ign, NULL);
                        (void)tcsetpgrp(STDIN_FILENO, getpid());
                        sigaction(SIGTTOU, &dfl, NULL);
                }
                for (size_t i = 0; i < sizeof(forwarded_signals) / sizeof(forwarded_signals[0]); i++)
                        sigaction(forwarded_signals[i], &dfl, NULL);
                sigprocmask(SIG_SETMASK, orig_mask, NULL);
                execve(path, argv, env);
                exec_errno = errno;
                _exit(errno == ENOENT ? 127 : 126);
        }
        /* The child has exec'd or exited by now; its errno came back through the shared memory. */
        if (exec_errno != 0)
                log_error("failed to execute %s", argv[0], exec_errno);
        if (env != environ)
                free(env);
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
        sigaddset(&mask, SIGNAL_POWEROFF);
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
