/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "userns.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

typedef struct Range {
        uint64_t base, size;
        char *owner;
} Range;

static bool ranges_overlap(uint64_t a, uint64_t an, uint64_t b, uint64_t bn)
{
        return a < b + bn && b < a + an;
}

/* Holds the allocation lock until closed. */
static int lock_dir(const char *dir)
{
        int r = mkdir_p(dir, 0700);
        if (r < 0)
                return r;

        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/.lock", dir) < 0)
                return -ENOMEM;
        _cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        if (flock(fd, LOCK_EX) < 0)
                return -errno;
        return TAKE_FD(fd);
}

static void ranges_free(Range *l, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(l[i].owner);
        free(l);
}

/* Every recorded range; files not named BASE-SIZE are ignored. */
static int ranges_load(const char *dir, Range **ret, size_t *ret_n)
{
        _cleanup_closedir_ DIR *d = opendir(dir);
        Range *l = NULL;
        size_t n = 0;
        struct dirent *de;

        if (!d)
                return -errno;
        while ((de = readdir(d))) {
                uint64_t base, size;
                int end = 0;

                if (sscanf(de->d_name, "%" SCNu64 "-%" SCNu64 "%n", &base, &size, &end) != 2 ||
                    de->d_name[end] != '\0')
                        continue;

                _cleanup_free_ char *path = NULL, *owner = NULL;
                if (asprintf(&path, "%s/%s", dir, de->d_name) < 0)
                        goto oom;
                if (read_one_line_file(path, &owner) < 0 && !(owner = strdup("")))
                        goto oom;
                Range *nl = realloc(l, (n + 1) * sizeof(Range));
                if (!nl)
                        goto oom;
                l = nl;
                l[n++] = (Range) { .base = base, .size = size, .owner = TAKE_PTR(owner) };
        }
        *ret = l;
        *ret_n = n;
        return 0;
oom:
        ranges_free(l, n);
        return -ENOMEM;
}

static int range_remove(const char *dir, const Range *r)
{
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/%" PRIu64 "-%" PRIu64, dir, r->base, r->size) < 0)
                return -ENOMEM;
        return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}

static int release_locked(const char *dir, const char *machine)
{
        Range *l = NULL;
        size_t n = 0;
        int r = ranges_load(dir, &l, &n);
        if (r < 0)
                return r == -ENOENT ? 0 : r;

        for (size_t i = 0; i < n && r >= 0; i++)
                if (streq(l[i].owner, machine))
                        r = range_remove(dir, &l[i]);
        ranges_free(l, n);
        return r;
}

static bool range_free(const Range *l, size_t n, uint64_t base, uint64_t size)
{
        for (size_t i = 0; i < n; i++)
                if (ranges_overlap(base, size, l[i].base, l[i].size))
                        return false;
        return true;
}

int userns_range_allocate(const char *dir, const char *machine, uint32_t fixed_base, uint32_t fixed_size,
                          uint32_t *ret_base, uint32_t *ret_size)
{
        _cleanup_close_ int lock_fd = lock_dir(dir);
        if (lock_fd < 0)
                return lock_fd;

        int r = release_locked(dir, machine);
        if (r < 0)
                return r;

        Range *l = NULL;
        size_t n = 0;
        r = ranges_load(dir, &l, &n);
        if (r < 0)
                return r;

        uint64_t base = fixed_base, size = fixed_size;
        if (size == 0) {
                size = USERNS_RANGE_SIZE;
                for (base = USERNS_POOL_FIRST; base <= USERNS_POOL_LAST; base += USERNS_RANGE_SIZE)
                        if (range_free(l, n, base, size))
                                break;
                if (base > USERNS_POOL_LAST)
                        r = -ENOSPC;
        } else if (!range_free(l, n, base, size))
                r = -EBUSY;
        ranges_free(l, n);
        if (r < 0)
                return r;

        _cleanup_free_ char *path = NULL, *contents = NULL;
        if (asprintf(&path, "%s/%" PRIu64 "-%" PRIu64, dir, base, size) < 0 ||
            asprintf(&contents, "%s\n", machine) < 0)
                return -ENOMEM;
        r = write_file_atomic(path, contents);
        if (r < 0)
                return r;

        *ret_base = (uint32_t) base;
        *ret_size = (uint32_t) size;
        return 0;
}

int userns_range_release(const char *dir, const char *machine)
{
        _cleanup_close_ int lock_fd = lock_dir(dir);
        if (lock_fd < 0)
                return lock_fd;
        return release_locked(dir, machine);
}

int userns_write_maps(pid_t pid, uint32_t base, uint32_t size)
{
        static const char *const files[] = { "uid_map", "gid_map" };
        char line[64];

        snprintf(line, sizeof(line), "0 %" PRIu32 " %" PRIu32 "\n", base, size);
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                char path[64];
                snprintf(path, sizeof(path), "/proc/%d/%s", (int) pid, files[i]);
                int r = write_string_file(path, line);
                if (r < 0)
                        return r;
        }
        return 0;
}

int userns_idmapped_tree(pid_t pid, const char *path)
{
        char ns_path[64];

        snprintf(ns_path, sizeof(ns_path), "/proc/%d/ns/user", (int) pid);
        _cleanup_close_ int userns_fd = open(ns_path, O_RDONLY | O_CLOEXEC);
        if (userns_fd < 0)
                return -errno;

        _cleanup_close_ int tree_fd = open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
        if (tree_fd < 0)
                return -errno;

        /* A clone of a shared mount (systemd as PID 1 makes every mount shared) joins its peer group,
         * and stays shared when the guest attaches it: pivot_root() then fails with EINVAL, and mounts
         * the guest makes below it would propagate back into our namespace. The guest cannot change
         * that itself (the tree belongs to our mount namespace), so make it a slave here, as
         * bind_rootfs() does for the guest's own copy: host unmounts still reach the guest. */
        struct mount_attr attr = { .attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t) userns_fd,
                                   .propagation = MS_SLAVE };
        if (mount_setattr(tree_fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0)
                return -errno;
        return TAKE_FD(tree_fd);
}

int userns_idmapped_bind(pid_t pid, const char *source, bool read_only)
{
        _cleanup_close_ int tree_fd = userns_idmapped_tree(pid, source);
        if (tree_fd < 0)
                return tree_fd;
        /* Set here, before the guest has the tree. Every submount too: a read-only bind of /srv must not
         * leave /srv/data writable. */
        if (read_only) {
                struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
                if (mount_setattr(tree_fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0)
                        return -errno;
        }
        return TAKE_FD(tree_fd);
}

static int chown_at(int dir_fd, const char *name, uid_t uid, gid_t gid)
{
        if (fchownat(dir_fd, name, uid, gid, AT_SYMLINK_NOFOLLOW | (*name ? 0 : AT_EMPTY_PATH)) < 0)
                return errno == ENOENT ? 0 : -errno;
        return 0;
}

int userns_chown_cgroup(const char *cgroup2_path, uid_t uid, gid_t gid)
{
        static const char *const files[] = { "", "cgroup.procs", "cgroup.threads", "cgroup.subtree_control" };

        _cleanup_close_ int dir_fd = open(cgroup2_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0)
                return -errno;
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                int r = chown_at(dir_fd, files[i], uid, gid);
                if (r < 0)
                        return r;
        }

        /* Newer kernels list further delegatable files here (memory.oom.group, cgroup.kill, ...). */
        _cleanup_free_ char *extra = NULL;
        if (read_full_file("/sys/kernel/cgroup/delegate", &extra, NULL) < 0)
                return 0;
        for (char *save = NULL, *f = strtok_r(extra, "\n", &save); f; f = strtok_r(NULL, "\n", &save)) {
                int r = chown_at(dir_fd, f, uid, gid);
                if (r < 0)
                        return r;
        }
        return 0;
}

int userns_become_root(void)
{
        if (setgroups(0, NULL) < 0 || setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
                return -errno;
        return 0;
}
