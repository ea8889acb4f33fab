/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The guest's file system tree (SPEC §4), built by the container's child in its new mount namespace
 * with the new mount API: every target inside the (untrusted) image is opened with
 * openat2(RESOLVE_IN_ROOT) relative to the rootfs, so symlinks in a hostile image cannot point a mount
 * outside of it. */

#include <stdbool.h>
#include <stddef.h>

#include "container.h"

/* Makes "/" a slave, binds c->root onto itself and mounts /proc, /sys, /dev, /run and /run/host below
 * it. Returns an O_PATH fd of the new root mount. On failure *ret_step names what failed ("mount
 * /proc"); it points to static storage. */
int mount_setup_guest(const ContainerConfig *c, int *ret_root_fd, const char **ret_step);

/* Mounts cgroup2 at /sys/fs/cgroup below root_fd; after the cgroup namespace is unshared, which must wait
 * until the process is in its cgroups. */
int mount_setup_cgroup(int root_fd, const char **ret_step);

/* Makes root_fd the process's root (pivot_root) and detaches the host's tree. */
int mount_pivot_root(int root_fd);
