/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "mount-setup.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "binds.h"
#include "userns.h"
#include "util.h"

/* Step names carry paths, so they are formatted here; the child is single-threaded. */
static char step_buf[256];

static int fail(const char **ret_step, int r, const char *fmt, const char *arg)
{
        snprintf(step_buf, sizeof(step_buf), fmt, arg);
        *ret_step = step_buf;
        return r;
}

/* Opens path inside the root as a mount target, creating the last component when missing (a directory,
 * or an empty file when is_file). Parents are resolved in the root too, so mkdirat() cannot escape. */
static int open_target(int root_fd, const char *path, bool is_file)
{
        int fd = openat_in_root(root_fd, path, O_PATH | (is_file ? 0 : O_DIRECTORY));
        if (fd != -ENOENT)
                return fd;

        const char *slash = strrchr(path, '/');
        _cleanup_free_ char *parent = strndup(path, slash ? (size_t) (slash - path) : 0);
        if (!parent)
                return -ENOMEM;
        _cleanup_close_ int parent_fd = openat_in_root(root_fd, *parent ? parent : ".", O_PATH | O_DIRECTORY);
        if (parent_fd < 0)
                return parent_fd;

        const char *base = slash ? slash + 1 : path;
        if (is_file) {
                int r = mknodat(parent_fd, base, S_IFREG | 0644, 0);
                if (r < 0 && errno != EEXIST)
                        return -errno;
        } else if (mkdirat(parent_fd, base, 0755) < 0 && errno != EEXIST)
                return -errno;

        return openat_in_root(root_fd, path, O_PATH | (is_file ? 0 : O_DIRECTORY));
}

static int attach(int mount_fd, int target_fd)
{
        if (move_mount(mount_fd, "", target_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
                return -errno;
        return 0;
}

/* A new, still detached file system; options are "key=value" or "flag". */
static int fs_create(const char *fstype, const char *const *options, unsigned attrs)
{
        _cleanup_close_ int fs_fd = fsopen(fstype, FSOPEN_CLOEXEC);
        if (fs_fd < 0)
                return -errno;

        for (const char *const *o = options; o && *o; o++) {
                const char *eq = strchr(*o, '=');
                int r;

                if (eq) {
                        _cleanup_free_ char *key = strndup(*o, (size_t) (eq - *o));
                        if (!key)
                                return -ENOMEM;
                        r = fsconfig(fs_fd, FSCONFIG_SET_STRING, key, eq + 1, 0);
                } else
                        r = fsconfig(fs_fd, FSCONFIG_SET_FLAG, *o, NULL, 0);
                if (r < 0)
                        return -errno;
        }
        if (fsconfig(fs_fd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
                return -errno;

        int mnt_fd = fsmount(fs_fd, FSMOUNT_CLOEXEC, attrs);
        return mnt_fd < 0 ? -errno : mnt_fd;
}

static int fs_mount(int target_fd, const char *fstype, const char *const *options, unsigned attrs)
{
        _cleanup_close_ int mnt_fd = fs_create(fstype, options, attrs);
        if (mnt_fd < 0)
                return mnt_fd;
        return attach(mnt_fd, target_fd);
}

/* A detached copy of the mount at dir_fd/path, with attrs set on it. */
static int bind_clone(int dir_fd, const char *path, bool recursive, unsigned attrs)
{
        unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0) |
                         (*path ? 0 : AT_EMPTY_PATH);
        _cleanup_close_ int tree_fd = open_tree(dir_fd, path, flags);
        if (tree_fd < 0)
                return -errno;

        if (attrs) {
                struct mount_attr attr = { .attr_set = attrs };
                if (mount_setattr(tree_fd, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &attr,
                                  sizeof(attr)) < 0)
                        return -errno;
        }
        return TAKE_FD(tree_fd);
}

static int bind_mount(int src_dir_fd, const char *src_path, int target_fd, unsigned attrs)
{
        _cleanup_close_ int tree_fd = bind_clone(src_dir_fd, src_path, false, attrs);
        if (tree_fd < 0)
                return tree_fd;
        return attach(tree_fd, target_fd);
}

/* Read-only bind of a file or directory inside our own procfs onto itself. Missing entries (kernel
 * config) are fine. */
static int proc_bind_ro(int proc_fd, const char *name)
{
        _cleanup_close_ int target = openat(proc_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (target < 0)
                return errno == ENOENT ? 0 : -errno;
        return bind_mount(target, "", target, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
                                                       MOUNT_ATTR_NOEXEC);
}

/* Hides a proc file behind /dev/null, or a proc directory behind an empty read-only tmpfs. */
static int proc_mask(int proc_fd, const char *name)
{
        _cleanup_close_ int target = openat(proc_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (target < 0)
                return errno == ENOENT ? 0 : -errno;

        struct stat st;
        if (fstat(target, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode)) {
                static const char *const opts[] = { "mode=555", NULL };
                return fs_mount(target, "tmpfs", opts, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
                                                               MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
        }
        return bind_mount(AT_FDCWD, "/dev/null", target, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
                                                                 MOUNT_ATTR_NOEXEC);
}

static int setup_proc(int root_fd, bool private_network, const char **ret_step)
{
        static const char *const ro[] = { "sys", "sysrq-trigger", "irq", "bus", "fs", NULL };
        static const char *const masked[] = { "kcore", "keys", "key-users", "timer_list", "sched_debug",
                                              "latency_stats", "kallsyms", "acpi", "scsi", NULL };
        int r;

        _cleanup_close_ int target = open_target(root_fd, "proc", false);
        if (target < 0)
                return fail(ret_step, target, "open %s", "/proc");
        _cleanup_close_ int proc_fd = fs_create("proc", NULL, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
                                                                     MOUNT_ATTR_NOEXEC);
        if (proc_fd < 0)
                return fail(ret_step, proc_fd, "mount %s", "/proc");

        r = attach(proc_fd, target);
        if (r < 0)
                return fail(ret_step, r, "mount %s", "/proc");

        /* A writable copy of /proc/sys/net taken before /proc/sys turns read-only: the guest owns
         * its network namespace's sysctls, but nothing else under /proc/sys. */
        _cleanup_close_ int net_fd = -1;
        if (private_network) {
                net_fd = bind_clone(proc_fd, "sys/net", false, 0);
                if (net_fd < 0)
                        return fail(ret_step, net_fd, "bind %s", "/proc/sys/net");
        }

        for (const char *const *p = ro; *p; p++) {
                r = proc_bind_ro(proc_fd, *p);
                if (r < 0)
                        return fail(ret_step, r, "make /proc/%s read-only", *p);
        }

        if (net_fd >= 0) {
                _cleanup_close_ int net_target = openat(proc_fd, "sys/net", O_PATH | O_NOFOLLOW | O_CLOEXEC);
                if (net_target < 0)
                        return fail(ret_step, -errno, "open %s", "/proc/sys/net");
                r = attach(net_fd, net_target);
                if (r < 0)
                        return fail(ret_step, r, "bind %s", "/proc/sys/net");
        }

        for (const char *const *p = masked; *p; p++) {
                r = proc_mask(proc_fd, *p);
                if (r < 0)
                        return fail(ret_step, r, "mask /proc/%s", *p);
        }
        return 0;
}

/* /sys read-only; its /sys/fs/cgroup comes later (mount_setup_cgroup). */
static int setup_sys(int root_fd, bool bind_host_sys, const char **ret_step)
{
        int r;

        _cleanup_close_ int target = open_target(root_fd, "sys", false);
        if (target < 0)
                return fail(ret_step, target, "open %s", "/sys");
        /* PrivateUsers= with Network=host: sysfs may only be mounted by a user namespace that owns the
         * network namespace, so the guest gets the host's /sys, recursively read-only. Its files are
         * owned by the host's root, which is unmapped (nobody) in the guest: guest root could not write
         * them even if it cleared the read-only flag of its copy. The host's cgroup mounts below it are
         * covered by the guest's own cgroup2 next. */
        if (bind_host_sys) {
                _cleanup_close_ int sys_fd = bind_clone(AT_FDCWD, "/sys", true, MOUNT_ATTR_RDONLY |
                                                        MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
                r = sys_fd < 0 ? sys_fd : attach(sys_fd, target);
        } else
                r = fs_mount(target, "sysfs", NULL, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
                                                            MOUNT_ATTR_NOEXEC);
        if (r < 0)
                return fail(ret_step, r, "mount %s", "/sys");
        return 0;
}

/* The guest's own cgroup (its cgroup namespace root) as a writable cgroup2 at /sys/fs/cgroup. Only
 * cgroup2 is offered, also on hybrid hosts: systemd in the guest then runs in unified mode, which needs
 * nothing but a delegated subtree, and the guest gets no cgroup v1 hierarchy whose release_agent it
 * could write. */
int mount_setup_cgroup(int root_fd, const char **ret_step)
{
        _cleanup_close_ int cg_target = openat_in_root(root_fd, "sys/fs/cgroup", O_PATH | O_DIRECTORY);
        if (cg_target < 0)
                return fail(ret_step, cg_target, "open %s", "/sys/fs/cgroup");
        int r = fs_mount(cg_target, "cgroup2", NULL, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
        if (r < 0)
                return fail(ret_step, r, "mount %s", "/sys/fs/cgroup");
        return 0;
}

static const struct {
        const char *name;
        unsigned major, minor;
} dev_nodes[] = {
        { "null", 1, 3 },   { "zero", 1, 5 }, { "full", 1, 7 },
        { "random", 1, 8 }, { "urandom", 1, 9 }, { "tty", 5, 0 },
};

/* In a user namespace mknod() of devices is refused (and a tmpfs mounted there is nodev anyway): the
 * nodes are empty files with the host's nodes bound on top (bind_dev_nodes), as systemd-nspawn -U does. */
static int populate_dev(int dev_fd, bool userns)
{
        static const struct {
                const char *name, *target;
        } links[] = {
                { "ptmx", "pts/ptmx" },         { "fd", "/proc/self/fd" },
                { "stdin", "/proc/self/fd/0" }, { "stdout", "/proc/self/fd/1" },
                { "stderr", "/proc/self/fd/2" },
        };

        /* The child runs with umask 0, so the modes here are the final ones. */
        for (size_t i = 0; i < ELEMENTSOF(dev_nodes); i++)
                if (mknodat(dev_fd, dev_nodes[i].name, userns ? S_IFREG | 0666 : S_IFCHR | 0666,
                            userns ? 0 : makedev(dev_nodes[i].major, dev_nodes[i].minor)) < 0)
                        return -errno;
        for (size_t i = 0; i < ELEMENTSOF(links); i++)
                if (symlinkat(links[i].target, dev_fd, links[i].name) < 0)
                        return -errno;
        if (mkdirat(dev_fd, "pts", 0755) < 0 || mkdirat(dev_fd, "shm", 01777) < 0)
                return -errno;
        if (mknodat(dev_fd, "console", S_IFREG | 0600, 0) < 0)
                return -errno;
        return 0;
}

static int mount_in(int dir_fd, const char *name, const char *fstype, const char *const *options,
                    unsigned attrs)
{
        _cleanup_close_ int target = openat(dir_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (target < 0)
                return -errno;
        return fs_mount(target, fstype, options, attrs);
}

static int bind_dev_nodes(int dev_fd)
{
        for (size_t i = 0; i < ELEMENTSOF(dev_nodes); i++) {
                _cleanup_free_ char *src = NULL;
                _cleanup_close_ int target = openat(dev_fd, dev_nodes[i].name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                if (target < 0)
                        return -errno;
                if (asprintf(&src, "/dev/%s", dev_nodes[i].name) < 0)
                        return -ENOMEM;
                int r = bind_mount(AT_FDCWD, src, target, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int setup_dev(int root_fd, const char *console_path, bool userns, const char **ret_step)
{
        static const char *const dev_opts[] = { "mode=755", "size=4m", "nr_inodes=64k", NULL };
        static const char *const pts_opts[] = { "newinstance", "ptmxmode=0666", "mode=620", "gid=5", NULL };
        static const char *const shm_opts[] = { "mode=1777", NULL };
        int r;

        _cleanup_close_ int target = open_target(root_fd, "dev", false);
        if (target < 0)
                return fail(ret_step, target, "open %s", "/dev");
        _cleanup_close_ int dev_fd = fs_create("tmpfs", dev_opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC);
        if (dev_fd < 0)
                return fail(ret_step, dev_fd, "mount %s", "/dev");
        /* Filled while still detached: nothing in the guest can race with us here. */
        r = populate_dev(dev_fd, userns);
        if (r < 0)
                return fail(ret_step, r, "populate %s", "/dev");
        r = attach(dev_fd, target);
        if (r < 0)
                return fail(ret_step, r, "mount %s", "/dev");
        if (userns) {
                r = bind_dev_nodes(dev_fd);
                if (r < 0)
                        return fail(ret_step, r, "bind the host's device nodes into %s", "/dev");
        }

        r = mount_in(dev_fd, "pts", "devpts", pts_opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC);
        if (r < 0)
                return fail(ret_step, r, "mount %s", "/dev/pts");
        r = mount_in(dev_fd, "shm", "tmpfs", shm_opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
        if (r < 0)
                return fail(ret_step, r, "mount %s", "/dev/shm");

        if (console_path) {
                _cleanup_close_ int console = openat(dev_fd, "console", O_PATH | O_NOFOLLOW | O_CLOEXEC);
                if (console < 0)
                        return fail(ret_step, -errno, "open %s", "/dev/console");
                r = bind_mount(AT_FDCWD, console_path, console, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC);
                if (r < 0)
                        return fail(ret_step, r, "bind %s", "/dev/console");
        }
        return 0;
}

/* run_host_fd: O_PATH of run_host_dir, opened before we became root of a user namespace (see there). */
static int setup_run(int root_fd, const char *run_host_dir, int run_host_fd, const char **ret_step)
{
        static const char *const run_opts[] = { "mode=755", "size=20%", "nr_inodes=800k", NULL };
        int r;

        _cleanup_close_ int target = open_target(root_fd, "run", false);
        if (target < 0)
                return fail(ret_step, target, "open %s", "/run");
        _cleanup_close_ int run_fd = fs_create("tmpfs", run_opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
        if (run_fd < 0)
                return fail(ret_step, run_fd, "mount %s", "/run");
        if (run_host_dir && mkdirat(run_fd, "host", 0755) < 0)
                return fail(ret_step, -errno, "mkdir %s", "/run/host");
        r = attach(run_fd, target);
        if (r < 0)
                return fail(ret_step, r, "mount %s", "/run");

        if (run_host_dir) {
                /* Read-only is fine for the notify socket: connecting needs no write access to the fs. */
                _cleanup_close_ int host = openat(run_fd, "host", O_PATH | O_NOFOLLOW | O_CLOEXEC);
                if (host < 0)
                        return fail(ret_step, -errno, "open %s", "/run/host");
                r = bind_mount(run_host_fd, "", host, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
                                                                     MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
                if (r < 0)
                        return fail(ret_step, r, "bind %s", "/run/host");
        }
        return 0;
}

static int bind_rootfs(const char *root, const char **ret_step)
{
        /* Slave, not private: unmounts on the host (a removed USB disk, a stopped bind source) still
         * reach us, but nothing we mount leaks back to the host. */
        if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
                return fail(ret_step, -errno, "%s", "make / a slave mount");

        _cleanup_close_ int tree_fd = bind_clone(AT_FDCWD, root, true, 0);
        if (tree_fd < 0)
                return fail(ret_step, tree_fd, "bind %s", root);
        /* pivot_root() needs the new root to be a mount point: attach the copy over itself. */
        if (move_mount(tree_fd, "", AT_FDCWD, root, MOVE_MOUNT_F_EMPTY_PATH) < 0)
                return fail(ret_step, -errno, "bind %s", root);
        return TAKE_FD(tree_fd);
}

/* PrivateUsers=: the parent made the idmapped tree (userns_idmapped_tree()); attach it over the rootfs. */
static int attach_idmapped_root(const ContainerConfig *c, const char **ret_step)
{
        if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
                return fail(ret_step, -errno, "%s", "make / a slave mount");
        _cleanup_close_ int tree_fd = fcntl(c->root_tree_fd, F_DUPFD_CLOEXEC, 3);
        if (tree_fd < 0)
                return fail(ret_step, -errno, "%s", "take the idmapped rootfs");
        if (move_mount(tree_fd, "", AT_FDCWD, c->root, MOVE_MOUNT_F_EMPTY_PATH) < 0)
                return fail(ret_step, -errno, "attach the idmapped rootfs at %s", c->root);
        return TAKE_FD(tree_fd);
}

int mount_setup_guest(const ContainerConfig *c, int *ret_root_fd, const char **ret_step)
{
        int r;

        _cleanup_close_ int root_fd = c->uid_range > 0 ? attach_idmapped_root(c, ret_step)
                                      : c->ephemeral  ? ephemeral_mount_root(c->root, ret_step)
                                                      : bind_rootfs(c->root, ret_step);
        if (root_fd < 0)
                return root_fd;
        /* Host paths are looked up while we are still the daemon's uid: as root of a user namespace we
         * could not search a 0700 runtime or image directory (its owner is not mapped there). */
        _cleanup_close_ int run_host_fd = -1;
        if (c->run_host_dir) {
                run_host_fd = open(c->run_host_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (run_host_fd < 0)
                        return fail(ret_step, -errno, "open %s", c->run_host_dir);
        }
        /* From here on, files are created in our own tmpfs and the idmapped root, which needs an fsuid
         * that is mapped in the user namespace. */
        if (c->uid_range > 0) {
                r = userns_become_root();
                if (r < 0)
                        return fail(ret_step, r, "%s", "become root in the user namespace");
        }
        /* The overlay's upper layer is a tmpfs of the guest's user namespace, made as its root. */
        if (c->uid_range > 0 && c->ephemeral) {
                int overlay_fd = ephemeral_mount_over(root_fd, ret_step);
                if (overlay_fd < 0)
                        return overlay_fd;
                safe_close(root_fd);
                root_fd = overlay_fd;
        }

        r = setup_proc(root_fd, c->private_network, ret_step);
        if (r < 0)
                return r;
        r = setup_sys(root_fd, c->uid_range > 0 && !c->private_network, ret_step);
        if (r < 0)
                return r;
        r = setup_dev(root_fd, c->console_path, c->uid_range > 0, ret_step);
        if (r < 0)
                return r;
        r = setup_run(root_fd, c->run_host_dir, run_host_fd, ret_step);
        if (r < 0)
                return r;
        /* After /dev and /run, so that binds below them land on top of their tmpfs. */
        r = binds_mount(root_fd, c->binds, c->n_binds, c->bind_tree_fds, ret_step);
        if (r < 0)
                return r;

        /* Last, so that missing mount points could still be created above. Only the root mount: /dev,
         * /run and the rest stay writable. */
        if (c->read_only) {
                struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
                if (mount_setattr(root_fd, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0)
                        return fail(ret_step, -errno, "%s", "make the root read-only");
        }

        *ret_root_fd = TAKE_FD(root_fd);
        return 0;
}

int mount_pivot_root(int root_fd)
{
        if (fchdir(root_fd) < 0)
                return -errno;
        if (syscall(SYS_pivot_root, ".", ".") < 0)
                return -errno;
        /* The old root now sits on top of the new one at "."; detach it and everything below it. */
        if (umount2(".", MNT_DETACH) < 0)
                return -errno;
        if (chdir("/") < 0)
                return -errno;
        return 0;
}
