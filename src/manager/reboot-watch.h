/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Which way a guest is going when it calls reboot(2): the kernel tells that (init's end by SIGHUP or SIGINT)
 * only to init's parent, and a daemon that re-adopted the guest after a restart is not that parent. The
 * guest's seccomp filter passes reboot(2)'s restart, power-off and halt calls to a user-notification
 * listener (seccomp-policy.c); this module reads each one, records its kind and lets the kernel carry the
 * call out unchanged (SECCOMP_USER_NOTIF_FLAG_CONTINUE: no decision is taken on what the guest sent, the
 * kernel checks the call as always). The listener is kept in the fd store across restarts: a guest that
 * reboots while no daemon runs waits in reboot(2) until the next one has read it. Everything from the
 * listener is guest-controlled: at most REBOOT_WATCH_BUDGET notifications are handled per loop iteration. */

#include <systemd/sd-event.h>

#define REBOOT_WATCH_BUDGET 16u

typedef enum GuestRebootKind {
        GUEST_REBOOT_NONE,
        GUEST_REBOOT_RESTART,
        GUEST_REBOOT_POWEROFF, /* power-off or halt */
} GuestRebootKind;

typedef struct RebootWatch RebootWatch;
typedef void (*reboot_watch_handler_t)(GuestRebootKind kind, void *userdata);

/* Takes ownership of listener_fd, also on failure. Only calls from leader's own pid namespace count (not a
 * nested container's reboot inside the guest). */
int reboot_watch_new(sd_event *e, int listener_fd, pid_t leader, reboot_watch_handler_t handler, void *userdata,
                     RebootWatch **ret);
int reboot_watch_fd(RebootWatch *w); /* still owned by w */
RebootWatch *reboot_watch_free(RebootWatch *w);
