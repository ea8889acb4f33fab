/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The guest's system call filter (SPEC §4): everything is allowed except a deny list of calls that
 * reach past the container's namespaces (kernel modules, kexec, keyrings, clocks, raw I/O ports, ...).
 * Denied calls fail with EPERM, so well-behaved software sees "not permitted", not a crash.
 *
 * cgroup v1 release_agent (hybrid hosts) is deliberately not handled here: seccomp cannot read the
 * fstype or option strings of mount()/fsconfig(). It is the guest's own cgroup namespace (container.c
 * unshares it before any guest code runs) that makes the kernel refuse both routes: a new v1 hierarchy
 * (where release_agent= could be set) can only be created from the initial cgroup namespace, and
 * release_agent writes are refused outside it (Linux >= 5.17). An existing hierarchy mounted by the
 * guest is rooted at its own cgroup, which has no release_agent file. tests/runtime checks both. */

#include <seccomp.h>
#include <stdbool.h>

/* extra: SystemCallFilter= entries, "name" removes name from the deny list, "~name" adds it.
 * -EINVAL with *ret_bad_name pointing into extra for an unknown system call. */
int seccomp_policy_build(char **extra, scmp_filter_ctx *ret, const char **ret_bad_name);
/* watch: reboot(2)'s restart/power-off/halt calls go to a user-notification listener (reboot-watch.h). */
int seccomp_policy_build_full(char **extra, bool watch, scmp_filter_ctx *ret, const char **ret_bad_name);

/* Compiles the filter for extra once and keeps the BPF in this process (the daemon), so that forked
 * children only load it. Same errors as seccomp_policy_build(). */
int seccomp_policy_prepare(char **extra, const char **ret_bad_name);

/* Loads the filter into the calling process (inherited by everything it execs): the BPF prepared for
 * the same extra list when there is one, else it is compiled here. */
int seccomp_policy_apply(char **extra, const char **ret_bad_name);
/* The same with the reboot(2) watch: *ret_listener is the new listener fd (O_CLOEXEC), for the daemon. */
int seccomp_policy_apply_watching_reboot(char **extra, int *ret_listener, const char **ret_bad_name);

/* Whether name is denied by default (tests, status output). */
int seccomp_policy_denies_by_default(const char *name);
