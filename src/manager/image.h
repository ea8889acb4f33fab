/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Images: directory trees under the image path (SPEC §3), one per valid machine name.
 *
 * Read-only is the directory's FS_IMMUTABLE_FL inode flag (chattr +i), as systemd does it: nothing can be
 * created in, removed from or renamed in the image's top directory, and the flag survives reboots and is
 * visible with lsattr. Deeper files stay writable by root; a running machine that must not write uses
 * ReadOnly=. Filesystems without the flag give -EOPNOTSUPP.
 *
 * Functions that run long (clone, remove) are called in a forked worker (operation.c); they describe a
 * failure in an ImageError so that the text reaches the D-Bus caller. */

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

#include "util.h"

typedef struct Image {
        char *name;
        char *path;
        bool read_only;
        uint64_t crtime; /* µs since the epoch; 0 when the filesystem does not record a birth time */
        uint64_t mtime;
        /* Which directory this is: a usage measured (image-usage.h) is of one directory, not of a name. */
        dev_t dev;
        ino_t ino;
} Image;

/* What failed, e.g. "copy usr/bin/ls: No space left on device". */
typedef struct ImageError {
        char text[512];
} ImageError;

Image *image_free(Image *i);
static inline void image_freep(Image **i)
{
        image_free(*i);
}
#define _cleanup_image_ _cleanup_(image_freep)
void image_list_free(Image **l, size_t n);

/* -EINVAL for an invalid name, -ENOENT when there is no such image directory. A few system calls on the
 * image's top directory only (never a walk of the tree), so fit for the event loop. */
int image_load(const char *image_path, const char *name, Image **ret);
/* Every image, sorted by name. A missing image path is an empty list. */
int image_list(const char *image_path, Image ***ret, size_t *ret_n);

/* Directory levels below an image's top that the usage walk measures and a clone copies (a deeper tree is
 * not measured, not cloned): a path of 1024 levels is already past PATH_MAX, a guest's tree can be any
 * depth, and each level open costs a walk one fd. Removal goes to any depth. */
#define IMAGE_DEPTH_MAX 1024U

/* The usage walk: disk usage of a tree as allocated blocks, each hardlinked inode once, never following a
 * symlink, never crossing a mount point. Iterative (an explicit stack of directory fds, no recursion),
 * with every dimension a guest controls bounded: a tree beyond a limit is not measured (the walk stops
 * and says which limit). Memory: one fd and a 4 KiB buffer per level, one node per hardlinked inode. */
typedef struct ImageUsageLimits {
        unsigned depth_max;     /* directory levels below the top */
        uint64_t entries_max;   /* directory entries looked at */
        uint64_t hardlinks_max; /* distinct inodes with more than one name */
        uint64_t deadline;      /* CLOCK_MONOTONIC µs; 0 for none */
} ImageUsageLimits;

#define IMAGE_USAGE_ENTRIES_MAX (8ULL * 1000 * 1000)
#define IMAGE_USAGE_HARDLINKS_MAX (256ULL * 1024)

typedef enum ImageUsageStop {
        IMAGE_USAGE_COMPLETE,
        IMAGE_USAGE_TOO_DEEP,
        IMAGE_USAGE_TOO_MANY_ENTRIES,
        IMAGE_USAGE_TOO_MANY_HARDLINKS,
        IMAGE_USAGE_TIMEOUT,
} ImageUsageStop;

typedef struct ImageUsage {
        uint64_t bytes;   /* all of the tree when complete, else what was counted before the stop */
        uint64_t entries;
        ImageUsageStop stop;
} ImageUsage;

const char *image_usage_stop_to_string(ImageUsageStop s);
/* limits NULL: the defaults above, no deadline. A negative errno only for an error of the top directory
 * or of memory; entries that vanish or change type under the walk (a running guest's tree) are skipped. */
int image_usage_at(int dirfd, const ImageUsageLimits *limits, ImageUsage *ret);

/* Copies SRC to DST (which must not exist) through a hidden temp directory, renamed into place when done. */
int image_clone(const char *image_path, const char *src, const char *dst, bool read_only, ImageError *e);
/* Renames the image and a NAME.machine file next to it. -EEXIST if NEW (or NEW.machine) exists. */
int image_rename(const char *image_path, const char *old_name, const char *new_name, ImageError *e);
/* Removes the image (never crossing mount points) and a NAME.machine file next to it. */
int image_remove(const char *image_path, const char *name, ImageError *e);
int image_set_read_only(const char *image_path, const char *name, bool read_only);
int image_get_read_only_fd(int fd, bool *ret);

/* Copies the tree below src_fd into the empty directory dst_fd: owners, modes, timestamps, xattrs (ACLs
 * included), hardlinks, device nodes, fifos, sockets, symlinks (never followed), one filesystem only.
 * Regular files are reflinked where the filesystem can. */
int copy_tree_fd(int src_fd, int dst_fd, ImageError *e);

/* The lock a running machine holds on its image: IMAGE_PATH/.#NAME.lck, flock()ed exclusively.
 * -EBUSY if someone else holds it. image_unlock() removes the file and closes the fd; returns -1. */
int image_lock(const char *image_path, const char *name, int *ret_fd);
int image_unlock(const char *image_path, const char *name, int fd);
