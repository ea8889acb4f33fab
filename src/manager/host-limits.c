/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "host-limits.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/kcmp.h>
#include <linux/nsfs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
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

static bool charged_to(int pid_fd, uint32_t uid, ino_t own_userns)
{
        struct stat st;

        /* The kernel charges an inotify instance to (user namespace, uid) and to every ancestor level up
         * to the initial namespace, where the level's owner is the uid that created the namespace. A
         * guest with its own user namespace (PrivateUsers=pick) created by root is therefore charged to
         * root's fs.inotify.max_user_instances too, although its processes show shifted uids. */
        _cleanup_close_ int ns_fd = openat(pid_fd, "ns/user", O_RDONLY | O_CLOEXEC);
        if (ns_fd >= 0 && fstat(ns_fd, &st) >= 0 && st.st_ino != own_userns) {
                uid_t owner;
                return ioctl(ns_fd, NS_GET_OWNER_UID, &owner) >= 0 && owner == uid;
        }
        /* Our namespace (or a fake tree in tests): /proc/PID belongs to the process's effective uid. */
        return fstat(pid_fd, &st) >= 0 && st.st_uid == uid;
}

typedef struct InotifyFd {
        pid_t pid;
        int fd;
} InotifyFd;

static int kcmp_file(const InotifyFd *a, const InotifyFd *b)
{
        /* kcmp(KCMP_FILE) orders open files consistently (0 same, 1 less, 2 greater): sorting with it
         * puts the fds of one instance next to each other, even across processes. */
        long r = syscall(SYS_kcmp, a->pid, b->pid, KCMP_FILE, a->fd, b->fd);
        if (r == 0 || r == 1 || r == 2)
                return r == 0 ? 0 : r == 1 ? -1 : 1;
        /* Gone meanwhile: any order; the merge sort below stays in bounds with an inconsistent one. */
        return a->pid != b->pid ? (a->pid < b->pid ? -1 : 1) : (a->fd < b->fd ? -1 : a->fd > b->fd);
}

static void merge_sort(InotifyFd *v, InotifyFd *tmp, size_t n)
{
        if (n < 2)
                return;
        size_t h = n / 2, i = 0, j = h, k = 0;
        merge_sort(v, tmp, h);
        merge_sort(v + h, tmp, n - h);
        while (i < h && j < n)
                tmp[k++] = kcmp_file(&v[j], &v[i]) < 0 ? v[j++] : v[i++];
        while (i < h)
                tmp[k++] = v[i++];
        while (j < n)
                tmp[k++] = v[j++];
        memcpy(v, tmp, n * sizeof(*v));
}

int host_limits_count_inotify(const char *proc_root, uint32_t uid, uint64_t *ret_instances)
{
        _cleanup_free_ InotifyFd *fds_seen = NULL;
        size_t n = 0, allocated = 0;
        struct stat self_ns;
        /* kcmp() needs real pids: in a fake tree (tests) every symlink is its own instance. */
        bool real = streq(proc_root, "/proc");
        DIR *d = opendir(proc_root);
        struct dirent *de;

        if (!d)
                return -errno;
        if (stat("/proc/self/ns/user", &self_ns) < 0)
                self_ns.st_ino = 0;
        while ((de = readdir(d))) {
                unsigned pid;

                if (safe_atou(de->d_name, &pid) < 0)
                        continue;
                _cleanup_close_ int pid_fd = openat(dirfd(d), de->d_name, O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (pid_fd < 0 || !charged_to(pid_fd, uid, self_ns.st_ino))
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
                        int fd;

                        if (safe_atoi(fe->d_name, &fd) < 0)
                                continue;
                        ssize_t k = readlinkat(dirfd(fds), fe->d_name, target, sizeof(target) - 1);
                        if (k < 0)
                                continue;
                        target[k] = 0;
                        if (!streq(target, "anon_inode:inotify"))
                                continue;
                        if (n == allocated) {
                                size_t a = allocated ? allocated * 2 : 64;
                                InotifyFd *p = realloc(fds_seen, a * sizeof(*p));
                                if (!p) {
                                        closedir(fds);
                                        closedir(d);
                                        return -ENOMEM;
                                }
                                fds_seen = p;
                                allocated = a;
                        }
                        fds_seen[n++] = (InotifyFd){ .pid = (pid_t) pid, .fd = fd };
                }
                closedir(fds);
        }
        closedir(d);

        /* One instance may be open in several processes (systemd forks its children with it open, then
         * they exec): counting fds over-counted by 10-15 % with 20 guests, enough for a false refusal.
         * All inotify fds share one anonymous inode, so only kcmp() tells instances apart. */
        uint64_t count = n;
        if (real && n > 1 && (syscall(SYS_kcmp, getpid(), getpid(), KCMP_FILE, 0, 0) >= 0 || errno != ENOSYS)) {
                _cleanup_free_ InotifyFd *tmp = malloc(n * sizeof(*tmp));
                if (!tmp)
                        return -ENOMEM;
                merge_sort(fds_seen, tmp, n);
                count = 1;
                for (size_t i = 1; i < n; i++)
                        count += kcmp_file(&fds_seen[i - 1], &fds_seen[i]) != 0;
        }
        *ret_instances = count;
        return 0;
}

int host_limits_check(const HostLimits *l, unsigned booted_guests, unsigned starting_guests, bool boot,
                      uint64_t used_inotify, char **ret_message)
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
        /* Measured: what is charged now, plus a full guest's worth for this one and for every guest still
         * starting (concurrent starts: those have not opened theirs yet, so the measurement cannot see
         * them; the colleague's N=30 run let guests through one by one and then starved them). Crossing
         * it is refused: a systemd that gets EMFILE from inotify_init1() exits ("Failed to allocate
         * manager object") or hangs in start-up for ever, a silently broken guest. */
        if (boot && l->inotify_max_user_instances > 0 && used_inotify != UINT64_MAX) {
                uint64_t need = used_inotify + ((uint64_t) starting_guests + 1) * HOST_LIMITS_GUEST_INOTIFY_INSTANCES;
                if (need > l->inotify_max_user_instances) {
                        uint64_t est = guests * HOST_LIMITS_GUEST_INOTIFY_INSTANCES, want = need > est ? need : est;
                        if (asprintf(&msg, "fs.inotify.max_user_instances=%" PRIu64 " is too low: %" PRIu64 " inotify "
                                     "instances are charged to root now and this guest and %u others still starting "
                                     "need about %u each (all guests count against root's limit, with or without "
                                     "PrivateUsers=, since root owns their user namespaces); set it to at least %"
                                     PRIu64 " (sysctl -w fs.inotify.max_user_instances=%" PRIu64 ")",
                                     l->inotify_max_user_instances, used_inotify, starting_guests,
                                     HOST_LIMITS_GUEST_INOTIFY_INSTANCES, want, want) < 0)
                                return -ENOMEM;
                        *ret_message = msg;
                        return -E2BIG;
                }
        }
        if (!boot)
                return 0;

        /* Estimate only (not measured): warn, the guest may still fit (an idle Debian 12 guest holds ~6). */
        uint64_t need = guests * HOST_LIMITS_GUEST_INOTIFY_INSTANCES;
        if (l->inotify_max_user_instances > 0 && used_inotify == UINT64_MAX && need > l->inotify_max_user_instances) {
                uint64_t want = need;
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

int host_limits_check_start(const char *machine, unsigned booted_guests, unsigned starting_guests, bool boot,
                            char **ret_message)
{
        HostLimits l;
        uint64_t used = UINT64_MAX;
        _cleanup_free_ char *msg = NULL;
        int r;

        r = host_limits_read("/proc", &l);
        if (r < 0)
                return 0; /* no /proc numbers: nothing to say */

        /* Walking /proc costs ~1 ms per 100 processes (+ n log n kcmp() calls): only when the estimate
         * says it matters. */
        uint64_t estimate = ((uint64_t) booted_guests + 1) * HOST_LIMITS_GUEST_INOTIFY_INSTANCES;
        if (boot && l.inotify_max_user_instances > 0 && estimate * 2 > l.inotify_max_user_instances)
                (void) host_limits_count_inotify("/proc", 0, &used);

        r = host_limits_check(&l, booted_guests, starting_guests, boot, used, &msg);
        if (r == 1)
                log_machine_warning_errno(machine, 0, "Host limit: %s", msg);
        /* Also in the daemon's log: the caller of StartMachine may not show the error to anyone. */
        if (r < 0)
                log_machine_error_errno(machine, r, "Start refused, host limit: %s", msg);
        if (r < 0 && ret_message)
                *ret_message = TAKE_PTR(msg);
        return r < 0 ? r : 0;
}
