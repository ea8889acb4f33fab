/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "binds.h"
#include "bus-names.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "mount-setup.h"
#include "util.h"


/* Step names carry paths; the child that formats them is single-threaded. */
static char step_buf[PATH_MAX + 64];

static int fail(const char **ret_step, int r, const char *fmt, const char *arg)
{
        snprintf(step_buf, sizeof step_buf, fmt, arg);
        *ret_step = step_buf;
        return r;
}

int binds_check_sources(const char *machine, const BindMount *binds, size_t n, sd_bus_error *error)
{
        for (size_t i = 0; i < n; i++) {
                struct stat st;
                if (stat(binds[i].source, &st) < 0)
                        return sd_bus_error_setf(error, MM_ERROR_INVALID_ARGUMENT, "%s: bind source %s: %s", machine,
                                                 binds[i].source, strerror(errno));
        }
        return 0;
}

static int bind_append(Settings *s, const char *source, const char *destination, int read_only,
                       sd_bus_error *error)
{
        _cleanup_free_ char *spec = NULL;
        BindMount b;

        if (asprintf(&spec, "%s:%s", source, *destination ? destination : source) < 0)
                return -ENOMEM;
        if (parse_bind(spec, read_only, &b) < 0)
                return sd_bus_error_setf(error, MM_ERROR_INVALID_ARGUMENT,
                                         "Invalid bind mount '%s' -> '%s': absolute paths without '..' or ':' "
                                         "expected.", source, destination);
        BindMount *l = reallocarray(s->binds, s->n_binds + 1, sizeof *l);
        if (!l) {
                bind_mount_done(&b);
                return -ENOMEM;
        }
        l[s->n_binds++] = b;
        s->binds = l;
        return 0;
}

int bus_read_binds(sd_bus_message *message, Settings *s, sd_bus_error *error)
{
        const char *source, *destination;
        int read_only, r;

        if ((r = sd_bus_message_enter_container(message, 'v', "a(ssb)")) < 0 ||
            (r = sd_bus_message_enter_container(message, 'a', "(ssb)")) < 0)
                return r;
        while ((r = sd_bus_message_read(message, "(ssb)", &source, &destination, &read_only)) > 0)
                if ((r = bind_append(s, source, destination, read_only, error)) < 0)
                        return r;
        if (r < 0 || (r = sd_bus_message_exit_container(message)) < 0)
                return r;
        return sd_bus_message_exit_container(message);
}

/* ---- child side ---- */

/* Opens `path` (relative, inside root_fd) as a directory, or as a file when is_file, creating it when
 * missing. mkdirat()/mknodat() only ever get a single name below a parent that was itself resolved in the
 * root, so a symlink in the guest cannot point them outside of it. */
static int open_creating(int root_fd, const char *path, int parent_fd, const char *name, bool is_file)
{
        int flags = O_PATH | (is_file ? 0 : O_DIRECTORY);
        int fd = openat_in_root(root_fd, path, flags);
        if (fd != -ENOENT)
                return fd;
        int r = is_file ? mknodat(parent_fd, name, S_IFREG | 0644, 0) : mkdirat(parent_fd, name, 0755);
        if (r < 0 && errno != EEXIST)
                return -errno;
        return openat_in_root(root_fd, path, flags);
}

/* The mount point for a bind: destination (absolute in the guest), missing parents created. */
static int open_bind_target(int root_fd, const char *destination, bool is_dir)
{
        _cleanup_free_ char *path = calloc(1, strlen(destination) + 1);
        if (!path)
                return -ENOMEM;
        int fd = openat_in_root(root_fd, ".", O_PATH | O_DIRECTORY);
        for (const char *p = destination; fd >= 0;) {
                p += strspn(p, "/");
                size_t n = strcspn(p, "/");
                if (n == 0)
                        return fd; /* "/", or a trailing slash after a directory */
                bool last = p[n + strspn(p + n, "/")] == 0;
                if (*path)
                        strcat(path, "/");
                strncat(path, p, n);
                _cleanup_close_ int parent_fd = fd;
                fd = open_creating(root_fd, path, parent_fd, strndupa(p, n), last && !is_dir);
                p += n;
        }
        return fd;
}

static int bind_one(int root_fd, const BindMount *b, int idmapped_fd, const char **ret_step)
{
        /* Recursive like a plain `mount --rbind`: submounts of the source come along. With a user
         * namespace the parent made the tree (idmapped, read-only already): we could not look the
         * source up ourselves, nor idmap it. */
        _cleanup_close_ int tree_fd = idmapped_fd >= 0 ? fcntl(idmapped_fd, F_DUPFD_CLOEXEC, 3)
                                                       : open_tree(AT_FDCWD, b->source,
                                                                   OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
        if (tree_fd < 0)
                return fail(ret_step, -errno, "bind %s", b->source);

        if (b->read_only && idmapped_fd < 0) {
                /* Every submount too: a read-only bind of /srv must not leave /srv/data writable. */
                struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
                if (mount_setattr(tree_fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0)
                        return fail(ret_step, -errno, "make bind %s read-only", b->source);
        }

        struct stat st;
        if (fstat(tree_fd, &st) < 0)
                return fail(ret_step, -errno, "bind %s", b->source);

        _cleanup_close_ int target = open_bind_target(root_fd, b->destination, S_ISDIR(st.st_mode));
        if (target < 0)
                return fail(ret_step, target, "create bind destination %s", b->destination);
        if (move_mount(tree_fd, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
                return fail(ret_step, -errno, "bind onto %s", b->destination);
        return 0;
}

int binds_mount(int root_fd, const BindMount *binds, size_t n, const int *idmapped_fds, const char **ret_step)
{
        for (size_t i = 0; i < n; i++) {
                int r = bind_one(root_fd, &binds[i], idmapped_fds ? idmapped_fds[i] : -1, ret_step);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Upper and work directories on a tmpfs; the upper one gets the image root's owner and mode, which the
 * overlay's root directory shows. Attached over root, where only this mount namespace sees it. */
static int ephemeral_upper(const char *root, const struct stat *image_st)
{
        _cleanup_close_ int fs_fd = fsopen("tmpfs", FSOPEN_CLOEXEC);
        if (fs_fd < 0)
                return -errno;
        if (fsconfig(fs_fd, FSCONFIG_SET_STRING, "mode", "0700", 0) < 0 ||
            fsconfig(fs_fd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
                return -errno;
        _cleanup_close_ int mnt_fd = fsmount(fs_fd, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
        if (mnt_fd < 0)
                return -errno;
        if (mkdirat(mnt_fd, "upper", image_st->st_mode & 07777) < 0 || mkdirat(mnt_fd, "work", 0700) < 0)
                return -errno;
        if (fchownat(mnt_fd, "upper", image_st->st_uid, image_st->st_gid, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        if (move_mount(mnt_fd, "", AT_FDCWD, root, MOVE_MOUNT_F_EMPTY_PATH) < 0)
                return -errno;
        return 0;
}

static int overlay_create(const char *lower, const char *root)
{
        _cleanup_free_ char *upper = NULL, *work = NULL;
        if (asprintf(&upper, "%s/upper", root) < 0 || asprintf(&work, "%s/work", root) < 0)
                return -ENOMEM;

        _cleanup_close_ int fs_fd = fsopen("overlay", FSOPEN_CLOEXEC);
        if (fs_fd < 0)
                return -errno;
        if (fsconfig(fs_fd, FSCONFIG_SET_STRING, "lowerdir", lower, 0) < 0 ||
            fsconfig(fs_fd, FSCONFIG_SET_STRING, "upperdir", upper, 0) < 0 ||
            fsconfig(fs_fd, FSCONFIG_SET_STRING, "workdir", work, 0) < 0 ||
            fsconfig(fs_fd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
                return -errno;
        int mnt_fd = fsmount(fs_fd, FSMOUNT_CLOEXEC, 0);
        return mnt_fd < 0 ? -errno : mnt_fd;
}

int ephemeral_mount_root(const char *root, const char **ret_step)
{
        int r;

        if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
                return fail(ret_step, -errno, "%s", "make / a slave mount");

        /* The image stays reachable through this fd once the tmpfs covers its path. */
        _cleanup_close_ int image_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        struct stat st;
        if (image_fd < 0 || fstat(image_fd, &st) < 0)
                return fail(ret_step, -errno, "open %s", root);

        r = ephemeral_upper(root, &st);
        if (r < 0)
                return fail(ret_step, r, "%s", "mount the ephemeral tmpfs");

        char lower[64];
        snprintf(lower, sizeof lower, "/proc/self/fd/%d", image_fd);
        _cleanup_close_ int overlay_fd = overlay_create(lower, root);
        if (overlay_fd < 0)
                return fail(ret_step, overlay_fd, "mount overlayfs on %s", root);
        /* pivot_root() needs the new root to be a mount point. */
        if (move_mount(overlay_fd, "", AT_FDCWD, root, MOVE_MOUNT_F_EMPTY_PATH) < 0)
                return fail(ret_step, -errno, "mount overlayfs on %s", root);
        return TAKE_FD(overlay_fd);
}

int ephemeral_mount_over(int lower_fd, const char **ret_step)
{
        struct stat st;
        if (fstat(lower_fd, &st) < 0)
                return fail(ret_step, -errno, "%s", "stat the idmapped rootfs");

        /* Detached: nothing but the overlay ever sees the upper layer. Created in our user namespace, so
         * its files carry the guest's ids like the tmpfs mounts of /run and /tmp. */
        _cleanup_close_ int fs_fd = fsopen("tmpfs", FSOPEN_CLOEXEC);
        if (fs_fd < 0)
                return fail(ret_step, -errno, "%s", "mount the ephemeral tmpfs");
        if (fsconfig(fs_fd, FSCONFIG_SET_STRING, "mode", "0700", 0) < 0 ||
            fsconfig(fs_fd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
                return fail(ret_step, -errno, "%s", "mount the ephemeral tmpfs");
        _cleanup_close_ int tmp_fd = fsmount(fs_fd, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
        if (tmp_fd < 0)
                return fail(ret_step, -errno, "%s", "mount the ephemeral tmpfs");
        if (mkdirat(tmp_fd, "upper", st.st_mode & 07777) < 0 || mkdirat(tmp_fd, "work", 0700) < 0 ||
            fchownat(tmp_fd, "upper", st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
                return fail(ret_step, -errno, "%s", "populate the ephemeral tmpfs");

        char lower[64], upper[64], work[64];
        snprintf(lower, sizeof lower, "/proc/self/fd/%d", lower_fd);
        snprintf(upper, sizeof upper, "/proc/self/fd/%d/upper", tmp_fd);
        snprintf(work, sizeof work, "/proc/self/fd/%d/work", tmp_fd);
        _cleanup_close_ int ovl_fs_fd = fsopen("overlay", FSOPEN_CLOEXEC);
        if (ovl_fs_fd < 0)
                return fail(ret_step, -errno, "%s", "mount the ephemeral overlayfs");
        /* userxattr: trusted.* xattrs (overlayfs' default for its own bookkeeping) cannot be set from a
         * user namespace; user.overlay.* can (tmpfs has user xattrs since 6.6). */
        if (fsconfig(ovl_fs_fd, FSCONFIG_SET_STRING, "lowerdir", lower, 0) < 0 ||
            fsconfig(ovl_fs_fd, FSCONFIG_SET_STRING, "upperdir", upper, 0) < 0 ||
            fsconfig(ovl_fs_fd, FSCONFIG_SET_STRING, "workdir", work, 0) < 0 ||
            fsconfig(ovl_fs_fd, FSCONFIG_SET_FLAG, "userxattr", NULL, 0) < 0 ||
            fsconfig(ovl_fs_fd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
                return fail(ret_step, -errno, "%s", "mount the ephemeral overlayfs");
        _cleanup_close_ int overlay_fd = fsmount(ovl_fs_fd, FSMOUNT_CLOEXEC, 0);
        if (overlay_fd < 0)
                return fail(ret_step, -errno, "%s", "mount the ephemeral overlayfs");
        /* On top of the idmapped tree, which stays the mount point pivot_root() needs. */
        if (move_mount(overlay_fd, "", lower_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
                return fail(ret_step, -errno, "%s", "attach the ephemeral overlayfs");
        return TAKE_FD(overlay_fd);
}
