/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* [Files] Bind=/BindReadOnly= and Ephemeral= (SPEC §3). The mounts are made by the container's child in its
 * own mount namespace (from mount_setup_guest()), so the host never sees them and they go away with the
 * guest's last process: nothing to clean up after a stop, a crash or a daemon restart.
 *
 * Ephemeral=yes: the root is an overlayfs whose lower layer is the image and whose upper and work
 * directories live on a tmpfs private to that mount namespace. The image is never written; writes cost
 * RAM, charged to the guest's own memory cgroup (so MemoryMax= bounds them) rather than filling the
 * host's disk; a guest that dies, however it dies, leaves nothing behind. */

#include <stddef.h>
#include <systemd/sd-bus.h>

#include "settings.h"

/* Daemon side, before anything is created: every source must exist on the host. Sets
 * org.machinemgr1.Error.InvalidArgument naming the machine and the source. */
int binds_check_sources(const char *machine, const BindMount *binds, size_t n, sd_bus_error *error);

/* StartMachine's "Bind" option, a(ssb) (source, destination or "" for the same path, read-only), appended
 * to s->binds. The variant is the next thing in the message. */
int bus_read_binds(sd_bus_message *message, Settings *s, sd_bus_error *error);

/* Child side. Mounts each source (recursively, read-only recursively where asked) at its destination
 * inside root_fd, creating the destination (a directory or an empty file, like the source) and its
 * parents; every path inside the guest is resolved with RESOLVE_IN_ROOT. *ret_step names what failed.
 * idmapped_fds (PrivateUsers=, else NULL): one detached tree per bind, made by the daemon
 * (userns_idmapped_bind()), attached instead of opening the source. */
int binds_mount(int root_fd, const BindMount *binds, size_t n, const int *idmapped_fds, const char **ret_step);

/* Child side, instead of binding the image: makes "/" a slave, then mounts an overlayfs (lower: the image
 * at root, upper/work: a fresh tmpfs) over root. Returns an fd of the overlay mount. */
int ephemeral_mount_root(const char *root, const char **ret_step);

/* The same with PrivateUsers=, as root of the guest's user namespace: lower_fd is the attached idmapped
 * rootfs; the tmpfs (detached) and the overlayfs are created in the guest's user namespace, the overlay
 * attached on top of lower_fd. Returns an fd of the overlay mount. */
int ephemeral_mount_over(int lower_fd, const char **ret_step);
