/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Unprivileged containers (SPEC §3 PrivateUsers=): uid/gid ranges, user namespace maps and the
 * idmapped rootfs.
 *
 * Pool: PrivateUsers=pick takes the lowest free 65536-id range from 0x80000 (524288) … 0x6FFF0000, in
 * steps of 65536 — the same pool as systemd-nspawn -U, so the usual /etc/subuid ranges of login users
 * (100000…) stay below it. Allocations live in RUNTIME_DIR/userns/: one file per range, named
 * "BASE-SIZE" (decimal) and holding the machine's name, created under an flock on
 * RUNTIME_DIR/userns/.lock. The files survive a daemon restart (a re-adopted machine keeps its range)
 * and are removed when the machine is finalized. A fixed PrivateUsers=UID[:RANGE] is recorded the same
 * way, so neither kind can overlap the other.
 *
 * Mapping: "0 BASE SIZE" for uids and gids alike; root in the guest is BASE on the host. The rootfs is
 * shown through an idmapped mount of the container's user namespace, so the image keeps normal
 * ownership (0 in the image = 0 in the guest = written as 0 on disk); it is never chowned. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define USERNS_RANGE_SIZE 65536U
#define USERNS_POOL_FIRST 0x80000U
#define USERNS_POOL_LAST 0x6FFF0000U /* base of the last range of the pool */

/* Records a range for machine under dir (created 0700 if missing). fixed_size 0 = pick a free range
 * from the pool; otherwise exactly [fixed_base, fixed_base + fixed_size), -EBUSY if it overlaps a range
 * of another machine. A range this machine still holds (a respawn, a leftover after a crash) is
 * released first. -ENOSPC when the pool is full. */
int userns_range_allocate(const char *dir, const char *machine, uint32_t fixed_base, uint32_t fixed_size,
                          uint32_t *ret_base, uint32_t *ret_size);

/* Removes every range recorded for machine. Missing dir/files are fine. */
int userns_range_release(const char *dir, const char *machine);

/* Writes "0 base size" to /proc/PID/uid_map and gid_map (setgroups stays "allow": the daemon writing
 * the maps is privileged, and the guest's login needs setgroups). */
int userns_write_maps(pid_t pid, uint32_t base, uint32_t size);

/* A detached clone of the tree at path (recursive), idmapped with the user namespace of pid: for the
 * container's child to attach as its rootfs. Must be done by the daemon: idmapping an ext4/xfs mount
 * needs CAP_SYS_ADMIN in the user namespace of the file system, i.e. the initial one. */
int userns_idmapped_tree(pid_t pid, const char *path);

/* The same for a Bind=/BindReadOnly= source (recursively read-only when asked): looked up with the
 * daemon's privileges, so a source below a 0700 directory works, and shown with the rootfs' mapping
 * (0 on the host = 0 in the guest). The file system must support idmapped mounts (ext4, xfs, btrfs,
 * tmpfs, ...; not NFS or procfs): -EINVAL otherwise. */
int userns_idmapped_bind(pid_t pid, const char *source, bool read_only);

/* Makes the container's cgroup2 directory writable by the guest's root (base): the directory itself and
 * the files the kernel's delegation model names (cgroup.procs, cgroup.threads, cgroup.subtree_control,
 * and whatever /sys/kernel/cgroup/delegate lists). */
int userns_chown_cgroup(const char *cgroup2_path, uid_t uid, gid_t gid);

/* In the child, after the maps are written: become root of the new user namespace (setgroups first:
 * the supplementary groups of the daemon are not mapped). Capabilities in the namespace are kept. */
int userns_become_root(void);
