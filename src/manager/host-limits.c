/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "host-limits.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static uint64_t read_u64(const char *proc_root, const char *rel)
{
        _cleanup_free_ char *path = NULL, *line = NULL;
        uint64_t v;

        if (asprintf(&path, "%s/%s", proc_root, rel) < 0 || read_one_line_file(path, &line) < 0 ||
            safe_atou64(line, &v) < 0)
                return 0;
        return v;
}

int host_limits_read(const char *proc_root, HostLimits *ret)
{
        _cleanup_free_ char *path = NULL, *line = NULL;
        HostLimits l = {
                .inotify_max_user_instances = read_u64(proc_root, "sys/fs/inotify/max_user_instances"),
                .inotify_max_user_watches = read_u64(proc_root, "sys/fs/inotify/max_user_watches"),
                .pid_max = read_u64(proc_root, "sys/kernel/pid_max"),
                .threads_max = read_u64(proc_root, "sys/kernel/threads-max"),
        };

        /* "0.00 0.01 0.05 1/123 4567": the 4th field's total is every thread on the host. */
        if (asprintf(&path, "%s/loadavg", proc_root) < 0)
                return -ENOMEM;
        if (read_one_line_file(path, &line) >= 0) {
                unsigned long long running, total;
                if (sscanf(line, "%*s %*s %*s %llu/%llu", &running, &total) == 2)
                        l.tasks_now = total;
        }
        *ret = l;
        return 0;
}

static int proc_uid(int pid_fd, uint32_t *ret)
{
        struct stat st;

        /* /proc/PID is owned by the process's effective uid (dumpable processes; close enough here). */
        if (fstat(pid_fd, &st) < 0)
                return -errno;
        *ret = st.st_uid;
        return 0;
}

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

int host_limits_count_inotify(const char *proc_root, uint32_t uid, uint64_t *ret_instances)
{
        _cleanup_free_ uint64_t *inodes = NULL;
        size_t n = 0, allocated = 0;
        DIR *d = opendir(proc_root);
        struct dirent *de;

        if (!d)
                return -errno;
        while ((de = readdir(d))) {
                uint32_t owner = UINT32_MAX;
                unsigned pid;

                if (safe_atou(de->d_name, &pid) < 0)
                        continue;
                _cleanup_close_ int pid_fd = openat(dirfd(d), de->d_name, O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (pid_fd < 0 || proc_uid(pid_fd, &owner) < 0 || owner != uid)
                        continue;
                int fd_dir_fd = openat(pid_fd, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd_dir_fd < 0)
                        continue; /* gone, or a kernel thread */
                DIR *fds = fdopendir(fd_dir_fd);
                if (!fds) {
                        close(fd_dir_fd);
                        continue;
                }
                struct dirent *fe;
                while ((fe = readdir(fds))) {
                        char target[64];
                        struct stat st;

                        if (fe->d_name[0] == '.')
                                continue;
                        ssize_t k = readlinkat(dirfd(fds), fe->d_name, target, sizeof(target) - 1);
                        if (k < 0)
                                continue;
                        target[k] = 0;
                        if (!streq(target, "anon_inode:inotify"))
                                continue;
                        /* One instance may be open in several processes (fork, SCM_RIGHTS): count the
                         * open file once. The inode is per instance for real inotify fds; a fake tree in
                         * tests has distinct symlinks instead, so fall back to counting each. */
                        uint64_t key = fstatat(dirfd(fds), fe->d_name, &st, 0) >= 0 && st.st_ino != 0 ?
                                               (uint64_t) st.st_ino :
                                               (uint64_t) (n + 1) << 32;
                        if (n == allocated) {
                                size_t a = allocated ? allocated * 2 : 64;
                                uint64_t *p = realloc(inodes, a * sizeof(*p));
                                if (!p) {
                                        closedir(fds);
                                        closedir(d);
                                        return -ENOMEM;
                                }
                                inodes = p;
                                allocated = a;
                        }
                        inodes[n++] = key;
                }
                closedir(fds);
        }
        closedir(d);

        /* anon_inode fds share one inode on older kernels: then all keys are equal and we fall back to
         * counting fds (an over-estimate, which only errs towards warning). */
        uint64_t count = 0;
        if (n > 0) {
                qsort(inodes, n, sizeof(*inodes), cmp_u64);
                count = 1;
                for (size_t i = 1; i < n; i++)
                        count += inodes[i] != inodes[i - 1];
                if (count == 1 && n > 1)
                        count = n;
        }
        *ret_instances = count;
        return 0;
}

int host_limits_check(const HostLimits *l, unsigned booted_guests, bool boot, uint64_t used_inotify,
                      char **ret_message)
{
        uint64_t guests = (uint64_t) booted_guests + 1;
        char *msg = NULL;

        /* Certain failures first: the measured state leaves no room for this guest at all. */
        if (l->pid_max > 0 && l->tasks_now + HOST_LIMITS_GUEST_MIN_TASKS > l->pid_max) {
                if (asprintf(&msg, "kernel.pid_max=%" PRIu64 " leaves no room: %" PRIu64 " tasks run now and a guest "
                             "needs at least %u; raise it to at least %" PRIu64,
                             l->pid_max, l->tasks_now, HOST_LIMITS_GUEST_MIN_TASKS,
                             (l->tasks_now + guests * 64 + 1023) / 1024 * 1024) < 0)
                        return -ENOMEM;
                *ret_message = msg;
                return -E2BIG;
        }
        if (boot && l->inotify_max_user_instances > 0 && used_inotify != UINT64_MAX &&
            used_inotify + HOST_LIMITS_GUEST_PID1_INOTIFY > l->inotify_max_user_instances) {
                if (asprintf(&msg, "fs.inotify.max_user_instances=%" PRIu64 " is used up (%" PRIu64 " in use by "
                             "root): the guest's systemd could not start; set it to at least %" PRIu64,
                             l->inotify_max_user_instances, used_inotify,
                             used_inotify + guests * HOST_LIMITS_GUEST_INOTIFY_INSTANCES) < 0)
                        return -ENOMEM;
                *ret_message = msg;
                return -E2BIG;
        }
        if (!boot)
                return 0;

        /* Estimates: warn, the guest may still come up (degraded). */
        uint64_t need = guests * HOST_LIMITS_GUEST_INOTIFY_INSTANCES;
        uint64_t base = used_inotify != UINT64_MAX ? used_inotify + HOST_LIMITS_GUEST_INOTIFY_INSTANCES : need;
        if (l->inotify_max_user_instances > 0 && base > l->inotify_max_user_instances) {
                uint64_t want = base > need ? base : need;
                if (asprintf(&msg, "fs.inotify.max_user_instances=%" PRIu64 " is likely too low for %" PRIu64
                             " booted guests (each systemd guest uses about %u, all as root): the guest may come "
                             "up degraded; set it to at least %" PRIu64 " (sysctl -w fs.inotify.max_user_instances=%"
                             PRIu64 ")",
                             l->inotify_max_user_instances, guests, HOST_LIMITS_GUEST_INOTIFY_INSTANCES, want,
                             want) < 0)
                        return -ENOMEM;
                *ret_message = msg;
                return 1;
        }
        need = guests * HOST_LIMITS_GUEST_INOTIFY_WATCHES;
        if (l->inotify_max_user_watches > 0 && need > l->inotify_max_user_watches) {
                if (asprintf(&msg, "fs.inotify.max_user_watches=%" PRIu64 " is likely too low for %" PRIu64
                             " booted guests (about %u each): set it to at least %" PRIu64,
                             l->inotify_max_user_watches, guests, HOST_LIMITS_GUEST_INOTIFY_WATCHES, need) < 0)
                        return -ENOMEM;
                *ret_message = msg;
                return 1;
        }
        need = l->tasks_now + HOST_LIMITS_GUEST_MIN_TASKS * 8;
        if (l->pid_max > 0 && need > l->pid_max) {
                if (asprintf(&msg, "kernel.pid_max=%" PRIu64 " is nearly used up (%" PRIu64 " tasks run now): set it "
                             "to at least %" PRIu64, l->pid_max, l->tasks_now, need * 2) < 0)
                        return -ENOMEM;
                *ret_message = msg;
                return 1;
        }
        return 0;
}

int host_limits_check_start(const char *machine, unsigned booted_guests, bool boot, char **ret_message)
{
        HostLimits l;
        uint64_t used = UINT64_MAX;
        _cleanup_free_ char *msg = NULL;
        int r;

        r = host_limits_read("/proc", &l);
        if (r < 0)
                return 0; /* no /proc numbers: nothing to say */

        /* Walking /proc costs ~1 ms per 100 processes: only when the estimate says it matters. */
        uint64_t estimate = ((uint64_t) booted_guests + 1) * HOST_LIMITS_GUEST_INOTIFY_INSTANCES;
        if (boot && l.inotify_max_user_instances > 0 && estimate * 2 > l.inotify_max_user_instances)
                (void) host_limits_count_inotify("/proc", 0, &used);

        r = host_limits_check(&l, booted_guests, boot, used, &msg);
        if (r == 1)
                log_machine_warning_errno(machine, 0, "Host limit: %s", msg);
        if (r < 0 && ret_message)
                *ret_message = TAKE_PTR(msg);
        return r < 0 ? r : 0;
}
