/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The image model: listing, usage, clone (tree copy), rename, remove, read-only, locks. No bus code here, so
 * the functions can run in a forked worker and in tests. */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/fs.h>
#include <search.h>
#include <stdarg.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>

#include "image.h"
#include "log.h"
#include "names.h"
#include "util.h"

static int image_error(ImageError *e, int r, const char *fmt, ...) _printf_(3, 4);
static int image_error(ImageError *e, int r, const char *fmt, ...)
{
        if (r >= 0)
                r = -EIO;
        if (e && !e->text[0]) {
                va_list ap;
                va_start(ap, fmt);
                int n = vsnprintf(e->text, sizeof e->text, fmt, ap);
                va_end(ap);
                if (n >= 0 && (size_t)n < sizeof e->text)
                        snprintf(e->text + n, sizeof e->text - (size_t)n, ": %s", strerror(-r));
        }
        return r;
}

Image *image_free(Image *i)
{
        if (!i)
                return NULL;
        free(i->name);
        free(i->path);
        free(i);
        return NULL;
}

void image_list_free(Image **l, size_t n)
{
        for (size_t i = 0; l && i < n; i++)
                image_free(l[i]);
        free(l);
}

static int join_path(const char *dir, const char *name, const char *suffix, char **ret)
{
        return asprintf(ret, "%s/%s%s", dir, name, strempty(suffix)) < 0 ? -ENOMEM : 0;
}

/* ---- hardlink bookkeeping: a tsearch tree of inodes seen, with where the copy of each went ---- */

typedef struct InodeSeen {
        ino_t ino;
        char *dst_rel; /* NULL when only counting */
} InodeSeen;

static int inode_compare(const void *a, const void *b)
{
        ino_t x = ((const InodeSeen *)a)->ino, y = ((const InodeSeen *)b)->ino;
        return x < y ? -1 : x > y;
}

static void inode_free(void *p)
{
        InodeSeen *i = p;
        free(i->dst_rel);
        free(i);
}

/* Returns the entry already recorded for ino, or NULL after recording it (taking dst_rel). */
static InodeSeen *inode_remember(void **tree, ino_t ino, char *dst_rel, int *ret)
{
        InodeSeen key = {.ino = ino};
        InodeSeen **found = tfind(&key, tree, inode_compare);
        *ret = 0;
        if (found) {
                free(dst_rel);
                return *found;
        }
        InodeSeen *n = malloc(sizeof *n);
        if (!n || !tsearch(n, tree, inode_compare)) {
                free(n);
                free(dst_rel);
                *ret = -ENOMEM;
                return NULL;
        }
        *n = (InodeSeen){.ino = ino, .dst_rel = dst_rel};
        return NULL;
}

static void inodes_free(void **tree)
{
        tdestroy(*tree, inode_free);
        *tree = NULL;
}

/* ---- walking a tree without recursion ---- */

/* One directory being read: its fd keeps the position, the buffer what getdents64 returned past it. */
typedef struct WalkLevel {
        int fd;
        size_t pos, len;
        char name[NAME_MAX + 1]; /* in the directory above */
        char buf[4096];
} WalkLevel;

/* The directories open from the top down to the one being read: one fd and one WalkLevel each, at most
 * `max` of them, however deep the tree is. */
typedef struct TreeStack {
        WalkLevel *levels;
        unsigned depth; /* levels open */
        unsigned max;
        dev_t dev; /* of the top: a directory of another filesystem is never entered */
} TreeStack;

/* A name that vanished or changed type since it was listed: a running guest's tree moves under us. */
static bool tree_raced(int err)
{
        return err == ENOENT || err == ENOTDIR || err == ELOOP || err == ESTALE;
}

static void tree_pop(TreeStack *t)
{
        safe_close(t->levels[--t->depth].fd);
}

static void tree_close(TreeStack *t)
{
        while (t->depth > 0)
                tree_pop(t);
        t->levels = mfree(t->levels);
}

/* 1 when entered, 0 when it is no directory of this filesystem any more. */
static int tree_push(TreeStack *t, int parent, const char *name)
{
        struct stat st;
        /* O_DIRECTORY fails on anything else before it is opened: a FIFO put here meanwhile never blocks. */
        int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
                return tree_raced(errno) ? 0 : -errno;
        if (fstat(fd, &st) < 0) {
                int r = -errno;
                safe_close(fd);
                return r;
        }
        if (st.st_dev != t->dev) {
                safe_close(fd); /* mounted over since the caller's stat */
                return 0;
        }
        WalkLevel *l = &t->levels[t->depth++];
        *l = (WalkLevel){.fd = fd};
        snprintf(l->name, sizeof l->name, "%s", name);
        return 1;
}

/* Calloc'ed pages are only touched as deep as the tree goes. */
static int tree_open(TreeStack *t, int dirfd, unsigned max)
{
        struct stat st;
        *t = (TreeStack){.max = max};
        if (fstat(dirfd, &st) < 0)
                return -errno;
        t->dev = st.st_dev;
        t->levels = calloc(max, sizeof *t->levels);
        if (!t->levels)
                return -ENOMEM;
        /* Our own open file description: reading it never moves the caller's fd. */
        int r = tree_push(t, dirfd, ".");
        if (r <= 0)
                tree_close(t);
        return r < 0 ? r : r == 0 ? -ENOTDIR : 0;
}

/* 1 with the next entry (never . or ..) of the innermost directory; 0 when that directory has ended: it is
 * closed, and t->levels[t->depth].name says which it was; a negative errno. */
static int tree_next(TreeStack *t, struct dirent64 **ret)
{
        for (;;) {
                WalkLevel *l = &t->levels[t->depth - 1];
                if (l->pos >= l->len) {
                        ssize_t n = getdents64(l->fd, l->buf, sizeof l->buf);
                        if (n < 0 && !tree_raced(errno))
                                return -errno;
                        if (n <= 0) {
                                tree_pop(t);
                                return 0;
                        }
                        l->pos = 0;
                        l->len = (size_t)n;
                }
                struct dirent64 *de = (struct dirent64 *)(l->buf + l->pos);
                l->pos += de->d_reclen;
                if (!streq(de->d_name, ".") && !streq(de->d_name, "..")) {
                        *ret = de;
                        return 1;
                }
        }
}

static int tree_fd(TreeStack *t)
{
        return t->levels[t->depth - 1].fd;
}

/* ---- usage ---- */

const char *image_usage_stop_to_string(ImageUsageStop s)
{
        static const char *const table[] = {
            [IMAGE_USAGE_COMPLETE] = "complete",
            [IMAGE_USAGE_TOO_DEEP] = "too many directory levels",
            [IMAGE_USAGE_TOO_MANY_ENTRIES] = "too many entries",
            [IMAGE_USAGE_TOO_MANY_HARDLINKS] = "too many hardlinked files",
            [IMAGE_USAGE_TIMEOUT] = "out of time",
        };
        return (unsigned)s < ELEMENTSOF(table) ? table[s] : "unknown";
}

typedef struct UsageWalk {
        ImageUsageLimits limits;
        TreeStack tree; /* depth_max + 1 levels: the top and every level below it */
        void *seen;     /* InodeSeen: hardlinked inodes counted */
        uint64_t n_seen;
        ImageUsage result;
} UsageWalk;

/* 1 if this inode has been counted at another name already. */
static int usage_seen_before(UsageWalk *w, const struct stat *st)
{
        int r;
        if (S_ISDIR(st->st_mode) || st->st_nlink < 2)
                return 0;
        if (inode_remember(&w->seen, st->st_ino, NULL, &r))
                return 1;
        if (r < 0)
                return r;
        if (++w->n_seen > w->limits.hardlinks_max)
                w->result.stop = IMAGE_USAGE_TOO_MANY_HARDLINKS;
        return 0;
}

static int usage_entry(UsageWalk *w, const char *name)
{
        struct stat st;
        int dirfd = tree_fd(&w->tree);
        if (++w->result.entries > w->limits.entries_max) {
                w->result.stop = IMAGE_USAGE_TOO_MANY_ENTRIES;
                return 0;
        }
        if (w->limits.deadline > 0 && w->result.entries % 1024 == 0 &&
            now_usec(CLOCK_MONOTONIC) > w->limits.deadline) {
                w->result.stop = IMAGE_USAGE_TIMEOUT;
                return 0;
        }
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return tree_raced(errno) ? 0 : -errno;
        if (st.st_dev != w->tree.dev)
                return 0; /* a mount point: not this filesystem */
        int r = usage_seen_before(w, &st);
        if (r != 0)
                return r < 0 ? r : 0;
        w->result.bytes += (uint64_t)st.st_blocks * 512;
        if (!S_ISDIR(st.st_mode))
                return 0;
        if (w->tree.depth == w->tree.max) {
                w->result.stop = IMAGE_USAGE_TOO_DEEP;
                return 0;
        }
        r = tree_push(&w->tree, dirfd, name);
        return r < 0 ? r : 0;
}

int image_usage_at(int dirfd, const ImageUsageLimits *limits, ImageUsage *ret)
{
        static const ImageUsageLimits defaults = {
            .depth_max = IMAGE_DEPTH_MAX,
            .entries_max = IMAGE_USAGE_ENTRIES_MAX,
            .hardlinks_max = IMAGE_USAGE_HARDLINKS_MAX,
        };
        UsageWalk w = {.limits = limits ? *limits : defaults};
        struct stat st;

        if (fstat(dirfd, &st) < 0)
                return -errno;
        w.result.bytes = (uint64_t)st.st_blocks * 512;
        int r = tree_open(&w.tree, dirfd, w.limits.depth_max + 1);
        while (r >= 0 && w.tree.depth > 0 && w.result.stop == IMAGE_USAGE_COMPLETE) {
                struct dirent64 *de;
                r = tree_next(&w.tree, &de);
                if (r > 0)
                        r = usage_entry(&w, de->d_name);
        }
        tree_close(&w.tree);
        inodes_free(&w.seen);
        if (r < 0)
                return r;
        *ret = w.result;
        return 0;
}

/* ---- removal ---- */

/* The first error is the one reported; removal goes on past it. */
static void keep_first(int *ret, int r)
{
        if (r < 0 && *ret >= 0)
                *ret = r;
}

/* A directory at the depth limit is moved up to the top (a rename: one filesystem) for a later pass. */
static int remove_move_up(TreeStack *t, const char *name, uint64_t *counter)
{
        char up[64];
        for (;;) {
                snprintf(up, sizeof up, ".#deep-%" PRIu64, (*counter)++);
                if (renameat2(tree_fd(t), name, t->levels[0].fd, up, RENAME_NOREPLACE) >= 0)
                        return 1;
                if (errno != EEXIST)
                        return tree_raced(errno) ? 0 : -errno;
        }
}

static int remove_entry(TreeStack *t, const char *name, uint64_t *counter, unsigned *moved)
{
        struct stat st;
        int fd = tree_fd(t);
        if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return tree_raced(errno) ? 0 : -errno;
        if (!S_ISDIR(st.st_mode))
                return unlinkat(fd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
        if (st.st_dev != t->dev)
                return -EBUSY; /* a mount point: never removed through */
        if (t->depth < t->max) {
                int r = tree_push(t, fd, name);
                return r < 0 ? r : 0;
        }
        int r = remove_move_up(t, name, counter);
        if (r > 0)
                (*moved)++;
        return r < 0 ? r : 0;
}

/* One pass over the tree below dirfd; *moved says how many directories went to the top for the next. */
static int remove_pass(int dirfd, uint64_t *counter, unsigned *moved)
{
        TreeStack t;
        int ret = tree_open(&t, dirfd, IMAGE_DEPTH_MAX);
        while (ret >= 0 && t.depth > 0) {
                struct dirent64 *de;
                int r = tree_next(&t, &de);
                if (r < 0) {
                        keep_first(&ret, r);
                        tree_pop(&t); /* skip what cannot be read */
                } else if (r > 0)
                        keep_first(&ret, remove_entry(&t, de->d_name, counter, moved));
                else if (t.depth > 0 && unlinkat(tree_fd(&t), t.levels[t.depth].name, AT_REMOVEDIR) < 0 &&
                         errno != ENOENT)
                        keep_first(&ret, -errno);
        }
        tree_close(&t);
        return ret;
}

/* rm -rf of everything below dirfd, at any depth, with at most IMAGE_DEPTH_MAX fds open; never through a
 * mount point (-EBUSY, what is mounted stays). */
static int remove_below(int dirfd)
{
        uint64_t counter = 0;
        for (;;) {
                unsigned moved = 0;
                int r = remove_pass(dirfd, &counter, &moved);
                if (r < 0 || moved == 0)
                        return r;
        }
}

static int remove_tree(const char *path)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        int r = remove_below(fd);
        if (r >= 0 && rmdir(path) < 0)
                r = -errno;
        return r;
}

/* ---- read-only: FS_IMMUTABLE_FL ---- */

int image_get_read_only_fd(int fd, bool *ret)
{
        int flags;
        if (ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0)
                return errno == ENOTTY ? -EOPNOTSUPP : -errno;
        *ret = flags & FS_IMMUTABLE_FL;
        return 0;
}

static int set_immutable_fd(int fd, bool on)
{
        int flags;
        if (ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0)
                return errno == ENOTTY ? -EOPNOTSUPP : -errno;
        int want = on ? flags | FS_IMMUTABLE_FL : flags & ~FS_IMMUTABLE_FL;
        if (want != flags && ioctl(fd, FS_IOC_SETFLAGS, &want) < 0)
                return errno == ENOTTY ? -EOPNOTSUPP : -errno;
        return 0;
}

static int open_image_dir(const char *image_path, const char *name, char **ret_path)
{
        if (!machine_name_is_valid(name))
                return -EINVAL;
        _cleanup_free_ char *path = NULL;
        if (join_path(image_path, name, NULL, &path) < 0)
                return -ENOMEM;
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOTDIR || errno == ELOOP ? -ENOENT : -errno;
        if (ret_path)
                *ret_path = TAKE_PTR(path);
        return fd;
}

int image_set_read_only(const char *image_path, const char *name, bool read_only)
{
        _cleanup_close_ int fd = open_image_dir(image_path, name, NULL);
        if (fd < 0)
                return fd;
        return set_immutable_fd(fd, read_only);
}

/* ---- load and list ---- */

int image_load(const char *image_path, const char *name, Image **ret)
{
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = open_image_dir(image_path, name, &path);
        if (fd < 0)
                return fd;
        struct statx sx;
        if (statx(fd, "", AT_EMPTY_PATH, STATX_BTIME | STATX_MTIME | STATX_INO, &sx) < 0)
                return -errno;

        _cleanup_image_ Image *i = calloc(1, sizeof *i);
        if (!i || !(i->name = strdup(name)))
                return -ENOMEM;
        i->path = TAKE_PTR(path);
        if (sx.stx_mask & STATX_BTIME)
                i->crtime = (uint64_t)sx.stx_btime.tv_sec * 1000000 + sx.stx_btime.tv_nsec / 1000;
        i->mtime = (uint64_t)sx.stx_mtime.tv_sec * 1000000 + sx.stx_mtime.tv_nsec / 1000;
        if (image_get_read_only_fd(fd, &i->read_only) < 0)
                i->read_only = false; /* no inode flags on this filesystem: never read-only */
        i->dev = makedev(sx.stx_dev_major, sx.stx_dev_minor);
        i->ino = (ino_t)sx.stx_ino;
        *ret = TAKE_PTR(i);
        return 0;
}

static int image_list_append(Image ***l, size_t *n, Image *i)
{
        Image **nl = reallocarray(*l, *n + 1, sizeof **l);
        if (!nl)
                return -ENOMEM;
        nl[(*n)++] = i;
        *l = nl;
        return 0;
}

static int image_compare(const void *a, const void *b)
{
        return strcmp((*(Image *const *)a)->name, (*(Image *const *)b)->name);
}

int image_list(const char *image_path, Image ***ret, size_t *ret_n)
{
        _cleanup_closedir_ DIR *d = opendir(image_path);
        Image **l = NULL;
        size_t n = 0;
        if (!d && errno != ENOENT)
                return -errno;
        for (struct dirent *de; d && (de = readdir(d));) {
                Image *i;
                if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
                        continue;
                if (!machine_name_is_valid(de->d_name)) /* also skips temp dirs and lock files (".#…") */
                        continue;
                int r = image_load(image_path, de->d_name, &i);
                if (r == -ENOENT)
                        continue; /* not a directory, or gone meanwhile */
                if (r >= 0 && (r = image_list_append(&l, &n, i)) < 0)
                        image_free(i);
                if (r < 0) {
                        image_list_free(l, n);
                        return r;
                }
        }
        if (n > 0)
                qsort(l, n, sizeof *l, image_compare);
        *ret = l;
        *ret_n = n;
        return 0;
}

/* ---- tree copy ---- */

typedef struct CopyContext {
        dev_t dev;
        unsigned depth; /* of the directory being copied below the top */
        int dst_root;
        void *links; /* InodeSeen: hardlinked source inodes and the relative path of their first copy */
        ImageError *error;
} CopyContext;

static int copy_range(int in, int out, off_t start, off_t len)
{
        loff_t ioff = start, ooff = start;
        bool fallback = false;
        while (len > 0) {
                ssize_t n = -1;
                if (!fallback) {
                        n = copy_file_range(in, &ioff, out, &ooff, (size_t)len, 0);
                        if (n < 0 &&
                            (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP))
                                fallback = true;
                }
                if (fallback) {
                        char buf[64 * 1024];
                        n = pread(in, buf, (size_t)len < sizeof buf ? (size_t)len : sizeof buf, ioff);
                        if (n > 0 && pwrite(out, buf, (size_t)n, ooff) != n)
                                return errno ? -errno : -EIO;
                        if (n > 0) {
                                ioff += n;
                                ooff += n;
                        }
                }
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break; /* the file shrank meanwhile */
                len -= n;
        }
        return 0;
}

/* Reflink where the filesystem shares extents; else copy the data segments only, so holes stay holes. */
static int copy_file_data(int in, int out, off_t size)
{
        if (ioctl(out, FICLONE, in) >= 0)
                return 0;
        for (off_t pos = 0; pos < size;) {
                off_t data = lseek(in, pos, SEEK_DATA);
                if (data < 0 && errno == ENXIO)
                        break; /* only a hole is left */
                if (data < 0)
                        return -errno;
                off_t hole = lseek(in, data, SEEK_HOLE);
                if (hole < 0)
                        return -errno;
                int r = copy_range(in, out, data, hole - data);
                if (r < 0)
                        return r;
                pos = hole;
        }
        return ftruncate(out, size) < 0 ? -errno : 0;
}

static int copy_xattrs(const char *from, const char *to)
{
        ssize_t n = llistxattr(from, NULL, 0);
        if (n <= 0)
                return n < 0 && errno != EOPNOTSUPP ? -errno : 0;
        _cleanup_free_ char *names = malloc((size_t)n);
        if (!names)
                return -ENOMEM;
        if ((n = llistxattr(from, names, (size_t)n)) < 0)
                return -errno;
        for (char *k = names; k < names + n; k += strlen(k) + 1) {
                ssize_t l = lgetxattr(from, k, NULL, 0);
                if (l < 0)
                        return -errno;
                _cleanup_free_ char *v = malloc((size_t)l + 1);
                if (!v)
                        return -ENOMEM;
                if ((l = lgetxattr(from, k, v, (size_t)l)) < 0 || lsetxattr(to, k, v, (size_t)l, 0) < 0)
                        return -errno;
        }
        return 0;
}

/* Owner before mode (chown clears set-id bits), mode before ACLs (an ACL sets the group bits), times last.
 */
static int copy_metadata(int sfd, int dfd, const char *name, const struct stat *st)
{
        char from[64 + NAME_MAX], to[64 + NAME_MAX];
        snprintf(from, sizeof from, "/proc/self/fd/%d/%s", sfd, name);
        snprintf(to, sizeof to, "/proc/self/fd/%d/%s", dfd, name);
        struct timespec ts[2] = {st->st_atim, st->st_mtim};

        if (lchown(to, st->st_uid, st->st_gid) < 0)
                return -errno;
        if (!S_ISLNK(st->st_mode) && chmod(to, st->st_mode & 07777) < 0)
                return -errno;
        int r = copy_xattrs(from, to);
        if (r < 0)
                return r;
        return utimensat(AT_FDCWD, to, ts, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

static int copy_regular(int sfd, int dfd, const char *name, const struct stat *st)
{
        _cleanup_close_ int in = openat(sfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
        if (in < 0)
                return -errno;
        _cleanup_close_ int out =
            openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (out < 0)
                return -errno;
        return copy_file_data(in, out, st->st_size);
}

static int copy_symlink(int sfd, int dfd, const char *name, const struct stat *st)
{
        _cleanup_free_ char *target = malloc((size_t)st->st_size + 1);
        if (!target)
                return -ENOMEM;
        ssize_t n = readlinkat(sfd, name, target, (size_t)st->st_size + 1);
        if (n < 0)
                return -errno;
        if (n > st->st_size)
                return -EAGAIN; /* changed under us */
        target[n] = 0;
        return symlinkat(target, dfd, name) < 0 ? -errno : 0;
}

static int copy_dir_contents(CopyContext *c, int sfd, int dfd, const char *rel);

/* A directory on another filesystem (a mount point) is copied as an empty directory. */
static int copy_dir(CopyContext *c, int sfd, int dfd, const char *name, const char *rel,
                    const struct stat *st)
{
        /* Each level costs two fds and its path: a guest's chain of 40,000 directories is refused. */
        if (c->depth >= IMAGE_DEPTH_MAX)
                return image_error(c->error, -ELOOP, "copy %.64s…: more than %u directory levels", rel,
                                   IMAGE_DEPTH_MAX);
        if (mkdirat(dfd, name, 0700) < 0)
                return -errno;
        if (st->st_dev != c->dev)
                return 0;
        int s = openat(sfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (s < 0)
                return -errno;
        _cleanup_close_ int d = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (d < 0) {
                safe_close(s);
                return -errno;
        }
        c->depth++;
        int r = copy_dir_contents(c, s, d, rel);
        c->depth--;
        return r;
}

/* 1 if made as a hardlink to an earlier copy of the same inode, 0 if the caller must copy it. */
static int copy_hardlink(CopyContext *c, int dfd, const char *name, const char *rel, const struct stat *st)
{
        if (S_ISDIR(st->st_mode) || st->st_nlink < 2)
                return 0;
        char *dup = strdup(rel);
        int r;
        if (!dup)
                return -ENOMEM;
        InodeSeen *first = inode_remember(&c->links, st->st_ino, dup, &r);
        if (r < 0 || !first)
                return r;
        return linkat(c->dst_root, first->dst_rel, dfd, name, 0) < 0 ? -errno : 1;
}

static int copy_entry(CopyContext *c, int sfd, int dfd, const char *name, const char *rel)
{
        struct stat st;
        int r;
        if (fstatat(sfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        if (st.st_dev != c->dev && !S_ISDIR(st.st_mode))
                return 0; /* a file bind-mounted over: not part of this filesystem */
        if ((r = copy_hardlink(c, dfd, name, rel, &st)) != 0)
                return r < 0 ? r : 0;
        if (S_ISREG(st.st_mode))
                r = copy_regular(sfd, dfd, name, &st);
        else if (S_ISDIR(st.st_mode))
                r = copy_dir(c, sfd, dfd, name, rel, &st);
        else if (S_ISLNK(st.st_mode))
                r = copy_symlink(sfd, dfd, name, &st);
        else
                r = mknodat(dfd, name, st.st_mode & S_IFMT, st.st_rdev) < 0 ? -errno : 0;
        if (r < 0)
                return r;
        return copy_metadata(sfd, dfd, name, &st);
}

/* Takes sfd. */
static int copy_dir_contents(CopyContext *c, int sfd, int dfd, const char *rel)
{
        _cleanup_closedir_ DIR *d = fdopendir(sfd);
        if (!d) {
                safe_close(sfd);
                return image_error(c->error, -errno, "read %s", *rel ? rel : ".");
        }
        struct dirent *de;
        errno = 0;
        while ((de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                _cleanup_free_ char *child = NULL;
                if (asprintf(&child, "%s%s%s", rel, *rel ? "/" : "", de->d_name) < 0)
                        return -ENOMEM;
                int r = copy_entry(c, dirfd(d), dfd, de->d_name, child);
                if (r < 0)
                        return image_error(c->error, r, "copy %s", child);
                errno = 0;
        }
        return errno ? image_error(c->error, -errno, "read %s", *rel ? rel : ".") : 0;
}

int copy_tree_fd(int src_fd, int dst_fd, ImageError *e)
{
        struct stat st;
        if (fstat(src_fd, &st) < 0)
                return image_error(e, -errno, "stat source");
        CopyContext c = {.dev = st.st_dev, .dst_root = dst_fd, .error = e};
        int s = openat(src_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s < 0)
                return image_error(e, -errno, "open source");
        int r = copy_dir_contents(&c, s, dst_fd, "");
        inodes_free(&c.links);
        if (r < 0)
                return r;
        /* The top directory last: copying into it changed its times. */
        r = copy_metadata(src_fd, dst_fd, ".", &st);
        return r < 0 ? image_error(e, r, "copy metadata of the top directory") : 0;
}

/* ---- clone, rename, remove ---- */

static int path_exists(const char *image_path, const char *name, const char *suffix)
{
        _cleanup_free_ char *p = NULL;
        if (join_path(image_path, name, suffix, &p) < 0)
                return -ENOMEM;
        if (faccessat(AT_FDCWD, p, F_OK, AT_SYMLINK_NOFOLLOW) >= 0)
                return 1;
        return errno == ENOENT ? 0 : -errno;
}

/* A NAME.machine file goes with its image; a missing one is fine. */
static int copy_settings_file(const char *image_path, const char *src, const char *dst)
{
        _cleanup_free_ char *from = NULL, *to = NULL, *text = NULL;
        if (join_path(image_path, src, ".machine", &from) < 0 ||
            join_path(image_path, dst, ".machine", &to) < 0)
                return -ENOMEM;
        int r = read_full_file(from, &text, NULL);
        if (r == -ENOENT)
                return 0;
        return r < 0 ? r : write_file_atomic(to, text);
}

static int clone_into_place(const char *image_path, int src_fd, const char *dst, ImageError *e)
{
        _cleanup_free_ char *tmp = NULL, *final = NULL;
        if (asprintf(&tmp, "%s/.#%s.XXXXXX", image_path, dst) < 0 ||
            join_path(image_path, dst, NULL, &final) < 0)
                return -ENOMEM;
        if (!mkdtemp(tmp))
                return image_error(e, -errno, "create a temporary directory in %s", image_path);
        int r;
        _cleanup_close_ int tfd = open(tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (tfd < 0)
                r = image_error(e, -errno, "open %s", tmp);
        else
                r = copy_tree_fd(src_fd, tfd, e);
        if (r >= 0 && renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) < 0)
                r = image_error(e, -errno, "rename the copy to %s", final);
        if (r < 0)
                (void)remove_tree(tmp);
        return r;
}

int image_clone(const char *image_path, const char *src, const char *dst, bool read_only, ImageError *e)
{
        if (!machine_name_is_valid(dst))
                return image_error(e, -EINVAL, "invalid image name '%s'", dst);
        _cleanup_close_ int sfd = open_image_dir(image_path, src, NULL);
        if (sfd < 0)
                return image_error(e, sfd, "open image %s", src);
        int r = path_exists(image_path, dst, NULL);
        if (r != 0)
                return image_error(e, r > 0 ? -EEXIST : r, "image %s", dst);
        if ((r = clone_into_place(image_path, sfd, dst, e)) < 0)
                return r;
        if ((r = copy_settings_file(image_path, src, dst)) < 0)
                return image_error(e, r, "copy %s.machine", src);
        if (read_only && (r = image_set_read_only(image_path, dst, true)) < 0)
                return image_error(e, r, "mark %s read-only", dst);
        return 0;
}

static int rename_settings_file(const char *image_path, const char *old_name, const char *new_name)
{
        _cleanup_free_ char *from = NULL, *to = NULL;
        if (join_path(image_path, old_name, ".machine", &from) < 0 ||
            join_path(image_path, new_name, ".machine", &to) < 0)
                return -ENOMEM;
        if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) < 0)
                return errno == ENOENT ? 0 : -errno;
        return 0;
}

/* The immutable flag forbids renaming the directory itself: lift it for the move. */
int image_rename(const char *image_path, const char *old_name, const char *new_name, ImageError *e)
{
        _cleanup_free_ char *from = NULL, *to = NULL;
        bool ro = false;
        if (!machine_name_is_valid(new_name))
                return image_error(e, -EINVAL, "invalid image name '%s'", new_name);
        _cleanup_close_ int fd = open_image_dir(image_path, old_name, &from);
        if (fd < 0)
                return image_error(e, fd, "open image %s", old_name);
        int r = path_exists(image_path, new_name, NULL);
        if (r == 0)
                r = path_exists(image_path, new_name, ".machine");
        if (r != 0)
                return image_error(e, r > 0 ? -EEXIST : r, "%s", new_name);
        if (join_path(image_path, new_name, NULL, &to) < 0)
                return -ENOMEM;
        (void)image_get_read_only_fd(fd, &ro);
        if (ro && (r = set_immutable_fd(fd, false)) < 0)
                return image_error(e, r, "lift the read-only flag of %s", old_name);
        if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) < 0)
                r = image_error(e, -errno, "rename %s to %s", old_name, new_name);
        else if ((r = rename_settings_file(image_path, old_name, new_name)) < 0) {
                (void)renameat2(AT_FDCWD, to, AT_FDCWD, from, RENAME_NOREPLACE);
                r = image_error(e, r, "rename %s.machine", old_name);
        }
        if (ro)
                (void)set_immutable_fd(fd, true);
        return r;
}

/* Moved to a hidden name first, so the image is gone at once and a partial removal is never listed. */
int image_remove(const char *image_path, const char *name, ImageError *e)
{
        _cleanup_free_ char *path = NULL, *hidden = NULL, *settings = NULL;
        _cleanup_close_ int fd = open_image_dir(image_path, name, &path);
        if (fd < 0)
                return image_error(e, fd, "open image %s", name);
        int r = set_immutable_fd(fd, false);
        if (r < 0 && r != -EOPNOTSUPP)
                return image_error(e, r, "lift the read-only flag of %s", name);
        if (asprintf(&hidden, "%s/.#%s.removing-%d-%" PRIu64, image_path, name, (int)getpid(),
                     now_usec(CLOCK_MONOTONIC)) < 0 ||
            join_path(image_path, name, ".machine", &settings) < 0)
                return -ENOMEM;
        if (renameat2(AT_FDCWD, path, AT_FDCWD, hidden, RENAME_NOREPLACE) < 0)
                return image_error(e, -errno, "rename %s out of the way", name);
        if ((r = remove_tree(hidden)) < 0)
                return image_error(e, r, "remove %s (left in %s)", name, hidden);
        if (unlink(settings) < 0 && errno != ENOENT)
                return image_error(e, -errno, "remove %s", settings);
        return 0;
}

/* ---- locks ---- */

static int lock_path(const char *image_path, const char *name, char **ret)
{
        return asprintf(ret, "%s/.#%s.lck", image_path, name) < 0 ? -ENOMEM : 0;
}

int image_lock(const char *image_path, const char *name, int *ret_fd)
{
        _cleanup_free_ char *path = NULL;
        if (!machine_name_is_valid(name))
                return -EINVAL;
        if (lock_path(image_path, name, &path) < 0)
                return -ENOMEM;
        for (;;) {
                _cleanup_close_ int fd =
                    open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0600);
                struct stat st;
                if (fd < 0)
                        return -errno;
                if (flock(fd, LOCK_EX | LOCK_NB) < 0)
                        return errno == EWOULDBLOCK ? -EBUSY : -errno;
                if (fstat(fd, &st) < 0)
                        return -errno;
                /* Unlinked by the previous holder between our open and flock: lock the new file instead. */
                if (st.st_nlink == 0)
                        continue;
                *ret_fd = TAKE_FD(fd);
                return 0;
        }
}

/* Unlinked while still locked, so a waiter never locks a file that is no longer the lock. */
int image_unlock(const char *image_path, const char *name, int fd)
{
        _cleanup_free_ char *path = NULL;
        if (fd < 0)
                return -1;
        if (lock_path(image_path, name, &path) >= 0)
                (void)unlink(path);
        return safe_close(fd);
}
