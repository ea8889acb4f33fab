/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Host-wide limits that many guests exhaust together (issue 5). Without user namespaces every guest's
 * root is the host's root, so per-user kernel limits are shared by the host and all guests: a booting
 * systemd that cannot get an inotify instance comes up degraded (or, as PID 1, does not come up), and
 * nothing says why. Before a start we estimate what the guests would need and
 *   - warn (logged with the machine's name) when the estimate crosses a limit, naming the sysctl and
 *     the value that would be enough;
 *   - refuse (StartFailed) only when the start would certainly fail: the measured usage already leaves
 *     no room for even a minimal guest.
 *
 * The estimate (per booting systemd guest, measured on Debian 12 with tools/bench, see
 * docs/BENCHMARKS.md): HOST_LIMITS_GUEST_INOTIFY_INSTANCES inotify instances (systemd, journald,
 * logind, udevd-less containers) with HOST_LIMITS_GUEST_INOTIFY_WATCHES watches; a non-booting payload
 * (Boot=no) is counted as 0. */

#include <stdbool.h>
#include <stdint.h>

#define HOST_LIMITS_GUEST_INOTIFY_INSTANCES 10U /* measured 8 on an idle Debian 12 guest, + margin */
#define HOST_LIMITS_GUEST_INOTIFY_WATCHES 64U   /* measured 26 */
#define HOST_LIMITS_GUEST_PID1_INOTIFY 2U       /* systemd as PID 1 alone: below this it freezes */
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

/* inotify instances held by processes of uid under proc_root (fd symlinks to "anon_inode:inotify",
 * each open file counted once). Costs a walk over /proc: only called when the estimate is close. */
int host_limits_count_inotify(const char *proc_root, uint32_t uid, uint64_t *ret_instances);

/* The decision. booted_guests: guests with Boot=yes already running (this one not included).
 * used_inotify: measured instances of the guests' uid, or UINT64_MAX when not measured.
 * Returns 0 fine, 1 warning, -E2BIG certain failure; *ret_message (malloc'd) names the sysctl, its value
 * and the value needed, for 1 and -E2BIG. */
int host_limits_check(const HostLimits *l, unsigned booted_guests, bool boot, uint64_t used_inotify,
                      char **ret_message);

/* What machine_start() calls: reads /proc, counts inotify usage only when the estimate is over half
 * the limit, logs a warning with the machine's name. -E2BIG with *ret_message on certain failure. */
int host_limits_check_start(const char *machine, unsigned booted_guests, bool boot, char **ret_message);
