/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Host-wide limits that many guests exhaust together (issue 5). Without user namespaces every guest's
 * root is the host's root, so per-user kernel limits are shared by the host and all guests: a booting
 * systemd that cannot get an inotify instance comes up degraded (or, as PID 1, does not come up), and
 * nothing says why. Before a start we estimate what the guests would need and
 *   - warn (logged with the machine's name) when the estimate crosses a limit, naming the sysctl and
 *     the value that would be enough;
 *   - refuse (StartFailed) when the measured usage plus a guest's worth for this guest and every guest
 *     still starting crosses the limit: such a guest's systemd exits or hangs in start-up.
 * With PrivateUsers=pick the guests' instances still count against root's limit: the kernel charges
 * every level of the user-namespace chain, and root (the daemon) owns the guests' namespaces.
 *
 * The estimate (per booting systemd guest, measured on Debian 12 with tools/bench, see
 * docs/BENCHMARKS.md): HOST_LIMITS_GUEST_INOTIFY_INSTANCES inotify instances (systemd, journald,
 * logind, udevd-less containers) with HOST_LIMITS_GUEST_INOTIFY_WATCHES watches; a non-booting payload
 * (Boot=no) is counted as 0. */

#include <stdbool.h>
#include <stdint.h>

#define HOST_LIMITS_GUEST_INOTIFY_INSTANCES 10U /* an idle Debian 12 guest holds ~6, more while booting */
#define HOST_LIMITS_GUEST_INOTIFY_WATCHES 64U   /* measured 26 */
#define HOST_LIMITS_GUEST_MIN_TASKS 8U          /* an idle Debian 12 guest runs 5 */

typedef struct HostLimits {
        uint64_t inotify_max_user_instances;
        uint64_t inotify_max_user_watches;
        uint64_t pid_max;
        uint64_t threads_max;   /* kernel.threads-max */
        uint64_t tasks_now;     /* threads on the host now (/proc/loadavg) */
} HostLimits;

/* Reads the values from proc_root ("/proc", or a fake tree in tests). Missing files leave 0 (= unknown,
 * never checked). */
int host_limits_read(const char *proc_root, HostLimits *ret);

/* inotify instances charged to uid under proc_root: held by processes of uid in our user namespace or
 * by processes in user namespaces uid owns (fd symlinks to "anon_inode:inotify"; on the real /proc each
 * open file counted once, told apart with kcmp()). Costs a walk over /proc: only called when the
 * estimate is close. */
int host_limits_count_inotify(const char *proc_root, uint32_t uid, uint64_t *ret_instances);

/* The decision. booted_guests: guests with Boot=yes known to the manager (this one not included);
 * starting_guests: those of them still starting (their inotify instances are not all open yet).
 * used_inotify: measured instances charged to the guests' uid, or UINT64_MAX when not measured.
 * Returns 0 fine, 1 warning (estimate only), -E2BIG refused: measured usage + (starting + 1) guests'
 * worth crosses the limit, or pid_max is used up. *ret_message (malloc'd) names the sysctl, its value
 * and the value needed, for 1 and -E2BIG. */
int host_limits_check(const HostLimits *l, unsigned booted_guests, unsigned starting_guests, bool boot,
                      uint64_t used_inotify, char **ret_message);

/* What machine_start() calls: reads /proc, counts inotify usage only when the estimate is over half
 * the limit, logs a warning (or the refusal) with the machine's name. -E2BIG with *ret_message when
 * refused. */
int host_limits_check_start(const char *machine, unsigned booted_guests, unsigned starting_guests, bool boot,
                            char **ret_message);
