/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Capability bounding set of a guest: what its processes can ever regain after exec. */

#include <stdbool.h>
#include <stdint.h>

/* systemd-nspawn's default set, plus CAP_NET_ADMIN when the guest has its own network namespace. */
uint64_t capability_default_set(bool private_network);

/* Drops every capability not in keep from the calling process's bounding set. Needs CAP_SETPCAP. */
int capability_bounding_set_limit(uint64_t keep);

/* The bounding set and what the process holds now (permitted, effective, inheritable; ambient cleared)
 * limited to keep: a process that enters a guest has no more than the guest's root before it execs. Needs
 * CAP_SETPCAP. */
int capability_limit(uint64_t keep);

/* "CAP_SYS_ADMIN" / "sys_admin" -> capability number; -EINVAL if unknown. */
int capability_from_name(const char *name);
