/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The host-limits estimate (src/manager/host-limits.c) against fake /proc trees: no root needed. */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host-limits.h"
#include "util.h"

static int failures;

#define CHECK(cond, what)                                                                                  \
        do {                                                                                               \
                if (cond)                                                                                  \
                        printf("ok - %s\n", what);                                                         \
                else {                                                                                     \
                        printf("FAIL: %s (%s:%d)\n", what, __FILE__, __LINE__);                            \
                        failures++;                                                                        \
                }                                                                                          \
        } while (0)

static char root[] = "/tmp/test-host-limits-XXXXXX";

static void put(const char *rel, const char *content)
{
        char path[512], dir[1024];
        snprintf(path, sizeof(path), "%s/%s", root, rel);
        snprintf(dir, sizeof(dir), "mkdir -p \"$(dirname '%s')\"", path);
        if (system(dir) != 0)
                abort();
        FILE *f = fopen(path, "w");
        if (!f)
                abort();
        fputs(content, f);
        fclose(f);
}

static void fake_fd(const char *pid, const char *fd, const char *target)
{
        char path[512], cmd[600];
        snprintf(cmd, sizeof(cmd), "mkdir -p %s/%s/fd", root, pid);
        if (system(cmd) != 0)
                abort();
        snprintf(path, sizeof(path), "%s/%s/fd/%s", root, pid, fd);
        if (symlink(target, path) < 0)
                abort();
}

static void fake_proc(unsigned instances, unsigned pid_max, unsigned threads)
{
        char b[64];
        snprintf(b, sizeof(b), "%u\n", instances);
        put("sys/fs/inotify/max_user_instances", b);
        put("sys/fs/inotify/max_user_watches", "8192\n");
        snprintf(b, sizeof(b), "%u\n", pid_max);
        put("sys/kernel/pid_max", b);
        put("sys/kernel/threads-max", "190000\n");
        snprintf(b, sizeof(b), "0.50 0.40 0.30 2/%u 12345\n", threads);
        put("loadavg", b);
}

int main(void)
{
        HostLimits l;
        char *msg = NULL;
        uint64_t used = 0;

        if (!mkdtemp(root))
                return 1;

        fake_proc(128, 32768, 400);
        CHECK(host_limits_read(root, &l) == 0, "read fake /proc");
        CHECK(l.inotify_max_user_instances == 128 && l.inotify_max_user_watches == 8192 && l.pid_max == 32768 &&
                      l.tasks_now == 400,
              "values parsed (loadavg's total is the task count)");

        CHECK(host_limits_check(&l, 0, 0, true, UINT64_MAX, &msg) == 0 && !msg, "one guest: fine");
        CHECK(host_limits_check(&l, 100, 0, false, UINT64_MAX, &msg) == 0, "Boot=no guests need no inotify");
        CHECK(host_limits_check(&l, 11, 0, true, UINT64_MAX, &msg) == 0, "12 guests x 10 = 120 <= 128: fine");
        CHECK(host_limits_check(&l, 12, 0, true, UINT64_MAX, &msg) == 1 && msg,
              "13 guests x 10 > 128, not measured: warning");
        CHECK(msg && strstr(msg, "fs.inotify.max_user_instances=128") && strstr(msg, "at least 130"),
              "warning names the sysctl, its value and the value needed");
        free(msg), msg = NULL;

        /* Measured usage decides; guests still starting are reserved in full. */
        CHECK(host_limits_check(&l, 12, 0, true, 60, &msg) == 0 && !msg, "measured 60 + 10 <= 128: fine");
        CHECK(host_limits_check(&l, 12, 5, true, 60, &msg) == 0, "60 + 6 x 10 = 120 <= 128: fine");
        CHECK(host_limits_check(&l, 12, 6, true, 60, &msg) == -E2BIG && msg &&
                      strstr(msg, "fs.inotify.max_user_instances=128") && strstr(msg, "at least 130"),
              "60 + 7 x 10 > 128 (6 guests still starting): refused, naming the sysctl and the value needed");
        free(msg), msg = NULL;
        CHECK(host_limits_check(&l, 2, 0, true, 127, &msg) == -E2BIG && msg &&
                      strstr(msg, "fs.inotify.max_user_instances=128") && strstr(msg, "at least 137"),
              "127 of 128 in use: refused, StartFailed");
        free(msg), msg = NULL;
        CHECK(host_limits_check(&l, 2, 0, false, 127, &msg) == 0, "... but not for a Boot=no guest");

        fake_proc(128, 1000, 995);
        CHECK(host_limits_read(root, &l) == 0 && host_limits_check(&l, 0, 0, false, UINT64_MAX, &msg) == -E2BIG &&
                      msg && strstr(msg, "kernel.pid_max=1000"),
              "pid_max used up: certain failure naming kernel.pid_max");
        free(msg), msg = NULL;
        fake_proc(128, 1000, 960);
        CHECK(host_limits_read(root, &l) == 0 && host_limits_check(&l, 0, 0, true, UINT64_MAX, &msg) == 1 && msg &&
                      strstr(msg, "kernel.pid_max"),
              "pid_max nearly used up: warning");
        free(msg), msg = NULL;

        /* Counting: only inotify fds of the uid, each symlink once in a fake tree. */
        fake_fd("100", "3", "anon_inode:inotify");
        fake_fd("100", "4", "anon_inode:inotify");
        fake_fd("100", "5", "socket:[1234]");
        fake_fd("200", "7", "anon_inode:inotify");
        fake_fd("200", "8", "/dev/null");
        CHECK(host_limits_count_inotify(root, getuid(), &used) == 0 && used == 3,
              "3 inotify fds of our uid counted, sockets and files not");
        CHECK(host_limits_count_inotify(root, getuid() + 1, &used) == 0 && used == 0, "other uid: none");
        CHECK(host_limits_count_inotify("/nonexistent-proc", 0, &used) == -ENOENT, "missing proc root: -ENOENT");

        /* The real /proc parses too. */
        CHECK(host_limits_read("/proc", &l) == 0 && l.pid_max > 0 && l.tasks_now > 0, "real /proc readable");

        /* On the real /proc one instance open three times counts once (kcmp()). Other processes of our
         * uid may open or close instances meanwhile (concurrent tests): a few tries. */
        bool once = false;
        for (int try = 0; try < 5 && !once; try++) {
                uint64_t before = 0, after = 0;
                int ifd = inotify_init1(IN_CLOEXEC);
                if (ifd < 0)
                        break;
                int d1 = dup(ifd), d2 = dup(ifd);
                close(ifd);
                /* before: with the instance open once already, so both walks see the same others. */
                int d3 = inotify_init1(IN_CLOEXEC);
                if (host_limits_count_inotify("/proc", getuid(), &before) == 0 && d3 >= 0) {
                        close(d3);
                        int d4 = dup(d1);
                        if (host_limits_count_inotify("/proc", getuid(), &after) == 0 && before == after + 1)
                                once = true;
                        close(d4);
                }
                close(d1);
                close(d2);
        }
        CHECK(once, "real /proc: an instance open in several fds is counted once");

        char cmd[600];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
        (void) system(cmd);
        printf("%d failed\n", failures);
        return failures ? 1 : 0;
}
