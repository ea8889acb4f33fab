/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* CopyToMachine / CopyFromMachine; see copy.h.
 *
 * image.c's copy_tree_fd() is not used: it sets modes and makes hardlinks through multi-component paths
 * (/proc/self/fd/N/NAME with chmod(), linkat() relative to the copy's root), which follow symlinks. Fine
 * for an image at rest, not for a tree a running guest can change under us. The copier here only touches
 * what it opened itself with O_NOFOLLOW, through fds. It does not keep hardlinks (each link becomes its
 * own file) and copies a mount point below the source as an empty directory. */
#include "copy.h"
#include "bus-names.h"

#include <fcntl.h>
#include <linux/securebits.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>

#include "container.h"
#include "image.h"
#include "machine.h"
#include "names.h"
#include "operation.h"
#include "util.h"


typedef struct CopyJob {
        int src_fd;        /* O_PATH: the source, resolved */
        int dst_parent_fd; /* O_PATH: the directory the copy is created in */
        char *dst_name;    /* a single name below dst_parent_fd */
        char *dst_path;    /* for messages */
        char *machine;
        bool to_guest;
        uint32_t uid_shift, uid_range; /* the machine's PrivateUsers= range, 0 = none */
} CopyJob;

/* Owners under PrivateUsers=: uid N in the guest is N on the host, as on the idmapped rootfs (where
 * the daemon, outside the guest's user namespace, sees it as uid_shift + N). Ids the other side cannot
 * represent (>= the range on the host, unmapped ones in the guest) become nobody (65534), which is what
 * the guest's kernel shows for an unmapped id. Set in the worker only. */
static uint32_t id_shift, id_range;
static bool id_to_guest;

#define NOBODY 65534U

/* A guest can make a chain of directories deep enough to exhaust the worker's stack and fds (one open
 * directory per level); no real tree is this deep. */
#define COPY_DEPTH_MAX 1024U

static uint32_t map_id(uint32_t id)
{
        if (id_range == 0)
                return id;
        if (id_to_guest)
                return id_shift + (id < id_range ? id : NOBODY);
        return id >= id_shift && id - id_shift < id_range ? id - id_shift : NOBODY;
}

static void copy_job_done(CopyJob *j)
{
        safe_close(j->src_fd);
        safe_close(j->dst_parent_fd);
        free(j->dst_name);
        free(j->dst_path);
        free(j->machine);
}

static int copy_error(ImageError *e, int r, const char *fmt, ...) _printf_(3, 4);
static int copy_error(ImageError *e, int r, const char *fmt, ...)
{
        if (r >= 0)
                r = -EIO;
        if (!e->text[0]) {
                va_list ap;
                va_start(ap, fmt);
                int n = vsnprintf(e->text, sizeof e->text, fmt, ap);
                va_end(ap);
                if (n >= 0 && (size_t) n < sizeof e->text)
                        snprintf(e->text + n, sizeof e->text - (size_t) n, ": %s", strerror(-r));
        }
        return r;
}

/* ---- the worker: an fd-only tree copy ---- */

static int copy_data(int in, int out)
{
        for (;;) {
                ssize_t n = copy_file_range(in, NULL, out, NULL, 1U << 30, 0);
                if (n == 0)
                        return 0;
                if (n > 0)
                        continue;
                if (errno != EXDEV && errno != EINVAL && errno != EOPNOTSUPP && errno != ENOSYS)
                        return -errno;
                break; /* nothing written yet by copy_file_range() in these cases: plain copy */
        }
        char buf[64 * 1024];
        for (;;) {
                ssize_t n = read(in, buf, sizeof buf);
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return 0;
                for (ssize_t w = 0; w < n;) {
                        ssize_t k = write(out, buf + w, (size_t) (n - w));
                        if (k < 0)
                                return -errno;
                        w += k;
                }
        }
}

static int copy_xattrs_fd(int in, int out)
{
        ssize_t n = flistxattr(in, NULL, 0);
        if (n <= 0)
                return n < 0 && errno != EOPNOTSUPP ? -errno : 0;
        _cleanup_free_ char *names = malloc((size_t) n);
        if (!names)
                return -ENOMEM;
        if ((n = flistxattr(in, names, (size_t) n)) < 0)
                return -errno;
        for (char *k = names; k < names + n; k += strlen(k) + 1) {
                ssize_t l = fgetxattr(in, k, NULL, 0);
                if (l < 0)
                        return -errno;
                _cleanup_free_ char *v = malloc((size_t) l + 1);
                if (!v)
                        return -ENOMEM;
                if ((l = fgetxattr(in, k, v, (size_t) l)) < 0)
                        return -errno;
                if (fsetxattr(out, k, v, (size_t) l, 0) < 0 && errno != EOPNOTSUPP)
                        return -errno;
        }
        return 0;
}

/* Owner before mode (chown clears set-id bits), mode before xattrs (an ACL sets group bits), times last. */
static int copy_metadata_fd(int in, int out, const struct stat *st)
{
        struct timespec ts[2] = { st->st_atim, st->st_mtim };
        if (fchown(out, map_id(st->st_uid), map_id(st->st_gid)) < 0 || fchmod(out, st->st_mode & 07777) < 0)
                return -errno;
        int r = copy_xattrs_fd(in, out);
        if (r < 0)
                return r;
        return futimens(out, ts) < 0 ? -errno : 0;
}

/* Symlinks, fifos, sockets, device nodes: created with their mode, then owner and times set without ever
 * following the name. */
static int copy_special(int sdfd, const char *sname, int ddfd, const char *name, const struct stat *st)
{
        if (S_ISLNK(st->st_mode)) {
                char target[PATH_MAX];
                ssize_t n = readlinkat(sdfd, sname, target, sizeof target);
                if (n < 0)
                        return -errno;
                if ((size_t) n >= sizeof target)
                        return -ENAMETOOLONG;
                target[n] = 0;
                if (symlinkat(target, ddfd, name) < 0)
                        return -errno;
        } else if (mknodat(ddfd, name, st->st_mode & (S_IFMT | 07777), st->st_rdev) < 0)
                return -errno;

        struct timespec ts[2] = { st->st_atim, st->st_mtim };
        if (fchownat(ddfd, name, map_id(st->st_uid), map_id(st->st_gid), AT_SYMLINK_NOFOLLOW) < 0 ||
            utimensat(ddfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        return 0;
}

/* in: opened for reading; O_NONBLOCK so a fifo swapped in for a file cannot block the worker. */
static int copy_regular(int in, int ddfd, const char *name)
{
        struct stat st;
        if (fstat(in, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EAGAIN; /* changed under us */
        _cleanup_close_ int out = openat(ddfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (out < 0)
                return -errno;
        int r = copy_data(in, out);
        return r < 0 ? r : copy_metadata_fd(in, out, &st);
}

static int reopen(int path_fd, int flags)
{
        char p[64];
        snprintf(p, sizeof p, "/proc/self/fd/%d", path_fd);
        int fd = open(p, flags | O_CLOEXEC | O_NOCTTY);
        return fd < 0 ? -errno : fd;
}

static int copy_dir_contents(int sdfd, int ddfd, const char *rel, unsigned depth, ImageError *e);

static int copy_entry(int sdfd, dev_t dev, int ddfd, const char *name, const char *rel, unsigned depth,
                      ImageError *e)
{
        struct stat st;
        if (fstatat(sdfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;

        if (S_ISREG(st.st_mode)) {
                /* Opened as what fstatat() saw only: a device swapped in meanwhile must not see its driver's
                 * open() from us, outside the guest's device policy. */
                _cleanup_close_ int p = openat(sdfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                if (p < 0)
                        return -errno;
                if (fstat(p, &st) < 0)
                        return -errno;
                if (!S_ISREG(st.st_mode))
                        return -EAGAIN; /* changed under us */
                _cleanup_close_ int in = reopen(p, O_RDONLY | O_NONBLOCK);
                return in < 0 ? in : copy_regular(in, ddfd, name);
        }
        if (!S_ISDIR(st.st_mode))
                return copy_special(sdfd, name, ddfd, name, &st);

        _cleanup_close_ int s = openat(sdfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (s < 0)
                return -errno;
        if (fstat(s, &st) < 0)
                return -errno;
        if (mkdirat(ddfd, name, 0700) < 0)
                return -errno;
        _cleanup_close_ int d = openat(ddfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (d < 0)
                return -errno;
        if (st.st_dev == dev) { /* else a mount point: copied as an empty directory */
                int r = copy_dir_contents(openat(s, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), d, rel, depth + 1, e);
                if (r < 0)
                        return r;
        }
        /* Last: copying into the directory changed its times. */
        return copy_metadata_fd(s, d, &st);
}

/* Takes sdfd. */
static int copy_dir_contents(int sdfd, int ddfd, const char *rel, unsigned depth, ImageError *e)
{
        struct stat st;
        if (sdfd < 0)
                return copy_error(e, -errno, "open %s", *rel ? rel : ".");
        if (depth > COPY_DEPTH_MAX) {
                safe_close(sdfd);
                return copy_error(e, -ELOOP, "copy %s: more than %u directories deep", rel, COPY_DEPTH_MAX);
        }
        if (fstat(sdfd, &st) < 0) {
                safe_close(sdfd);
                return copy_error(e, -errno, "stat %s", *rel ? rel : ".");
        }
        _cleanup_closedir_ DIR *dir = fdopendir(sdfd);
        if (!dir) {
                safe_close(sdfd);
                return copy_error(e, -errno, "read %s", *rel ? rel : ".");
        }
        struct dirent *de;
        errno = 0;
        while ((de = readdir(dir))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                _cleanup_free_ char *child = NULL;
                if (asprintf(&child, "%s%s%s", rel, *rel ? "/" : "", de->d_name) < 0)
                        return -ENOMEM;
                int r = copy_entry(dirfd(dir), st.st_dev, ddfd, de->d_name, child, depth, e);
                if (r < 0)
                        return copy_error(e, r, "copy %s", child);
                errno = 0;
        }
        return errno ? copy_error(e, -errno, "read %s", *rel ? rel : ".") : 0;
}

static int copy_work(void *userdata, ImageError *e)
{
        CopyJob *j = userdata;
        struct stat st;
        int r;

        umask(0); /* modes are set as the source has them */
        id_shift = j->uid_shift;
        id_range = j->uid_range;
        id_to_guest = j->to_guest;
        if (j->uid_range > 0 && j->to_guest) {
                /* Creating through the idmapped rootfs (or on a tmpfs of the guest) needs an fsuid that
                 * is mapped there: the guest's root. Without the fixup, changing the fsuid from 0 would
                 * drop CAP_CHOWN, CAP_DAC_OVERRIDE and the rest that the copy needs. */
                if (prctl(PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP, 0, 0, 0) < 0)
                        return copy_error(e, -errno, "%s: keep capabilities", j->machine);
                (void) setfsgid(j->uid_shift);
                (void) setfsuid(j->uid_shift);
                if ((uint32_t) setfsuid((uid_t) -1) != j->uid_shift || (uint32_t) setfsgid((gid_t) -1) != j->uid_shift)
                        return copy_error(e, -EPERM, "%s: act as the guest's root", j->machine);
        }
        if (fstat(j->src_fd, &st) < 0)
                return copy_error(e, -errno, "%s: stat the source", j->machine);

        if (S_ISREG(st.st_mode)) {
                _cleanup_close_ int in = reopen(j->src_fd, O_RDONLY | O_NONBLOCK);
                r = in < 0 ? in : copy_regular(in, j->dst_parent_fd, j->dst_name);
        } else if (S_ISDIR(st.st_mode)) {
                _cleanup_close_ int in = reopen(j->src_fd, O_RDONLY | O_DIRECTORY);
                if (in < 0)
                        return copy_error(e, in, "%s: open the source", j->machine);
                r = mkdirat(j->dst_parent_fd, j->dst_name, 0700) < 0 ? -errno : 0;
                _cleanup_close_ int d = r < 0 ? -1
                                              : openat(j->dst_parent_fd, j->dst_name,
                                                       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (r >= 0 && d < 0)
                        r = -errno;
                if (r >= 0)
                        r = copy_dir_contents(openat(in, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), d, "", 0, e);
                if (r >= 0)
                        r = copy_metadata_fd(in, d, &st);
        } else
                r = copy_special(j->src_fd, "", j->dst_parent_fd, j->dst_name, &st);
        if (r < 0) {
                /* The innermost failure says which file; put the machine and the destination first. */
                _cleanup_free_ char *inner = e->text[0] ? strdup(e->text) : NULL;
                e->text[0] = 0;
                if (!inner)
                        return copy_error(e, r, "%s: copy to %s", j->machine, j->dst_path);
                snprintf(e->text, sizeof e->text, "%s: copy to %s: %s", j->machine, j->dst_path, inner);
        }
        return r < 0 ? r : 0;
}

/* ---- the daemon side: checks, then the worker ---- */

static bool path_ok(const char *p)
{
        return p && p[0] == '/' && strlen(p) < PATH_MAX;
}

/* Splits dst into the directory to create in and the new name; "DIR/" means DIR/basename(src). */
static int split_destination(const char *src, const char *dst, char **ret_dir, char **ret_name)
{
        size_t len = strlen(dst);
        _cleanup_free_ char *dir = NULL, *name = NULL;
        if (dst[len - 1] == '/') {
                const char *b = src + strlen(src);
                while (b > src && b[-1] == '/')
                        b--;
                const char *e = b;
                while (b > src && b[-1] != '/')
                        b--;
                name = strndup(b, (size_t) (e - b));
                dir = strdup(dst);
        } else {
                const char *slash = strrchr(dst, '/');
                name = strdup(slash + 1);
                dir = slash == dst ? strdup("/") : strndup(dst, (size_t) (slash - dst));
        }
        if (!dir || !name)
                return -ENOMEM;
        if (!*name || streq(name, ".") || streq(name, ".."))
                return -EINVAL;
        *ret_dir = TAKE_PTR(dir);
        *ret_name = TAKE_PTR(name);
        return 0;
}

static int open_host(const char *path, int flags)
{
        int fd = open(path, flags | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

static int copy_prepare(Machine *machine, bool to_guest, const char *src, const char *dst, CopyJob *j,
                        sd_bus_error *error)
{
        const char *name = machine->name;
        _cleanup_free_ char *dir = NULL;
        _cleanup_close_ int root_fd = container_open_root(machine->leader, machine->leader_pidfd);
        if (root_fd < 0)
                return sd_bus_error_set_errnof(error, root_fd, "%s: open the guest's root: %m", name);

        /* The source's last component is followed too, inside the guest's root for a guest path. */
        j->src_fd = to_guest ? open_host(src, O_PATH) : openat_in_root(root_fd, src, O_PATH);
        if (j->src_fd < 0)
                return sd_bus_error_setf(error, MM_ERROR_INVALID_ARGUMENT, "%s: copy source %s%s: %s", name, src,
                                         to_guest ? "" : " (in the guest)", strerror(-j->src_fd));

        if (split_destination(src, dst, &dir, &j->dst_name) < 0)
                return sd_bus_error_setf(error, MM_ERROR_INVALID_ARGUMENT, "%s: invalid copy destination %s", name,
                                         dst);
        j->dst_parent_fd = to_guest ? openat_in_root(root_fd, dir, O_PATH | O_DIRECTORY)
                                    : open_host(dir, O_PATH | O_DIRECTORY);
        if (j->dst_parent_fd < 0)
                return sd_bus_error_setf(error, MM_ERROR_INVALID_ARGUMENT, "%s: copy destination directory %s%s: %s",
                                         name, dir, to_guest ? " (in the guest)" : "", strerror(-j->dst_parent_fd));
        struct stat st;
        if (fstatat(j->dst_parent_fd, j->dst_name, &st, AT_SYMLINK_NOFOLLOW) >= 0)
                return sd_bus_error_setf(error, MM_ERROR_INVALID_ARGUMENT, "%s: copy destination %s/%s exists%s",
                                         name, streq(dir, "/") ? "" : dir, j->dst_name,
                                         to_guest ? " in the guest" : "");
        j->to_guest = to_guest;
        j->uid_shift = machine->uid_shift;
        j->uid_range = machine->uid_range;
        if (asprintf(&j->dst_path, "%s%s%s", dir, streq(dir, "/") ? "" : "/", j->dst_name) < 0 ||
            !(j->machine = strdup(name)))
                return -ENOMEM;
        return 0;
}

static int method_copy(sd_bus_message *message, Manager *m, bool to_guest, sd_bus_error *error)
{
        const char *name, *src, *dst;
        int r = bus_check_root(message, error);
        if (r < 0)
                return r;
        if ((r = sd_bus_message_read(message, "sss", &name, &src, &dst)) < 0)
                return r;
        if (!machine_name_is_valid(name))
                return sd_bus_error_setf(error, MM_ERROR_INVALID_NAME, "Invalid machine name '%s'.", name);
        Machine *machine = manager_get_listed_machine(m, name);
        if (!machine)
                return sd_bus_error_setf(error, MM_ERROR_NO_SUCH_MACHINE, "No machine '%s' is running.", name);
        if (!*dst)
                dst = src;
        if (!path_ok(src) || !path_ok(dst))
                return sd_bus_error_setf(error, MM_ERROR_INVALID_ARGUMENT,
                                         "%s: copy paths must be absolute: '%s', '%s'", name, src, dst);

        CopyJob j = { .src_fd = -1, .dst_parent_fd = -1 };
        r = copy_prepare(machine, to_guest, src, dst, &j, error);
        if (r >= 0) {
                r = operation_start(m, message, copy_work, &j, NULL, NULL, 0);
                if (r < 0)
                        r = sd_bus_error_set_errnof(error, r, "%s: start the copy: %m", name);
        }
        /* The worker has its own copy of the job (it is a fork). */
        copy_job_done(&j);
        return r;
}

int method_copy_to_machine(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
        return method_copy(message, userdata, true, error);
}

int method_copy_from_machine(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
        return method_copy(message, userdata, false, error);
}
