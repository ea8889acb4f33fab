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

#include "util.h"

typedef struct Image {
        char *name;
        char *path;
        bool read_only;
        uint64_t crtime; /* µs since the epoch; 0 when the filesystem does not record a birth time */
        uint64_t mtime;
        uint64_t usage; /* bytes; UINT64_MAX when not computed */
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

/* -EINVAL for an invalid name, -ENOENT when there is no such image directory. Usage is a full walk of the
 * tree, so only computed when asked for. */
int image_load(const char *image_path, const char *name, bool with_usage, Image **ret);
/* Every image, sorted by name. A missing image path is an empty list. */
int image_list(const char *image_path, bool with_usage, Image ***ret, size_t *ret_n);
/* Disk usage of a tree: allocated blocks, each hardlinked inode once, not crossing mount points. */
int image_usage_at(int dirfd, uint64_t *ret);

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
