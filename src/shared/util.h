/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Small helpers every program here uses: cleanup attributes, errno plumbing, string bits. */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dirent.h>

#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _cleanup_(f) __attribute__((cleanup(f)))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define STRV_FOREACH(s, l) for (char **s = (l); s && *s; s++)

static inline void freep(void *p)
{
        free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline int safe_close(int fd)
{
        if (fd >= 0) {
                int saved = errno;
                close(fd);
                errno = saved;
        }
        return -1;
}
static inline void closep(int *fd)
{
        safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f)
{
        if (*f)
                fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

static inline void closedirp(DIR **d)
{
        if (*d)
                closedir(*d);
}
#define _cleanup_closedir_ _cleanup_(closedirp)

void strv_free(char **l);
static inline void strv_freep(char ***l)
{
        strv_free(*l);
}
#define _cleanup_strv_free_ _cleanup_(strv_freep)

/* Hand a cleanup-managed value over to someone else. */
#define TAKE_PTR(p)                                                                                          \
        ({                                                                                                   \
                __typeof__(p) _p = (p);                                                                      \
                (p) = NULL;                                                                                  \
                _p;                                                                                          \
        })
#define TAKE_FD(fd)                                                                                          \
        ({                                                                                                   \
                int _fd = (fd);                                                                              \
                (fd) = -1;                                                                                   \
                _fd;                                                                                         \
        })

/* errno as a negative return value, never 0 even if errno was not set. */
static inline int negative_errno(void)
{
        return errno > 0 ? -errno : -EIO;
}

static inline bool streq_ptr(const char *a, const char *b)
{
        if (!a || !b)
                return a == b;
        return strcmp(a, b) == 0;
}
#define streq(a, b) (strcmp((a), (b)) == 0)

static inline void *mfree(void *p)
{
        free(p);
        return NULL;
}

static inline const char *strempty(const char *s)
{
        return s ? s : "";
}

size_t strv_length(char *const *l);
int strv_extend(char ***l, const char *value);
int strv_push(char ***l, char *value); /* takes ownership of value */
char **strv_copy(char *const *l);
bool strv_contains(char *const *l, const char *s);

/* Reads a whole small file (sysfs, cgroupfs, /proc) with the trailing newline stripped. */
int read_one_line_file(const char *path, char **ret);
int read_full_file(const char *path, char **ret, size_t *ret_size);
/* Writes a string to an existing file (cgroupfs, /proc) in a single write(). */
int write_string_file(const char *path, const char *s);
int write_string_fileat(int dirfd, const char *path, const char *s);
/* Atomic replace: write to a temporary file next to it and rename. */
int write_file_atomic(const char *path, const char *contents);

/* ---- files inside a guest's root (hostile: FIFOs, devices, symlinks, huge files) ---- */

/* openat2(root_fd, path, flags | O_CLOEXEC, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS): symlinks are
 * followed, but never out of root_fd. */
int openat_in_root(int root_fd, const char *path, int flags);

typedef enum GuestOpenFlags {
        GUEST_OPEN_NOFOLLOW = 1 << 0, /* the last component must not be a symlink (-ELOOP) */
        GUEST_OPEN_CREATE = 1 << 1,   /* create a missing regular file, mode 0644 & ~umask */
} GuestOpenFlags;

/* Opens the regular file path inside the guest's root_fd without ever running a driver's or a FIFO's
 * open: the path is resolved (openat2 RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS: symlinks are followed,
 * but never out of the root) to an O_PATH fd, its type checked (-EISDIR for a directory, -ELOOP for a
 * symlink, -EBADFD for anything else but a regular file), and only then is that very inode reopened with
 * flags (O_RDONLY, O_WRONLY | O_TRUNC, …; O_PATH returns the checked fd) | O_NONBLOCK | O_NOCTTY |
 * O_CLOEXEC, through proc_fd's self/fd/N — proc_fd a procfs the guest cannot have mounted (-1: the
 * caller's /proc is the host's). */
int guest_open(int proc_fd, int root_fd, const char *path, int flags, GuestOpenFlags gflags);
/* strerror() for guest_open()'s results, with -EBADFD as "not a regular file". */
const char *guest_open_strerror(int r);

/* Reads all of fd, at most max bytes: -EFBIG beyond (a regular file's size is checked first), -EAGAIN
 * from a non-blocking fd with nothing more to read. *ret is NUL-terminated. */
int read_fd_bounded(int fd, size_t max, char **ret, size_t *ret_size);

/* Valid UTF-8 without NUL (what D-Bus accepts in a string), at most n bytes of s. */
bool utf8_is_valid_n(const char *s, size_t n);

int mkdir_p(const char *path, mode_t mode);
int rm_rf_dir(const char *path); /* only a plain directory tree; never crosses mount points */

/* Number parsing that rejects trailing garbage and overflow. */
int safe_atou64(const char *s, uint64_t *ret);
int safe_atoi(const char *s, int *ret);
int safe_atou(const char *s, unsigned *ret);

uint64_t now_usec(int clock); /* CLOCK_REALTIME / CLOCK_MONOTONIC in µs */
