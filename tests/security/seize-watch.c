/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The attack of tests/security/hostile-shell.sh, run as root inside a guest: for SECONDS, every process
 * that appears in the guest's pid namespace is seized with PTRACE_SEIZE at once (new pids are found by
 * polling /proc/sys/kernel/ns_last_pid), after a SIGSTOP that freezes it as it was when it appeared. A
 * process still named "machinemgrd" is the daemon's shell helper before it execs the command: being able
 * to trace it would hand guest root whatever the helper holds. Prints one line per such helper:
 *
 *   HELPER pid=P seize=OK|EPERM|... uid=REAL EFFECTIVE SAVED FS (its Uid: line as the guest sees it)
 *
 * and, with "stop", leaves the first helper it finds stopped and prints "STOPPED pid=P", so that the host
 * can look at that process before it execs (everything else gets SIGCONT at once). Ends with
 * "DONE helpers=N seized=M others=K" (K: any other new process it could seize, e.g. a command that
 * already runs as the guest's root). Statically linked: the guest is busybox. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static ssize_t read_small(const char *path, char *buf, size_t size)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -1;
        ssize_t n = read(fd, buf, size - 1);
        close(fd);
        if (n < 0)
                return -1;
        buf[n] = 0;
        return n;
}

static long last_pid(void)
{
        char buf[32];
        if (read_small("/proc/sys/kernel/ns_last_pid", buf, sizeof buf) < 0)
                return -1;
        return strtol(buf, NULL, 10);
}

static bool is_helper(long pid)
{
        char path[64], comm[64];
        snprintf(path, sizeof path, "/proc/%ld/comm", pid);
        if (read_small(path, comm, sizeof comm) < 0)
                return false;
        comm[strcspn(comm, "\n")] = 0;
        return strcmp(comm, "machinemgrd") == 0;
}

static void uid_line(long pid, char *out, size_t size)
{
        char path[64], status[4096];
        snprintf(path, sizeof path, "/proc/%ld/status", pid);
        snprintf(out, size, "?");
        if (read_small(path, status, sizeof status) < 0)
                return;
        const char *u = strstr(status, "\nUid:");
        if (!u)
                return;
        u += 5;
        u += strspn(u, " \t");
        size_t n = strcspn(u, "\n");
        if (n >= size)
                n = size - 1;
        memcpy(out, u, n);
        out[n] = 0;
        for (char *c = out; *c; c++)
                if (*c == '\t')
                        *c = ' ';
}

/* Lets a seized process go again: it must be in a ptrace stop for PTRACE_DETACH. */
static void release(long pid)
{
        int status;
        if (ptrace(PTRACE_INTERRUPT, pid, 0, 0) == 0)
                (void) waitpid((pid_t) pid, &status, __WALL);
        (void) ptrace(PTRACE_DETACH, pid, 0, 0);
}

static char state_of(long pid)
{
        char path[64], stat[512];
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        if (read_small(path, stat, sizeof stat) < 0)
                return 0;
        const char *p = strrchr(stat, ')');
        return p && p[1] == ' ' ? p[2] : 0;
}

/* SIGSTOP first, so that what is looked at is the process as it was when it appeared, not after an exec
 * that raced with us; then waits (briefly) for the stop. */
static bool freeze(long pid)
{
        if (kill((pid_t) pid, SIGSTOP) < 0)
                return false;
        for (int i = 0; i < 10000; i++) {
                char st = state_of(pid);
                if (st == 'T' || st == 't' || st == 0 || st == 'Z')
                        return st == 'T' || st == 't';
                sched_yield();
        }
        return true;
}

int main(int argc, char *argv[])
{
        if (argc < 2) {
                fprintf(stderr, "usage: %s SECONDS [stop]\n", argv[0]);
                return 2;
        }
        double secs = strtod(argv[1], NULL);
        bool stop = argc > 2 && strcmp(argv[2], "stop") == 0;
        struct timespec now, end;
        clock_gettime(CLOCK_MONOTONIC, &end);
        end.tv_sec += (time_t) secs;

        long seen = last_pid(), helpers = 0, seized = 0, others = 0;
        if (seen < 0) {
                perror("ns_last_pid");
                return 1;
        }
        setvbuf(stdout, NULL, _IOLBF, 0);
        for (;;) {
                clock_gettime(CLOCK_MONOTONIC, &now);
                if (now.tv_sec > end.tv_sec || (now.tv_sec == end.tv_sec && now.tv_nsec >= end.tv_nsec))
                        break;
                long last = last_pid();
                if (last < 0 || last == seen)
                        continue;
                if (last < seen) /* wrapped */
                        seen = 0;
                for (long pid = seen + 1; pid <= last; pid++) {
                        if (pid == getpid() || !freeze(pid))
                                continue;
                        bool helper = is_helper(pid);
                        char uid[128];
                        uid_line(pid, uid, sizeof uid);
                        int r = ptrace(PTRACE_SEIZE, pid, 0, 0) == 0 ? 0 : errno;
                        if (r == 0)
                                release(pid);
                        if (!helper) {
                                others += r == 0;
                                (void) kill((pid_t) pid, SIGCONT);
                                continue;
                        }
                        helpers++;
                        seized += r == 0;
                        printf("HELPER pid=%ld seize=%s uid=%s\n", pid, r == 0 ? "OK" : strerrorname_np(r) ?: "?",
                               uid);
                        if (stop) {
                                printf("STOPPED pid=%ld\n", pid);
                                stop = false;
                        } else
                                (void) kill((pid_t) pid, SIGCONT);
                }
                seen = last;
        }
        printf("DONE helpers=%ld seized=%ld others=%ld\n", helpers, seized, others);
        return 0;
}
