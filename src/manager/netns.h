/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Brings up "lo" in the calling process's network namespace (a fresh netns has it down). */
int netns_loopback_up(void);

/* In the guest's netns, before init runs: brings up "host0" (moved in by the daemon) and adds each
 * "ADDR/PREFIX" of addresses (IPv6 without duplicate address detection, usable at once). On failure
 * *ret_step names the step and address. */
int netns_setup_host0(char **addresses, const char **ret_step);

/* ResolvConf= in the child, after the guest's mounts and before pivot_root (the host's /etc is still
 * visible). The guest's /etc/resolv.conf is resolved inside root_fd and never opened unless it is a
 * regular file (guest_open()); a symlink there (a resolver manager's stub) is left alone, as is anything
 * else that is not a regular file (a FIFO, a device), a read-only rootfs or a rootfs without /etc. */
enum {
        NETNS_RESOLV_CONF_LEAVE = 0,
        NETNS_RESOLV_CONF_COPY,
        NETNS_RESOLV_CONF_BIND,
};
int netns_setup_resolv_conf(int root_fd, int mode);
