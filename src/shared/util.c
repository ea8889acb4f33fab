/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "util.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

void strv_free(char **l)
{
        STRV_FOREACH(s, l)
        free(*s);
        free(l);
}

size_t strv_length(char *const *l)
{
        size_t n = 0;
        while (l && l[n])
                n++;
        return n;
}

int strv_push(char ***l, char *value)
{
        size_t n = strv_length(*l);
        char **c = realloc(*l, sizeof(char *) * (n + 2));
        if (!c)
                return -ENOMEM;
        c[n] = value;
        c[n + 1] = NULL;
        *l = c;
        return 0;
}

int strv_extend(char ***l, const char *value)
{
        char *v = strdup(value);
        if (!v)
                return -ENOMEM;
        int r = strv_push(l, v);
        if (r < 0)
                free(v);
        return r;
}

char **strv_copy(char *const *l)
{
        size_t n = strv_length(l);
        char **c = calloc(n + 1, sizeof(char *));
        if (!c)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                c[i] = strdup(l[i]);
                if (!c[i]) {
                        strv_free(c);
                        return NULL;
                }
        }
        return c;
}

bool strv_contains(char *const *l, const char *s)
{
        for (size_t i = 0; l && l[i]; i++)
                if (streq(l[i], s))
                        return true;
        return false;
}

int read_full_file(const char *path, char **ret, size_t *ret_size)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;

        size_t size = 0, alloc = 4096;
        _cleanup_free_ char *buf = malloc(alloc);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                if (size + 1 >= alloc) {
                        if (alloc >= 64 * 1024 * 1024)
                                return -EFBIG;
                        char *n = realloc(buf, alloc * 2);
                        if (!n)
                                return -ENOMEM;
                        buf = n;
                        alloc *= 2;
                }
                ssize_t k = read(fd, buf + size, alloc - size - 1);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                size += (size_t)k;
        }
        buf[size] = 0;
        if (ret_size)
                *ret_size = size;
        *ret = TAKE_PTR(buf);
        return 0;
}

int read_one_line_file(const char *path, char **ret)
{
        char *s;
        int r = read_full_file(path, &s, NULL);
        if (r < 0)
                return r;
        s[strcspn(s, "\n")] = 0;
        *ret = s;
        return 0;
}

int write_string_fileat(int dirfd, const char *path, const char *s)
{
        _cleanup_close_ int fd = openat(dirfd, path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        size_t l = strlen(s);
        ssize_t k = write(fd, s, l);
        if (k < 0)
                return -errno;
        if ((size_t)k != l)
                return -EIO;
        return 0;
}

int write_string_file(const char *path, const char *s)
{
        return write_string_fileat(AT_FDCWD, path, s);
}

int write_file_atomic(const char *path, const char *contents)
{
        /* DIR/.#BASE.XXXXXX: a hidden name no reader of DIR takes for one of its entries (machine names never
         * start with a dot), unique per writer. */
        _cleanup_free_ char *tmp = NULL;
        const char *base = strrchr(path, '/');
        int dir_len = base ? (int)(base - path) + 1 : 0;
        if (asprintf(&tmp, "%.*s.#%s.XXXXXX", dir_len, path, base ? base + 1 : path) < 0)
                return -ENOMEM;
        _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        size_t l = strlen(contents);
        if (write(fd, contents, l) != (ssize_t)l) {
                int r = errno > 0 ? -errno : -EIO;
                unlink(tmp);
                return r;
        }
        if (rename(tmp, path) < 0) {
                int r = -errno;
                unlink(tmp);
                return r;
        }
        return 0;
}

static int openat2_in_root(int root_fd, const char *path, int flags, GuestOpenFlags gflags)
{
        struct open_how how = {
                .flags = (uint64_t) flags | O_CLOEXEC | ((gflags & GUEST_OPEN_NOFOLLOW) ? O_NOFOLLOW : 0),
                .mode = (flags & O_CREAT) ? 0644 : 0,
                .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        };
        int fd = (int) syscall(SYS_openat2, root_fd, path, &how, sizeof(how));

        return fd < 0 ? -errno : fd;
}

int openat_in_root(int root_fd, const char *path, int flags)
{
        return openat2_in_root(root_fd, path, flags, 0);
}

static int check_regular(int fd)
{
        struct stat st;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISREG(st.st_mode))
                return 0;
        if (S_ISLNK(st.st_mode)) /* O_PATH | O_NOFOLLOW opens the link itself */
                return -ELOOP;
        return S_ISDIR(st.st_mode) ? -EISDIR : -EBADFD;
}

int guest_open(int proc_fd, int root_fd, const char *path, int flags, GuestOpenFlags gflags)
{
        _cleanup_close_ int path_fd = openat2_in_root(root_fd, path, O_PATH, gflags);

        if (path_fd == -ENOENT && (gflags & GUEST_OPEN_CREATE)) {
                /* O_EXCL | O_NOFOLLOW: a new regular file or nothing, never through a dangling symlink. The
                 * guest may swap something in before the reopen below: it is checked like any other. */
                int fd = openat2_in_root(root_fd, path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY,
                                         gflags);
                if (fd < 0 && fd != -EEXIST)
                        return fd;
                safe_close(fd);
                path_fd = openat2_in_root(root_fd, path, O_PATH, gflags);
        }
        if (path_fd < 0)
                return path_fd;
        int r = check_regular(path_fd);
        if (r < 0)
                return r;
        if (flags == O_PATH)
                return TAKE_FD(path_fd);

        char p[64];
        snprintf(p, sizeof(p), "%sself/fd/%d", proc_fd >= 0 ? "" : "/proc/", path_fd);
        int fd = openat(proc_fd >= 0 ? proc_fd : AT_FDCWD, p,
                        (flags & ~(O_CREAT | O_EXCL)) | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

const char *guest_open_strerror(int r)
{
        return r == -EBADFD ? "not a regular file" : strerror(abs(r));
}

int read_fd_bounded(int fd, size_t max, char **ret, size_t *ret_size)
{
        struct stat st;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISREG(st.st_mode) && (uint64_t) st.st_size > max)
                return -EFBIG;

        /* One byte more than allowed tells a file that grew past max from one that ends there. */
        size_t alloc = (S_ISREG(st.st_mode) ? (size_t) st.st_size : 4096) + 2, size = 0;
        if (alloc > max + 2)
                alloc = max + 2;
        _cleanup_free_ char *buf = malloc(alloc);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                if (size + 1 >= alloc) {
                        if (alloc >= max + 2)
                                return -EFBIG;
                        size_t n = alloc * 2 < max + 2 ? alloc * 2 : max + 2;
                        char *b = realloc(buf, n);
                        if (!b)
                                return -ENOMEM;
                        buf = b;
                        alloc = n;
                }
                ssize_t k = read(fd, buf + size, alloc - size - 1);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                size += (size_t) k;
        }
        if (size > max)
                return -EFBIG;
        buf[size] = 0;
        if (ret_size)
                *ret_size = size;
        *ret = TAKE_PTR(buf);
        return 0;
}

bool utf8_is_valid_n(const char *s, size_t n)
{
        const unsigned char *p = (const unsigned char *) s, *end = p + n;

        while (p < end) {
                unsigned c = *p, len;
                uint32_t cp;

                if (c == 0)
                        return false;
                if (c < 0x80) {
                        p++;
                        continue;
                }
                if (c >= 0xc2 && c <= 0xdf)
                        len = 2, cp = c & 0x1f;
                else if (c >= 0xe0 && c <= 0xef)
                        len = 3, cp = c & 0x0f;
                else if (c >= 0xf0 && c <= 0xf4)
                        len = 4, cp = c & 0x07;
                else
                        return false;
                if ((size_t) (end - p) < len)
                        return false;
                for (unsigned i = 1; i < len; i++) {
                        if ((p[i] & 0xc0) != 0x80)
                                return false;
                        cp = (cp << 6) | (p[i] & 0x3f);
                }
                /* Overlong forms, surrogates, beyond U+10FFFF. */
                if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
                    (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
                p += len;
        }
        return true;
}

int mkdir_p(const char *path, mode_t mode)
{
        _cleanup_free_ char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = 0;
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

static int rm_rf_at(int dfd, dev_t dev)
{
        _cleanup_closedir_ DIR *d = fdopendir(dfd);
        if (!d) {
                safe_close(dfd);
                return -errno;
        }
        int ret = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                struct stat st;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                if (S_ISDIR(st.st_mode)) {
                        if (st.st_dev != dev) {
                                ret = -EBUSY; /* a mount point: never descend */
                                continue;
                        }
                        int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                        if (sub < 0)
                                continue;
                        int r = rm_rf_at(sub, dev);
                        if (r < 0)
                                ret = r;
                        if (unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) < 0 && ret == 0)
                                ret = -errno;
                } else if (unlinkat(dirfd(d), de->d_name, 0) < 0 && ret == 0)
                        ret = -errno;
        }
        return ret;
}

int rm_rf_dir(const char *path)
{
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        struct stat st;
        if (fstat(fd, &st) < 0) {
                safe_close(fd);
                return -errno;
        }
        int r = rm_rf_at(fd, st.st_dev);
        if (rmdir(path) < 0 && r == 0)
                r = -errno;
        return r;
}

int safe_atou64(const char *s, uint64_t *ret)
{
        if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
                return -EINVAL;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        if (*end)
                return -EINVAL;
        *ret = (uint64_t)v;
        return 0;
}

int safe_atoi(const char *s, int *ret)
{
        if (!s || !*s || *s == ' ')
                return -EINVAL;
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (errno == ERANGE || v > INT_MAX || v < INT_MIN)
                return -ERANGE;
        if (*end)
                return -EINVAL;
        *ret = (int)v;
        return 0;
}

int safe_atou(const char *s, unsigned *ret)
{
        uint64_t v;
        int r = safe_atou64(s, &v);
        if (r < 0)
                return r;
        if (v > UINT_MAX)
                return -ERANGE;
        *ret = (unsigned)v;
        return 0;
}

uint64_t now_usec(int clock)
{
        struct timespec ts;
        clock_gettime(clock, &ts);
        return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000ULL;
}
